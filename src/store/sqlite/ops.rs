//! The agent's operations on SQLite: every query parameterised, the overlap rule enforced by the
//! database (triggers), the slot arithmetic shared with the other stores.

use async_trait::async_trait;
use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc};
use frontdesk_actors::store::{
    appointment_end, check_in_shift, day_bounds, free_slots_in, Appointment, AppointmentStatus,
    BookingRequest, Doctor, NewPatient, Patient, PatientQuery, RecordOp, Registration, Slot, Store,
    StoreError,
};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::{parse_ts, sqlite_error, ts, SqliteStore};

type Time = DateTime<Utc>;

const APPOINTMENT_COLUMNS: &str = "id, patient_id, doctor_id, starts_at, ends_at, status, reason";

/// Raw columns of an appointment row; times are parsed outside rusqlite's closure.
type RawAppointment = (i64, i64, i64, String, String, String, String);

fn raw_appointment(r: &Row) -> rusqlite::Result<RawAppointment> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn appointment(raw: RawAppointment) -> Result<Appointment, StoreError> {
    let (id, patient_id, doctor_id, start, end, status, reason) = raw;
    let (start, end) = (parse_ts(&start)?, parse_ts(&end)?);
    Ok(Appointment {
        id,
        patient_id,
        doctor_id,
        start,
        duration_min: u32::try_from((end - start).num_minutes()).unwrap_or(0),
        status: AppointmentStatus::from_db(&status),
        reason,
    })
}

fn load_appointment(c: &Connection, id: i64) -> Result<Option<Appointment>, StoreError> {
    let sql = format!("SELECT {APPOINTMENT_COLUMNS} FROM appointments WHERE id = ?1");
    let raw = c
        .query_row(&sql, [id], raw_appointment)
        .optional()
        .map_err(sqlite_error)?;
    raw.map(appointment).transpose()
}

fn exists(c: &Connection, table: &str, what: &'static str, id: i64) -> Result<(), StoreError> {
    // `table` is one of our literals, never input.
    let sql = format!("SELECT 1 FROM {table} WHERE id = ?1");
    let found = c
        .query_row(&sql, [id], |_| Ok(()))
        .optional()
        .map_err(sqlite_error)?;
    found.ok_or(StoreError::NotFound { what, id })
}

/// The doctor's shift windows on `day`.
fn windows(
    c: &Connection,
    doctor_id: i64,
    day: NaiveDate,
) -> Result<Vec<(Time, Time)>, StoreError> {
    let weekday = day.weekday().number_from_monday();
    let mut stmt = c
        .prepare_cached(
            "SELECT start_time, end_time FROM doctor_shifts WHERE doctor_id = ?1 AND weekday = ?2",
        )
        .map_err(sqlite_error)?;
    let rows = stmt
        .query_map(params![doctor_id, weekday], |r| {
            Ok((r.get::<_, NaiveTime>(0)?, r.get::<_, NaiveTime>(1)?))
        })
        .map_err(sqlite_error)?;
    rows.map(|r| {
        let (s, e) = r.map_err(sqlite_error)?;
        Ok((day.and_time(s).and_utc(), day.and_time(e).and_utc()))
    })
    .collect()
}

/// Past time and shift rules; the overlap rule is the database's (triggers).
fn check_time(
    c: &Connection,
    doctor_id: i64,
    start: Time,
    duration_min: u32,
    now: Time,
) -> Result<Time, StoreError> {
    let end = appointment_end(start, duration_min)?;
    check_in_shift(&windows(c, doctor_id, start.date_naive())?, start, end, now)?;
    Ok(end)
}

fn find_patient(c: &Connection, q: &PatientQuery) -> Result<Vec<Patient>, StoreError> {
    let (phone, name) = q.normalised()?;
    let mut stmt = c
        .prepare_cached(
            "SELECT id, first_name, last_name, date_of_birth, phone FROM patients
              WHERE (?1 IS NULL OR norm_phone(phone) = ?1)
                AND (?2 IS NULL OR norm_name(first_name || ' ' || last_name) = ?2)
                AND (?3 IS NULL OR date_of_birth = ?3)
              ORDER BY id",
        )
        .map_err(sqlite_error)?;
    let rows = stmt
        .query_map(params![phone, name, q.date_of_birth], |r| {
            Ok(Patient {
                id: r.get(0)?,
                first_name: r.get(1)?,
                last_name: r.get(2)?,
                date_of_birth: r.get(3)?,
                phone: r.get(4)?,
            })
        })
        .map_err(sqlite_error)?;
    rows.map(|r| r.map_err(sqlite_error)).collect()
}

