//! What a call publishes into the room through `RoomLink::data`: the greeting, the caller's
//! committed turn, the agent's reply (interim while it is handed to TTS, final once played) and
//! the turn's metrics, in that order, on paused tokio time with in-process doubles.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use frontdesk_actors::call::{spawn_call, CallDeps, CallSpec};
use frontdesk_actors::doubles::*;
use frontdesk_actors::provider::room::{RoomData, RoomDataOut, Speaker};
use frontdesk_actors::store::Store;

const S: fn(u64) -> Duration = Duration::from_millis;
const GREETING: &str = "Front desk, how can I help?";

#[tokio::test(start_paused = true)]
async fn a_turn_publishes_both_sides_and_its_metrics_in_order() {
    let mut cfg = quiet_config();
    cfg.dialogue.greeting = GREETING.into();
    let p = Providers::fast();
    let deps = CallDeps {
        stt: p.stt,
        llm: p.llm,
        tts: p.tts,
        store: Arc::new(MemoryStore::seeded()) as Arc<dyn Store>,
        observer: Arc::new(Recorder::default()) as _,
        prices: Default::default(),
    };
    let (end, mut link) = LoopbackRoom::pair(64);
    let (out, mut rx) = RoomDataOut::channel(64);
    link.data = Some(out);
    let spec = CallSpec {
        call_id: "call-data".into(),
        room: "room-data".into(),
        caller: "caller".into(),
    };
    let call = spawn_call(spec, cfg, deps, link).await.unwrap();
    let mut caller = Caller::new(end);
    assert!(caller.wait_for_reply(S(10_000), S(600)).await, "greeting");
    caller.speak(S(1_000)).await;
    assert!(caller.wait_for_reply(S(10_000), S(600)).await, "reply");
    caller.hang_up().await;
    call.wait().await.unwrap();

    let mut items = vec![];
    while let Ok(item) = rx.try_recv() {
        items.push(item);
    }
    let segments: Vec<_> = items
        .iter()
        .filter_map(|i| match i {
            RoomData::Transcript(s) => Some(s.clone()),
            RoomData::Turn(_) => None,
        })
        .collect();
    let pos = |f: &dyn Fn(&RoomData) -> bool| items.iter().position(f);

    let greeting = &segments[0];
    assert_eq!(
        (greeting.speaker, greeting.text.as_str(), greeting.is_final),
        (Speaker::Agent, GREETING, true),
        "{segments:?}"
    );
    assert!(greeting.id.starts_with("reply-"), "{greeting:?}");

    let caller_at = pos(&|i| matches!(i, RoomData::Transcript(s) if s.id == "turn-1-caller"))
        .unwrap_or_else(|| panic!("no caller segment: {segments:?}"));
    let RoomData::Transcript(said) = &items[caller_at] else {
        unreachable!()
    };
    assert_eq!(said.speaker, Speaker::Caller);
    assert!(said.is_final && said.text.starts_with("heard"), "{said:?}");

    let interim_at =
        pos(&|i| matches!(i, RoomData::Transcript(s) if s.id == "turn-1-agent" && !s.is_final))
            .unwrap_or_else(|| panic!("no interim reply: {segments:?}"));
    let final_at =
        pos(&|i| matches!(i, RoomData::Transcript(s) if s.id == "turn-1-agent" && s.is_final))
            .unwrap_or_else(|| panic!("no final reply: {segments:?}"));
    let RoomData::Transcript(reply) = &items[final_at] else {
        unreachable!()
    };
    assert_eq!(reply.speaker, Speaker::Agent);
    assert!(!reply.text.trim().is_empty(), "{reply:?}");

    let turn_at = pos(&|i| matches!(i, RoomData::Turn(_)))
        .unwrap_or_else(|| panic!("no turn metrics: {items:?}"));
    let RoomData::Turn(metrics) = &items[turn_at] else {
        unreachable!()
    };
    assert_eq!(metrics.turn, 1);
    assert!(!metrics.interrupted);
    assert!(metrics.latency_ms.is_some_and(|ms| ms > 0.0), "{metrics:?}");
    assert!(
        caller_at < interim_at && interim_at < final_at && final_at < turn_at,
        "order: caller {caller_at}, interim {interim_at}, final {final_at}, turn {turn_at}"
    );
    assert_eq!(
        items
            .iter()
            .filter(|i| matches!(i, RoomData::Turn(_)))
            .count(),
        1,
        "one metrics packet per reply"
    );
}
