//! Raw output formats of the TTS websocket (`output_format`): the four encodings at the six sample
//! rates the API lists, and the encoders that turn the emulator's s16 signal into each.

use base64::Engine as _;
use serde_json::Value;

use crate::providers::cartesia::wire::SAMPLE_RATES;

/// A sample encoding of `container: "raw"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Encoding {
    PcmS16le,
    PcmF32le,
    PcmMulaw,
    PcmAlaw,
}

impl Encoding {
    pub const ALL: [Encoding; 4] = [
        Encoding::PcmS16le,
        Encoding::PcmF32le,
        Encoding::PcmMulaw,
        Encoding::PcmAlaw,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::PcmS16le => "pcm_s16le",
            Encoding::PcmF32le => "pcm_f32le",
            Encoding::PcmMulaw => "pcm_mulaw",
            Encoding::PcmAlaw => "pcm_alaw",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// A validated `output_format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct OutputFormat {
    pub encoding: Encoding,
    pub sample_rate: u32,
}

impl OutputFormat {
    /// Check `output_format` as the API does; `Err` is the message of the `error` reply.
    pub fn parse(fmt: &Value) -> Result<Self, String> {
        let container = fmt.get("container").and_then(Value::as_str);
        if container != Some("raw") {
            return Err(format!(
                "output_format.container must be \"raw\" on the websocket, not {}",
                shown(fmt.get("container"))
            ));
        }
        let encoding = fmt
            .get("encoding")
            .and_then(Value::as_str)
            .and_then(Encoding::parse)
            .ok_or_else(|| {
                let known: Vec<&str> = Encoding::ALL.iter().map(|e| e.as_str()).collect();
                format!(
                    "output_format.encoding must be one of {known:?}, not {}",
                    shown(fmt.get("encoding"))
                )
            })?;
        let sample_rate = fmt
            .get("sample_rate")
            .and_then(Value::as_u64)
            .and_then(|r| u32::try_from(r).ok())
            .filter(|r| SAMPLE_RATES.contains(r))
            .ok_or_else(|| {
                format!(
                    "output_format.sample_rate must be one of {SAMPLE_RATES:?}, not {}",
                    shown(fmt.get("sample_rate"))
                )
            })?;
        Ok(Self {
            encoding,
            sample_rate,
        })
    }

    /// The base64 `data` of a chunk carrying `samples`.
    pub fn encode(self, samples: &[i16]) -> String {
        let bytes: Vec<u8> = match self.encoding {
            Encoding::PcmS16le => samples.iter().flat_map(|s| s.to_le_bytes()).collect(),
            Encoding::PcmF32le => samples
                .iter()
                .flat_map(|&s| (f32::from(s) / 32_768.0).to_le_bytes())
                .collect(),
            Encoding::PcmMulaw => samples.iter().map(|&s| mulaw(s)).collect(),
            Encoding::PcmAlaw => samples.iter().map(|&s| alaw(s)).collect(),
        };
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }
}

/// A field's value for an error message, cut short (it is the caller's input).
fn shown(v: Option<&Value>) -> String {
    match v {
        None => "missing".into(),
        Some(v) => v.to_string().chars().take(40).collect(),
    }
}

/// G.711 µ-law of one sample (ITU-T G.711, with the usual bias of 0x84 and clip at 32635).
pub(super) fn mulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    let s = i32::from(sample);
    let sign = if s < 0 { 0x80 } else { 0 };
    let magnitude = s.abs().min(32_635) + BIAS;
    // The segment is the highest set bit of magnitude >> 7 (0..=7).
    let top = (magnitude >> 7) as u32;
    let exponent = if top == 0 {
        0
    } else {
        31 - top.leading_zeros() as i32
    };
    let mantissa = (magnitude >> (exponent + 3)) & 0x0F;
    !((sign | (exponent << 4) | mantissa) as u8)
}

