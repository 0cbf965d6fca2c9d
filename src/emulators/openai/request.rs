//! The chat-completions request as the API reads it: every parameter the SDK can send is
//! accepted (unknown ones too: the API adds them faster than an emulator can), the ones the
//! emulator acts on are type-checked, and a request the API would refuse gets its 400 error
//! (`{"error":{message,type:"invalid_request_error",param,code}}`).

use frontdesk_actors::provider::{ChatMessage, ChatRequest, Role, ToolCall};
use serde_json::Value;

use super::choice::ToolUse;

/// What the API says about a refused request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub message: String,
    pub param: Option<String>,
    pub code: Option<&'static str>,
}

impl Invalid {
    pub fn new(message: String, param: &str, code: Option<&'static str>) -> Self {
        Self {
            message,
            param: Some(param.to_string()),
            code,
        }
    }

    pub fn missing(param: &str) -> Self {
        let msg = format!("Missing required parameter: '{param}'.");
        Self::new(msg, param, Some("missing_required_parameter"))
    }

    pub fn type_of(param: &str, expected: &str) -> Self {
        let msg = format!("Invalid type for '{param}': expected {expected}.");
        Self::new(msg, param, Some("invalid_type"))
    }
}

/// One chat-completions request, checked.
#[derive(Clone, Debug)]
pub struct Request {
    pub model: String,
    /// The conversation for the receptionist (tools are decided by `tools`).
    pub chat: ChatRequest,
    pub stream: bool,
    pub include_usage: bool,
    /// `max_completion_tokens` (or the older `max_tokens`).
    pub max_tokens: Option<u64>,
    /// Stop sequences: the answer ends before the first one.
    pub stop: Vec<String>,
    pub tools: ToolUse,
}

/// Check `wire` (the parsed body) and read what the emulator acts on.
pub fn parse(wire: &Value) -> Result<Request, Invalid> {
    if !wire.is_object() {
        return Err(Invalid::type_of("body", "an object"));
    }
    let model = match &wire["model"] {
        Value::String(s) => s.clone(),
        Value::Null => return Err(Invalid::missing("model")),
        _ => return Err(Invalid::type_of("model", "a string")),
    };
    let stream = flag(wire, "stream")?;
    let include_usage = stream_options(wire, stream)?;
    numbers(wire)?;
    let max_tokens = max_tokens(wire)?;
    let stop = stop(&wire["stop"])?;
    response_format(&wire["response_format"])?;
    let tools = ToolUse::parse(wire)?;
    let messages = messages(wire)?;
    Ok(Request {
        model,
        chat: ChatRequest {
            messages,
            tools: vec![],
        },
        stream,
        include_usage,
        max_tokens,
        stop,
        tools,
    })
}

/// `stop`: a string or up to four strings.
fn stop(v: &Value) -> Result<Vec<String>, Invalid> {
    let list = match v {
        Value::Null => vec![],
        Value::String(s) => vec![s.clone()],
        Value::Array(a) if a.len() <= 4 => a
            .iter()
            .map(|s| s.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| Invalid::type_of("stop", "a string or an array of strings"))?,
        Value::Array(_) => {
            let msg = "Invalid 'stop': array too long. Expected an array with maximum length 4.";
            return Err(Invalid::new(
                msg.into(),
                "stop",
                Some("array_above_max_length"),
            ));
        }
        _ => return Err(Invalid::type_of("stop", "a string or an array of strings")),
    };
    Ok(list.into_iter().filter(|s| !s.is_empty()).collect())
}

/// A boolean parameter (absent or null: false).
fn flag(wire: &Value, key: &str) -> Result<bool, Invalid> {
    match &wire[key] {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        _ => Err(Invalid::type_of(key, "a boolean")),
    }
}

/// `stream_options.include_usage`; the options only go with `stream: true`.
fn stream_options(wire: &Value, stream: bool) -> Result<bool, Invalid> {
    match &wire["stream_options"] {
        Value::Null => Ok(false),
        Value::Object(_) if !stream => Err(Invalid::new(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.".into(),
            "stream_options",
            None,
        )),
        Value::Object(o) => match o.get("include_usage") {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(Invalid::type_of(
                "stream_options.include_usage",
                "a boolean",
            )),
        },
        _ => Err(Invalid::type_of("stream_options", "an object")),
    }
}

/// Sampling parameters: numbers within the API's ranges (the values themselves change nothing).
fn numbers(wire: &Value) -> Result<(), Invalid> {
    let ranges = [
        ("temperature", 0.0, 2.0),
        ("top_p", 0.0, 1.0),
        ("frequency_penalty", -2.0, 2.0),
        ("presence_penalty", -2.0, 2.0),
    ];
    for (key, lo, hi) in ranges {
        match &wire[key] {
            Value::Null => {}
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                if !(lo..=hi).contains(&x) {
                    let msg = format!("Invalid '{key}': expected a value between {lo} and {hi}, but got {n} instead.");
                    return Err(Invalid::new(msg, key, Some("invalid_value")));
                }
            }
            _ => return Err(Invalid::type_of(key, "a decimal")),
        }
    }
    for key in ["n", "seed", "top_logprobs"] {
        if !wire[key].is_null() && !wire[key].is_i64() {
            return Err(Invalid::type_of(key, "an integer"));
        }
    }
    Ok(())
}

