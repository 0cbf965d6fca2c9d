//! The `/v1/listen` query parameters that change what the server sends, checked as the handshake
//! checks them (a bad value is an HTTP 400 before the upgrade).

use std::collections::HashMap;

use super::script::Format;

/// Encodings Deepgram's live API knows (the SDK's `ListenV1Encoding`).
const ENCODINGS: [&str; 11] = [
    "linear16", "linear32", "flac", "alaw", "mulaw", "amr-nb", "amr-wb", "opus", "ogg-opus",
    "speex", "g729",
];

/// Deepgram's default when `endpointing` is not sent.
pub(super) const DEFAULT_ENDPOINTING_MS: u32 = 10;

#[derive(Debug, PartialEq, thiserror::Error)]
pub(super) enum ParamError {
    #[error("Invalid value for `{name}`: {value:?}.")]
    Invalid { name: &'static str, value: String },
    #[error("Unsupported encoding {0:?}.")]
    UnknownEncoding(String),
    #[error("This emulator decodes linear16, mulaw and alaw only, not {0:?}.")]
    UndecodedEncoding(String),
    #[error(
        "This emulator needs raw audio: set encoding (linear16, mulaw, alaw) and sample_rate."
    )]
    NoEncoding,
    #[error("sample_rate is required when encoding is set.")]
    NoSampleRate,
}

/// Raw audio the emulator decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Encoding {
    Linear16,
    Mulaw,
    Alaw,
}

impl Encoding {
    pub fn bytes_per_sample(self) -> usize {
        match self {
            Self::Linear16 => 2,
            Self::Mulaw | Self::Alaw => 1,
        }
    }

    /// One sample from its bytes (`bytes_per_sample` of them; G.711 expanded as ITU-T G.711).
    pub fn decode(self, b: &[u8]) -> i16 {
        match (self, b) {
            (Self::Linear16, [lo, hi, ..]) => i16::from_le_bytes([*lo, *hi]),
            (Self::Mulaw, [u, ..]) => ulaw(*u),
            (Self::Alaw, [a, ..]) => alaw(*a),
            _ => 0,
        }
    }
}

fn ulaw(byte: u8) -> i16 {
    let u = !byte;
    let t = ((i32::from(u & 0x0F) << 3) + 0x84) << ((u >> 4) & 7);
    let s = if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 };
    i16::try_from(s).unwrap_or_default()
}

fn alaw(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let t = i32::from(a & 0x0F) << 4;
    let t = match (a >> 4) & 7 {
        0 => t + 8,
        seg => (t + 0x108) << (seg - 1),
    };
    let s = if a & 0x80 != 0 { t } else { -t };
    i16::try_from(s).unwrap_or_default()
}

/// Query parameters the emulator acts on.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Params {
    pub encoding: Encoding,
    pub sample_rate: u32,
    pub channels: u16,
    /// Each channel transcribed apart (`channel_index` [i, channels]); else they are mixed.
    pub multichannel: bool,
    pub tag: String,
    pub model: String,
    pub interim_results: bool,
    pub vad_events: bool,
    /// Only with interim results (as Deepgram).
    pub utterance_end_ms: Option<u32>,
    /// `None`: `endpointing=false`.
    pub endpointing_ms: Option<u32>,
    pub format: Format,
}

impl Params {
    /// `default_endpointing_ms` applies when the query has no `endpointing`.
    pub fn parse(
        q: &HashMap<String, String>,
        default_endpointing_ms: u32,
    ) -> Result<Self, ParamError> {
        let get = |k: &str| q.get(k).map(String::as_str);
        let encoding = match get("encoding") {
            None => return Err(ParamError::NoEncoding),
            Some("linear16") => Encoding::Linear16,
            Some("mulaw") => Encoding::Mulaw,
            Some("alaw") => Encoding::Alaw,
            Some(e) if ENCODINGS.contains(&e) => {
                return Err(ParamError::UndecodedEncoding(e.into()))
            }
            Some(e) => return Err(ParamError::UnknownEncoding(e.into())),
        };
        let sample_rate = get("sample_rate").ok_or(ParamError::NoSampleRate)?;
        let sample_rate = number(q, "sample_rate", sample_rate, 8_000..=48_000)?;
        let channels = match get("channels") {
            Some(v) => number(q, "channels", v, 1..=8)?,
            None => 1,
        };
        let interim_results = flag(q, "interim_results")?;
        let utterance_end_ms = match get("utterance_end_ms") {
            Some(v) => Some(number(q, "utterance_end_ms", v, 1..=5_000)?),
            None => None,
        };
        let endpointing_ms = match get("endpointing") {
            None => Some(default_endpointing_ms),
            Some(v) if v.eq_ignore_ascii_case("false") => None,
            Some(v) if v.eq_ignore_ascii_case("true") => Some(DEFAULT_ENDPOINTING_MS),
            Some(v) => Some(number(q, "endpointing", v, 0..=60_000)?),
        };
        Ok(Self {
            encoding,
            sample_rate,
            channels: u16::try_from(channels).unwrap_or(1),
            multichannel: flag(q, "multichannel")?,
            tag: q.get("tag").cloned().unwrap_or_default(),
            model: q.get("model").cloned().unwrap_or_else(|| "nova-3".into()),
            interim_results,
            vad_events: flag(q, "vad_events")?,
            utterance_end_ms: utterance_end_ms.filter(|_| interim_results),
            endpointing_ms,
            format: Format {
                punctuate: flag(q, "punctuate")? || flag(q, "smart_format")?,
            },
        })
    }