/// G.711 A-law of one sample (13-bit magnitude, even bits inverted with 0x55).
pub(super) fn alaw(sample: i16) -> u8 {
    let s = i32::from(sample) >> 3;
    let (sign, magnitude) = if s >= 0 { (0x80, s) } else { (0x00, -s - 1) };
    let magnitude = magnitude.min(0x0FFF);
    let code = if magnitude < 32 {
        magnitude >> 1
    } else {
        let exponent = 31 - (magnitude as u32).leading_zeros() as i32 - 4;
        (exponent << 4) | ((magnitude >> exponent) & 0x0F)
    };
    ((sign | code) ^ 0x55) as u8
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    /// Reference G.711 decoders (as in the ITU tables), to check the encoders round-trip.
    fn mulaw_decode(u: u8) -> i32 {
        let u = !u;
        let t = ((i32::from(u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4);
        if u & 0x80 != 0 {
            0x84 - t
        } else {
            t - 0x84
        }
    }

    fn alaw_decode(a: u8) -> i32 {
        let a = a ^ 0x55;
        let seg = i32::from((a & 0x70) >> 4);
        let mut t = i32::from(a & 0x0F) << 4;
        t += if seg == 0 { 8 } else { 0x108 };
        if seg > 1 {
            t <<= seg - 1;
        }
        if a & 0x80 != 0 {
            t
        } else {
            -t
        }
    }

    #[test]
    fn g711_round_trips_within_its_step() {
        for s in (-32_768i32..32_768).step_by(7) {
            let s16 = s as i16;
            let (m, a) = (mulaw_decode(mulaw(s16)), alaw_decode(alaw(s16)));
            // The quantisation step grows with the magnitude: 1/16 of it, plus the small end.
            let tol = (s.abs() / 16).max(16) + 8;
            assert!((m - s.clamp(-32_635, 32_635)).abs() <= tol, "µ {s} -> {m}");
            assert!((a - s).abs() <= tol, "A {s} -> {a}");
        }
        assert_eq!(mulaw(0), 0xFF);
        assert_eq!(alaw(0), 0xD5);
    }

    #[test]
    fn every_encoding_at_every_rate_parses_and_bad_ones_are_named() {
        for e in Encoding::ALL {
            for r in SAMPLE_RATES {
                let v = json!({"container": "raw", "encoding": e.as_str(), "sample_rate": r});
                assert_eq!(
                    OutputFormat::parse(&v).unwrap(),
                    OutputFormat {
                        encoding: e,
                        sample_rate: r
                    }
                );
            }
        }
        let bad = [
            (
                json!({"container": "mp3", "encoding": "pcm_s16le", "sample_rate": 8000}),
                "container",
            ),
            (
                json!({"container": "raw", "encoding": "pcm_s24le", "sample_rate": 8000}),
                "encoding",
            ),
            (
                json!({"container": "raw", "encoding": "pcm_f32le", "sample_rate": 11025}),
                "sample_rate",
            ),
            (
                json!({"container": "raw", "encoding": "pcm_f32le"}),
                "sample_rate",
            ),
        ];
        for (v, field) in bad {
            let err = OutputFormat::parse(&v).unwrap_err();
            assert!(err.contains(field), "{err}");
        }
    }

    #[test]
    fn byte_widths_follow_the_encoding() {
        let samples = [0i16, 1_000, -1_000, i16::MAX, i16::MIN];
        for (e, width) in [
            (Encoding::PcmS16le, 2),
            (Encoding::PcmF32le, 4),
            (Encoding::PcmMulaw, 1),
            (Encoding::PcmAlaw, 1),
        ] {
            let f = OutputFormat {
                encoding: e,
                sample_rate: 8_000,
            };
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(f.encode(&samples))
                .unwrap();
            assert_eq!(bytes.len(), samples.len() * width, "{e:?}");
        }
        let f = OutputFormat {
            encoding: Encoding::PcmF32le,
            sample_rate: 44_100,
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(f.encode(&[i16::MIN, i16::MAX]))
            .unwrap();
        let x: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(x[0], -1.0);
        assert!(x[1] < 1.0 && x[1] > 0.999);
    }
}
