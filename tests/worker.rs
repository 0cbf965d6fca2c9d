//! The agent worker against a fake LiveKit server (tests/support/fake_livekit.rs): registration,
//! admission, job lifecycle, reconnects, drain, bad credentials. Timers are shortened through
//! the config; every wait is on a condition with a deadline.
#![allow(clippy::unwrap_used)]

#[path = "support/fake_livekit.rs"]
mod fake_livekit;
#[path = "support/worker_runner.rs"]
mod worker_runner;

use std::sync::Arc;
use std::time::Duration;

use fake_livekit::{FakeLiveKit, Received, API_KEY, API_SECRET};
use frontdesk::secret::Secret;
use frontdesk::status::{DepState, ServiceStatus};
use frontdesk::worker::{self, WorkerConfig, WorkerError, WorkerHandle};
use livekit_protocol as lk;
use livekit_protocol::worker_message::Message as In;
use worker_runner::TestRunner;

const WAIT: Duration = Duration::from_secs(10);

fn config(fake: &FakeLiveKit) -> WorkerConfig {
    WorkerConfig {
        url: fake.url(),
        api_key: Secret::new(API_KEY),
        api_secret: Secret::new(API_SECRET),
        agent_name: "frontdesk-test".into(),
        max_calls: 4,
        load_threshold: 1.0,
        // Loads asserted here are slot fractions; the CPU of a busy test machine would blur them.
        load_from_cpu: false,
        status_interval_ms: 100,
        assignment_timeout_ms: 300,
        drain_timeout_ms: 5_000,
        reconnect_max_delay_ms: 100,
        max_reconnect_attempts: 3,
    }
}

struct Setup {
    fake: FakeLiveKit,
    runner: Arc<TestRunner>,
    status: Arc<ServiceStatus>,
    worker: WorkerHandle,
}

async fn setup(edit: impl FnOnce(&mut WorkerConfig)) -> Setup {
    let fake = FakeLiveKit::start().await;
    let mut cfg = config(&fake);
    edit(&mut cfg);
    let runner = Arc::new(TestRunner::default());
    let status = Arc::new(ServiceStatus::new());
    let worker = worker::start(cfg, runner.clone(), Arc::clone(&status)).unwrap();
    fake.wait_for("registration", WAIT, |rs| {
        rs.iter().any(|r| matches!(r.msg, In::Register(_)))
    })
    .await;
    Setup {
        fake,
        runner,
        status,
        worker,
    }
}

fn statuses(rs: &[Received]) -> Vec<lk::UpdateWorkerStatus> {
    rs.iter()
        .filter_map(|r| match &r.msg {
            In::UpdateWorker(u) => Some(*u),
            _ => None,
        })
        .collect()
}

fn full(u: &lk::UpdateWorkerStatus) -> bool {
    u.status == Some(lk::WorkerStatus::WsFull as i32)
}

#[test]
fn register_encodes_to_the_protocol_test_vector() {
    let bytes = prost::Message::encode_to_vec(&worker::wire::register("my-agent", "0.1.0"));
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex.join(" "),
        "0a 1d 1a 05 30 2e 31 2e 30 3a 0a 08 01 10 01 18 01 50 01 58 01 42 08 6d 79 2d 61 67 65 6e 74"
    );
}

