//! The PostgreSQL store: the agent's operations and the call record, with every query
//! parameterised and the overlap rule enforced by the database (exclusion constraint).

mod answer_cache;
mod hot;
mod phrase_cache;
pub mod pool;
mod records;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc};
use deadpool_postgres::Pool;
use frontdesk_actors::store::{
    appointment_end, check_in_shift, free_slots_in, normalise_name, Appointment, AppointmentStatus,
    BookingRequest, Clock, Doctor, NewPatient, Patient, PatientQuery, RecordOp, Registration, Slot,
    Store, StoreError,
};
use tokio_postgres::error::SqlState;
use tokio_postgres::GenericClient;
use tokio_postgres::Row;

use pool::db_error;

type Time = DateTime<Utc>;

pub struct PgStore {
    pool: Pool,
    clock: Clock,
}

impl PgStore {
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            clock: Arc::new(Utc::now),
        }
    }

    /// Read "now" from `clock` (tests pin it).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    async fn conn(&self) -> Result<deadpool_postgres::Object, StoreError> {
        pool::get(&self.pool).await
    }
}

const APPOINTMENT_COLUMNS: &str = "id, patient_id, doctor_id, starts_at, ends_at, status, reason";

fn appointment(r: &Row) -> Appointment {
    let (start, end): (Time, Time) = (r.get(3), r.get(4));
    Appointment {
        id: r.get(0),
        patient_id: r.get(1),
        doctor_id: r.get(2),
        start,
        duration_min: u32::try_from((end - start).num_minutes()).unwrap_or(0),
        status: AppointmentStatus::from_db(r.get(5)),
        reason: r.get(6),
    }
}

async fn exists(
    c: &impl GenericClient,
    table: &'static str,
    what: &'static str,
    id: i64,
) -> Result<(), StoreError> {
    // `table` is one of our literals, never input.
    let sql = format!("SELECT 1 FROM {table} WHERE id = $1");
    let found = c.query_opt(&sql, &[&id]).await.map_err(db_error)?;
    found.map(|_| ()).ok_or(StoreError::NotFound { what, id })
}

/// The doctor's shift windows on `day`.
async fn windows(
    c: &impl GenericClient,
    doctor_id: i64,
    day: NaiveDate,
) -> Result<Vec<(Time, Time)>, StoreError> {
    let weekday = i16::try_from(day.weekday().number_from_monday()).unwrap_or(0);
    let rows = c
        .query(
            "SELECT start_time, end_time FROM doctor_shifts WHERE doctor_id = $1 AND weekday = $2",
            &[&doctor_id, &weekday],
        )
        .await
        .map_err(db_error)?;
    Ok(rows
        .iter()
        .map(|r| {
            let (s, e): (NaiveTime, NaiveTime) = (r.get(0), r.get(1));
            (day.and_time(s).and_utc(), day.and_time(e).and_utc())
        })
        .collect())
}

/// Past time and shift rules; the overlap rule is the database's (exclusion constraint).
async fn check_time(
    c: &impl GenericClient,
    doctor_id: i64,
    start: Time,
    duration_min: u32,
    now: Time,
) -> Result<Time, StoreError> {
    let end = appointment_end(start, duration_min)?;
    let windows = windows(c, doctor_id, start.date_naive()).await?;
    check_in_shift(&windows, start, end, now)?;
    Ok(end)
}

/// Bookings and moves of one doctor's appointments take this transaction lock (with the doctor
/// id) first. The exclusion constraint alone is still what refuses an overlap, but two
/// transactions inserting overlapping rows at once each wait for the other's row and PostgreSQL
/// breaks the deadlock after a second; in line, the loser sees the winner's row at once.
const BOOKING_LOCK: i32 = 0x626f_6f6b; // "book"
/// The advisory lock space of registrations, keyed by birth date.
const REGISTER_LOCK: i32 = 0x7265_6769; // "regi"

/// One round trip: the CTE takes the doctor's lock before the insert checks the constraint, and
/// the statement's own transaction releases it.
const INSERT_APPOINTMENT: &str = "
    WITH doctor_lock AS (SELECT pg_advisory_xact_lock($6, $7))
    INSERT INTO appointments (patient_id, doctor_id, starts_at, ends_at, reason)
    SELECT $1, $2, $3, $4, $5 FROM doctor_lock
    RETURNING id, patient_id, doctor_id, starts_at, ends_at, status, reason";

