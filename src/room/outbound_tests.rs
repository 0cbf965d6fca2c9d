use std::sync::atomic::Ordering;
use std::time::Duration;

use super::*;

use crate::room::codec::tests::{rms, tone, SETTINGS};

#[test]
fn frames_in_a_row_take_consecutive_slots_and_only_the_first_is_marked() {
    let t0 = Instant::now();
    let mut clock = RtpClock::new(65_534, u32::MAX - 100);
    let slots: Vec<Slot> = (0..4)
        .map(|i| {
            clock.frame_at(t0 + FRAME_DURATION * i);
            clock.take()
        })
        .collect();
    let marks: Vec<bool> = slots.iter().map(|s| s.marker).collect();
    assert_eq!(marks, [true, false, false, false]);
    for w in slots.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1));
        assert_eq!(w[1].ts, w[0].ts.wrapping_add(FRAME_TICKS));
    }
}

/// The tail takes the two slots after the last frame; a frame after a pause opens a new
/// talkspurt stamped with the wall time that passed since the last frame.
#[test]
fn a_pause_ends_the_talkspurt_in_the_next_slots_and_the_next_frame_keeps_wall_time() {
    let t0 = Instant::now();
    let mut clock = RtpClock::new(100, 1_000);
    clock.frame_at(t0);
    let last = clock.take();
    assert!(clock.sounding());
    let tail = [clock.take(), clock.take()];
    clock.paused(2);
    assert!(!clock.sounding());
    assert_eq!(
        tail.map(|s| (s.seq, s.marker)),
        [(101, false), (102, false)]
    );
    assert_eq!(tail[1].ts, last.ts + 2 * FRAME_TICKS);
    clock.frame_at(t0 + Duration::from_millis(500));
    let next = clock.take();
    assert!(next.marker, "a new talkspurt");
    assert_eq!(next.seq, 103);
    assert_eq!(
        next.ts,
        last.ts + 25 * FRAME_TICKS,
        "500 ms after the last frame"
    );
}

#[test]
fn after_dtx_silence_there_is_no_talkspurt_to_end() {
    let mut clock = RtpClock::new(0, 0);
    assert!(!clock.sounding(), "nothing sent yet");
    clock.frame_at(Instant::now());
    clock.take();
    clock.skip(true);
    assert!(!clock.sounding());
}

/// Why the tail exists: a stream that just stops is concealed by the far end's decoder, which
/// keeps the last sound going; the tail's frames decode to silence.
#[test]
fn the_tail_decodes_to_silence_where_concealment_stretches_the_sound() {
    let rate = 24_000;
    let mut enc = OpusEncoder::new(rate, SETTINGS).unwrap();
    // Two far ends hear the same tone: one then gets nothing, the other the tail.
    let mut dec = opus::Decoder::new(rate, opus::Channels::Mono).unwrap();
    let mut concealing = opus::Decoder::new(rate, opus::Channels::Mono).unwrap();
    let mut out = vec![0i16; rate as usize / 50];
    for n in 0..25 {
        let Encoded::Packet(p) = enc.encode(&tone(rate, rate as usize / 50, n)).unwrap() else {
            panic!("a tone is not DTX silence");
        };
        dec.decode(p, &mut out, false).unwrap();
        concealing.decode(p, &mut out, false).unwrap();
    }
    let level = rms(&out);
    concealing.decode(&[], &mut out, false).unwrap();
    let concealed = rms(&out);
    assert!(
        concealed > level / 4.0,
        "concealment {concealed} of {level}"
    );
    let silence = vec![0i16; rate as usize / 50];
    for _ in 0..PAUSE_TAIL_FRAMES {
        let Encoded::Packet(p) = enc.encode(&silence).unwrap() else {
            panic!("the first silent frames after speech are sent, not DTX");
        };
        dec.decode(p, &mut out, false).unwrap();
    }
    let tail = rms(&out);
    assert!(tail < level / 100.0, "tail {tail} of {level}");
}

fn output(stats: &Arc<LinkStats>) -> AgentOutput {
    let mic = Mic::new();
    let (_tx, rx) = watch::channel(Some((Arc::clone(&mic.track), mic.ssrc)));
    // The sender outlives the test body: a dropped one would still leave the last value.
    std::mem::forget(_tx);
    AgentOutput::new(rx, SETTINGS, Arc::clone(stats), Duration::from_millis(50))
}

/// Packets handed to the track (an unbound track refuses them, counted as dropped).
fn written(stats: &LinkStats) -> u64 {
    stats.packets_sent.load(Ordering::Relaxed) + stats.frames_send_dropped.load(Ordering::Relaxed)
}

#[tokio::test]
async fn a_pause_mid_sound_sends_the_tail_once_and_a_quiet_output_sends_nothing() {
    let stats = Arc::new(LinkStats::default());
    let mut out = output(&stats);
    out.pause().await.unwrap();
    assert_eq!(written(&stats), 0, "nothing was sounding");
    for n in 0..5 {
        let frame = AudioFrame::new(tone(24_000, 480, n), 24_000, FRAME_DURATION * n as u32);
        out.send(frame).await.unwrap();
    }
    assert_eq!(written(&stats), 5);
    out.pause().await.unwrap();
    assert_eq!(written(&stats), 5 + u64::from(PAUSE_TAIL_FRAMES));
    out.pause().await.unwrap();
    assert_eq!(
        written(&stats),
        5 + u64::from(PAUSE_TAIL_FRAMES),
        "one tail per pause"
    );
}
