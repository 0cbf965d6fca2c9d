//! The binary as an operator runs it: `frontdesk dev` against the fake LiveKit server, with no
//! provider keys (emulators) and the embedded store. It registers, takes a job (a simulated
//! caller), shows it on `/worker`, and on SIGTERM drains: WS_FULL, offers refused, the running call
//! finishes, then the process exits 0. A second SIGTERM ends it at once.
#![allow(clippy::disallowed_methods)] // tests may block: files, fixtures, std channels
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

#[path = "support/fake_livekit.rs"]
mod fake_livekit;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fake_livekit::{FakeLiveKit, API_KEY, API_SECRET};
use livekit_protocol as lk;
use livekit_protocol::worker_message::Message as In;

const WAIT: Duration = Duration::from_secs(20);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Running {
    child: Child,
    http: String,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        if std::thread::panicking() {
            // The process's own story, for the failure report.
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("frontdesk dev log:\n{log}");
        }
    }
}

fn start_dev(fake: &FakeLiveKit) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let db = format!("sqlite://{}", dir.path().join("dev.db").display());
    let log = dir.path().join("dev.log");
    let child = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .arg("dev")
        // The fake server has no media path: rooms get the simulated caller.
        .arg("--simulated-caller")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LIVEKIT_URL", fake.url())
        .env("LIVEKIT_API_KEY", API_KEY)
        .env("LIVEKIT_API_SECRET", API_SECRET)
        .env("DATABASE_URL", db)
        .env("FRONTDESK_HTTP_PORT", port.to_string())
        .env("FRONTDESK_MAX_CALLS", "4")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Running {
        child,
        http: format!("http://127.0.0.1:{port}"),
        log,
        _dir: dir,
    }
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

async fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still running after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn worker_json(http: &str) -> serde_json::Value {
    reqwest::get(format!("{http}/worker"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn draining(r: &[fake_livekit::Received]) -> bool {
    r.iter().any(|r| {
        matches!(&r.msg, In::UpdateWorker(u)
            if u.status == Some(lk::WorkerStatus::WsFull as i32))
    })
}

async fn registered_with_a_call(fake: &FakeLiveKit, dev: &Running) {
    fake.wait_for("registration", WAIT, |rs| {
        rs.iter().any(|r| matches!(r.msg, In::Register(_)))
    })
    .await;
    let offer = fake.dispatch("job-1", "room-1").await;
    assert!(offer.available, "{offer:?}");
    fake.wait_job_status("job-1", lk::JobStatus::JsRunning)
        .await;
    let mut active = 0;
    for _ in 0..100 {
        active = worker_json(&dev.http).await["active_calls"]
            .as_u64()
            .unwrap_or(0);
        if active == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(active, 1, "/worker shows the running call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_then_exits_when_the_call_ends() {
    let fake = FakeLiveKit::start().await;
    let mut dev = start_dev(&fake);
    registered_with_a_call(&fake, &dev).await;

    sigterm(&dev.child);
    fake.wait_for("WS_FULL while draining", WAIT, draining)
        .await;
    let refused = fake.dispatch("job-2", "room-2").await;
    assert!(!refused.available, "a draining worker takes no job");
    // The simulated caller talks for 30 s: a drain that did not wait for it would have exited.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        dev.child.try_wait().unwrap().is_none(),
        "exited with a call running"
    );

    fake.terminate("job-1");
    fake.wait_job_status("job-1", lk::JobStatus::JsSuccess)
        .await;
    let status = wait_exit(&mut dev.child, WAIT).await;
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_exits_at_once() {
    let fake = FakeLiveKit::start().await;
    let mut dev = start_dev(&fake);
    registered_with_a_call(&fake, &dev).await;

    sigterm(&dev.child);
    fake.wait_for("WS_FULL while draining", WAIT, draining)
        .await;
    sigterm(&dev.child);
    // The drain timeout is ten minutes and the caller talks for 30 s; only the second signal can
    // end it this soon.
    let status = wait_exit(&mut dev.child, Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}");
}
