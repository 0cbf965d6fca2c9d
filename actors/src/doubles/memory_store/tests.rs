#![allow(clippy::unwrap_used)]
use super::*;
use crate::store::RecordKind;

fn at(s: &str) -> Time {
    s.parse().unwrap()
}
/// The pinned clock: Monday 2030-01-07 08:00 UTC.
fn now() -> Time {
    at("2030-01-07T08:00:00Z")
}
/// A time on the following Monday, 2030-01-14.
fn mon(hhmm: &str) -> Time {
    at(&format!("2030-01-14T{hhmm}:00Z"))
}
fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2030, 1, d).unwrap()
}
fn store() -> MemoryStore {
    MemoryStore::seeded().with_clock(now)
}
fn req(doctor_id: i64, start: Time, duration_min: u32) -> BookingRequest {
    BookingRequest {
        patient_id: 1,
        doctor_id,
        start,
        duration_min,
        reason: "checkup".into(),
    }
}
fn not_found<T>(what: &'static str, id: i64) -> Result<T, StoreError> {
    Err(StoreError::NotFound { what, id })
}
fn invalid<T>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Invalid(_)))
}
fn starts(v: &[Slot]) -> Vec<Time> {
    v.iter().map(|x| x.start).collect()
}

#[tokio::test]
async fn free_slots_exclude_booked_past_and_off_shift() {
    let s = store();
    assert_eq!(s.free_slots(1, day(14)).await.unwrap().len(), 16);
    s.book(&req(1, mon("10:00"), 60)).await.unwrap();
    let slots = s.free_slots(1, day(14)).await.unwrap();
    assert_eq!(slots.len(), 14);
    assert!(!starts(&slots).contains(&mon("10:00")) && !starts(&slots).contains(&mon("10:30")));
    assert_eq!(slots[0].end - slots[0].start, TimeDelta::minutes(30));
    // Another doctor is unaffected; Saturday only for doctors with a Saturday shift.
    assert_eq!(s.free_slots(2, day(14)).await.unwrap().len(), 16);
    assert!(s.free_slots(1, day(19)).await.unwrap().is_empty());
    assert_eq!(s.free_slots(2, day(19)).await.unwrap().len(), 8);
    // Today at 12:10: only slots starting after now.
    let late = MemoryStore::seeded().with_clock(|| at("2030-01-07T12:10:00Z"));
    let today = late.free_slots(1, day(7)).await.unwrap();
    assert_eq!(
        (today[0].start, today.len()),
        (at("2030-01-07T12:30:00Z"), 9)
    );
    assert_eq!(s.free_slots(99, day(14)).await, not_found("doctor", 99));
}

#[tokio::test]
async fn booking_errors_are_typed() {
    let s = store();
    s.book(&req(1, mon("10:00"), 60)).await.unwrap();
    assert_eq!(
        s.book(&req(1, at("2030-01-07T07:30:00Z"), 30)).await,
        Err(StoreError::PastTime)
    );
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
        assert_eq!(
            s.book(&req(1, outside, 30)).await,
            Err(StoreError::OutsideShift),
            "{outside}"
        );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_bookings_of_one_slot_have_one_winner() {
    let s = Arc::new(store());
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
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::SlotTaken) => taken += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!((ok, taken), (1, 99));
}

#[tokio::test]
async fn cancel_frees_the_slot_once() {
    let s = store();
    let a = s.book(&req(1, mon("10:00"), 30)).await.unwrap();
    assert_eq!(
        s.cancel(a.id).await.unwrap().status,
        AppointmentStatus::Cancelled
    );
    assert!(invalid(s.cancel(a.id).await));
    assert_eq!(s.cancel(77).await, not_found("appointment", 77));
    assert_eq!(s.free_slots(1, day(14)).await.unwrap().len(), 16);
    assert!(s.book(&req(1, mon("10:00"), 30)).await.is_ok());
}

#[tokio::test]
async fn reschedule_moves_and_checks() {
    let s = store();
    let a = s.book(&req(1, mon("10:00"), 60)).await.unwrap();
    let b = s.book(&req(1, mon("14:00"), 30)).await.unwrap();
    // Overlapping its own old slot is fine; the duration is kept.
    let moved = s.reschedule(a.id, mon("10:30")).await.unwrap();
    assert_eq!((moved.start, moved.duration_min), (mon("10:30"), 60));
    assert!(s.book(&req(1, mon("10:00"), 30)).await.is_ok());
    assert_eq!(
        s.reschedule(a.id, mon("13:30")).await,
        Err(StoreError::SlotTaken)
    );
    assert_eq!(
        s.reschedule(a.id, mon("16:30")).await,
        Err(StoreError::OutsideShift)
    );
    assert_eq!(
        s.reschedule(a.id, at("2030-01-06T10:00:00Z")).await,
        Err(StoreError::PastTime)
    );
    assert_eq!(
        s.reschedule(99, mon("12:00")).await,
        not_found("appointment", 99)
    );
    s.cancel(b.id).await.unwrap();
    assert!(invalid(s.reschedule(b.id, mon("15:00")).await));
    let mine: Vec<_> = s
        .appointments_for(1)
        .await
        .unwrap()
        .iter()
        .map(|x| x.start)
        .collect();
    assert_eq!(mine, vec![mon("10:00"), mon("10:30"), mon("14:00")]);
    assert_eq!(s.appointments_for(500).await, not_found("patient", 500));
}