#[tokio::test]
async fn registers_and_reports_status() {
    let s = setup(|_| {}).await;
    let reg = s
        .fake
        .received()
        .into_iter()
        .find_map(|r| match r.msg {
            In::Register(r) => Some(r),
            _ => None,
        })
        .unwrap();
    assert_eq!(reg.agent_name, "frontdesk-test");
    assert_eq!(reg.r#type, lk::JobType::JtRoom as i32);
    assert!(!reg.version.is_empty());
    assert!(
        matches!(s.fake.received()[0].msg, In::Register(_)),
        "register comes first"
    );
    s.fake
        .wait_for("two status reports", WAIT, |rs| statuses(rs).len() >= 2)
        .await;
    let st = statuses(&s.fake.received());
    assert!(st
        .iter()
        .all(|u| !full(u) && u.load == 0.0 && u.job_count == 0));
    let w = s.status.worker();
    assert!(w.connected);
    assert!(w.worker_id.unwrap().starts_with("AW_"));
    assert_eq!((w.agent_name.as_str(), w.max_calls), ("frontdesk-test", 4));
    assert_eq!((w.protocol_version, w.connector.as_str()), (1, "test"));
    assert_eq!(s.status.deps()[worker::DEPENDENCY].state, DepState::Up);
}

#[tokio::test]
async fn accepts_a_job_and_reports_running() {
    let s = setup(|_| {}).await;
    let resp = s.fake.dispatch("AJ_1", "room-1").await;
    assert!(resp.available);
    assert_eq!(resp.participant_identity, "agent-AJ_1");
    s.fake
        .wait_job_status("AJ_1", lk::JobStatus::JsRunning)
        .await;
    let info = s.runner.started("AJ_1").unwrap();
    assert_eq!(info.room, "room-1");
    assert_eq!(
        info.url,
        s.fake.url(),
        "no URL in the assignment: the worker's own"
    );
    assert_eq!(info.participant_identity, "agent-AJ_1");
    let claims = livekit_api::access_token::TokenVerifier::with_api_key(API_KEY, API_SECRET)
        .verify(info.token.expose())
        .unwrap();
    assert_eq!(claims.video.room, "room-1");
    s.fake
        .wait_for("load reported", WAIT, |rs| {
            statuses(rs)
                .iter()
                .any(|u| u.job_count == 1 && u.load == 0.25)
        })
        .await;
    assert_eq!(s.status.worker().active_calls, 1);
}

#[tokio::test]
async fn refuses_offers_when_full() {
    let s = setup(|c| c.max_calls = 1).await;
    assert!(s.fake.dispatch("AJ_1", "room-1").await.available);
    s.fake
        .wait_job_status("AJ_1", lk::JobStatus::JsRunning)
        .await;
    let second = s.fake.dispatch("AJ_2", "room-2").await;
    assert!(!second.available);
    assert!(s.runner.started("AJ_2").is_none());
    s.fake
        .wait_for("WS_FULL", WAIT, |rs| statuses(rs).iter().any(full))
        .await;
}

#[tokio::test]
async fn refuses_offers_at_the_load_threshold() {
    // One call of two is load 0.5: at the threshold, so the worker is full.
    let s = setup(|c| {
        c.max_calls = 2;
        c.load_threshold = 0.5;
    })
    .await;
    assert!(s.fake.dispatch("AJ_1", "room-1").await.available);
    s.fake
        .wait_job_status("AJ_1", lk::JobStatus::JsRunning)
        .await;
    assert!(!s.fake.dispatch("AJ_2", "room-2").await.available);
    s.fake
        .wait_for("WS_FULL at load 0.5", WAIT, |rs| {
            statuses(rs).iter().any(|u| full(u) && u.load == 0.5)
        })
        .await;
}

#[tokio::test]
async fn two_simultaneous_offers_for_the_last_slot() {
    let s = setup(|c| c.max_calls = 1).await;
    s.fake.offer("AJ_a", "room-a");
    s.fake.offer("AJ_b", "room-b");
    let a = s.fake.availability("AJ_a").await;
    let b = s.fake.availability("AJ_b").await;
    assert!(a.available ^ b.available, "exactly one: {a:?} {b:?}");
}

#[tokio::test]
async fn an_unassigned_reservation_is_released() {
    let s = setup(|c| c.max_calls = 1).await;
    s.fake.offer("AJ_1", "room-1");
    assert!(s.fake.availability("AJ_1").await.available);
    // Accepted but never assigned: after assignment_timeout_ms (300) the slot is free again.
    s.fake
        .wait_for("slot released", WAIT, |rs| {
            let st = statuses(rs);
            st.iter().any(full) && st.last().is_some_and(|u| !full(u))
        })
        .await;
    assert!(s.fake.dispatch("AJ_2", "room-2").await.available);
    s.fake
        .wait_job_status("AJ_2", lk::JobStatus::JsRunning)
        .await;
}

#[tokio::test]
async fn termination_ends_the_job() {
    let s = setup(|_| {}).await;
    assert!(s.fake.dispatch("AJ_1", "room-1").await.available);
    s.fake
        .wait_job_status("AJ_1", lk::JobStatus::JsRunning)
        .await;
    s.fake.terminate("AJ_unknown");
    s.fake.terminate("AJ_1");
    s.fake
        .wait_job_status("AJ_1", lk::JobStatus::JsSuccess)
        .await;
    assert!(s.runner.was_ended("AJ_1"));
    assert!(s.fake.job_statuses("AJ_unknown").is_empty());
    assert_eq!(s.worker.active_jobs(), 0);
}

#[tokio::test]
async fn a_failed_job_is_reported() {
    let s = setup(|_| {}).await;
    assert!(s.fake.dispatch("AJ_1", "room-1").await.available);
    s.fake
        .wait_job_status("AJ_1", lk::JobStatus::JsRunning)
        .await;
    s.runner.finish("AJ_1", Err("boom".into()));
    s.fake
        .wait_job_status("AJ_1", lk::JobStatus::JsFailed)
        .await;
    let last = s.fake.job_statuses("AJ_1").pop().unwrap();
    assert!(last.1.contains("boom"), "{last:?}");
}

#[tokio::test]
async fn reconnects_without_harming_running_calls() {
    let s = setup(|_| {}).await;
    assert!(s.fake.dispatch("AJ_1", "room-1").await.available);
    s.fake
        .wait_job_status("AJ_1", lk::JobStatus::JsRunning)
        .await;
    s.fake.drop_all();
    s.fake
        .wait_for("re-registration", WAIT, |rs| {
            rs.iter()
                .filter(|r| matches!(r.msg, In::Register(_)))
                .count()
                == 2
        })
        .await;
    assert!(
        !s.runner.was_ended("AJ_1"),
        "the call survived the reconnect"
    );
    assert_eq!(s.worker.active_jobs(), 1);
    // The new connection reports the running call and controls it.
    s.fake
        .wait_for("job count on the new connection", WAIT, |rs| {
            rs.iter()
                .any(|r| r.conn > 1 && matches!(&r.msg, In::UpdateWorker(u) if u.job_count == 1))
        })
        .await;
    s.fake.terminate("AJ_1");
    s.fake
        .wait_job_status("AJ_1", lk::JobStatus::JsSuccess)
        .await;
    assert!(s.status.worker().connected);
}

#[tokio::test]
async fn go_away_moves_to_a_new_connection() {
    let s = setup(|_| {}).await;
    assert!(s.fake.dispatch("AJ_1", "room-1").await.available);
    s.fake
        .wait_job_status("AJ_1", lk::JobStatus::JsRunning)
        .await;
    s.fake.go_away();
    s.fake
        .wait_for("re-registration", WAIT, |rs| {
            rs.iter()
                .any(|r| r.conn > 1 && matches!(r.msg, In::Register(_)))
        })
        .await;
    assert!(!s.runner.was_ended("AJ_1"));
    assert_eq!(s.worker.active_jobs(), 1);
}

#[tokio::test]
async fn a_job_ending_while_disconnected_is_reported_after_reconnecting() {
    let s = setup(|c| c.max_reconnect_attempts = 100).await;
    assert!(s.fake.dispatch("AJ_1", "room-1").await.available);
    s.fake
        .wait_job_status("AJ_1", lk::JobStatus::JsRunning)
        .await;
    s.fake.refuse_connections(true);
    s.fake.drop_all();
    let down = |st: &ServiceStatus| !st.worker().connected;
    wait_until("worker disconnected", || down(&s.status)).await;
    s.runner.finish("AJ_1", Ok(()));
    wait_until("job gone", || s.worker.active_jobs() == 0).await;
    assert!(
        s.fake.job_statuses("AJ_1").len() == 1,
        "not sent while down"
    );
    s.fake.refuse_connections(false);
    s.fake
        .wait_job_status("AJ_1", lk::JobStatus::JsSuccess)
        .await;
    let on = s.fake.received().into_iter().find(
        |r| matches!(&r.msg, In::UpdateJob(u) if u.status == lk::JobStatus::JsSuccess as i32),
    );
    assert!(on.unwrap().conn > 1, "sent on the new connection");
}

/// Poll a condition the fake cannot observe (worker-side state).
async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn drain_waits_for_the_running_call() {
    let s = setup(|_| {}).await;
    assert!(s.fake.dispatch("AJ_1", "room-1").await.available);
    s.fake
        .wait_job_status("AJ_1", lk::JobStatus::JsRunning)
        .await;
    let worker = s.worker.clone();
    let drain = tokio::spawn(async move { worker.drain().await });
    s.fake
        .wait_for("draining WS_FULL", WAIT, |rs| {
            statuses(rs).iter().any(|u| full(u) && u.draining)
        })
        .await;
    assert!(!s.fake.dispatch("AJ_2", "room-2").await.available);
    assert!(s.status.worker().draining);
    assert!(!drain.is_finished(), "drain waits for the call");
    s.runner.finish("AJ_1", Ok(()));
    tokio::time::timeout(WAIT, drain)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(!s.runner.was_ended("AJ_1"), "the call ended by itself");
    // Sent before the close frame; the fake records it as it reads.
    s.fake
        .wait_job_status("AJ_1", lk::JobStatus::JsSuccess)
        .await;
}

#[tokio::test]
async fn drain_hangs_up_after_the_timeout() {
    let s = setup(|c| c.drain_timeout_ms = 300).await;
    assert!(s.fake.dispatch("AJ_1", "room-1").await.available);
    s.fake
        .wait_job_status("AJ_1", lk::JobStatus::JsRunning)
        .await;
    let started = tokio::time::Instant::now();
    tokio::time::timeout(WAIT, s.worker.drain())
        .await
        .unwrap()
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(s.runner.was_ended("AJ_1"), "hung up at the drain timeout");
    s.fake
        .wait_job_status("AJ_1", lk::JobStatus::JsSuccess)
        .await;
}

#[tokio::test]
async fn abort_hangs_up_at_once() {
    let s = setup(|_| {}).await;
    assert!(s.fake.dispatch("AJ_1", "room-1").await.available);
    s.fake
        .wait_job_status("AJ_1", lk::JobStatus::JsRunning)
        .await;
    s.worker.abort();
    tokio::time::timeout(WAIT, s.worker.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(s.runner.was_ended("AJ_1"));
}

#[tokio::test]
async fn bad_credentials_back_off_then_give_up() {
    let fake = FakeLiveKit::start().await;
    let cfg = WorkerConfig {
        api_secret: Secret::new("not-the-secret-0123456789abcdef"),
        reconnect_max_delay_ms: 150,
        ..config(&fake)
    };
    let status = Arc::new(ServiceStatus::new());
    let started = tokio::time::Instant::now();
    let w = worker::start(cfg, Arc::new(TestRunner::default()), Arc::clone(&status)).unwrap();
    let err = tokio::time::timeout(WAIT, w.wait())
        .await
        .unwrap()
        .unwrap_err();
    // Three attempts, with 150 ms (capped) between them.
    assert!(started.elapsed() >= Duration::from_millis(300), "backoff");
    assert_eq!(fake.unauthorized(), 3);
    assert!(
        matches!(err, WorkerError::GaveUp { attempts: 3, .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("401") && text.contains("LIVEKIT_API_KEY"),
        "{text}"
    );
    assert!(text.contains("LIVEKIT_API_SECRET"), "{text}");
    assert!(!text.contains("not-the-secret"), "secret leaked: {text}");
    assert!(!status.healthy(), "health goes 503 after giving up");
    assert!(!status.worker().connected);
}

#[tokio::test]
async fn an_unreachable_server_is_retried() {
    let fake = FakeLiveKit::start().await;
    let mut cfg = config(&fake);
    drop(fake);
    cfg.max_reconnect_attempts = 2;
    let status = Arc::new(ServiceStatus::new());
    let w = worker::start(cfg, Arc::new(TestRunner::default()), Arc::clone(&status)).unwrap();
    let err = tokio::time::timeout(WAIT, w.wait())
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, WorkerError::GaveUp { attempts: 2, .. }),
        "{err}"
    );
    // While retrying, the dependency is down but not critical (calls keep the pod alive).
    assert!(matches!(
        status.deps()[worker::DEPENDENCY].state,
        DepState::Down(_)
    ));
}

#[tokio::test]
async fn invalid_config_is_refused_up_front() {
    let cfg = WorkerConfig::default();
    let err = worker::start(
        cfg,
        Arc::new(TestRunner::default()),
        Arc::new(ServiceStatus::new()),
    )
    .unwrap_err();
    assert!(err.to_string().contains("LIVEKIT_URL"), "{err}");
    assert!(!err.is_retriable());
}
