use std::collections::BTreeSet;

use super::*;
use crate::edge::{DropReason, OverflowPolicy};

/// The README's queue table: the rows between its markers.
fn readme_rows() -> Vec<&'static str> {
    let readme = include_str!("../../README.md");
    let start = "<!-- queues: generated from call::ports::QUEUES, kept equal by a test -->";
    let body = readme
        .split_once(start)
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.split_once("<!-- /queues -->"))
        .map(|(table, _)| table)
        .unwrap_or_default();
    body.lines().filter(|l| l.starts_with("| `")).collect()
}

#[test]
fn the_readme_table_has_exactly_the_rows_of_the_queue_table() {
    let want: Vec<String> = QUEUES.iter().map(readme_row).collect();
    let have = readme_rows();
    let missing: Vec<&String> = want
        .iter()
        .filter(|r| !have.contains(&r.as_str()))
        .collect();
    let extra: Vec<&&str> = have
        .iter()
        .filter(|r| !want.iter().any(|w| w == **r))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "actors/README.md queue table out of date.\nmissing:\n{}\nnot in QUEUES:\n{}",
        missing
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        extra.iter().map(|s| **s).collect::<Vec<_>>().join("\n"),
    );
    assert_eq!(have.len(), QUEUES.len());
}

#[test]
fn queue_names_are_unique_metric_labels() {
    let names: BTreeSet<&str> = QUEUES.iter().map(|q| q.name).collect();
    assert_eq!(names.len(), QUEUES.len(), "duplicate queue name");
    for name in names {
        assert!(
            name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{name}"
        );
        assert_eq!(queue(name).map(|q| q.name), Some(name));
    }
    assert!(queue(crate::provider::room::EDGE_ROOM_DATA).is_some());
}

#[test]
fn every_queue_is_bounded_and_every_dropping_queue_says_where_it_counts() {
    for q in QUEUES {
        if let Bound::Const { value, .. } = q.bound {
            assert!(value > 0, "{}", q.name);
        }
        let drops = !matches!(q.drops, Drops::None);
        // A queue that never waits must drop, and count it.
        if q.overflow != Overflow::Wait {
            assert!(drops, "{} drops without a metric", q.name);
        }
    }
}

#[test]
fn the_call_edges_are_made_from_their_rows() {
    let mut cfg = PipelineConfig::default();
    cfg.edges.room_to_vad_frames = 7;
    cfg.edges.vad_to_stt_frames = 9;
    cfg.edges.tts_to_room_frames = 11;
    let e = ROOM_TO_VAD.edge::<u8>(&cfg).ok();
    let got = e.map(|e| (e.name(), e.capacity(), e.policy()));
    assert_eq!(got, Some(("room_to_vad", 7, OverflowPolicy::DropOldest)));
    let e = VAD_TO_STT.edge::<u8>(&cfg).ok();
    let got = e.map(|e| (e.name(), e.capacity(), e.policy()));
    assert_eq!(got, Some(("vad_to_stt", 9, OverflowPolicy::DropOldest)));
    let e = TTS_TO_ROOM.edge::<u8>(&cfg).ok();
    let got = e.map(|e| (e.name(), e.capacity(), e.policy()));
    assert_eq!(got, Some(("tts_to_room", 11, OverflowPolicy::Wait)));
    for edge in [ROOM_TO_VAD, VAD_TO_STT, TTS_TO_ROOM] {
        assert!(QUEUES.iter().any(|q| q.name == edge.name));
    }
    // Rows whose bound or policy live outside the call are not edges.
    for name in ["cartesia_context", "worker_outbox", "room_data"] {
        let row = queue(name).map(|q| q.edge::<u8>(&cfg).is_err());
        assert_eq!(row, Some(true), "{name}");
    }
}

#[test]
fn seeded_drop_and_depth_series_come_from_the_table() {
    let drops: BTreeSet<(&str, DropReason)> = crate::metrics::edge_drops().collect();
    // The series seeded before the table existed are all still there.
    for old in [
        ("room_to_vad", DropReason::Overflow),
        ("vad_to_stt", DropReason::Overflow),
        ("tts_to_room", DropReason::Flush),
        ("cartesia_context", DropReason::Overflow),
        ("cartesia_cmd", DropReason::Overflow),
        ("worker_outbox", DropReason::Overflow),
    ] {
        assert!(drops.contains(&old), "{old:?}");
    }
    assert!(drops.contains(&("room_data", DropReason::Overflow)));
    let depths: Vec<&str> = crate::metrics::edge_depths().collect();
    assert_eq!(depths, ["cartesia_context", "worker_outbox"]);
}

/// Counts what it receives.
struct Counter(std::sync::Arc<std::sync::atomic::AtomicU32>);

impl ractor::Actor for Counter {
    type Msg = u32;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        _: ractor::ActorRef<u32>,
        _: (),
    ) -> Result<(), ractor::ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _: ractor::ActorRef<u32>,
        n: u32,
        _: &mut (),
    ) -> Result<(), ractor::ActorProcessingErr> {
        self.0.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

#[tokio::test]
async fn a_route_reaches_the_incarnation_the_supervisor_set_and_nothing_else() {
    use std::sync::atomic::{AtomicU32, Ordering};
    let call = CallInfo::new(super::super::CallSpec {
        call_id: "c".into(),
        room: "r".into(),
        caller: "x".into(),
    });
    let route: Route<u32> = Route::new("counter", call);
    let copy = route.clone();
    assert!(!copy.send(1), "no incarnation yet: dropped");
    let (first, second) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let spawn = |n: &Arc<AtomicU32>| ractor::Actor::spawn(None, Counter(Arc::clone(n)), ());
    let Ok((a, ja)) = spawn(&first).await else {
        panic!("spawn")
    };
    route.set(Some(a.clone()));
    assert!(copy.send(2), "a clone sees the route the supervisor set");
    // A restart: the old incarnation goes, the route moves to the new one.
    route.set(None);
    assert!(!copy.send(4));
    let Ok((b, jb)) = spawn(&second).await else {
        panic!("spawn")
    };
    route.set(Some(b.clone()));
    assert!(copy.send(8));
    // Drain: every message sent is handled before the counts are read.
    let _ = a.drain();
    let _ = b.drain();
    let _ = (ja.await, jb.await);
    assert_eq!(first.load(Ordering::Relaxed), 2);
    assert_eq!(second.load(Ordering::Relaxed), 8);
}
