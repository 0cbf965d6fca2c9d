//! An in-process `Store` for tests and the offline simulation: a small hospital held in memory,
//! with the same domain rules as the SQL stores (weekly shifts, 30-minute slots, no double
//! booking, idempotent call-record writes), an injectable clock, and fault injection (outage,
//! latency) so the callers' failure paths can be exercised without a database.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeDelta, Utc, Weekday};

use crate::call::shared::lock;
use crate::store::{
    appointment_end, check_in_shift, free_slots_in, normalise_name, normalise_phone, Appointment,
    AppointmentStatus, BookingRequest, Doctor, NewPatient, Patient, PatientQuery, RecordOp,
    Registration, Slot, Store, StoreError,
};

// Moved beside the `Store` trait (the SQL stores use it); re-exported for the tests' imports.
pub use crate::store::Clock;

type Time = DateTime<Utc>;

/// One weekly working window of a doctor (never crosses midnight: `end > start`).
#[derive(Clone, Copy, Debug)]
struct Shift {
    doctor_id: i64,
    weekday: Weekday,
    start: NaiveTime,
    end: NaiveTime,
}

impl Shift {
    /// The shift's interval on `day`, or `None` when `day` is another weekday.
    fn on(&self, day: NaiveDate) -> Option<(Time, Time)> {
        (day.weekday() == self.weekday).then(|| {
            (
                day.and_time(self.start).and_utc(),
                day.and_time(self.end).and_utc(),
            )
        })
    }
}

#[derive(Default)]
struct Data {
    patients: Vec<Patient>,
    doctors: Vec<Doctor>,
    shifts: Vec<Shift>,
    appointments: Vec<Appointment>,
    records: Vec<RecordOp>,
    /// (call_id, seq) of every applied record op, for idempotent retries.
    applied: HashSet<(String, u64)>,
}

fn minutes(m: u32) -> TimeDelta {
    // Any u32 of minutes is far inside TimeDelta's range, so this cannot panic.
    TimeDelta::minutes(i64::from(m))
}

fn end_of(a: &Appointment) -> Time {
    a.start
        .checked_add_signed(minutes(a.duration_min))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl Data {
    fn doctor_exists(&self, id: i64) -> Result<(), StoreError> {
        let found = self.doctors.iter().any(|d| d.id == id);
        found
            .then_some(())
            .ok_or(StoreError::NotFound { what: "doctor", id })
    }

    fn patient_exists(&self, id: i64) -> Result<(), StoreError> {
        let found = self.patients.iter().any(|p| p.id == id);
        found.then_some(()).ok_or(StoreError::NotFound {
            what: "patient",
            id,
        })
    }

    fn appointment_mut(&mut self, id: i64) -> Result<&mut Appointment, StoreError> {
        let found = self.appointments.iter_mut().find(|a| a.id == id);
        found.ok_or(StoreError::NotFound {
            what: "appointment",
            id,
        })
    }

    /// Whether a Scheduled appointment of the doctor (other than `ignore`) overlaps [start, end).
    fn taken(&self, doctor_id: i64, start: Time, end: Time, ignore: Option<i64>) -> bool {
        self.appointments.iter().any(|a| {
            a.status == AppointmentStatus::Scheduled
                && a.doctor_id == doctor_id
                && Some(a.id) != ignore
                && a.start < end
                && start < end_of(a)
        })
    }

    /// The rules shared by booking and rescheduling, in the order a caller would want to hear them.
    fn check_slot(
        &self,
        doctor_id: i64,
        start: Time,
        duration_min: u32,
        now: Time,
        ignore: Option<i64>,
    ) -> Result<(), StoreError> {
        let end = appointment_end(start, duration_min)?;
        let day = start.date_naive();
        let windows: Vec<_> = self
            .shifts
            .iter()
            .filter(|s| s.doctor_id == doctor_id)
            .filter_map(|s| s.on(day))
            .collect();
        check_in_shift(&windows, start, end, now)?;
        if self.taken(doctor_id, start, end, ignore) {
            return Err(StoreError::SlotTaken);
        }
        Ok(())
    }

    fn free_slots(&self, doctor_id: i64, day: NaiveDate, now: Time) -> Vec<Slot> {
        let windows: Vec<_> = self
            .shifts
            .iter()
            .filter(|s| s.doctor_id == doctor_id)
            .filter_map(|s| s.on(day))
            .collect();
        let booked: Vec<_> = self
            .appointments
            .iter()
            .filter(|a| a.doctor_id == doctor_id && a.status == AppointmentStatus::Scheduled)
            .map(|a| (a.start, end_of(a)))
            .collect();
        free_slots_in(doctor_id, &windows, &booked, now)
    }
}

#[cfg(test)]
fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default()
}

