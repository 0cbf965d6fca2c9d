//! `simulate`'s argument checks, as clap value parsers: a bad value is refused with a plain
//! message before anything starts (not after a 30 s run, or never).

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A count of calls: 1 or more.
pub fn calls(s: &str) -> Result<usize, String> {
    let n: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))?;
    if n == 0 {
        return Err("must be at least 1".into());
    }
    Ok(n)
}

/// A duration longer than zero (`30s`, `2m`).
pub fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("must be longer than 0s".into());
    }
    Ok(d)
}

/// A share between 0 and 1 (of requests, connections).
pub fn share(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("must be between 0 and 1 (a share), not {v}"));
    }
    Ok(v)
}

/// A file to write at the end of the run: its folder must exist and be writable now.
pub fn output_file(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    if s.trim().is_empty() {
        return Err("the path is empty".into());
    }
    if path.is_dir() {
        return Err(format!("{s} is a folder, not a file"));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(format!("the folder {} does not exist", dir.display()));
    }
    writable(&path, dir)?;
    Ok(path)
}

/// Try it: permission bits do not tell (root, read-only mounts, ACLs).
#[allow(clippy::disallowed_methods)] // argument check at startup, before any call runs
fn writable(path: &Path, dir: &Path) -> Result<(), String> {
    if path.exists() {
        return OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
            .map_err(|e| format!("cannot write {}: {e}", path.display()));
    }
    let probe = dir.join(format!(".frontdesk-write-check-{}", std::process::id()));
    match OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!("cannot write in the folder {}: {e}", dir.display())),
    }
}

/// The ramp against the duration: the last call must start before the first one hangs up, or
/// the run never has its calls all running at once.
pub fn ramp_fits(calls: usize, ramp: Duration, duration: Duration) -> Result<(), String> {
    let last_start = ramp.mul_f64(calls.saturating_sub(1) as f64 / calls.max(1) as f64);
    if last_start < duration {
        return Ok(());
    }
    Err(format!(
        "--ramp {} starts the last of {calls} calls {} in, when the first has already hung up \
         (--duration {}): make the ramp shorter than the duration",
        humantime::format_duration(ramp),
        humantime::format_duration(round_ms(last_start)),
        humantime::format_duration(duration),
    ))
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn values_out_of_range_are_refused_in_plain_words() {
        assert_eq!(calls("3"), Ok(3));
        assert_eq!(calls("0").unwrap_err(), "must be at least 1");
        assert!(calls("-1").unwrap_err().contains("whole number"));
        assert_eq!(share("0.05"), Ok(0.05));
        assert_eq!(share("1"), Ok(1.0));
        assert!(share("2").unwrap_err().contains("between 0 and 1"));
        assert!(share("NaN").unwrap_err().contains("between 0 and 1"));
        assert_eq!(positive_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(
            positive_duration("0s").unwrap_err(),
            "must be longer than 0s"
        );
        assert!(positive_duration("soon").is_err());
    }

    #[test]
    fn output_files_need_an_existing_writable_folder() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("r.json");
        assert_eq!(output_file(ok.to_str().unwrap()), Ok(ok.clone()));
        assert!(!ok.exists(), "the check leaves nothing behind");
        let missing = dir.path().join("nope/r.json");
        let err = output_file(missing.to_str().unwrap()).unwrap_err();
        assert!(
            err.contains("does not exist") && err.contains("nope"),
            "{err}"
        );
        let err = output_file(dir.path().to_str().unwrap()).unwrap_err();
        assert!(err.contains("is a folder"), "{err}");
        assert_eq!(output_file("report.json"), Ok(PathBuf::from("report.json")));
    }

    #[test]
    fn the_ramp_must_end_before_the_first_call_does() {
        let s = Duration::from_secs;
        assert!(ramp_fits(20, s(5), s(30)).is_ok());
        // One call starts at once whatever the ramp.
        assert!(ramp_fits(1, s(60), s(1)).is_ok());
        let err = ramp_fits(20, s(5), s(3)).unwrap_err();
        assert!(
            err.contains("--ramp 5s") && err.contains("4s 750ms"),
            "{err}"
        );
    }
}