/// A patient row (id, first_name, last_name, date_of_birth, phone).
fn patient(r: &Row) -> Patient {
    Patient {
        id: r.get(0),
        first_name: r.get(1),
        last_name: r.get(2),
        date_of_birth: r.get(3),
        phone: r.get(4),
    }
}

/// The lock's second key: doctor ids are small, and a collision only serialises two doctors.
fn lock_key(doctor_id: i64) -> i32 {
    (doctor_id % i64::from(i32::MAX)) as i32
}

/// An overlapping scheduled appointment of the same doctor is "slot taken".
fn write_error(e: tokio_postgres::Error) -> StoreError {
    if e.code() == Some(&SqlState::EXCLUSION_VIOLATION) {
        StoreError::SlotTaken
    } else {
        db_error(e)
    }
}

#[async_trait]
impl Store for PgStore {
    async fn find_patient(&self, q: &PatientQuery) -> Result<Vec<Patient>, StoreError> {
        let (phone, name) = q.normalised()?;
        let c = self.conn().await?;
        let rows = c
            .query(
                "SELECT id, first_name, last_name, date_of_birth, phone FROM patients
                  WHERE ($1::text IS NULL OR regexp_replace(phone, '[[:space:]-]', '', 'g') = $1)
                    AND ($2::text IS NULL OR lower(regexp_replace(first_name || ' ' || last_name,
                                                 '[[:space:]]+', ' ', 'g')) = $2)
                    AND ($3::date IS NULL OR date_of_birth = $3)
                  ORDER BY id",
                &[&phone, &name, &q.date_of_birth],
            )
            .await
            .map_err(db_error)?;
        Ok(rows.iter().map(patient).collect())
    }