/// Register `p` unless someone of that name and birth date is (one IMMEDIATE transaction: the
/// look-up and the insert cannot interleave with another registration).
fn register_patient(
    c: &mut Connection,
    p: &NewPatient,
    now: Time,
) -> Result<Registration, StoreError> {
    let p = p.validated(now.date_naive())?;
    let tx = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_error)?;
    let q = PatientQuery {
        name: Some(p.normalised_name()),
        date_of_birth: Some(p.date_of_birth),
        phone: None,
    };
    if let Some(patient) = find_patient(&tx, &q)?.into_iter().next() {
        return Ok(Registration {
            patient,
            created: false,
        });
    }
    tx.execute(
        "INSERT INTO patients (first_name, last_name, date_of_birth, phone) VALUES (?1, ?2, ?3, ?4)",
        params![p.first_name, p.last_name, p.date_of_birth, p.phone],
    )
    .map_err(sqlite_error)?;
    let id = tx.last_insert_rowid();
    tx.commit().map_err(sqlite_error)?;
    let patient = Patient {
        id,
        first_name: p.first_name,
        last_name: p.last_name,
        date_of_birth: p.date_of_birth,
        phone: p.phone,
    };
    Ok(Registration {
        patient,
        created: true,
    })
}

fn list_doctors(c: &Connection, wanted: &str) -> Result<Vec<Doctor>, StoreError> {
    // instr, not LIKE: `%` and `_` from a caller are plain characters.
    let mut stmt = c
        .prepare_cached(
            "SELECT id, name, specialty FROM doctors WHERE instr(lower(specialty), ?1) > 0 ORDER BY id",
        )
        .map_err(sqlite_error)?;
    let rows = stmt
        .query_map([wanted], |r| {
            Ok(Doctor {
                id: r.get(0)?,
                name: r.get(1)?,
                specialty: r.get(2)?,
            })
        })
        .map_err(sqlite_error)?;
    rows.map(|r| r.map_err(sqlite_error)).collect()
}

fn free_slots(
    c: &Connection,
    doctor_id: i64,
    day: NaiveDate,
    now: Time,
) -> Result<Vec<Slot>, StoreError> {
    exists(c, "doctors", "doctor", doctor_id)?;
    let windows = windows(c, doctor_id, day)?;
    let (from, to) = day_bounds(day);
    let mut stmt = c
        .prepare_cached(
            "SELECT starts_at, ends_at FROM appointments
              WHERE doctor_id = ?1 AND status = 'scheduled' AND starts_at < ?3 AND ends_at > ?2",
        )
        .map_err(sqlite_error)?;
    let rows = stmt
        .query_map(params![doctor_id, ts(from), ts(to)], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(sqlite_error)?;
    let mut booked = vec![];
    for r in rows {
        let (s, e) = r.map_err(sqlite_error)?;
        booked.push((parse_ts(&s)?, parse_ts(&e)?));
    }
    Ok(free_slots_in(doctor_id, &windows, &booked, now))
}

fn appointments_for(c: &Connection, patient_id: i64) -> Result<Vec<Appointment>, StoreError> {
    exists(c, "patients", "patient", patient_id)?;
    let sql = format!(
        "SELECT {APPOINTMENT_COLUMNS} FROM appointments WHERE patient_id = ?1 ORDER BY starts_at, id"
    );
    let mut stmt = c.prepare_cached(&sql).map_err(sqlite_error)?;
    let rows = stmt
        .query_map([patient_id], raw_appointment)
        .map_err(sqlite_error)?;
    rows.map(|r| appointment(r.map_err(sqlite_error)?))
        .collect()
}

fn book(c: &mut Connection, req: &BookingRequest, now: Time) -> Result<Appointment, StoreError> {
    // IMMEDIATE: another process writing the same file waits here, not half-way through.
    let tx = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_error)?;
    exists(&tx, "patients", "patient", req.patient_id)?;
    exists(&tx, "doctors", "doctor", req.doctor_id)?;
    let end = check_time(&tx, req.doctor_id, req.start, req.duration_min, now)?;
    tx.execute(
        "INSERT INTO appointments (patient_id, doctor_id, starts_at, ends_at, reason)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            req.patient_id,
            req.doctor_id,
            ts(req.start),
            ts(end),
            req.reason
        ],
    )
    .map_err(sqlite_error)?;
    let id = tx.last_insert_rowid();
    let booked = load_appointment(&tx, id)?;
    tx.commit().map_err(sqlite_error)?;
    booked.ok_or(StoreError::NotFound {
        what: "appointment",
        id,
    })
}

