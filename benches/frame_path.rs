//! Cost of the caller-audio hot path per 20 ms frame: 48 kHz room frame → 16 kHz → VAD.
//! Budget: ≤ 20 µs per frame for resample + VAD.

use std::hint::black_box;
use std::time::Duration;

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use frontdesk_actors::audio::resample::Resampler;
use frontdesk_actors::audio::{
    samples_per_frame, AudioFrame, FRAME_DURATION, PIPELINE_RATE, ROOM_RATE,
};
use frontdesk_actors::vad::{VadConfig, VadDetector};

fn frames(rate: u32) -> Vec<AudioFrame> {
    common::speech_like(rate)
        .chunks_exact(samples_per_frame(rate))
        .enumerate()
        .map(|(i, c)| AudioFrame::new(c, rate, FRAME_DURATION * i as u32))
        .collect()
}

fn bench_resample(c: &mut Criterion) {
    let input = frames(ROOM_RATE);
    let mut resampler = Resampler::new(ROOM_RATE, PIPELINE_RATE).expect("supported rate");
    let mut out = Vec::with_capacity(4);
    let mut i = 0;
    c.bench_function("resample_48k_to_16k_per_frame", |b| {
        b.iter(|| {
            out.clear();
            let f = &input[i % input.len()];
            resampler.push(FRAME_DURATION * i as u32, &f.samples, &mut out);
            i += 1;
            black_box(&out);
        })
    });
}

fn bench_vad(c: &mut Criterion) {
    let input = frames(PIPELINE_RATE);
    let mut vad = VadDetector::new(&VadConfig::default()).expect("valid config");
    let mut forward = Vec::with_capacity(32);
    let mut i = 0;
    c.bench_function("vad_16k_per_frame", |b| {
        b.iter(|| {
            forward.clear();
            let f = input[i % input.len()].clone();
            i += 1;
            black_box(vad.process(f, &mut forward).expect("valid frame"));
        })
    });
}

fn bench_path(c: &mut Criterion) {
    let input = frames(ROOM_RATE);
    let mut resampler = Resampler::new(ROOM_RATE, PIPELINE_RATE).expect("supported rate");
    let mut vad = VadDetector::new(&VadConfig::default()).expect("valid config");
    let (mut resampled, mut forward) = (Vec::with_capacity(4), Vec::with_capacity(32));
    let mut i = 0;
    c.bench_function("resample_plus_vad_per_frame", |b| {
        b.iter(|| {
            resampled.clear();
            forward.clear();
            let f = &input[i % input.len()];
            resampler.push(f.timestamp, &f.samples, &mut resampled);
            i += 1;
            for frame in resampled.drain(..) {
                black_box(vad.process(frame, &mut forward).expect("valid frame"));
            }
        })
    });
}

criterion_group! {
    name = frame_path;
    config = common::config(Criterion::default(), Duration::from_secs(1));
    targets = bench_resample, bench_vad, bench_path
}
criterion_main!(frame_path);
