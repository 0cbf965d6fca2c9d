//! One load-test caller: a real WebRTC participant on our transport. It joins its room, has the
//! agent dispatched there, waits out the greeting, then per line speaks the line's frames in real
//! time, stops, and times the agent's reply on its own clock (voice to voice = first agent speech
//! window − last speech frame sent), waits until the agent is quiet, pauses, and goes on. At the
//! end it hangs up (drops the link).

use std::sync::Arc;
use std::time::Duration;

use frontdesk_actors::audio::{AudioFrame, FRAME_DURATION, ROOM_RATE};
use frontdesk_actors::provider::{AgentAudioOut, JoinRequest, RoomLink};
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant, MissedTickBehavior};

use super::dispatch::Dispatcher;
use super::ear::{self, EarConfig, Heard};
use super::records::AgentTurn;
use super::LoadtestError;
use crate::room::{Joined, LinkSnapshot, LiveKitRoom};
use crate::simulate::clips::{Clip, Clips};
use crate::worker::WorkerConfig;

/// How long each call talks.
#[derive(Clone, Copy, Debug)]
pub enum Script {
    /// This many lines (the fixture lines in order, from the first again after the last).
    Turns(usize),
    /// Lines until the call has lasted this long (the last reply is waited for).
    For(Duration),
}

impl Script {
    fn more(&self, spoken: usize, elapsed: Duration) -> bool {
        match *self {
            Script::Turns(n) => spoken < n,
            Script::For(d) => elapsed < d,
        }
    }

    /// The fixture line of turn `k` (0-based) out of `n`: in order when the script fits the
    /// fixture (the last line is the caller's goodbye, after which the agent hangs up); a longer
    /// script cycles through every line but the goodbye.
    pub fn line(&self, k: usize, n: usize) -> usize {
        match *self {
            Script::Turns(t) if t <= n => k % n.max(1),
            _ => k % n.saturating_sub(1).max(1),
        }
    }
}

/// Waits of the conversation.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub greeting_timeout: Duration,
    pub reply_timeout: Duration,
    /// The agent is done after this much quiet.
    pub quiet: Duration,
    /// A reply longer than this is not waited for any more.
    pub max_reply: Duration,
    pub pause: Duration,
}

/// What every caller shares.
pub struct Setup {
    pub room_io: LiveKitRoom,
    pub livekit: WorkerConfig,
    pub dispatcher: Dispatcher,
    pub clips: Arc<Clips>,
    /// Per clip, the index of its last frame above the threshold (the end of speech).
    pub speech_ends: Vec<usize>,
    /// Per clip, where the agent's VAD ends the line relative to `speech_ends` (ms).
    pub vad_tails: Vec<Option<f64>>,
    pub script: Script,
    pub timing: Timing,
    pub ear: EarConfig,
}

impl Setup {
    /// The last frame of each clip louder than the threshold.
    pub fn speech_ends(clips: &Clips, threshold_dbfs: f32) -> Vec<usize> {
        clips
            .lines
            .iter()
            .map(|c| {
                c.frames
                    .iter()
                    .rposition(|f| ear::level_dbfs(f) > threshold_dbfs)
                    .unwrap_or(c.frames.len().saturating_sub(1))
            })
            .collect()
    }
}

/// Which call, when.
#[derive(Clone, Debug)]
pub struct Plan {
    pub room: String,
    pub identity: String,
    pub start_at: Instant,
}

/// Why a call failed: the stage and the error.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    pub stage: String,
    pub reason: String,
    pub retriable: bool,
}

impl Failure {
    fn new(stage: impl Into<String>, e: LoadtestError) -> Self {
        Self {
            stage: stage.into(),
            retriable: e.is_retriable(),
            reason: scrub_tokens(&e.to_string()),
        }
    }
}

