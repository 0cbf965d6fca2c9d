use serde_json::json;

use super::*;

fn ok(v: Value) -> Request {
    parse(&v).unwrap()
}

fn bad(v: Value) -> Invalid {
    parse(&v).unwrap_err()
}

fn user(text: &str) -> Value {
    json!([{ "role": "user", "content": text }])
}

#[test]
fn everything_the_sdk_sends_is_accepted() {
    let r = ok(json!({
        "model": "gpt-4o-mini", "stream": true, "stream_options": { "include_usage": true },
        "max_completion_tokens": 50, "temperature": 0.2, "top_p": 1, "seed": 7, "n": 1,
        "user": "u1", "metadata": { "k": "v" }, "store": false, "service_tier": "auto",
        "response_format": { "type": "text" }, "reasoning_effort": "low", "verbosity": "low",
        "prompt_cache_key": "k", "safety_identifier": "s", "stop": ["x"], "logit_bias": {},
        "some_future_parameter": { "anything": true },
        "tools": [{ "type": "function", "function": { "name": "find_patient", "strict": true,
            "parameters": { "type": "object" } } }],
        "tool_choice": { "type": "function", "function": { "name": "find_patient" } },
        "parallel_tool_calls": false,
        "messages": [
            { "role": "developer", "content": [{ "type": "text", "text": "Be brief." }] },
            { "role": "system", "content": "You are a receptionist.", "name": "sys" },
            { "role": "user", "content": [{ "type": "text", "text": "Hello" },
                { "type": "image_url", "image_url": { "url": "https://x/y.png" } },
                { "type": "text", "text": "there" }] },
            { "role": "assistant", "content": null, "tool_calls": [{ "id": "call_1", "type": "function",
                "function": { "name": "find_patient", "arguments": "{}" } }] },
            { "role": "tool", "tool_call_id": "call_1", "content": [{ "type": "text", "text": "{\"result\":[]}" }] },
            { "role": "assistant", "content": "Found nobody." },
            { "role": "function", "name": "old", "content": "x" },
        ],
    }));
    assert!(r.stream && r.include_usage);
    assert_eq!(r.max_tokens, Some(50));
    assert_eq!(r.model, "gpt-4o-mini");
    let m = &r.chat.messages;
    assert_eq!(m.len(), 6, "the deprecated function message is not read");
    assert_eq!(
        (m[0].role, m[0].content.as_str()),
        (Role::System, "Be brief.")
    );
    assert_eq!(m[2].content, "Hello there");
    assert_eq!(m[3].tool_calls[0].name, "find_patient");
    assert_eq!(m[4].tool_call_id.as_deref(), Some("call_1"));
    assert!(!r.tools.parallel);
    assert_eq!(r.stop, ["x"]);
    let one = ok(json!({ "model": "m", "stop": ".", "messages": user("hi") }));
    assert_eq!(one.stop, ["."]);
}

#[test]
fn plain_request_defaults() {
    let r = ok(json!({ "model": "m", "messages": user("hi") }));
    assert!(!r.stream && !r.include_usage && r.max_tokens.is_none());
    assert!(r.tools.declared.is_empty());
    assert_eq!(
        ok(json!({ "model": "m", "max_tokens": 3, "messages": user("hi") })).max_tokens,
        Some(3)
    );
}

#[test]
fn invalid_requests_get_the_apis_error() {
    let cases = [
        (
            json!({ "messages": user("hi") }),
            "model",
            Some("missing_required_parameter"),
        ),
        (
            json!({ "model": "m" }),
            "messages",
            Some("missing_required_parameter"),
        ),
        (
            json!({ "model": "m", "messages": [] }),
            "messages",
            Some("empty_array"),
        ),
        (
            json!({ "model": "m", "messages": "hi" }),
            "messages",
            Some("invalid_type"),
        ),
        (
            json!({ "model": "m", "messages": [{ "role": "robot", "content": "x" }] }),
            "messages[0].role",
            Some("invalid_value"),
        ),
        (
            json!({ "model": "m", "messages": [{ "content": "x" }] }),
            "messages[0].role",
            Some("missing_required_parameter"),
        ),
        (
            json!({ "model": "m", "messages": [{ "role": "user" }] }),
            "messages[0].content",
            Some("missing_required_parameter"),
        ),
        (
            json!({ "model": "m", "messages": [{ "role": "assistant", "content": null }] }),
            "messages[0].content",
            Some("missing_required_parameter"),
        ),
        (
            json!({ "model": "m", "messages": [{ "role": "user", "content": 5 }] }),
            "messages[0].content",
            Some("invalid_type"),
        ),
        (
            json!({ "model": "m", "messages": [{ "role": "tool", "content": "x" }] }),
            "messages[0].tool_call_id",
            Some("missing_required_parameter"),
        ),
        (
            json!({ "model": "m", "messages": [{ "role": "assistant", "content": null, "tool_calls": [{ "id": "c", "type": "function", "function": { "name": "f" } }] }] }),
            "messages[0].tool_calls[0].function.arguments",
            Some("missing_required_parameter"),
        ),
        (
            json!({ "model": "m", "messages": user("hi"), "temperature": 3 }),
            "temperature",
            Some("invalid_value"),
        ),
        (
            json!({ "model": "m", "messages": user("hi"), "temperature": "hot" }),
            "temperature",
            Some("invalid_type"),
        ),
        (
            json!({ "model": "m", "messages": user("hi"), "stream": "yes" }),
            "stream",
            Some("invalid_type"),
        ),
        (
            json!({ "model": "m", "messages": user("hi"), "stream_options": { "include_usage": true } }),
            "stream_options",
            None,
        ),
        (
            json!({ "model": "m", "messages": user("hi"), "max_completion_tokens": 0 }),
            "max_completion_tokens",
            Some("invalid_type"),
        ),
        (
            json!({ "model": "m", "messages": user("hi"), "n": 1.5 }),
            "n",
            Some("invalid_type"),
        ),
        (
            json!({ "model": "m", "messages": user("hi"), "response_format": { "type": "yaml" } }),
            "response_format.type",
            Some("invalid_value"),
        ),
        (
            json!({ "model": "m", "messages": user("hi"), "tool_choice": "none" }),
            "tool_choice",
            None,
        ),
        (
            json!({ "model": "m", "messages": user("hi"), "stop": 5 }),
            "stop",
            Some("invalid_type"),
        ),
        (
            json!({ "model": "m", "messages": user("hi"), "stop": ["a", "b", "c", "d", "e"] }),
            "stop",
            Some("array_above_max_length"),
        ),
    ];
    for (body, param, code) in cases {
        let e = bad(body.clone());
        assert_eq!(
            (e.param.as_deref(), e.code),
            (Some(param), code),
            "{body}: {e:?}"
        );
    }
    assert_eq!(bad(json!([1, 2])).code, Some("invalid_type"));
}
