//! `frontdesk usage`: the report for a window given as `--since 30d` (ago) or a time.

use chrono::{DateTime, NaiveDate, Utc};

use super::{UsageError, UsageReport, UsageSource, Window};
use crate::store::DatabaseConfig;

/// A bound of the window: a duration before now, or a point in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeArg {
    Ago(std::time::Duration),
    At(DateTime<Utc>),
}

impl TimeArg {
    pub fn resolve(self, now: DateTime<Utc>) -> Result<DateTime<Utc>, UsageError> {
        match self {
            TimeArg::At(t) => Ok(t),
            TimeArg::Ago(d) => chrono::TimeDelta::from_std(d)
                .ok()
                .and_then(|d| now.checked_sub_signed(d))
                .ok_or_else(|| UsageError::Window(format!("{d:?} ago is out of range"))),
        }
    }
}

/// clap's parser: `30d`, `12h`, `1w 2d` (humantime), `2026-11-01` (midnight UTC) or an RFC 3339
/// time.
pub fn parse_time(s: &str) -> Result<TimeArg, String> {
    let s = s.trim();
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(TimeArg::Ago(d));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(TimeArg::At(t.with_timezone(&Utc)));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(TimeArg::At(d.and_time(chrono::NaiveTime::MIN).and_utc()));
    }
    Err(format!(
        "{s:?} is neither a duration (30d, 12h, 90min) nor a date (2026-11-01) or RFC 3339 time \
         (2026-11-01T08:00:00Z)"
    ))
}

#[derive(clap::Args, Clone, Debug)]
pub struct UsageArgs {
    /// Calls started since: a duration ago (30d, 12h) or a date/time (2026-11-01, RFC 3339).
    #[arg(long, default_value = "30d", value_parser = parse_time)]
    pub since: TimeArg,
    /// Calls started before: a duration ago or a date/time [default: now].
    #[arg(long, value_parser = parse_time)]
    pub until: Option<TimeArg>,
    /// One JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

impl UsageArgs {
    pub fn window(&self, now: DateTime<Utc>) -> Result<Window, UsageError> {
        let until = self.until.map_or(Ok(now), |u| u.resolve(now))?;
        Window::new(self.since.resolve(now)?, until, now)
    }
}

/// The report for `args` from the database `db`.
pub async fn report(db: &DatabaseConfig, args: &UsageArgs) -> Result<UsageReport, UsageError> {
    let window = args.window(Utc::now())?;
    UsageSource::open(db, true)?.report(&window).await
}

/// `frontdesk usage`: the report on stdout, as a table or JSON.
pub async fn run(db: &DatabaseConfig, args: &UsageArgs) -> anyhow::Result<()> {
    let report = report(db, args).await?;
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        crate::stdout::write(&super::format::table(&report));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_dates_and_times_parse_and_anything_else_is_refused() {
        assert_eq!(
            parse_time("30d"),
            Ok(TimeArg::Ago(std::time::Duration::from_secs(30 * 86_400)))
        );
        let midnight = "2026-11-01T00:00:00Z".parse::<DateTime<Utc>>().ok();
        assert_eq!(parse_time("2026-11-01").ok(), midnight.map(TimeArg::At));
        assert_eq!(
            parse_time("2026-11-01T00:00:00Z").ok(),
            midnight.map(TimeArg::At)
        );
        for bad in ["", "yesterday", "30 dayz", "-5d", "2026-13-01"] {
            let e = parse_time(bad).err().unwrap_or_default();
            assert!(e.contains("neither a duration"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_window_resolves_against_now() {
        let now = Utc::now();
        let args = UsageArgs {
            since: TimeArg::Ago(std::time::Duration::from_secs(3600)),
            until: None,
            json: false,
        };
        let w = args.window(now).ok();
        assert_eq!(w.map(|w| (now - w.since).num_seconds()), Some(3600));
        let inverted = UsageArgs {
            until: Some(TimeArg::Ago(std::time::Duration::from_secs(7200))),
            ..args
        };
        assert!(inverted.window(now).is_err());
    }
}
