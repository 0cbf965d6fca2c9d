//! The call's transcript and turn metrics, published into the room (the web playground, any
//! LiveKit client) when the link carries a data queue. Nothing here waits: the queue drops
//! when full (counted), and a link without one publishes nothing.

use crate::call::ports::DialoguePorts;
use crate::provider::room::{RoomData, Segment, Speaker, TurnMetrics};
use crate::store::TurnLatencies;

fn publish(ports: &DialoguePorts, item: RoomData) {
    if let Some(out) = ports.room_data.as_ref() {
        out.publish(item);
    }
}

fn segment(ports: &DialoguePorts, speaker: Speaker, id: String, text: &str, is_final: bool) {
    publish(
        ports,
        RoomData::Transcript(Segment {
            speaker,
            id,
            text: text.to_owned(),
            is_final,
        }),
    );
}

/// A committed caller turn: one final segment with what the caller said.
pub fn caller_turn(ports: &DialoguePorts, turn: u32, text: &str) {
    if !text.trim().is_empty() {
        segment(ports, Speaker::Caller, caller_id(turn), text, true);
    }
}

/// Fixed agent speech (greeting, farewell): a final segment under its reply id.
pub fn agent_said(ports: &DialoguePorts, reply_id: u64, text: &str) {
    if !text.trim().is_empty() {
        let id = format!("reply-{reply_id}-agent");
        segment(ports, Speaker::Agent, id, text, true);
    }
}

/// The reply to the current turn so far, as it goes to TTS: an interim segment that the final
/// one (same id) replaces.
pub fn agent_partial(ports: &DialoguePorts, reply_id: u64) {
    if ports.room_data.is_none() {
        return;
    }
    let so_far = crate::call::shared::lock(&ports.chat).reply_text(reply_id);
    if !so_far.trim().is_empty() {
        segment(
            ports,
            Speaker::Agent,
            agent_id(ports.call.turn()),
            &so_far,
            false,
        );
    }
}

/// An agent reply to a caller turn is over (played out or interrupted): its text as heard (empty
/// when cut off before any audio, closing the interim segment), and the turn's latencies.
pub fn reply_done(
    ports: &DialoguePorts,
    turn: u32,
    reply: &str,
    interrupted: bool,
    latencies: &TurnLatencies,
) {
    segment(ports, Speaker::Agent, agent_id(turn), reply, true);
    let metrics = TurnMetrics {
        turn,
        latency_ms: latencies.turn_latency_ms,
        llm_ttft_ms: latencies.llm_ttft_ms,
        tts_ttfb_ms: latencies.tts_ttfb_ms,
        interrupted,
    };
    publish(ports, RoomData::Turn(metrics));
}

fn caller_id(turn: u32) -> String {
    format!("turn-{turn}-caller")
}

fn agent_id(turn: u32) -> String {
    format!("turn-{turn}-agent")
}
