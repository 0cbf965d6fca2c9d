//! The agent's microphone track: 20 ms frames (already paced by the room actor) → Opus → RTP.
//! Silent frames are not sent (DTX); after a pause the RTP clock jumps by the wall time that passed
//! and the marker bit opens the new talkspurt, as a browser's sender does, so the caller's jitter
//! buffer plays the reply without stretching it.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use frontdesk_actors::audio::{AudioFrame, FRAME_DURATION};
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

/// Silent frames that end a talkspurt cut short: the caller's decoder plays them instead of
/// concealing the packets that stopped coming, which stretches the last sound ~100 ms (the
/// e2e barge-in recording showed it fading at 3 dB per frame). Two frames flush the codec's
/// overlap and the far end's jitter buffer takes them early.
const PAUSE_TAIL_FRAMES: u32 = 2;

/// The RTP sequence, timestamp and talkspurt of the outbound stream.
#[derive(Debug)]
struct RtpClock {
    seq: u16,
    ts: u32,
    /// The playout slot of the last frame handed over (in the future after a pause tail).
    last_frame: Option<Instant>,
    /// A packet of the current talkspurt has been sent (the next one carries no marker).
    talkspurt: bool,
}

/// Where one packet goes in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    seq: u16,
    ts: u32,
    marker: bool,
}

impl RtpClock {
    fn new(seq: u16, ts: u32) -> Self {
        Self {
            seq,
            ts,
            last_frame: None,
            talkspurt: false,
        }
    }

    /// A frame is due at `now`: after a pause the clock jumps by the wall time that passed, so
    /// the next packet plays at its real time, and a new talkspurt begins.
    fn frame_at(&mut self, now: Instant) {
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

    /// The frame's 20 ms pass unsent (DTX, or no publisher connection).
    fn skip(&mut self, silent: bool) {
        self.ts = self.ts.wrapping_add(FRAME_TICKS);
        if silent {
            self.talkspurt = false;
        }
    }

    /// The frame is sent: its slot.
    fn take(&mut self) -> Slot {
        let slot = Slot {
            seq: self.seq,
            ts: self.ts,
            marker: !self.talkspurt,
        };
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(FRAME_TICKS);
        self.talkspurt = true;
        slot
    }

    /// Whether a talkspurt is open: a pause must end it on silence.
    fn sounding(&self) -> bool {
        self.talkspurt
    }

    /// The silent tail was sent: the talkspurt is over, and its frames took the slots after the
    /// last frame, so a frame after it does not overlap them.
    fn paused(&mut self, tail_frames: u32) {
        self.talkspurt = false;
        if let Some(last) = self.last_frame.as_mut() {
            *last += FRAME_DURATION * tail_frames;
        }
    }
}

/// The agent's audio out, handed to the call as its room output.
pub struct AgentOutput {
    /// The published microphone; `None` while the publisher connection is not up (joining,
    /// reconnecting): frames are then dropped, counted.
    mic: watch::Receiver<MicSlot>,
    settings: EncoderSettings,
    encoder: Option<OpusEncoder>,
    clock: RtpClock,
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
            clock: RtpClock::new(random_u32() as u16, random_u32()),
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

    fn dropped(&self, why: DropReason) {
        LinkStats::add(&self.stats.frames_send_dropped, 1);
        frontdesk_actors::metrics::edge_dropped(EDGE_OUTBOUND, why, 1);
    }

    /// `&mut`: the encoder is not `Sync`, so a shared borrow held over the await is not `Send`.
    async fn write(&mut self, track: &TrackLocalStaticRTP, ssrc: u32, slot: Slot, payload: Bytes) {
        let packet = rtp::Packet {
            header: rtp::header::Header {
                version: 2,
                marker: slot.marker,
                payload_type: OPUS_PT,
                sequence_number: slot.seq,
                timestamp: slot.ts,
                ssrc,
                ..Default::default()
            },
            payload,
        };
        match tokio::time::timeout(self.send_timeout, track.write_rtp(packet)).await {
            Ok(Ok(())) => {
                LinkStats::add(&self.stats.packets_sent, 1);
                metrics::counter!(m::PACKETS_SENT).increment(1);
            }
            // A connection that does not take the frame in time must not hold up playout.
            Ok(Err(_)) | Err(_) => self.dropped(DropReason::Overflow),
        }
    }
}

#[async_trait]
impl AgentAudioOut for AgentOutput {
    async fn send(&mut self, frame: AudioFrame) -> Result<(), RoomError> {
        self.clock.frame_at(Instant::now());
        let slot = self.mic.borrow().clone();
        let Some((track, ssrc)) = slot else {
            self.clock.skip(false);
            self.dropped(DropReason::Closed);
            return Ok(());
        };
        let payload = match self.encoder(frame.sample_rate)?.encode(&frame.samples) {
            Ok(Encoded::Packet(p)) => Bytes::copy_from_slice(p),
            Ok(Encoded::Silent) => {
                self.clock.skip(true);
                LinkStats::add(&self.stats.frames_dtx, 1);
                return Ok(());
            }
            Err(e) => return Err(RoomError::Transport(format!("agent audio: {e}"))),
        };
        let slot = self.clock.take();
        self.write(&track, ssrc, slot, payload).await;
        Ok(())
    }

    async fn pause(&mut self) -> Result<(), RoomError> {
        if !self.clock.sounding() {
            return Ok(());
        }
        let Some(rate) = self.encoder.as_ref().map(OpusEncoder::rate) else {
            return Ok(());
        };
        let Some((track, ssrc)) = self.mic.borrow().clone() else {
            return Ok(());
        };
        let silence = vec![0i16; rate as usize / 50];
        for _ in 0..PAUSE_TAIL_FRAMES {
            match self.encoder(rate)?.encode(&silence) {
                Ok(Encoded::Packet(p)) => {
                    let payload = Bytes::copy_from_slice(p);
                    let slot = self.clock.take();
                    self.write(&track, ssrc, slot, payload).await;
                }
                // The encoder already sent its silence: the far end hears it as such.
                Ok(Encoded::Silent) => self.clock.skip(true),
                Err(e) => return Err(RoomError::Transport(format!("agent audio: {e}"))),
            }
        }
        self.clock.paused(PAUSE_TAIL_FRAMES);
        Ok(())
    }
}

#[cfg(test)]
#[path = "outbound_tests.rs"]
mod tests;