fn not_scheduled(status: AppointmentStatus) -> StoreError {
    StoreError::Invalid(match status {
        AppointmentStatus::Cancelled => "appointment is already cancelled".into(),
        other => format!("appointment is {other:?}, not scheduled"),
    })
}

/// The appointment `id`, which must still be scheduled to be changed.
fn scheduled(c: &Connection, id: i64) -> Result<Appointment, StoreError> {
    let cur = load_appointment(c, id)?.ok_or(StoreError::NotFound {
        what: "appointment",
        id,
    })?;
    if cur.status != AppointmentStatus::Scheduled {
        return Err(not_scheduled(cur.status));
    }
    Ok(cur)
}

fn cancel(c: &mut Connection, id: i64) -> Result<Appointment, StoreError> {
    let tx = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_error)?;
    let cur = scheduled(&tx, id)?;
    tx.execute(
        "UPDATE appointments SET status = 'cancelled' WHERE id = ?1",
        [id],
    )
    .map_err(sqlite_error)?;
    tx.commit().map_err(sqlite_error)?;
    Ok(Appointment {
        status: AppointmentStatus::Cancelled,
        ..cur
    })
}

fn reschedule(
    c: &mut Connection,
    id: i64,
    new_start: Time,
    now: Time,
) -> Result<Appointment, StoreError> {
    let tx = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_error)?;
    let cur = scheduled(&tx, id)?;
    let end = check_time(&tx, cur.doctor_id, new_start, cur.duration_min, now)?;
    tx.execute(
        "UPDATE appointments SET starts_at = ?2, ends_at = ?3 WHERE id = ?1",
        params![id, ts(new_start), ts(end)],
    )
    .map_err(sqlite_error)?;
    let moved = load_appointment(&tx, id)?;
    tx.commit().map_err(sqlite_error)?;
    moved.ok_or(StoreError::NotFound {
        what: "appointment",
        id,
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn find_patient(&self, q: &PatientQuery) -> Result<Vec<Patient>, StoreError> {
        let q = q.clone();
        self.run(move |c, _| find_patient(c, &q)).await
    }

    async fn register_patient(&self, p: &NewPatient) -> Result<Registration, StoreError> {
        let p = p.clone();
        self.run(move |c, now| register_patient(c, &p, now)).await
    }

    async fn list_doctors(&self, specialty: Option<&str>) -> Result<Vec<Doctor>, StoreError> {
        let wanted = specialty
            .map(|s| s.trim().to_lowercase())
            .unwrap_or_default();
        self.run(move |c, _| list_doctors(c, &wanted)).await
    }

    async fn free_slots(&self, doctor_id: i64, day: NaiveDate) -> Result<Vec<Slot>, StoreError> {
        self.run(move |c, now| free_slots(c, doctor_id, day, now))
            .await
    }

    async fn appointments_for(&self, patient_id: i64) -> Result<Vec<Appointment>, StoreError> {
        self.run(move |c, _| appointments_for(c, patient_id)).await
    }

    async fn book(&self, req: &BookingRequest) -> Result<Appointment, StoreError> {
        let req = req.clone();
        self.run(move |c, now| book(c, &req, now)).await
    }

    async fn cancel(&self, appointment_id: i64) -> Result<Appointment, StoreError> {
        self.run(move |c, _| cancel(c, appointment_id)).await
    }

    async fn reschedule(&self, id: i64, new_start: Time) -> Result<Appointment, StoreError> {
        self.run(move |c, now| reschedule(c, id, new_start, now))
            .await
    }

    async fn write_records(&self, batch: &[RecordOp]) -> Result<(), StoreError> {
        let batch = batch.to_vec();
        self.run(move |c, _| super::records::write(c, &batch)).await
    }

    async fn call_record(&self, call_id: &str) -> Result<Vec<RecordOp>, StoreError> {
        let call_id = call_id.to_owned();
        self.run(move |c, _| super::records::read(c, &call_id))
            .await
    }
}
