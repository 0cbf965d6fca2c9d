//! Where the agent's VAD would say each fixture line ends, against where the caller's energy
//! threshold says it does. The agent times a turn from its VAD's speech end; the caller from its
//! last loud frame. Their difference per line (the VAD hearing a fading tail as speech, or cutting
//! it) is part of what the caller waits, but not code or media-path time: the report shows it
//! apart.

use std::time::Duration;

use std::sync::Arc;

use frontdesk_actors::audio::{
    samples_per_frame, AudioFrame, FRAME_DURATION, PIPELINE_RATE, ROOM_RATE,
};
use frontdesk_actors::vad::{VadConfig, VadDetector, VadEvent};

use crate::room::codec::{Encoded, EncoderSettings, OpusDecoder, OpusEncoder, RTP_CLOCK};

use crate::simulate::clips::Clips;

/// Per clip: VAD speech end − energy speech end, ms (None when the VAD found no speech).
pub fn vad_tails(
    clips: &Clips,
    enc: EncoderSettings,
    vad: &VadConfig,
    speech_ends: &[usize],
) -> Vec<Option<f64>> {
    clips
        .lines
        .iter()
        .zip(speech_ends)
        .map(|(clip, &end)| {
            let energy_end = FRAME_DURATION * (end as u32 + 1);
            let vad_end = vad_speech_end(&clip.frames, enc, vad)?;
            Some((vad_end.as_secs_f64() - energy_end.as_secs_f64()) * 1e3)
        })
        .collect()
}

/// The end of the last utterance the VAD finds in the clip as the agent hears it: each 48 kHz
/// frame through the callers' Opus encoder (DTX frames become silence, as the transport fills
/// them) and decoded to 16 kHz, then a second of silence so the hangover runs out. Media time from
/// the clip's start.
fn vad_speech_end(
    frames: &[Arc<[i16]>],
    enc: EncoderSettings,
    cfg: &VadConfig,
) -> Option<Duration> {
    let mut encoder = OpusEncoder::new(ROOM_RATE, enc).ok()?;
    let mut decoder = OpusDecoder::new(PIPELINE_RATE).ok()?;
    let mut detector = VadDetector::new(cfg).ok()?;
    let frame_len = samples_per_frame(PIPELINE_RATE);
    let silent = frames.len()..frames.len() + 50;
    let mut last = None;
    let (mut pcm, mut forward) = (Vec::new(), Vec::new());
    for i in 0..silent.end {
        pcm.clear();
        let packet = frames.get(i).and_then(|f| match encoder.encode(f) {
            Ok(Encoded::Packet(p)) => Some(p.to_vec()),
            _ => None,
        });
        let ts = (i as u32).wrapping_mul(RTP_CLOCK / 50);
        match packet {
            Some(p) if decoder.decode(i as u16, ts, &p, &mut pcm).is_ok() => {}
            _ => decoder.fill_silence(frame_len, &mut pcm),
        }
        for chunk in pcm.chunks_exact(frame_len) {
            let frame = AudioFrame::new(chunk, PIPELINE_RATE, FRAME_DURATION * i as u32);
            forward.clear();
            if let Ok(Some(VadEvent::SpeechEnded { at, .. })) =
                detector.process(frame, &mut forward)
            {
                last = Some(at);
            }
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixture_line_has_a_vad_end_near_its_energy_end() {
        let clips = Clips::load_at(ROOM_RATE).unwrap();
        let ends = crate::loadtest::caller::Setup::speech_ends(&clips, -45.0);
        let enc = crate::room::RoomConfig::default().encoder();
        let tails = vad_tails(&clips, enc, &VadConfig::default(), &ends);
        println!("{tails:?}");
        assert_eq!(tails.len(), clips.lines.len());
        for (i, t) in tails.iter().enumerate() {
            let t = t.unwrap_or_else(|| panic!("line {}: no speech found", i + 1));
            assert!(t.abs() < 1_000.0, "line {}: {t} ms", i + 1);
        }
    }
}
