//! Where each value comes from: the config directory (or one file) read at run time over the
//! embedded defaults, `.env`, the variables and the flags. Every source is one layer; the origin of
//! a value is the last layer that set it (shown by `frontdesk config show`).

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::{layers, vars, AppConfig, ConfigError, Environment, Vars, DEFAULT_TOML};

/// Names the config directory or file; the `--config` flag wins over it.
pub const CONFIG_VAR: &str = "FRONTDESK_CONFIG";

/// The directory used when neither names one, relative to the working directory.
pub const DEFAULT_DIR: &str = "config";

/// The files read over the embedded ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// None: the embedded `config/*.toml` only.
    Embedded,
    /// `DIR/default.toml` if present over the embedded one, then `DIR/<env>.toml` (else the
    /// embedded environment file).
    Dir(PathBuf),
    /// One file over the embedded default and environment files.
    File(PathBuf),
}

impl Location {
    /// `--config` if given, else `FRONTDESK_CONFIG`, else `./config` when it is a directory, else
    /// the embedded files. A path named explicitly must exist.
    #[allow(clippy::disallowed_methods)] // config is read once at startup, before anything runs on the runtime
    pub fn resolve(flag: Option<&Path>, vars: &Vars) -> Result<Self, ConfigError> {
        let from_var = vars
            .get(CONFIG_VAR)
            .filter(|v| !v.trim().is_empty())
            .map(|v| (PathBuf::from(v), CONFIG_VAR));
        let named = flag.map(|p| (p.to_path_buf(), "--config")).or(from_var);
        let Some((path, by)) = named else {
            // "./config/..." in origins, unlike the embedded "config/... (embedded)".
            let dir = Path::new(".").join(DEFAULT_DIR);
            return Ok(if dir.is_dir() {
                Self::Dir(dir)
            } else {
                Self::Embedded
            });
        };
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => Ok(Self::Dir(path)),
            Ok(_) => Ok(Self::File(path)),
            Err(e) => Err(ConfigError::Missing {
                path: path.display().to_string(),
                by,
                reason: e.to_string(),
            }),
        }
    }
}

/// The source of one value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A file compiled into the binary (its path in the repository).
    Embedded(&'static str),
    File(PathBuf),
    /// A variable of the process environment.
    Env(&'static str),
    /// A variable from `.env` (no real variable of that name was set).
    DotEnv(&'static str),
    /// A command-line flag ("--url"), or a command's own override ("dev").
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Embedded(path) => write!(f, "{path} (embedded)"),
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Env(name) => write!(f, "env {name}"),
            Self::DotEnv(name) => write!(f, ".env {name}"),
            Self::Flag(name) if name.starts_with("--") => write!(f, "flag {name}"),
            Self::Flag(command) => write!(f, "the {command} command"),
        }
    }
}

/// A value set on the command line: the flag, the key it sets, the value.
#[derive(Clone, Debug, PartialEq)]
pub struct Flag {
    pub name: &'static str,
    pub key: &'static str,
    pub value: Value,
}

/// Everything one load reads. `main` gathers it from the process; tests make it up.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    pub env: Environment,
    pub location: &'a Location,
    pub vars: &'a Vars,
    /// Which of `vars` came from `.env` (only the origin shown differs).
    pub from_dotenv: &'a BTreeSet<String>,
    pub flags: &'a [Flag],
}

struct Layer {
    origin: Origin,
    table: Table,
}

/// Every layer merged, not yet checked as a whole. Not `Debug`: the table holds the secrets.
pub struct Merged {
    pub environment: Environment,
    layers: Vec<Layer>,
    table: Table,
    /// Variables whose values do not parse (reported with the validation's problems).
    errors: Vec<String>,
}

impl Merged {
    /// Read and merge every layer of `inputs`. Fails on a file that is missing, unreadable, not
    /// TOML or holding an unknown key (naming the file and line).
    pub fn load(inputs: Inputs<'_>) -> Result<Self, ConfigError> {
        let mut layers = file_layers(inputs.env, inputs.location)?;
        let (values, errors) = vars::values(inputs.vars);
        layers.extend(values.into_iter().map(|(v, value)| Layer {
            origin: if inputs.from_dotenv.contains(v.name) {
                Origin::DotEnv(v.name)
            } else {
                Origin::Env(v.name)
            },
            table: vars::table_with(v.key, value),
        }));
        layers.extend(inputs.flags.iter().map(|f| Layer {
            origin: Origin::Flag(f.name),
            table: vars::table_with(f.key, f.value.clone()),
        }));
        let mut table = Table::new();
        for layer in &layers {
            layers::merge(&mut table, layer.table.clone());
        }
        Ok(Self {
            environment: inputs.env,
            layers,
            table,
            errors,
        })
    }

