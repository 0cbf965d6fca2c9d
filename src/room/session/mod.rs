//! One joined room: a task that owns the signal connection and both peer connections and turns
//! what they report into the call's audio and events. It answers the server's offers, offers our
//! microphone, trickles candidates, follows the participants, recovers a lost connection (resume
//! with an ICE restart, then a rejoin) and leaves the room when the call is over.

mod media;
mod publish;
mod recover;
mod signal;

use frontdesk_actors::provider::room::room_tag;
use std::sync::Arc;

use frontdesk_actors::audio::AudioFrame;
use frontdesk_actors::provider::{JoinRequest, RoomEvent};
use livekit_protocol as proto;
use livekit_signaling::{SignalClient, SignalEvents, SignalOptions};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep, Instant};

use super::config::RoomConfig;
use super::error::TransportError;
use super::metrics as m;
use super::outbound::Mic;
use super::peer::{PcEvent, Peer, Target};
use super::roster::{Party, Roster};
use super::stats::LinkStats;

/// How often timers (caller audio, recovery, a stuck connection) are checked.
const TICK: std::time::Duration = std::time::Duration::from_millis(250);
/// A peer connection `Disconnected` this long is recovered rather than waited for.
const DISCONNECTED_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// The microphone as the output sees it: `None` while the publisher connection is not up.
pub type MicSlot = Option<(
    Arc<webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP>,
    u32,
)>;

/// What the session loop does after handling something.
pub(super) enum Next {
    Stay,
    Recover {
        why: String,
        reason: proto::ReconnectReason,
    },
    Rejoin {
        why: String,
    },
    End(Ending),
}

/// Why the session ends.
pub(super) enum Ending {
    /// The call is over (its side of the link was dropped): leave the room.
    HungUp,
    Failed(TransportError),
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    /// First join: waiting for both connections and the published microphone.
    Connecting,
    Live,
    Recovering,
}

/// The channels the session feeds; the call holds their other ends.
pub(super) struct LinkEnds {
    pub audio: mpsc::Sender<AudioFrame>,
    pub events: mpsc::Sender<RoomEvent>,
    pub mic: watch::Sender<MicSlot>,
    /// Closed when the link's `StayGuard` is dropped.
    pub stay: oneshot::Receiver<()>,
    pub stats: Arc<LinkStats>,
    /// Transcript and turn metrics from the call, for the data channels.
    pub data: mpsc::Receiver<frontdesk_actors::provider::room::RoomData>,
}

/// Once the call is over, how long the guard may keep us in the room.
const STAY_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// When to leave: the call side gone and the stay guard released (or its grace passed).
#[derive(Debug, Default)]
struct Departure {
    call_closed: bool,
    released: bool,
    deadline: Option<Instant>,
}

pub(super) struct Session {
    cfg: Arc<RoomConfig>,
    req: JoinRequest,
    signal: Arc<SignalClient>,
    signal_events: SignalEvents,
    pc_tx: mpsc::Sender<PcEvent>,
    pc_rx: mpsc::Receiver<PcEvent>,
    subscriber: Peer,
    publisher: Peer,
    mic: Mic,
    published: Option<proto::TrackPublishedResponse>,
    offer_id: u32,
    roster: Roster,
    ends: LinkEnds,
    readers: Vec<JoinHandle<()>>,
    phase: Phase,
    recovery: recover::Recovery,
    caller_audio_deadline: Option<Instant>,
    disconnected_since: Option<Instant>,
    started: Option<oneshot::Sender<Result<(), TransportError>>>,
    departure: Departure,
    /// The publisher's data channels and who we are in the room (see `publish`).
    data: publish::DataState,
}