/// An in-memory hospital implementing [`Store`].
pub struct MemoryStore {
    data: Mutex<Data>,
    clock: Clock,
    available: AtomicBool,
    latency_nanos: AtomicU64,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store (no doctors, no patients) on the wall clock.
    pub fn new() -> Self {
        Self {
            data: Mutex::new(Data::default()),
            clock: Arc::new(Utc::now),
            available: AtomicBool::new(true),
            latency_nanos: AtomicU64::new(0),
        }
    }

    /// The seed hospital (`crate::seed`): six doctors (ids 1–6), weekday shifts 09:00–17:00 UTC
    /// (doctors 2–4 also Saturday 09:00–13:00), and twenty synthetic patients (ids 1–20).
    pub fn seeded() -> Self {
        let store = Self::new();
        for d in crate::seed::doctors() {
            store.add_doctor(d.name, d.specialty);
        }
        for s in crate::seed::shifts() {
            let _ = store.add_shift(s.doctor_id, s.weekday, s.start, s.end);
        }
        for p in crate::seed::patients() {
            store.add_patient(p.first_name, p.last_name, p.date_of_birth, p.phone);
        }
        store
    }

    /// Read "now" from `clock` instead of the wall clock.
    pub fn with_clock(mut self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Add a doctor with no shifts yet; returns its id.
    pub fn add_doctor(&self, name: impl Into<String>, specialty: impl Into<String>) -> i64 {
        let mut d = self.lock();
        let id = d.doctors.last().map_or(1, |x| x.id + 1);
        d.doctors.push(Doctor {
            id,
            name: name.into(),
            specialty: specialty.into(),
        });
        id
    }

    /// Add a weekly shift; `end` must be after `start` (shifts never cross midnight).
    pub fn add_shift(
        &self,
        doctor_id: i64,
        weekday: Weekday,
        start: NaiveTime,
        end: NaiveTime,
    ) -> Result<(), StoreError> {
        if end <= start {
            return Err(StoreError::Invalid(format!(
                "shift end {end} is not after start {start}"
            )));
        }
        let mut d = self.lock();
        d.doctor_exists(doctor_id)?;
        d.shifts.push(Shift {
            doctor_id,
            weekday,
            start,
            end,
        });
        Ok(())
    }

    /// Add a patient; returns its id.
    pub fn add_patient(
        &self,
        first: impl Into<String>,
        last: impl Into<String>,
        date_of_birth: NaiveDate,
        phone: impl Into<String>,
    ) -> i64 {
        let mut d = self.lock();
        let id = d.patients.last().map_or(1, |x| x.id + 1);
        let (first_name, last_name, phone) = (first.into(), last.into(), phone.into());
        d.patients.push(Patient {
            id,
            first_name,
            last_name,
            date_of_birth,
            phone,
        });
        id
    }

    /// Every call-record op applied so far, in application order.
    pub fn records(&self) -> Vec<RecordOp> {
        self.lock().records.clone()
    }

    /// While `false`, every `Store` method fails with `Unavailable`.
    pub fn set_available(&self, available: bool) {
        self.available.store(available, Ordering::SeqCst);
    }

    /// Delay added before every `Store` call (zero disables it).
    pub fn set_latency(&self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.latency_nanos.store(nanos, Ordering::SeqCst);
    }

    fn lock(&self) -> MutexGuard<'_, Data> {
        // A panicking test thread must not wedge every other user of the store.
        lock(&self.data)
    }