fn max_tokens(wire: &Value) -> Result<Option<u64>, Invalid> {
    let mut out = None;
    for key in ["max_tokens", "max_completion_tokens"] {
        match &wire[key] {
            Value::Null => {}
            v => match v.as_u64().filter(|n| *n >= 1) {
                Some(n) => out = Some(n),
                None => return Err(Invalid::type_of(key, "an integer of at least 1")),
            },
        }
    }
    Ok(out)
}

/// `text`, `json_object` and `json_schema` are accepted; the answer stays text.
fn response_format(v: &Value) -> Result<(), Invalid> {
    match v {
        Value::Null => Ok(()),
        _ => match v["type"].as_str() {
            Some("text" | "json_object" | "json_schema") => Ok(()),
            _ => Err(Invalid::new(
                format!("Invalid value: {}. Supported values are: 'text', 'json_object', and 'json_schema'.", v["type"]),
                "response_format.type",
                Some("invalid_value"),
            )),
        },
    }
}

fn messages(wire: &Value) -> Result<Vec<ChatMessage>, Invalid> {
    let list = match &wire["messages"] {
        Value::Null => return Err(Invalid::missing("messages")),
        Value::Array(a) => a,
        _ => return Err(Invalid::type_of("messages", "an array")),
    };
    if list.is_empty() {
        return Err(Invalid::new(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.".into(),
            "messages",
            Some("empty_array"),
        ));
    }
    list.iter()
        .enumerate()
        .filter_map(|(i, m)| message(i, m).transpose())
        .collect()
}

/// One message; `None` for the deprecated `function` role (accepted, not read).
fn message(i: usize, m: &Value) -> Result<Option<ChatMessage>, Invalid> {
    let at = |k: &str| format!("messages[{i}].{k}");
    let role = match m["role"].as_str() {
        Some("system" | "developer") => Role::System,
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        Some("tool") => Role::Tool,
        Some("function") => return Ok(None),
        Some(other) => {
            let msg = format!("Invalid value: '{other}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.");
            return Err(Invalid::new(msg, &at("role"), Some("invalid_value")));
        }
        None => return Err(Invalid::missing(&at("role"))),
    };
    let tool_calls = tool_calls(i, m)?;
    // Only an assistant message that calls tools (or refuses) may go without content.
    let may_omit = role == Role::Assistant
        && (m["tool_calls"].as_array().is_some_and(|a| !a.is_empty())
            || !m["function_call"].is_null()
            || !m["refusal"].is_null());
    let content = content(&m["content"], may_omit).ok_or_else(|| match &m["content"] {
        Value::Null => Invalid::missing(&at("content")),
        _ => Invalid::type_of(&at("content"), "a string or an array of content parts"),
    })?;
    let tool_call_id = match (role, &m["tool_call_id"]) {
        (_, Value::String(s)) => Some(s.clone()),
        (Role::Tool, _) => return Err(Invalid::missing(&at("tool_call_id"))),
        _ => None,
    };
    Ok(Some(ChatMessage {
        role,
        content,
        tool_calls,
        tool_call_id,
    }))
}

/// A message's text: a string, text parts joined (other parts, such as images, are skipped), or
/// nothing where that is allowed.
fn content(v: &Value, may_omit: bool) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Null if may_omit => Some(String::new()),
        Value::Array(parts) => {
            let mut texts = vec![];
            for p in parts {
                match (p["type"].as_str(), &p["text"]) {
                    (Some("text"), Value::String(t)) => texts.push(t.as_str()),
                    (Some("text"), _) | (None, _) => return None,
                    _ => {}
                }
            }
            Some(texts.join(" "))
        }
        _ => None,
    }
}

/// An assistant message's `tool_calls` (function calls; custom tool calls are skipped).
fn tool_calls(i: usize, m: &Value) -> Result<Vec<ToolCall>, Invalid> {
    let calls = match &m["tool_calls"] {
        Value::Null => return Ok(vec![]),
        Value::Array(a) => a,
        _ => {
            return Err(Invalid::type_of(
                &format!("messages[{i}].tool_calls"),
                "an array",
            ))
        }
    };
    let mut out = vec![];
    for (j, c) in calls.iter().enumerate() {
        if c["type"] == "custom" {
            continue;
        }
        let at = |k: &str| format!("messages[{i}].tool_calls[{j}].{k}");
        let field = |v: &Value, k: &str| {
            v.as_str()
                .map(String::from)
                .ok_or_else(|| Invalid::missing(&at(k)))
        };
        out.push(ToolCall {
            id: field(&c["id"], "id")?,
            name: field(&c["function"]["name"], "function.name")?,
            arguments: field(&c["function"]["arguments"], "function.arguments")?,
        });
    }
    Ok(out)
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
