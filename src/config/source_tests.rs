//! Run-time layers: the config directory, `.env`, flags, and where each value came from.
#![allow(clippy::disallowed_methods)] // tests read and write temporary files

use std::collections::BTreeSet;
use std::path::Path;

use super::source::{self, Flag, Inputs, Location, Merged, Origin};
use super::tests::{load_err, production_vars, vars};
use super::{show, AppConfig, Environment, Vars};

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn merged(
    env: Environment,
    location: &Location,
    v: &Vars,
    dotenv: &[&str],
    flags: &[Flag],
) -> Merged {
    let from_dotenv: BTreeSet<String> = dotenv.iter().map(|s| s.to_string()).collect();
    Merged::load(Inputs {
        env,
        location,
        vars: v,
        from_dotenv: &from_dotenv,
        flags,
    })
    .unwrap_or_else(|e| panic!("{e:#}"))
}

fn origin(m: &Merged, key: &str) -> Origin {
    let path: Vec<&str> = key.split('.').collect();
    m.origin(&path)
        .unwrap_or_else(|| panic!("{key} unset"))
        .clone()
}

/// A config dir (default.toml and development.toml), a `.env` variable, a real one and a flag,
/// each setting something the layer below also sets.
fn stacked() -> (tempfile::TempDir, Merged) {
    let dir = tempfile::tempdir().unwrap();
    let default = "[pipeline.dialogue]\ngreeting = \"Dir default\"\n[http]\nport = 9001\n";
    write(dir.path(), "default.toml", default);
    let development = "[http]\nport = 9002\n[providers.openai]\nmodel = \"gpt-dir\"\n";
    write(dir.path(), "development.toml", development);
    let v = vars(&[
        ("FRONTDESK_AGENT_NAME", "from-dotenv"),
        ("FRONTDESK_MAX_CALLS", "9"),
        ("LIVEKIT_URL", "ws://from-env:7880"),
        ("LIVEKIT_API_KEY", "devkey"),
        ("LIVEKIT_API_SECRET", "placeholder-livekit-secret"),
    ]);
    let flags = [Flag {
        name: "--url",
        key: "worker.url",
        value: "ws://from-flag:7880".into(),
    }];
    let location = Location::Dir(dir.path().to_path_buf());
    let dotenv = ["FRONTDESK_AGENT_NAME"];
    let m = merged(Environment::Development, &location, &v, &dotenv, &flags);
    (dir, m)
}

#[test]
fn each_layer_wins_over_the_one_below() {
    let (_dir, m) = stacked();
    let cfg = m.build().unwrap();
    assert_eq!(cfg.pipeline.dialogue.greeting, "Dir default");
    let why = "the environment file over the dir's default";
    assert_eq!(cfg.http.port, 9002, "{why}");
    assert_eq!(cfg.providers.openai.model, "gpt-dir");
    assert_eq!(cfg.worker.agent_name, "from-dotenv");
    assert_eq!(cfg.worker.max_calls, 9);
    let why = "the flag over LIVEKIT_URL";
    assert_eq!(cfg.worker.url, "ws://from-flag:7880", "{why}");
}

#[test]
fn each_value_names_the_layer_it_came_from() {
    let (dir, m) = stacked();
    let file = |name: &str| Origin::File(dir.path().join(name));
    let want = [
        ("pipeline.dialogue.greeting", file("default.toml")),
        ("http.port", file("development.toml")),
        ("providers.openai.model", file("development.toml")),
        (
            "pipeline.vad.aggressiveness",
            Origin::Embedded("config/default.toml"),
        ),
        ("worker.agent_name", Origin::DotEnv("FRONTDESK_AGENT_NAME")),
        ("worker.max_calls", Origin::Env("FRONTDESK_MAX_CALLS")),
        ("worker.url", Origin::Flag("--url")),
    ];
    for (key, origin_want) in want {
        assert_eq!(origin(&m, key), origin_want, "{key}");
    }
    let sources = m.sources().join(" < ");
    let want = format!(
        "config/default.toml (embedded) < {} < {} < environment variables < flags",
        dir.path().join("default.toml").display(),
        dir.path().join("development.toml").display()
    );
    assert_eq!(sources, want);
}

#[test]
fn a_dir_without_the_environment_file_falls_back_to_the_embedded_one() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "development.toml", "[http]\nport = 9002\n");
    let location = Location::Dir(dir.path().to_path_buf());
    let m = merged(Environment::Staging, &location, &Vars::new(), &[], &[]);
    assert_eq!(m.build().unwrap().http.bind, "0.0.0.0");
    assert_eq!(
        origin(&m, "http.bind"),
        Origin::Embedded("config/staging.toml")
    );
    assert_eq!(
        origin(&m, "http.port"),
        Origin::Embedded("config/default.toml")
    );
}

