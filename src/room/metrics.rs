//! Transport metrics (`frontdesk_room_*`). No per-call labels: outcomes and reasons only.

use std::time::Duration;

pub const JOINS: &str = "frontdesk_room_joins_total";
pub const JOIN_SECONDS: &str = "frontdesk_room_join_seconds";
pub const RECONNECTS: &str = "frontdesk_room_reconnects_total";
pub const DISCONNECTS: &str = "frontdesk_room_disconnects_total";
pub const PACKETS_RECEIVED: &str = "frontdesk_room_packets_received_total";
pub const PACKETS_LOST: &str = "frontdesk_room_packets_lost_total";
pub const PACKETS_SENT: &str = "frontdesk_room_packets_sent_total";
pub const CONCEALED_SECONDS: &str = "frontdesk_room_concealed_audio_seconds_total";

/// Edge names of the transport's own queues (in `frontdesk_edge_dropped_items_total`).
pub const EDGE_INBOUND: &str = frontdesk_actors::call::ports::ROOM_LINK_AUDIO.name;
pub const EDGE_OUTBOUND: &str = "room_output";

pub fn describe() {
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_counter!(JOINS, "Room joins by outcome (ok or the failure kind).");
    describe_histogram!(
        JOIN_SECONDS,
        Unit::Seconds,
        "Join to media ready (signal, both peer connections, agent track published)."
    );
    describe_counter!(
        RECONNECTS,
        "Room media recoveries by kind (resume, rejoin) and outcome."
    );
    describe_counter!(DISCONNECTS, "Rooms lost for good, by reason.");
    describe_counter!(PACKETS_RECEIVED, "Caller RTP packets received.");
    describe_counter!(PACKETS_LOST, "Caller RTP packets lost (sequence gaps).");
    describe_counter!(PACKETS_SENT, "Agent RTP packets sent.");
    describe_counter!(
        CONCEALED_SECONDS,
        "Caller audio synthesised for lost packets (FEC or PLC)."
    );
}

pub fn join(outcome: &'static str, took: Duration) {
    metrics::counter!(JOINS, "outcome" => outcome).increment(1);
    if outcome == "ok" {
        metrics::histogram!(JOIN_SECONDS).record(took.as_secs_f64());
    }
}

pub fn reconnect(kind: &'static str, outcome: &'static str) {
    metrics::counter!(RECONNECTS, "kind" => kind, "outcome" => outcome).increment(1);
}

pub fn disconnect(reason: &'static str) {
    metrics::counter!(DISCONNECTS, "reason" => reason).increment(1);
}

pub fn rejected(reason: &'static str) {
    frontdesk_actors::metrics::input_rejected("room", reason);
}
