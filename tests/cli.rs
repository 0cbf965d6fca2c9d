//! The binary as a shell sees it: output into a pipe whose reader is gone.
#![allow(clippy::disallowed_methods)] // tests may block: files, fixtures, std channels
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};

/// The binary with an empty environment (development, embedded store, no LiveKit), run in `dir`.
fn frontdesk(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_frontdesk"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(dir);
    cmd
}

/// `frontdesk check | head -1`: stdout's reader closes before the first line is written. The
/// process stops quietly instead of panicking on the broken pipe.
#[test]
fn check_into_a_closed_pipe_does_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = frontdesk(dir.path())
        .arg("check")
        // Providers would be probed over the network; the first line comes before any of that.
        .env("FRONTDESK_LOG_LEVEL", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
}

/// `migrate down` prints what it is about to drop before dropping it (development, no --yes).
#[test]
fn migrate_down_names_what_it_drops() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = frontdesk(dir.path()).args(args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {stdout}{stderr}");
        stdout
    };
    run(&["migrate", "up"]);
    let out = run(&["migrate", "down", "3"]);
    let plan = out.find("0001_hospital: drops appointments, doctor_shifts");
    let done = out.find("rolled back 3 migration(s)");
    assert!(
        plan.is_some()
            && out.contains("0002_call_record: drops ")
            && out.contains("0003_response_cache: drops usage.saved_cost_usd,"),
        "{out}"
    );
    assert!(plan < done, "the plan comes first: {out}");
}

/// `frontdesk console ... | head -1`: the reader goes away mid-call. The call still runs to its
/// end and the reply is written (the process used to exit at the first printed line).
#[test]
fn console_into_a_closed_pipe_finishes_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let input =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/speech/line01.wav");
    let output = dir.path().join("reply.wav");
    let mut child = frontdesk(dir.path())
        .args(["console", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .env("FRONTDESK_LOG_LEVEL", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    let reply = hound::WavReader::open(&output).unwrap();
    assert!(reply.duration() > 0, "the reply is empty");
}

/// `frontdesk config show` in `dir` with `vars`: (exit ok, stdout, stderr).
fn config_show(
    dir: &std::path::Path,
    args: &[&str],
    vars: &[(&str, &str)],
) -> (bool, String, String) {
    let out = frontdesk(dir)
        .args(["config", "show"])
        .args(args)
        .envs(vars.iter().copied())
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// A copy of the repository's config directory in `dir/config`.
fn copy_config(dir: &std::path::Path) -> std::path::PathBuf {
    let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let to = dir.join("config");
    std::fs::create_dir(&to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    to
}

/// The `providers.openai.model` line of a successful `config show`.
fn model_line(dir: &std::path::Path, args: &[&str], vars: &[(&str, &str)]) -> String {
    let (ok, out, err) = config_show(dir, args, vars);
    assert!(ok, "{args:?}: {out}{err}");
    out.lines()
        .find(|l| l.starts_with("providers.openai.model = "))
        .unwrap_or_else(|| panic!("no model line:\n{out}"))
        .to_string()
}

fn write_model(config: &std::path::Path, model: &str) {
    let text = format!("[providers.openai]\nmodel = \"{model}\"\n");
    std::fs::write(config.join("development.toml"), text).unwrap();
}

/// The config directory (./config here) is read at run time: an edit shows without a rebuild,
/// and its origin is the file.
#[test]
fn an_edited_config_dir_changes_config_show_without_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let config = copy_config(dir.path());
    let before = model_line(dir.path(), &[], &[]);
    assert!(before.contains("\"gpt-4o-mini\""), "{before}");
    write_model(&config, "edited-model");
    let after = model_line(dir.path(), &[], &[]);
    assert!(after.contains("\"edited-model\""), "{after}");
    assert!(after.ends_with("# ./config/development.toml"), "{after}");
}

/// FRONTDESK_CONFIG picks another directory; `--config` wins over it.
#[test]
fn config_dir_comes_from_the_flag_then_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    write_model(&copy_config(dir.path()), "local-model");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for (path, model) in [(&a, "model-a"), (&b, "model-b")] {
        std::fs::create_dir(path).unwrap();
        write_model(path, model);
    }
    let var = [("FRONTDESK_CONFIG", a.to_str().unwrap())];
    assert!(model_line(dir.path(), &[], &var).contains("model-a"));
    let flag = ["--config", b.to_str().unwrap()];
    assert!(model_line(dir.path(), &flag, &var).contains("model-b"));
    assert!(model_line(dir.path(), &[], &[]).contains("local-model"));
}

/// A config path named but not there is an error naming it and who named it, not a silent
/// fall-back to the embedded files.
#[test]
fn a_missing_config_dir_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-config");
    let (ok, out, err) = config_show(
        dir.path(),
        &[],
        &[("FRONTDESK_CONFIG", missing.to_str().unwrap())],
    );
    assert!(!ok, "{out}");
    assert!(
        err.contains(missing.to_str().unwrap()) && err.contains("FRONTDESK_CONFIG"),
        "{err}"
    );
    // A file with an unknown key: the file and line.
    let config = copy_config(dir.path());
    std::fs::write(
        config.join("development.toml"),
        "[log]\nlevel = \"info\"\nformt = \"json\"\n",
    )
    .unwrap();
    let (ok, _, err) = config_show(dir.path(), &[], &[]);
    assert!(!ok);
    assert!(
        err.contains("config/development.toml") && err.contains("line 3") && err.contains("formt"),
        "{err}"
    );
}

/// Secrets in every kind of layer: real variables, `.env`, a config file, flags.
const SECRET_VARS: [(&str, &str); 4] = [
    (
        "DATABASE_URL",
        "postgres://app:placeholder-db-password@db.internal/frontdesk?sslmode=require",
    ),
    ("DEEPGRAM_API_KEY", "placeholder-env-deepgram"),
    ("CARTESIA_API_KEY", "placeholder-env-cartesia"),
    ("FRONTDESK_MAX_CALLS", "7"),
];
const SECRET_FLAGS: [&str; 8] = [
    "--env",
    "production",
    "--url",
    "wss://lk.example.com",
    "--api-key",
    "placeholder-flag-key",
    "--api-secret",
    "placeholder-flag-secret",
];
const SECRETS: [&str; 7] = [
    "placeholder-dotenv-openai",
    "placeholder-file-cartesia",
    "placeholder-db-password",
    "placeholder-env-deepgram",
    "placeholder-env-cartesia",
    "placeholder-flag-key",
    "placeholder-flag-secret",
];

/// A directory with a `.env` and a config dir holding secrets (see [`SECRETS`]).
fn dir_with_secrets() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let dotenv = "OPENAI_API_KEY=placeholder-dotenv-openai\nFRONTDESK_AGENT_NAME=from-dotenv\nFRONTDESK_MAX_CALLS=3\n";
    std::fs::write(dir.path().join(".env"), dotenv).unwrap();
    let config = copy_config(dir.path());
    let file = "[providers.secondary.cartesia]\napi_key = \"placeholder-file-cartesia\"\n";
    std::fs::write(config.join("production.toml"), file).unwrap();
    dir
}

