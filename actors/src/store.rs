//! What the DB gateway needs from a database: the hospital operations behind the agent's tools and
//! the write-behind of the call record. PostgreSQL and SQLite implementations live in the service.

use async_trait::async_trait;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Where a store reads "now" from (free slots, check-in windows); tests pin it for determinism.
pub type Clock = std::sync::Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patient {
    pub id: i64,
    pub first_name: String,
    pub last_name: String,
    pub date_of_birth: NaiveDate,
    pub phone: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Doctor {
    pub id: i64,
    pub name: String,
    pub specialty: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub doctor_id: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentStatus {
    Scheduled,
    Completed,
    Cancelled,
    NoShow,
}

impl AppointmentStatus {
    /// From its column value (the schemas' CHECK allows only these four).
    pub fn from_db(s: &str) -> Self {
        match s {
            "completed" => AppointmentStatus::Completed,
            "cancelled" => AppointmentStatus::Cancelled,
            "no_show" => AppointmentStatus::NoShow,
            _ => AppointmentStatus::Scheduled,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appointment {
    pub id: i64,
    pub patient_id: i64,
    pub doctor_id: i64,
    pub start: DateTime<Utc>,
    pub duration_min: u32,
    pub status: AppointmentStatus,
    pub reason: String,
}

/// Find a patient by full name plus date of birth, or by phone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientQuery {
    pub name: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    pub phone: Option<String>,
}

impl PatientQuery {
    /// The phone and name as every store compares them (empty ones dropped), or why the query
    /// cannot find anyone.
    pub fn normalised(&self) -> Result<(Option<String>, Option<String>), StoreError> {
        let phone = self
            .phone
            .as_deref()
            .map(normalise_phone)
            .filter(|p| !p.is_empty());
        let name = self
            .name
            .as_deref()
            .map(normalise_name)
            .filter(|n| !n.is_empty());
        if phone.is_none() && name.is_none() {
            return Err(StoreError::Invalid("give a phone number or a name".into()));
        }
        Ok((phone, name))
    }
}

/// A new patient's details, as a caller gives them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPatient {
    pub first_name: String,
    pub last_name: String,
    pub date_of_birth: NaiveDate,
    pub phone: String,
}

/// What registering a patient did: the patient's record, and whether it was created now (false:
/// someone of that name and birth date was already registered, and that record is returned).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub patient: Patient,
    pub created: bool,
}

/// Longest first or last name accepted, in characters (the schemas' CHECK).
pub const MAX_NAME_CHARS: usize = 100;
/// Earliest birth date accepted.
const OLDEST_BIRTH_YEAR: i32 = 1900;

impl NewPatient {
    /// The details as every store keeps them (names with single spaces, the phone normalised), or
    /// why they cannot be registered. Names may be in any script; `today` bounds the birth date.
    pub fn validated(&self, today: NaiveDate) -> Result<NewPatient, StoreError> {
        let first_name = valid_name("first name", &self.first_name)?;
        let last_name = valid_name("last name", &self.last_name)?;
        let phone = normalise_phone(&self.phone);
        let digits = phone.strip_prefix('+').unwrap_or(&phone);
        if !(7..=15).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(StoreError::Invalid(
                "phone must be 7 to 15 digits, optionally after a +".into(),
            ));
        }
        let dob = self.date_of_birth;
        if dob > today || dob.year() < OLDEST_BIRTH_YEAR {
            return Err(StoreError::Invalid(format!(
                "date of birth must be between {OLDEST_BIRTH_YEAR}-01-01 and today"
            )));
        }
        Ok(NewPatient {
            first_name,
            last_name,
            date_of_birth: dob,
            phone,
        })
    }

    /// The full name as stores compare it.
    pub fn normalised_name(&self) -> String {
        normalise_name(&format!("{} {}", self.first_name, self.last_name))
    }
}

/// A name part: letters of any script with spaces, apostrophes, hyphens and dots between them.
fn valid_name(what: &str, raw: &str) -> Result<String, StoreError> {
    let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    let bad = |c: char| {
        c.is_control()
            || c.is_numeric()
            || (c.is_ascii_punctuation() && !matches!(c, '\'' | '-' | '.' | ','))
    };
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(StoreError::Invalid(format!(
            "{what} must be 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    if name.chars().any(bad) || !name.chars().any(char::is_alphabetic) {
        return Err(StoreError::Invalid(format!(
            "{what} must be letters (any script), spaces, apostrophes or hyphens"
        )));
    }
    Ok(name)
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingRequest {
    pub patient_id: i64,
    pub doctor_id: i64,
    pub start: DateTime<Utc>,
    pub duration_min: u32,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: i64 },
    #[error("that time slot is already taken")]
    SlotTaken,
    #[error("that time is in the past")]
    PastTime,
    #[error("the doctor does not work at that time")]
    OutsideShift,
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database timed out")]
    Timeout,
}

impl StoreError {
    /// Only infrastructure failures are worth retrying; domain answers are final.
    pub fn is_retriable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Timeout)
    }
}

/// Per-stage latencies of one turn, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TurnLatencies {
    pub transcription_delay_ms: Option<f64>,
    pub end_of_turn_delay_ms: Option<f64>,
    pub llm_ttft_ms: Option<f64>,
    pub tts_ttfb_ms: Option<f64>,
    pub turn_latency_ms: Option<f64>,
    pub pipeline_overhead_ms: Option<f64>,
}

