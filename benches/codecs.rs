//! Client overhead per provider message: encoding what we send and decoding what we receive, for
//! the messages a call exchanges most (audio out to STT, transcripts back, LLM stream chunks, TTS
//! audio chunks).

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use frontdesk::providers::{cartesia, deepgram, openai};

const DG_RESULTS: &str = r#"{"type":"Results","channel_index":[0,1],"duration":1.98,"start":5.99,"is_final":true,"speech_final":true,"from_finalize":false,"channel":{"alternatives":[{"transcript":"I would like to book an appointment with a heart doctor","confidence":0.99,"words":[{"word":"i","start":6.0,"end":6.1,"confidence":0.99,"punctuated_word":"I"},{"word":"would","start":6.1,"end":6.3,"confidence":0.99,"punctuated_word":"would"}]}]},"metadata":{"request_id":"a1b2","model_info":{"name":"general-nova-3","version":"2025","arch":"nova-3"},"model_uuid":"c0ffee"}}"#;
const OPENAI_CHUNK: &str = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1764000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"appointment "},"finish_reason":null}]}"#;

fn codecs(c: &mut Criterion) {
    let mut g = c.benchmark_group("codecs");
    // 50 ms of 16 kHz audio: one Deepgram binary message.
    let audio: Vec<i16> = (0..800).map(|i| ((i * 37) % 2000) as i16 - 1000).collect();
    g.bench_function("deepgram_encode_50ms_audio", |b| {
        b.iter(|| deepgram::wire::encode_pcm(black_box(&audio)))
    });
    g.bench_function("deepgram_decode_final_results", |b| {
        b.iter(|| deepgram::decode(black_box(DG_RESULTS)))
    });
    g.bench_function("openai_decode_sse_chunk", |b| {
        let frame = format!("data: {OPENAI_CHUNK}\n\n");
        b.iter(|| {
            let mut split = openai::sse::SseSplitter::new();
            let mut dec = openai::wire::StreamDecoder::default();
            for data in split.push(black_box(frame.as_bytes())) {
                black_box(dec.on_data(&data));
            }
        })
    });
    // 40 ms of 48 kHz audio: one Cartesia chunk.
    let pcm: Vec<i16> = (0..1920).map(|i| ((i * 13) % 4000) as i16 - 2000).collect();
    let chunk = format!(
        r#"{{"type":"chunk","data":"{}","done":false,"status_code":206,"step_time":12.5,"context_id":"call-1-1-1"}}"#,
        cartesia::wire::encode_pcm(&pcm)
    );
    g.bench_function("cartesia_decode_40ms_chunk", |b| {
        b.iter(|| cartesia::wire::decode(black_box(&chunk)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config(Criterion::default(), Duration::from_secs(1));
    targets = codecs
}
criterion_main!(benches);
