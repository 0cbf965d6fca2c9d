use proptest::prelude::*;

use super::*;

fn audio(sid: &str, muted: bool) -> proto::TrackInfo {
    proto::TrackInfo {
        sid: sid.into(),
        r#type: proto::TrackType::Audio as i32,
        muted,
        ..Default::default()
    }
}

fn video(sid: &str) -> proto::TrackInfo {
    proto::TrackInfo {
        sid: sid.into(),
        r#type: proto::TrackType::Video as i32,
        ..Default::default()
    }
}

fn p(
    sid: &str,
    identity: &str,
    version: u32,
    tracks: Vec<proto::TrackInfo>,
) -> proto::ParticipantInfo {
    proto::ParticipantInfo {
        sid: sid.into(),
        identity: identity.into(),
        state: State::Active as i32,
        version,
        tracks,
        ..Default::default()
    }
}

fn gone(mut info: proto::ParticipantInfo) -> proto::ParticipantInfo {
    info.state = State::Disconnected as i32;
    info
}

fn sub(psid: &str, tsid: &str) -> Change {
    Change::Subscribe {
        participant_sid: psid.into(),
        track_sid: tsid.into(),
    }
}

#[test]
fn the_first_participant_publishing_audio_becomes_the_caller() {
    let mut r = Roster::new(Party::Caller, None);
    assert_eq!(r.reset("PA_me", &[p("PA_a", "alice", 1, vec![])]), vec![]);
    let changes = r.apply(&[p(
        "PA_a",
        "alice",
        2,
        vec![video("TR_v"), audio("TR_a", false)],
    )]);
    assert_eq!(
        changes,
        vec![
            Change::CallerJoined {
                identity: "alice".into()
            },
            sub("PA_a", "TR_a")
        ]
    );
    assert!(r.is_caller_track("TR_a"));
    assert!(!r.is_caller_track("TR_v"));
    // Someone else publishing later changes nothing: the caller stays.
    assert_eq!(
        r.apply(&[p("PA_b", "bob", 1, vec![audio("TR_b", false)])]),
        vec![]
    );
    assert!(!r.is_caller_track("TR_b"));
}

#[test]
fn the_participant_the_job_names_is_the_caller_even_before_publishing() {
    let mut r = Roster::new(Party::Caller, Some("sip-caller".into()));
    let changes = r.reset(
        "PA_me",
        &[
            p("PA_x", "someone", 1, vec![audio("TR_x", false)]),
            p("PA_s", "sip-caller", 1, vec![]),
        ],
    );
    assert_eq!(
        changes,
        vec![Change::CallerJoined {
            identity: "sip-caller".into()
        }]
    );
    let changes = r.apply(&[p("PA_s", "sip-caller", 2, vec![audio("TR_s", false)])]);
    assert_eq!(changes, vec![sub("PA_s", "TR_s")]);
}

#[test]
fn ourselves_and_other_agents_are_never_the_caller() {
    let mut r = Roster::new(Party::Caller, None);
    let mut other_agent = p("PA_ag", "agent-2", 1, vec![audio("TR_ag", false)]);
    other_agent.kind = Kind::Agent as i32;
    let changes = r.reset(
        "PA_me",
        &[
            p("PA_me", "me", 1, vec![audio("TR_me", false)]),
            other_agent,
        ],
    );
    assert_eq!(changes, vec![]);
}

#[test]
fn on_the_callers_side_the_party_is_the_agent() {
    let mut r = Roster::new(Party::Agent, None);
    let mut agent = p("PA_ag", "agent-AJ_1", 1, vec![audio("TR_ag", false)]);
    agent.kind = Kind::Agent as i32;
    let other_caller = p("PA_c", "caller-2", 1, vec![audio("TR_c", false)]);
    let changes = r.reset("PA_me", &[other_caller, agent]);
    assert_eq!(
        changes,
        vec![
            Change::CallerJoined {
                identity: "agent-AJ_1".into()
            },
            sub("PA_ag", "TR_ag")
        ]
    );
}

