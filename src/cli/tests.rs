//! The flags that override configuration keys reach the configuration, over the variables.
#![allow(clippy::unwrap_used)]

use clap::Parser;
use frontdesk::config::source::{Inputs, Location, Merged, Origin};
use frontdesk::config::{Environment, Vars};

use super::Cli;

fn load(args: &[&str], vars: &[(&str, &str)]) -> Merged {
    let cli = Cli::try_parse_from(args).unwrap();
    let vars: Vars = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Merged::load(Inputs {
        env: Environment::Development,
        location: &Location::Embedded,
        vars: &vars,
        from_dotenv: &Default::default(),
        flags: &cli.command.flags(),
    })
    .unwrap()
}

#[test]
fn worker_flags_win_over_the_variables() {
    let vars = [
        ("LIVEKIT_URL", "ws://from-env:7880"),
        ("LIVEKIT_API_KEY", "env-key"),
        ("LIVEKIT_API_SECRET", "env-secret"),
        ("FRONTDESK_MAX_CALLS", "50"),
    ];
    for command in ["start", "dev"] {
        let args = [
            "frontdesk",
            command,
            "--url",
            "ws://from-flag:7880",
            "--api-key",
            "flag-key",
            "--api-secret",
            "flag-secret",
            "--max-calls",
            "3",
            "--http-port",
            "9100",
            "--agent-name",
            "desk-flag",
        ];
        let merged = load(&args, &vars);
        let cfg = merged.build().unwrap();
        let w = &cfg.worker;
        assert_eq!(w.url, "ws://from-flag:7880");
        assert_eq!(w.api_key.expose(), "flag-key");
        assert_eq!(w.api_secret.expose(), "flag-secret");
        assert_eq!((w.max_calls, cfg.http.port), (3, 9100));
        assert_eq!(w.agent_name, "desk-flag");
        // `dev` lifts the load threshold; `start` keeps the configured one.
        assert_eq!(w.load_threshold == 1.0, command == "dev", "{command}");
        assert_eq!(w.load_from_cpu, command != "dev", "{command}");
        // `dev` serves the web playground; `start` only when configured.
        assert_eq!(cfg.http.playground, command == "dev", "{command}");
        let origin = merged.origin(&["worker", "api_secret"]).unwrap();
        assert_eq!(*origin, Origin::Flag("--api-secret"));
    }
    // Without flags the variables stand.
    let cfg = load(&["frontdesk", "start"], &vars).build().unwrap();
    assert_eq!(cfg.worker.url, "ws://from-env:7880");
    // `connect`, `loadtest` and `config show` take the LiveKit flags too.
    for args in [
        &["frontdesk", "connect", "--room", "r", "--url", "ws://c:1"][..],
        &["frontdesk", "config", "show", "--url", "ws://c:1"][..],
    ] {
        let cfg = load(args, &vars).build().unwrap();
        assert_eq!(cfg.worker.url, "ws://c:1", "{args:?}");
    }
}
