//! The store conformance suite: one set of checks every `Store` must pass (the in-memory store,
//! PostgreSQL, SQLite), so the agent behaves the same on each. A store under test is made fresh for
//! each check, holding the seed hospital, with "now" pinned to Monday 2030-01-07 08:00 UTC.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::store::{
    AppointmentStatus, BookingRequest, Clock, NewPatient, PatientQuery, RecordKind, RecordOp, Slot,
    Store, StoreError,
};

type Time = DateTime<Utc>;

/// Makes fresh stores for the suite.
#[async_trait]
pub trait StoreMaker: Sync {
    /// A new store holding only the seed hospital, reading "now" from `clock`.
    async fn make(&self, clock: Clock) -> Arc<dyn Store>;
}

/// Run every check; panics (with the check's name) on the first failure.
pub async fn run_all(m: &dyn StoreMaker) {
    free_slots_exclude_booked_past_and_off_shift(m).await;
    booking_errors_are_typed(m).await;
    cancel_frees_the_slot_once(m).await;
    reschedule_moves_and_checks(m).await;
    write_records_is_idempotent(m).await;
    find_patient_by_phone_name_and_dob(m).await;
    list_doctors_by_specialty(m).await;
    concurrent_bookings_of_one_slot_have_one_winner(m).await;
    register_patient_once_with_valid_details(m).await;
    concurrent_registrations_of_one_person_create_one(m).await;
}

pub fn at(s: &str) -> Time {
    s.parse().expect("test time")
}
pub fn now() -> Time {
    at("2030-01-07T08:00:00Z")
}
fn pinned() -> Clock {
    Arc::new(now)
}
/// A time on Monday 2030-01-14.
pub fn mon(hhmm: &str) -> Time {
    at(&format!("2030-01-14T{hhmm}:00Z"))
}
pub fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2030, 1, d).expect("test day")
}
pub fn req(doctor_id: i64, start: Time, duration_min: u32) -> BookingRequest {
    BookingRequest {
        patient_id: 1,
        doctor_id,
        start,
        duration_min,
        reason: "checkup".into(),
    }
}
pub fn not_found<T>(what: &'static str, id: i64) -> Result<T, StoreError> {
    Err(StoreError::NotFound { what, id })
}
pub fn invalid<T>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Invalid(_)))
}
pub fn starts(v: &[Slot]) -> Vec<Time> {
    v.iter().map(|x| x.start).collect()
}

pub async fn free_slots_exclude_booked_past_and_off_shift(m: &dyn StoreMaker) {
    let s = m.make(pinned()).await;
    assert_eq!(s.free_slots(1, day(14)).await.expect("slots").len(), 16);
    s.book(&req(1, mon("10:00"), 60)).await.expect("book");
    let slots = s.free_slots(1, day(14)).await.expect("slots");
    assert_eq!(slots.len(), 14);
    assert!(!starts(&slots).contains(&mon("10:00")) && !starts(&slots).contains(&mon("10:30")));
    assert_eq!(
        slots[0].end - slots[0].start,
        chrono::TimeDelta::minutes(30)
    );
    assert_eq!(s.free_slots(2, day(14)).await.expect("slots").len(), 16);
    assert!(s.free_slots(1, day(19)).await.expect("slots").is_empty());
    assert_eq!(s.free_slots(2, day(19)).await.expect("slots").len(), 8);
    let late = m.make(Arc::new(|| at("2030-01-07T12:10:00Z"))).await;
    let today = late.free_slots(1, day(7)).await.expect("slots");
    assert_eq!(
        (today[0].start, today.len()),
        (at("2030-01-07T12:30:00Z"), 9)
    );
    assert_eq!(s.free_slots(99, day(14)).await, not_found("doctor", 99));
}