    /// Simulated latency and outage, then "now". The sleep happens before taking the lock so
    /// slow calls do not serialise each other.
    async fn ready(&self) -> Result<Time, StoreError> {
        let nanos = self.latency_nanos.load(Ordering::SeqCst);
        if nanos > 0 {
            tokio::time::sleep(Duration::from_nanos(nanos)).await;
        }
        if !self.available.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("injected outage".into()));
        }
        Ok((self.clock)())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn find_patient(&self, q: &PatientQuery) -> Result<Vec<Patient>, StoreError> {
        self.ready().await?;
        let (phone, name) = q.normalised()?;
        // Plain string comparison: quotes, semicolons and `--` are just characters here.
        let full_name = |p: &Patient| normalise_name(&format!("{} {}", p.first_name, p.last_name));
        let matches = |p: &Patient| {
            phone
                .as_ref()
                .is_none_or(|ph| normalise_phone(&p.phone) == *ph)
                && name.as_ref().is_none_or(|n| full_name(p) == *n)
                && q.date_of_birth.is_none_or(|dob| p.date_of_birth == dob)
        };
        Ok(self
            .lock()
            .patients
            .iter()
            .filter(|p| matches(p))
            .cloned()
            .collect())
    }

    async fn register_patient(&self, p: &NewPatient) -> Result<Registration, StoreError> {
        let now = self.ready().await?;
        let p = p.validated(now.date_naive())?;
        let name = p.normalised_name();
        // Look up and insert under one lock: two registrations of one person cannot both create.
        let mut d = self.lock();
        let full_name = |x: &Patient| normalise_name(&format!("{} {}", x.first_name, x.last_name));
        let existing = d
            .patients
            .iter()
            .find(|x| x.date_of_birth == p.date_of_birth && full_name(x) == name);
        if let Some(patient) = existing {
            return Ok(Registration {
                patient: patient.clone(),
                created: false,
            });
        }
        let patient = Patient {
            id: d.patients.last().map_or(1, |x| x.id + 1),
            first_name: p.first_name,
            last_name: p.last_name,
            date_of_birth: p.date_of_birth,
            phone: p.phone,
        };
        d.patients.push(patient.clone());
        Ok(Registration {
            patient,
            created: true,
        })
    }

    async fn list_doctors(&self, specialty: Option<&str>) -> Result<Vec<Doctor>, StoreError> {
        self.ready().await?;
        let wanted = specialty
            .map(|s| s.trim().to_lowercase())
            .unwrap_or_default();
        let d = self.lock();
        let matching = d
            .doctors
            .iter()
            .filter(|doc| doc.specialty.to_lowercase().contains(&wanted));
        Ok(matching.cloned().collect())
    }

    async fn free_slots(&self, doctor_id: i64, day: NaiveDate) -> Result<Vec<Slot>, StoreError> {
        let now = self.ready().await?;
        let d = self.lock();
        d.doctor_exists(doctor_id)?;
        Ok(d.free_slots(doctor_id, day, now))
    }

    async fn appointments_for(&self, patient_id: i64) -> Result<Vec<Appointment>, StoreError> {
        self.ready().await?;
        let d = self.lock();
        d.patient_exists(patient_id)?;
        let mut list: Vec<_> = d
            .appointments
            .iter()
            .filter(|a| a.patient_id == patient_id)
            .cloned()
            .collect();
        list.sort_by_key(|a| (a.start, a.id));
        Ok(list)
    }

    async fn book(&self, req: &BookingRequest) -> Result<Appointment, StoreError> {
        let now = self.ready().await?;
        // Check and insert under one lock, so concurrent bookings of a slot cannot both win.
        let mut d = self.lock();
        d.patient_exists(req.patient_id)?;
        d.doctor_exists(req.doctor_id)?;
        d.check_slot(req.doctor_id, req.start, req.duration_min, now, None)?;
        let appointment = Appointment {
            id: d.appointments.last().map_or(1, |a| a.id + 1),
            patient_id: req.patient_id,
            doctor_id: req.doctor_id,
            start: req.start,
            duration_min: req.duration_min,
            status: AppointmentStatus::Scheduled,
            reason: req.reason.clone(),
        };
        d.appointments.push(appointment.clone());
        Ok(appointment)
    }

    async fn cancel(&self, appointment_id: i64) -> Result<Appointment, StoreError> {
        self.ready().await?;
        let mut d = self.lock();
        let a = d.appointment_mut(appointment_id)?;
        match a.status {
            AppointmentStatus::Scheduled => {
                a.status = AppointmentStatus::Cancelled;
                Ok(a.clone())
            }
            AppointmentStatus::Cancelled => Err(StoreError::Invalid(
                "appointment is already cancelled".into(),
            )),
            other => Err(StoreError::Invalid(format!(
                "appointment is {other:?}, not scheduled"
            ))),
        }
    }

    async fn reschedule(&self, id: i64, new_start: Time) -> Result<Appointment, StoreError> {
        let now = self.ready().await?;
        let mut d = self.lock();
        let cur = d.appointment_mut(id)?.clone();
        if cur.status != AppointmentStatus::Scheduled {
            let status = cur.status;
            return Err(StoreError::Invalid(format!(
                "appointment is {status:?}, not scheduled"
            )));
        }
        // The appointment's own slot does not block moving it (e.g. 30 minutes later).
        d.check_slot(cur.doctor_id, new_start, cur.duration_min, now, Some(id))?;
        let a = d.appointment_mut(id)?;
        a.start = new_start;
        Ok(a.clone())
    }

    async fn call_record(&self, call_id: &str) -> Result<Vec<RecordOp>, StoreError> {
        self.ready().await?;
        let d = self.lock();
        Ok(d.records
            .iter()
            .filter(|r| r.call_id == call_id)
            .cloned()
            .collect())
    }

    async fn write_records(&self, batch: &[RecordOp]) -> Result<(), StoreError> {
        self.ready().await?;
        let mut d = self.lock();
        for op in batch {
            // `insert` is false for an op already applied (a retried batch, or a duplicate in it).
            if d.applied.insert((op.call_id.clone(), op.seq)) {
                d.records.push(op.clone());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
