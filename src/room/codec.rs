//! Opus at the room edge. Caller packets are decoded straight to the pipeline rate (libopus
//! resamples internally, so no separate 48 → 16 kHz stage), lost packets are concealed (FEC from the
//! next packet when it carries it, else PLC) and DTX gaps become silence on the audio clock. Agent
//! frames are encoded at whatever rate the TTS produced them (Opus takes 8/12/16/24/48 kHz), with
//! DTX so a silent agent costs no packets.

use std::time::Duration;

/// Rates libopus encodes from and decodes to.
pub const OPUS_RATES: [u32; 5] = [8_000, 12_000, 16_000, 24_000, 48_000];
/// RTP clock of Opus, whatever the coded bandwidth (RFC 7587).
pub const RTP_CLOCK: u32 = 48_000;
/// The longest Opus packet (120 ms), to size the decode buffer.
const MAX_PACKET: Duration = Duration::from_millis(120);
/// Lost packets concealed with PLC before the gap is filled with silence instead.
const MAX_CONCEAL_PACKETS: u32 = 5;
/// A DTX/loss gap longer than this is not filled (the live gap filler already covered it).
const MAX_GAP: Duration = Duration::from_secs(1);
/// Encoded packets at most this long are DTX frames: they are not sent (as libwebrtc does).
const DTX_MAX_BYTES: usize = 2;
/// Room for one encoded 20 ms frame at any bitrate Opus allows.
const MAX_ENCODED: usize = 1_500;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("opus {0}")]
    Opus(#[from] opus::Error),
    #[error("unsupported sample rate {0} Hz (Opus takes 8, 12, 16, 24 or 48 kHz)")]
    Rate(u32),
    #[error("frame of {got} samples is not 20 ms at {rate} Hz")]
    FrameLength { got: usize, rate: u32 },
}

impl CodecError {
    /// Bad packets and frames stay bad; a codec that failed to build will fail again.
    pub fn is_retriable(&self) -> bool {
        false
    }
}

fn check_rate(rate: u32) -> Result<(), CodecError> {
    if OPUS_RATES.contains(&rate) {
        Ok(())
    } else {
        Err(CodecError::Rate(rate))
    }
}

/// RTP timestamp units per sample at `rate`.
fn ticks_per_sample(rate: u32) -> u32 {
    RTP_CLOCK / rate
}

/// What one received packet turned into.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Samples of the packet itself.
    pub samples: usize,
    /// Samples synthesised for lost packets before it (FEC or PLC).
    pub concealed: usize,
    /// Silence samples for a DTX gap before it (beyond what was already filled live).
    pub silence: usize,
    /// Packets missing before this one, by sequence number.
    pub lost: u32,
}

/// Why a packet was not decoded.
#[derive(Debug, thiserror::Error)]
pub enum PacketError {
    #[error("packet arrived after a later one (late or duplicate)")]
    Late,
    #[error("undecodable opus payload: {0}")]
    Corrupt(opus::Error),
}

/// One caller track's decoder: packets in, PCM at the pipeline rate out, in order, with every gap
/// accounted for so the audio clock keeps pace with the caller's.
pub struct OpusDecoder {
    dec: opus::Decoder,
    rate: u32,
    scratch: Vec<i16>,
    /// Sequence number and RTP timestamp the next packet should carry.
    next: Option<(u16, u32)>,
    /// Silence already emitted live since the last packet, in samples at `rate`.
    filled: usize,
}

