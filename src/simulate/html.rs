//! `simulate --html`: the run as one self-contained page (inline CSS and SVG charts drawn by
//! plotters; no script, nothing fetched): parameters, per-stage latency histograms, latency,
//! calls, CPU and memory over time, drops and faults, and the scenarios when the run has them.

use std::fmt::Write as _;

use plotters::prelude::*;
use serde_json::Value;

use super::report::{Report, STAGES, TURN_STAGES};
use super::series::Bin;

#[derive(Debug, thiserror::Error)]
pub enum HtmlError {
    #[error("drawing the {chart} chart: {reason}")]
    Chart { chart: String, reason: String },
}

impl HtmlError {
    /// Drawing into a string fails the same way every time.
    pub fn is_retriable(&self) -> bool {
        false
    }
}

const SIZE: (u32, u32) = (560, 300);
const P50: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const P95: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const BARS: RGBColor = RGBColor(0x2c, 0x7f, 0xb8);
const GRID: RGBColor = RGBColor(0xf2, 0xf2, 0xf2);
const FONT: &str = "sans-serif";

/// The page.
pub fn render(r: &Report) -> Result<String, HtmlError> {
    let mut page = String::with_capacity(64 * 1024);
    page.push_str(HEAD);
    let _ = write!(
        page,
        "<h1>Frontdesk simulation</h1>\n<p class=\"lede\">{} calls, {} completed, {} turns in {:.1} s of wall time</p>\n",
        r.calls, r.completed, r.turns, r.wall_seconds
    );
    page.push_str(&summary(r));
    page.push_str(&parameters(r));
    page.push_str(&stages(r)?);
    page.push_str(&over_time(r)?);
    page.push_str(&resources(r)?);
    page.push_str(&drops_and_faults(r));
    page.push_str(&scenarios(r));
    page.push_str("</body>\n</html>\n");
    Ok(page)
}

