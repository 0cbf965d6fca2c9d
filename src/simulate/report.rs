//! Aggregation of simulated calls: per-stage latency percentiles, outcomes, drops, restarts, CPU
//! and memory, printed as a table and serialised as JSON.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use frontdesk_actors::call::shared::lock;
use frontdesk_actors::call::{CallObserver, CallOutcome, EndReason, TurnReport};
use hdrhistogram::Histogram;
use serde::Serialize;

use super::series::{self, Bin, Live, Series, TimePoint};

/// The per-turn latencies a call record keeps (the `turns` table), in table order.
pub const TURN_STAGES: [&str; 6] = [
    "transcription_delay",
    "end_of_turn_delay",
    "llm_ttft",
    "tts_ttfb",
    "turn_latency",
    "pipeline_overhead",
];

/// The simulation's table: the recorded stages, then where the overhead went.
pub const STAGES: [&str; 11] = [
    TURN_STAGES[0],
    TURN_STAGES[1],
    TURN_STAGES[2],
    TURN_STAGES[3],
    TURN_STAGES[4],
    TURN_STAGES[5],
    "  eot_lag",
    "  reply_start_lag",
    "  tts_start_lag",
    "  playout_lag",
    // Part of the overhead too: the turn's clock starts when the room delivered the frame.
    "  input_lag",
];

/// Index of `turn_latency` in [`STAGES`].
const TURN_LATENCY: usize = 4;

/// Collects turn reports and call outcomes from every call (cheap, non-blocking for long).
pub struct Collector {
    hist: Mutex<Vec<Histogram<u64>>>,
    outcomes: Mutex<Vec<CallOutcome>>,
    /// Over time, for the progress line and the HTML report.
    series: Mutex<Series>,
    began: Instant,
}

impl Collector {
    pub fn new() -> anyhow::Result<Self> {
        // Microseconds, up to 60 s, 3 significant digits.
        let hist = (0..STAGES.len())
            .map(|_| Histogram::new_with_bounds(1, 60_000_000, 3))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            hist: Mutex::new(hist),
            outcomes: Mutex::new(vec![]),
            series: Mutex::new(Series::default()),
            began: Instant::now(),
        })
    }

    pub fn call_started(&self) {
        lock(&self.series).call_started(self.began.elapsed());
    }

    /// Record the process's CPU time and memory now.
    pub fn sample_system(&self) {
        let s = super::sysstat::sample(self.began.elapsed());
        lock(&self.series).sample(s);
    }

    /// Calls, turns, drops and the turn latency's p95 so far.
    pub fn live(&self) -> Live {
        let p95 = {
            let hist = lock(&self.hist);
            hist.get(TURN_LATENCY)
                .filter(|h| !h.is_empty())
                .map(|h| Duration::from_micros(h.value_at_quantile(0.95)))
        };
        lock(&self.series).live(p95)
    }

    /// The run so far in time buckets.
    pub fn timeline(&self) -> Vec<TimePoint> {
        lock(&self.series).timeline(self.began.elapsed())
    }

    /// Latency histograms of the recorded turn stages.
    pub fn histograms(&self) -> BTreeMap<String, Vec<Bin>> {
        let hist = lock(&self.hist);
        TURN_STAGES
            .iter()
            .zip(hist.iter())
            .map(|(name, h)| (name.to_string(), series::bins(h)))
            .collect()
    }

    pub fn stages(&self) -> BTreeMap<String, StageStats> {
        let hist = lock(&self.hist);
        STAGES
            .iter()
            .zip(hist.iter())
            .map(|(name, h)| (name.trim().to_string(), StageStats::of(h)))
            .collect()
    }

    pub fn outcomes(&self) -> Vec<CallOutcome> {
        lock(&self.outcomes).clone()
    }
}

impl CallObserver for Collector {
    fn turn_completed(&self, _call_id: &str, r: &TurnReport) {
        let values = [
            r.transcription_delay,
            r.end_of_turn_delay,
            r.llm_ttft,
            r.tts_ttfb,
            r.turn_latency,
            r.pipeline_overhead,
            r.eot_lag,
            r.reply_start_lag,
            r.tts_start_lag,
            r.playout_lag,
            r.input_lag,
        ];
        {
            let mut hist = lock(&self.hist);
            for (h, v) in hist.iter_mut().zip(values) {
                if let Some(d) = v {
                    h.saturating_record((d.as_micros() as u64).max(1));
                }
            }
        }
        lock(&self.series).turn(self.began.elapsed(), r.turn_latency);
    }