    /// The typed configuration, validated with the environment's policy; every problem at once.
    pub fn build(&self) -> Result<AppConfig, ConfigError> {
        let mut errors = self.errors.clone();
        let mut cfg: AppConfig =
            match layers::deserialize("the variables and flags", self.table.clone()) {
                Ok(cfg) => cfg,
                Err(e) => {
                    // The files were each checked alone, so this came from a variable or a flag:
                    // reported with the variables' other problems.
                    errors.push(e.to_string());
                    return Err(ConfigError::Invalid(errors));
                }
            };
        cfg.environment = self.environment;
        errors.extend(cfg.validate());
        if !errors.is_empty() {
            return Err(ConfigError::Invalid(errors));
        }
        Ok(cfg)
    }

    /// The merged table (secrets included: redact before printing).
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// The layer that set the value at `path` last: the value's origin.
    pub fn origin(&self, path: &[&str]) -> Option<&Origin> {
        self.layers
            .iter()
            .rev()
            .find(|l| leaf(&l.table, path).is_some())
            .map(|l| &l.origin)
    }

    /// The layers in order, each once (variables and flags grouped), for a header.
    pub fn sources(&self) -> Vec<String> {
        let mut out: Vec<String> = vec![];
        for layer in &self.layers {
            let name = match &layer.origin {
                Origin::Env(_) | Origin::DotEnv(_) => "environment variables".to_string(),
                Origin::Flag(_) => "flags".to_string(),
                other => other.to_string(),
            };
            if out.last() != Some(&name) {
                out.push(name);
            }
        }
        out
    }
}

/// The non-table value at `path` in `table`.
fn leaf<'t>(table: &'t Table, path: &[&str]) -> Option<&'t Value> {
    let (last, parents) = path.split_last()?;
    let mut at = table;
    for part in parents {
        at = at.get(*part)?.as_table()?;
    }
    at.get(*last).filter(|v| !v.is_table())
}

/// The TOML layers of `env` at `location`, each parsed and checked alone.
fn file_layers(env: Environment, location: &Location) -> Result<Vec<Layer>, ConfigError> {
    let embedded = |path: &'static str, text: &str| -> Result<Layer, ConfigError> {
        Ok(Layer {
            origin: Origin::Embedded(path),
            table: layers::parse(path, text)?,
        })
    };
    let (env_path, env_text) = layers::env_file(env);
    let mut out = vec![embedded("config/default.toml", DEFAULT_TOML)?];
    match location {
        Location::Embedded => out.push(embedded(env_path, env_text)?),
        Location::File(path) => {
            out.push(embedded(env_path, env_text)?);
            out.push(read_layer(path)?);
        }
        Location::Dir(dir) => {
            let default = dir.join("default.toml");
            if default.is_file() {
                out.push(read_layer(&default)?);
            }
            let own = dir.join(format!("{}.toml", env.name()));
            out.push(if own.is_file() {
                read_layer(&own)?
            } else {
                embedded(env_path, env_text)?
            });
        }
    }
    Ok(out)
}

#[allow(clippy::disallowed_methods)] // config is read once at startup, before anything runs on the runtime
fn read_layer(path: &Path) -> Result<Layer, ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: name.clone(),
        reason: e.to_string(),
    })?;
    Ok(Layer {
        origin: Origin::File(path.to_path_buf()),
        table: layers::parse(&name, &text)?,
    })
}

/// The variables of the `.env` file at `path` that `real` does not already set (a real variable
/// wins). No file is no variables. A line that does not parse is an error naming its number, never
/// its text (it may hold a key).
#[allow(clippy::disallowed_methods)] // config is read once at startup, before anything runs on the runtime
pub fn read_dotenv(path: &Path, real: &Vars) -> Result<Vars, ConfigError> {
    let name = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vars::new()),
        Err(e) => {
            return Err(ConfigError::Read {
                path: name,
                reason: e.to_string(),
            })
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut added = Vars::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            // The first of repeated names wins, as dotenvy's own loader does.
            Ok((key, value)) => {
                if !real.contains_key(&key) && !added.contains_key(&key) {
                    added.insert(key, value);
                }
            }
            Err(dotenvy::Error::LineParse(line, _)) => {
                let at = line_number(text, &line).map_or(String::new(), |n| format!("line {n}: "));
                return Err(ConfigError::Parse {
                    layer: name,
                    message: format!("{at}not NAME=value (or an unclosed quote)"),
                });
            }
            Err(e) => {
                return Err(ConfigError::Read {
                    path: name,
                    reason: e.to_string(),
                })
            }
        }
    }
    Ok(added)
}

/// The 1-based number of the first line of `text` that `logical` (one logical `.env` line, maybe
/// several physical ones) starts with.
fn line_number(text: &str, logical: &str) -> Option<usize> {
    let first = logical.lines().next().unwrap_or_default().trim_end();
    text.lines()
        .position(|l| l.trim_end() == first)
        .map(|n| n + 1)
}
