use frontdesk_actors::provider::room::{Segment, TurnMetrics};

use super::*;

fn names() -> Names {
    Names {
        agent_identity: "agent-AJ_1".into(),
        agent_sid: "PA_agent".into(),
        agent_track: "TR_agent".into(),
        caller: Some(("caller-x".into(), "TR_caller".into())),
    }
}

fn seg(speaker: Speaker, id: &str, text: &str) -> RoomData {
    RoomData::Transcript(Segment {
        speaker,
        id: id.into(),
        text: text.into(),
        is_final: true,
    })
}

fn decode(bytes: &[u8]) -> proto::DataPacket {
    proto::DataPacket::decode(bytes).unwrap()
}

#[test]
fn segments_name_the_speaker_and_their_track() {
    for (speaker, identity, track) in [
        (Speaker::Caller, "caller-x", "TR_caller"),
        (Speaker::Agent, "agent-AJ_1", "TR_agent"),
    ] {
        let bytes = encode(
            &seg(speaker, "turn-3-x", "Tuesday at ten"),
            &names(),
            true,
            7,
        )
        .unwrap();
        let p = decode(&bytes);
        assert_eq!(p.sequence, 7);
        assert_eq!(p.participant_identity, "agent-AJ_1");
        let Some(proto::data_packet::Value::Transcription(t)) = p.value else {
            panic!("not a transcription: {p:?}");
        };
        assert_eq!(t.transcribed_participant_identity, identity);
        assert_eq!(t.track_id, track);
        assert_eq!(t.segments.len(), 1);
        let s = &t.segments[0];
        assert_eq!(
            (s.id.as_str(), s.text.as_str(), s.r#final),
            ("turn-3-x", "Tuesday at ten", true)
        );
    }
}

#[test]
fn transcripts_off_or_an_unknown_caller_send_nothing_but_turns_still_go() {
    let caller = seg(Speaker::Caller, "turn-1-caller", "hello");
    assert!(encode(&caller, &names(), false, 1).is_none());
    let unknown = Names {
        caller: None,
        ..names()
    };
    assert!(encode(&caller, &unknown, true, 1).is_none());
    assert!(encode(&seg(Speaker::Agent, "a", "hi"), &unknown, true, 1).is_some());
    let turn = RoomData::Turn(TurnMetrics {
        turn: 2,
        latency_ms: Some(812.5),
        llm_ttft_ms: None,
        tts_ttfb_ms: Some(120.0),
        interrupted: true,
    });
    let p = decode(&encode(&turn, &names(), false, 3).unwrap());
    let Some(proto::data_packet::Value::User(u)) = p.value else {
        panic!("not a user packet: {p:?}");
    };
    assert_eq!(u.topic.as_deref(), Some(TURN_TOPIC));
    let json: serde_json::Value = serde_json::from_slice(&u.payload).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"turn": 2, "latency_ms": 812.5, "llm_ttft_ms": null, "tts_ttfb_ms": 120.0, "interrupted": true})
    );
}