pub async fn booking_errors_are_typed(m: &dyn StoreMaker) {
    let s = m.make(pinned()).await;
    s.book(&req(1, mon("10:00"), 60)).await.expect("book");
    let past = s.book(&req(1, at("2030-01-07T07:30:00Z"), 30)).await;
    assert_eq!(past, Err(StoreError::PastTime));
    assert_eq!(s.book(&req(1, now(), 30)).await, Err(StoreError::PastTime));
    let stranger = BookingRequest {
        patient_id: 999,
        ..req(1, mon("12:00"), 30)
    };
    assert_eq!(s.book(&stranger).await, not_found("patient", 999));
    assert_eq!(
        s.book(&req(42, mon("12:00"), 30)).await,
        not_found("doctor", 42)
    );
    assert!(invalid(s.book(&req(1, mon("12:00"), 0)).await));
    assert!(invalid(s.book(&req(1, mon("12:00"), 241)).await));
    for outside in [mon("08:30"), mon("16:45"), at("2030-01-13T10:00:00Z")] {
        let r = s.book(&req(1, outside, 30)).await;
        assert_eq!(r, Err(StoreError::OutsideShift), "{outside}");
    }
    assert_eq!(
        s.book(&req(1, mon("10:30"), 30)).await,
        Err(StoreError::SlotTaken)
    );
    assert_eq!(
        s.book(&req(1, mon("09:45"), 30)).await,
        Err(StoreError::SlotTaken)
    );
    assert!(s.book(&req(1, mon("11:00"), 240)).await.is_ok());
    assert!(s.book(&req(2, mon("10:00"), 30)).await.is_ok());
}

pub async fn cancel_frees_the_slot_once(m: &dyn StoreMaker) {
    let s = m.make(pinned()).await;
    let a = s.book(&req(1, mon("10:00"), 30)).await.expect("book");
    let cancelled = s.cancel(a.id).await.expect("cancel");
    assert_eq!(cancelled.status, AppointmentStatus::Cancelled);
    assert!(invalid(s.cancel(a.id).await));
    assert_eq!(s.cancel(77_777).await, not_found("appointment", 77_777));
    assert_eq!(s.free_slots(1, day(14)).await.expect("slots").len(), 16);
    assert!(s.book(&req(1, mon("10:00"), 30)).await.is_ok());
}

pub async fn reschedule_moves_and_checks(m: &dyn StoreMaker) {
    let s = m.make(pinned()).await;
    let a = s.book(&req(1, mon("10:00"), 60)).await.expect("book");
    let b = s.book(&req(1, mon("14:00"), 30)).await.expect("book");
    let moved = s.reschedule(a.id, mon("10:30")).await.expect("move");
    assert_eq!((moved.start, moved.duration_min), (mon("10:30"), 60));
    assert!(s.book(&req(1, mon("10:00"), 30)).await.is_ok());
    let taken = s.reschedule(a.id, mon("13:30")).await;
    assert_eq!(taken, Err(StoreError::SlotTaken));
    let outside = s.reschedule(a.id, mon("16:30")).await;
    assert_eq!(outside, Err(StoreError::OutsideShift));
    let past = s.reschedule(a.id, at("2030-01-06T10:00:00Z")).await;
    assert_eq!(past, Err(StoreError::PastTime));
    let unknown = s.reschedule(99_999, mon("12:00")).await;
    assert_eq!(unknown, not_found("appointment", 99_999));
    s.cancel(b.id).await.expect("cancel");
    assert!(invalid(s.reschedule(b.id, mon("15:00")).await));
    let mine = s.appointments_for(1).await.expect("list");
    let mine: Vec<_> = mine.iter().map(|x| x.start).collect();
    assert_eq!(mine, vec![mon("10:00"), mon("10:30"), mon("14:00")]);
    assert_eq!(s.appointments_for(500).await, not_found("patient", 500));
}

fn op(call: &str, seq: u64, kind: RecordKind) -> RecordOp {
    RecordOp {
        call_id: call.into(),
        seq,
        at: now(),
        kind,
    }
}

fn sample_ops(call: &str) -> Vec<RecordOp> {
    let kinds = [
        RecordKind::CallStarted {
            room: "room-1".into(),
            caller: "+15550100002".into(),
        },
        RecordKind::Turn {
            index: 1,
            transcript: "I'd like to book; DROP TABLE turns;--".into(),
            reply: "Sure.".into(),
            interrupted: false,
            latencies: Default::default(),
        },
        RecordKind::ToolCall {
            name: "find_patient".into(),
            arguments: "{\"phone\":\"+15550100002\"}".into(),
            result: "[]".into(),
            error: None,
            duration_ms: 1.5,
        },
        RecordKind::Usage {
            stt_audio_seconds: 12.5,
            prompt_tokens: 900,
            completion_tokens: 40,
            tts_characters: 120,
            cost_usd: 0.0021,
            cache: crate::cache::CacheSavings {
                tts_hits: 3,
                tts_misses: 1,
                tts_saved_characters: 84,
                llm_hits: 1,
                llm_misses: 2,
                llm_saved_prompt_tokens: 310,
                llm_saved_completion_tokens: 22,
                saved_cost_usd: 0.0009,
            },
        },
        RecordKind::CallEnded {
            reason: "caller_hung_up".into(),
        },
    ];
    (1..).zip(kinds).map(|(seq, k)| op(call, seq, k)).collect()
}

