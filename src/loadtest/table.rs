//! The report as a table for people, in the shape of `simulate`'s.

use std::fmt::Write as _;

use super::records::STAGES;
use super::report::{Report, Stats};
use super::usage::Usage;

const CALLER_ROWS: [(&str, &str); 4] = [
    ("join", "join (signal + media up)"),
    ("greeting", "dispatch → greeting"),
    ("voice_to_voice", "voice to voice"),
    ("reply", "reply length"),
];

impl Report {
    pub fn table(&self) -> String {
        let mut t = String::new();
        self.outcomes(&mut t);
        header(&mut t, "caller's clock (this process)");
        for (key, label) in CALLER_ROWS {
            if let Some(s) = self.caller_ms.get(key) {
                row(&mut t, label, s);
            }
        }
        header(&mut t, "agent's clock (worker's call records)");
        for name in STAGES {
            if let Some(s) = self.agent_ms.get(name) {
                row(&mut t, name, s);
            }
        }
        header(&mut t, "added by Frontdesk, caller's clock");
        row(
            &mut t,
            "v2v - waits - providers",
            &self.added_by_frontdesk_ms,
        );
        row(
            &mut t,
            "  VAD end past -45 dBFS (offline)",
            &self.vad_tail_ms,
        );
        row(
            &mut t,
            "  rest: media path + other",
            &self.added_after_vad_ms,
        );
        self.correlation_line(&mut t);
        self.packet_lines(&mut t);
        self.resource_lines(&mut t);
        t
    }

    fn outcomes(&self, t: &mut String) {
        let (c, u) = (&self.calls, &self.turns);
        let _ = writeln!(
            t,
            "\ncalls {} completed {} failed {} | turns {} replied {} missed {} talked over {} | wall {:.1} s",
            c.started, c.completed, c.failed, u.spoken, u.replied, u.missed, u.talked_over,
            self.wall_seconds
        );
        for (why, n) in &c.failures {
            let _ = writeln!(t, "  failed x{n}: {why}");
        }
    }

    fn correlation_line(&self, t: &mut String) {
        let c = &self.correlation;
        let _ = write!(
            t,
            "\ncorrelation (room, turn index): {} turns matched, {} without an agent record, \
             {} calls without a record, {} extra agent turns",
            c.turns_matched, c.turns_without_record, c.calls_without_record, c.extra_agent_turns
        );
        match &c.error {
            Some(e) => {
                let _ = writeln!(t, "; records unavailable: {e}");
            }
            None => t.push('\n'),
        }
    }

    fn packet_lines(&self, t: &mut String) {
        let p = &self.packets;
        let a = &p.agent_to_caller;
        let sent = p
            .worker_sent
            .map(|n| format!("; worker sent {n}"))
            .unwrap_or_default();
        let _ = writeln!(
            t,
            "packets agent→caller (callers' count): {} received, {} lost ({:.2}%), {} late{sent} | jitter p50 {:.1} ms, max {:.1} ms",
            a.received, a.lost, a.loss_pct, p.late, p.jitter_ms.p50, p.jitter_ms.max
        );
        match &p.caller_to_agent {
            Some(c) => {
                let _ = writeln!(
                    t,
                    "packets caller→agent (worker's count): {} received, {} lost ({:.2}%); callers sent {}",
                    c.received, c.lost, c.loss_pct, p.callers_sent
                );
            }
            None => {
                let _ = writeln!(
                    t,
                    "packets caller→agent: callers sent {} (no worker metrics to compare)",
                    p.callers_sent
                );
            }
        }
        if p.send_dropped + p.receive_dropped > 0 {
            let _ = writeln!(
                t,
                "caller transport drops: {} frames not sent, {} received chunks dropped",
                p.send_dropped, p.receive_dropped
            );
        }
    }

    fn resource_lines(&self, t: &mut String) {
        let r = &self.resources;
        if r.window.is_empty() {
            t.push_str("\nresources: no call was active, nothing to measure\n");
            return;
        }
        let _ = writeln!(
            t,
            "\nresources over the {} window ({:.1} s, {:.1} calls active on average)",
            r.window, r.window_seconds, r.mean_calls
        );
        let _ = writeln!(
            t,
            "{:<34}{:>8}{:>16}{:>8}{:>10}{:>10}{:>10}",
            "process", "pid", "CPU ms/call-s", "cores", "RSS idle", "steady", "MB/call"
        );
        for (name, u) in [
            ("agent worker (frontdesk dev)", &r.worker),
            ("livekit-server", &r.livekit_server),
            ("loadtest callers (this process)", &r.loadtest_callers),
        ] {
            usage_row(t, name, u.as_ref());
        }
    }
}

fn header(t: &mut String, title: &str) {
    let _ = writeln!(
        t,
        "\n{:<34}{:>8}{:>10}{:>10}{:>10}{:>10}",
        format!("{title} ms"),
        "count",
        "p50",
        "p95",
        "p99",
        "max"
    );
}

fn row(t: &mut String, name: &str, s: &Stats) {
    let _ = writeln!(
        t,
        "  {name:<32}{:>8}{:>10.1}{:>10.1}{:>10.1}{:>10.1}",
        s.count, s.p50, s.p95, s.p99, s.max
    );
}

fn usage_row(t: &mut String, name: &str, u: Option<&Usage>) {
    let _ = match u {
        Some(u) => writeln!(
            t,
            "{name:<34}{:>8}{:>16.1}{:>8.2}{:>10.1}{:>10.1}{:>10.2}",
            u.pid,
            u.cpu_ms_per_call_second,
            u.cpu_cores,
            u.rss_idle_mb,
            u.rss_steady_mb,
            u.rss_mb_per_call
        ),
        None => writeln!(t, "{name:<34}{:>8}", "n/a"),
    };
}