#[test]
fn one_file_is_a_layer_over_the_embedded_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("site.toml");
    write(
        dir.path(),
        "site.toml",
        "[providers.prices]\nstt_per_minute = 0.5\n",
    );
    let m = merged(
        Environment::Staging,
        &Location::File(file.clone()),
        &Vars::new(),
        &[],
        &[],
    );
    let cfg = m.build().unwrap();
    assert_eq!(cfg.providers.prices.stt_per_minute, 0.5);
    assert_eq!(
        cfg.http.bind, "0.0.0.0",
        "staging's embedded file still applies"
    );
    assert_eq!(
        origin(&m, "providers.prices.stt_per_minute"),
        Origin::File(file)
    );
}

#[test]
fn location_is_the_flag_then_the_variable_and_must_exist_when_named() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let v = vars(&[("FRONTDESK_CONFIG", b.path().to_str().unwrap())]);
    let by_flag = Location::resolve(Some(a.path()), &v).unwrap();
    assert_eq!(by_flag, Location::Dir(a.path().to_path_buf()));
    assert_eq!(
        Location::resolve(None, &v).unwrap(),
        Location::Dir(b.path().to_path_buf())
    );
    let missing = b.path().join("nowhere");
    let v = vars(&[("FRONTDESK_CONFIG", missing.to_str().unwrap())]);
    let err = Location::resolve(None, &v).unwrap_err().to_string();
    assert!(
        err.contains(missing.to_str().unwrap()) && err.contains("FRONTDESK_CONFIG"),
        "{err}"
    );
    let err = Location::resolve(Some(&missing), &Vars::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("--config"), "{err}");
    // Unset or empty: ./config (the crate's own directory under cargo test).
    let empty = vars(&[("FRONTDESK_CONFIG", "")]);
    assert_eq!(
        Location::resolve(None, &empty).unwrap(),
        Location::Dir("./config".into())
    );
}

#[test]
fn a_bad_file_is_named_with_its_line_and_never_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::Dir(dir.path().to_path_buf());
    let load = |text: &str| {
        write(dir.path(), "production.toml", text);
        let from_dotenv = BTreeSet::new();
        let inputs = Inputs {
            env: Environment::Production,
            location: &location,
            vars: &production_vars(),
            from_dotenv: &from_dotenv,
            flags: &[],
        };
        format!(
            "{:#}",
            Merged::load(inputs).err().expect("the file is refused")
        )
    };
    let path = dir.path().join("production.toml").display().to_string();
    let msg = load("[http]\nport = 8081\n[log]\nlevle = \"info\"\n");
    assert!(
        msg.contains(&path) && msg.contains("line 4") && msg.contains("levle"),
        "{msg}"
    );
    let msg = load("[worker]\napi_secret = \"placeholder-secret-in-file\n");
    assert!(msg.contains(&path) && msg.contains("line 2"), "{msg}");
    assert!(!msg.contains("placeholder-secret-in-file"), "{msg}");
    // A file that is there but unreadable as text is named too.
    std::fs::write(dir.path().join("production.toml"), [0xff, 0xfe, 0x00]).unwrap();
    let from_dotenv = BTreeSet::new();
    let v = production_vars();
    let inputs = Inputs {
        env: Environment::Production,
        location: &location,
        vars: &v,
        from_dotenv: &from_dotenv,
        flags: &[],
    };
    let msg = Merged::load(inputs).err().unwrap().to_string();
    assert!(msg.contains(&path), "{msg}");
}

#[test]
fn dotenv_fills_only_unset_variables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env");
    std::fs::write(
        &path,
        "# comment\nOPENAI_API_KEY=test-from-file\nFRONTDESK_HTTP_PORT=9100\nexport FRONTDESK_AGENT_NAME=\"two words\"\nFRONTDESK_HTTP_PORT=9200\n",
    )
    .unwrap();
    let real = vars(&[("OPENAI_API_KEY", "real")]);
    let added = source::read_dotenv(&path, &real).unwrap();
    assert_eq!(
        added,
        vars(&[
            ("FRONTDESK_HTTP_PORT", "9100"),
            ("FRONTDESK_AGENT_NAME", "two words")
        ])
    );
    // No file: nothing, no error.
    assert!(source::read_dotenv(&dir.path().join("none"), &real)
        .unwrap()
        .is_empty());
    // A line that does not parse: its number, not its text.
    std::fs::write(
        &path,
        "FRONTDESK_HTTP_PORT=1\nOPENAI_API_KEY='placeholder-unclosed\n",
    )
    .unwrap();
    let msg = source::read_dotenv(&path, &Vars::new())
        .unwrap_err()
        .to_string();
    assert!(msg.contains(".env") && msg.contains("line 2"), "{msg}");
    assert!(!msg.contains("placeholder-unclosed"), "{msg}");
}

