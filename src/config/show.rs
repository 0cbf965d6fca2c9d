//! `frontdesk config show`: the merged configuration, one line per value with the layer it came
//! from, secrets redacted. Keys no layer sets take their defaults in code and are not listed.

use toml::Value;

use super::source::Merged;
use super::vars::{Kind, VARS};

/// Printed instead of a secret that is set (an unset one prints as "").
pub const REDACTED: &str = "<set>";

/// Key names that hold credentials wherever they appear (a secondary provider's key, an
/// exporter's headers), besides the variables marked secret.
const SECRET_NAMES: &[&str] = &[
    "api_key",
    "api_secret",
    "password",
    "secret",
    "token",
    "headers",
];

/// One value: its dotted key, its printable (redacted) value, where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub key: String,
    pub value: Value,
    pub origin: String,
}

/// Every value of `merged`, sorted by key.
pub fn rows(merged: &Merged) -> Vec<Row> {
    let mut out = vec![];
    walk(merged, merged.table(), &mut vec![], &mut out);
    out
}

fn walk<'t>(merged: &Merged, table: &'t toml::Table, path: &mut Vec<&'t str>, out: &mut Vec<Row>) {
    for (key, value) in table {
        path.push(key);
        match value {
            Value::Table(inner) => walk(merged, inner, path, out),
            leaf => out.push(Row {
                key: path
                    .iter()
                    .map(|k| bare_or_quoted(k))
                    .collect::<Vec<_>>()
                    .join("."),
                value: redact(path, leaf),
                origin: merged
                    .origin(path)
                    .map_or_else(|| "unknown".to_string(), ToString::to_string),
            }),
        }
        path.pop();
    }
}

/// The text form: a header naming the environment and the layers, then `key = value  # origin`
/// (each line valid TOML).
pub fn text(merged: &Merged) -> String {
    let rows = rows(merged);
    let lines: Vec<String> = rows
        .iter()
        .map(|r| format!("{} = {}", r.key, r.value))
        .collect();
    // Aligned comments, except past a long value (a prompt) that would push every line out.
    let width = lines
        .iter()
        .map(|l| l.chars().count())
        .filter(|n| *n <= 60)
        .max()
        .unwrap_or(0);
    let mut out = format!(
        "# environment: {}\n# layers, later wins: {}\n# keys not listed take their defaults in code\n",
        merged.environment.name(),
        merged.sources().join(" < ")
    );
    for (line, row) in lines.iter().zip(&rows) {
        out.push_str(&format!("{line:<width$}  # {}\n", row.origin));
    }
    out
}

/// The JSON form: `{"environment", "layers", "values": {"dotted.key": {"value", "origin"}}}`.
pub fn json(merged: &Merged) -> serde_json::Value {
    let values: serde_json::Map<String, serde_json::Value> = rows(merged)
        .into_iter()
        .map(|r| {
            let value = serde_json::to_value(&r.value)
                .unwrap_or_else(|_| serde_json::Value::String(r.value.to_string()));
            (
                r.key,
                serde_json::json!({ "value": value, "origin": r.origin }),
            )
        })
        .collect();
    serde_json::json!({
        "environment": merged.environment.name(),
        "layers": merged.sources(),
        "values": values,
    })
}

/// Whether the value at `path` is a credential: a variable marked secret sets it, or its name
/// says so.
pub fn is_secret(path: &[&str]) -> bool {
    let dotted = path.join(".");
    let last = path.last().copied().unwrap_or_default();
    VARS.iter()
        .any(|v| v.kind == Kind::Secret && v.key == dotted)
        || SECRET_NAMES
            .iter()
            .any(|s| last == *s || last.ends_with(&format!("_{s}")))
}

/// `value` as it may be printed: a secret as [`REDACTED`] (or "" when empty), a URL's password
/// masked.
fn redact(path: &[&str], value: &Value) -> Value {
    if is_secret(path) {
        let empty = value.as_str().is_some_and(str::is_empty);
        return Value::String(if empty { "" } else { REDACTED }.into());
    }
    match value {
        Value::String(s) => Value::String(mask_password(s)),
        Value::Array(items) => Value::Array(items.iter().map(|v| redact(path, v)).collect()),
        Value::Table(t) => Value::Table(
            t.iter()
                .map(|(k, v)| {
                    let mut inner = path.to_vec();
                    inner.push(k);
                    (k.clone(), redact(&inner, v))
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn mask_password(s: &str) -> String {
    match url::Url::parse(s) {
        Ok(mut u) if u.password().is_some() => {
            // Only fails on URLs that cannot have a password, and this one has one.
            let _ = u.set_password(Some("****"));
            u.to_string()
        }
        _ => s.to_owned(),
    }
}

/// A key as TOML writes it: bare when it can be.
fn bare_or_quoted(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_owned()
    } else {
        Value::String(key.to_owned()).to_string()
    }
}