/// One call-record write. Every op carries the call id and a sequence number unique within the
/// call, so a retried batch is applied at most once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordOp {
    pub call_id: String,
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub kind: RecordKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RecordKind {
    CallStarted {
        room: String,
        caller: String,
    },
    Turn {
        index: u32,
        transcript: String,
        reply: String,
        interrupted: bool,
        latencies: TurnLatencies,
    },
    ToolCall {
        name: String,
        arguments: String,
        result: String,
        error: Option<String>,
        duration_ms: f64,
    },
    Usage {
        stt_audio_seconds: f64,
        prompt_tokens: u64,
        completion_tokens: u64,
        tts_characters: u64,
        /// At the configured prices, US dollars.
        #[serde(default)]
        cost_usd: f64,
        /// What the response caches saved (absent in records written before the caches).
        #[serde(default)]
        cache: crate::cache::CacheSavings,
    },
    CallEnded {
        reason: String,
    },
}

/// A phone number as stores compare it: spaces and dashes dropped.
pub fn normalise_phone(p: &str) -> String {
    p.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect()
}

/// A name as stores compare it: single spaces, lower case.
pub fn normalise_name(n: &str) -> String {
    n.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Length of one bookable slot, in minutes.
pub const SLOT_MINUTES: i64 = 30;
/// Longest appointment accepted, in minutes.
pub const MAX_DURATION_MIN: u32 = 240;

/// The end of an appointment, or why its duration or start is unacceptable.
pub fn appointment_end(
    start: DateTime<Utc>,
    duration_min: u32,
) -> Result<DateTime<Utc>, StoreError> {
    if duration_min == 0 || duration_min > MAX_DURATION_MIN {
        let msg = format!("duration must be 1..={MAX_DURATION_MIN} minutes, got {duration_min}");
        return Err(StoreError::Invalid(msg));
    }
    start
        .checked_add_signed(chrono::TimeDelta::minutes(i64::from(duration_min)))
        .ok_or_else(|| StoreError::Invalid("start time out of range".into()))
}

/// Midnight to midnight (UTC) of `day`: the bookings that can touch its slots.
pub fn day_bounds(day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let midnight = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
    (midnight(day), midnight(day.succ_opt().unwrap_or(day)))
}

/// The past-time and shift rules of a booking from `start` to `end`, given the doctor's shift
/// windows on that day; every store applies them in this order.
pub fn check_in_shift(
    windows: &[(DateTime<Utc>, DateTime<Utc>)],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if start <= now {
        return Err(StoreError::PastTime);
    }
    if !windows.iter().any(|&(s, e)| s <= start && end <= e) {
        return Err(StoreError::OutsideShift);
    }
    Ok(())
}

/// The free slots of one doctor's day, shared by every store so they all offer the same: each shift
/// window cut into 30-minute slots aligned to its start (no trailing partial slot), minus those
/// overlapping a `booked` interval, only those starting after `now`.
pub fn free_slots_in(
    doctor_id: i64,
    windows: &[(DateTime<Utc>, DateTime<Utc>)],
    booked: &[(DateTime<Utc>, DateTime<Utc>)],
    now: DateTime<Utc>,
) -> Vec<Slot> {
    let step = chrono::TimeDelta::minutes(SLOT_MINUTES);
    let mut slots = Vec::new();
    for &(shift_start, shift_end) in windows {
        let mut start = shift_start;
        while let Some(end) = start.checked_add_signed(step).filter(|e| *e <= shift_end) {
            let taken = booked.iter().any(|&(b0, b1)| b0 < end && start < b1);
            if start > now && !taken {
                slots.push(Slot {
                    doctor_id,
                    start,
                    end,
                });
            }
            start = end;
        }
    }
    // Overlapping shifts would offer the same slot twice.
    slots.sort_by_key(|s| s.start);
    slots.dedup_by_key(|s| s.start);
    slots
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn find_patient(&self, q: &PatientQuery) -> Result<Vec<Patient>, StoreError>;
    /// Register a new patient (details validated with [`NewPatient::validated`]); someone already
    /// registered with the same name and birth date is returned instead, never registered twice.
    async fn register_patient(&self, p: &NewPatient) -> Result<Registration, StoreError>;
    async fn list_doctors(&self, specialty: Option<&str>) -> Result<Vec<Doctor>, StoreError>;
    async fn free_slots(&self, doctor_id: i64, day: NaiveDate) -> Result<Vec<Slot>, StoreError>;
    async fn appointments_for(&self, patient_id: i64) -> Result<Vec<Appointment>, StoreError>;
    async fn book(&self, req: &BookingRequest) -> Result<Appointment, StoreError>;
    async fn cancel(&self, appointment_id: i64) -> Result<Appointment, StoreError>;
    async fn reschedule(
        &self,
        appointment_id: i64,
        new_start: DateTime<Utc>,
    ) -> Result<Appointment, StoreError>;
    /// Apply a batch of call-record writes; ops already applied (same call id and seq) are skipped.
    async fn write_records(&self, batch: &[RecordOp]) -> Result<(), StoreError>;
    /// The call record as written, in the order the ops were applied.
    async fn call_record(&self, call_id: &str) -> Result<Vec<RecordOp>, StoreError>;
}
