//! The WebRTC room transport (`frontdesk::room`) against the real LiveKit server, without the
//! call tree: audio both ways between an agent and a caller built on the same transport, and what
//! goes wrong from outside — a refused token, a caller who never publishes audio, the server
//! removing the agent, a server that stops answering — each a clear error or event, never a hang
//! or a panic.
//!
//! Without a livekit-server binary each test prints `SKIPPED: ...`; under
//! FRONTDESK_REQUIRE_E2E=1 (CI) they fail instead.
#![allow(clippy::unwrap_used)]

#[path = "support/livekit.rs"]
mod livekit;

use std::time::Duration;

use frontdesk::room::{LiveKitRoom, RoomConfig, TransportError};
use frontdesk::secret::Secret;
use frontdesk::token::{self, TokenArgs};
use frontdesk::worker::WorkerConfig;
use frontdesk_actors::audio::AudioFrame;
use frontdesk_actors::provider::{JoinRequest, RoomEvent, RoomLink};
use livekit::LiveKitServer;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

fn creds(server: &LiveKitServer) -> WorkerConfig {
    WorkerConfig {
        url: server.ws_url(),
        api_key: Secret::new(server.api_key()),
        api_secret: Secret::new(server.api_secret()),
        ..WorkerConfig::default()
    }
}

fn request(server: &LiveKitServer, room: &str, identity: &str, agent: bool) -> JoinRequest {
    let args = TokenArgs {
        room: room.into(),
        identity: identity.into(),
        ttl: Duration::from_secs(600),
    };
    let token = if agent {
        token::mint_agent(&creds(server), &args)
    } else {
        token::mint(&creds(server), &args)
    };
    JoinRequest {
        url: server.ws_url(),
        token: token.unwrap(),
        room: room.into(),
        caller: None,
    }
}

fn quick() -> RoomConfig {
    RoomConfig {
        caller_audio_timeout_ms: 1_500,
        reconnect_timeout_ms: 4_000,
        ..RoomConfig::default()
    }
}

/// A fixture line (real speech, 16 kHz: a steady tone would be taken for noise by Opus's DTX)
/// as 20 ms frames.
fn speech(line: u32) -> Vec<AudioFrame> {
    let path = format!(
        "{}/tests/fixtures/speech/line{line:02}.wav",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut wav = hound::WavReader::open(path).unwrap();
    assert_eq!(wav.spec().sample_rate, 16_000);
    let samples: Vec<i16> = wav.samples::<i16>().map(Result::unwrap).collect();
    samples
        .chunks_exact(320)
        .enumerate()
        .map(|(i, c)| AudioFrame::new(c, 16_000, Duration::from_millis(20 * i as u64)))
        .collect()
}

/// Samples of `frames` above 1000 in magnitude.
fn loud(frames: &[AudioFrame]) -> usize {
    frames
        .iter()
        .map(|f| {
            f.samples
                .iter()
                .filter(|s| s.unsigned_abs() > 1_000)
                .count()
        })
        .sum()
}

/// Play frames in real time.
async fn speak(link: &mut RoomLink, frames: Vec<AudioFrame>) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for f in frames {
        tick.tick().await;
        link.output.send(f).await.unwrap();
    }
}

/// Receive audio for `d`; returns (samples, samples above 1000 in magnitude).
async fn listen(link: &mut RoomLink, d: Duration) -> (usize, usize) {
    let (mut all, mut loud) = (0, 0);
    let deadline = tokio::time::Instant::now() + d;
    while let Ok(Some(f)) = tokio::time::timeout_at(deadline, link.audio.recv()).await {
        all += f.samples.len();
        loud += f
            .samples
            .iter()
            .filter(|s| s.unsigned_abs() > 1_000)
            .count();
    }
    (all, loud)
}

/// What `from` said (fixture line `n`) and `to` heard, each as (samples, loud samples).
async fn say_to(
    from: &mut RoomLink,
    to: &mut RoomLink,
    n: u32,
) -> ((usize, usize), (usize, usize)) {
    let line = speech(n);
    let said = (line.len() * 320, loud(&line));
    let window = Duration::from_millis(20 * line.len() as u64 + 700);
    let (heard, ()) = tokio::join!(listen(to, window), speak(from, line));
    (heard, said)
}

async fn next_event(link: &mut RoomLink, within: Duration) -> Option<RoomEvent> {
    tokio::time::timeout(within, link.events.recv())
        .await
        .ok()
        .flatten()
}