/// Connect the signal channel: the JoinResponse and the server's event stream.
pub(super) async fn connect_signal(
    cfg: &RoomConfig,
    url: &str,
    token: &str,
) -> Result<(SignalClient, proto::JoinResponse, SignalEvents), TransportError> {
    let mut opts = SignalOptions::default();
    // We subscribe to the caller's audio only, explicitly.
    opts.auto_subscribe = false;
    // Region failover only means something on LiveKit Cloud; elsewhere it only adds a request.
    opts.region_failover = url.contains(".livekit.cloud");
    opts.connect_timeout = cfg.connect_timeout();
    opts.sdk_options.sdk_version = Some(concat!("frontdesk-", env!("CARGO_PKG_VERSION")).into());
    let connect = SignalClient::connect(url, token, opts, None);
    match tokio::time::timeout(cfg.connect_timeout(), connect).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(TransportError::from_signal(e)),
        Err(_) => Err(TransportError::Timeout(
            "signal connection and JoinResponse",
        )),
    }
}

impl Session {
    /// Join: signal, both peer connections, the microphone offered. Returns once the media is up
    /// (or why it could not be), with the session running in its own task.
    pub(super) async fn start(
        cfg: Arc<RoomConfig>,
        party: Party,
        req: JoinRequest,
        ends: LinkEnds,
    ) -> Result<JoinHandle<()>, TransportError> {
        let (signal, join, signal_events) = connect_signal(&cfg, &req.url, &req.token).await?;
        let (pc_tx, pc_rx) = mpsc::channel(64);
        let (subscriber, publisher) = build_peers(&cfg, &req.url, &join, &pc_tx).await?;
        let (started_tx, started_rx) = oneshot::channel();
        let mut session = Session {
            roster: Roster::new(party, req.caller.clone()),
            recovery: recover::Recovery::default(),
            cfg: Arc::clone(&cfg),
            req,
            signal: Arc::new(signal),
            signal_events,
            pc_tx,
            pc_rx,
            subscriber,
            publisher,
            mic: Mic::new(),
            published: None,
            offer_id: 0,
            ends,
            readers: vec![],
            phase: Phase::Connecting,
            caller_audio_deadline: None,
            disconnected_since: None,
            started: Some(started_tx),
            departure: Departure::default(),
            data: publish::DataState::default(),
        };
        session.on_join(&join).await?;
        let task = tokio::spawn(session.run());
        match started_rx.await {
            Ok(Ok(())) => Ok(task),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(TransportError::PeerConnection(
                "session ended while joining".into(),
            )),
        }
    }

    /// A new session on the server (first join or rejoin): participants, microphone.
    async fn on_join(&mut self, join: &proto::JoinResponse) -> Result<(), TransportError> {
        let me = join
            .participant
            .as_ref()
            .map(|p| p.sid.as_str())
            .unwrap_or_default();
        let changes = self.roster.reset(me, &join.other_participants);
        self.apply_changes(changes).await;
        // Before the microphone: the publisher's first offer then carries the data channels.
        self.open_data(join).await;
        self.publisher.pc.add_track(self.mic.as_local()).await?;
        let add = proto::AddTrackRequest {
            cid: self.mic.cid.clone(),
            name: "agent".into(),
            r#type: proto::TrackType::Audio as i32,
            source: proto::TrackSource::Microphone as i32,
            ..Default::default()
        };
        self.signal
            .send(proto::signal_request::Message::AddTrack(add))
            .await;
        Ok(())
    }

    async fn run(mut self) {
        let ending = loop {
            let d = &self.departure;
            let next = tokio::select! {
                biased;
                () = self.ends.events.closed(), if !d.call_closed => self.call_closed(),
                _ = &mut self.ends.stay, if !d.released => self.stay_released(),
                ev = self.signal_events.recv() => self.on_signal(ev).await,
                Some(ev) = self.pc_rx.recv() => self.on_pc(ev).await,
                Some(item) = self.ends.data.recv() => self.publish(item),
                () = sleep(TICK) => self.on_tick(),
            };
            let next = match next {
                Next::Recover { why, reason } => self.recover(why, reason).await,
                Next::Rejoin { why } => self.rejoin(why).await,
                other => other,
            };
            if let Next::End(ending) = next {
                break ending;
            }
        };
        self.finish(ending).await;
    }

    /// The call is over: leave now, or once the job's end is reported (bounded).
    fn call_closed(&mut self) -> Next {
        self.departure.call_closed = true;
        if self.departure.released {
            return Next::End(Ending::HungUp);
        }
        self.departure.deadline = Some(Instant::now() + STAY_GRACE);
        Next::Stay
    }