    async fn register_patient(&self, p: &NewPatient) -> Result<Registration, StoreError> {
        let p = p.validated((self.clock)().date_naive())?;
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db_error)?;
        // Registrations of one birth date queue here, so the look-up and the insert cannot
        // interleave with another registration of the same person.
        let key = p.date_of_birth.num_days_from_ce();
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, $2)",
            &[&REGISTER_LOCK, &key],
        )
        .await
        .map_err(db_error)?;
        let rows = tx
            .query(
                "SELECT id, first_name, last_name, date_of_birth, phone FROM patients
                  WHERE date_of_birth = $1 ORDER BY id",
                &[&p.date_of_birth],
            )
            .await
            .map_err(db_error)?;
        // Names compared as every store compares them (normalise_name), whatever the locale.
        let name = p.normalised_name();
        let existing = rows
            .iter()
            .map(patient)
            .find(|x| normalise_name(&format!("{} {}", x.first_name, x.last_name)) == name);
        if let Some(patient) = existing {
            return Ok(Registration {
                patient,
                created: false,
            });
        }
        let row = tx
            .query_one(
                "INSERT INTO patients (first_name, last_name, date_of_birth, phone)
                 VALUES ($1, $2, $3, $4) RETURNING id, first_name, last_name, date_of_birth, phone",
                &[&p.first_name, &p.last_name, &p.date_of_birth, &p.phone],
            )
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(Registration {
            patient: patient(&row),
            created: true,
        })
    }

    async fn list_doctors(&self, specialty: Option<&str>) -> Result<Vec<Doctor>, StoreError> {
        let wanted = specialty
            .map(|s| s.trim().to_lowercase())
            .unwrap_or_default();
        let c = self.conn().await?;
        // strpos, not LIKE: `%` and `_` from a caller are plain characters.
        let rows = c
            .query(
                "SELECT id, name, specialty FROM doctors
                  WHERE strpos(lower(specialty), $1) > 0 ORDER BY id",
                &[&wanted],
            )
            .await
            .map_err(db_error)?;
        Ok(rows
            .iter()
            .map(|r| Doctor {
                id: r.get(0),
                name: r.get(1),
                specialty: r.get(2),
            })
            .collect())
    }

    async fn free_slots(&self, doctor_id: i64, day: NaiveDate) -> Result<Vec<Slot>, StoreError> {
        let now = (self.clock)();
        let c = self.conn().await?;
        let plan = hot::day_plan(&c, doctor_id, day).await?;
        if !plan.doctor_exists {
            return Err(StoreError::NotFound {
                what: "doctor",
                id: doctor_id,
            });
        }
        Ok(free_slots_in(doctor_id, &plan.windows, &plan.booked, now))
    }

    async fn appointments_for(&self, patient_id: i64) -> Result<Vec<Appointment>, StoreError> {
        let c = self.conn().await?;
        exists(&**c, "patients", "patient", patient_id).await?;
        let sql = format!(
            "SELECT {APPOINTMENT_COLUMNS} FROM appointments WHERE patient_id = $1 ORDER BY starts_at, id"
        );
        let rows = c.query(&sql, &[&patient_id]).await.map_err(db_error)?;
        Ok(rows.iter().map(appointment).collect())
    }

    async fn book(&self, req: &BookingRequest) -> Result<Appointment, StoreError> {
        let now = (self.clock)();
        let c = self.conn().await?;
        let (p, d) = (req.patient_id, req.doctor_id);
        let ctx = hot::booking_context(&c, p, d, req.start.date_naive()).await?;
        if !ctx.patient_exists {
            return Err(StoreError::NotFound {
                what: "patient",
                id: p,
            });
        }
        if !ctx.doctor_exists {
            return Err(StoreError::NotFound {
                what: "doctor",
                id: d,
            });
        }
        let end = appointment_end(req.start, req.duration_min)?;
        check_in_shift(&ctx.windows, req.start, end, now)?;
        let stmt = c
            .prepare_cached(INSERT_APPOINTMENT)
            .await
            .map_err(db_error)?;
        let row = c
            .query_one(
                &stmt,
                &[
                    &p,
                    &d,
                    &req.start,
                    &end,
                    &req.reason,
                    &BOOKING_LOCK,
                    &lock_key(d),
                ],
            )
            .await
            .map_err(write_error)?;
        Ok(appointment(&row))
    }

    async fn cancel(&self, appointment_id: i64) -> Result<Appointment, StoreError> {
        let c = self.conn().await?;
        let sql = format!(
            "UPDATE appointments SET status = 'cancelled'
              WHERE id = $1 AND status = 'scheduled' RETURNING {APPOINTMENT_COLUMNS}"
        );
        if let Some(row) = c
            .query_opt(&sql, &[&appointment_id])
            .await
            .map_err(db_error)?
        {
            return Ok(appointment(&row));
        }
        let status = current_status(&**c, appointment_id).await?;
        Err(StoreError::Invalid(match status {
            AppointmentStatus::Cancelled => "appointment is already cancelled".into(),
            other => format!("appointment is {other:?}, not scheduled"),
        }))
    }

    async fn reschedule(&self, id: i64, new_start: Time) -> Result<Appointment, StoreError> {
        let now = (self.clock)();
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db_error)?;
        let sql =
            format!("SELECT {APPOINTMENT_COLUMNS} FROM appointments WHERE id = $1 FOR UPDATE");
        let cur = tx.query_opt(&sql, &[&id]).await.map_err(db_error)?;
        let cur = cur.map(|r| appointment(&r)).ok_or(StoreError::NotFound {
            what: "appointment",
            id,
        })?;
        if cur.status != AppointmentStatus::Scheduled {
            return Err(StoreError::Invalid(format!(
                "appointment is {:?}, not scheduled",
                cur.status
            )));
        }
        let end = check_time(&*tx, cur.doctor_id, new_start, cur.duration_min, now).await?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, $2)",
            &[&BOOKING_LOCK, &lock_key(cur.doctor_id)],
        )
        .await
        .map_err(db_error)?;
        let sql = format!(
            "UPDATE appointments SET starts_at = $2, ends_at = $3 WHERE id = $1 RETURNING {APPOINTMENT_COLUMNS}"
        );
        let row = tx
            .query_one(&sql, &[&id, &new_start, &end])
            .await
            .map_err(write_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(appointment(&row))
    }

    async fn write_records(&self, batch: &[RecordOp]) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        records::write(&mut c, batch).await
    }

    async fn call_record(&self, call_id: &str) -> Result<Vec<RecordOp>, StoreError> {
        let c = self.conn().await?;
        records::read(&**c, call_id).await
    }
}

async fn current_status(c: &impl GenericClient, id: i64) -> Result<AppointmentStatus, StoreError> {
    let row = c
        .query_opt("SELECT status FROM appointments WHERE id = $1", &[&id])
        .await
        .map_err(db_error)?;
    row.map(|r| AppointmentStatus::from_db(r.get(0)))
        .ok_or(StoreError::NotFound {
            what: "appointment",
            id,
        })
}
