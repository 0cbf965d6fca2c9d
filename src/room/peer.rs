//! One of the participant's two peer connections (LiveKit's dual-PC mode: the server offers on the
//! subscriber, we offer on the publisher). Opus is the only codec we register, so an offer of
//! anything else is answered with that section rejected, never with a codec we cannot decode.

use std::sync::Arc;

use livekit_protocol as proto;
use rtc::peer_connection::configuration::RTCOfferOptions;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
use tokio::sync::mpsc;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfiguration, RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceServer,
    RTCPeerConnectionIceEvent, RTCPeerConnectionState, RTCSessionDescription, SettingEngineBuilder,
};

use super::error::TransportError;

/// Payload type we offer Opus under (the usual one: every LiveKit SDK uses it).
pub const OPUS_PT: u8 = 111;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Publisher,
    Subscriber,
}

impl Target {
    pub fn proto(self) -> i32 {
        match self {
            Target::Publisher => proto::SignalTarget::Publisher as i32,
            Target::Subscriber => proto::SignalTarget::Subscriber as i32,
        }
    }

    pub fn from_proto(v: i32) -> Option<Self> {
        match proto::SignalTarget::try_from(v).ok()? {
            proto::SignalTarget::Publisher => Some(Target::Publisher),
            proto::SignalTarget::Subscriber => Some(Target::Subscriber),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Target::Publisher => "publisher",
            Target::Subscriber => "subscriber",
        }
    }
}

/// What the peer connections report to the session.
pub enum PcEvent {
    Candidate {
        target: Target,
        init: RTCIceCandidateInit,
    },
    State {
        target: Target,
        state: RTCPeerConnectionState,
    },
    Track(Arc<dyn TrackRemote>),
}

struct Handler {
    target: Target,
    /// Bounded: the session loop drains it at once, and candidates and states are few.
    tx: mpsc::Sender<PcEvent>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, e: RTCPeerConnectionIceEvent) {
        match e.candidate.to_json() {
            Ok(init) => {
                let target = self.target;
                let _ = self.tx.send(PcEvent::Candidate { target, init }).await;
            }
            Err(err) => {
                tracing::warn!(target = self.target.as_str(), error = %err, "unencodable local ICE candidate")
            }
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let target = self.target;
        let _ = self.tx.send(PcEvent::State { target, state }).await;
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.tx.send(PcEvent::Track(track)).await;
    }
}

pub fn opus_codec() -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: "audio/opus".into(),
            clock_rate: 48_000,
            // SDP always says opus/48000/2 (RFC 7587); the stream itself is mono.
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1;usedtx=1".into(),
            rtcp_feedback: vec![],
        },
        payload_type: OPUS_PT,
    }
}

/// The peer connection's ICE servers from the server's list. STUN URLs are left out unless
/// `stun`: LiveKit's SFU is ICE-lite and learns our address from our own checks, so a
/// server-reflexive candidate adds nothing, while resolving STUN host names at every join stalls
/// ICE wherever DNS is slow or absent. TURN stays (UDP-blocked networks need it).
pub fn rtc_config(ice: &[proto::IceServer], stun: bool) -> RTCConfiguration {
    let servers = ice
        .iter()
        .filter_map(|s| {
            let urls: Vec<String> = s
                .urls
                .iter()
                .filter(|u| stun || !(u.starts_with("stun:") || u.starts_with("stuns:")))
                .cloned()
                .collect();
            (!urls.is_empty()).then(|| RTCIceServer {
                urls,
                username: s.username.clone(),
                credential: s.credential.clone(),
            })
        })
        .collect();
    RTCConfigurationBuilder::new()
        .with_ice_servers(servers)
        .build()
}

/// A peer connection and what the session needs to drive it.
pub struct Peer {
    pub target: Target,
    pub pc: Arc<dyn PeerConnection>,
    pub state: RTCPeerConnectionState,
    /// Remote candidates that arrived before the remote description.
    pending: Vec<RTCIceCandidateInit>,
    has_remote: bool,
}

impl Peer {
    pub async fn build(
        target: Target,
        ice: &[proto::IceServer],
        stun: bool,
        udp: Vec<String>,
        tx: mpsc::Sender<PcEvent>,
    ) -> Result<Self, TransportError> {
        let mut media = MediaEngine::default();
        media.register_codec(opus_codec(), RtpCodecKind::Audio)?;
        // LiveKit's SFU is ICE-lite: the pair our first check finds (often peer-reflexive, when
        // its answer beats its trickled candidates) is the one to use. The default 1 s wait
        // before accepting a peer-reflexive pair delayed one join in five by ~0.85 s.
        let settings = SettingEngineBuilder::new()
            .with_prflx_acceptance_min_wait(Some(std::time::Duration::ZERO))
            .build();
        let pc = PeerConnectionBuilder::new()
            .with_configuration(rtc_config(ice, stun))
            .with_setting_engine(settings)
            .with_media_engine(media)
            .with_handler(Arc::new(Handler { target, tx }))
            .with_udp_addrs(udp)
            .build()
            .await?;
        Ok(Self {
            target,
            pc: Arc::new(pc),
            state: RTCPeerConnectionState::New,
            pending: vec![],
            has_remote: false,
        })
    }

    pub fn connected(&self) -> bool {
        self.state == RTCPeerConnectionState::Connected
    }

    /// A remote candidate, applied now or once the remote description is in.
    pub async fn add_candidate(&mut self, init: RTCIceCandidateInit) -> Result<(), TransportError> {
        if !self.has_remote {
            self.pending.push(init);
            return Ok(());
        }
        self.pc
            .add_ice_candidate(init)
            .await
            .map_err(|e| TransportError::Negotiation(format!("remote ICE candidate: {e}")))
    }

