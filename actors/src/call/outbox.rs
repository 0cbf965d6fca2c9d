//! The call record's outbox: writes queued by the call and not yet acknowledged by the store. The
//! supervisor owns it, so nothing queued is lost when the DB gateway restarts.

use std::collections::VecDeque;

use chrono::Utc;

use crate::store::{RecordKind, RecordOp};

/// Records kept while the database is unreachable; beyond this the oldest are dropped (counted).
pub const OUTBOX_CAPACITY: usize = 4_096;
/// `reason` of a record dropped from a full outbox.
pub const OUTBOX_FULL: &str = "outbox_full";

/// Call-record writes not yet acknowledged by the store.
#[derive(Debug)]
pub struct Outbox {
    call_id: String,
    next_seq: u64,
    ops: VecDeque<RecordOp>,
    dropped: u64,
}

impl Outbox {
    pub fn new(call_id: String) -> Self {
        Self {
            call_id,
            next_seq: 0,
            ops: VecDeque::new(),
            dropped: 0,
        }
    }

    pub fn push(&mut self, kind: RecordKind) {
        if self.ops.len() >= OUTBOX_CAPACITY {
            self.ops.pop_front();
            self.dropped += 1;
            metrics::counter!(crate::metrics::RECORD_DROPPED, "reason" => OUTBOX_FULL).increment(1);
        }
        self.next_seq += 1;
        self.ops.push_back(RecordOp {
            call_id: self.call_id.clone(),
            seq: self.next_seq,
            at: Utc::now(),
            kind,
        });
    }

    /// The oldest pending ops (they stay queued until `ack`).
    pub fn batch(&self, max: usize) -> Vec<RecordOp> {
        self.ops.iter().take(max).cloned().collect()
    }

    /// The store applied ops up to and including `seq`.
    pub fn ack(&mut self, seq: u64) {
        while self.ops.front().is_some_and(|op| op.seq <= seq) {
            self.ops.pop_front();
        }
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}