pub async fn write_records_is_idempotent(m: &dyn StoreMaker) {
    let s = m.make(pinned()).await;
    let ops = sample_ops("call-a");
    let mut batch = ops[..3].to_vec();
    batch.push(ops[2].clone()); // a duplicate inside one batch
    s.write_records(&batch).await.expect("write");
    s.write_records(&batch).await.expect("retry"); // a retried batch
    s.write_records(&ops[3..]).await.expect("write");
    s.write_records(&sample_ops("call-b")[..1])
        .await
        .expect("write");
    assert_eq!(s.call_record("call-a").await.expect("read"), ops);
    assert_eq!(s.call_record("call-b").await.expect("read").len(), 1);
    assert!(s.call_record("nobody").await.expect("read").is_empty());
}

pub async fn find_patient_by_phone_name_and_dob(m: &dyn StoreMaker) {
    let s = m.make(pinned()).await;
    let by_phone = |p: &str| PatientQuery {
        phone: Some(p.into()),
        ..Default::default()
    };
    let by_name = |n: &str, dob| PatientQuery {
        name: Some(n.into()),
        date_of_birth: dob,
        phone: None,
    };
    let liam = s
        .find_patient(&by_phone("+1 555-010-0002"))
        .await
        .expect("find");
    assert_eq!(liam.len(), 1);
    assert_eq!((liam[0].id, liam[0].last_name.as_str()), (2, "O'Brien"));
    let dob = Some(liam[0].date_of_birth);
    let again = s.find_patient(&by_name("  liam   o'BRIEN ", dob)).await;
    assert_eq!(again.expect("find"), liam);
    let wrong_dob = NaiveDate::from_ymd_opt(1900, 1, 1);
    let none = s.find_patient(&by_name("Liam O'Brien", wrong_dob)).await;
    assert!(none.expect("find").is_empty());
    for evil in [
        "' OR '1'='1",
        "Robert'); DROP TABLE patients;--",
        "Liam O'Brien' --",
        "%",
        "_",
    ] {
        assert_eq!(
            s.find_patient(&by_name(evil, None)).await,
            Ok(vec![]),
            "{evil}"
        );
        assert_eq!(s.find_patient(&by_phone(evil)).await, Ok(vec![]), "{evil}");
    }
    assert!(invalid(s.find_patient(&PatientQuery::default()).await));
    assert!(invalid(s.find_patient(&by_name("   ", dob)).await));
    // The tables are intact after all that.
    assert_eq!(
        s.find_patient(&by_phone("+15550100002"))
            .await
            .expect("find"),
        liam
    );
}

pub async fn list_doctors_by_specialty(m: &dyn StoreMaker) {
    let s = m.make(pinned()).await;
    assert_eq!(s.list_doctors(None).await.expect("list").len(), 6);
    let cardio = s.list_doctors(Some("CARDIO")).await.expect("list");
    assert_eq!(cardio.iter().map(|d| d.id).collect::<Vec<_>>(), vec![1]);
    assert!(s
        .list_doctors(Some("astrology"))
        .await
        .expect("list")
        .is_empty());
    assert!(s.list_doctors(Some("%")).await.expect("list").is_empty());
    assert_eq!(s.list_doctors(Some("  ")).await.expect("list").len(), 6);
}

