//! The simulated caller: plays its lines in real time (20 ms frames, silence in between, as a real
//! audio track does), waits for the agent's reply to finish before the next line, and hangs up once
//! the call has lasted long enough.

use std::sync::Arc;
use std::time::Duration;

use frontdesk_actors::audio::{samples_per_frame, AudioFrame, FRAME_DURATION, PIPELINE_RATE};
use frontdesk_actors::call::tick::Pacer;
use frontdesk_actors::loopback::RoomEnd;
use tokio::time::Instant;

use super::clips::Clips;

#[derive(Clone, Debug)]
pub struct CallerConfig {
    /// Hang up after the first reply that ends past this (a caller with a script hangs up when
    /// it has said all of it instead).
    pub duration: Duration,
    /// Give up waiting for a reply after this.
    pub reply_timeout: Duration,
    /// The agent's reply is over after this much agent silence.
    pub quiet: Duration,
    /// Think time before the next line.
    pub pause: Duration,
}

#[derive(Clone, Debug, Default)]
pub struct CallerStats {
    pub lines: u32,
    pub replies: u32,
    pub missed_replies: u32,
    /// Caller frames the room did not take (its inbound queue was full).
    pub refused_frames: u64,
    pub max_lateness: Duration,
    /// Ticks more than one frame late.
    pub late_ticks: u64,
    pub agent_frames: u64,
}

enum Phase {
    Listening {
        started: Instant,
        heard: Option<Instant>,
    },
    Pausing {
        until: Instant,
    },
    Speaking {
        line: usize,
        pos: usize,
    },
}

pub struct Caller {
    end: RoomEnd,
    clips: Arc<Clips>,
    /// Clips to speak, in order: a scenario's lines once (then hang up), or by default every
    /// clip over and over until the duration is up.
    script: Option<Vec<usize>>,
    cfg: CallerConfig,
    silence: Arc<[i16]>,
    media_time: Duration,
    pub stats: CallerStats,
}

impl Caller {
    pub fn new(end: RoomEnd, clips: Arc<Clips>, cfg: CallerConfig) -> Self {
        let silence: Arc<[i16]> = vec![0i16; samples_per_frame(PIPELINE_RATE)].into();
        Self {
            end,
            clips,
            script: None,
            cfg,
            silence,
            media_time: Duration::ZERO,
            stats: CallerStats::default(),
        }
    }

    /// Speak these clips once, in order, and hang up after the reply to the last one.
    pub fn with_script(mut self, clips: Vec<usize>) -> Self {
        self.script = Some(clips);
        self
    }

    /// The clip of the `n`th line, or `None` when the script is done.
    fn line(&self, n: usize) -> Option<usize> {
        match &self.script {
            Some(s) => s.get(n).copied().filter(|&c| c < self.clips.lines.len()),
            None => Some(n % self.clips.lines.len().max(1)),
        }
    }

    /// Run the call from the caller's side until hang-up.
    pub async fn run(mut self) -> CallerStats {
        let begin = Instant::now();
        // On the media runtime's shared tick; a beat more than a frame late is not caught up in
        // a burst (which overflowed the room's queue), the stream goes on from it.
        let mut pacer = Pacer::new(FRAME_DURATION);
        let mut phase = Phase::Listening {
            started: begin,
            heard: None,
        };
        let mut next_line = 0usize;
        loop {
            let beat = pacer.tick().await;
            self.note_lateness(beat.lateness());
            let agent_spoke = self.drain_agent();
            let now = beat.now;
            if let Phase::Pausing { until } = phase {
                if now >= until {
                    let line = self.line(next_line);
                    // A scenario's caller says all its lines; others talk until the duration.
                    let timed_out = self.script.is_none() && now - begin >= self.cfg.duration;
                    let Some(line) = line.filter(|_| !timed_out) else {
                        break;
                    };
                    self.stats.lines += 1;
                    phase = Phase::Speaking { line, pos: 0 };
                    next_line += 1;
                }
            }
            let samples = self.step(&mut phase, agent_spoke, now);
            self.send(samples);
        }
        self.end.leave("caller").await;
        self.stats
    }

    /// The next frame to send, advancing speaking and listening.
    fn step(&mut self, phase: &mut Phase, agent_spoke: bool, now: Instant) -> Arc<[i16]> {
        match phase {
            Phase::Speaking { line, pos } => {
                let frames = &self.clips.lines[*line].frames;
                let s = Arc::clone(&frames[*pos]);
                *pos += 1;
                if *pos >= frames.len() {
                    *phase = Phase::Listening {
                        started: now,
                        heard: None,
                    };
                }
                s
            }
            Phase::Listening { started, heard } => {
                if agent_spoke {
                    *heard = Some(now);
                }
                if heard.is_some_and(|h| now - h >= self.cfg.quiet) {
                    self.stats.replies += 1;
                    *phase = Phase::Pausing {
                        until: now + self.cfg.pause,
                    };
                } else if heard.is_none() && now - *started >= self.cfg.reply_timeout {
                    self.stats.missed_replies += 1;
                    *phase = Phase::Pausing {
                        until: now + self.cfg.pause,
                    };
                }
                Arc::clone(&self.silence)
            }
            Phase::Pausing { .. } => Arc::clone(&self.silence),
        }
    }

    fn send(&mut self, samples: Arc<[i16]>) {
        let frame = AudioFrame {
            samples,
            sample_rate: PIPELINE_RATE,
            timestamp: self.media_time,
        };
        self.media_time += FRAME_DURATION;
        if self.end.audio.try_send(frame).is_err() {
            self.stats.refused_frames += 1;
        }
    }

    /// Returns true if any agent audio arrived since the last tick.
    fn drain_agent(&mut self) -> bool {
        let mut any = false;
        while self.end.from_agent.try_recv().is_ok() {
            self.stats.agent_frames += 1;
            any = true;
        }
        any
    }

    fn note_lateness(&mut self, late: Duration) {
        self.stats.max_lateness = self.stats.max_lateness.max(late);
        if late > FRAME_DURATION {
            self.stats.late_ticks += 1;
        }
    }
}