fn assert_no_secret(out: &str, err: &str) {
    for s in SECRETS {
        let shown = out.contains(s) || err.contains(s);
        assert!(!shown, "{s} printed:\n{out}{err}");
    }
}

/// Secrets never reach the output, text or JSON; each shows as set, with where it came from.
#[test]
fn config_show_never_prints_secrets() {
    let dir = dir_with_secrets();
    for json in [false, true] {
        let mut args = SECRET_FLAGS.to_vec();
        if json {
            args.push("--json");
        }
        let (ok, out, err) = config_show(dir.path(), &args, &SECRET_VARS);
        assert!(ok, "{out}{err}");
        assert_no_secret(&out, &err);
        assert!(out.contains("<set>"), "{out}");
        if json {
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            let values = &v["values"];
            let openai = &values["providers.openai.api_key"]["origin"];
            assert_eq!(openai, ".env OPENAI_API_KEY");
            assert_eq!(values["worker.api_secret"]["origin"], "flag --api-secret");
            let why = "the real variable over .env";
            assert_eq!(values["worker.max_calls"]["value"], 7, "{why}");
            assert_eq!(values["worker.agent_name"]["value"], "from-dotenv");
        }
    }
}

/// An invalid configuration (production without a LiveKit key): the values still print,
/// redacted, then it fails naming the problem.
#[test]
fn config_show_prints_an_invalid_configuration_then_fails() {
    let dir = dir_with_secrets();
    let (ok, out, err) = config_show(dir.path(), &SECRET_FLAGS[..4], &SECRET_VARS);
    assert!(!ok && err.contains("LIVEKIT_API_KEY"), "{err}");
    assert!(
        out.contains("worker.url = \"wss://lk.example.com\""),
        "{out}"
    );
    assert_no_secret(&out, &err);
}

/// A malformed `.env` stops the start with its line number (not its text).
#[test]
fn a_malformed_dotenv_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "FRONTDESK_MAX_CALLS=3\nOPENAI_API_KEY=\"placeholder-unclosed\n",
    )
    .unwrap();
    let (ok, _, err) = config_show(dir.path(), &[], &[]);
    assert!(!ok);
    assert!(err.contains(".env") && err.contains("line 2"), "{err}");
    assert!(!err.contains("placeholder-unclosed"), "{err}");
}