    fn call_ended(&self, outcome: &CallOutcome) {
        let drops = outcome.edges.values().map(|e| e.overflow).sum();
        lock(&self.series).call_ended(self.began.elapsed(), drops);
        lock(&self.outcomes).push(outcome.clone());
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct StageStats {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl StageStats {
    fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1e3;
        Self {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub calls: usize,
    pub completed: usize,
    pub end_reasons: BTreeMap<String, usize>,
    pub turns: u64,
    pub lines_spoken: u64,
    pub replies_heard: u64,
    pub missed_replies: u64,
    pub barge_ins: u64,
    pub stages: BTreeMap<String, StageStats>,
    /// Overflow drops per edge over all calls.
    pub edge_drops: BTreeMap<String, u64>,
    /// Items discarded by barge-in flushes.
    pub flushed: u64,
    pub caller_frames_refused: u64,
    pub restarts: u64,
    /// Faults the emulators injected, by "provider/kind".
    pub faults: BTreeMap<String, u64>,
    /// Times a primary provider was declared unhealthy (with `--fallback`), by kind.
    pub failovers: BTreeMap<String, u64>,
    pub records_dropped: u64,
    /// Provider cost at the configured prices, over all calls, and per minute of call.
    pub cost_usd: f64,
    pub call_minutes: f64,
    pub cost_per_call_minute_usd: f64,
    pub wall_seconds: f64,
    pub cpu_seconds: f64,
    /// CPU per second of call audio, per call.
    pub cpu_ms_per_call_second: f64,
    pub cpu_utilisation: f64,
    /// Share of the machine's CPU time the hypervisor gave to other guests during the run.
    pub host_steal: Option<f64>,
    pub peak_rss_mb: f64,
    pub baseline_rss_mb: f64,
    pub peak_rss_per_call_kb: f64,
    pub caller_max_lateness_ms: f64,
    pub caller_late_ticks: u64,
    pub settings: BTreeMap<String, String>,
    /// Per scenario (`--scenario`): calls, goals reached (checked in the database), tools by name.
    pub scenarios: BTreeMap<String, super::scenario::ScenarioRow>,
    /// The run over time (turn latency, calls, CPU, memory), for the HTML report.
    pub timeline: Vec<TimePoint>,
    /// Latency histograms of the recorded turn stages.
    pub histograms: BTreeMap<String, Vec<Bin>>,
    /// What the response caches saved over all calls (from each call's usage).
    pub cache: frontdesk_actors::cache::CacheSavings,
}

impl Report {
    pub fn add_outcome(&mut self, o: &CallOutcome) {
        *self
            .end_reasons
            .entry(o.reason.label().to_string())
            .or_default() += 1;
        if o.reason == EndReason::CallerHungUp {
            self.completed += 1;
        }
        self.turns += u64::from(o.turns);
        self.barge_ins += u64::from(o.barge_ins);
        self.restarts += o.restarts.values().map(|&n| u64::from(n)).sum::<u64>();
        self.records_dropped += o.records_dropped;
        self.cost_usd += o.cost_usd;
        add_savings(&mut self.cache, &o.usage.cache);
        self.call_minutes += o.duration.as_secs_f64() / 60.0;
        if self.call_minutes > 0.0 {
            self.cost_per_call_minute_usd = self.cost_usd / self.call_minutes;
        }
        for (edge, s) in &o.edges {
            *self.edge_drops.entry(edge.to_string()).or_default() += s.overflow;
            self.flushed += s.flushed;
        }
    }

    pub fn all_calls_completed(&self) -> bool {
        self.completed == self.calls
    }

    pub fn table(&self) -> String {
        let mut t = String::new();
        t.push_str(&format!(
            "\n{:<22}{:>8}{:>10}{:>10}{:>10}{:>10}\n",
            "stage (ms)", "count", "p50", "p95", "p99", "max"
        ));
        for name in STAGES {
            if let Some(s) = self.stages.get(name.trim()) {
                t.push_str(&format!(
                    "{name:<22}{:>8}{:>10.2}{:>10.2}{:>10.2}{:>10.2}\n",
                    s.count, s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms
                ));
            }
        }
        t.push_str(&format!(
            "\ncalls {} completed {} | turns {} replies {} missed {} barge-ins {}\n",
            self.calls,
            self.completed,
            self.turns,
            self.replies_heard,
            self.missed_replies,
            self.barge_ins
        ));
        t.push_str(&format!("end reasons {:?}\n", self.end_reasons));
        t.push_str(&format!(
            "provider cost ${:.4} over {:.1} call-minutes = ${:.4} per call-minute (configured prices)\n",
            self.cost_usd, self.call_minutes, self.cost_per_call_minute_usd
        ));
        t.push_str(&cache_line(&self.cache));
        if !self.faults.is_empty() {
            t.push_str(&format!("faults injected {:?}\n", self.faults));
        }
        if !self.failovers.is_empty() {
            t.push_str(&format!("failovers {:?}\n", self.failovers));
        }
        t.push_str(&format!(
            "drops {:?} flushed {} refused caller frames {} | restarts {} | records dropped {}\n",
            self.edge_drops,
            self.flushed,
            self.caller_frames_refused,
            self.restarts,
            self.records_dropped
        ));
        t.push_str(&format!(
            "wall {:.1}s cpu {:.1}s ({:.0}% of one core, {:.3} ms CPU per call-second) | peak RSS {:.1} MB ({:.0} KB/call above the baseline of {:.1} MB)\n",
            self.wall_seconds, self.cpu_seconds, self.cpu_utilisation * 100.0, self.cpu_ms_per_call_second, self.peak_rss_mb, self.peak_rss_per_call_kb, self.baseline_rss_mb
        ));
        t.push_str(&format!("host steal {}\n", steal_text(self.host_steal)));
        if cfg!(debug_assertions) {
            // The README's main job runs the dev build; its CPU is not what production spends.
            t.push_str("(dev build: CPU and memory are several times a release build's; use --release for performance figures)\n");
        }
        t.push_str(&format!(
            "caller pacing: max lateness {:.1} ms, {} ticks late by more than a frame\n",
            self.caller_max_lateness_ms, self.caller_late_ticks
        ));
        t.push_str(&super::scenario::table(&self.scenarios));
        t
    }
}

/// Sum of the caches' savings.
fn add_savings(
    total: &mut frontdesk_actors::cache::CacheSavings,
    c: &frontdesk_actors::cache::CacheSavings,
) {
    total.tts_hits += c.tts_hits;
    total.tts_misses += c.tts_misses;
    total.tts_saved_characters += c.tts_saved_characters;
    total.llm_hits += c.llm_hits;
    total.llm_misses += c.llm_misses;
    total.llm_saved_prompt_tokens += c.llm_saved_prompt_tokens;
    total.llm_saved_completion_tokens += c.llm_saved_completion_tokens;
    total.saved_cost_usd += c.saved_cost_usd;
}

/// The cache section of the table: hits and misses per cache, what they saved.
pub fn cache_line(c: &frontdesk_actors::cache::CacheSavings) -> String {
    format!(
        "cache: tts {} hits {} misses ({} chars saved) | llm {} hits {} misses ({} prompt + {} completion tokens saved) | saved ${:.4}\n",
        c.tts_hits,
        c.tts_misses,
        c.tts_saved_characters,
        c.llm_hits,
        c.llm_misses,
        c.llm_saved_prompt_tokens,
        c.llm_saved_completion_tokens,
        c.saved_cost_usd
    )
}

/// Above this share of stolen CPU time the run's latency and CPU figures say more about the
/// host's other guests than about the calls (measured here: 500 wire calls' overhead p99 went
/// from 1.4 ms at no steal to 10 ms at 17 %).
pub const STEAL_WARN: f64 = 0.02;

/// How much of the machine the hypervisor took during the run, with a warning when it matters
/// (the text report's "host steal" line and the HTML summary's row).
pub fn steal_text(steal: Option<f64>) -> String {
    match steal {
        None => "unknown (no /proc/stat)".into(),
        Some(s) if s > STEAL_WARN => format!(
            "{:.1}% of the machine's CPU time: other guests ran on these cores, so latency and CPU figures are not comparable with a quiet host's",
            s * 100.0
        ),
        Some(s) => format!("{:.1}% of the machine's CPU time", s * 100.0),
    }
}

pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::steal_text;

    #[test]
    fn steal_above_the_threshold_warns() {
        assert_eq!(steal_text(Some(0.004)), "0.4% of the machine's CPU time");
        let busy = steal_text(Some(0.17));
        assert!(busy.starts_with("17.0% "), "{busy}");
        assert!(busy.contains("not comparable"), "{busy}");
        assert!(steal_text(None).contains("unknown"));
    }
}
