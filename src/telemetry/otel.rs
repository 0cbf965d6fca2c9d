//! OpenTelemetry traces, one per call, sent over OTLP/HTTP (protobuf) when
//! `[telemetry.otlp] enabled = true`; off by default. Span names follow LiveKit Agents', so the
//! same trace views work for both: the call is `agent_session`, each reply `agent_turn`, inside
//! it `llm_node` per model request and `function_tool` per tool call; synthesis is `tts_node`.
//!
//! Spans may carry the call id; they never carry patient data. The exporter keeps only the
//! attributes in [`KEPT_ATTRIBUTES`] and drops every span event (a log line inside a span would
//! otherwise travel with it, and at debug level some quote the caller).

use std::borrow::Cow;
use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter,
};
use opentelemetry_sdk::Resource;
use serde::Deserialize;
use tracing_subscriber::{Layer, Registry};

/// `[telemetry]`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    pub otlp: OtlpConfig,
}

/// `[telemetry.otlp]`: where traces go.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpConfig {
    pub enabled: bool,
    /// The collector's OTLP/HTTP base URL; spans go to `<endpoint>/v1/traces`.
    pub endpoint: String,
    /// `service.name` of the exported resource.
    pub service_name: String,
    /// Upper bound of one export request.
    pub timeout_ms: u64,
    /// How long finished spans wait to be sent in one batch.
    pub batch_delay_ms: u64,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            endpoint: "http://127.0.0.1:4318".into(),
            service_name: "frontdesk".into(),
            timeout_ms: 5_000,
            batch_delay_ms: 2_000,
        }
    }
}

impl TelemetryConfig {
    /// Every problem, named by its key.
    pub fn validate(&self) -> Vec<String> {
        let o = &self.otlp;
        let mut errors = vec![];
        if o.enabled && !(o.endpoint.starts_with("http://") || o.endpoint.starts_with("https://")) {
            errors.push("telemetry.otlp.endpoint must start with http:// or https://".into());
        }
        if o.enabled && o.service_name.is_empty() {
            errors.push("telemetry.otlp.service_name must not be empty".into());
        }
        if o.timeout_ms == 0 || o.batch_delay_ms == 0 {
            errors.push("telemetry.otlp.timeout_ms and batch_delay_ms must be positive".into());
        }
        errors
    }
}

/// Our span names and what LiveKit Agents calls the same thing. Spans not named here (ours or a
/// library's) are not exported.
const SPAN_NAMES: &[(&str, &str)] = &[
    ("call", "agent_session"),
    ("turn", "agent_turn"),
    ("llm_node", "llm_node"),
    ("function_tool", "function_tool"),
    ("tts_node", "tts_node"),
];

/// Span attributes that may leave the process: identifiers and counts, never what was said, nor
/// the room name (a telephony room is often named after the caller's number).
pub const KEPT_ATTRIBUTES: &[&str] = &[
    "call_id",
    "turn",
    "reply_id",
    "step",
    "tool",
    "status",
    "busy",
    "otel.status_code",
    "otel.status_description",
];

/// The installed provider, for [`flush`].
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// A tracing layer that exports our spans per `cfg`, or None when disabled.
pub fn layer(cfg: &OtlpConfig) -> anyhow::Result<Option<Box<dyn Layer<Registry> + Send + Sync>>> {
    // One exporter per process: a second provider would only be dropped, and dropping its
    // blocking HTTP client inside the async runtime panics.
    if !cfg.enabled || PROVIDER.get().is_some() {
        return Ok(None);
    }
    let provider = provider(cfg)?;
    let tracer = provider.tracer("frontdesk");
    let _ = PROVIDER.set(provider);
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_level(false)
        .with_tracked_inactivity(false);
    Ok(Some(Box::new(layer)))
}

fn provider(cfg: &OtlpConfig) -> anyhow::Result<SdkTracerProvider> {
    let endpoint = format!("{}/v1/traces", cfg.endpoint.trim_end_matches('/'));
    let timeout = Duration::from_millis(cfg.timeout_ms);
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint)
        .with_timeout(timeout);
    // The blocking HTTP client runs on the batch processor's own thread; build it off any async
    // runtime (reqwest's blocking client refuses to be created or dropped inside one).
    builder = builder.with_http_client(blocking_client(timeout)?);
    let exporter = builder.build()?;
    let batch = BatchConfigBuilder::default()
        .with_scheduled_delay(Duration::from_millis(cfg.batch_delay_ms))
        .build();
    let processor = BatchSpanProcessor::builder(Scrubbed(exporter))
        .with_batch_config(batch)
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(
            Resource::builder()
                .with_service_name(cfg.service_name.clone())
                .build(),
        )
        .build())
}

fn blocking_client(timeout: Duration) -> anyhow::Result<reqwest::blocking::Client> {
    let made = std::thread::spawn(move || {
        reqwest::blocking::Client::builder()
            .timeout(timeout)
            .build()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("building the OTLP client panicked"))?;
    Ok(made?)
}

/// Send what has ended so far (tests, and before the process exits).
pub fn flush() {
    if let Some(p) = PROVIDER.get() {
        if let Err(e) = p.force_flush() {
            tracing::warn!(error = %e, "flushing traces failed");
        }
    }
}

/// Renames our spans to LiveKit's, keeps only exportable spans and attributes, drops events.
#[derive(Debug)]
struct Scrubbed<E>(E);

impl<E: SpanExporter> SpanExporter for Scrubbed<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let batch = batch.into_iter().filter_map(scrub).collect();
        self.0.export(batch).await
    }

    fn shutdown_with_timeout(&mut self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn force_flush(&mut self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }
}

fn scrub(mut span: SpanData) -> Option<SpanData> {
    let (_, name) = SPAN_NAMES.iter().find(|(ours, _)| *ours == span.name)?;
    span.name = Cow::Borrowed(name);
    span.attributes
        .retain(|kv| KEPT_ATTRIBUTES.contains(&kv.key.as_str()));
    span.events = Default::default();
    Some(span)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_by_default_and_validated_when_enabled() {
        let cfg = TelemetryConfig::default();
        assert!(!cfg.otlp.enabled);
        assert!(cfg.validate().is_empty());
        let mut bad = cfg.clone();
        bad.otlp.enabled = true;
        bad.otlp.endpoint = "collector:4318".into();
        assert_eq!(bad.validate().len(), 1, "{:?}", bad.validate());
    }
}
