//! Keeping the call through a signal or network blip, as LiveKit's SDKs do: first resume the
//! session (signal reconnect with our participant sid, SyncState, an ICE restart of the
//! publisher; the server restarts the subscriber), and when the server no longer knows us (it
//! restarted, or resume keeps failing) rejoin the room as a new participant with the job's token.
//! All of it within `room.reconnect_timeout_ms`; then the call is given up with the reason.

use frontdesk_actors::provider::room::room_tag;
use std::time::Duration;

use frontdesk_actors::backoff::Backoff;
use frontdesk_actors::provider::RoomEvent;
use livekit_protocol as proto;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{build_peers, connect_signal, Ending, Next, Phase, Session};
use crate::room::error::TransportError;
use crate::room::metrics as m;
use crate::room::outbound::Mic;
use crate::room::peer::rtc_config;

/// Resume attempts before falling back to a rejoin.
const RESUME_ATTEMPTS: u32 = 2;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Mode {
    #[default]
    Resume,
    Rejoin,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Resume => "resume",
            Mode::Rejoin => "rejoin",
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Recovery {
    since: Option<Instant>,
    why: String,
    reason: proto::ReconnectReason,
    mode: Mode,
    attempts: u32,
    next_try: Option<Instant>,
    /// The signal is back; waiting for the connections.
    awaiting_media: bool,
}

/// 250 ms·2ⁿ up to 4 s, with jitter so calls that lost the same server do not retry in step.
fn backoff(attempt: u32) -> Duration {
    Backoff::new(250, 4_000).delay(attempt)
}

impl Session {
    fn enter_recovery(&mut self, why: String, reason: proto::ReconnectReason) {
        if self.phase == Phase::Recovering {
            // Lost again while recovering: the next attempt starts now.
            self.recovery.awaiting_media = false;
            return;
        }
        tracing::warn!(room = %room_tag(&self.req.room), %why, "room media lost: recovering");
        self.phase = Phase::Recovering;
        let _ = self.ends.mic.send(None);
        self.recovery = Recovery {
            since: Some(Instant::now()),
            why: why.clone(),
            reason,
            ..Recovery::default()
        };
        let _ = self
            .ends
            .events
            .try_send(RoomEvent::Reconnecting { reason: why });
    }

    pub(super) async fn recover(&mut self, why: String, reason: proto::ReconnectReason) -> Next {
        self.enter_recovery(why, reason);
        self.attempt_when_due().await
    }

    pub(super) async fn rejoin(&mut self, why: String) -> Next {
        self.enter_recovery(why, proto::ReconnectReason::RrUnknown);
        self.recovery.mode = Mode::Rejoin;
        self.recovery.awaiting_media = false;
        self.attempt_when_due().await
    }

    /// An attempt now, unless the recovery is out of time or backing off (then the tick runs it).
    async fn attempt_when_due(&mut self) -> Next {
        let now = Instant::now();
        if let Some(end) = self.out_of_time(now) {
            return end;
        }
        if self.recovery.next_try.is_some_and(|t| now < t) {
            return Next::Stay;
        }
        self.attempt().await
    }

    /// Time left for the recovery.
    fn remaining(&self, now: Instant) -> Duration {
        let since = self.recovery.since.unwrap_or(now);
        self.cfg
            .reconnect_timeout()
            .saturating_sub(now.duration_since(since))
    }

    fn out_of_time(&self, now: Instant) -> Option<Next> {
        if !self.remaining(now).is_zero() {
            return None;
        }
        let r = &self.recovery;
        m::reconnect(r.mode.label(), "timeout");
        let why = format!("could not recover the room within the timeout ({})", r.why);
        Some(Next::End(Ending::Failed(TransportError::Signal(why))))
    }

    /// Timers of a recovery in progress: the overall deadline, the next attempt.
    pub(super) fn recovery_tick(&mut self, now: Instant) -> Option<Next> {
        if self.phase != Phase::Recovering {
            return None;
        }
        if let Some(end) = self.out_of_time(now) {
            return Some(end);
        }
        let r = &self.recovery;
        if !r.awaiting_media && r.next_try.is_some_and(|t| now >= t) {
            return Some(Next::Recover {
                why: r.why.clone(),
                reason: r.reason,
            });
        }
        None
    }

    async fn attempt(&mut self) -> Next {
        if self.recovery.awaiting_media {
            return Next::Stay;
        }
        self.recovery.attempts += 1;
        let result = match self.recovery.mode {
            Mode::Resume => self.try_resume().await,
            Mode::Rejoin => self.try_rejoin().await,
        };
        match result {
            Ok(next) => next,
            Err(e) if !e.is_retriable() => {
                m::reconnect(self.recovery.mode.label(), e.label());
                Next::End(Ending::Failed(e))
            }
            Err(e) => {
                let r = &mut self.recovery;
                tracing::debug!(mode = r.mode.label(), attempt = r.attempts, error = %e, "room recovery attempt failed");
                m::reconnect(r.mode.label(), e.label());
                if r.mode == Mode::Resume && r.attempts >= RESUME_ATTEMPTS {
                    r.mode = Mode::Rejoin;
                }
                r.next_try = Some(Instant::now() + backoff(r.attempts));
                Next::Stay
            }
        }
    }

    async fn try_resume(&mut self) -> Result<Next, TransportError> {
        let restart = self.signal.restart(self.recovery.reason);
        let limit = self
            .cfg
            .connect_timeout()
            .min(self.remaining(Instant::now()));
        let resp = match tokio::time::timeout(limit, restart).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => {
                // The server no longer knows us (or refuses the resume): rejoin instead.
                let e = TransportError::from_signal(e);
                if matches!(e, TransportError::Left(_)) {
                    self.recovery.mode = Mode::Rejoin;
                    return Err(TransportError::Signal(format!("resume refused: {e}")));
                }
                return Err(e);
            }
            Err(_) => return Err(TransportError::Timeout("resuming the signal connection")),
        };
        if !resp.ice_servers.is_empty() {
            let rtc = rtc_config(&resp.ice_servers, self.cfg.stun);
            self.subscriber.pc.set_configuration(rtc.clone()).await?;
            self.publisher.pc.set_configuration(rtc).await?;
        }
        self.send_sync_state().await;
        self.recovery.awaiting_media = true;
        if self.published.is_some() {
            return Ok(self.send_offer(true).await);
        }
        Ok(Next::Stay)
    }

    /// Tell the resumed server what we hold: our descriptions, subscriptions and publications.
    async fn send_sync_state(&mut self) {
        let desc = |d: Option<webrtc::peer_connection::RTCSessionDescription>, kind: &str| {
            d.map(|d| proto::SessionDescription {
                r#type: kind.into(),
                sdp: d.sdp,
                ..Default::default()
            })
        };
        let sync = proto::SyncState {
            answer: desc(self.subscriber.local_sdp().await, "answer"),
            offer: desc(self.publisher.local_sdp().await, "offer"),
            subscription: Some(proto::UpdateSubscription {
                track_sids: self.roster.subscribed().to_vec(),
                subscribe: true,
                participant_tracks: vec![],
            }),
            publish_tracks: self.published.clone().into_iter().collect(),
            ..Default::default()
        };
        self.signal
            .send(proto::signal_request::Message::SyncState(sync))
            .await;
    }

    /// A new participant in the room: new signal, new connections, the microphone again.
    async fn try_rejoin(&mut self) -> Result<Next, TransportError> {
        for r in self.readers.drain(..) {
            r.abort();
        }
        self.signal.close().await;
        self.subscriber.close().await;
        self.publisher.close().await;
        let limit = self.remaining(Instant::now());
        let connect = connect_signal(&self.cfg, &self.req.url, &self.req.token);
        let (signal, join, events) = tokio::time::timeout(limit, connect)
            .await
            .map_err(|_| TransportError::Timeout("rejoining the room"))??;
        // A fresh channel: late events of the closed connections must not reach the new ones.
        let (pc_tx, pc_rx) = mpsc::channel(64);
        let (subscriber, publisher) = build_peers(&self.cfg, &self.req.url, &join, &pc_tx).await?;
        self.signal = std::sync::Arc::new(signal);
        self.signal_events = events;
        (self.pc_tx, self.pc_rx) = (pc_tx, pc_rx);
        (self.subscriber, self.publisher) = (subscriber, publisher);
        self.mic = Mic::new();
        self.published = None;
        self.recovery.awaiting_media = true;
        self.on_join(&join).await?;
        Ok(Next::Stay)
    }

    /// Both connections are back (called by `check_ready`).
    pub(super) async fn recovered(&mut self) {
        let r = std::mem::take(&mut self.recovery);
        if r.mode == Mode::Resume {
            self.signal.set_reconnected().await;
        }
        m::reconnect(r.mode.label(), "ok");
        let took = r.since.map(|s| s.elapsed()).unwrap_or_default();
        tracing::info!(room = %room_tag(&self.req.room), mode = r.mode.label(), took_ms = took.as_millis() as u64, "room media recovered");
        let _ = self.ends.events.try_send(RoomEvent::Reconnected);
    }
}
