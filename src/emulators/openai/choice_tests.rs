use serde_json::json;

use super::*;

fn tools(names: &[&str]) -> Value {
    let list: Vec<Value> = names
        .iter()
        .map(|n| {
            json!({ "type": "function", "function": { "name": n,
            "parameters": { "type": "object", "properties": { "name": { "type": "string" },
                "id": { "type": "integer" } }, "required": ["name", "id"] } } })
        })
        .collect();
    json!(list)
}

fn both() -> Reply {
    Reply {
        text: "One moment, let me check. ".into(),
        calls: vec![
            ("list_doctors".into(), json!({})),
            ("find_patient".into(), json!({ "name": "A B" })),
        ],
    }
}

fn names(r: &Reply) -> Vec<&str> {
    r.calls.iter().map(|(n, _)| n.as_str()).collect()
}

fn use_of(wire: Value) -> ToolUse {
    ToolUse::parse(&wire).unwrap()
}

#[test]
fn without_tools_the_reply_is_text() {
    let r = use_of(json!({})).apply(both());
    assert!(r.calls.is_empty());
    assert_eq!(r.text, NO_TOOLS);
    let plain = Reply {
        text: "Hello".into(),
        calls: vec![],
    };
    assert_eq!(use_of(json!({})).apply(plain.clone()), plain);
}

#[test]
fn only_declared_tools_are_called() {
    let t = use_of(json!({ "tools": tools(&["find_patient"]) }));
    assert_eq!(names(&t.apply(both())), ["find_patient"]);
    let all = use_of(json!({ "tools": tools(&["list_doctors", "find_patient"]) }));
    assert_eq!(names(&all.apply(both())), ["list_doctors", "find_patient"]);
}

#[test]
fn none_auto_required_and_named() {
    let t = tools(&["list_doctors", "find_patient", "book_appointment"]);
    let none = use_of(json!({ "tools": t, "tool_choice": "none" })).apply(both());
    assert!(none.calls.is_empty() && none.text == NO_TOOLS);
    let auto = use_of(json!({ "tools": t, "tool_choice": "auto" })).apply(both());
    assert_eq!(names(&auto), ["list_doctors", "find_patient"]);
    let hello = Reply {
        text: "Hello".into(),
        calls: vec![],
    };
    let req = use_of(json!({ "tools": t, "tool_choice": "required" })).apply(hello.clone());
    assert_eq!(names(&req), ["list_doctors"]);
    assert_eq!(
        req.calls[0].1,
        json!({ "name": "", "id": 0 }),
        "required fields filled"
    );
    assert!(req.text.is_empty(), "a forced call has no content");
    let named = json!({ "tools": t, "tool_choice": { "type": "function", "function": { "name": "book_appointment" } } });
    let r = use_of(named.clone()).apply(both());
    assert_eq!(names(&r), ["book_appointment"]);
    let r = use_of(named).apply(hello);
    assert_eq!(names(&r), ["book_appointment"]);
    let named = json!({ "tools": t, "tool_choice": { "type": "function", "function": { "name": "find_patient" } } });
    let r = use_of(named).apply(both());
    assert_eq!(
        r.calls,
        vec![("find_patient".into(), json!({ "name": "A B" }))],
        "the policy's own arguments kept"
    );
}

#[test]
fn parallel_false_keeps_one_call() {
    let t = tools(&["list_doctors", "find_patient"]);
    let r = use_of(json!({ "tools": t, "parallel_tool_calls": false })).apply(both());
    assert_eq!(names(&r), ["list_doctors"]);
    assert_eq!(r.text, "One moment, let me check. ");
}

#[test]
fn allowed_tools_narrow_the_set() {
    let t = tools(&["list_doctors", "find_patient"]);
    let choice = json!({ "type": "allowed_tools", "allowed_tools": { "mode": "auto",
        "tools": [{ "type": "function", "function": { "name": "find_patient" } }] } });
    let r = use_of(json!({ "tools": t, "tool_choice": choice })).apply(both());
    assert_eq!(names(&r), ["find_patient"]);
}

#[test]
fn invalid_tool_settings_are_the_apis_400() {
    let t = tools(&["list_doctors"]);
    let bad = |w: Value| ToolUse::parse(&w).unwrap_err();
    assert_eq!(
        bad(json!({ "tool_choice": "auto" })).param.as_deref(),
        Some("tool_choice")
    );
    assert_eq!(
        bad(json!({ "parallel_tool_calls": true })).param.as_deref(),
        Some("parallel_tool_calls")
    );
    assert_eq!(bad(json!({ "tools": [] })).code, Some("empty_array"));
    let named = json!({ "type": "function", "function": { "name": "nope" } });
    assert_eq!(
        bad(json!({ "tools": t, "tool_choice": named })).code,
        Some("invalid_value")
    );
    assert_eq!(
        bad(json!({ "tools": t, "tool_choice": "sometimes" }))
            .param
            .as_deref(),
        Some("tool_choice")
    );
    assert_eq!(
        bad(json!({ "tools": [{ "type": "function" }] })).code,
        Some("missing_required_parameter")
    );
    assert_eq!(
        bad(json!({ "tools": t, "parallel_tool_calls": "no" })).code,
        Some("invalid_type")
    );
    let spaced = json!([{ "type": "function", "function": { "name": "two words" } }]);
    assert_eq!(bad(json!({ "tools": spaced })).code, Some("invalid_value"));
}
