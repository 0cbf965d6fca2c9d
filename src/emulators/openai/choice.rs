//! Which tools the "model" may call, from the request's `tools`, `tool_choice` and
//! `parallel_tool_calls`, and how the receptionist's reply is cut to fit: only declared tools are
//! called; `none` answers in text; `required` and a named function always call (the named one
//! only); `parallel_tool_calls: false` keeps one call. The request is checked as the API checks
//! it (a `tool_choice` without `tools`, a named function that is not declared: 400).

use serde_json::{json, Map, Value};

use super::policy::Reply;
use super::request::Invalid;

/// Said instead when every tool call the receptionist wanted is out of reach.
const NO_TOOLS: &str =
    "I'm sorry, I can't look that up right now. Is there anything else I can help with?";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    None,
    Auto,
    Required,
    /// `{"type":"function","function":{"name":...}}`: exactly this function.
    Named(String),
}

/// A declared function tool: its name and JSON-schema parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Declared {
    pub name: String,
    pub parameters: Value,
}

/// The request's tool settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolUse {
    /// Function tools, in declaration order (custom tools are accepted but never called).
    pub declared: Vec<Declared>,
    pub choice: Choice,
    /// `allowed_tools` narrows the callable set without changing the tools (prompt caching).
    pub allowed: Option<Vec<String>>,
    pub parallel: bool,
}

impl ToolUse {
    /// Read `tools`, `tool_choice` and `parallel_tool_calls` from the request body.
    pub fn parse(wire: &Value) -> Result<Self, Invalid> {
        let declared = declared(wire)?;
        let has_tools = wire.get("tools").is_some_and(|t| !t.is_null());
        for key in ["tool_choice", "parallel_tool_calls"] {
            if !wire[key].is_null() && !has_tools {
                return Err(Invalid::new(
                    format!("Invalid value for '{key}': '{key}' is only allowed when 'tools' are specified."),
                    key,
                    None,
                ));
            }
        }
        let parallel = match &wire["parallel_tool_calls"] {
            Value::Null => true,
            Value::Bool(b) => *b,
            _ => return Err(Invalid::type_of("parallel_tool_calls", "a boolean")),
        };
        let default = if has_tools {
            Choice::Auto
        } else {
            Choice::None
        };
        let (choice, allowed) = match &wire["tool_choice"] {
            Value::Null => (default, None),
            v => choice(v)?,
        };
        let names: Vec<&str> = declared.iter().map(|d| d.name.as_str()).collect();
        let named = match &choice {
            Choice::Named(n) => vec![n.clone()],
            _ => allowed.clone().unwrap_or_default(),
        };
        if let Some(missing) = named.iter().find(|n| !names.contains(&n.as_str())) {
            return Err(Invalid::new(
                format!("Invalid value for 'tool_choice': function '{missing}' is not among the declared 'tools'."),
                "tool_choice",
                Some("invalid_value"),
            ));
        }
        Ok(Self {
            declared,
            choice,
            allowed,
            parallel,
        })
    }

    /// Names the model may call.
    fn callable(&self) -> Vec<&Declared> {
        self.declared
            .iter()
            .filter(|d| match (&self.choice, &self.allowed) {
                (Choice::None, _) => false,
                (Choice::Named(n), _) => *n == d.name,
                (_, Some(allowed)) => allowed.contains(&d.name),
                (_, None) => true,
            })
            .collect()
    }

    /// The receptionist's `reply` as this request lets the model answer.
    pub fn apply(&self, reply: Reply) -> Reply {
        let callable = self.callable();
        let wanted = !reply.calls.is_empty();
        let mut calls: Vec<(String, Value)> = reply
            .calls
            .into_iter()
            .filter(|(name, _)| callable.iter().any(|d| d.name == *name))
            .collect();
        let forced = matches!(self.choice, Choice::Required | Choice::Named(_));
        if forced && calls.is_empty() {
            // The model must call something: the first callable tool, its required fields filled.
            if let Some(d) = callable.first() {
                calls.push((d.name.clone(), filler(&d.parameters)));
            }
        }
        if !self.parallel || matches!(self.choice, Choice::Named(_)) {
            calls.truncate(1);
        }
        let text = if forced && !calls.is_empty() {
            // A forced call comes without content, as from the API.
            String::new()
        } else if wanted && calls.is_empty() {
            NO_TOOLS.to_string()
        } else {
            reply.text
        };
        Reply { text, calls }
    }
}

