//! Cost of the caller-audio hot path per 20 ms frame.
//!
//! `call_frame_path*` is what a call does per caller frame: the LiveKit transport decodes Opus
//! straight to 16 kHz, so the resampler only re-frames (no copy), then the VAD, and the two edge
//! hops (room → VAD, VAD → STT). Budget: ≤ 5 µs per frame, alone and with 500 calls' states
//! interleaved (each frame touches a different call's resampler, VAD and edges, as on a busy
//! worker, so the cache is cold). `resample_48k_*` is a room that delivers 48 kHz (not LiveKit).

use std::hint::black_box;
use std::time::Duration;

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use frontdesk_actors::audio::resample::Resampler;
use frontdesk_actors::audio::{
    samples_per_frame, AudioFrame, FRAME_DURATION, PIPELINE_RATE, ROOM_RATE,
};
use frontdesk_actors::edge::{Edge, OverflowPolicy};
use frontdesk_actors::vad::{VadConfig, VadDetector};

/// Calls interleaved in the busy-worker variants.
const CALLS: usize = 500;

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

/// One call's frame-path state: what the room ingress and the VAD pump keep per call.
struct CallPath {
    resampler: Resampler,
    vad: VadDetector,
    room_to_vad: Edge<AudioFrame>,
    vad_to_stt: Edge<AudioFrame>,
    resampled: Vec<AudioFrame>,
    forward: Vec<AudioFrame>,
}

impl CallPath {
    fn new() -> Self {
        Self {
            resampler: Resampler::new(PIPELINE_RATE, PIPELINE_RATE).expect("identity"),
            vad: VadDetector::new(&VadConfig::default()).expect("valid config"),
            room_to_vad: Edge::new("room_to_vad", 10, OverflowPolicy::DropOldest),
            vad_to_stt: Edge::new("vad_to_stt", 50, OverflowPolicy::DropOldest),
            resampled: Vec::with_capacity(2),
            forward: Vec::with_capacity(32),
        }
    }

    /// Room ingress → edge → VAD → edge → the STT pump's take, for one decoded frame.
    fn frame(&mut self, frame: &AudioFrame) {
        self.resampler.push_frame(frame, &mut self.resampled);
        for f in self.resampled.drain(..) {
            let _ = self.room_to_vad.push(f);
        }
        while let Some(f) = self.room_to_vad.try_recv() {
            black_box(self.vad.process(f, &mut self.forward).expect("valid frame"));
            for f in self.forward.drain(..) {
                let _ = self.vad_to_stt.push(f);
            }
        }
        while let Some(f) = self.vad_to_stt.try_recv() {
            black_box(f);
        }
    }
}

fn bench_call_path(c: &mut Criterion) {
    let input = frames(PIPELINE_RATE);
    let mut call = CallPath::new();
    let mut i = 0;
    c.bench_function("call_frame_path_per_frame", |b| {
        b.iter(|| {
            call.frame(&input[i % input.len()]);
            i += 1;
        })
    });
    let mut calls: Vec<CallPath> = (0..CALLS).map(|_| CallPath::new()).collect();
    let mut i = 0;
    c.bench_function("call_frame_path_500_calls_interleaved_per_frame", |b| {
        b.iter(|| {
            // Each call is at its own point of the utterance, as on a real worker.
            let n = i % CALLS;
            calls[n].frame(&input[(i / CALLS + n) % input.len()]);
            i += 1;
        })
    });
}

fn bench_resample_interleaved(c: &mut Criterion) {
    let input = frames(ROOM_RATE);
    let mut resamplers: Vec<Resampler> = (0..CALLS)
        .map(|_| Resampler::new(ROOM_RATE, PIPELINE_RATE).expect("supported rate"))
        .collect();
    let mut out = Vec::with_capacity(4);
    let mut i = 0;
    c.bench_function("resample_48k_to_16k_500_interleaved_per_frame", |b| {
        b.iter(|| {
            out.clear();
            let n = i % CALLS;
            resamplers[n].push_frame(&input[(i / CALLS + n) % input.len()], &mut out);
            i += 1;
            black_box(&out);
        })
    });
}

criterion_group! {
    name = frame_path;
    config = common::config(Criterion::default(), Duration::from_secs(1));
    targets = bench_call_path, bench_resample, bench_resample_interleaved, bench_vad, bench_path
}
criterion_main!(frame_path);