    async fn set_remote(&mut self, desc: RTCSessionDescription) -> Result<(), TransportError> {
        self.pc.set_remote_description(desc).await.map_err(|e| {
            TransportError::Negotiation(format!("{} remote SDP: {e}", self.target.as_str()))
        })?;
        self.has_remote = true;
        for init in std::mem::take(&mut self.pending) {
            if let Err(e) = self.pc.add_ice_candidate(init).await {
                tracing::debug!(target = self.target.as_str(), error = %e, "queued remote candidate refused");
            }
        }
        Ok(())
    }

    /// The server's offer (subscriber): apply it and return our answer's SDP.
    pub async fn answer(&mut self, offer_sdp: String) -> Result<String, TransportError> {
        let offer = RTCSessionDescription::offer(offer_sdp)
            .map_err(|e| TransportError::Negotiation(format!("malformed offer: {e}")))?;
        self.set_remote(offer).await?;
        let answer =
            self.pc.create_answer(None).await.map_err(|e| {
                TransportError::Negotiation(format!("cannot answer the offer: {e}"))
            })?;
        let sdp = answer.sdp.clone();
        self.pc
            .set_local_description(answer)
            .await
            .map_err(|e| TransportError::Negotiation(format!("own answer refused: {e}")))?;
        Ok(sdp)
    }

    /// Our offer (publisher), with an ICE restart when recovering.
    pub async fn offer(&mut self, ice_restart: bool) -> Result<String, TransportError> {
        let options = ice_restart.then_some(RTCOfferOptions { ice_restart: true });
        let offer = self.pc.create_offer(options).await?;
        let sdp = offer.sdp.clone();
        self.pc.set_local_description(offer).await?;
        Ok(sdp)
    }

    /// The server's answer to our offer.
    pub async fn accept_answer(&mut self, sdp: String) -> Result<(), TransportError> {
        let answer = RTCSessionDescription::answer(sdp)
            .map_err(|e| TransportError::Negotiation(format!("malformed answer: {e}")))?;
        self.set_remote(answer).await
    }

    pub async fn local_sdp(&self) -> Option<RTCSessionDescription> {
        self.pc.local_description().await
    }

    pub async fn close(&self) {
        if let Err(e) = self.pc.close().await {
            tracing::debug!(target = self.target.as_str(), error = %e, "closing peer connection");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn peer() -> Peer {
        let (tx, _rx) = mpsc::channel(64);
        Peer::build(
            Target::Subscriber,
            &[],
            false,
            vec!["127.0.0.1:0".into()],
            tx,
        )
        .await
        .unwrap()
    }

    #[test]
    fn stun_urls_are_left_out_unless_asked_for_and_turn_stays() {
        let ice = vec![
            proto::IceServer {
                urls: vec!["stun:stun.l.google.com:19302".into()],
                ..Default::default()
            },
            proto::IceServer {
                urls: vec![
                    "turn:turn.example:3478?transport=udp".into(),
                    "stuns:x:5349".into(),
                ],
                username: "u".into(),
                credential: "c".into(),
            },
        ];
        let urls = |c: RTCConfiguration| -> Vec<String> {
            c.ice_servers()
                .iter()
                .flat_map(|s| s.urls.clone())
                .collect()
        };
        assert_eq!(
            urls(rtc_config(&ice, false)),
            ["turn:turn.example:3478?transport=udp"]
        );
        assert_eq!(urls(rtc_config(&ice, true)).len(), 3);
    }

    #[tokio::test]
    async fn an_offer_that_is_not_sdp_is_a_negotiation_error() {
        let mut p = peer().await;
        for garbage in ["", "hello", "v=0\r\nm=audio 9 RTP/AVP\r\n", "\u{feff}v=0 ☃"] {
            let err = p.answer(garbage.into()).await.unwrap_err();
            assert!(
                matches!(err, TransportError::Negotiation(_)),
                "{garbage:?}: {err}"
            );
            assert!(!err.is_retriable());
        }
        p.close().await;
    }

    #[tokio::test]
    async fn an_offer_of_a_codec_we_do_not_decode_gets_no_such_codec_in_the_answer() {
        // A peer offering PCMU audio only.
        let mut media = MediaEngine::default();
        let pcmu = RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: "audio/PCMU".into(),
                clock_rate: 8_000,
                channels: 1,
                sdp_fmtp_line: String::new(),
                rtcp_feedback: vec![],
            },
            payload_type: 0,
        };
        media.register_codec(pcmu, RtpCodecKind::Audio).unwrap();
        let (tx, _rx) = mpsc::channel::<PcEvent>(64);
        let offerer = PeerConnectionBuilder::new()
            .with_media_engine(media)
            .with_handler(Arc::new(Handler {
                target: Target::Publisher,
                tx,
            }))
            .with_udp_addrs(vec!["127.0.0.1:0"])
            .build()
            .await
            .unwrap();
        offerer
            .add_transceiver_from_kind(RtpCodecKind::Audio, None)
            .await
            .unwrap();
        let offer = offerer.create_offer(None).await.unwrap();
        assert!(offer.sdp.contains("PCMU"), "{}", offer.sdp);
        let mut p = peer().await;
        // Either answered with the section rejected, or refused as unanswerable: never PCMU.
        match p.answer(offer.sdp).await {
            Ok(answer) => assert!(!answer.contains("PCMU"), "{answer}"),
            Err(e) => assert!(matches!(e, TransportError::Negotiation(_)), "{e}"),
        }
        p.close().await;
        offerer.close().await.unwrap();
    }
}
