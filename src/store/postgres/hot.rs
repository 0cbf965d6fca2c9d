//! The two queries every booking conversation makes, one round trip each on a statement cached
//! per connection: a doctor's free slots for a day, and what a booking must check before its insert.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc};
use deadpool_postgres::GenericClient;
use frontdesk_actors::store::{day_bounds, StoreError};

use super::pool::db_error;

type Time = DateTime<Utc>;

fn weekday(day: NaiveDate) -> i16 {
    i16::try_from(day.weekday().number_from_monday()).unwrap_or(0)
}

/// Shift rows as instants on `day` (starts and ends come as two arrays in the same order).
fn on_day(day: NaiveDate, starts: Vec<NaiveTime>, ends: Vec<NaiveTime>) -> Vec<(Time, Time)> {
    starts
        .into_iter()
        .zip(ends)
        .map(|(s, e)| (day.and_time(s).and_utc(), day.and_time(e).and_utc()))
        .collect()
}

/// What free slots need: does the doctor exist, the day's shift windows, the day's bookings. The
/// bookings are found by range overlap, which the no-double-booking exclusion index (GiST over
/// doctor and time range, scheduled only) answers; plain time comparisons would scan the table.
pub struct DayPlan {
    pub doctor_exists: bool,
    pub windows: Vec<(Time, Time)>,
    pub booked: Vec<(Time, Time)>,
}

const DAY_PLAN: &str = "
    SELECT EXISTS (SELECT 1 FROM doctors WHERE id = $1),
           ARRAY(SELECT start_time FROM doctor_shifts
                  WHERE doctor_id = $1 AND weekday = $2 ORDER BY start_time),
           ARRAY(SELECT end_time FROM doctor_shifts
                  WHERE doctor_id = $1 AND weekday = $2 ORDER BY start_time),
           ARRAY(SELECT starts_at FROM appointments
                  WHERE doctor_id = $1 AND status = 'scheduled'
                    AND tstzrange(starts_at, ends_at) && tstzrange($3, $4)
                  ORDER BY starts_at, id),
           ARRAY(SELECT ends_at FROM appointments
                  WHERE doctor_id = $1 AND status = 'scheduled'
                    AND tstzrange(starts_at, ends_at) && tstzrange($3, $4)
                  ORDER BY starts_at, id)";

pub async fn day_plan(
    c: &impl GenericClient,
    doctor_id: i64,
    day: NaiveDate,
) -> Result<DayPlan, StoreError> {
    let (from, to) = day_bounds(day);
    let stmt = c.prepare_cached(DAY_PLAN).await.map_err(db_error)?;
    let row = c
        .query_one(&stmt, &[&doctor_id, &weekday(day), &from, &to])
        .await
        .map_err(db_error)?;
    let (b0, b1): (Vec<Time>, Vec<Time>) = (row.get(3), row.get(4));
    Ok(DayPlan {
        doctor_exists: row.get(0),
        windows: on_day(day, row.get(1), row.get(2)),
        booked: b0.into_iter().zip(b1).collect(),
    })
}

/// What a booking checks before its insert (the overlap is the database's own check).
pub struct BookingContext {
    pub patient_exists: bool,
    pub doctor_exists: bool,
    pub windows: Vec<(Time, Time)>,
}

const BOOKING_CONTEXT: &str = "
    SELECT EXISTS (SELECT 1 FROM patients WHERE id = $1),
           EXISTS (SELECT 1 FROM doctors WHERE id = $2),
           ARRAY(SELECT start_time FROM doctor_shifts
                  WHERE doctor_id = $2 AND weekday = $3 ORDER BY start_time),
           ARRAY(SELECT end_time FROM doctor_shifts
                  WHERE doctor_id = $2 AND weekday = $3 ORDER BY start_time)";

pub async fn booking_context(
    c: &impl GenericClient,
    patient_id: i64,
    doctor_id: i64,
    day: NaiveDate,
) -> Result<BookingContext, StoreError> {
    let stmt = c.prepare_cached(BOOKING_CONTEXT).await.map_err(db_error)?;
    let row = c
        .query_one(&stmt, &[&patient_id, &doctor_id, &weekday(day)])
        .await
        .map_err(db_error)?;
    Ok(BookingContext {
        patient_exists: row.get(0),
        doctor_exists: row.get(1),
        windows: on_day(day, row.get(2), row.get(3)),
    })
}
