use super::*;

pub(super) fn vars(pairs: &[(&str, &str)]) -> Vars {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Everything production needs, with placeholder values.
pub(super) fn production_vars() -> Vars {
    vars(&[
        ("LIVEKIT_URL", "wss://lk.example.com"),
        ("LIVEKIT_API_KEY", "APIplaceholderkey"),
        ("LIVEKIT_API_SECRET", "placeholder-livekit-secret-value"),
        ("OPENAI_API_KEY", "placeholder-openai-key"),
        ("DEEPGRAM_API_KEY", "placeholder-deepgram-key"),
        ("CARTESIA_API_KEY", "placeholder-cartesia-key"),
        (
            "DATABASE_URL",
            "postgres://app:placeholder-db-password@db.internal:5432/frontdesk?sslmode=require",
        ),
    ])
}

pub(super) fn load_err(env: Environment, v: &Vars) -> String {
    format!("{:#}", AppConfig::load(env, v).unwrap_err())
}

#[test]
fn default_file_matches_code_defaults() -> anyhow::Result<()> {
    assert_eq!(AppConfig::embedded()?, AppConfig::default());
    Ok(())
}

#[test]
fn unknown_keys_are_rejected() {
    let err = AppConfig::from_toml("[pipeline.vad]\nagressiveness = 2\n").unwrap_err();
    assert!(format!("{err:#}").contains("agressiveness"), "{err:#}");
    let err = AppConfig::from_toml("[http]\nprot = 1\n").unwrap_err();
    assert!(format!("{err:#}").contains("prot"), "{err:#}");
}

#[test]
fn every_invalid_value_is_named() {
    let err = AppConfig::from_toml(
        "[pipeline.edges]\nroom_to_vad_frames = 0\n[pipeline.dialogue]\nmax_tool_steps = 0\n\
         [providers.secondary.openai]\nbase_url = \"ftp://x\"\n[log]\nlevel = \"info,=[\"\n",
    )
    .unwrap_err();
    let msg = format!("{err:#}");
    for name in [
        "room_to_vad_frames",
        "max_tool_steps",
        "providers.secondary.openai.base_url",
        "log.level",
    ] {
        assert!(msg.contains(name), "{name} missing: {msg}");
    }
}

#[test]
fn every_environment_file_parses_and_loads() {
    for env in Environment::ALL {
        let (file, text) = layers::env_file(env);
        layers::parse(file, text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let v = if env == Environment::Production {
            production_vars()
        } else {
            Vars::new()
        };
        let cfg = AppConfig::load(env, &v).unwrap_or_else(|e| panic!("{file}: {e:#}"));
        assert_eq!(cfg.environment, env);
        let json = env != Environment::Development;
        assert_eq!(cfg.log.format == LogFormat::Json, json, "{file}");
    }
}

#[test]
fn environment_comes_from_flag_then_variable() {
    let v = vars(&[("FRONTDESK_ENV", "staging")]);
    assert_eq!(
        Environment::resolve(None, &v).unwrap(),
        Environment::Staging
    );
    let flag = Some(Environment::Production);
    assert_eq!(
        Environment::resolve(flag, &v).unwrap(),
        Environment::Production
    );
    assert_eq!(
        Environment::resolve(None, &Vars::new()).unwrap(),
        Environment::Development
    );
    let bad = vars(&[("FRONTDESK_ENV", "prod")]);
    let err = Environment::resolve(None, &bad).unwrap_err();
    assert!(err.to_string().contains("\"prod\""), "{err}");
}

#[test]
fn variables_override_files() {
    let v = vars(&[
        ("FRONTDESK_HTTP_PORT", "9999"),
        ("FRONTDESK_LOG_FORMAT", "json"),
        ("FRONTDESK_LOG_LEVEL", "debug"),
        ("FRONTDESK_AGENT_NAME", "desk-b"),
        ("FRONTDESK_MAX_CALLS", "7"),
        ("FRONTDESK_LOAD_THRESHOLD", "0.5"),
        ("OPENAI_API_KEY", "placeholder-openai"),
    ]);
    let cfg = AppConfig::load(Environment::Development, &v).unwrap();
    assert_eq!(cfg.http.port, 9999);
    assert_eq!(cfg.log.format, LogFormat::Json, "over development's pretty");
    assert_eq!(cfg.log.level, "debug");
    assert_eq!(cfg.worker.agent_name, "desk-b");
    assert_eq!(cfg.worker.max_calls, 7);
    assert_eq!(cfg.worker.load_threshold, 0.5);
    assert_eq!(cfg.providers.openai.api_key.expose(), "placeholder-openai");
    // The layer below the variables: the file beats the defaults.
    let staging = AppConfig::load(Environment::Staging, &Vars::new()).unwrap();
    assert_eq!(staging.http.bind, "0.0.0.0");
}

#[test]
fn bad_variable_values_name_key_and_variable() {
    let v = vars(&[
        ("FRONTDESK_HTTP_PORT", "http"),
        ("FRONTDESK_MAX_CALLS", "many"),
        ("FRONTDESK_LOG_FORMAT", "xml"),
    ]);
    let msg = load_err(Environment::Development, &v);
    for name in [
        "http.port (FRONTDESK_HTTP_PORT)",
        "worker.max_calls (FRONTDESK_MAX_CALLS)",
        "log.format (FRONTDESK_LOG_FORMAT)",
    ] {
        assert!(msg.contains(name), "{name} missing: {msg}");
    }
    // Out of the field's range: named too, not left to a nameless type error.
    let msg = load_err(
        Environment::Development,
        &vars(&[("FRONTDESK_HTTP_PORT", "70000")]),
    );
    assert!(msg.contains("http.port (FRONTDESK_HTTP_PORT)"), "{msg}");
}

#[test]
fn production_names_every_missing_variable() {
    let msg = load_err(Environment::Production, &Vars::new());
    for v in [
        "LIVEKIT_URL",
        "LIVEKIT_API_KEY",
        "LIVEKIT_API_SECRET",
        "OPENAI_API_KEY",
        "DEEPGRAM_API_KEY",
        "CARTESIA_API_KEY",
        "DATABASE_URL",
    ] {
        assert!(msg.contains(v), "{v} missing: {msg}");
        let key = vars::VARS.iter().find(|x| x.name == v).unwrap().key;
        assert!(msg.contains(key), "{key} missing: {msg}");
    }
    // Each missing one alone is named too.
    for v in vars::VARS.iter().filter(|v| v.kind == vars::Kind::Secret) {
        let mut set = production_vars();
        set.remove(v.name);
        let msg = load_err(Environment::Production, &set);
        assert!(msg.contains(v.name), "{}: {msg}", v.name);
    }
}

#[test]
fn production_refuses_plaintext_livekit() {
    for url in ["ws://lk.example.com", "http://lk.example.com"] {
        let mut v = production_vars();
        v.insert("LIVEKIT_URL".into(), url.into());
        let msg = load_err(Environment::Production, &v);
        assert!(msg.contains("worker.url (LIVEKIT_URL)"), "{msg}");
        // Development takes it.
        assert!(AppConfig::load(Environment::Development, &v).is_ok());
    }
}

#[test]
fn production_refuses_plaintext_database_unless_loopback() {
    let remote = "postgres://app:placeholder-db-password@db.internal:5432/frontdesk";
    for url in [
        remote.to_string(),
        format!("{remote}?sslmode=disable"),
        format!("{remote}?sslmode=prefer"),
    ] {
        let mut v = production_vars();
        v.insert("DATABASE_URL".into(), url);
        let msg = load_err(Environment::Production, &v);
        assert!(msg.contains("database.url (DATABASE_URL)"), "{msg}");
        assert!(!msg.contains("placeholder-db-password"), "{msg}");
    }
    let mut v = production_vars();
    v.insert(
        "DATABASE_URL".into(),
        "postgres://postgres@127.0.0.1/frontdesk?sslmode=disable".into(),
    );
    AppConfig::load(Environment::Production, &v).unwrap();
}

#[test]
fn no_secret_in_debug_or_errors() {
    let v = production_vars();
    let cfg = AppConfig::load(Environment::Production, &v).unwrap();
    let debug = format!("{cfg:?} {cfg:#?}");
    let secrets = cfg.secrets();
    assert!(secrets.len() >= 7, "{secrets:?}");
    for s in &secrets {
        assert!(!debug.contains(s.as_str()), "{s} printed");
    }
    // An invalid configuration's error does not echo the secrets either.
    let mut bad = v.clone();
    bad.insert("LIVEKIT_URL".into(), "ws://lk".into());
    bad.insert(
        "DATABASE_URL".into(),
        "mysql://u:placeholder-db-password@h/db".into(),
    );
    let msg = load_err(Environment::Production, &bad);
    for s in v.values().filter(|s| !s.starts_with("wss://")) {
        assert!(!msg.contains(s.as_str()), "{s} in {msg}");
    }
}

#[test]
fn env_example_lists_every_variable() {
    let example = include_str!("../../.env.example");
    for name in all_variables() {
        assert!(
            example.lines().any(|l| l.starts_with(&format!("{name}="))),
            "{name} missing from .env.example"
        );
    }
}

fn all_variables() -> Vec<&'static str> {
    let mut names: Vec<&str> = vars::VARS.iter().map(|v| v.name).collect();
    names.push(vars::ENV_VAR);
    names.push(source::CONFIG_VAR);
    names
}