async fn wait_event(
    link: &mut RoomLink,
    within: Duration,
    f: impl Fn(&RoomEvent) -> bool,
) -> RoomEvent {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next_event(link, left).await {
            Some(ev) if f(&ev) => return ev,
            Some(_) => {}
            None => panic!("no matching room event within {within:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_flows_both_ways_through_the_server() {
    let _serial = livekit::serial().await;
    let Some(server) = LiveKitServer::start().await else {
        return;
    };
    let room = "transport-audio";
    let agent = LiveKitRoom::new(RoomConfig::default());
    let caller = LiveKitRoom::caller_side(RoomConfig::default());
    let mut a = agent
        .join_with_stats(request(&server, room, "agent-1", true))
        .await
        .unwrap();
    let mut c = caller
        .join_with_stats(request(&server, room, "caller-1", false))
        .await
        .unwrap();
    let ev = wait_event(&mut a.link, WAIT, |e| {
        matches!(e, RoomEvent::ParticipantJoined { .. })
    })
    .await;
    assert_eq!(
        ev,
        RoomEvent::ParticipantJoined {
            identity: "caller-1".into()
        }
    );
    // The caller says a line: the agent hears it, decoded straight to 16 kHz.
    let (heard_by_agent, (said, said_loud)) = say_to(&mut c.link, &mut a.link, 2).await;
    assert!(
        heard_by_agent.0 >= said,
        "the agent heard {heard_by_agent:?} of {said} samples"
    );
    assert!(
        heard_by_agent.1 * 10 >= said_loud * 8,
        "loud samples: heard {} of {said_loud}",
        heard_by_agent.1
    );
    // The agent answers: the caller hears it.
    let (heard_by_caller, (_, said_loud)) = say_to(&mut a.link, &mut c.link, 4).await;
    assert!(
        heard_by_caller.1 * 10 >= said_loud * 8,
        "the caller heard {heard_by_caller:?} of {said_loud} loud"
    );
    let (a_stats, c_stats) = (a.stats.snapshot(), c.stats.snapshot());
    assert!(
        a_stats.packets_sent >= 90 && c_stats.packets_sent >= 90,
        "{a_stats:?} {c_stats:?}"
    );
    assert!(a_stats.packets_received >= 90 && c_stats.packets_received >= 90);
    assert_eq!(
        a_stats.packets_lost + c_stats.packets_lost,
        0,
        "loopback loses nothing"
    );
    assert_eq!(a_stats.packets_corrupt + c_stats.packets_corrupt, 0);
    // Silence is not sent (DTX), and the receiver fills the gap on its audio clock.
    let before = a.stats.snapshot().packets_sent;
    speak(
        &mut a.link,
        vec![AudioFrame::silence(16_000, 320, Duration::ZERO); 50],
    )
    .await;
    let silent_sent = a.stats.snapshot().packets_sent - before;
    assert!(
        silent_sent < 15,
        "{silent_sent} packets for a second of silence"
    );
    // The caller hangs up: the agent hears it leave.
    drop(c);
    let ev = wait_event(&mut a.link, WAIT, |e| {
        matches!(e, RoomEvent::ParticipantLeft { .. })
    })
    .await;
    assert_eq!(
        ev,
        RoomEvent::ParticipantLeft {
            identity: "caller-1".into()
        }
    );
    // And the agent leaves the room when its link is dropped.
    drop(a);
    let deadline = tokio::time::Instant::now() + WAIT;
    while !server.participants(room).await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the agent stayed in the room"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_server_refuses_is_a_clear_error() {
    let _serial = livekit::serial().await;
    let Some(server) = LiveKitServer::start().await else {
        return;
    };
    let mut wrong = creds(&server);
    wrong.api_secret = Secret::new("not-the-secret-of-this-server");
    let args = TokenArgs {
        room: "transport-token".into(),
        identity: "agent-x".into(),
        ttl: Duration::from_secs(60),
    };
    let req = JoinRequest {
        url: server.ws_url(),
        token: token::mint_agent(&wrong, &args).unwrap(),
        room: "transport-token".into(),
        caller: None,
    };
    let started = std::time::Instant::now();
    let err = match LiveKitRoom::new(quick()).join_with_stats(req).await {
        Ok(_) => panic!("joined with a forged token"),
        Err(e) => e,
    };
    assert!(matches!(err, TransportError::Unauthorized(_)), "{err}");
    assert!(!err.is_retriable());
    assert!(err.to_string().contains("refused the join token"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "failed fast");
    // Through the seam the call uses: a join error naming the room and the reason.
    use frontdesk_actors::provider::RoomIo;
    let req = JoinRequest {
        url: server.ws_url(),
        token: "not a jwt".into(),
        room: "transport-token".into(),
        caller: None,
    };
    let err = LiveKitRoom::new(quick()).join(req).await.unwrap_err();
    assert!(err.to_string().contains("transport-token"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_never_publishes_audio_is_reported() {
    let _serial = livekit::serial().await;
    let Some(server) = LiveKitServer::start().await else {
        return;
    };
    let room = "transport-silent";
    // A participant that joins on the signal channel only and never publishes anything.
    let silent = request(&server, room, "silent-caller", false);
    let mut opts = livekit_signaling::SignalOptions::default();
    opts.region_failover = false;
    let (_signal, _join, _events) =
        livekit_signaling::SignalClient::connect(&silent.url, &silent.token, opts, None)
            .await
            .unwrap();
    let mut req = request(&server, room, "agent-2", true);
    req.caller = Some("silent-caller".into());
    let mut a = LiveKitRoom::new(quick())
        .join_with_stats(req)
        .await
        .unwrap();
    let ev = wait_event(&mut a.link, WAIT, |e| {
        matches!(e, RoomEvent::ParticipantJoined { .. })
    })
    .await;
    assert_eq!(
        ev,
        RoomEvent::ParticipantJoined {
            identity: "silent-caller".into()
        }
    );
    let started = std::time::Instant::now();
    wait_event(&mut a.link, WAIT, |e| *e == RoomEvent::NoCallerAudio).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1_000),
        "reported after {took:?}, before the timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_removing_the_agent_disconnects_with_the_reason() {
    let _serial = livekit::serial().await;
    let Some(server) = LiveKitServer::start().await else {
        return;
    };
    let room = "transport-removed";
    let mut a = LiveKitRoom::new(quick())
        .join_with_stats(request(&server, room, "agent-3", true))
        .await
        .unwrap();
    server
        .twirp(
            "RoomService",
            "RemoveParticipant",
            json!({"room": room, "identity": "agent-3"}),
        )
        .await
        .unwrap();
    let ev = wait_event(&mut a.link, WAIT, |e| {
        matches!(e, RoomEvent::Disconnected { .. })
    })
    .await;
    let RoomEvent::Disconnected { reason } = ev else {
        unreachable!()
    };
    assert!(reason.contains("PARTICIPANT_REMOVED"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_answering_ends_in_disconnected_with_the_reason() {
    let _serial = livekit::serial().await;
    let Some(mut server) = LiveKitServer::start().await else {
        return;
    };
    let room = "transport-frozen";
    let mut a = LiveKitRoom::new(quick())
        .join_with_stats(request(&server, room, "agent-4", true))
        .await
        .unwrap();
    let pid = server.pid().unwrap();
    let sig = |s: &str| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("kill -{s} {pid}"))
            .status()
            .unwrap();
    };
    // Frozen: the socket stays open but no pong comes back.
    sig("STOP");
    let ev = wait_event(&mut a.link, Duration::from_secs(40), |e| {
        matches!(e, RoomEvent::Reconnecting { .. })
    })
    .await;
    let RoomEvent::Reconnecting { reason } = ev else {
        unreachable!()
    };
    let ev = wait_event(&mut a.link, Duration::from_secs(30), |e| {
        matches!(e, RoomEvent::Disconnected { .. })
    })
    .await;
    sig("CONT");
    let RoomEvent::Disconnected { reason: gone } = ev else {
        unreachable!()
    };
    eprintln!("reconnecting because: {reason}; gave up: {gone}");
    assert!(
        reason.contains("ping timeout") || reason.contains("disconnected"),
        "{reason}"
    );
    assert!(gone.contains("could not recover"), "{gone}");
    server.kill().await;
}

/// A TCP relay in front of the server's signal port whose live connections can be cut (the media
/// goes straight to the server over UDP, so only the signal channel blips).
struct SignalProxy {
    port: u16,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl SignalProxy {
    async fn start(upstream: u16) -> SignalProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let list = std::sync::Arc::clone(&conns);
        let accept = tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                let relay = tokio::spawn(async move {
                    if let Ok(mut up) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                list.lock().unwrap().push(relay);
            }
        });
        SignalProxy {
            port,
            conns,
            accept,
        }
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// Drop every relayed connection (new ones are still accepted).
    fn cut(&self) {
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}

impl Drop for SignalProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_blip_is_resumed_without_dropping_the_call() {
    let _serial = livekit::serial().await;
    let Some(server) = LiveKitServer::start().await else {
        return;
    };
    let proxy = SignalProxy::start(server.ports().http).await;
    let room = "transport-blip";
    let mut agent_req = request(&server, room, "agent-5", true);
    agent_req.url = proxy.url();
    let mut a = LiveKitRoom::new(quick())
        .join_with_stats(agent_req)
        .await
        .unwrap();
    let mut c = LiveKitRoom::caller_side(RoomConfig::default())
        .join_with_stats(request(&server, room, "caller-5", false))
        .await
        .unwrap();
    wait_event(&mut a.link, WAIT, |e| {
        matches!(e, RoomEvent::ParticipantJoined { .. })
    })
    .await;
    let sid_of_agent = || async {
        let infos = server.participants_info(room).await;
        let agent = infos.iter().find(|p| p["identity"] == "agent-5").cloned();
        agent.map(|p| p["sid"].as_str().unwrap_or_default().to_owned())
    };
    let before = sid_of_agent().await.expect("the agent is in the room");
    proxy.cut();
    let ev = wait_event(&mut a.link, WAIT, |e| {
        matches!(e, RoomEvent::Reconnecting { .. })
    })
    .await;
    eprintln!("blip: {ev:?}");
    wait_event(&mut a.link, WAIT, |e| *e == RoomEvent::Reconnected).await;
    // Same participant, same call: the caller is still there and hears the agent.
    let (heard, (_, said_loud)) = say_to(&mut a.link, &mut c.link, 3).await;
    assert!(
        heard.1 * 10 >= said_loud * 7,
        "after the blip the caller heard {heard:?} of {said_loud} loud"
    );
    let after = sid_of_agent().await;
    assert_eq!(
        after,
        Some(before),
        "resumed as the same participant, not rejoined"
    );
}
