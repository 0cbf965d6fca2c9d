//! The caller's ear: reads what the agent says (the room link's audio, decoded to 16 kHz in chunks
//! of any size) and its events, and keeps, on the caller's clock, when the agent's speech started
//! (onsets) and when it was last heard. A 20 ms window is speech when its RMS is above the
//! threshold; speech after more than `onset_gap` of quiet is a new onset.

use std::time::Duration;

use frontdesk_actors::audio::AudioFrame;
use frontdesk_actors::provider::RoomEvent;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// What has been heard so far.
#[derive(Clone, Debug, Default)]
pub struct Heard {
    /// Arrival of each onset (the first loud window after quiet).
    pub onsets: Vec<Instant>,
    /// Arrival of the last loud window.
    pub last_loud: Option<Instant>,
    /// Any audio at all arrived (the agent's track is subscribed).
    pub first_audio: Option<Instant>,
    pub windows: u64,
    pub loud_windows: u64,
    /// The agent participant joined.
    pub agent_joined: bool,
    /// Why the link is over from the agent's side (it left, the connection is gone).
    pub ended: Option<String>,
}

impl Heard {
    /// The first onset at or after `t`.
    pub fn onset_after(&self, t: Instant) -> Option<Instant> {
        self.onsets.iter().copied().find(|&o| o >= t)
    }

    /// Whether the agent was loud at any time after `t`.
    pub fn loud_since(&self, t: Instant) -> bool {
        self.last_loud.is_some_and(|l| l >= t)
    }
}

/// How speech is told from silence.
#[derive(Clone, Copy, Debug)]
pub struct EarConfig {
    pub threshold_dbfs: f32,
    pub onset_gap: Duration,
}

/// Listens until both of the link's receivers close or every receiver of the returned watch is
/// dropped (the hang-up). Receivers are woken on onsets, the first audio and events, not on every
/// window.
pub fn spawn(
    audio: mpsc::Receiver<AudioFrame>,
    events: mpsc::Receiver<RoomEvent>,
    cfg: EarConfig,
) -> watch::Receiver<Heard> {
    let (tx, rx) = watch::channel(Heard::default());
    tokio::spawn(listen(audio, events, cfg, tx));
    rx
}

async fn listen(
    mut audio: mpsc::Receiver<AudioFrame>,
    mut events: mpsc::Receiver<RoomEvent>,
    cfg: EarConfig,
    tx: watch::Sender<Heard>,
) {
    let mut windows = Windows::default();
    let (mut audio_open, mut events_open) = (true, true);
    while audio_open || events_open {
        tokio::select! {
            frame = audio.recv(), if audio_open => match frame {
                Some(f) => windows.push(&f, Instant::now(), &cfg, &tx),
                None => audio_open = false,
            },
            ev = events.recv(), if events_open => match ev {
                Some(ev) => on_event(ev, &tx),
                None => events_open = false,
            },
            // The caller hung up: dropping the receivers makes the transport leave the room.
            () = tx.closed() => return,
        }
    }
    tx.send_modify(|h| {
        h.ended.get_or_insert_with(|| "the room link closed".into());
    });
}

fn on_event(ev: RoomEvent, tx: &watch::Sender<Heard>) {
    match ev {
        RoomEvent::ParticipantJoined { .. } => tx.send_modify(|h| h.agent_joined = true),
        RoomEvent::ParticipantLeft { .. } => tx.send_modify(|h| {
            h.ended
                .get_or_insert_with(|| "the agent left the room".into());
        }),
        RoomEvent::Disconnected { reason } => tx.send_modify(|h| {
            h.ended.get_or_insert(format!("disconnected: {reason}"));
        }),
        RoomEvent::Reconnecting { reason } => {
            tracing::debug!(%reason, "loadtest caller reconnecting");
        }
        other => tracing::trace!(event = ?other, "loadtest caller room event"),
    }
}

/// Cuts chunks into 20 ms windows and classifies each.
#[derive(Default)]
struct Windows {
    pending: Vec<i16>,
}

impl Windows {
    fn push(&mut self, f: &AudioFrame, now: Instant, cfg: &EarConfig, tx: &watch::Sender<Heard>) {
        let len = (f.sample_rate / 50).max(1) as usize;
        self.pending.extend_from_slice(&f.samples);
        let whole = self.pending.len() / len * len;
        let levels: Vec<f32> = self.pending[..whole]
            .chunks_exact(len)
            .map(level_dbfs)
            .collect();
        self.pending.drain(..whole);
        tx.send_if_modified(|h| {
            let mut wake = h.first_audio.is_none();
            h.first_audio.get_or_insert(now);
            for db in levels {
                h.windows += 1;
                if db <= cfg.threshold_dbfs {
                    continue;
                }
                h.loud_windows += 1;
                if h.last_loud
                    .is_none_or(|l| now.duration_since(l) > cfg.onset_gap)
                {
                    h.onsets.push(now);
                    wake = true;
                }
                h.last_loud = Some(now);
            }
            wake
        });
    }
}

/// RMS of a window in dBFS (−100 for digital silence).
pub fn level_dbfs(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return -100.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (sum / samples.len() as f64).sqrt();
    if rms < 1.0 {
        return -100.0;
    }
    (20.0 * (rms / 32768.0).log10()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: EarConfig = EarConfig {
        threshold_dbfs: -45.0,
        onset_gap: Duration::from_millis(300),
    };

    fn chunk(amplitude: i16, ms: usize) -> AudioFrame {
        let samples: Vec<i16> = (0..ms * 16)
            .map(|i| if i % 2 == 0 { amplitude } else { -amplitude })
            .collect();
        AudioFrame::new(samples, 16_000, Duration::ZERO)
    }

    #[tokio::test(start_paused = true)]
    async fn onsets_come_after_quiet_and_odd_chunks_are_windowed() {
        let (atx, arx) = mpsc::channel(64);
        let (etx, erx) = mpsc::channel(4);
        let mut heard = spawn(arx, erx, CFG);
        let t0 = Instant::now();
        // 30 ms chunks: windows straddle them.
        for _ in 0..4 {
            atx.send(chunk(3_000, 30)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        for _ in 0..20 {
            atx.send(chunk(0, 20)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let second = Instant::now();
        atx.send(chunk(3_000, 40)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        let h = heard.borrow_and_update().clone();
        assert_eq!(h.onsets.len(), 2, "{h:?}");
        assert_eq!(h.onset_after(t0 + Duration::from_millis(1)), Some(second));
        assert_eq!(h.windows, 6 + 20 + 2);
        assert_eq!(h.loud_windows, 8);
        etx.send(RoomEvent::ParticipantLeft {
            identity: "agent".into(),
        })
        .await
        .unwrap();
        heard.changed().await.unwrap();
        assert!(heard.borrow().ended.is_some());
    }

    #[test]
    fn levels() {
        assert_eq!(level_dbfs(&[0; 320]), -100.0);
        assert!(level_dbfs(&[16_384; 320]) > -7.0);
        assert!(level_dbfs(&[50; 320]) < -45.0);
    }
}
