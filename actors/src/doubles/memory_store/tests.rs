#![allow(clippy::unwrap_used)]
use super::*;

use crate::doubles::conformance::{day, invalid, mon, not_found, now, req, starts};

fn store() -> MemoryStore {
    MemoryStore::seeded().with_clock(now)
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

struct Memory;

#[async_trait::async_trait]
impl crate::doubles::conformance::StoreMaker for Memory {
    async fn make(&self, clock: Clock) -> Arc<dyn Store> {
        let clock = Arc::clone(&clock);
        Arc::new(MemoryStore::seeded().with_clock(move || clock()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_suite() {
    crate::doubles::conformance::run_all(&Memory).await;
}