#[test]
fn base_url_variables_set_the_provider_endpoints() {
    let v = vars(&[
        ("DEEPGRAM_BASE_URL", "ws://127.0.0.1:8002"),
        ("OPENAI_BASE_URL", "http://127.0.0.1:8001/v1"),
        ("CARTESIA_BASE_URL", "wss://tts.example.com/custom/socket"),
    ]);
    let cfg = AppConfig::load(Environment::Development, &v).unwrap();
    let p = &cfg.providers;
    assert_eq!(
        p.deepgram.url, "ws://127.0.0.1:8002/v1/listen",
        "a bare host"
    );
    assert_eq!(p.openai.base_url, "http://127.0.0.1:8001/v1");
    assert_eq!(
        p.cartesia.url, "wss://tts.example.com/custom/socket",
        "a full URL"
    );
    // No keys: still the emulators.
    assert!(!p.has_all_keys());
    let bad = vars(&[("DEEPGRAM_BASE_URL", "https://api.deepgram.com")]);
    let msg = load_err(Environment::Development, &bad);
    assert!(
        msg.contains("providers.deepgram.url (DEEPGRAM_BASE_URL)"),
        "{msg}"
    );
}

#[test]
fn flags_satisfy_production_without_the_variables() {
    let mut v = production_vars();
    for name in ["LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"] {
        v.remove(name);
    }
    let flags = [
        ("--url", "worker.url", "wss://lk.example.com"),
        ("--api-key", "worker.api_key", "APIflagkey"),
        (
            "--api-secret",
            "worker.api_secret",
            "placeholder-flag-secret",
        ),
    ]
    .map(|(name, key, value)| Flag {
        name,
        key,
        value: value.into(),
    });
    let m = merged(
        Environment::Production,
        &Location::Embedded,
        &v,
        &[],
        &flags,
    );
    let cfg = m.build().unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(cfg.worker.api_secret.expose(), "placeholder-flag-secret");
    assert_eq!(origin(&m, "worker.api_key"), Origin::Flag("--api-key"));
}

#[test]
fn show_names_origins_and_redacts_every_secret() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "production.toml",
        "[providers.secondary.openai]\nbase_url = \"https://backup.example.com\"\napi_key = \"placeholder-secondary-key\"\n",
    );
    let v = production_vars();
    let m = merged(
        Environment::Production,
        &Location::Dir(dir.path().to_path_buf()),
        &v,
        &["OPENAI_API_KEY"],
        &[],
    );
    let text = show::text(&m);
    let json = show::json(&m).to_string();
    let mut secrets: Vec<String> = v
        .values()
        .filter(|s| !s.starts_with("wss://"))
        .cloned()
        .collect();
    secrets.push("placeholder-secondary-key".into());
    secrets.push("placeholder-db-password".into());
    for s in &secrets {
        assert!(
            !text.contains(s.as_str()) && !json.contains(s.as_str()),
            "{s} shown:\n{text}"
        );
    }
    let line = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("{key} missing:\n{text}"))
            .to_string()
    };
    assert!(line("providers.openai.api_key").contains("\"<set>\""));
    assert!(line("providers.openai.api_key").ends_with("# .env OPENAI_API_KEY"));
    assert!(line("database.url").ends_with("# env DATABASE_URL"));
    assert!(line("providers.secondary.openai.api_key").contains("\"<set>\""));
    assert!(line("worker.url").contains("\"wss://lk.example.com\""));
    // The dir's production.toml stands in for the embedded one (whose bind is 0.0.0.0).
    let bind = line("http.bind");
    assert!(bind.contains("\"127.0.0.1\" ") && bind.ends_with("# config/default.toml (embedded)"));
    assert!(
        line("log.format").ends_with("# config/default.toml (embedded)"),
        "the dir's production.toml has no [log]"
    );
    assert!(line("pipeline.vad.aggressiveness").contains("= 2 "));
    // The text is TOML whose values are the typed ones (secrets aside).
    let parsed: toml::Table = text.parse().unwrap();
    assert_eq!(parsed["http"]["port"].as_integer(), Some(8081));
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let dg = &value["values"]["providers.deepgram.api_key"];
    assert_eq!(dg["value"], "<set>");
    assert_eq!(dg["origin"], "env DEEPGRAM_API_KEY");
    assert_eq!(value["environment"], "production");
}

#[test]
fn show_masks_a_password_in_any_url() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "development.toml",
        "[providers.openai]\nbase_url = \"https://user:placeholder-pw@llm.example.com\"\n",
    );
    let v = vars(&[("OPENAI_API_KEY", "")]);
    let m = merged(
        Environment::Development,
        &Location::Dir(dir.path().to_path_buf()),
        &v,
        &[],
        &[],
    );
    let text = show::text(&m);
    assert!(!text.contains("placeholder-pw"), "{text}");
    assert!(text.contains("https://user:****@llm.example.com"), "{text}");
    // An empty secret shows as empty, not as set.
    assert!(text.contains("providers.openai.api_key = \"\""), "{text}");
}
