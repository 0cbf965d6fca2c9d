// Slices here are at indices from find/match_indices/char_indices: always char boundaries.
#![allow(clippy::string_slice)]
// Tests may block: files, fixtures, std channels.
#![allow(clippy::disallowed_methods)]
//! No credential in the repository: every tracked file and the whole history (`git log -p --all`)
//! are scanned for key-shaped strings. Obvious placeholders (example, placeholder, test, …) are
//! allowed. Without git (a source tarball) the test says so loudly and passes.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

/// Words that mark a value as a placeholder, not a credential.
const ALLOW: &[&str] = &[
    "placeholder",
    "example",
    "test",
    "dummy",
    "fake",
    "xxxx",
    "change-me",
    "your",
    "simulation",
];

/// Variables whose non-empty value in an assignment is a credential.
const SECRET_VARS: &[&str] = &[
    "OPENAI_API_KEY",
    "DEEPGRAM_API_KEY",
    "CARTESIA_API_KEY",
    "LIVEKIT_API_SECRET",
];

/// Each key-shaped string in `line` (masked for the report), placeholders excepted.
fn findings(line: &str) -> Vec<String> {
    let mut found = vec![];
    let mut candidates = vec![];
    candidates.extend(openai_keys(line));
    candidates.extend(aws_keys(line));
    candidates.extend(hex_after_key(line));
    candidates.extend(secret_assignments(line));
    candidates.extend(pem_keys(line));
    candidates.sort();
    candidates.dedup();
    for c in candidates {
        let lower = c.to_ascii_lowercase();
        if !ALLOW.iter().any(|a| lower.contains(a)) {
            found.push(format!("{}…", c.chars().take(8).collect::<String>()));
        }
    }
    found
}

/// A PEM private key header: `-----BEGIN [A-Z ]*PRIVATE KEY-----`.
fn pem_keys(line: &str) -> Vec<String> {
    let begin = "-----BEGIN ";
    line.match_indices(begin)
        .filter_map(|(i, _)| {
            let rest = &line[i + begin.len()..];
            let kind = run_of(rest, |c| c.is_ascii_uppercase() || c == ' ');
            let whole = kind.ends_with("PRIVATE KEY") && rest[kind.len()..].starts_with("-----");
            whole.then(|| line.trim().to_owned())
        })
        .collect()
}

fn run_of(s: &str, ok: impl Fn(char) -> bool) -> &str {
    let end = s.find(|c: char| !ok(c)).unwrap_or(s.len());
    &s[..end]
}

/// `sk-` then 20+ letters and digits (dashes allowed, as in `sk-proj-…`), mixing both.
fn openai_keys(line: &str) -> Vec<String> {
    line.match_indices("sk-")
        .filter_map(|(i, _)| {
            let body = run_of(&line[i + 3..], |c| {
                c.is_ascii_alphanumeric() || c == '-' || c == '_'
            });
            let alnum = body.chars().filter(char::is_ascii_alphanumeric).count();
            let mixed = body.chars().any(|c| c.is_ascii_digit())
                && body.chars().any(|c| c.is_ascii_alphabetic());
            (alnum >= 20 && mixed).then(|| format!("sk-{body}"))
        })
        .collect()
}

/// `AKIA` then 16 capitals or digits.
fn aws_keys(line: &str) -> Vec<String> {
    line.match_indices("AKIA")
        .filter_map(|(i, _)| {
            let body = run_of(&line[i + 4..], |c| {
                c.is_ascii_uppercase() || c.is_ascii_digit()
            });
            (body.len() >= 16).then(|| format!("AKIA{body}"))
        })
        .collect()
}

/// `api_key = "<32+ hex>"` and the like (any quote, `=` or `:`).
fn hex_after_key(line: &str) -> Vec<String> {
    let lower = line.to_ascii_lowercase();
    let mut out = vec![];
    for key in ["api_key", "api_secret", "secret_key", "apikey", "token"] {
        for (i, _) in lower.match_indices(key) {
            let rest = line[i + key.len()..]
                .trim_start_matches(|c: char| c == '"' || c == '\'' || c.is_whitespace());
            let Some(rest) = rest.strip_prefix(['=', ':']) else {
                continue;
            };
            let rest =
                rest.trim_start_matches(|c: char| c == '"' || c == '\'' || c.is_whitespace());
            let hex = run_of(rest, |c| c.is_ascii_hexdigit());
            if hex.len() >= 32 {
                out.push(hex.to_owned());
            }
        }
    }
    out
}

/// `OPENAI_API_KEY=<16+ characters>` (a filled-in .env line).
fn secret_assignments(line: &str) -> Vec<String> {
    let mut out = vec![];
    for var in SECRET_VARS {
        for (i, _) in line.match_indices(&format!("{var}=")) {
            let value = run_of(&line[i + var.len() + 1..], |c| {
                !c.is_whitespace() && c != '"'
            });
            if value.len() >= 16 && !value.starts_with('$') {
                out.push(value.to_owned());
            }
        }
    }
    out
}

fn git(args: &[&str]) -> Option<String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("git")
        .args(args)
        .current_dir(root)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn scanner_finds_key_shapes_and_allows_placeholders() {
    // Built at run time so this file itself holds no key-shaped literal.
    let hex = "0123456789abcdef".repeat(2);
    let sk = format!("sk-{}{}", "Ab1".repeat(7), "x9");
    let aws = format!("AKIA{}", "Q7ZP".repeat(4));
    let pem = format!("-----BEGIN RSA {}-----", "PRIVATE KEY");
    for line in [
        format!("api_key = \"{hex}\""),
        format!("let key = \"{sk}\";"),
        format!("aws={aws}"),
        pem,
        format!("DEEPGRAM_API_KEY={hex}"),
    ] {
        assert_eq!(findings(&line).len(), 1, "{line}");
    }
    for line in [
        format!("api_key = \"placeholder-{hex}\""),
        "OPENAI_API_KEY=".to_string(),
        "OPENAI_API_KEY=${OPENAI_API_KEY}".to_string(),
        "api_key = \"sk-live-123\"".to_string(),
    ] {
        assert!(findings(&line).is_empty(), "{line}");
    }
}

#[test]
fn no_credentials_in_tracked_files_or_history() {
    let Some(files) = git(&["ls-files"]) else {
        eprintln!(
            "\n*** SKIPPED: git unavailable or not a repository; secret scan did not run ***\n"
        );
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut problems = vec![];
    assert!(
        files.lines().count() > 10,
        "git ls-files listed almost nothing"
    );
    for file in files.lines() {
        let Ok(bytes) = std::fs::read(root.join(file)) else {
            continue; // listed but deleted in the work tree
        };
        for (n, line) in String::from_utf8_lossy(&bytes).lines().enumerate() {
            for f in findings(line) {
                problems.push(format!("{file}:{}: {f}", n + 1));
            }
        }
    }
    let history = git(&["log", "-p", "--all", "--no-color", "--format=commit %H"]);
    match history {
        None => eprintln!("\n*** SKIPPED: git log failed; history not scanned ***\n"),
        Some(log) => {
            eprintln!(
                "secret scan: {} files, {} history lines",
                files.lines().count(),
                log.lines().count()
            );
            let mut commit = "";
            for line in log.lines() {
                if let Some(c) = line.strip_prefix("commit ") {
                    commit = c;
                }
                for f in findings(line) {
                    problems.push(format!("history {commit}: {f}"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "key-shaped strings (rotate the key, then rewrite or allowlist):\n{}",
        problems.join("\n")
    );
}
