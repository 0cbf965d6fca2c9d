//! OpenTelemetry traces on the wire: simulated calls, exported over OTLP/HTTP to an in-process
//! collector, arrive as one trace per call with LiveKit Agents' span names (agent_session >
//! agent_turn > llm_node / function_tool, tts_node), carrying the call id and nothing else
//! about the caller.
#![allow(clippy::disallowed_methods)] // tests may block: files, fixtures, std channels
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::post;
use frontdesk::simulate::{self, SimArgs};
use frontdesk::telemetry::{self, LogFormat, OtlpConfig, TelemetryConfig};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

type Received = Arc<Mutex<Vec<(Vec<(String, String)>, Span)>>>;

/// An OTLP/HTTP collector on its own thread and runtime (the test's clock is paused). Spans come
/// with their resource's attributes.
fn collector() -> (String, Received) {
    let received: Received = Arc::default();
    let sink = Arc::clone(&received);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let app = axum::Router::new().route(
                "/v1/traces",
                post(move |body: Bytes| {
                    let sink = Arc::clone(&sink);
                    async move {
                        let req = ExportTraceServiceRequest::decode(body).unwrap();
                        let mut sink = sink.lock().unwrap();
                        for rs in req.resource_spans {
                            let resource = rs
                                .resource
                                .map(|r| r.attributes.iter().map(attr).collect())
                                .unwrap_or_default();
                            for ss in rs.scope_spans {
                                for span in ss.spans {
                                    sink.push((Vec::clone(&resource), span));
                                }
                            }
                        }
                        ExportTraceServiceResponse::default().encode_to_vec()
                    }
                }),
            );
            axum::serve(listener, app).await.unwrap();
        });
    });
    let addr = rx.recv().unwrap();
    (format!("http://{addr}"), received)
}

fn attr(kv: &opentelemetry_proto::tonic::common::v1::KeyValue) -> (String, String) {
    let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    };
    (kv.key.clone(), value)
}

fn args(calls: usize) -> SimArgs {
    SimArgs {
        calls,
        duration: Duration::from_secs(30),
        ramp: Duration::from_secs(1),
        stt_latency_ms: 150,
        llm_ttft_ms: 300,
        llm_token_ms: 20,
        tts_ttfb_ms: 120,
        jitter_ms: 40,
        providers: simulate::ProviderMode::Doubles,
        fault_rate: 0.0,
        fallback: false,
        store: simulate::StoreMode::Sqlite,
        report: None,
        pipeline: Default::default(),
        prices: Default::default(),
        cache: Default::default(),
        scenario: Default::default(),
    }
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        })
}

#[tokio::test(start_paused = true)]
async fn a_simulated_call_exports_livekit_shaped_spans_over_otlp() -> anyhow::Result<()> {
    let (endpoint, received) = collector();
    telemetry::init_logs("info", LogFormat::Json, &[]);
    let cfg = TelemetryConfig {
        otlp: OtlpConfig {
            enabled: true,
            endpoint,
            service_name: "frontdesk-test".into(),
            ..OtlpConfig::default()
        },
    };
    telemetry::init_traces(&cfg)?;
    let calls = 2;
    let report = simulate::run(args(calls)).await?;
    assert!(report.all_calls_completed(), "{:?}", report.end_reasons);
    telemetry::otel::flush();
    let spans = received.lock().unwrap().clone();
    let mut counts = BTreeMap::new();
    for (_, s) in &spans {
        *counts.entry(s.name.clone()).or_insert(0) += 1;
    }
    eprintln!("spans received for {calls} calls: {counts:?}");

    let by_id: BTreeMap<Vec<u8>, &Span> =
        spans.iter().map(|(_, s)| (s.span_id.clone(), s)).collect();
    let named = |name: &'static str| spans.iter().map(|(_, s)| s).filter(move |s| s.name == name);
    let parent_name = |s: &Span| by_id.get(&s.parent_span_id).map(|p| p.name.as_str());

    let sessions: Vec<&Span> = named("agent_session").collect();
    assert_eq!(
        sessions.len(),
        calls,
        "one agent_session per call: {spans:#?}"
    );
    for s in &sessions {
        assert!(s.parent_span_id.is_empty(), "agent_session is a root");
        assert!(attribute(s, "call_id").is_some_and(|id| !id.is_empty()));
    }
    let mut traces: Vec<&Vec<u8>> = sessions.iter().map(|s| &s.trace_id).collect();
    traces.dedup();
    assert_eq!(traces.len(), calls, "one trace per call");

    let turns: Vec<&Span> = named("agent_turn").collect();
    assert!(turns.len() >= calls, "turns: {}", turns.len());
    for t in &turns {
        assert_eq!(parent_name(t), Some("agent_session"));
        assert!(
            attribute(t, "call_id").is_none(),
            "the session carries the call id"
        );
    }
    for (child, parent) in [
        ("llm_node", "agent_turn"),
        ("function_tool", "agent_turn"),
        ("tts_node", "agent_session"),
    ] {
        let found: Vec<&Span> = named(child).collect();
        assert!(!found.is_empty(), "no {child} span");
        for s in found {
            assert_eq!(parent_name(s), Some(parent), "{child}'s parent");
            let session = sessions.iter().find(|x| x.trace_id == s.trace_id);
            assert!(session.is_some(), "{child} outside its call's trace");
        }
    }
    for s in named("function_tool") {
        let tool = attribute(s, "tool").unwrap_or_default();
        assert!(
            frontdesk_actors::tools::TOOL_NAMES.contains(&tool),
            "{tool}"
        );
    }

    // Nothing but identifiers and counts: no room name, no log events (which could quote the
    // caller), only the kept attributes; and the resource names the service.
    for (resource, s) in &spans {
        assert!(s.events.is_empty(), "{}: events exported", s.name);
        for kv in &s.attributes {
            assert!(
                telemetry::otel::KEPT_ATTRIBUTES.contains(&kv.key.as_str()),
                "{} carries {}",
                s.name,
                kv.key
            );
        }
        assert!(resource.contains(&("service.name".into(), "frontdesk-test".into())));
    }
    Ok(())
}
