use proptest::prelude::*;

use super::*;

/// Also the outbound track's tests' settings and signals.
pub(crate) const SETTINGS: EncoderSettings = EncoderSettings {
    bitrate: 32_000,
    complexity: 0,
    dtx: true,
    fec: true,
};

pub(crate) fn tone(rate: u32, frame: usize, n: usize) -> Vec<i16> {
    let start = n * frame;
    (start..start + frame)
        .map(|i| {
            ((i as f64 * 440.0 * std::f64::consts::TAU / f64::from(rate)).sin() * 8_000.0) as i16
        })
        .collect()
}

pub(crate) fn rms(s: &[i16]) -> f64 {
    (s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len().max(1) as f64).sqrt()
}

/// 20 ms packets of a tone encoded at `rate`, with their (seq, ts).
fn packets(rate: u32, n: usize) -> Vec<(u16, u32, Vec<u8>)> {
    let mut enc = OpusEncoder::new(rate, SETTINGS).unwrap();
    let frame = rate as usize / 50;
    (0..n)
        .map(|i| {
            let pcm = tone(rate, frame, i);
            let Encoded::Packet(p) = enc.encode(&pcm).unwrap() else {
                panic!("a tone is not DTX silence");
            };
            (i as u16, i as u32 * 960, p.to_vec())
        })
        .collect()
}

#[test]
fn encodes_at_every_opus_rate_and_decodes_to_the_pipeline_rate_without_resampling() {
    for rate in OPUS_RATES {
        let mut dec = OpusDecoder::new(16_000).unwrap();
        let mut out = vec![];
        for (seq, ts, p) in packets(rate, 25) {
            let d = dec.decode(seq, ts, &p, &mut out).unwrap();
            assert_eq!(d.samples, 320, "20 ms at 16 kHz from a {rate} Hz encoder");
            assert_eq!((d.lost, d.concealed, d.silence), (0, 0, 0));
        }
        // Past the codec's start-up, the tone comes through at about its level (8000 peak).
        let level = rms(&out[out.len() / 2..]);
        assert!(
            (4_000.0..7_000.0).contains(&level),
            "{rate} Hz: rms {level}"
        );
    }
}

#[test]
fn unsupported_rates_and_frame_lengths_are_refused() {
    assert!(matches!(
        OpusDecoder::new(44_100),
        Err(CodecError::Rate(44_100))
    ));
    assert!(matches!(
        OpusEncoder::new(22_050, SETTINGS),
        Err(CodecError::Rate(22_050))
    ));
    let mut enc = OpusEncoder::new(24_000, SETTINGS).unwrap();
    let err = enc.encode(&[0; 100]).unwrap_err();
    assert!(matches!(
        err,
        CodecError::FrameLength {
            got: 100,
            rate: 24_000
        }
    ));
}

#[test]
fn silence_is_not_sent_with_dtx() {
    let mut enc = OpusEncoder::new(24_000, SETTINGS).unwrap();
    let silent = (0..50)
        .filter(|_| matches!(enc.encode(&[0; 480]), Ok(Encoded::Silent)))
        .count();
    // libopus keeps sending for the first frames, then only a comfort-noise update now and then.
    assert!(silent > 30, "only {silent} of 50 silent frames were DTX");
    let mut no_dtx = OpusEncoder::new(
        24_000,
        EncoderSettings {
            dtx: false,
            ..SETTINGS
        },
    )
    .unwrap();
    assert!((0..50).all(|_| matches!(no_dtx.encode(&[0; 480]), Ok(Encoded::Packet(_)))));
}

#[test]
fn lost_packets_are_concealed_and_the_clock_keeps_pace() {
    let all = packets(48_000, 30);
    let mut dec = OpusDecoder::new(16_000).unwrap();
    let mut out = vec![];
    let mut lost = 0;
    let mut concealed = 0;
    for (i, (seq, ts, p)) in all.iter().enumerate() {
        if (10..13).contains(&i) {
            continue; // three packets lost
        }
        let d = dec.decode(*seq, *ts, p, &mut out).unwrap();
        lost += d.lost;
        concealed += d.concealed;
    }
    assert_eq!(lost, 3);
    assert_eq!(concealed, 3 * 320, "the last from FEC, the others from PLC");
    assert_eq!(out.len(), 30 * 320, "no time lost on the audio clock");
}

#[test]
fn a_dtx_gap_becomes_silence_minus_what_was_filled_live() {
    let all = packets(48_000, 3);
    let mut dec = OpusDecoder::new(16_000).unwrap();
    let mut out = vec![];
    dec.decode(all[0].0, all[0].1, &all[0].2, &mut out).unwrap();
    // The sender stopped for 200 ms (DTX): sequence numbers continue, the timestamp jumps.
    dec.fill_silence(3 * 320, &mut out); // the live filler covered 60 ms of it
    let d = dec.decode(1, 960 + 200 * 48, &all[1].2, &mut out).unwrap();
    assert_eq!(d.lost, 0);
    assert_eq!(d.concealed, 0);
    assert_eq!(d.silence, (10 - 3) * 320);
    assert_eq!(out.len(), 320 + 10 * 320 + 320);
}

#[test]
fn late_duplicate_and_corrupt_packets_are_refused_without_losing_the_stream() {
    let all = packets(48_000, 4);
    let mut dec = OpusDecoder::new(16_000).unwrap();
    let mut out = vec![];
    dec.decode(all[0].0, all[0].1, &all[0].2, &mut out).unwrap();
    dec.decode(all[1].0, all[1].1, &all[1].2, &mut out).unwrap();
    assert!(matches!(
        dec.decode(all[0].0, all[0].1, &all[0].2, &mut out),
        Err(PacketError::Late)
    ));
    assert!(matches!(
        dec.decode(all[1].0, all[1].1, &all[1].2, &mut out),
        Err(PacketError::Late)
    ));
    // A TOC byte announcing a frame count the packet does not hold.
    let bad = [0xFF_u8, 0xFF, 0xFF];
    assert!(matches!(
        dec.decode(2, 2 * 960, &bad, &mut out),
        Err(PacketError::Corrupt(_))
    ));
    let d = dec.decode(all[2].0, all[2].1, &all[2].2, &mut out).unwrap();
    assert_eq!(d.samples, 320);
    assert_eq!(out.len(), 3 * 320);
}

proptest! {
    /// Whatever arrives from the room (any bytes, any sequence numbers and timestamps), the
    /// decoder never panics, never emits more than a second of fill per packet, and keeps every
    /// sample it already produced.
    #[test]
    fn arbitrary_packets_never_panic(
        input in proptest::collection::vec(
            (any::<u16>(), any::<u32>(), proptest::collection::vec(any::<u8>(), 0..300)),
            0..40,
        )
    ) {
        let mut dec = OpusDecoder::new(16_000).unwrap();
        let mut out = vec![];
        for (seq, ts, payload) in input {
            let before = out.len();
            let _ = dec.decode(seq, ts, &payload, &mut out);
            prop_assert!(out.len() >= before);
            prop_assert!(out.len() - before <= 16_000 + 1_920);
        }
    }
}
