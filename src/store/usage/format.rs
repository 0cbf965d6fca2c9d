//! The usage report as text for a person (`--json` is for scripts).

use std::fmt::Write;

use super::UsageReport;

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.0} ms"))
}

/// Hits over hits + misses, or "-" with neither.
fn ratio(hits: u64, misses: u64) -> String {
    let all = hits + misses;
    if all == 0 {
        return "-".into();
    }
    format!("{:.0} %", 100.0 * hits as f64 / all as f64)
}

pub fn table(r: &UsageReport) -> String {
    let (s, t) = (&r.summary, &r.turns);
    let mut out = String::new();
    let w = &r.window;
    let time = |t: &chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let _ = writeln!(
        out,
        "Usage of the calls started {} .. {}",
        time(&w.since),
        time(&w.until)
    );
    let _ = writeln!(
        out,
        "  calls {}   minutes {:.1}   turns {}   failed {}",
        s.calls, s.minutes, t.turns, r.failed_calls
    );
    let _ = writeln!(
        out,
        "  turn latency p50 {}   p95 {}",
        ms(t.turn_latency_p50_ms),
        ms(t.turn_latency_p95_ms)
    );
    let _ = writeln!(out, "End reasons (* failure)");
    for e in &s.end_reasons {
        let mark = if e.failure { "*" } else { " " };
        let _ = writeln!(out, "  {mark} {:<24} {:>8}", e.reason, e.calls);
    }
    if s.end_reasons.is_empty() {
        let _ = writeln!(out, "    (no calls)");
    }
    let _ = writeln!(out, "Tool calls               calls   errors");
    for tool in &t.tools {
        let _ = writeln!(
            out,
            "    {:<20} {:>8} {:>8}",
            tool.name, tool.calls, tool.errors
        );
    }
    providers_and_caches(&mut out, r);
    out
}

fn providers_and_caches(out: &mut String, r: &UsageReport) {
    let s = &r.summary;
    let p = &s.provider;
    let _ = writeln!(out, "Providers");
    let _ = writeln!(out, "    STT audio            {:.1} s", p.stt_audio_seconds);
    let _ = writeln!(
        out,
        "    LLM tokens           {} prompt, {} completion",
        p.prompt_tokens, p.completion_tokens
    );
    let _ = writeln!(out, "    TTS characters       {}", p.tts_characters);
    let _ = writeln!(out, "    cost                 ${:.4}", p.cost_usd);
    let c = &s.cache;
    let _ = writeln!(out, "Response caches");
    let _ = writeln!(
        out,
        "    TTS phrases          {} hits, {} misses ({}), {} characters saved",
        c.tts_hits,
        c.tts_misses,
        ratio(c.tts_hits, c.tts_misses),
        c.tts_saved_characters
    );
    let _ = writeln!(
        out,
        "    LLM answers          {} hits, {} misses ({}), {} prompt + {} completion tokens saved",
        c.llm_hits,
        c.llm_misses,
        ratio(c.llm_hits, c.llm_misses),
        c.llm_saved_prompt_tokens,
        c.llm_saved_completion_tokens
    );
    let _ = writeln!(out, "    saved cost           ${:.4}", c.saved_cost_usd);
}