/// The function tools of `tools` (absent: none); a malformed entry is the API's 400.
fn declared(wire: &Value) -> Result<Vec<Declared>, Invalid> {
    let tools = match &wire["tools"] {
        Value::Null => return Ok(vec![]),
        Value::Array(a) if a.is_empty() => {
            return Err(Invalid::new(
                "Invalid 'tools': empty array. Expected an array with minimum length 1, but got an empty array instead.".into(),
                "tools",
                Some("empty_array"),
            ))
        }
        Value::Array(a) => a,
        _ => return Err(Invalid::type_of("tools", "an array")),
    };
    let mut out = vec![];
    for (i, t) in tools.iter().enumerate() {
        match t["type"].as_str() {
            Some("function") => {
                let param = format!("tools[{i}].function.name");
                let name = t["function"]["name"]
                    .as_str()
                    .ok_or_else(|| Invalid::missing(&param))?;
                if !valid_name(name) {
                    return Err(Invalid::new(
                        format!("Invalid '{param}': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'."),
                        &param,
                        Some("invalid_value"),
                    ));
                }
                let parameters = t["function"]["parameters"].clone();
                out.push(Declared {
                    name: name.to_string(),
                    parameters,
                });
            }
            Some("custom") if t["custom"]["name"].is_string() => {}
            _ => return Err(invalid_value(&format!("tools[{i}].type"), &t["type"])),
        }
    }
    Ok(out)
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `tool_choice`: a mode string, a named function, or `allowed_tools` (mode and a subset).
fn choice(v: &Value) -> Result<(Choice, Option<Vec<String>>), Invalid> {
    let mode = |s: &str| match s {
        "none" => Some(Choice::None),
        "auto" => Some(Choice::Auto),
        "required" => Some(Choice::Required),
        _ => None,
    };
    if let Some(c) = v.as_str().and_then(mode) {
        return Ok((c, None));
    }
    match v["type"].as_str() {
        Some("function") => match v["function"]["name"].as_str() {
            Some(n) => Ok((Choice::Named(n.to_string()), None)),
            None => Err(Invalid::missing("tool_choice.function.name")),
        },
        Some("allowed_tools") => {
            let a = &v["allowed_tools"];
            let c = a["mode"]
                .as_str()
                .filter(|m| *m != "none")
                .and_then(mode)
                .ok_or_else(|| invalid_value("tool_choice.allowed_tools.mode", &a["mode"]))?;
            let names = a["tools"]
                .as_array()
                .ok_or_else(|| Invalid::missing("tool_choice.allowed_tools.tools"))?
                .iter()
                .filter_map(|t| t["function"]["name"].as_str().map(String::from))
                .collect();
            Ok((c, Some(names)))
        }
        // A named custom tool: accepted, though the receptionist only calls functions.
        Some("custom") if v["custom"]["name"].is_string() => Ok((Choice::None, None)),
        _ => Err(invalid_value("tool_choice", v)),
    }
}

fn invalid_value(param: &str, got: &Value) -> Invalid {
    Invalid::new(
        format!("Invalid value: {got}. Supported values are documented for '{param}'."),
        param,
        Some("invalid_value"),
    )
}

/// Arguments that satisfy a schema's required properties with neutral values.
fn filler(schema: &Value) -> Value {
    let mut out = Map::new();
    let required = schema["required"].as_array().cloned().unwrap_or_default();
    for key in required.iter().filter_map(Value::as_str) {
        let p = &schema["properties"][key];
        let v = match (p["enum"].get(0), p["type"].as_str()) {
            (Some(first), _) => first.clone(),
            (None, Some("string")) => json!(""),
            (None, Some("integer" | "number")) => json!(0),
            (None, Some("boolean")) => json!(false),
            (None, Some("array")) => json!([]),
            (None, Some("object")) => json!({}),
            _ => Value::Null,
        };
        out.insert(key.to_string(), v);
    }
    Value::Object(out)
}

#[cfg(test)]
#[path = "choice_tests.rs"]
mod tests;
