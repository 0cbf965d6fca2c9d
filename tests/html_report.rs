//! `simulate --html` opened in a real headless browser (Chromium): the page loads from the file
//! alone, its DOM has every section with charts that carry data, and its screenshot shows them
//! (not a blank page). Without Chromium the test prints `SKIPPED: ...`, unless
//! `FRONTDESK_REQUIRE_E2E=1` (CI, which installs it), where it fails. `FRONTDESK_KEEP_SCREENSHOT=
//! PATH` keeps the screenshot, to look at.
#![allow(clippy::disallowed_methods)] // tests may block: files, fixtures, std channels
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

const BROWSERS: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

fn browser() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| BROWSERS.map(|b| dir.join(b)))
        .find(|p| p.is_file())
}

/// Skips loudly (straight to stderr: libtest swallows eprintln! of a passing test), or fails
/// under FRONTDESK_REQUIRE_E2E=1.
fn skip(why: &str) {
    let required = matches!(
        std::env::var("FRONTDESK_REQUIRE_E2E").as_deref(),
        Ok("1" | "true" | "yes")
    );
    assert!(!required, "{why}; FRONTDESK_REQUIRE_E2E=1 forbids skipping");
    let _ = writeln!(std::io::stderr(), "SKIPPED: html_report: {why}");
}

/// A short simulation on the emulators writing the HTML and JSON reports into `dir`.
fn simulate(dir: &Path) -> (PathBuf, serde_json::Value) {
    let html = dir.join("report.html");
    let json = dir.join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(dir)
        // Long enough for a few turns per call: the charts over time get several points.
        .args(["simulate", "--calls", "4", "--duration", "25s"])
        .args(["--ramp", "2s"])
        .arg("--html")
        .arg(&html)
        .arg("--report")
        .arg(&json)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("HTML report written to"), "{text}");
    let report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    (html, report)
}

fn chromium(browser: &Path, profile: &Path, args: &[&str], page: &Path) -> String {
    let out = Command::new(browser)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{browser:?} {args:?}: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Each chart's figure: (kind, series, points, its markup).
fn figures(dom: &str) -> Vec<(String, String, u64, String)> {
    let attr = |tag: &str, name: &str| -> String {
        let key = format!("{name}=\"");
        let rest = tag.split_once(key.as_str()).map_or("", |(_, r)| r);
        rest.split('"').next().unwrap_or("").to_string()
    };
    dom.split("<figure ")
        .skip(1)
        .map(|f| {
            let body = f.split("</figure>").next().unwrap_or("");
            let tag = body.split('>').next().unwrap_or("");
            let points = attr(tag, "data-points").parse().unwrap_or(0);
            (
                attr(tag, "data-chart"),
                attr(tag, "data-series"),
                points,
                body.to_string(),
            )
        })
        .collect()
}

#[test]
fn the_html_report_renders_in_a_headless_browser() {
    let Some(browser) = browser() else {
        return skip("no chromium on PATH (apt-get install chromium)");
    };
    let dir = tempfile::tempdir().unwrap();
    let (page, report) = simulate(dir.path());
    let profile = dir.path().join("profile");

    // The DOM as the browser built it from the file alone.
    let dom = chromium(&browser, &profile, &["--dump-dom"], &page);
    for id in [
        "summary",
        "parameters",
        "stages",
        "latency-over-time",
        "resources",
        "drops-faults",
    ] {
        assert!(dom.contains(&format!("id=\"{id}\"")), "section {id}: {dom}");
    }
    let has_scenarios = report.get("scenarios").is_some_and(|s| {
        s.as_array().is_some_and(|a| !a.is_empty()) || s.as_object().is_some_and(|o| !o.is_empty())
    });
    assert_eq!(dom.contains("id=\"scenarios\""), has_scenarios);
    let figs = figures(&dom);
    let stages = [
        "transcription_delay",
        "end_of_turn_delay",
        "llm_ttft",
        "tts_ttfb",
        "turn_latency",
        "pipeline_overhead",
    ];
    for stage in stages {
        let f = figs.iter().find(|f| f.0 == "histogram" && f.1 == stage);
        let (_, _, points, body) = f.unwrap_or_else(|| panic!("no {stage} histogram: {dom}"));
        assert!(*points > 0, "{stage}: no data");
        assert!(
            body.contains("<svg") && body.contains("<rect"),
            "{stage}: no bars"
        );
    }
    for kind in ["latency", "calls", "cpu", "memory"] {
        let f = figs.iter().find(|f| f.0 == kind);
        let (_, _, points, body) = f.unwrap_or_else(|| panic!("no {kind} chart: {dom}"));
        assert!(*points >= 2, "{kind}: {points} points");
        assert!(body.contains("<polyline"), "{kind}: no line");
    }
    assert!(
        dom.contains("turn_latency") && dom.contains("caller_hung_up"),
        "{dom}"
    );

    // What a person sees: a screenshot with the charts' colours on it, not a blank page.
    let shot = dir.path().join("shot.png");
    let arg = format!("--screenshot={}", shot.display());
    chromium(
        &browser,
        &profile,
        &[&arg, "--window-size=1280,3400", "--hide-scrollbars"],
        &page,
    );
    let (w, h, pixels) = decode(&shot);
    assert_eq!((w, h), (1280, 3400));
    let total = pixels.len() as f64;
    let ink = pixels
        .iter()
        .filter(|p| p.iter().map(|&c| u32::from(c)).sum::<u32>() < 3 * 235)
        .count();
    let blue = pixels
        .iter()
        .filter(|p| i32::from(p[2]) - i32::from(p[0]) > 60)
        .count();
    let red = pixels
        .iter()
        .filter(|p| i32::from(p[0]) - i32::from(p[1]) > 100)
        .count();
    assert!(
        ink as f64 / total > 0.02,
        "mostly blank: {ink} of {total} pixels"
    );
    assert!(blue > 2_000, "histogram bars and lines: {blue} blue pixels");
    assert!(red > 200, "p95 and CPU lines: {red} red pixels");
    if let Some(keep) = std::env::var_os("FRONTDESK_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}

/// The screenshot's size and RGB pixels.
fn decode(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut decoder = png::Decoder::new(file);
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|c| match c {
            [r, g, b, ..] => [*r, *g, *b],
            [v, ..] => [*v, *v, *v],
            [] => [0, 0, 0],
        })
        .collect();
    (info.width, info.height, pixels)
}
