//! One context's event queue: the TTS audio buffered ahead of playout. The connection's reader
//! pushes without ever waiting (a wait would stall every other context on the socket), so the
//! bound is enforced by refusing: audio that would take the queue past `context_buffer_ms` of
//! audio (or past `MAX_CHUNKS_PER_SECOND` chunks per second of it) fails the context instead.
//! One slot is always kept for the context's last event (done or an error), so that event never
//! waits either.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use frontdesk_actors::provider::TtsEvent;
use tokio::sync::mpsc;

use super::conn::Event;

/// Metric label of this queue in `frontdesk_edge_depth` (chunks queued, all contexts of the
/// process) and `frontdesk_edge_dropped_items_total` (`overflow`: a context failed for it).
pub(super) const EDGE: &str = frontdesk_actors::call::ports::CARTESIA_CONTEXT.name;
/// Second bound, in chunks: audio chunks are never shorter than 10 ms in practice, so this only
/// matters for a server sending tiny chunks, which would otherwise fill memory with headers.
const MAX_CHUNKS_PER_SECOND: usize = 100;

/// Why audio was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refused {
    /// Over the bound: the consumer is too far behind; the context must fail.
    Overflow,
    /// The consumer is gone (session dropped or cancelled).
    Closed,
}

/// A queue bound in samples (of audio) and chunks.
pub(super) fn context_queue(max_samples: usize, sample_rate: u32) -> (ContextTx, ContextRx) {
    let seconds = max_samples.div_ceil(sample_rate.max(1) as usize).max(1);
    // One of these slots is kept for the last event.
    let (tx, rx) = mpsc::channel(seconds * MAX_CHUNKS_PER_SECOND);
    let queued = Arc::new(AtomicUsize::new(0));
    let depth = metrics::gauge!(frontdesk_actors::metrics::EDGE_DEPTH, "edge" => EDGE);
    let tx = ContextTx {
        tx,
        queued: Arc::clone(&queued),
        max_samples: max_samples.max(1),
        depth: depth.clone(),
    };
    (tx, ContextRx { rx, queued, depth })
}

/// The connection's end of one context's queue.
pub(super) struct ContextTx {
    tx: mpsc::Sender<Event>,
    /// Audio samples in the queue (the consumer subtracts what it takes).
    queued: Arc<AtomicUsize>,
    max_samples: usize,
    depth: metrics::Gauge,
}

impl ContextTx {
    /// Queue audio now or refuse it; never waits.
    pub fn audio(&self, samples: Vec<i16>, sample_rate: u32) -> Result<(), Refused> {
        if self.tx.is_closed() {
            return Err(Refused::Closed);
        }
        let n = samples.len();
        // One free slot must remain for the last event.
        if self.tx.capacity() <= 1 || self.queued.load(Ordering::Acquire) + n > self.max_samples {
            return Err(Refused::Overflow);
        }
        self.queued.fetch_add(n, Ordering::AcqRel);
        let audio = TtsEvent::Audio {
            samples,
            sample_rate,
        };
        match self.tx.try_send(Ok(audio)) {
            Ok(()) => {
                self.depth.increment(1.0);
                Ok(())
            }
            Err(e) => {
                self.queued.fetch_sub(n, Ordering::AcqRel);
                Err(match e {
                    mpsc::error::TrySendError::Full(_) => Refused::Overflow,
                    mpsc::error::TrySendError::Closed(_) => Refused::Closed,
                })
            }
        }
    }

    /// The context's last event; it fits in the kept slot, so it never waits. Ignored if the
    /// consumer is gone.
    pub fn end(self, event: Event) {
        if self.tx.try_send(event).is_ok() {
            self.depth.increment(1.0);
        }
    }
}

/// The session's end of one context's queue.
pub(super) struct ContextRx {
    rx: mpsc::Receiver<Event>,
    queued: Arc<AtomicUsize>,
    depth: metrics::Gauge,
}

impl ContextRx {
    pub async fn recv(&mut self) -> Option<Event> {
        let event = self.rx.recv().await?;
        self.took(&event);
        Some(event)
    }

    fn took(&self, event: &Event) {
        self.depth.decrement(1.0);
        if let Ok(TtsEvent::Audio { samples, .. }) = event {
            self.queued.fetch_sub(samples.len(), Ordering::AcqRel);
        }
    }
}

impl Drop for ContextRx {
    /// A cancelled session leaves audio behind: take it off the depth gauge.
    fn drop(&mut self) {
        self.rx.close();
        while let Ok(event) = self.rx.try_recv() {
            self.took(&event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(msg: &str) -> Event {
        Err(frontdesk_actors::provider::TtsError::Closed(msg.into()))
    }

    #[tokio::test]
    async fn audio_past_the_bound_is_refused_and_the_last_event_still_fits() {
        let (tx, mut rx) = context_queue(1_000, 1_000);
        tx.audio(vec![0; 600], 1_000).unwrap();
        tx.audio(vec![0; 400], 1_000).unwrap();
        assert_eq!(tx.audio(vec![0; 1], 1_000), Err(Refused::Overflow));
        tx.end(err("overflow"));
        let mut got = vec![];
        while let Some(e) = rx.recv().await {
            got.push(e);
        }
        assert_eq!(got.len(), 3, "both chunks, then the error");
        assert!(got[2].is_err());
    }

    #[tokio::test]
    async fn taking_audio_makes_room_again() {
        let (tx, mut rx) = context_queue(1_000, 1_000);
        tx.audio(vec![0; 1_000], 1_000).unwrap();
        assert_eq!(tx.audio(vec![0; 10], 1_000), Err(Refused::Overflow));
        rx.recv().await.unwrap().unwrap();
        tx.audio(vec![0; 1_000], 1_000).unwrap();
    }

    #[tokio::test]
    async fn the_chunk_bound_keeps_a_slot_for_the_end() {
        // 1 s of audio allows 100 chunks: 99 of audio, the last slot kept for the end.
        let (tx, mut rx) = context_queue(1_000, 1_000);
        for _ in 0..MAX_CHUNKS_PER_SECOND - 1 {
            tx.audio(vec![0; 1], 1_000).unwrap();
        }
        assert_eq!(tx.audio(vec![0; 1], 1_000), Err(Refused::Overflow));
        tx.end(err("overflow"));
        let mut n = 0;
        while rx.recv().await.is_some() {
            n += 1;
        }
        assert_eq!(n, MAX_CHUNKS_PER_SECOND);
    }

    #[tokio::test]
    async fn a_dropped_consumer_is_reported_as_closed() {
        let (tx, rx) = context_queue(1_000, 1_000);
        drop(rx);
        assert_eq!(tx.audio(vec![0; 10], 1_000), Err(Refused::Closed));
    }
}
