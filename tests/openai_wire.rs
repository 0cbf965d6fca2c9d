#![allow(clippy::unwrap_used)]
//! The real OpenAI client against the OpenAI emulator over loopback HTTP: streaming text and
//! tool calls, usage, every error class and retry rule, time-to-first-token, and whole booking
//! flows driven by the emulator's receptionist policy through the real hospital tools.

use std::sync::Arc;
use std::time::{Duration, Instant};

use frontdesk::emulators::faults::FaultKind;
use frontdesk::emulators::openai::{self, Forced, OpenAiControls, OpenAiEmulatorConfig};
use frontdesk::emulators::Emulator;
use frontdesk::providers::openai::{OpenAiConfig, OpenAiLlm};
use frontdesk::secret::Secret;
use frontdesk_actors::doubles::{Latency, MemoryStore};
use frontdesk_actors::provider::{
    ChatMessage, ChatRequest, LlmError, LlmEvent, LlmProvider, ToolCall,
};
use frontdesk_actors::store::{AppointmentStatus, Store};
use frontdesk_actors::tools::{execute, tool_specs};

#[path = "openai_wire/raw.rs"]
mod raw;

const KEY: &str = "sk-test-0123456789";

fn fast() -> OpenAiEmulatorConfig {
    OpenAiEmulatorConfig {
        api_key: Some(KEY.into()),
        ttft: Latency::ms(5, 0),
        token_interval_ms: 1,
        retry_after_ms: 50,
        ..Default::default()
    }
}

