//! The TOML layers: parsed into tables, merged key by key, deserialised once at the end so unknown
//! keys are rejected whichever layer brought them.

use serde::de::DeserializeOwned;
use toml::Table;

use super::{AppConfig, ConfigError, Environment};

const DEVELOPMENT: &str = include_str!("../../config/development.toml");
const STAGING: &str = include_str!("../../config/staging.toml");
const PRODUCTION: &str = include_str!("../../config/production.toml");

/// The embedded file of `env`: (its path, for messages; its text).
pub fn env_file(env: Environment) -> (&'static str, &'static str) {
    match env {
        Environment::Development => ("config/development.toml", DEVELOPMENT),
        Environment::Staging => ("config/staging.toml", STAGING),
        Environment::Production => ("config/production.toml", PRODUCTION),
    }
}

/// Parse one layer. A named layer is also deserialised on its own, so an unknown key in it is
/// reported against that file rather than against the merged result.
pub fn parse(layer: &str, text: &str) -> Result<Table, ConfigError> {
    let table: Table = text
        .parse()
        .map_err(|e: toml::de::Error| parse_error(layer, text, &e))?;
    if !layer.is_empty() {
        // From the text, not the table: the error then carries a position.
        toml::from_str::<AppConfig>(text).map_err(|e| parse_error(layer, text, &e))?;
    }
    Ok(table)
}

/// `over` onto `base`: tables merge recursively, anything else replaces.
pub fn merge(base: &mut Table, over: Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

pub fn deserialize<T: DeserializeOwned>(layer: &str, table: Table) -> Result<T, ConfigError> {
    toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Parse {
            layer: layer_name(layer),
            message: e.message().to_owned(),
        })
}

/// The message with a line number. Not toml's Display: it quotes the source line, which may hold
/// a secret.
fn parse_error(layer: &str, text: &str, e: &toml::de::Error) -> ConfigError {
    // Newlines before the error, not `lines()`: that misses the line an error at column 0 opens.
    let line = e
        .span()
        .and_then(|s| text.get(..s.start))
        .map(|t| t.matches('\n').count() + 1);
    ConfigError::Parse {
        layer: layer_name(layer),
        message: match line {
            Some(n) => format!("line {n}: {}", e.message()),
            None => e.message().to_owned(),
        },
    }
}

fn layer_name(layer: &str) -> String {
    if layer.is_empty() {
        "the configuration".into()
    } else {
        layer.into()
    }
}
