//! The load test's report: outcomes, the callers' latencies, the agent's per-stage latencies from
//! its call records (correlated turn by turn), what Frontdesk added on the caller's clock, packet
//! loss and jitter, and CPU/memory per call of the worker, the server and the callers. Printed as
//! a table, serialised as JSON.

use std::collections::BTreeMap;

use serde::Serialize;

use super::caller::{CallResult, TurnResult};
use super::records::{AgentTurn, Records, STAGES};
use super::usage::Usage;
use super::worker::PacketCounters;

/// Percentiles of a set of values (ms), nearest rank.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    pub count: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Stats {
    pub fn of(mut values: Vec<f64>) -> Self {
        values.retain(|v| v.is_finite());
        values.sort_by(f64::total_cmp);
        let rank = |q: f64| -> f64 {
            if values.is_empty() {
                return 0.0;
            }
            let i = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
            values[i - 1]
        };
        Self {
            count: values.len(),
            p50: rank(0.50),
            p95: rank(0.95),
            p99: rank(0.99),
            max: rank(1.0),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Calls {
    pub started: usize,
    pub completed: usize,
    pub failed: usize,
    /// "stage: reason" → calls.
    pub failures: BTreeMap<String, usize>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Turns {
    pub spoken: usize,
    pub replied: usize,
    pub missed: usize,
    /// The agent spoke while the caller was still talking (v2v not measured).
    pub talked_over: usize,
}

/// How caller turns were matched with the agent's turn records.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Correlation {
    pub turns_matched: usize,
    pub turns_without_record: usize,
    /// Calls that reached the worker (greeting heard) but have no ended record.
    pub calls_without_record: usize,
    /// Agent turns beyond the caller's (a line taken as two turns shifts the matching).
    pub extra_agent_turns: usize,
    pub error: Option<String>,
}

/// One direction's packets.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Direction {
    pub received: u64,
    pub lost: u64,
    pub loss_pct: f64,
}

impl Direction {
    fn new(received: u64, lost: u64) -> Self {
        let total = received + lost;
        let loss_pct = if total > 0 {
            lost as f64 * 100.0 / total as f64
        } else {
            0.0
        };
        Self {
            received,
            lost,
            loss_pct,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Packets {
    /// The agent's audio as the callers received it.
    pub agent_to_caller: Direction,
    /// The callers' audio as the worker received it (its /metrics, all its calls in the run).
    pub caller_to_agent: Option<Direction>,
    pub callers_sent: u64,
    /// The agent's packets the worker sent (its /metrics), beside what the callers received.
    pub worker_sent: Option<u64>,
    pub late: u64,
    /// Interarrival jitter of the agent's stream at each caller (its last value), ms.
    pub jitter_ms: Stats,
    /// Caller frames the transport dropped (send timeout) and agent audio chunks the caller's
    /// queue dropped.
    pub send_dropped: u64,
    pub receive_dropped: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Resources {
    /// "steady" (every call past its greeting, none ended) or "whole run".
    pub window: String,
    pub window_seconds: f64,
    pub mean_calls: f64,
    pub worker: Option<Usage>,
    pub livekit_server: Option<Usage>,
    /// This process: the callers' WebRTC stacks, Opus and pacing.
    pub loadtest_callers: Option<Usage>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub calls: Calls,
    pub turns: Turns,
    /// Caller's clock: join, dispatch → greeting, voice to voice, reply length.
    pub caller_ms: BTreeMap<String, Stats>,
    /// Agent's clock, from its call records.
    pub agent_ms: BTreeMap<String, Stats>,
    /// v2v − turn_latency + pipeline_overhead, per turn.
    pub added_by_frontdesk_ms: Stats,
    /// The part of it that is the agent's VAD ending a line later than the caller's threshold
    /// (estimated offline: the line through the callers' Opus settings and the configured VAD).
    pub vad_tail_ms: Stats,
    /// The rest: the media path (both ways) and whatever the offline VAD estimate misses.
    pub added_after_vad_ms: Stats,
    pub correlation: Correlation,
    pub packets: Packets,
    pub resources: Resources,
    pub wall_seconds: f64,
    pub settings: BTreeMap<String, String>,
    pub per_call: Vec<CallResult>,
}

impl Report {
    pub fn all_calls_completed(&self) -> bool {
        self.calls.started > 0 && self.calls.completed == self.calls.started
    }

    /// Outcomes and the callers' own figures.
    pub fn from_calls(results: Vec<CallResult>) -> Self {
        let mut r = Report::default();
        let mut v = BTreeMap::<&str, Vec<f64>>::new();
        for c in &results {
            r.calls.started += 1;
            if c.completed {
                r.calls.completed += 1;
            }
            if let Some(f) = &c.failure {
                r.calls.failed += 1;
                *r.calls
                    .failures
                    .entry(format!("{}: {}", f.stage, f.reason))
                    .or_default() += 1;
            }
            v.entry("join").or_default().extend(c.join_ms);
            v.entry("greeting").or_default().extend(c.greeting_ms);
            for t in &c.turns {
                r.turns.spoken += 1;
                r.turns.replied += usize::from(t.replied);
                r.turns.missed += usize::from(!t.replied);
                r.turns.talked_over += usize::from(t.talked_over);
                v.entry("voice_to_voice").or_default().extend(t.v2v_ms);
                v.entry("reply").or_default().extend(t.reply_ms);
            }
        }
        r.caller_ms = v
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Stats::of(v)))
            .collect();
        r.packets = packets(&results);
        r.per_call = results;
        r
    }

    /// Match each caller turn with the agent's record of the same room and turn index.
    pub fn correlate(&mut self, records: Result<Records, String>) {
        let records = match records {
            Ok(r) => r,
            Err(e) => {
                self.correlation.error = Some(e);
                return;
            }
        };
        let mut acc = Matched::default();
        let c = &mut self.correlation;
        for call in &mut self.per_call {
            let record = records
                .get(&call.room)
                .filter(|r| r.ended || !r.turns.is_empty());
            if record.is_none() && call.greeting_ms.is_some() {
                c.calls_without_record += 1;
            }
            let agent_turns = record.map_or(0, |r| r.turns.len());
            c.extra_agent_turns += agent_turns.saturating_sub(call.turns.len());
            for t in &mut call.turns {
                match record.and_then(|r| r.turns.get(&t.index)) {
                    Some(a) => {
                        c.turns_matched += 1;
                        acc.add(t, a);
                    }
                    None => c.turns_without_record += 1,
                }
            }
        }
        self.agent_ms = STAGES
            .iter()
            .zip(acc.stages)
            .map(|(name, v)| (name.to_string(), Stats::of(v)))
            .collect();
        self.added_by_frontdesk_ms = Stats::of(acc.added);
        self.vad_tail_ms = Stats::of(acc.tails);
        self.added_after_vad_ms = Stats::of(acc.after);
    }

    /// Caller → agent packets: the worker's counters over the run.
    pub fn worker_packets(
        &mut self,
        before: Option<PacketCounters>,
        after: Option<PacketCounters>,
    ) {
        if let (Some(b), Some(a)) = (before, after) {
            let received = a.received.saturating_sub(b.received);
            let lost = a.lost.saturating_sub(b.lost);
            self.packets.caller_to_agent = Some(Direction::new(received, lost));
            self.packets.worker_sent = Some(a.sent.saturating_sub(b.sent));
        }
    }
}

/// Values of the matched turns.
#[derive(Default)]
struct Matched {
    stages: [Vec<f64>; STAGES.len()],
    added: Vec<f64>,
    tails: Vec<f64>,
    after: Vec<f64>,
}

impl Matched {
    /// Fill in the caller turn from the agent's and keep the values.
    fn add(&mut self, t: &mut TurnResult, a: &AgentTurn) {
        for (hist, v) in self.stages.iter_mut().zip(a.values()) {
            hist.extend(v);
        }
        t.added_ms = match (t.v2v_ms, a.turn_latency, a.pipeline_overhead) {
            (Some(v2v), Some(lat), Some(over)) => Some(v2v - lat + over),
            _ => None,
        };
        t.added_after_vad_ms = t.added_ms.zip(t.vad_tail_ms).map(|(a, v)| a - v);
        self.added.extend(t.added_ms);
        self.tails.extend(t.added_ms.and(t.vad_tail_ms));
        self.after.extend(t.added_after_vad_ms);
        t.agent = Some(a.clone());
    }
}

fn packets(results: &[CallResult]) -> Packets {
    let mut p = Packets::default();
    let (mut received, mut lost, mut jitter) = (0, 0, vec![]);
    for l in results.iter().filter_map(|c| c.link.as_ref()) {
        received += l.packets_received;
        lost += l.packets_lost;
        p.late += l.packets_late;
        p.callers_sent += l.packets_sent;
        p.send_dropped += l.frames_send_dropped;
        p.receive_dropped += l.frames_dropped;
        if l.packets_received > 0 {
            jitter.push(l.jitter_us as f64 / 1e3);
        }
    }
    p.agent_to_caller = Direction::new(received, lost);
    p.jitter_ms = Stats::of(jitter);
    p
}
