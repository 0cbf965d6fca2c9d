//! Environment variables: the one table of which variable sets which key, applied onto the merged
//! TOML before deserialising (so a variable is checked exactly like a file value).

use toml::{Table, Value};

use super::Vars;

/// Chooses the environment file (`--env` wins over it).
pub const ENV_VAR: &str = "FRONTDESK_ENV";

/// How a variable's text becomes a TOML value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Str,
    /// Never echoed in an error.
    Secret,
    /// An integer in `min..=max` (the range of the field it sets).
    Int(i64, i64),
    Float,
    /// One of these words (checked here so the error names the variable).
    Choice(&'static [&'static str]),
    /// A base URL, as the vendors' SDKs take it: when it has no path, this one is appended (so
    /// `ws://127.0.0.1:8002` and `wss://api.deepgram.com/v1/listen` both work).
    Endpoint(&'static str),
}

/// One variable: its name, the key it sets, its kind, what it means (for `.env.example`/README).
#[derive(Clone, Copy, Debug)]
pub struct Var {
    pub name: &'static str,
    pub key: &'static str,
    pub kind: Kind,
    pub meaning: &'static str,
}

const fn var(name: &'static str, key: &'static str, kind: Kind, meaning: &'static str) -> Var {
    Var {
        name,
        key,
        kind,
        meaning,
    }
}

/// Every variable the loader reads (besides `FRONTDESK_ENV`).
pub const VARS: &[Var] = &[
    var(
        "DATABASE_URL",
        "database.url",
        Kind::Secret,
        "postgres:// or sqlite://PATH URL; empty: embedded SQLite (database.sqlite_path)",
    ),
    var(
        "LIVEKIT_URL",
        "worker.url",
        Kind::Str,
        "LiveKit server, wss:// in production",
    ),
    var(
        "LIVEKIT_API_KEY",
        "worker.api_key",
        Kind::Secret,
        "LiveKit API key",
    ),
    var(
        "LIVEKIT_API_SECRET",
        "worker.api_secret",
        Kind::Secret,
        "LiveKit API secret",
    ),
    var(
        "OPENAI_API_KEY",
        "providers.openai.api_key",
        Kind::Secret,
        "OpenAI (LLM) key",
    ),
    var(
        "DEEPGRAM_API_KEY",
        "providers.deepgram.api_key",
        Kind::Secret,
        "Deepgram (STT) key",
    ),
    var(
        "CARTESIA_API_KEY",
        "providers.cartesia.api_key",
        Kind::Secret,
        "Cartesia (TTS) key",
    ),
    var(
        "DEEPGRAM_BASE_URL",
        "providers.deepgram.url",
        Kind::Endpoint("/v1/listen"),
        "Deepgram live endpoint (ws:// or wss://); a bare host gets /v1/listen",
    ),
    var(
        "OPENAI_BASE_URL",
        "providers.openai.base_url",
        Kind::Str,
        "OpenAI-compatible server (http:// or https://); requests go to /v1/chat/completions",
    ),
    var(
        "CARTESIA_BASE_URL",
        "providers.cartesia.url",
        Kind::Endpoint("/tts/websocket"),
        "Cartesia TTS websocket (ws:// or wss://); a bare host gets /tts/websocket",
    ),
    var(
        "FRONTDESK_HTTP_BIND",
        "http.bind",
        Kind::Str,
        "health/metrics server address",
    ),
    var(
        "FRONTDESK_HTTP_PORT",
        "http.port",
        Kind::Int(1, 65_535),
        "health/metrics server port",
    ),
    var(
        "FRONTDESK_LOG_LEVEL",
        "log.level",
        Kind::Str,
        "log filter, e.g. info or frontdesk=debug",
    ),
    var(
        "FRONTDESK_LOG_FORMAT",
        "log.format",
        Kind::Choice(&["pretty", "json"]),
        "pretty or json",
    ),
    var(
        "FRONTDESK_AGENT_NAME",
        "worker.agent_name",
        Kind::Str,
        "LiveKit dispatch name",
    ),
    var(
        "FRONTDESK_MAX_CALLS",
        "worker.max_calls",
        Kind::Int(1, u32::MAX as i64),
        "concurrent calls per process",
    ),
    var(
        "FRONTDESK_LOAD_THRESHOLD",
        "worker.load_threshold",
        Kind::Float,
        "load (0..1] refusing jobs",
    ),
];

/// The variable that sets `key`, if any.
pub fn for_key(key: &str) -> Option<&'static Var> {
    VARS.iter().find(|v| v.key == key)
}

/// The value of each variable present in `vars`, as (variable, value); and the values that do not
/// parse, each naming the variable and its key.
pub fn values(vars: &Vars) -> (Vec<(&'static Var, Value)>, Vec<String>) {
    let mut out = vec![];
    let mut errors = vec![];
    for v in VARS {
        let Some(raw) = vars.get(v.name) else {
            continue;
        };
        match value(v, raw) {
            Ok(value) => out.push((v, value)),
            Err(e) => errors.push(e),
        }
    }
    (out, errors)
}

/// A table holding only `value` at the dotted `key`.
pub fn table_with(key: &str, value: Value) -> Table {
    let mut table = Table::new();
    set(&mut table, key, value);
    table
}

/// `raw` with `path` appended when it names no path; anything unparsable is left for the
/// validation to name.
fn endpoint(raw: &str, path: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if matches!(u.path(), "" | "/") && !u.cannot_be_a_base() => {
            u.set_path(path);
            u.to_string()
        }
        _ => raw.to_owned(),
    }
}

fn value(v: &Var, raw: &str) -> Result<Value, String> {
    let bad = |what: &str| format!("{} ({}): {raw:?} is not {what}", v.key, v.name);
    match v.kind {
        Kind::Str | Kind::Secret => Ok(Value::String(raw.to_owned())),
        Kind::Endpoint(path) => Ok(Value::String(endpoint(raw.trim(), path))),
        Kind::Int(min, max) => match raw.trim().parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Value::Integer(n)),
            _ => Err(bad(&format!("an integer in {min}..={max}"))),
        },
        Kind::Float => raw
            .trim()
            .parse()
            .map(Value::Float)
            .map_err(|_| bad("a number")),
        Kind::Choice(words) => match words.iter().find(|w| **w == raw.trim()) {
            Some(w) => Ok(Value::String((*w).to_owned())),
            None => Err(bad(&format!("one of {}", words.join(", ")))),
        },
    }
}

/// Set a dotted `key`, creating the tables on the way (a layer may not have mentioned them).
fn set(table: &mut Table, key: &str, value: Value) {
    let mut parts: Vec<&str> = key.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut at = table;
    for part in parts {
        let entry = at.entry(part).or_insert_with(|| Value::Table(Table::new()));
        if !entry.is_table() {
            *entry = Value::Table(Table::new());
        }
        let Value::Table(next) = entry else { return };
        at = next;
    }
    at.insert(last.to_owned(), value);
}

/// Name the variable next to the key an error starts with, so whoever reads it knows what to set
/// ("database.url must be…" → "database.url (DATABASE_URL) must be…").
pub fn annotate(error: &str) -> String {
    for v in VARS {
        let Some(rest) = error.strip_prefix(v.key) else {
            continue;
        };
        let boundary = rest.starts_with([' ', ':']) || rest.is_empty();
        if boundary && !error.contains(v.name) {
            return format!("{} ({}){rest}", v.key, v.name);
        }
    }
    error.to_owned()
}