    /// Streams transcribed apart: one for all channels unless `multichannel`.
    pub fn streams(&self) -> u16 {
        if self.multichannel {
            self.channels
        } else {
            1
        }
    }
}

fn invalid(name: &'static str, q: &HashMap<String, String>) -> ParamError {
    ParamError::Invalid {
        name,
        value: q.get(name).cloned().unwrap_or_default(),
    }
}

fn number(
    q: &HashMap<String, String>,
    name: &'static str,
    value: &str,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, ParamError> {
    value
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| invalid(name, q))
}

/// A boolean parameter: absent is false; anything but true/false is refused.
fn flag(q: &HashMap<String, String>, name: &'static str) -> Result<bool, ParamError> {
    match q.get(name).map(String::as_str) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(invalid(name, q)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> Result<Params, ParamError> {
        let q: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        Params::parse(&q, 10)
    }

    #[test]
    fn sdk_query_is_read() {
        let p = parse(
            "encoding=linear16&sample_rate=16000&channels=2&multichannel=true&model=nova-2\
             &interim_results=true&vad_events=true&utterance_end_ms=1000&endpointing=300\
             &smart_format=true&tag=t1",
        )
        .unwrap();

        assert_eq!((p.sample_rate, p.channels, p.streams()), (16_000, 2, 2));
        assert_eq!(
            (p.endpointing_ms, p.utterance_end_ms),
            (Some(300), Some(1_000))
        );
        assert!(p.interim_results && p.vad_events && p.format.punctuate);
        assert_eq!((p.model.as_str(), p.tag.as_str()), ("nova-2", "t1"));
    }

    #[test]
    fn defaults_and_switches() {
        let base = "encoding=linear16&sample_rate=8000";
        let p = parse(base).unwrap();
        assert_eq!(
            (p.endpointing_ms, p.channels, p.streams()),
            (Some(10), 1, 1)
        );
        assert!(!p.interim_results && !p.vad_events && !p.format.punctuate);
        let off = parse(&format!("{base}&endpointing=false&utterance_end_ms=1000"));
        let off = off.unwrap();
        assert_eq!(off.endpointing_ms, None);
        assert_eq!(off.utterance_end_ms, None, "needs interim_results");
    }

    #[test]
    fn g711_expands_as_the_standard_tables() {
        assert_eq!(ulaw(0xFF), 0);
        assert_eq!((ulaw(0x80), ulaw(0x00)), (32_124, -32_124));
        assert_eq!((alaw(0xD5), alaw(0x55)), (8, -8));
        assert_eq!((alaw(0xAA), alaw(0x2A)), (32_256, -32_256));
        let p = parse("encoding=mulaw&sample_rate=8000").unwrap();
        assert_eq!(
            (p.encoding, p.encoding.bytes_per_sample()),
            (Encoding::Mulaw, 1)
        );
        assert_eq!(Encoding::Linear16.decode(&[0x34, 0x12]), 0x1234);
    }

    #[test]
    fn bad_values_are_refused() {
        let cases = [
            ("sample_rate=16000", ParamError::NoEncoding),
            (
                "encoding=wav&sample_rate=16000",
                ParamError::UnknownEncoding("wav".into()),
            ),
            (
                "encoding=opus&sample_rate=48000",
                ParamError::UndecodedEncoding("opus".into()),
            ),
            ("encoding=linear16", ParamError::NoSampleRate),
        ];
        for (q, want) in cases {
            assert_eq!(parse(q).err(), Some(want), "{q}");
        }
        for q in [
            "sample_rate=16k",
            "sample_rate=4000",
            "sample_rate=16000&channels=0",
            "sample_rate=16000&endpointing=soon",
            "sample_rate=16000&interim_results=yes",
        ] {
            let err = parse(&format!("encoding=linear16&{q}")).err();
            assert!(
                matches!(err, Some(ParamError::Invalid { .. })),
                "{q}: {err:?}"
            );
        }
    }
}
