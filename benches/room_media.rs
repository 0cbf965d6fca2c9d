//! Media cost at the room edge per 20 ms frame, both directions, as the transport runs it:
//!   in:  caller Opus packet → decode straight to 16 kHz → VAD (vs. decode at 48 kHz → rubato
//!        48 → 16 kHz → VAD, the path without decoding to the pipeline rate);
//!   out: agent frame at the TTS rate (24 kHz) → Opus with DTX (vs. 24 → 48 kHz resample → Opus).
//! Budget (issue: ≤ 3 ms CPU per call-second for SRTP + decode + encode): 50 frames a second each
//! way, so ≤ 30 µs per frame per direction leaves room for SRTP and the peer connection.

use std::hint::black_box;
use std::time::Duration;

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use frontdesk::room::codec::{Encoded, EncoderSettings, OpusDecoder, OpusEncoder};
use frontdesk_actors::audio::resample::Resampler;
use frontdesk_actors::audio::{samples_per_frame, AudioFrame, FRAME_DURATION};
use frontdesk_actors::vad::{VadConfig, VadDetector};

const SETTINGS: EncoderSettings = EncoderSettings {
    bitrate: 32_000,
    complexity: 0,
    dtx: true,
    fec: true,
};

/// One second of 20 ms Opus packets (as a caller's browser would send them: 48 kHz input).
fn packets() -> Vec<Vec<u8>> {
    let mut enc = OpusEncoder::new(48_000, SETTINGS).expect("opus encoder");
    common::speech_like(48_000)
        .chunks_exact(960)
        .map(|c| match enc.encode(c).expect("encode") {
            Encoded::Packet(p) => p.to_vec(),
            Encoded::Silent => vec![],
        })
        .filter(|p| !p.is_empty())
        .collect()
}

fn bench_decode_to_vad(c: &mut Criterion) {
    let input = packets();
    let mut dec = OpusDecoder::new(16_000).expect("decoder");
    let mut vad = VadDetector::new(&VadConfig::default()).expect("valid config");
    let (mut pcm, mut forward) = (Vec::with_capacity(960), Vec::with_capacity(32));
    let mut i: u32 = 0;
    c.bench_function("room_in_opus_decode_16k_plus_vad_per_frame", |b| {
        b.iter(|| {
            pcm.clear();
            forward.clear();
            let p = &input[i as usize % input.len()];
            let ts = i.wrapping_mul(960);
            dec.decode(i as u16, ts, p, &mut pcm).expect("valid packet");
            let frame = AudioFrame::new(pcm.as_slice(), 16_000, FRAME_DURATION * i);
            i += 1;
            black_box(vad.process(frame, &mut forward).expect("valid frame"));
        })
    });
}

fn bench_decode_48k_resample_vad(c: &mut Criterion) {
    let input = packets();
    let mut dec = OpusDecoder::new(48_000).expect("decoder");
    let mut resampler = Resampler::new(48_000, 16_000).expect("supported rate");
    let mut vad = VadDetector::new(&VadConfig::default()).expect("valid config");
    let (mut pcm, mut frames, mut forward) = (vec![], Vec::with_capacity(4), vec![]);
    let mut i: u32 = 0;
    c.bench_function("room_in_opus_decode_48k_resample_vad_per_frame", |b| {
        b.iter(|| {
            pcm.clear();
            forward.clear();
            let p = &input[i as usize % input.len()];
            dec.decode(i as u16, i.wrapping_mul(960), p, &mut pcm)
                .expect("valid packet");
            resampler.push(FRAME_DURATION * i, &pcm, &mut frames);
            i += 1;
            for f in frames.drain(..) {
                black_box(vad.process(f, &mut forward).expect("valid frame"));
            }
        })
    });
}

fn bench_encode(c: &mut Criterion) {
    let input = common::speech_like(24_000);
    let frame = samples_per_frame(24_000);
    let mut enc = OpusEncoder::new(24_000, SETTINGS).expect("encoder");
    let mut i = 0;
    c.bench_function("room_out_opus_encode_24k_per_frame", |b| {
        b.iter(|| {
            let start = (i % 50) * frame;
            i += 1;
            black_box(enc.encode(&input[start..start + frame]).is_ok());
        })
    });
}

fn bench_resample_encode_48k(c: &mut Criterion) {
    let input = common::speech_like(24_000);
    let frame = samples_per_frame(24_000);
    let mut resampler = Resampler::new(24_000, 48_000).expect("supported rate");
    let mut enc = OpusEncoder::new(48_000, SETTINGS).expect("encoder");
    let mut frames = Vec::with_capacity(4);
    let mut i: u32 = 0;
    c.bench_function("room_out_resample_24k_to_48k_plus_encode_per_frame", |b| {
        b.iter(|| {
            let start = (i as usize % 50) * frame;
            resampler.push(
                FRAME_DURATION * i,
                &input[start..start + frame],
                &mut frames,
            );
            i += 1;
            for f in frames.drain(..) {
                black_box(enc.encode(&f.samples).is_ok());
            }
        })
    });
}

criterion_group! {
    name = room_media;
    config = common::config(Criterion::default(), Duration::from_secs(1));
    targets = bench_decode_to_vad, bench_decode_48k_resample_vad, bench_encode, bench_resample_encode_48k
}
criterion_main!(room_media);
