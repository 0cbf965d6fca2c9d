//! What the official SDK sends and gets, on the raw wire (tests/support/sdk/test_openai.py drives
//! the SDK itself): tools as the request allows them, usage on every chunk, every fault in the
//! plain form too, the request shapes the SDK produces and the API's 400s.

use std::time::{Duration, Instant};

use frontdesk::emulators::faults::FaultKind;
use frontdesk::emulators::Emulator;
use frontdesk_actors::provider::LlmError;
use frontdesk_actors::tools::tool_specs;

use super::{ask, calls_of, client, collect, emulator, fast, text_of, KEY};

/// Two lookups at once: the receptionist wants list_doctors and find_patient together.
const LOOKUP: &str = "I need a cardiology appointment. My name is Emma Nguyen, born November fifteenth, nineteen sixty six.";

async fn post(emu: &Emulator, body: &serde_json::Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", emu.http_url()))
        .bearer_auth(KEY)
        .json(body)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap()
}

/// A plain completion's tool-call names and content for `extra` merged into a LOOKUP request.
async fn tools_called(
    emu: &Emulator,
    extra: serde_json::Value,
) -> (Vec<String>, serde_json::Value) {
    let mut body = serde_json::json!({ "model": "gpt-4o-mini", "messages": [{ "role": "user", "content": LOOKUP }] });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let resp = post(emu, &body).await;
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    let msg = &v["choices"][0]["message"];
    let names = msg["tool_calls"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| c["function"]["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    (names, msg["content"].clone())
}

fn wire_tools(names: &[&str]) -> serde_json::Value {
    serde_json::json!(tool_specs()
        .into_iter()
        .filter(|t| names.contains(&t.name.as_str()))
        .map(|t| serde_json::json!({ "type": "function", "function": {
            "name": t.name, "description": t.description, "parameters": t.parameters } }))
        .collect::<Vec<_>>())
}

#[tokio::test]
async fn only_declared_tools_are_called_as_tool_choice_allows() {
    let (emu, _) = emulator(fast()).await;
    let all = wire_tools(&["list_doctors", "find_patient", "book_appointment"]);
    let (names, text) = tools_called(&emu, serde_json::json!({})).await;
    assert!(
        names.is_empty() && text.is_string(),
        "no tools declared: {names:?}"
    );
    let (names, text) = tools_called(
        &emu,
        serde_json::json!({ "tools": all, "tool_choice": "none" }),
    )
    .await;
    assert!(
        names.is_empty() && text.is_string(),
        "tool_choice none: {names:?}"
    );
    let (names, _) = tools_called(&emu, serde_json::json!({ "tools": all })).await;
    assert_eq!(names, ["list_doctors", "find_patient"]);
    let (names, _) = tools_called(
        &emu,
        serde_json::json!({ "tools": wire_tools(&["find_patient"]) }),
    )
    .await;
    assert_eq!(names, ["find_patient"]);
    let (names, _) = tools_called(
        &emu,
        serde_json::json!({ "tools": all, "parallel_tool_calls": false }),
    )
    .await;
    assert_eq!(names, ["list_doctors"]);
    let named =
        serde_json::json!({ "type": "function", "function": { "name": "book_appointment" } });
    let (names, text) = tools_called(
        &emu,
        serde_json::json!({ "tools": all, "tool_choice": named }),
    )
    .await;
    assert_eq!(
        (names, text),
        (
            vec!["book_appointment".to_string()],
            serde_json::Value::Null
        )
    );
    let hello = serde_json::json!({ "model": "m", "tools": all, "tool_choice": "required",
        "messages": [{ "role": "user", "content": "Hello there" }] });
    let v: serde_json::Value = post(&emu, &hello).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls", "{v}");
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn the_tool_choice_is_honoured_through_our_client_too() {
    // A conversation whose next step is one lookup, with only that tool offered one at a time.
    let (emu, _) = emulator(fast()).await;
    let mut req = ask(LOOKUP);
    req.tools.retain(|t| t.name == "find_patient");
    let (events, err) = collect(&client(&emu, |_| {}), req).await;
    assert!(err.is_none(), "{err:?}");
    let names: Vec<String> = calls_of(&events).into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["find_patient"]);
}

/// The `data:` payloads of a streamed response (without `[DONE]`).
async fn sse_chunks(resp: reqwest::Response) -> Vec<serde_json::Value> {
    let text = resp.text().await.unwrap();
    let datas: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(datas.last(), Some(&"[DONE]"), "{text}");
    datas[..datas.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[tokio::test]
async fn include_usage_puts_null_usage_on_every_chunk_but_the_last() {
    let (emu, _) = emulator(fast()).await;
    let body = serde_json::json!({ "model": "m", "stream": true, "stream_options": { "include_usage": true },
        "messages": [{ "role": "user", "content": "Hello there" }] });
    let chunks = sse_chunks(post(&emu, &body).await).await;
    let (last, rest) = chunks.split_last().unwrap();
    assert!(rest.len() > 3);
    for c in rest {
        assert!(
            c.as_object().unwrap().get("usage") == Some(&serde_json::Value::Null),
            "{c}"
        );
    }
    assert_eq!(last["choices"], serde_json::json!([]));
    assert!(last["usage"]["total_tokens"].as_u64().unwrap() > 0);
    // Without the option there is no usage at all.
    let body = serde_json::json!({ "model": "m", "stream": true, "messages": [{ "role": "user", "content": "Hello there" }] });
    let chunks = sse_chunks(post(&emu, &body).await).await;
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
}

fn plain_hello() -> serde_json::Value {
    serde_json::json!({ "model": "m", "messages": [{ "role": "user", "content": "Hello there" }] })
}

#[tokio::test]
async fn plain_requests_get_every_fault_and_count_it() {
    let (emu, _) = emulator(fast()).await;
    let url = format!("{}/v1/chat/completions", emu.http_url());
    let send = |timeout_ms: u64| {
        reqwest::Client::new()
            .post(&url)
            .bearer_auth(KEY)
            .json(&plain_hello())
            .timeout(Duration::from_millis(timeout_ms))
            .send()
    };
    emu.faults.force_next(FaultKind::DropSocket);
    let got = match send(5_000).await {
        Ok(r) => r.bytes().await.map(|b| b.len()),
        Err(e) => Err(e),
    };
    assert!(got.is_err(), "a dropped connection, not a body: {got:?}");
    emu.faults.force_next(FaultKind::Stall);
    let started = Instant::now();
    let err = send(400).await.unwrap_err();
    assert!(
        err.is_timeout() && started.elapsed() >= Duration::from_millis(400),
        "{err:?}"
    );
    emu.faults.force_next(FaultKind::MalformedJson);
    let resp = send(5_000).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.bytes().await.unwrap();
    assert!(serde_json::from_slice::<serde_json::Value>(&body).is_err());
    emu.faults.force_next(FaultKind::ErrorEvent);
    let resp = send(5_000).await.unwrap();
    assert_eq!(resp.status(), 500);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "server_error");
    let n = emu.faults.injected();
    for k in [
        FaultKind::DropSocket,
        FaultKind::Stall,
        FaultKind::MalformedJson,
        FaultKind::ErrorEvent,
    ] {
        assert_eq!(n.get(&k), Some(&1), "{k:?}: {n:?}");
    }
    // And the next request is served normally.
    assert_eq!(send(5_000).await.unwrap().status(), 200);
}

#[tokio::test]
async fn the_error_event_fault_kind_reaches_the_stream() {
    let (emu, ctl) = emulator(fast()).await;
    emu.faults.force_next(FaultKind::ErrorEvent);
    let (events, err) = collect(&client(&emu, |_| {}), ask("hi")).await;
    assert!(!text_of(&events).is_empty(), "some tokens came first");
    assert!(
        matches!(&err, Some(LlmError::Server(m)) if m.contains("server_error")),
        "{err:?}"
    );
    assert_eq!(ctl.requests(), 1);
    assert_eq!(emu.faults.injected().get(&FaultKind::ErrorEvent), Some(&1));
}

#[tokio::test]
async fn a_fault_after_more_messages_than_the_answer_has_still_strikes() {
    let mut cfg = fast();
    cfg.faults.after_messages = 1_000;
    let (emu, _) = emulator(cfg).await;
    emu.faults.force_next(FaultKind::DropSocket);
    let (_, err) = collect(&client(&emu, |_| {}), ask("Hello there")).await;
    assert!(matches!(err, Some(LlmError::Stream(_))), "{err:?}");
}

#[tokio::test]
async fn every_sdk_request_shape_is_accepted_and_invalid_ones_get_the_apis_400() {
    let (emu, _) = emulator(fast()).await;
    let body = serde_json::json!({
        "model": "gpt-4o-mini", "stream": false, "max_completion_tokens": 100, "temperature": 0.2,
        "seed": 1, "user": "u", "metadata": { "a": "b" }, "store": false, "response_format": { "type": "text" },
        "a_parameter_from_next_year": true, "tools": wire_tools(&["find_patient"]),
        "tool_choice": { "type": "function", "function": { "name": "find_patient" } }, "parallel_tool_calls": false,
        "messages": [
            { "role": "developer", "content": [{ "type": "text", "text": "Be brief." }] },
            { "role": "user", "content": [{ "type": "text", "text": "Hello" }] },
            { "role": "assistant", "content": null, "refusal": null, "tool_calls": [{ "id": "call_9", "type": "function",
                "function": { "name": "find_patient", "arguments": "{}" } }] },
            { "role": "tool", "tool_call_id": "call_9", "content": "{\"result\":[]}" },
        ],
    });
    let resp = post(&emu, &body).await;
    assert_eq!(resp.status(), 200);
    let bad = [
        serde_json::json!({ "model": "m", "messages": [{ "role": "robot", "content": "hi" }] }),
        serde_json::json!({ "model": "m", "messages": [{ "role": "user", "content": "hi" }], "temperature": 3 }),
        serde_json::json!({ "model": "m", "messages": [{ "role": "user", "content": "hi" }], "tool_choice": "auto" }),
        serde_json::json!({ "model": "m", "messages": [] }),
        serde_json::json!({ "messages": [{ "role": "user", "content": "hi" }] }),
    ];
    for b in bad {
        let resp = post(&emu, &b).await;
        assert_eq!(resp.status(), 400, "{b}");
        let v: serde_json::Value = resp.json().await.unwrap();
        let e = v["error"].as_object().unwrap();
        let mut keys: Vec<&str> = e.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["code", "message", "param", "type"], "{v}");
        assert_eq!(e["type"], "invalid_request_error");
    }
}

#[tokio::test]
async fn max_completion_tokens_and_stop_end_the_answer() {
    let (emu, _) = emulator(fast()).await;
    let mut body = plain_hello();
    body["max_completion_tokens"] = serde_json::json!(3);
    let v: serde_json::Value = post(&emu, &body).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["choices"][0]["message"]["content"], "I can book,");
    // A stop sequence ends the text before it, with finish reason stop.
    let mut body = plain_hello();
    body["stop"] = serde_json::json!([" or", "?"]);
    let v: serde_json::Value = post(&emu, &body).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["choices"][0]["message"]["content"], "I can book, move");
}
