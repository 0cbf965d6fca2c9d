//! Receive statistics of one RTP stream as RFC 3550 defines them (extended highest sequence
//! number, cumulative loss, interarrival jitter), and the media counters of a whole room link,
//! shared with whoever reports them (`loadtest`, metrics).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::codec::RTP_CLOCK;

/// RFC 3550 appendix A.1/A.8 bookkeeping for one source.
#[derive(Debug, Default)]
pub struct RtpReceiveStats {
    base_seq: Option<u32>,
    /// Extended (cycles << 16 | seq) highest sequence number seen.
    max_ext_seq: u32,
    received: u64,
    /// (arrival, RTP timestamp) of the previous packet, for jitter.
    last: Option<(Instant, u32)>,
    /// Interarrival jitter in RTP timestamp units, scaled by 16 as in the RFC's integer form.
    jitter_q4: u64,
}

impl RtpReceiveStats {
    pub fn on_packet(&mut self, seq: u16, ts: u32, arrival: Instant) {
        self.received += 1;
        match self.base_seq {
            None => {
                self.base_seq = Some(u32::from(seq));
                self.max_ext_seq = u32::from(seq);
            }
            Some(_) => {
                let cycles = self.max_ext_seq & !0xFFFF;
                let prev = (self.max_ext_seq & 0xFFFF) as u16;
                let delta = seq.wrapping_sub(prev) as i16;
                if delta > 0 {
                    let wrapped = seq < prev;
                    let cycles = if wrapped {
                        cycles.wrapping_add(1 << 16)
                    } else {
                        cycles
                    };
                    self.max_ext_seq = cycles | u32::from(seq);
                }
            }
        }
        if let Some((prev_at, prev_ts)) = self.last {
            let arrival_ticks =
                arrival.duration_since(prev_at).as_secs_f64() * f64::from(RTP_CLOCK);
            let sent_ticks = f64::from(ts.wrapping_sub(prev_ts) as i32);
            let d = (arrival_ticks - sent_ticks).abs() as u64;
            // J += (|D| - J) / 16, kept ×16 to stay in integers.
            self.jitter_q4 = (self.jitter_q4 + d).saturating_sub((self.jitter_q4 + 8) >> 4);
        }
        self.last = Some((arrival, ts));
    }

    pub fn received(&self) -> u64 {
        self.received
    }

    /// Packets expected from the sequence numbers seen so far.
    pub fn expected(&self) -> u64 {
        match self.base_seq {
            None => 0,
            Some(base) => u64::from(self.max_ext_seq.wrapping_sub(base)) + 1,
        }
    }

    /// Cumulative packets lost (never negative: duplicates do not count as negative loss).
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }

    /// Interarrival jitter.
    pub fn jitter(&self) -> Duration {
        Duration::from_secs_f64((self.jitter_q4 >> 4) as f64 / f64::from(RTP_CLOCK))
    }
}

/// Media counters of one joined room (both directions), readable while the call runs.
#[derive(Debug, Default)]
pub struct LinkStats {
    pub packets_received: AtomicU64,
    pub packets_lost: AtomicU64,
    pub packets_late: AtomicU64,
    pub packets_corrupt: AtomicU64,
    /// Interarrival jitter of the caller's stream, microseconds (latest).
    pub jitter_us: AtomicU64,
    pub samples_decoded: AtomicU64,
    pub samples_concealed: AtomicU64,
    pub samples_silence: AtomicU64,
    pub frames_dropped: AtomicU64,
    pub packets_sent: AtomicU64,
    pub frames_dtx: AtomicU64,
    pub frames_send_dropped: AtomicU64,
}

impl LinkStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// A copy of every counter.
    pub fn snapshot(&self) -> LinkSnapshot {
        let g = Self::get;
        LinkSnapshot {
            packets_received: g(&self.packets_received),
            packets_lost: g(&self.packets_lost),
            packets_late: g(&self.packets_late),
            packets_corrupt: g(&self.packets_corrupt),
            jitter_us: g(&self.jitter_us),
            samples_decoded: g(&self.samples_decoded),
            samples_concealed: g(&self.samples_concealed),
            samples_silence: g(&self.samples_silence),
            frames_dropped: g(&self.frames_dropped),
            packets_sent: g(&self.packets_sent),
            frames_dtx: g(&self.frames_dtx),
            frames_send_dropped: g(&self.frames_send_dropped),
        }
    }
}

/// [`LinkStats`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LinkSnapshot {
    pub packets_received: u64,
    pub packets_lost: u64,
    pub packets_late: u64,
    pub packets_corrupt: u64,
    pub jitter_us: u64,
    pub samples_decoded: u64,
    pub samples_concealed: u64,
    pub samples_silence: u64,
    pub frames_dropped: u64,
    pub packets_sent: u64,
    pub frames_dtx: u64,
    pub frames_send_dropped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_counts_gaps_across_a_wrap() {
        let mut s = RtpReceiveStats::default();
        let t = Instant::now();
        for seq in [65_533u16, 65_534, 1, 2] {
            s.on_packet(seq, 0, t);
        }
        // 65533, 65534, 65535, 0, 1, 2 expected; 65535 and 0 missing.
        assert_eq!(s.expected(), 6);
        assert_eq!(s.lost(), 2);
    }

    #[test]
    fn late_and_duplicate_packets_do_not_go_negative() {
        let mut s = RtpReceiveStats::default();
        let t = Instant::now();
        for seq in [10u16, 12, 11, 11, 12] {
            s.on_packet(seq, 0, t);
        }
        assert_eq!(s.expected(), 3);
        assert_eq!(s.lost(), 0);
    }

    #[test]
    fn jitter_grows_with_irregular_arrival_and_stays_zero_when_paced() {
        let t0 = Instant::now();
        let mut paced = RtpReceiveStats::default();
        let mut jittery = RtpReceiveStats::default();
        for i in 0..100u32 {
            let ts = i * 960;
            paced.on_packet(i as u16, ts, t0 + Duration::from_millis(u64::from(i) * 20));
            let wobble = if i % 2 == 0 { 0 } else { 15 };
            let at = t0 + Duration::from_millis(u64::from(i) * 20 + wobble);
            jittery.on_packet(i as u16, ts, at);
        }
        assert!(
            paced.jitter() < Duration::from_micros(100),
            "{:?}",
            paced.jitter()
        );
        assert!(
            jittery.jitter() > Duration::from_millis(5),
            "{:?}",
            jittery.jitter()
        );
    }
}