const HEAD: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Frontdesk simulation report</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; padding: 0 1rem; }
h1 { margin-bottom: 0.2rem; }
.lede { color: #555; margin-top: 0; }
section { margin: 2rem 0; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { padding: 0.25rem 0.7rem; border-bottom: 1px solid #ddd; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.grid { display: flex; flex-wrap: wrap; gap: 1rem; }
figure.chart { margin: 0; border: 1px solid #ddd; padding: 0.4rem; background: #fff; }
figcaption { font-size: 0.85rem; color: #555; }
.empty { color: #999; font-style: italic; }
</style>
</head>
<body>
"#;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A two-column table of (name, value) rows.
fn table(id: &str, title: &str, rows: &[(String, String)]) -> String {
    let mut t = format!("<section id=\"{id}\">\n<h2>{}</h2>\n<table>\n", esc(title));
    for (k, v) in rows {
        let _ = writeln!(
            t,
            "<tr><th>{}</th><td class=\"n\">{}</td></tr>",
            esc(k),
            esc(v)
        );
    }
    t.push_str("</table>\n</section>\n");
    t
}

fn summary(r: &Report) -> String {
    let rows = [
        ("calls", r.calls.to_string()),
        ("completed", r.completed.to_string()),
        ("turns", r.turns.to_string()),
        ("replies heard", r.replies_heard.to_string()),
        ("missed replies", r.missed_replies.to_string()),
        ("barge-ins", r.barge_ins.to_string()),
        ("wall", format!("{:.1} s", r.wall_seconds)),
        (
            "CPU",
            format!(
                "{:.1} s ({:.0}% of one core, {:.3} ms per call-second)",
                r.cpu_seconds,
                r.cpu_utilisation * 100.0,
                r.cpu_ms_per_call_second
            ),
        ),
        ("host steal", super::report::steal_text(r.host_steal)),
        (
            "peak RSS",
            format!(
                "{:.1} MB ({:.0} KB per call)",
                r.peak_rss_mb, r.peak_rss_per_call_kb
            ),
        ),
        (
            "provider cost",
            format!(
                "${:.4} (${:.4} per call-minute)",
                r.cost_usd, r.cost_per_call_minute_usd
            ),
        ),
        (
            "response caches",
            super::report::cache_line(&r.cache)
                .trim()
                .trim_start_matches("cache: ")
                .to_string(),
        ),
    ];
    let rows: Vec<_> = rows.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    table("summary", "Summary", &rows)
}

fn parameters(r: &Report) -> String {
    let rows: Vec<_> = r
        .settings
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    table("parameters", "Run parameters", &rows)
}

fn stages(r: &Report) -> Result<String, HtmlError> {
    let mut s = String::from(
        "<section id=\"stages\">\n<h2>Latency per stage</h2>\n<table>\n<tr><th>stage (ms)</th><th>count</th><th>p50</th><th>p95</th><th>p99</th><th>max</th></tr>\n",
    );
    for name in STAGES {
        if let Some(st) = r.stages.get(name.trim()) {
            let _ = writeln!(
                s,
                "<tr><th>{}</th><td class=\"n\">{}</td><td class=\"n\">{:.2}</td><td class=\"n\">{:.2}</td><td class=\"n\">{:.2}</td><td class=\"n\">{:.2}</td></tr>",
                esc(name.trim()), st.count, st.p50_ms, st.p95_ms, st.p99_ms, st.max_ms
            );
        }
    }
    s.push_str("</table>\n<div class=\"grid\">\n");
    for stage in TURN_STAGES {
        let bins = r.histograms.get(stage).map_or(&[][..], Vec::as_slice);
        let points = bins.iter().map(|b| b.count).sum::<u64>();
        let svg = histogram(stage, bins)?;
        s.push_str(&figure("histogram", stage, points as usize, &svg, stage));
    }
    s.push_str("</div>\n</section>\n");
    Ok(s)
}

fn over_time(r: &Report) -> Result<String, HtmlError> {
    let mid = |p: &super::series::TimePoint| p.t_s + p.width_s / 2.0;
    let p50: Vec<(f64, f64)> = (r.timeline.iter())
        .filter_map(|p| Some((mid(p), p.turn_p50_ms?)))
        .collect();
    let p95: Vec<(f64, f64)> = (r.timeline.iter())
        .filter_map(|p| Some((mid(p), p.turn_p95_ms?)))
        .collect();
    let calls: Vec<(f64, f64)> = (r.timeline.iter())
        .map(|p| (p.t_s + p.width_s, p.calls_active as f64))
        .collect();
    let latency = lines(
        "turn latency (ms)",
        &[("p50", P50, &p50), ("p95", P95, &p95)],
    )?;
    let active = lines("calls in progress", &[("calls", BARS, &calls)])?;
    let mut s = String::from("<section id=\"latency-over-time\">\n<h2>Turn latency over time</h2>\n<div class=\"grid\">\n");
    s.push_str(&figure(
        "latency",
        "turn_latency",
        p50.len(),
        &latency,
        "voice-to-voice p50 and p95 of the turns completed in each time bucket",
    ));
    s.push_str(&figure(
        "calls",
        "calls_active",
        calls.len(),
        &active,
        "calls in progress",
    ));
    s.push_str("</div>\n</section>\n");
    Ok(s)
}

fn resources(r: &Report) -> Result<String, HtmlError> {
    let at = |p: &super::series::TimePoint| p.t_s + p.width_s / 2.0;
    let cpu: Vec<(f64, f64)> = (r.timeline.iter())
        .filter_map(|p| Some((at(p), p.cpu_percent?)))
        .collect();
    let rss: Vec<(f64, f64)> = (r.timeline.iter())
        .filter_map(|p| Some((at(p), p.rss_mb?)))
        .collect();
    let mut s = String::from(
        "<section id=\"resources\">\n<h2>CPU and memory over time</h2>\n<div class=\"grid\">\n",
    );
    let cpu_svg = lines("CPU (% of one core)", &[("cpu", P95, &cpu)])?;
    s.push_str(&figure(
        "cpu",
        "cpu_percent",
        cpu.len(),
        &cpu_svg,
        "process CPU, % of one core",
    ));
    let rss_svg = lines("resident memory (MB)", &[("rss", P50, &rss)])?;
    s.push_str(&figure(
        "memory",
        "rss_mb",
        rss.len(),
        &rss_svg,
        "resident memory, MB",
    ));
    s.push_str("</div>\n</section>\n");
    Ok(s)
}

fn drops_and_faults(r: &Report) -> String {
    let mut rows: Vec<(String, String)> = r
        .edge_drops
        .iter()
        .map(|(edge, n)| (format!("overflow drops: {edge}"), n.to_string()))
        .collect();
    let more = [
        ("flushed by barge-in", r.flushed),
        ("caller frames refused", r.caller_frames_refused),
        ("missed replies", r.missed_replies),
        ("actor restarts", r.restarts),
        ("call records dropped", r.records_dropped),
    ];
    rows.extend(more.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let named = [("fault injected", &r.faults), ("failover", &r.failovers)];
    for (what, map) in named {
        rows.extend(
            map.iter()
                .map(|(k, v)| (format!("{what}: {k}"), v.to_string())),
        );
    }
    rows.extend((r.end_reasons.iter()).map(|(k, v)| (format!("calls ended: {k}"), v.to_string())));
    table("drops-faults", "Drops and faults", &rows)
}

/// The run's scenario outcomes, when the report has them: rows by scenario name, any fields.
fn scenarios(r: &Report) -> String {
    let json = serde_json::to_value(r).unwrap_or(Value::Null);
    let rows: Vec<(&String, &serde_json::Map<String, Value>)> = match json.get("scenarios") {
        Some(Value::Object(o)) => o
            .iter()
            .filter_map(|(k, v)| Some((k, v.as_object()?)))
            .collect(),
        _ => vec![],
    };
    let Some((_, first)) = rows.first() else {
        return String::new();
    };
    let cols: Vec<&String> = first.keys().collect();
    let mut s = String::from(
        "<section id=\"scenarios\">\n<h2>Scenarios</h2>\n<table>\n<tr><th>scenario</th>",
    );
    for c in &cols {
        let _ = write!(s, "<th>{}</th>", esc(c));
    }
    s.push_str("</tr>\n");
    for (name, row) in &rows {
        let _ = write!(s, "<tr><th>{}</th>", esc(name));
        for c in &cols {
            let cell = row.get(*c).map_or_else(String::new, cell);
            let _ = write!(s, "<td>{}</td>", esc(&cell));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n</section>\n");
    s
}

/// A table cell: text as it is, a map as "key value, ..." (tools called, reasons missed).
fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| format!("{k} {}", cell(v)))
            .collect::<Vec<_>>()
            .join(", "),
        v => v.to_string(),
    }
}

/// A chart in its figure; `points` (the data it shows) is in the DOM for tests and scripts.
fn figure(kind: &str, series: &str, points: usize, svg: &str, caption: &str) -> String {
    let empty = if points == 0 {
        "<p class=\"empty\">no data</p>"
    } else {
        ""
    };
    format!(
        "<figure class=\"chart\" data-chart=\"{kind}\" data-series=\"{}\" data-points=\"{points}\">\n{svg}\n{empty}<figcaption>{}</figcaption>\n</figure>\n",
        esc(series),
        esc(caption)
    )
}

fn chart_error(chart: &str) -> impl Fn(&dyn std::fmt::Display) -> HtmlError + '_ {
    move |e| HtmlError::Chart {
        chart: chart.to_string(),
        reason: e.to_string(),
    }
}

/// A stage's latency histogram: bars over its bins.
fn histogram(stage: &str, bins: &[Bin]) -> Result<String, HtmlError> {
    let err = chart_error(stage);
    let x0 = bins.first().map_or(0.0, |b| b.lo_ms);
    let x1 = bins.last().map_or(1.0, |b| b.hi_ms).max(x0 + 0.001);
    let top = bins.iter().map(|b| b.count).max().unwrap_or(0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(stage, (FONT, 16))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(x0..x1, 0u64..(top + top / 10 + 1))
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("ms")
            .y_desc("turns")
            .label_style((FONT, 11))
            .draw()
            .map_err(|e| err(&e))?;
        let bars = bins
            .iter()
            .filter(|b| b.count > 0)
            .map(|b| Rectangle::new([(b.lo_ms, 0), (b.hi_ms, b.count)], BARS.mix(0.8).filled()));
        chart.draw_series(bars).map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

type Line<'a> = (&'a str, RGBColor, &'a [(f64, f64)]);

/// Lines (with a dot at each point) over the run's time.
fn lines(title: &str, series: &[Line<'_>]) -> Result<String, HtmlError> {
    let err = chart_error(title);
    let all = || series.iter().flat_map(|(_, _, p)| p.iter());
    let x1 = all().map(|p| p.0).fold(1.0, f64::max);
    // Headroom above the highest point for the legend.
    let y1 = all().map(|p| p.1).fold(0.0, f64::max).max(1.0) * 1.25;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 16))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..x1, 0.0..y1)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("seconds into the run")
            .light_line_style(GRID)
            .label_style((FONT, 11))
            .draw()
            .map_err(|e| err(&e))?;
        for &(name, color, points) in series {
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|e| err(&e))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
            let dots = points.iter().map(|&p| Circle::new(p, 2, color.filled()));
            chart.draw_series(dots).map_err(|e| err(&e))?;
        }
        if series.len() > 1 {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font((FONT, 12))
                .draw()
                .map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::simulate::series::TimePoint;

    fn report() -> Report {
        let mut r = Report {
            calls: 2,
            completed: 2,
            turns: 3,
            ..Default::default()
        };
        r.settings.insert("calls".into(), "2".into());
        r.settings.insert("note".into(), "<script>".into());
        r.histograms.insert(
            "turn_latency".into(),
            vec![
                Bin {
                    lo_ms: 900.0,
                    hi_ms: 1000.0,
                    count: 2,
                },
                Bin {
                    lo_ms: 1000.0,
                    hi_ms: 1100.0,
                    count: 1,
                },
            ],
        );
        r.timeline = (0..3)
            .map(|i| TimePoint {
                t_s: f64::from(i),
                width_s: 1.0,
                turns: 1,
                turn_p50_ms: Some(950.0),
                turn_p95_ms: Some(1050.0),
                calls_active: 2,
                cpu_percent: Some(12.0),
                rss_mb: Some(30.0),
            })
            .collect();
        r.faults.insert("openai/rate_limited".into(), 4);
        r
    }

    #[test]
    fn the_page_has_every_section_and_its_charts() {
        let page = render(&report()).unwrap();
        for id in [
            "summary",
            "parameters",
            "stages",
            "latency-over-time",
            "resources",
            "drops-faults",
        ] {
            assert!(page.contains(&format!("<section id=\"{id}\">")), "{id}");
        }
        assert_eq!(page.matches("<svg").count(), TURN_STAGES.len() + 4);
        assert!(page.contains("data-series=\"turn_latency\" data-points=\"3\""));
        assert!(page.contains("fault injected: openai/rate_limited"));
        // Escaped, and nothing fetched: no script, no external reference.
        assert!(page.contains("&lt;script&gt;") && !page.contains("<script"));
        assert!(!page.contains("src=\"http") && !page.contains("href=\"http"));
    }

    #[test]
    fn scenarios_get_a_row_each() {
        let mut r = report();
        let row = crate::simulate::scenario::ScenarioRow {
            calls: 2,
            goal_reached: 1,
            goal: "booked",
            tools: [("book_appointment".to_string(), 2)].into(),
            misses: [("nothing was booked".to_string(), 1)].into(),
        };
        r.scenarios.insert("book".into(), row);
        let page = render(&r).unwrap();
        assert!(page.contains("<section id=\"scenarios\">"));
        assert!(page.contains("<tr><th>book</th>"), "{page}");
        assert!(page.contains("<td>book_appointment 2</td>"), "{page}");
        assert!(page.contains("<td>nothing was booked 1</td>"), "{page}");
    }

    #[test]
    fn an_empty_run_still_renders() {
        let page = render(&Report::default()).unwrap();
        assert!(page.contains("no data"));
        assert!(!page.contains("id=\"scenarios\""));
    }
}
