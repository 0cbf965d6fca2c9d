use super::*;
use frontdesk_actors::provider::ToolSpec;
use proptest::prelude::*;

const P: BodyParams<'static> = BodyParams {
    model: "gpt-4o-mini",
    temperature: Some(0.5),
    max_tokens: None,
};

#[test]
fn body_has_the_reference_shape() {
    let mut asst = ChatMessage::assistant("");
    asst.tool_calls = vec![ToolCall {
        id: "call_1".into(),
        name: "list_doctors".into(),
        arguments: "{}".into(),
    }];
    let req = ChatRequest {
        messages: vec![
            ChatMessage::system("be nice"),
            ChatMessage::user("hi"),
            asst,
            ChatMessage::tool_result("call_1", "{\"result\":[]}"),
        ],
        tools: vec![ToolSpec {
            name: "list_doctors".into(),
            description: "d".into(),
            parameters: json!({"type":"object"}),
        }],
    };
    let b = build_body(&P, &req);
    assert_eq!(b["stream"], true);
    assert_eq!(b["stream_options"]["include_usage"], true);
    assert_eq!(
        b["messages"][0],
        json!({"role":"system","content":"be nice"})
    );
    assert_eq!(b["messages"][2]["content"], Value::Null);
    assert_eq!(
        b["messages"][2]["tool_calls"][0]["function"]["name"],
        "list_doctors"
    );
    assert_eq!(b["messages"][2]["tool_calls"][0]["type"], "function");
    assert_eq!(
        b["messages"][3],
        json!({"role":"tool","tool_call_id":"call_1","content":"{\"result\":[]}"})
    );
    assert_eq!(
        b["tools"][0]["function"]["parameters"],
        json!({"type":"object"})
    );
    assert_eq!(b["tool_choice"], "auto");
    assert_eq!(b["parallel_tool_calls"], true);
    let plain = build_body(
        &P,
        &ChatRequest {
            messages: vec![],
            tools: vec![],
        },
    );
    assert!(plain.get("tools").is_none() && plain.get("parallel_tool_calls").is_none());
}

#[test]
fn fragments_accumulate_by_index() {
    let mut d = StreamDecoder::default();
    let frames = [
        r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"a","type":"function","function":{"name":"find_patient","arguments":""}}]},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"b","type":"function","function":{"name":"list_doctors","arguments":"{\"spec"}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"name\":"}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"ialty\":\"x\"}"}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"E\"}"}}]}}]}"#,
    ];
    for f in frames {
        assert!(d.on_data(f).is_empty());
    }
    let out: Vec<_> = d
        .on_data(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        out,
        vec![
            LlmEvent::ToolCall(ToolCall {
                id: "a".into(),
                name: "find_patient".into(),
                arguments: "{\"name\":\"E\"}".into()
            }),
            LlmEvent::ToolCall(ToolCall {
                id: "b".into(),
                name: "list_doctors".into(),
                arguments: "{\"specialty\":\"x\"}".into()
            }),
        ]
    );
    let u = d.on_data(
        r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#,
    );
    assert_eq!(
        u[0].as_ref().unwrap(),
        &LlmEvent::Usage(Usage {
            prompt_tokens: 3,
            completion_tokens: 4
        })
    );
    assert_eq!(d.on_data("[DONE]")[0].as_ref().unwrap(), &LlmEvent::Done);
    assert!(d.done);
}

#[test]
fn errors_and_garbage() {
    let mut d = StreamDecoder::default();
    assert!(d.on_data("{not json").is_empty());
    assert_eq!(d.bad_messages, 1);
    let e =
        d.on_data(r#"{"error":{"message":"boom","type":"server_error","param":null,"code":null}}"#);
    assert!(matches!(&e[0], Err(LlmError::Server(m)) if m.contains("boom")));
    d.tools.push(0, None, None, "{}");
    let mut out = vec![];
    d.flush(&mut out);
    assert!(out.is_empty());
    assert_eq!(d.bad_messages, 2);
}

#[test]
fn http_classification() {
    let body = |code: &str| {
        format!(r#"{{"error":{{"message":"m","type":"t","param":null,"code":"{code}"}}}}"#)
    };
    assert!(matches!(
        classify(401, None, &body("invalid_api_key")),
        HttpFailure {
            error: LlmError::Auth(_),
            retry: false
        }
    ));
    assert!(matches!(
        classify(429, Some(true), &body("insufficient_quota")),
        HttpFailure {
            error: LlmError::Quota(_),
            retry: false
        }
    ));
    assert!(matches!(
        classify(429, None, &body("rate_limit_exceeded")),
        HttpFailure {
            error: LlmError::RateLimited(_),
            retry: true
        }
    ));
    assert!(matches!(
        classify(503, None, "<html>"),
        HttpFailure {
            error: LlmError::Server(_),
            retry: true
        }
    ));
    assert!(matches!(
        classify(500, Some(false), ""),
        HttpFailure {
            error: LlmError::Server(_),
            retry: false
        }
    ));
    assert!(matches!(
        classify(422, None, &body("x")),
        HttpFailure {
            error: LlmError::BadRequest(_),
            retry: false
        }
    ));
    assert!(matches!(
        classify(400, Some(true), ""),
        HttpFailure { retry: true, .. }
    ));
}

proptest! {
    #[test]
    fn decoder_never_panics_on_garbage(s in ".{0,200}") {
        let mut d = StreamDecoder::default();
        let _ = d.on_data(&s);
    }

    #[test]
    fn decoder_never_panics_on_mutated_chunks(pos in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let good = r#"{"choices":[{"index":0,"delta":{"content":"hi","tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#;
        let mut bytes = good.as_bytes().to_vec();
        let i = pos.index(bytes.len());
        bytes[i] = byte;
        bytes.truncate(cut.index(bytes.len() + 1).max(i));
        let mut d = StreamDecoder::default();
        let _ = d.on_data(&String::from_utf8_lossy(&bytes));
        let mut out = vec![];
        d.flush(&mut out);
    }
}