#[tokio::test]
async fn write_records_is_idempotent() {
    let s = store();
    let op = |call: &str, seq| RecordOp {
        call_id: call.into(),
        seq,
        at: now(),
        kind: RecordKind::CallEnded {
            reason: "hangup".into(),
        },
    };
    let batch = vec![op("a", 1), op("a", 2), op("a", 2)];
    s.write_records(&batch).await.unwrap();
    s.write_records(&batch).await.unwrap();
    s.write_records(&[op("b", 1), op("a", 3)]).await.unwrap();
    let keys: Vec<_> = s
        .records()
        .iter()
        .map(|r| (r.call_id.clone(), r.seq))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("a".into(), 1),
            ("a".into(), 2),
            ("b".into(), 1),
            ("a".into(), 3)
        ]
    );
}

#[tokio::test]
async fn outage_fails_every_call_then_recovers() {
    let s = store();
    s.set_available(false);
    let down = |e: StoreError| e == StoreError::Unavailable("injected outage".into());
    let q = PatientQuery {
        phone: Some("+15550100001".into()),
        ..Default::default()
    };
    assert!(down(s.find_patient(&q).await.unwrap_err()));
    assert!(down(s.list_doctors(None).await.unwrap_err()));
    assert!(down(s.free_slots(1, day(14)).await.unwrap_err()));
    assert!(down(s.appointments_for(1).await.unwrap_err()));
    assert!(down(s.book(&req(1, mon("10:00"), 30)).await.unwrap_err()));
    assert!(down(s.cancel(1).await.unwrap_err()));
    assert!(down(s.reschedule(1, mon("10:00")).await.unwrap_err()));
    assert!(down(s.write_records(&[]).await.unwrap_err()));
    s.set_available(true);
    assert_eq!(s.find_patient(&q).await.unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn latency_delays_each_call() {
    let s = store();
    s.set_latency(Duration::from_millis(250));
    let t0 = tokio::time::Instant::now();
    s.list_doctors(None).await.unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn find_patient_by_phone_name_and_dob() {
    let s = store();
    let by_phone = |p: &str| PatientQuery {
        phone: Some(p.into()),
        ..Default::default()
    };
    let by_name = |n: &str, dob| PatientQuery {
        name: Some(n.into()),
        date_of_birth: dob,
        phone: None,
    };
    let liam = s.find_patient(&by_phone("+1 555-010-0002")).await.unwrap();
    assert_eq!(liam.len(), 1);
    assert_eq!(liam[0].last_name, "O'Brien");
    let dob = Some(liam[0].date_of_birth);
    assert_eq!(
        s.find_patient(&by_name("  liam   o'BRIEN ", dob))
            .await
            .unwrap(),
        liam
    );
    assert_eq!(
        s.find_patient(&by_name("Liam O'Brien", None))
            .await
            .unwrap(),
        liam
    );
    let wrong_dob = NaiveDate::from_ymd_opt(1900, 1, 1);
    assert!(s
        .find_patient(&by_name("Liam O'Brien", wrong_dob))
        .await
        .unwrap()
        .is_empty());
    // SQL metacharacters are plain text: they match nothing and break nothing.
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
    assert_eq!(s.list_doctors(None).await.unwrap().len(), 6);
}

#[tokio::test]
async fn list_doctors_and_setup_helpers() {
    let s = store();
    let cardio = s.list_doctors(Some("CARDIO")).await.unwrap();
    assert_eq!(cardio.iter().map(|d| d.id).collect::<Vec<_>>(), vec![1]);
    assert!(s.list_doctors(Some("astrology")).await.unwrap().is_empty());
    assert_eq!(s.list_doctors(Some("  ")).await.unwrap().len(), 6);
    let e = MemoryStore::new().with_clock(now);
    let id = e.add_doctor("Dr. New", "Oncology");
    assert!(invalid(e.add_shift(id, Weekday::Mon, hm(12, 0), hm(9, 0))));
    assert_eq!(
        e.add_shift(7, Weekday::Mon, hm(9, 0), hm(12, 0)),
        not_found("doctor", 7)
    );
    e.add_shift(id, Weekday::Mon, hm(9, 15), hm(10, 30))
        .unwrap();
    let slots = e.free_slots(id, day(14)).await.unwrap();
    assert_eq!(starts(&slots), vec![mon("09:15"), mon("09:45")]);
    let p = e.add_patient("Ann", "Lee", day(1), "+15550109999");
    assert!(e
        .book(&BookingRequest {
            patient_id: p,
            ..req(id, mon("09:15"), 75)
        })
        .await
        .is_ok());
}
