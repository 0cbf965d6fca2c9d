//! What the server says on the signal channel.

use frontdesk_actors::provider::room::room_tag;
use livekit_protocol as proto;
use livekit_signaling::SignalEvent;
use proto::signal_response::Message as In;
use webrtc::peer_connection::RTCIceCandidateInit;

use super::{Ending, Next, Phase, Session};
use crate::room::error::TransportError;
use crate::room::metrics as m;
use crate::room::peer::Target;

impl Session {
    pub(super) async fn on_signal(&mut self, ev: Option<SignalEvent>) -> Next {
        match ev {
            Some(SignalEvent::Message(msg)) => self.on_message(*msg).await,
            Some(SignalEvent::Close(why)) => self.signal_lost(format!("signal closed: {why}")),
            None => self.signal_lost("signal stream ended".into()),
        }
    }

    fn signal_lost(&mut self, why: String) -> Next {
        if self.phase == Phase::Connecting {
            return Next::End(Ending::Failed(TransportError::Signal(why)));
        }
        Next::Recover {
            why,
            reason: proto::ReconnectReason::RrSignalDisconnected,
        }
    }

    async fn on_message(&mut self, msg: In) -> Next {
        match msg {
            In::Offer(offer) => self.on_offer(offer).await,
            In::Answer(answer) => match self.publisher.accept_answer(answer.sdp).await {
                Ok(()) => {
                    // After a resume's ICE restart the connections may never have dropped.
                    self.check_ready().await;
                    Next::Stay
                }
                Err(e) => self.bad_sdp(e),
            },
            In::Trickle(t) => {
                self.on_trickle(t).await;
                Next::Stay
            }
            In::Update(update) => {
                let changes = self.roster.apply(&update.participants);
                self.apply_changes(changes).await;
                Next::Stay
            }
            In::TrackPublished(published) => self.on_published(published).await,
            In::Leave(leave) => on_leave(&leave),
            In::RefreshToken(token) => {
                // Kept for a rejoin: the job's token may expire during a long call.
                self.req.token = token;
                Next::Stay
            }
            In::TrackUnpublished(t) => {
                tracing::warn!(track = %t.track_sid, "the server unpublished the agent's track");
                Next::Stay
            }
            _ => Next::Stay,
        }
    }

    /// The server (re)negotiates the subscriber connection: answer it.
    async fn on_offer(&mut self, offer: proto::SessionDescription) -> Next {
        match self.subscriber.answer(offer.sdp).await {
            Ok(sdp) => {
                let answer = proto::SessionDescription {
                    r#type: "answer".into(),
                    sdp,
                    id: offer.id,
                    ..Default::default()
                };
                self.signal
                    .send(proto::signal_request::Message::Answer(answer))
                    .await;
                Next::Stay
            }
            Err(e) => self.bad_sdp(e),
        }
    }

    /// An SDP we cannot apply or answer ends the session: media cannot flow.
    fn bad_sdp(&mut self, e: TransportError) -> Next {
        m::rejected("sdp");
        tracing::warn!(room = %room_tag(&self.req.room), error = %e, "unusable SDP from the server");
        Next::End(Ending::Failed(e))
    }

    async fn on_trickle(&mut self, t: proto::TrickleRequest) {
        let Some(target) = Target::from_proto(t.target) else {
            m::rejected("trickle_target");
            return;
        };
        let init: RTCIceCandidateInit = match serde_json::from_str(&t.candidate_init) {
            Ok(init) => init,
            Err(e) => {
                m::rejected("malformed_trickle");
                tracing::debug!(error = %e, "malformed ICE candidate from the server");
                return;
            }
        };
        if let Err(e) = self.peer(target).add_candidate(init).await {
            m::rejected("ice_candidate");
            tracing::debug!(target = target.as_str(), error = %e, "remote ICE candidate refused");
        }
    }

    /// Our microphone is accepted: offer it on the publisher connection.
    async fn on_published(&mut self, published: proto::TrackPublishedResponse) -> Next {
        if published.cid != self.mic.cid {
            return Next::Stay;
        }
        self.published = Some(published);
        self.send_offer(false).await
    }

    pub(super) async fn send_offer(&mut self, ice_restart: bool) -> Next {
        match self.publisher.offer(ice_restart).await {
            Ok(sdp) => {
                self.offer_id += 1;
                let offer = proto::SessionDescription {
                    r#type: "offer".into(),
                    sdp,
                    id: self.offer_id,
                    ..Default::default()
                };
                self.signal
                    .send(proto::signal_request::Message::Offer(offer))
                    .await;
                Next::Stay
            }
            Err(e) => Next::End(Ending::Failed(e)),
        }
    }
}

/// The server asks us to leave, resume or reconnect.
fn on_leave(leave: &proto::LeaveRequest) -> Next {
    let reason = proto::DisconnectReason::try_from(leave.reason)
        .map(|r| r.as_str_name())
        .unwrap_or("UNKNOWN");
    match proto::leave_request::Action::try_from(leave.action) {
        Ok(proto::leave_request::Action::Resume) => Next::Recover {
            why: format!("server asked to resume ({reason})"),
            reason: proto::ReconnectReason::RrUnknown,
        },
        Ok(proto::leave_request::Action::Reconnect) => Next::Rejoin {
            why: format!("server asked to reconnect ({reason})"),
        },
        _ => Next::End(Ending::Failed(TransportError::Left(reason.to_owned()))),
    }
}