/// 100 callers want the same slot at once: exactly one gets it, every other one hears "taken".
pub async fn concurrent_bookings_of_one_slot_have_one_winner(m: &dyn StoreMaker) {
    let s = m.make(pinned()).await;
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let s = Arc::clone(&s);
            let r = BookingRequest {
                patient_id: 1 + i % 20,
                ..req(3, mon("09:00"), 30)
            };
            tokio::spawn(async move { s.book(&r).await })
        })
        .collect();
    let (mut ok, mut taken) = (0, 0);
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => ok += 1,
            Err(StoreError::SlotTaken) => taken += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!((ok, taken), (1, 99));
}

pub fn new_patient(first: &str, last: &str, dob: NaiveDate, phone: &str) -> NewPatient {
    NewPatient {
        first_name: first.into(),
        last_name: last.into(),
        date_of_birth: dob,
        phone: phone.into(),
    }
}

/// A new patient (any script) is registered once, findable and bookable; the same name and birth
/// date again (any case or spacing) returns that record; invalid details are refused, typed.
pub async fn register_patient_once_with_valid_details(m: &dyn StoreMaker) {
    let s = m.make(pinned()).await;
    let dob = NaiveDate::from_ymd_opt(1990, 3, 3).expect("dob");
    let zoe = new_patient(" Zoë ", "Ångström-Łukasiewicz", dob, "+44 20-7946 0958");
    let first = s.register_patient(&zoe).await.expect("register");
    assert!(first.created);
    assert!(first.patient.id > 20, "{first:?}");
    assert_eq!(first.patient.first_name, "Zoë");
    assert_eq!(first.patient.phone, "+442079460958");
    let by_name = PatientQuery {
        name: Some("ZOË ÅNGSTRÖM-ŁUKASIEWICZ".into()),
        date_of_birth: Some(dob),
        phone: None,
    };
    assert_eq!(
        s.find_patient(&by_name).await,
        Ok(vec![first.patient.clone()])
    );
    let again = new_patient("zoë", "  ångström-łukasiewicz", dob, "+15550199999");
    let second = s.register_patient(&again).await.expect("register again");
    assert_eq!((second.created, &second.patient), (false, &first.patient));
    let twin = new_patient("Zoë", "Ångström-Łukasiewicz", day(1), "+442079460958");
    let twin = s.register_patient(&twin).await.expect("another birth date");
    assert!(twin.created && twin.patient.id != first.patient.id);
    let booking = BookingRequest {
        patient_id: first.patient.id,
        ..req(1, mon("09:00"), 30)
    };
    s.book(&booking).await.expect("a new patient can book");
    let future = NaiveDate::from_ymd_opt(2031, 1, 1).expect("date");
    for bad in [
        new_patient("", "Doe", dob, "+15550100000"),
        new_patient("Jane", "   ", dob, "+15550100000"),
        new_patient("R2", "D2", dob, "+15550100000"),
        new_patient("Jane", "Doe; DROP TABLE patients", dob, "+15550100000"),
        new_patient(&"a".repeat(101), "Doe", dob, "+15550100000"),
        new_patient("Jane", "Doe", dob, "12ab34567"),
        new_patient("Jane", "Doe", dob, "12345"),
        new_patient("Jane", "Doe", future, "+15550100000"),
        new_patient(
            "Jane",
            "Doe",
            NaiveDate::from_ymd_opt(1850, 1, 1).expect("d"),
            "5550100",
        ),
    ] {
        assert!(invalid(s.register_patient(&bad).await), "{bad:?}");
    }
    assert_eq!(
        s.find_patient(&PatientQuery {
            phone: Some("+15550100000".into()),
            ..Default::default()
        })
        .await,
        Ok(vec![])
    );
}

/// Twenty registrations of one person at once create one patient; all get its record.
pub async fn concurrent_registrations_of_one_person_create_one(m: &dyn StoreMaker) {
    let s = m.make(pinned()).await;
    let dob = NaiveDate::from_ymd_opt(1985, 7, 9).expect("dob");
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let s = Arc::clone(&s);
            let name = if i % 2 == 0 { "Siobhán" } else { "SIOBHÁN" };
            let p = new_patient(name, "Ní Bhriain", dob, "+353 1 555 0100");
            tokio::spawn(async move { s.register_patient(&p).await })
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    let mut created = 0;
    for t in tasks {
        let r = t.await.expect("task").expect("register");
        ids.insert(r.patient.id);
        created += usize::from(r.created);
    }
    assert_eq!((ids.len(), created), (1, 1));
}
