//! `[room]`: how the agent joins LiveKit rooms (the WebRTC transport).

use std::time::Duration;

use serde::Deserialize;

use super::codec::{EncoderSettings, OPUS_RATES};

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoomConfig {
    /// Local UDP addresses for ICE. `0.0.0.0:0` binds every interface but loopback; empty picks
    /// from the server URL (loopback servers get `127.0.0.1:0`).
    pub udp_bind: Vec<String>,
    /// Use the STUN servers LiveKit hands out. Off: the SFU is ICE-lite and learns our address
    /// from our checks, so STUN adds nothing but DNS lookups at every join (TURN is always used).
    pub stun: bool,
    /// Signal connection and JoinResponse.
    pub connect_timeout_ms: u64,
    /// Both peer connections up and the agent's track published, after the JoinResponse.
    pub media_timeout_ms: u64,
    /// Resume, then rejoin, before the call is given up.
    pub reconnect_timeout_ms: u64,
    /// No caller audio in this long after joining (or after the caller's track went away): the
    /// agent says it cannot hear and ends the call.
    pub caller_audio_timeout_ms: u64,
    /// No caller packet for this long: the gap is filled with silence on the audio clock (DTX,
    /// a stalled network), so turn-taking still sees the caller stop.
    pub silence_fill_after_ms: u64,
    /// Caller audio queued towards the call, in decoded packets. Full: the newest is dropped and
    /// counted (the room actor drains it at once into its drop-oldest room→vad edge, so this only
    /// overflows when the call's task is starved).
    pub inbound_queue: usize,
    /// Rate the caller's Opus is decoded to (the pipeline's 16 kHz: no resampler after it).
    pub decode_rate: u32,
    pub opus_bitrate: i32,
    /// 0..10: libopus encoder effort. Measured here (benches/room_media.rs) a 20 ms wideband
    /// voice frame costs ~40 µs at 0, ~100 µs at 2, ~140 µs at 5, ~190 µs at 10: 0 keeps a call
    /// inside its media CPU budget; raise it where quality matters more than density.
    pub opus_complexity: i32,
    /// Discontinuous transmission: silent agent frames are not sent.
    pub dtx: bool,
    /// In-band forward error correction (the caller can rebuild a lost packet from the next).
    pub fec: bool,
    /// A frame the peer connection has not taken within this is dropped (counted), so a stalled
    /// connection never blocks playout.
    pub send_timeout_ms: u64,
    /// Publish both sides' transcript into the room (LiveKit transcription packets) for the
    /// playground and other clients; turn metrics are published either way.
    pub publish_transcripts: bool,
}

impl Default for RoomConfig {
    fn default() -> Self {
        Self {
            udp_bind: vec![],
            stun: false,
            connect_timeout_ms: 10_000,
            media_timeout_ms: 15_000,
            reconnect_timeout_ms: 20_000,
            caller_audio_timeout_ms: 30_000,
            silence_fill_after_ms: 60,
            inbound_queue: 25,
            decode_rate: 16_000,
            opus_bitrate: 32_000,
            opus_complexity: 0,
            dtx: true,
            fec: true,
            send_timeout_ms: 100,
            publish_transcripts: true,
        }
    }
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

impl RoomConfig {
    pub fn connect_timeout(&self) -> Duration {
        ms(self.connect_timeout_ms)
    }
    pub fn media_timeout(&self) -> Duration {
        ms(self.media_timeout_ms)
    }
    pub fn reconnect_timeout(&self) -> Duration {
        ms(self.reconnect_timeout_ms)
    }
    pub fn caller_audio_timeout(&self) -> Duration {
        ms(self.caller_audio_timeout_ms)
    }
    pub fn silence_fill_after(&self) -> Duration {
        ms(self.silence_fill_after_ms)
    }
    pub fn send_timeout(&self) -> Duration {
        ms(self.send_timeout_ms)
    }

    pub fn encoder(&self) -> EncoderSettings {
        EncoderSettings {
            bitrate: self.opus_bitrate,
            complexity: self.opus_complexity,
            dtx: self.dtx,
            fec: self.fec,
        }
    }

    /// The UDP addresses to bind for a server at `url`.
    pub fn udp_addrs(&self, url: &str) -> Vec<String> {
        if !self.udp_bind.is_empty() {
            return self.udp_bind.clone();
        }
        let host = url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        let loopback = host == "localhost"
            || host
                .trim_matches(|c| c == '[' || c == ']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if loopback {
            vec!["127.0.0.1:0".into()]
        } else {
            vec!["0.0.0.0:0".into()]
        }
    }

    /// Every problem, named by its key.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = vec![];
        for (name, v) in [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("media_timeout_ms", self.media_timeout_ms),
            ("reconnect_timeout_ms", self.reconnect_timeout_ms),
            ("caller_audio_timeout_ms", self.caller_audio_timeout_ms),
            ("silence_fill_after_ms", self.silence_fill_after_ms),
            ("send_timeout_ms", self.send_timeout_ms),
        ] {
            if v == 0 {
                errors.push(format!("room.{name} must be positive"));
            }
        }
        if self.inbound_queue == 0 {
            errors.push("room.inbound_queue must be at least 1".into());
        }
        if !OPUS_RATES.contains(&self.decode_rate) {
            errors.push(format!(
                "room.decode_rate: {} is not an Opus rate (8000, 12000, 16000, 24000, 48000)",
                self.decode_rate
            ));
        }
        if !(6_000..=510_000).contains(&self.opus_bitrate) {
            errors.push("room.opus_bitrate must be within 6000..=510000".into());
        }
        if !(0..=10).contains(&self.opus_complexity) {
            errors.push("room.opus_complexity must be within 0..=10".into());
        }
        for a in &self.udp_bind {
            if a.parse::<std::net::SocketAddr>().is_err() {
                errors.push(format!("room.udp_bind: {a:?} is not an ip:port address"));
            }
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_servers_bind_loopback_and_others_every_interface() {
        let c = RoomConfig::default();
        assert_eq!(c.udp_addrs("ws://127.0.0.1:7880"), ["127.0.0.1:0"]);
        assert_eq!(c.udp_addrs("http://localhost:7880"), ["127.0.0.1:0"]);
        assert_eq!(c.udp_addrs("ws://[::1]:7880"), ["127.0.0.1:0"]);
        assert_eq!(c.udp_addrs("wss://x.livekit.cloud"), ["0.0.0.0:0"]);
        let pinned = RoomConfig {
            udp_bind: vec!["10.0.0.5:0".into()],
            ..c
        };
        assert_eq!(pinned.udp_addrs("ws://127.0.0.1:7880"), ["10.0.0.5:0"]);
    }

    #[test]
    fn every_bad_value_is_named() {
        let c = RoomConfig {
            connect_timeout_ms: 0,
            inbound_queue: 0,
            decode_rate: 44_100,
            opus_bitrate: 1,
            opus_complexity: 11,
            udp_bind: vec!["nowhere".into()],
            ..RoomConfig::default()
        };
        let errors = c.validate().join("\n");
        for key in [
            "connect_timeout_ms",
            "inbound_queue",
            "decode_rate",
            "opus_bitrate",
            "opus_complexity",
            "udp_bind",
        ] {
            assert!(errors.contains(key), "{key} not named in:\n{errors}");
        }
        assert!(RoomConfig::default().validate().is_empty());
    }
}
