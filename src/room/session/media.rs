//! What the peer connections report (candidates, states, tracks) and what the roster decides
//! (subscriptions, the caller's comings and goings).

use frontdesk_actors::provider::room::room_tag;
use std::sync::Arc;

use frontdesk_actors::provider::RoomEvent;
use livekit_protocol as proto;
use tokio::time::Instant;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::RTCPeerConnectionState as State;

use super::{Ending, Next, Phase, Session};
use crate::room::codec::OpusDecoder;
use crate::room::error::TransportError;
use crate::room::inbound::{self, Inbound};
use crate::room::peer::{PcEvent, Target};
use crate::room::roster::Change;

impl Session {
    pub(super) async fn on_pc(&mut self, ev: PcEvent) -> Next {
        match ev {
            PcEvent::Candidate { target, init } => {
                match serde_json::to_string(&init) {
                    Ok(candidate_init) => {
                        let trickle = proto::TrickleRequest {
                            candidate_init,
                            target: target.proto(),
                            r#final: false,
                        };
                        self.signal
                            .send(proto::signal_request::Message::Trickle(trickle))
                            .await;
                    }
                    Err(e) => tracing::warn!(error = %e, "local ICE candidate not encodable"),
                }
                Next::Stay
            }
            PcEvent::State { target, state } => self.on_state(target, state).await,
            PcEvent::Track(track) => {
                self.on_track(track).await;
                Next::Stay
            }
        }
    }

    async fn on_state(&mut self, target: Target, state: State) -> Next {
        tracing::debug!(room = %room_tag(&self.req.room), target = target.as_str(), %state, "peer connection");
        self.peer(target).state = state;
        match state {
            State::Connected => {
                let both = self.subscriber.connected() && self.publisher.connected();
                if both {
                    self.disconnected_since = None;
                }
                self.check_ready().await;
                Next::Stay
            }
            State::Disconnected => {
                self.disconnected_since.get_or_insert_with(Instant::now);
                Next::Stay
            }
            State::Failed if self.phase == Phase::Connecting => {
                let why = format!("{} connection failed", target.as_str());
                Next::End(Ending::Failed(TransportError::Ice(why)))
            }
            State::Failed => Next::Recover {
                why: format!("{} ICE failed", target.as_str()),
                reason: match target {
                    Target::Publisher => proto::ReconnectReason::RrPublisherFailed,
                    Target::Subscriber => proto::ReconnectReason::RrSubscriberFailed,
                },
            },
            _ => Next::Stay,
        }
    }

    /// A subscribed track arrived: read it if it is the caller's audio.
    async fn on_track(&mut self, track: Arc<dyn TrackRemote>) {
        let sid = track.track_id().await;
        if !self.roster.is_caller_track(&sid) {
            tracing::debug!(track = %sid, "ignoring a track that is not the caller's audio");
            return;
        }
        let decoder = match OpusDecoder::new(self.cfg.decode_rate) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the caller's decoder");
                return;
            }
        };
        self.caller_audio_deadline = None;
        let inbound = Inbound::new(
            decoder,
            Arc::clone(&self.ends.stats),
            self.ends.audio.clone(),
        );
        let fill_after = self.cfg.silence_fill_after();
        self.readers.retain(|r| !r.is_finished());
        self.readers
            // Decoding is per-frame media work: off the runtime of dialogues and replies, on the
            // call's media thread (keyed by the room, as the call's pumps are).
            .push(frontdesk_actors::call::pump::spawn_on_media(
                Some(&self.req.room),
                inbound::run(track, inbound, fill_after),
            ));
        tracing::debug!(room = %room_tag(&self.req.room), track = %sid, "reading the caller's audio");
    }

    pub(super) async fn apply_changes(&mut self, changes: Vec<Change>) {
        for change in changes {
            let ev = match change {
                Change::Subscribe {
                    participant_sid,
                    track_sid,
                } => {
                    self.subscribe(participant_sid, track_sid).await;
                    continue;
                }
                Change::CallerJoined { identity } => RoomEvent::ParticipantJoined { identity },
                Change::CallerLeft { identity } => RoomEvent::ParticipantLeft { identity },
                Change::CallerMuted { muted } => RoomEvent::CallerMuted { muted },
                Change::CallerUnpublished { identity } => {
                    if !self.roster.caller_has_audio() && self.phase == Phase::Live {
                        let timeout = self.cfg.caller_audio_timeout();
                        self.caller_audio_deadline = Some(Instant::now() + timeout);
                    }
                    RoomEvent::TrackUnpublished { identity }
                }
            };
            // Control path: the call reads it before any queued audio.
            if self.ends.events.send(ev).await.is_err() {
                return;
            }
        }
    }

    async fn subscribe(&mut self, participant_sid: String, track_sid: String) {
        tracing::debug!(room = %room_tag(&self.req.room), track = %track_sid, "subscribing to the caller's audio");
        let update = proto::UpdateSubscription {
            track_sids: vec![track_sid.clone()],
            subscribe: true,
            participant_tracks: vec![proto::ParticipantTracks {
                participant_sid,
                track_sids: vec![track_sid],
            }],
        };
        self.signal
            .send(proto::signal_request::Message::Subscription(update))
            .await;
    }
}