    fn stay_released(&mut self) -> Next {
        self.departure.released = true;
        if self.departure.call_closed {
            return Next::End(Ending::HungUp);
        }
        Next::Stay
    }

    fn on_tick(&mut self) -> Next {
        let now = Instant::now();
        if self.departure.deadline.is_some_and(|d| now >= d) {
            return Next::End(Ending::HungUp);
        }
        if let Some(next) = self.recovery_tick(now) {
            return next;
        }
        if self.phase == Phase::Live {
            if let Some(since) = self.disconnected_since {
                if now.duration_since(since) > DISCONNECTED_GRACE {
                    self.disconnected_since = None;
                    let why = "a peer connection stayed disconnected".to_owned();
                    return Next::Recover {
                        why,
                        reason: proto::ReconnectReason::RrUnknown,
                    };
                }
            }
            self.check_caller_audio(now);
        }
        Next::Stay
    }

    /// Media is up when both connections are and the microphone is published.
    async fn check_ready(&mut self) {
        let up =
            self.subscriber.connected() && self.publisher.connected() && self.published.is_some();
        if !up || self.phase == Phase::Live {
            return;
        }
        let slot = Some((Arc::clone(&self.mic.track), self.mic.ssrc));
        let _ = self.ends.mic.send(slot);
        if self.phase == Phase::Recovering {
            self.recovered().await;
        }
        self.phase = Phase::Live;
        if !self.roster.caller_has_audio() {
            self.caller_audio_deadline = Some(Instant::now() + self.cfg.caller_audio_timeout());
        }
        if let Some(started) = self.started.take() {
            let _ = started.send(Ok(()));
        }
    }

    fn check_caller_audio(&mut self, now: Instant) {
        if self.caller_audio_deadline.is_some_and(|d| now >= d) {
            self.caller_audio_deadline = None;
            m::rejected("no_caller_audio");
            tracing::warn!(room = %room_tag(&self.req.room), "no caller audio within the timeout");
            let _ = self.ends.events.try_send(RoomEvent::NoCallerAudio);
        }
    }

    fn peer(&mut self, target: Target) -> &mut Peer {
        match target {
            Target::Publisher => &mut self.publisher,
            Target::Subscriber => &mut self.subscriber,
        }
    }

    async fn finish(mut self, ending: Ending) {
        for r in self.readers.drain(..) {
            r.abort();
        }
        self.data.close();
        let _ = self.ends.mic.send(None);
        match ending {
            Ending::HungUp => {
                let leave = proto::LeaveRequest {
                    reason: proto::DisconnectReason::ClientInitiated as i32,
                    action: proto::leave_request::Action::Disconnect as i32,
                    ..Default::default()
                };
                self.signal
                    .send(proto::signal_request::Message::Leave(leave))
                    .await;
                tracing::debug!(room = %room_tag(&self.req.room), "left the room");
            }
            Ending::Failed(e) => {
                m::disconnect(e.label());
                tracing::warn!(room = %room_tag(&self.req.room), error = %e, "room media lost");
                match self.started.take() {
                    Some(started) => {
                        let _ = started.send(Err(e));
                    }
                    None => {
                        let ev = RoomEvent::Disconnected {
                            reason: e.to_string(),
                        };
                        let send = self.ends.events.send(ev);
                        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), send).await;
                    }
                }
            }
        }
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), self.signal.close()).await;
        self.subscriber.close().await;
        self.publisher.close().await;
    }
}

async fn build_peers(
    cfg: &RoomConfig,
    url: &str,
    join: &proto::JoinResponse,
    tx: &mpsc::Sender<PcEvent>,
) -> Result<(Peer, Peer), TransportError> {
    let udp = cfg.udp_addrs(url);
    let ice = &join.ice_servers;
    let stun = cfg.stun;
    let subscriber = Peer::build(Target::Subscriber, ice, stun, udp.clone(), tx.clone()).await?;
    let publisher = Peer::build(Target::Publisher, ice, stun, udp, tx.clone()).await?;
    Ok((subscriber, publisher))
}
