//! The caller's audio track → Opus decode → the call. One task per subscribed caller track. Gaps
//! with no packets (the caller's DTX, a muted mic, a stalled network) become silence on the audio
//! clock once `silence_fill_after` has passed, so the call's turn-taking still sees the caller stop
//! talking; packets that arrive after it only fill what is still missing.

use std::sync::Arc;
use std::time::Duration;

use frontdesk_actors::audio::AudioFrame;
use frontdesk_actors::edge::DropReason;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use super::codec::{OpusDecoder, PacketError};
use super::metrics::{self as m, EDGE_INBOUND};
use super::stats::{LinkStats, RtpReceiveStats};

/// Silence frames emitted per fill tick once the gap is established.
const FILL_TICK: Duration = Duration::from_millis(20);

/// Decodes packets into frames on the link's audio queue.
pub struct Inbound {
    decoder: OpusDecoder,
    rtp: RtpReceiveStats,
    stats: Arc<LinkStats>,
    tx: mpsc::Sender<AudioFrame>,
    /// Samples handed to the call so far: the frames' media clock.
    emitted: u64,
    pcm: Vec<i16>,
    last_packet: Option<Instant>,
    /// Wall time the silence fill has covered since the last packet.
    filled_until: Option<Instant>,
}

impl Inbound {
    pub fn new(decoder: OpusDecoder, stats: Arc<LinkStats>, tx: mpsc::Sender<AudioFrame>) -> Self {
        Self {
            decoder,
            rtp: RtpReceiveStats::default(),
            stats,
            tx,
            emitted: 0,
            pcm: Vec::with_capacity(1_920),
            last_packet: None,
            filled_until: None,
        }
    }

    /// One RTP packet of the caller's track.
    pub fn packet(&mut self, seq: u16, ts: u32, payload: &[u8], now: Instant) {
        self.rtp.on_packet(seq, ts, now);
        LinkStats::add(&self.stats.packets_received, 1);
        metrics::counter!(m::PACKETS_RECEIVED).increment(1);
        self.pcm.clear();
        match self.decoder.decode(seq, ts, payload, &mut self.pcm) {
            Ok(d) => {
                self.last_packet = Some(now);
                self.filled_until = None;
                let s = &self.stats;
                LinkStats::add(&s.packets_lost, u64::from(d.lost));
                LinkStats::add(&s.samples_decoded, d.samples as u64);
                LinkStats::add(&s.samples_concealed, d.concealed as u64);
                LinkStats::add(&s.samples_silence, d.silence as u64);
                if d.lost > 0 {
                    metrics::counter!(m::PACKETS_LOST).increment(u64::from(d.lost));
                }
                if d.concealed > 0 {
                    let secs = d.concealed as f64 / f64::from(self.decoder.rate());
                    metrics::counter!(m::CONCEALED_SECONDS).increment(secs.ceil() as u64);
                }
                let jitter = self.rtp.jitter().as_micros() as u64;
                s.jitter_us
                    .store(jitter, std::sync::atomic::Ordering::Relaxed);
                self.emit();
            }
            Err(PacketError::Late) => {
                LinkStats::add(&self.stats.packets_late, 1);
                m::rejected("late_packet");
            }
            Err(PacketError::Corrupt(e)) => {
                LinkStats::add(&self.stats.packets_corrupt, 1);
                m::rejected("corrupt_opus");
                tracing::debug!(error = %e, "undecodable caller packet skipped");
            }
        }
    }

    /// When the next silence fill is due: `after` past the last packet, then every 20 ms.
    pub fn fill_due(&self, after: Duration) -> Option<Instant> {
        match self.filled_until {
            Some(t) => Some(t + FILL_TICK),
            None => self.last_packet.map(|t| t + after),
        }
    }

    /// No packet since `fill_due`: emit the silence that covers the time up to `now`, whole
    /// 20 ms frames.
    pub fn fill(&mut self, now: Instant) {
        let Some(from) = self.filled_until.or(self.last_packet) else {
            return;
        };
        let frames =
            (now.saturating_duration_since(from).as_millis() / FILL_TICK.as_millis()) as u32;
        if frames == 0 {
            return;
        }
        self.filled_until = Some(from + FILL_TICK * frames);
        self.pcm.clear();
        let samples = frames as usize * self.decoder.frame_len();
        self.decoder.fill_silence(samples, &mut self.pcm);
        LinkStats::add(&self.stats.samples_silence, samples as u64);
        self.emit();
    }

    fn emit(&mut self) {
        if self.pcm.is_empty() {
            return;
        }
        let rate = self.decoder.rate();
        let at = Duration::from_nanos(self.emitted * 1_000_000_000 / u64::from(rate));
        self.emitted += self.pcm.len() as u64;
        let frame = AudioFrame::new(self.pcm.as_slice(), rate, at);
        if self.tx.try_send(frame).is_err() {
            LinkStats::add(&self.stats.frames_dropped, 1);
            frontdesk_actors::metrics::edge_dropped(EDGE_INBOUND, DropReason::Overflow, 1);
        }
    }

    pub fn rtp(&self) -> &RtpReceiveStats {
        &self.rtp
    }
}

/// Read the caller's track until it ends or the call stops listening.
pub async fn run(track: Arc<dyn TrackRemote>, mut inbound: Inbound, fill_after: Duration) {
    let closed = inbound.tx.clone();
    loop {
        let due = inbound.fill_due(fill_after);
        let fill = async {
            match due {
                Some(at) => sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ev = track.poll() => match ev {
                Some(TrackRemoteEvent::OnRtpPacket(p)) => {
                    inbound.packet(p.header.sequence_number, p.header.timestamp, &p.payload, Instant::now());
                }
                Some(TrackRemoteEvent::OnEnded) | None => break,
                Some(_) => {}
            },
            () = fill => inbound.fill(Instant::now()),
            () = closed.closed() => break,
        }
    }
    let r = inbound.rtp();
    tracing::debug!(
        received = r.received(),
        lost = r.lost(),
        jitter_ms = r.jitter().as_secs_f64() * 1e3,
        "caller track ended"
    );
}