impl OpusDecoder {
    pub fn new(rate: u32) -> Result<Self, CodecError> {
        check_rate(rate)?;
        let max = (u64::from(rate) * MAX_PACKET.as_millis() as u64 / 1000) as usize;
        Ok(Self {
            dec: opus::Decoder::new(rate, opus::Channels::Mono)?,
            rate,
            scratch: vec![0; max],
            next: None,
            filled: 0,
        })
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Samples of one 20 ms frame.
    pub fn frame_len(&self) -> usize {
        self.rate as usize / 50
    }

    /// Silence for time that passed with no packet (DTX, or a stall); appended to `out`. Later
    /// packets do not fill the same time again.
    pub fn fill_silence(&mut self, samples: usize, out: &mut Vec<i16>) {
        out.resize(out.len() + samples, 0);
        self.filled += samples;
    }

    /// Decode one packet (sequence number, RTP timestamp, payload), appending to `out` first the
    /// concealment or silence for whatever is missing before it, then its own samples.
    pub fn decode(
        &mut self,
        seq: u16,
        ts: u32,
        payload: &[u8],
        out: &mut Vec<i16>,
    ) -> Result<Decoded, PacketError> {
        let mut d = Decoded::default();
        let gap = self.next.map(|(want_seq, want_ts)| {
            (
                seq.wrapping_sub(want_seq) as i16,
                ts.wrapping_sub(want_ts) as i32,
            )
        });
        if gap.is_some_and(|(seq_gap, _)| seq_gap < 0) {
            return Err(PacketError::Late);
        }
        // Parse before touching the decoder: a corrupt packet must not leave concealment behind.
        opus::packet::get_nb_samples(payload, self.rate).map_err(PacketError::Corrupt)?;
        if let Some((seq_gap, ts_gap)) = gap {
            d.lost = seq_gap as u32;
            let missing = (ts_gap.max(0) as u32 / ticks_per_sample(self.rate)) as usize;
            self.cover_gap(missing, d.lost, payload, out, &mut d);
        }
        let start = out.len();
        let n = self
            .dec
            .decode(payload, &mut self.scratch, false)
            .map_err(PacketError::Corrupt)?;
        out.extend_from_slice(&self.scratch[..n]);
        d.samples = out.len() - start;
        self.filled = 0;
        let ticks = (n as u32).saturating_mul(ticks_per_sample(self.rate));
        self.next = Some((seq.wrapping_add(1), ts.wrapping_add(ticks)));
        Ok(d)
    }

    /// Missing audio before a packet: conceal lost packets (the last one from this packet's FEC),
    /// the rest (DTX) as silence, minus what the live filler already emitted.
    fn cover_gap(
        &mut self,
        missing: usize,
        lost: u32,
        payload: &[u8],
        out: &mut Vec<i16>,
        d: &mut Decoded,
    ) {
        let cap = (u64::from(self.rate) * MAX_GAP.as_millis() as u64 / 1000) as usize;
        let mut remaining = missing.min(cap).saturating_sub(self.filled);
        let frame = self.frame_len();
        let conceal = lost.min(MAX_CONCEAL_PACKETS);
        for i in 0..conceal {
            if remaining < frame {
                break;
            }
            let fec = i + 1 == conceal;
            let input: &[u8] = if fec { payload } else { &[] };
            let buf = &mut self.scratch[..frame];
            match self.dec.decode(input, buf, fec) {
                Ok(n) if n > 0 => {
                    out.extend_from_slice(&buf[..n]);
                    d.concealed += n;
                    remaining = remaining.saturating_sub(n);
                }
                _ => break,
            }
        }
        out.resize(out.len() + remaining, 0);
        d.silence = remaining;
    }
}

/// One encoded frame, ready to packetise.
#[derive(Debug, PartialEq, Eq)]
pub enum Encoded<'a> {
    /// Send this payload.
    Packet(&'a [u8]),
    /// DTX: nothing to send for this frame.
    Silent,
}

/// Encoder settings from `[room]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncoderSettings {
    pub bitrate: i32,
    pub complexity: i32,
    pub dtx: bool,
    pub fec: bool,
}

/// The agent's encoder: 20 ms mono frames at the TTS rate.
pub struct OpusEncoder {
    enc: opus::Encoder,
    rate: u32,
    out: Vec<u8>,
}

impl OpusEncoder {
    pub fn new(rate: u32, s: EncoderSettings) -> Result<Self, CodecError> {
        check_rate(rate)?;
        let mut enc = opus::Encoder::new(rate, opus::Channels::Mono, opus::Application::Voip)?;
        enc.set_bitrate(opus::Bitrate::Bits(s.bitrate))?;
        enc.set_complexity(s.complexity)?;
        enc.set_dtx(s.dtx)?;
        enc.set_inband_fec(s.fec)?;
        if s.fec {
            // FEC is only emitted when the encoder expects loss.
            enc.set_packet_loss_perc(5)?;
        }
        enc.set_signal(opus::Signal::Voice)?;
        // Speech to a phone caller needs no more than wideband (8 kHz of audio); above it the
        // encoder runs its costlier hybrid modes for nothing a caller hears.
        enc.set_max_bandwidth(opus::Bandwidth::Wideband)?;
        Ok(Self {
            enc,
            rate,
            out: vec![0; MAX_ENCODED],
        })
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Encode one 20 ms frame.
    pub fn encode(&mut self, pcm: &[i16]) -> Result<Encoded<'_>, CodecError> {
        if pcm.len() != self.rate as usize / 50 {
            return Err(CodecError::FrameLength {
                got: pcm.len(),
                rate: self.rate,
            });
        }
        let n = self.enc.encode(pcm, &mut self.out)?;
        if n <= DTX_MAX_BYTES {
            return Ok(Encoded::Silent);
        }
        Ok(Encoded::Packet(&self.out[..n]))
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
pub(crate) mod tests;