/// Replaces JWTs (`eyJ….….…`) with `[token]`: the server's 401 body quotes the join token, and
/// reasons go to logs and the report.
pub fn scrub_tokens(text: &str) -> String {
    let jwt_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((before, from)) = rest.find("eyJ").and_then(|at| rest.split_at_checked(at)) {
        out.push_str(before);
        let len = from.find(|c: char| !jwt_char(c)).unwrap_or(from.len());
        let Some((candidate, after)) = from.split_at_checked(len) else {
            break;
        };
        if candidate.matches('.').count() == 2 {
            out.push_str("[token]");
        } else {
            out.push_str(candidate);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// One caller turn.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TurnResult {
    /// 1-based, as the agent numbers its turns.
    pub index: u32,
    /// Which fixture line (0-based).
    pub line: usize,
    /// The agent spoke after the line.
    pub replied: bool,
    /// Voice to voice on the caller's clock; None when the agent did not answer or was already
    /// talking when the line ended.
    pub v2v_ms: Option<f64>,
    /// First agent speech to its last loud window.
    pub reply_ms: Option<f64>,
    /// The agent was heard while the caller was still speaking the line.
    pub talked_over: bool,
    /// Where the agent's VAD ends this line after the caller's last loud frame (offline, ms).
    pub vad_tail_ms: Option<f64>,
    /// The agent's record of the same turn (filled in from the worker's database).
    pub agent: Option<AgentTurn>,
    /// v2v − turn_latency + pipeline_overhead: the caller's wait minus the configured waits and
    /// the provider time, i.e. what Frontdesk and the media path added.
    pub added_ms: Option<f64>,
    /// `added_ms` − `vad_tail_ms`: the media path and the pipeline alone.
    pub added_after_vad_ms: Option<f64>,
}

/// One call, as the caller saw it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CallResult {
    pub room: String,
    pub completed: bool,
    pub failure: Option<Failure>,
    pub join_ms: Option<f64>,
    /// Dispatch created → first agent speech (the greeting).
    pub greeting_ms: Option<f64>,
    pub turns: Vec<TurnResult>,
    pub link: Option<LinkSnapshot>,
    /// Largest delay of a caller frame behind its 20 ms schedule.
    pub max_send_lateness_ms: f64,
    /// Dispatch → hang-up: when the call loads the worker.
    #[serde(skip)]
    pub active: Option<(Instant, Instant)>,
    /// When the greeting was over (the call is in steady state).
    #[serde(skip)]
    pub settled_at: Option<Instant>,
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs one call at its planned time. Never fails: problems are in the result.
pub async fn run(setup: Arc<Setup>, plan: Plan) -> CallResult {
    sleep_until(plan.start_at).await;
    let mut r = CallResult {
        room: plan.room.clone(),
        ..Default::default()
    };
    match call(&setup, &plan, &mut r).await {
        Ok(()) => r.completed = true,
        Err(f) => {
            tracing::warn!(room = %plan.room, stage = %f.stage, reason = %f.reason, "loadtest call failed");
            r.failure = Some(f);
        }
    }
    r
}

async fn call(setup: &Setup, plan: &Plan, r: &mut CallResult) -> Result<(), Failure> {
    let args = crate::token::TokenArgs {
        room: plan.room.clone(),
        identity: plan.identity.clone(),
        ttl: Duration::from_secs(6 * 3600),
    };
    let token =
        crate::token::mint(&setup.livekit, &args).map_err(|e| Failure::new("token", e.into()))?;
    let req = JoinRequest {
        url: setup.livekit.url.clone(),
        token,
        room: plan.room.clone(),
        caller: None,
    };
    let began = Instant::now();
    let Joined { link, stats } = setup
        .room_io
        .join_with_stats(req)
        .await
        .map_err(|e| Failure::new("join", e.into()))?;
    r.join_ms = Some(ms(began.elapsed()));
    let RoomLink {
        audio,
        events,
        mut output,
        ..
    } = link;
    let heard = ear::spawn(audio, events, setup.ear);
    let result = converse(setup, plan, r, output.as_mut(), heard).await;
    r.link = Some(stats.snapshot());
    // Hanging up: the ear let go of the link's receivers when `heard` was dropped.
    drop(output);
    result
}

async fn converse(
    setup: &Setup,
    plan: &Plan,
    r: &mut CallResult,
    out: &mut dyn AgentAudioOut,
    mut heard: watch::Receiver<Heard>,
) -> Result<(), Failure> {
    let dispatched = Instant::now();
    setup
        .dispatcher
        .dispatch(&plan.room)
        .await
        .map_err(|e| Failure::new("dispatch", e))?;
    r.active = Some((dispatched, dispatched));
    let result = talk(setup, r, out, &mut heard, dispatched).await;
    r.active = Some((dispatched, Instant::now()));
    result
}

async fn talk(
    setup: &Setup,
    r: &mut CallResult,
    out: &mut dyn AgentAudioOut,
    heard: &mut watch::Receiver<Heard>,
    dispatched: Instant,
) -> Result<(), Failure> {
    let t = &setup.timing;
    let greeting = wait_onset(heard, dispatched, t.greeting_timeout)
        .await
        .map_err(|e| Failure::new("greeting", no_greeting(e, &heard.borrow())))?;
    r.greeting_ms = Some(ms(greeting - dispatched));
    wait_quiet(heard, t)
        .await
        .map_err(|e| Failure::new("greeting", e))?;
    r.settled_at = Some(Instant::now());
    let mut mouth = Mouth::default();
    let first = Instant::now();
    let mut k = 0;
    while setup.script.more(k, first.elapsed()) {
        tokio::time::sleep(t.pause).await;
        let turn = turn(setup, out, heard, &mut mouth, k).await;
        r.max_send_lateness_ms = ms(mouth.max_lateness);
        r.turns
            .push(turn.map_err(|e| Failure::new(format!("turn {}", k + 1), e))?);
        k += 1;
    }
    Ok(())
}

async fn turn(
    setup: &Setup,
    out: &mut dyn AgentAudioOut,
    heard: &mut watch::Receiver<Heard>,
    mouth: &mut Mouth,
    k: usize,
) -> Result<TurnResult, LoadtestError> {
    if let Some(why) = heard.borrow().ended.clone() {
        return Err(LoadtestError::LinkClosed(why));
    }
    let line = setup.script.line(k, setup.clips.lines.len());
    let began = Instant::now();
    let spoken = mouth
        .speak(out, &setup.clips.lines[line], setup.speech_ends[line])
        .await
        .map_err(|e| LoadtestError::LinkClosed(e.to_string()))?;
    let talked_over = heard.borrow().loud_since(began);
    let mut result = TurnResult {
        index: k as u32 + 1,
        line,
        talked_over,
        vad_tail_ms: setup.vad_tails.get(line).copied().flatten(),
        ..Default::default()
    };
    match wait_onset(heard, spoken, setup.timing.reply_timeout).await {
        Ok(onset) => {
            result.replied = true;
            result.v2v_ms = (!talked_over).then(|| ms(onset - spoken));
            let last = wait_quiet(heard, &setup.timing).await?;
            result.reply_ms = Some(ms(last.saturating_duration_since(onset)));
        }
        Err(LoadtestError::Timeout(_)) => {}
        Err(e) => return Err(e),
    }
    Ok(result)
}

/// A missing greeting, told apart: no agent came (the dispatch was not taken), or it came but
/// said nothing.
fn no_greeting(e: LoadtestError, h: &Heard) -> LoadtestError {
    match e {
        LoadtestError::Timeout(why) if !h.agent_joined => {
            LoadtestError::Timeout(format!("{why}: no agent joined the room"))
        }
        LoadtestError::Timeout(why) => {
            LoadtestError::Timeout(format!("{why}: the agent joined but was not heard"))
        }
        other => other,
    }
}

/// The first agent onset at or after `since`, within `timeout` of now.
async fn wait_onset(
    heard: &mut watch::Receiver<Heard>,
    since: Instant,
    timeout: Duration,
) -> Result<Instant, LoadtestError> {
    let deadline = Instant::now() + timeout;
    loop {
        {
            let h = heard.borrow_and_update();
            if let Some(t) = h.onset_after(since) {
                return Ok(t);
            }
            if let Some(why) = &h.ended {
                return Err(LoadtestError::LinkClosed(why.clone()));
            }
        }
        match tokio::time::timeout_at(deadline, heard.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(LoadtestError::LinkClosed("the room link closed".into())),
            Err(_) => {
                return Err(LoadtestError::Timeout(format!(
                    "no agent speech within {timeout:?}"
                )))
            }
        }
    }
}

/// Until the agent has been quiet for `t.quiet` (or `t.max_reply` has passed); returns when it
/// was last heard. The agent leaving after it spoke ends the wait too (a goodbye).
async fn wait_quiet(
    heard: &mut watch::Receiver<Heard>,
    t: &Timing,
) -> Result<Instant, LoadtestError> {
    let began = Instant::now();
    let give_up = began + t.max_reply;
    loop {
        let (last, ended) = {
            let h = heard.borrow();
            (h.last_loud.unwrap_or(began), h.ended.is_some())
        };
        let now = Instant::now();
        if ended || now >= last + t.quiet || now >= give_up {
            return Ok(last);
        }
        sleep_until((last + t.quiet).min(give_up)).await;
    }
}

/// The caller's microphone: frames at 48 kHz, one every 20 ms on a steady clock (late ticks catch
/// up rather than drop audio).
#[derive(Default)]
struct Mouth {
    media: Duration,
    max_lateness: Duration,
}

impl Mouth {
    /// Speak `clip`; returns when its last speech frame (`speech_end`) was sent.
    async fn speak(
        &mut self,
        out: &mut dyn AgentAudioOut,
        clip: &Clip,
        speech_end: usize,
    ) -> Result<Instant, frontdesk_actors::provider::RoomError> {
        let mut tick = tokio::time::interval(FRAME_DURATION);
        tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut ended = Instant::now();
        for (i, samples) in clip.frames.iter().enumerate() {
            let due = tick.tick().await;
            self.max_lateness = self.max_lateness.max(due.elapsed());
            let frame = AudioFrame::new(Arc::clone(samples), ROOM_RATE, self.media);
            out.send(frame).await?;
            self.media += FRAME_DURATION;
            if i == speech_end {
                ended = Instant::now();
            }
        }
        Ok(ended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_scrubbed_from_reasons() {
        let text = "401 Unauthorized: invalid token: eyJhbGciOi.eyJzdWIi.sig-_x, error: eyJ alone";
        assert_eq!(
            scrub_tokens(text),
            "401 Unauthorized: invalid token: [token], error: eyJ alone"
        );
        assert_eq!(scrub_tokens("no token"), "no token");
    }

    #[test]
    fn scripts_run_their_turns_or_their_time() {
        assert!(Script::Turns(2).more(1, Duration::ZERO));
        assert!(!Script::Turns(2).more(2, Duration::ZERO));
        let d = Duration::from_secs(10);
        assert!(Script::For(d).more(99, Duration::from_secs(9)));
        assert!(!Script::For(d).more(0, d));
        let lines: Vec<usize> = (0..6).map(|k| Script::Turns(6).line(k, 6)).collect();
        assert_eq!(lines, [0, 1, 2, 3, 4, 5]);
        let lines: Vec<usize> = (0..7).map(|k| Script::For(d).line(k, 6)).collect();
        assert_eq!(lines, [0, 1, 2, 3, 4, 0, 1]);
        assert_eq!(Script::Turns(8).line(5, 6), 0);
    }
}