#[test]
fn mute_unpublish_and_leave_reach_the_call() {
    let mut r = Roster::new(Party::Caller, None);
    r.reset(
        "PA_me",
        &[p("PA_a", "alice", 1, vec![audio("TR_a", false)])],
    );
    let muted = r.apply(&[p("PA_a", "alice", 2, vec![audio("TR_a", true)])]);
    assert_eq!(muted, vec![Change::CallerMuted { muted: true }]);
    let unmuted = r.apply(&[p("PA_a", "alice", 3, vec![audio("TR_a", false)])]);
    assert_eq!(unmuted, vec![Change::CallerMuted { muted: false }]);
    let unpublished = r.apply(&[p("PA_a", "alice", 4, vec![])]);
    assert_eq!(
        unpublished,
        vec![Change::CallerUnpublished {
            identity: "alice".into()
        }]
    );
    assert!(!r.caller_has_audio());
    assert!(r.subscribed().is_empty());
    let republished = r.apply(&[p("PA_a", "alice", 5, vec![audio("TR_a2", false)])]);
    assert_eq!(republished, vec![sub("PA_a", "TR_a2")]);
    let left = r.apply(&[gone(p("PA_a", "alice", 6, vec![]))]);
    assert_eq!(
        left,
        vec![Change::CallerLeft {
            identity: "alice".into()
        }]
    );
}

#[test]
fn an_older_snapshot_does_not_undo_a_newer_one() {
    let mut r = Roster::new(Party::Caller, None);
    r.reset("PA_me", &[p("PA_a", "alice", 5, vec![audio("TR_a", true)])]);
    assert_eq!(
        r.apply(&[p("PA_a", "alice", 4, vec![audio("TR_a", false)])]),
        vec![]
    );
}

#[test]
fn after_a_rejoin_the_same_caller_is_subscribed_again_under_new_sids() {
    let mut r = Roster::new(Party::Caller, None);
    r.reset(
        "PA_me",
        &[p("PA_a", "alice", 1, vec![audio("TR_a", false)])],
    );
    // The server restarted: new sids for everyone, the caller not back yet.
    assert_eq!(r.reset("PA_me2", &[]), vec![]);
    let back = r.apply(&[p("PA_a2", "alice", 1, vec![audio("TR_a9", false)])]);
    assert_eq!(back, vec![sub("PA_a2", "TR_a9")]);
    // A stranger who joined meanwhile is not taken for the caller.
    assert_eq!(
        r.apply(&[p("PA_z", "zed", 1, vec![audio("TR_z", false)])]),
        vec![]
    );
}

fn arb_info() -> impl Strategy<Value = proto::ParticipantInfo> {
    (
        0..4u8,
        0..4u8,
        0..6u32,
        proptest::collection::vec((0..5u8, any::<bool>(), any::<bool>()), 0..3),
        0..4i32,
        0..5i32,
    )
        .prop_map(
            |(s, id, version, tracks, state, kind)| proto::ParticipantInfo {
                sid: format!("PA_{s}"),
                identity: format!("user-{id}"),
                version,
                state,
                kind,
                tracks: tracks
                    .into_iter()
                    .map(|(t, is_audio, muted)| proto::TrackInfo {
                        sid: format!("TR_{s}_{t}"),
                        r#type: if is_audio {
                            proto::TrackType::Audio
                        } else {
                            proto::TrackType::Video
                        } as i32,
                        muted,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            },
        )
}

proptest! {
    /// Whatever the server sends, in any order: at most one caller ever joins, a subscription is
    /// only ever for an audio track of the caller, and a track is never subscribed twice while
    /// it stays published.
    #[test]
    fn any_update_sequence_keeps_the_roster_consistent(
        wanted in proptest::option::of(0..4u8),
        updates in proptest::collection::vec(proptest::collection::vec(arb_info(), 0..4), 0..12),
    ) {
        let mut r = Roster::new(Party::Caller, wanted.map(|w| format!("user-{w}")));
        r.reset("PA_0", &[]);
        let mut joined = 0;
        for info in updates.into_iter().flatten() {
            for change in r.apply(std::slice::from_ref(&info)) {
                match change {
                    Change::CallerJoined { identity } => {
                        joined += 1;
                        if let Some(w) = wanted {
                            prop_assert_eq!(identity, format!("user-{w}"));
                        }
                    }
                    Change::Subscribe { track_sid, .. } => {
                        prop_assert!(r.is_caller_track(&track_sid));
                    }
                    _ => {}
                }
            }
            let subs = r.subscribed();
            let mut dedup = subs.to_vec();
            dedup.sort();
            dedup.dedup();
            prop_assert_eq!(dedup.len(), subs.len());
        }
        prop_assert!(joined <= 1);
    }
}