async fn emulator(cfg: OpenAiEmulatorConfig) -> (Emulator, Arc<OpenAiControls>) {
    openai::start_with_controls(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn client(emu: &Emulator, tweak: impl FnOnce(&mut OpenAiConfig)) -> OpenAiLlm {
    let mut cfg = OpenAiConfig {
        base_url: emu.http_url(),
        api_key: Secret::new(KEY),
        ..Default::default()
    };
    tweak(&mut cfg);
    OpenAiLlm::new(cfg).unwrap()
}

fn ask(text: &str) -> ChatRequest {
    ChatRequest {
        messages: vec![
            ChatMessage::system("You are a hospital receptionist."),
            ChatMessage::user(text),
        ],
        tools: tool_specs(),
    }
}

/// Every event of one completion, and the error that ended it (if any).
async fn collect(llm: &OpenAiLlm, req: ChatRequest) -> (Vec<LlmEvent>, Option<LlmError>) {
    let mut rx = match llm.stream(req).await {
        Ok(rx) => rx,
        Err(e) => return (vec![], Some(e)),
    };
    let mut events = vec![];
    while let Some(ev) = rx.recv().await {
        match ev {
            Ok(e) => events.push(e),
            Err(e) => return (events, Some(e)),
        }
    }
    (events, None)
}

fn text_of(events: &[LlmEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            LlmEvent::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn calls_of(events: &[LlmEvent]) -> Vec<ToolCall> {
    events
        .iter()
        .filter_map(|e| match e {
            LlmEvent::ToolCall(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn happy_text_stream_with_usage() {
    let (emu, ctl) = emulator(fast()).await;
    let llm = client(&emu, |_| {});
    let (events, err) = collect(&llm, ask("Hello there")).await;
    assert!(err.is_none(), "{err:?}");
    let deltas = events
        .iter()
        .filter(|e| matches!(e, LlmEvent::TextDelta(_)))
        .count();
    assert!(deltas > 3, "text should arrive word by word: {events:?}");
    assert_eq!(
        text_of(&events),
        "I can book, move or cancel appointments. What would you like to do?"
    );
    let usage = events
        .iter()
        .find_map(|e| match e {
            LlmEvent::Usage(u) => Some(*u),
            _ => None,
        })
        .unwrap();
    assert!(usage.prompt_tokens > 0 && usage.completion_tokens > 0);
    assert_eq!(events.last(), Some(&LlmEvent::Done));
    assert_eq!(ctl.requests(), 1);
}

#[tokio::test]
async fn parallel_tool_calls_are_accumulated_by_index() {
    let (emu, _) = emulator(fast()).await;
    let llm = client(&emu, |_| {});
    let req = ask("I need a cardiology appointment. My name is Emma Nguyen, born November fifteenth, nineteen sixty six.");
    let (events, err) = collect(&llm, req).await;
    assert!(err.is_none(), "{err:?}");
    let calls = calls_of(&events);
    assert_eq!(calls.len(), 2, "{events:?}");
    assert_eq!(calls[0].name, "list_doctors");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&calls[0].arguments).unwrap(),
        serde_json::json!({"specialty": "Cardiology"})
    );
    assert_eq!(calls[1].name, "find_patient");
    let args: serde_json::Value = serde_json::from_str(&calls[1].arguments).unwrap();
    assert_eq!(
        args,
        serde_json::json!({"name": "Emma Nguyen", "date_of_birth": "1966-11-15"})
    );
    assert_ne!(calls[0].id, calls[1].id);
    // Tool calls come after the text and before usage / Done.
    let pos = |f: fn(&LlmEvent) -> bool| events.iter().position(f).unwrap();
    assert!(pos(|e| matches!(e, LlmEvent::ToolCall(_))) < pos(|e| matches!(e, LlmEvent::Usage(_))));
    assert_eq!(events.last(), Some(&LlmEvent::Done));
}

#[tokio::test]
async fn wrong_key_is_an_auth_error_without_retry() {
    let (emu, ctl) = emulator(fast()).await;
    let llm = client(&emu, |c| c.api_key = Secret::new("sk-wrong-key"));
    let (events, err) = collect(&llm, ask("hi")).await;
    assert!(events.is_empty());
    let err = err.unwrap();
    assert!(matches!(err, LlmError::Auth(_)), "{err:?}");
    assert!(!err.to_string().contains("sk-wrong-key"));
    assert_eq!(ctl.requests(), 1);
}

#[tokio::test]
async fn rate_limit_is_retried_then_succeeds() {
    // A server-requested wait longer than the client's own first backoff (≤ 0.5 s): the gap
    // before the retry proves the header was honoured (a lower bound, so load cannot fake it).
    let (emu, ctl) = emulator(OpenAiEmulatorConfig {
        retry_after_ms: 1_500,
        ..fast()
    })
    .await;
    emu.faults.force_next(FaultKind::RateLimited);
    let llm = client(&emu, |_| {});
    let started = Instant::now();
    let (events, err) = collect(&llm, ask("hi")).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(events.last(), Some(&LlmEvent::Done));
    assert_eq!(ctl.requests(), 2);
    assert!(started.elapsed() >= Duration::from_millis(1_500));
    assert_eq!(emu.faults.injected().get(&FaultKind::RateLimited), Some(&1));
}

#[tokio::test]
async fn long_retry_after_fails_fast_on_a_live_call() {
    let (emu, ctl) = emulator(OpenAiEmulatorConfig {
        retry_after_ms: 30_000,
        ..fast()
    })
    .await;
    emu.faults.force_next(FaultKind::RateLimited);
    let (_, err) = collect(&client(&emu, |_| {}), ask("hi")).await;
    // Had it waited the 30 s, it would have retried (2 requests) instead of failing.
    assert!(matches!(err, Some(LlmError::RateLimited(_))), "{err:?}");
    assert_eq!(ctl.requests(), 1);
}

#[tokio::test]
async fn insufficient_quota_is_final() {
    let (emu, ctl) = emulator(fast()).await;
    ctl.force_next(Forced::Quota);
    let llm = client(&emu, |_| {});
    let (_, err) = collect(&llm, ask("hi")).await;
    assert!(matches!(err, Some(LlmError::Quota(_))), "{err:?}");
    assert_eq!(ctl.requests(), 1);
    // The config flag turns every rate-limit fault into a quota error.
    let (emu, ctl) = emulator(OpenAiEmulatorConfig {
        insufficient_quota: true,
        ..fast()
    })
    .await;
    emu.faults.force_next(FaultKind::RateLimited);
    let (_, err) = collect(&client(&emu, |_| {}), ask("hi")).await;
    assert!(matches!(err, Some(LlmError::Quota(_))), "{err:?}");
    assert_eq!(ctl.requests(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_up_to_max_retries() {
    let (emu, ctl) = emulator(fast()).await;
    emu.faults.force_next(FaultKind::ServerError);
    emu.faults.force_next(FaultKind::ServerError);
    let llm = client(&emu, |_| {});
    let (events, err) = collect(&llm, ask("hi")).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(events.last(), Some(&LlmEvent::Done));
    assert_eq!(ctl.requests(), 3);
    for _ in 0..3 {
        emu.faults.force_next(FaultKind::ServerError);
    }
    let (_, err) = collect(&llm, ask("hi")).await;
    assert!(matches!(err, Some(LlmError::Server(_))), "{err:?}");
    assert_eq!(ctl.requests(), 6, "one try and two retries");
}

#[tokio::test]
async fn should_retry_false_is_not_retried() {
    let (emu, ctl) = emulator(fast()).await;
    ctl.force_next(Forced::ServerErrorNoRetry);
    let (_, err) = collect(&client(&emu, |_| {}), ask("hi")).await;
    assert!(matches!(err, Some(LlmError::Server(_))), "{err:?}");
    assert_eq!(ctl.requests(), 1);
}

#[tokio::test]
async fn error_event_mid_stream_ends_the_stream() {
    let (emu, ctl) = emulator(fast()).await;
    ctl.force_next(Forced::ErrorEvent);
    let (events, err) = collect(&client(&emu, |_| {}), ask("hi")).await;
    assert!(!text_of(&events).is_empty(), "some tokens came first");
    assert!(
        matches!(&err, Some(LlmError::Server(m)) if m.contains("server_error")),
        "{err:?}"
    );
    assert_eq!(ctl.requests(), 1, "no retry once tokens reached the caller");
}

#[tokio::test]
async fn malformed_event_is_skipped() {
    let (emu, _) = emulator(fast()).await;
    emu.faults.force_next(FaultKind::MalformedJson);
    let (events, err) = collect(&client(&emu, |_| {}), ask("Hello there")).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        text_of(&events),
        "I can book, move or cancel appointments. What would you like to do?"
    );
    assert_eq!(events.last(), Some(&LlmEvent::Done));
    assert_eq!(
        emu.faults.injected().get(&FaultKind::MalformedJson),
        Some(&1)
    );
}

#[tokio::test]
async fn dropped_connection_after_tokens_is_a_stream_error() {
    let (emu, ctl) = emulator(fast()).await;
    emu.faults.force_next(FaultKind::DropSocket);
    let (events, err) = collect(&client(&emu, |_| {}), ask("Hello there")).await;
    assert!(!text_of(&events).is_empty());
    assert!(matches!(err, Some(LlmError::Stream(_))), "{err:?}");
    assert_eq!(ctl.requests(), 1);
}

#[tokio::test]
async fn stalled_server_hits_the_ttft_timeout() {
    let (emu, ctl) = emulator(fast()).await;
    emu.faults.force_next(FaultKind::Stall);
    let llm = client(&emu, |c| {
        c.ttft_timeout = Duration::from_millis(300);
        c.ttft_retries = 0;
    });
    let (events, err) = collect(&llm, ask("hi")).await;
    assert!(
        events.is_empty(),
        "a role-only chunk is not a token: {events:?}"
    );
    assert!(matches!(err, Some(LlmError::Timeout(_))), "{err:?}");
    assert_eq!(ctl.requests(), 1);
}

#[tokio::test]
async fn a_stalled_request_is_retried_at_once_within_the_ttft_budget() {
    let (emu, ctl) = emulator(fast()).await;
    emu.faults.force_next(FaultKind::Stall);
    emu.faults.force_next(FaultKind::Stall);
    let llm = client(&emu, |c| {
        c.ttft_timeout = Duration::from_millis(300);
        c.ttft_retries = 2;
    });
    let (events, err) = collect(&llm, ask("hi")).await;
    assert!(err.is_none(), "{err:?}");
    assert!(!text_of(&events).is_empty());
    assert_eq!(ctl.requests(), 3);
    assert_eq!(emu.faults.injected().get(&FaultKind::Stall), Some(&2));
}

#[tokio::test]
async fn slow_but_flowing_stream_is_not_timed_out() {
    let cfg = OpenAiEmulatorConfig {
        ttft: Latency::ms(50, 0),
        token_interval_ms: 120,
        ..fast()
    };
    let (emu, _) = emulator(cfg).await;
    let llm = client(&emu, |c| c.ttft_timeout = Duration::from_millis(300));
    let started = Instant::now();
    let (events, err) = collect(&llm, ask("Hello there")).await;
    assert!(err.is_none(), "{err:?}");
    assert!(
        started.elapsed() > Duration::from_millis(600),
        "the stream took longer than the ttft budget"
    );
    assert_eq!(
        text_of(&events),
        "I can book, move or cancel appointments. What would you like to do?"
    );
}

#[tokio::test]
async fn non_streaming_request_gets_a_plain_completion() {
    let (emu, _) = emulator(fast()).await;
    let body = serde_json::json!({ "model": "gpt-4o-mini", "stream": false, "messages": [{ "role": "user", "content": "hello" }] });
    let v: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", emu.http_url()))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .contains("book"));
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);
}

/// One caller turn: model steps with tool calls run against `store`, until the model only talks.
/// Returns what the model said and the tools it called.
async fn turn(
    llm: &OpenAiLlm,
    store: &MemoryStore,
    msgs: &mut Vec<ChatMessage>,
    caller: &str,
) -> (String, Vec<String>) {
    msgs.push(ChatMessage::user(caller));
    let (mut said, mut tools) = (String::new(), vec![]);
    for _ in 0..6 {
        let (events, err) = collect(
            llm,
            ChatRequest {
                messages: msgs.clone(),
                tools: tool_specs(),
            },
        )
        .await;
        assert!(err.is_none(), "{err:?}");
        let (text, calls) = (text_of(&events), calls_of(&events));
        said.push_str(&text);
        let mut assistant = ChatMessage::assistant(text);
        assistant.tool_calls = calls.clone();
        msgs.push(assistant);
        if calls.is_empty() {
            return (said, tools);
        }
        for c in calls {
            let out = execute(store, &c).await;
            msgs.push(ChatMessage::tool_result(&c.id, out.content));
            tools.push(c.name);
        }
    }
    panic!("the model kept calling tools: {tools:?}");
}

fn system() -> Vec<ChatMessage> {
    vec![ChatMessage::system(
        "You are the receptionist of St. Mary's hospital.",
    )]
}

#[tokio::test]
async fn policy_books_an_appointment_step_by_step() {
    let (emu, _) = emulator(fast()).await;
    let llm = client(&emu, |_| {});
    let store = MemoryStore::seeded();
    let mut msgs = system();
    let (said, tools) = turn(
        &llm,
        &store,
        &mut msgs,
        "Hi, I'd like to book an appointment with a cardiologist.",
    )
    .await;
    assert_eq!(tools, ["list_doctors"]);
    assert!(
        said.contains("Dr. Amelia Hart") && said.contains("date of birth"),
        "{said}"
    );
    let (said, tools) = turn(
        &llm,
        &store,
        &mut msgs,
        "My name is Emma Nguyen, born November fifteenth, nineteen sixty six",
    )
    .await;
    assert_eq!(tools, ["find_patient"]);
    assert!(said.contains("Which day"), "{said}");
    let (said, tools) = turn(&llm, &store, &mut msgs, "Wednesday please").await;
    assert_eq!(tools, ["list_free_slots"]);
    assert!(said.contains("09:30"), "{said}");
    let (said, tools) = turn(&llm, &store, &mut msgs, "Nine thirty works for me").await;
    assert_eq!(tools, ["book_appointment"]);
    assert!(said.contains("all set") && said.contains("09:30"), "{said}");
    let appts = store.appointments_for(3).await.unwrap();
    assert_eq!(appts.len(), 1, "{appts:?}");
    assert_eq!(
        (appts[0].doctor_id, appts[0].status),
        (1, AppointmentStatus::Scheduled)
    );
    assert_eq!(appts[0].start.format("%H:%M").to_string(), "09:30");
}

#[tokio::test]
async fn policy_books_reschedules_and_cancels() {
    let (emu, _) = emulator(fast()).await;
    let llm = client(&emu, |_| {});
    let store = MemoryStore::seeded();
    let mut msgs = system();
    let first = "I need to see a dermatologist. This is Liam O'Brien, born the eighth of June nineteen fifty three.";
    let (_, tools) = turn(&llm, &store, &mut msgs, first).await;
    assert_eq!(
        tools,
        ["list_doctors", "find_patient"],
        "both lookups in one parallel step"
    );
    let (_, tools) = turn(&llm, &store, &mut msgs, "Thursday").await;
    assert_eq!(tools, ["list_free_slots"]);
    let (said, tools) = turn(&llm, &store, &mut msgs, "Yes, book it").await;
    assert_eq!(tools, ["book_appointment"], "{said}");
    let booked = store.appointments_for(2).await.unwrap();
    assert_eq!(booked.len(), 1);
    assert_eq!(booked[0].start.format("%H:%M").to_string(), "09:00");

    let (said, tools) = turn(
        &llm,
        &store,
        &mut msgs,
        "Actually, can I reschedule that to Friday?",
    )
    .await;
    assert_eq!(tools, ["list_appointments", "list_free_slots"], "{said}");
    let (said, tools) = turn(&llm, &store, &mut msgs, "Half past two please").await;
    assert_eq!(tools, ["reschedule_appointment"], "{said}");
    let moved = store.appointments_for(2).await.unwrap();
    assert_eq!(moved[0].start.format("%H:%M").to_string(), "14:30");
    assert_ne!(moved[0].start.date_naive(), booked[0].start.date_naive());

    let (said, tools) = turn(
        &llm,
        &store,
        &mut msgs,
        "Sorry, please cancel it altogether.",
    )
    .await;
    assert_eq!(tools, ["list_appointments", "cancel_appointment"], "{said}");
    assert!(said.contains("cancelled"), "{said}");
    let after = store.appointments_for(2).await.unwrap();
    assert_eq!(after[0].status, AppointmentStatus::Cancelled);
    let (said, tools) = turn(&llm, &store, &mut msgs, "Thank you, bye").await;
    assert!(tools.is_empty() && said.contains("goodbye"), "{said}");
}

#[tokio::test]
async fn policy_apologises_for_tool_errors() {
    let (emu, _) = emulator(fast()).await;
    let llm = client(&emu, |_| {});
    let store = MemoryStore::seeded();
    store.set_available(false);
    let mut msgs = system();
    let (said, tools) = turn(
        &llm,
        &store,
        &mut msgs,
        "I'd like an appointment with a neurologist",
    )
    .await;
    assert_eq!(tools, ["list_doctors"]);
    assert!(said.contains("sorry"), "{said}");
}
