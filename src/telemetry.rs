//! Logging, metrics and traces set-up, once per process.
//!
//! Metrics: `/metrics` is complete before the first call ([`describe_all`]: every metric of the
//! catalogues described and its known series created), histograms have buckets fitted to their
//! range ([`prometheus_builder`]), process metrics refresh on their own thread. Traces: OTLP,
//! off by default ([`init_traces`], `otel`).
//!
//! Logs: pretty in development, JSON elsewhere, level from `[log]` (`RUST_LOG` overrides it). Every
//! line goes through [`Redact`], which replaces each configured secret value: `Secret` already
//! prints as `[redacted]`, but an error from a library may quote a URL or header that holds one.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

pub mod catalog;
pub mod otel;
pub mod process;

pub use catalog::{DEPENDENCY_UP, HEALTHY};
pub use otel::{OtlpConfig, TelemetryConfig};

/// Log format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Shorter secrets are left alone: replacing a 3-letter string everywhere would garble every log
/// line, and no real credential is that short.
const MIN_REDACTED_LEN: usize = 6;

/// A `MakeWriter` that scrubs known secret values (raw and JSON-escaped) from each line.
#[derive(Clone)]
pub struct Redact<M> {
    inner: M,
    secrets: Arc<Vec<String>>,
}

impl<M> Redact<M> {
    pub fn new(inner: M, secrets: &[String]) -> Self {
        let mut all: Vec<String> = vec![];
        for s in secrets.iter().filter(|s| s.len() >= MIN_REDACTED_LEN) {
            all.push(s.clone());
            // The JSON formatter escapes quotes and backslashes.
            let escaped = serde_json::to_string(s).unwrap_or_default();
            let escaped = escaped.trim_matches('"').to_owned();
            if escaped != *s {
                all.push(escaped);
            }
        }
        // Longest first, so a secret containing another is replaced whole.
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self {
            inner,
            secrets: Arc::new(all),
        }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Redact<M> {
    type Writer = RedactWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactWriter {
            inner: self.inner.make_writer(),
            secrets: Arc::clone(&self.secrets),
        }
    }
}

pub struct RedactWriter<W> {
    inner: W,
    secrets: Arc<Vec<String>>,
}

impl<W: Write> Write for RedactWriter<W> {
    /// The fmt layer writes each event with one `write_all`, so a secret is never split.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.secrets.is_empty() {
            return self.inner.write(buf);
        }
        let mut text = String::from_utf8_lossy(buf).into_owned();
        for s in self.secrets.iter() {
            if text.contains(s.as_str()) {
                text = text.replace(s.as_str(), "[redacted]");
            }
        }
        self.inner.write_all(text.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The WebRTC stack logs every connection's life at INFO and per-packet oddities (an SCTP
/// retransmission, a short probe packet) at WARN: per call, many times a minute. These levels
/// apply unless the configured level names the crate itself.
const QUIET_DEPS: &[(&str, &str)] = &[
    ("rtc", "error"),
    ("rtc_sctp", "error"),
    ("rtc_ice", "warn"),
    ("rtc_dtls", "warn"),
    ("rtc_srtp", "warn"),
    ("webrtc", "warn"),
    ("livekit_signaling", "warn"),
];

/// `level` plus the quiet defaults of the crates it does not mention.
fn with_quiet_deps(level: &str) -> String {
    let mut out = level.to_owned();
    for (target, lvl) in QUIET_DEPS {
        let named = level
            .split(',')
            .any(|d| d.trim().split(['=', '[']).next() == Some(*target));
        if !named {
            out.push_str(&format!(",{target}={lvl}"));
        }
    }
    out
}

/// The slot the trace exporter goes into once the configuration is known ([`init_traces`]).
type TraceSlot = Option<Box<dyn Layer<Registry> + Send + Sync>>;

static TRACE_SLOT: std::sync::OnceLock<reload::Handle<TraceSlot, Registry>> =
    std::sync::OnceLock::new();

/// A subscriber per `[log]`, writing through `writer` with `secrets` scrubbed. `RUST_LOG`, when
/// set, overrides `level`.
pub fn subscriber<W>(
    level: &str,
    format: LogFormat,
    secrets: &[String],
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let (sub, _) = layered(level, format, secrets, writer);
    Box::new(sub)
}

/// The registry with a trace slot (empty), the level filter and the log formatter.
fn layered<W>(
    level: &str,
    format: LogFormat,
    secrets: &[String],
    writer: W,
) -> (
    impl tracing::Subscriber + Send + Sync,
    reload::Handle<TraceSlot, Registry>,
)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(with_quiet_deps(level)))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(Redact::new(writer, secrets));
    let fmt = match format {
        LogFormat::Json => fmt.json().flatten_event(true).boxed(),
        LogFormat::Pretty => fmt.boxed(),
    };
    let (slot, handle) = reload::Layer::new(TraceSlot::None);
    let sub = tracing_subscriber::registry()
        .with(slot)
        .with(filter)
        .with(fmt);
    (sub, handle)
}

/// Install the global subscriber (stderr). A second call (tests) is harmless: the first stays.
pub fn init_logs(level: &str, format: LogFormat, secrets: &[String]) {
    let (sub, handle) = layered(level, format, secrets, std::io::stderr);
    // try_init also forwards the `log` records of libraries (rustls, tokio-postgres).
    if sub.try_init().is_ok() {
        let _ = TRACE_SLOT.set(handle);
    }
}

/// Start exporting traces per `[telemetry]` (nothing when disabled). Needs [`init_logs`] first;
/// the first enabled configuration wins.
pub fn init_traces(cfg: &TelemetryConfig) -> anyhow::Result<()> {
    let Some(handle) = TRACE_SLOT.get() else {
        return Ok(());
    };
    let Some(layer) = otel::layer(&cfg.otlp)? else {
        return Ok(());
    };
    handle
        .modify(|slot| {
            if slot.is_none() {
                *slot = Some(layer);
            }
        })
        .context("installing the trace exporter")?;
    tracing::info!(endpoint = %cfg.otlp.endpoint, "exporting traces over OTLP");
    Ok(())
}

/// Log an error with its whole cause chain (`{:#}`), not just the outermost context.
pub fn log_error(what: &str, err: &anyhow::Error) {
    tracing::error!(error = format!("{err:#}"), "{what}");
}

/// Buckets of a histogram not fitted in a catalogue.
const DEFAULT_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0,
];

/// The exporter with each histogram's own buckets (not yet installed).
pub fn prometheus_builder() -> Result<PrometheusBuilder, BuildError> {
    let mut builder = PrometheusBuilder::new().set_buckets(DEFAULT_BUCKETS)?;
    let fitted = frontdesk_actors::metrics::HISTOGRAMS
        .iter()
        .chain(catalog::HISTOGRAMS);
    for (name, buckets) in fitted {
        builder = builder.set_buckets_for_metric(Matcher::Full((*name).to_owned()), buckets)?;
    }
    Ok(builder)
}

/// Describe every metric and create each series known up front, through the current recorder.
/// Returns the process collector, already read once.
pub fn describe_all() -> metrics_process::Collector {
    frontdesk_actors::metrics::describe();
    crate::room::metrics::describe();
    catalog::describe();
    process::describe()
}

/// Install the Prometheus recorder and describe our metrics; process metrics refresh on their
/// own thread.
pub fn init_metrics() -> anyhow::Result<PrometheusHandle> {
    let handle = prometheus_builder()
        .context("histogram buckets")?
        .install_recorder()
        .context("installing the metrics recorder")?;
    process::spawn(describe_all());
    Ok(handle)
}

#[cfg(test)]
mod tests;
