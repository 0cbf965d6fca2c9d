//! The live progress line of `simulate` on a terminal: calls running and done, turns, drops and
//! the turn latency's p95 so far. Drawn on stderr only when it is a terminal (indicatif hides it
//! otherwise, so pipes and CI logs get none of it); the run samples the process in the same loop.

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;

use super::report::Collector;
use super::series::Live;

/// Progress line refreshes per second.
const HZ: u8 = 4;
/// Process samples (CPU, memory) every this many refreshes: once a second.
const SAMPLE_EVERY: u32 = 4;

/// Watches a run: redraws the progress line and samples the process until stopped.
pub struct Monitor {
    bar: ProgressBar,
    task: JoinHandle<()>,
    collector: Arc<Collector>,
}

impl Monitor {
    /// Start watching; `show` false keeps the line hidden (tests, library callers).
    pub fn start(collector: Arc<Collector>, calls: usize, show: bool) -> Self {
        let target = if show {
            ProgressDrawTarget::stderr_with_hz(HZ)
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(calls as u64), target);
        // The template is a constant: it parses, and the default style is a fine fallback. The
        // message is cut at the terminal's width: a wrapped line would be redrawn as two.
        if let Ok(style) = ProgressStyle::with_template("{elapsed:>4} [{bar:16}] {wide_msg}") {
            bar.set_style(style.progress_chars("=> "));
        }
        collector.sample_system();
        let task = tokio::spawn(watch(Arc::clone(&collector), bar.clone(), calls));
        Self {
            bar,
            task,
            collector,
        }
    }

    /// Stop, take the last sample and clear the line (the table follows on stdout).
    pub fn finish(self) {
        self.task.abort();
        self.collector.sample_system();
        self.bar.finish_and_clear();
    }
}

async fn watch(collector: Arc<Collector>, bar: ProgressBar, calls: usize) {
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / u64::from(HZ)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The interval's first tick is immediate: the start was sampled already.
    tick.tick().await;
    for n in 1u32.. {
        tick.tick().await;
        if n % SAMPLE_EVERY == 0 {
            collector.sample_system();
        }
        if !bar.is_hidden() {
            let live = collector.live();
            bar.set_position(live.ended as u64);
            bar.set_message(message(&live, calls));
        }
    }
}

/// "3 running, 17/20 done | 214 turns | 0 drops | turn p95 1.84 s".
pub fn message(live: &Live, calls: usize) -> String {
    let running = live.started.saturating_sub(live.ended);
    let p95 = live
        .turn_p95
        .map_or_else(|| "-".to_string(), |d| format!("{:.2} s", d.as_secs_f64()));
    format!(
        "{running} running, {}/{calls} done | {} turns | {} drops | turn p95 {p95}",
        live.ended, live.turns, live.drops
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_calls_turns_drops_and_p95() {
        let live = Live {
            started: 20,
            ended: 17,
            turns: 214,
            drops: 2,
            turn_p95: Some(Duration::from_millis(1840)),
        };
        assert_eq!(
            message(&live, 20),
            "3 running, 17/20 done | 214 turns | 2 drops | turn p95 1.84 s"
        );
        let start = message(&Live::default(), 5);
        assert_eq!(
            start,
            "0 running, 0/5 done | 0 turns | 0 drops | turn p95 -"
        );
    }
}
