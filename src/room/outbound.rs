//! The agent's microphone track: 20 ms frames (already paced by the room actor) → Opus → RTP.
//! Silent frames are not sent (DTX); after a pause the RTP clock jumps by the wall time that passed
//! and the marker bit opens the new talkspurt, as a browser's sender does, so the caller's jitter
//! buffer plays the reply without stretching it.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use frontdesk_actors::audio::AudioFrame;
use frontdesk_actors::edge::DropReason;
use frontdesk_actors::provider::{AgentAudioOut, RoomError};
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::watch;
use tokio::time::Instant;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;

use super::codec::{Encoded, EncoderSettings, OpusEncoder, RTP_CLOCK};
use super::metrics::{self as m, EDGE_OUTBOUND};
use super::peer::{opus_codec, OPUS_PT};
use super::session::MicSlot;
use super::stats::LinkStats;

/// RTP ticks of one 20 ms frame.
const FRAME_TICKS: u32 = RTP_CLOCK / 50;
/// A pause longer than this starts a new talkspurt.
const TALKSPURT_GAP: std::time::Duration = std::time::Duration::from_millis(60);

/// The local audio track and its identity in the publish request.
pub struct Mic {
    pub cid: String,
    pub ssrc: u32,
    pub track: Arc<TrackLocalStaticRTP>,
}

impl Mic {
    pub fn new() -> Self {
        let cid = format!("TR_agent_{:08x}", random_u32());
        let ssrc = random_u32();
        let encoding = RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: opus_codec().rtp_codec,
            ..Default::default()
        };
        let track = MediaStreamTrack::new(
            format!("agent_{:08x}", random_u32()),
            cid.clone(),
            "agent".into(),
            RtpCodecKind::Audio,
            vec![encoding],
        );
        Self {
            cid,
            ssrc,
            track: Arc::new(TrackLocalStaticRTP::new(track)),
        }
    }

    pub fn as_local(&self) -> Arc<dyn TrackLocal> {
        Arc::clone(&self.track) as Arc<dyn TrackLocal>
    }
}

/// A process-random 32-bit value (SSRC, initial sequence and timestamp), without a RNG crate:
/// the standard library's per-process random hash keys, mixed with a counter and the time.
pub fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(N.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish() as u32
}

/// The agent's audio out, handed to the call as its room output.
pub struct AgentOutput {
    /// The published microphone; `None` while the publisher connection is not up (joining,
    /// reconnecting): frames are then dropped, counted.
    mic: watch::Receiver<MicSlot>,
    settings: EncoderSettings,
    encoder: Option<OpusEncoder>,
    seq: u16,
    ts: u32,
    last_frame: Option<Instant>,
    talkspurt: bool,
    stats: Arc<LinkStats>,
    send_timeout: std::time::Duration,
}

impl AgentOutput {
    pub fn new(
        mic: watch::Receiver<MicSlot>,
        settings: EncoderSettings,
        stats: Arc<LinkStats>,
        send_timeout: std::time::Duration,
    ) -> Self {
        Self {
            mic,
            settings,
            encoder: None,
            seq: random_u32() as u16,
            ts: random_u32(),
            last_frame: None,
            talkspurt: false,
            stats,
            send_timeout,
        }
    }

    fn encoder(&mut self, rate: u32) -> Result<&mut OpusEncoder, RoomError> {
        if self.encoder.as_ref().is_none_or(|e| e.rate() != rate) {
            let e = OpusEncoder::new(rate, self.settings)
                .map_err(|e| RoomError::Transport(format!("agent audio encoder: {e}")))?;
            self.encoder = Some(e);
        }
        self.encoder
            .as_mut()
            .ok_or_else(|| RoomError::Transport("agent audio encoder missing".into()))
    }

    /// Advance the RTP clock over a pause, so the next packet plays at its real time.
    fn clock(&mut self, now: Instant) {
        if let Some(last) = self.last_frame {
            let gap = now.saturating_duration_since(last);
            if gap > TALKSPURT_GAP {
                let frames = (gap.as_millis() / 20) as u32;
                self.ts = self.ts.wrapping_add(frames.saturating_sub(1) * FRAME_TICKS);
                self.talkspurt = false;
            }
        }
        self.last_frame = Some(now);
    }

    fn dropped(&self, why: DropReason) {
        LinkStats::add(&self.stats.frames_send_dropped, 1);
        frontdesk_actors::metrics::edge_dropped(EDGE_OUTBOUND, why, 1);
    }
}

#[async_trait]
impl AgentAudioOut for AgentOutput {
    async fn send(&mut self, frame: AudioFrame) -> Result<(), RoomError> {
        let now = Instant::now();
        self.clock(now);
        let slot = self.mic.borrow().clone();
        let Some((track, ssrc)) = slot else {
            self.ts = self.ts.wrapping_add(FRAME_TICKS);
            self.dropped(DropReason::Closed);
            return Ok(());
        };
        let (seq, ts) = (self.seq, self.ts);
        let marker = !self.talkspurt;
        self.ts = ts.wrapping_add(FRAME_TICKS);
        let payload = match self.encoder(frame.sample_rate)?.encode(&frame.samples) {
            Ok(Encoded::Packet(p)) => Bytes::copy_from_slice(p),
            Ok(Encoded::Silent) => {
                self.talkspurt = false;
                LinkStats::add(&self.stats.frames_dtx, 1);
                return Ok(());
            }
            Err(e) => return Err(RoomError::Transport(format!("agent audio: {e}"))),
        };
        let packet = rtp::Packet {
            header: rtp::header::Header {
                version: 2,
                marker,
                payload_type: OPUS_PT,
                sequence_number: seq,
                timestamp: ts,
                ssrc,
                ..Default::default()
            },
            payload,
        };
        self.seq = seq.wrapping_add(1);
        self.talkspurt = true;
        match tokio::time::timeout(self.send_timeout, track.write_rtp(packet)).await {
            Ok(Ok(())) => {
                LinkStats::add(&self.stats.packets_sent, 1);
                metrics::counter!(m::PACKETS_SENT).increment(1);
            }
            // A connection that does not take the frame in time must not hold up playout.
            Ok(Err(_)) | Err(_) => self.dropped(DropReason::Overflow),
        }
        Ok(())
    }
}
