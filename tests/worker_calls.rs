//! The worker with the production `CallJobRunner` (a real call tree per job, provider doubles)
//! against the fake LiveKit server: a room the WebRTC transport cannot join fails the job with the
//! reason; with the simulated caller a call runs to its end.
#![allow(clippy::unwrap_used)]

#[path = "support/fake_livekit.rs"]
mod fake_livekit;

use std::sync::Arc;
use std::time::Duration;

use fake_livekit::{FakeLiveKit, API_KEY, API_SECRET};
use frontdesk::room::{LiveKitRoom, RoomConfig};
use frontdesk::secret::Secret;
use frontdesk::simulate::room::SimulatedCallerRoom;
use frontdesk::status::ServiceStatus;
use frontdesk::worker::{self, WorkerConfig, WorkerHandle};
use frontdesk_actors::provider::RoomIo;
use livekit_protocol as lk;
use livekit_protocol::worker_message::Message as In;

const WAIT: Duration = Duration::from_secs(10);

fn config(fake: &FakeLiveKit) -> WorkerConfig {
    WorkerConfig {
        url: fake.url(),
        api_key: Secret::new(API_KEY),
        api_secret: Secret::new(API_SECRET),
        agent_name: "frontdesk-test".into(),
        status_interval_ms: 100,
        // A busy test machine must not refuse these offers for CPU.
        load_from_cpu: false,
        ..WorkerConfig::default()
    }
}

fn call_deps() -> frontdesk_actors::call::CallDeps {
    use frontdesk_actors::doubles::*;
    frontdesk_actors::call::CallDeps {
        stt: Arc::new(ScriptedStt::new(ScriptedSttConfig::default())),
        llm: Arc::new(ScriptedLlm::new(ScriptedLlmConfig::default())),
        tts: Arc::new(ScriptedTts::new(ScriptedTtsConfig::default())),
        store: Arc::new(MemoryStore::seeded()),
        observer: Arc::new(frontdesk_actors::call::NoopObserver),
        prices: Default::default(),
    }
}

async fn with_call_runner(room: Arc<dyn RoomIo>) -> (FakeLiveKit, WorkerHandle) {
    let fake = FakeLiveKit::start().await;
    let name = room.name();
    let runner = worker::CallJobRunner::new(room, call_deps(), Default::default());
    let status = Arc::new(ServiceStatus::new());
    let w = worker::start(config(&fake), Arc::new(runner), Arc::clone(&status)).unwrap();
    fake.wait_for("registration", WAIT, |rs| {
        rs.iter().any(|r| matches!(r.msg, In::Register(_)))
    })
    .await;
    assert_eq!(
        status.worker().connector,
        name,
        "the worker names its connector"
    );
    (fake, w)
}

#[tokio::test]
async fn a_room_the_transport_cannot_join_fails_the_job_with_the_reason() {
    // The fake server speaks the agent protocol only: its /rtc refuses the websocket upgrade.
    let room = LiveKitRoom::new(RoomConfig {
        connect_timeout_ms: 3_000,
        ..RoomConfig::default()
    });
    let (fake, w) = with_call_runner(Arc::new(room)).await;
    assert!(fake.dispatch("AJ_1", "room-1").await.available);
    fake.wait_job_status("AJ_1", lk::JobStatus::JsFailed).await;
    let (_, error) = fake.job_statuses("AJ_1").pop().unwrap();
    assert!(error.contains("could not join the room"), "{error}");
    assert!(
        error.contains("LiveKit server"),
        "the reason is named: {error}"
    );
    assert_eq!(w.active_jobs(), 0);
}

#[tokio::test]
async fn a_simulated_caller_call_runs_to_its_end() {
    use frontdesk::simulate::caller::CallerConfig;
    let caller = CallerConfig {
        duration: Duration::from_millis(500),
        reply_timeout: Duration::from_secs(2),
        quiet: Duration::from_millis(300),
        pause: Duration::from_millis(100),
    };
    let clips = frontdesk::simulate::clips::Clips::load().unwrap();
    let room = SimulatedCallerRoom::new(clips, caller);
    let (fake, w) = with_call_runner(Arc::new(room)).await;
    assert!(fake.dispatch("AJ_1", "room-1").await.available);
    fake.wait_job_status("AJ_1", lk::JobStatus::JsRunning).await;
    // The caller hangs up after its first exchange: the call ends normally.
    fake.wait_job_status("AJ_1", lk::JobStatus::JsSuccess).await;
    assert_eq!(w.active_jobs(), 0);
}
