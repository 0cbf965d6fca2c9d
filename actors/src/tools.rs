//! The agent's function tools over the hospital store: their JSON schemas for the LLM, argument
//! validation, and execution. Invalid arguments become a tool result the model can read, never a
//! crash.

use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::provider::{ToolCall, ToolSpec};
use crate::store::{BookingRequest, NewPatient, PatientQuery, Store, StoreError};

/// How a tool call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolStatus {
    Ok,
    InvalidArguments,
    UnknownTool,
    /// The store answered with a domain error (slot taken, not found...).
    Rejected,
    /// The store could not be reached in time.
    Unavailable,
}

impl ToolStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ToolStatus::Ok => "ok",
            ToolStatus::InvalidArguments => "invalid_arguments",
            ToolStatus::UnknownTool => "unknown_tool",
            ToolStatus::Rejected => "rejected",
            ToolStatus::Unavailable => "unavailable",
        }
    }
}

/// The tool result handed back to the model (`content` is JSON text).
#[derive(Clone, Debug, PartialEq)]
pub struct ToolOutcome {
    pub status: ToolStatus,
    pub content: String,
}

impl ToolOutcome {
    fn ok(v: Value) -> Self {
        Self {
            status: ToolStatus::Ok,
            content: v.to_string(),
        }
    }
    pub fn error(status: ToolStatus, msg: impl std::fmt::Display) -> Self {
        Self {
            status,
            content: json!({ "error": msg.to_string() }).to_string(),
        }
    }
    /// What the model reads when the database is down: it should tell the caller, not retry.
    pub fn unavailable() -> Self {
        Self::error(
            ToolStatus::Unavailable,
            "The appointment system is unavailable right now. Apologise and offer to take a message.",
        )
    }
    pub fn is_error(&self) -> bool {
        self.status != ToolStatus::Ok
    }
}

fn spec(name: &str, description: &str, parameters: Value) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        description: description.into(),
        parameters,
    }
}

/// Names of the tools offered to the model.
pub const TOOL_NAMES: &[&str] = &[
    "find_patient",
    "register_patient",
    "list_doctors",
    "list_free_slots",
    "list_appointments",
    "book_appointment",
    "cancel_appointment",
    "reschedule_appointment",
];

/// The tools offered to the model.
pub fn tool_specs() -> Vec<ToolSpec> {
    let id = json!({ "type": "integer" });
    let date = json!({ "type": "string", "description": "YYYY-MM-DD" });
    let time =
        json!({ "type": "string", "description": "RFC 3339 date-time, e.g. 2026-11-24T09:30:00Z" });
    vec![
        spec(
            "find_patient",
            "Find a patient by full name and date of birth, or by phone number.",
            json!({ "type": "object", "properties": { "name": { "type": "string" }, "date_of_birth": date, "phone": { "type": "string" } } }),
        ),
        spec(
            "register_patient",
            "Register a new patient (after find_patient found no record). Registering someone \
             already registered returns their existing record.",
            json!({ "type": "object", "properties": { "first_name": { "type": "string" },
                "last_name": { "type": "string" }, "date_of_birth": date,
                "phone": { "type": "string", "description": "7 to 15 digits, optionally after a +" } },
                "required": ["first_name", "last_name", "date_of_birth", "phone"] }),
        ),
        spec(
            "list_doctors",
            "List doctors, optionally of one specialty.",
            json!({ "type": "object", "properties": { "specialty": { "type": "string" } } }),
        ),
        spec(
            "list_free_slots",
            "Free appointment slots of a doctor on a day.",
            json!({ "type": "object", "properties": { "doctor_id": id, "date": date }, "required": ["doctor_id", "date"] }),
        ),
        spec(
            "list_appointments",
            "A patient's appointments.",
            json!({ "type": "object", "properties": { "patient_id": id }, "required": ["patient_id"] }),
        ),
        spec(
            "book_appointment",
            "Book an appointment in a free slot.",
            json!({ "type": "object", "properties": { "patient_id": id, "doctor_id": id, "start": time,
                "duration_min": { "type": "integer" }, "reason": { "type": "string" } },
                "required": ["patient_id", "doctor_id", "start"] }),
        ),
        spec(
            "cancel_appointment",
            "Cancel an appointment.",
            json!({ "type": "object", "properties": { "appointment_id": id }, "required": ["appointment_id"] }),
        ),
        spec(
            "reschedule_appointment",
            "Move an appointment to a new start time.",
            json!({ "type": "object", "properties": { "appointment_id": id, "new_start": time },
                "required": ["appointment_id", "new_start"] }),
        ),
    ]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FindPatient {
    name: Option<String>,
    date_of_birth: Option<NaiveDate>,
    phone: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Register {
    first_name: String,
    last_name: String,
    /// Parsed here rather than by serde, for an error the model can repeat to the caller.
    date_of_birth: String,
    phone: String,
}

impl Register {
    /// The details, validated as the stores validate them (today by the wall clock; the store
    /// checks again with its own).
    fn new_patient(self) -> Result<NewPatient, ToolOutcome> {
        let invalid = |msg: String| ToolOutcome::error(ToolStatus::InvalidArguments, msg);
        let date_of_birth = NaiveDate::parse_from_str(self.date_of_birth.trim(), "%Y-%m-%d")
            .map_err(|_| invalid("date_of_birth must be a real date as YYYY-MM-DD".into()))?;
        let p = NewPatient {
            first_name: self.first_name,
            last_name: self.last_name,
            date_of_birth,
            phone: self.phone,
        };
        p.validated(Utc::now().date_naive())
            .map_err(|e| invalid(e.to_string()))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListDoctors {
    specialty: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FreeSlots {
    doctor_id: i64,
    date: NaiveDate,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatientId {
    patient_id: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Book {
    patient_id: i64,
    doctor_id: i64,
    start: DateTime<Utc>,
    duration_min: Option<u32>,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppointmentId {
    appointment_id: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reschedule {
    appointment_id: i64,
    new_start: DateTime<Utc>,
}

fn args<T: DeserializeOwned>(raw: &str) -> Result<T, ToolOutcome> {
    let raw = if raw.trim().is_empty() { "{}" } else { raw };
    serde_json::from_str(raw).map_err(|e| {
        ToolOutcome::error(
            ToolStatus::InvalidArguments,
            format!("invalid arguments: {e}"),
        )
    })
}

fn from_store<T: serde::Serialize>(r: Result<T, StoreError>) -> ToolOutcome {
    match r {
        Ok(v) => ToolOutcome::ok(json!({ "result": v })),
        Err(e) if e.is_retriable() => ToolOutcome::unavailable(),
        Err(e) => ToolOutcome::error(ToolStatus::Rejected, e),
    }
}

/// Validate the arguments and run one tool against the store.
pub async fn execute(store: &dyn Store, call: &ToolCall) -> ToolOutcome {
    match run(store, call).await {
        Ok(outcome) | Err(outcome) => outcome,
    }
}

async fn run(store: &dyn Store, call: &ToolCall) -> Result<ToolOutcome, ToolOutcome> {
    let a = call.arguments.as_str();
    Ok(match call.name.as_str() {
        "find_patient" => {
            let p: FindPatient = args(a)?;
            if p.phone.is_none() && (p.name.is_none() || p.date_of_birth.is_none()) {
                return Err(ToolOutcome::error(
                    ToolStatus::InvalidArguments,
                    "give a phone number, or a name together with a date of birth",
                ));
            }
            let q = PatientQuery {
                name: p.name,
                date_of_birth: p.date_of_birth,
                phone: p.phone,
            };
            from_store(store.find_patient(&q).await)
        }
        "register_patient" => {
            let r: Register = args(a)?;
            from_store(store.register_patient(&r.new_patient()?).await)
        }
        "list_doctors" => {
            let d: ListDoctors = args(a)?;
            from_store(store.list_doctors(d.specialty.as_deref()).await)
        }
        "list_free_slots" => {
            let s: FreeSlots = args(a)?;
            from_store(store.free_slots(s.doctor_id, s.date).await)
        }
        "list_appointments" => {
            let p: PatientId = args(a)?;
            from_store(store.appointments_for(p.patient_id).await)
        }
        "book_appointment" => {
            let b: Book = args(a)?;
            let req = BookingRequest {
                patient_id: b.patient_id,
                doctor_id: b.doctor_id,
                start: b.start,
                duration_min: b.duration_min.unwrap_or(30),
                reason: b.reason.unwrap_or_default(),
            };
            from_store(store.book(&req).await)
        }
        "cancel_appointment" => {
            let c: AppointmentId = args(a)?;
            from_store(store.cancel(c.appointment_id).await)
        }
        "reschedule_appointment" => {
            let r: Reschedule = args(a)?;
            from_store(store.reschedule(r.appointment_id, r.new_start).await)
        }
        other => ToolOutcome::error(ToolStatus::UnknownTool, format!("unknown tool {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doubles::MemoryStore;

    fn call(name: &str, args: &str) -> ToolCall {
        ToolCall {
            id: "c1".into(),
            name: name.into(),
            arguments: args.into(),
        }
    }

    #[tokio::test]
    async fn invalid_arguments_are_a_readable_result() {
        let store = MemoryStore::seeded();
        for (name, args) in [
            (
                "list_free_slots",
                r#"{"doctor_id": "one", "date": "2026-11-24"}"#,
            ),
            (
                "list_free_slots",
                r#"{"doctor_id": 1, "date": "24/11/2026"}"#,
            ),
            ("book_appointment", r#"{"patient_id": 1}"#),
            ("find_patient", r#"{"name": "Emma"}"#),
            ("list_doctors", "not json"),
            ("list_doctors", r#"{"specialty": "cardiology", "extra": 1}"#),
        ] {
            let out = execute(&store, &call(name, args)).await;
            assert_eq!(
                out.status,
                ToolStatus::InvalidArguments,
                "{name} {args}: {out:?}"
            );
            let v: Value = serde_json::from_str(&out.content).unwrap();
            assert!(v["error"].is_string());
        }
    }

    #[tokio::test]
    async fn unknown_tool_and_domain_errors() {
        let store = MemoryStore::seeded();
        let out = execute(&store, &call("drop_tables", "{}")).await;
        assert_eq!(out.status, ToolStatus::UnknownTool);
        let out = execute(
            &store,
            &call("cancel_appointment", r#"{"appointment_id": 999999}"#),
        )
        .await;
        assert_eq!(out.status, ToolStatus::Rejected, "{out:?}");
        let out = execute(
            &store,
            &call(
                "find_patient",
                r#"{"name": "x'; DROP TABLE patients; --", "date_of_birth": "1980-01-01"}"#,
            ),
        )
        .await;
        assert_eq!(out.status, ToolStatus::Ok);
        assert_eq!(out.content, r#"{"result":[]}"#);
    }

    #[tokio::test]
    async fn outage_reads_as_unavailable() {
        let store = MemoryStore::seeded();
        store.set_available(false);
        let out = execute(&store, &call("list_doctors", "{}")).await;
        assert_eq!(out, ToolOutcome::unavailable());
        store.set_available(true);
        let out = execute(&store, &call("list_doctors", r#"{"specialty": "cardio"}"#)).await;
        assert_eq!(out.status, ToolStatus::Ok);
        assert!(out.content.contains("Cardiology"), "{}", out.content);
    }

    #[tokio::test]
    async fn register_patient_validates_then_registers_once() {
        let store = MemoryStore::seeded();
        let args = |first: &str, dob: &str, phone: &str| {
            json!({ "first_name": first, "last_name": "Ndiaye-Øster", "date_of_birth": dob, "phone": phone })
                .to_string()
        };
        for (a, says) in [
            (
                args("Aïssata", "1990-02-30", "+221 33 555 0101"),
                "YYYY-MM-DD",
            ),
            (
                args("Aïssata", "30/01/1990", "+221 33 555 0101"),
                "YYYY-MM-DD",
            ),
            (
                args("Aïssata", "2999-01-01", "+221 33 555 0101"),
                "date of birth",
            ),
            (args("Aïssata", "1990-01-30", "call me"), "phone"),
            (args("", "1990-01-30", "+221 33 555 0101"), "first name"),
            (r#"{"first_name": "A"}"#.to_string(), "missing field"),
        ] {
            let out = execute(&store, &call("register_patient", &a)).await;
            assert_eq!(out.status, ToolStatus::InvalidArguments, "{a}: {out:?}");
            let v: Value = serde_json::from_str(&out.content).unwrap();
            assert!(v["error"].as_str().unwrap().contains(says), "{a}: {v}");
        }
        let a = args("Aïssata", "1990-01-30", "+221 33 555 0101");
        let out = execute(&store, &call("register_patient", &a)).await;
        assert_eq!(out.status, ToolStatus::Ok, "{out:?}");
        let v: Value = serde_json::from_str(&out.content).unwrap();
        assert_eq!(v["result"]["created"], true);
        assert_eq!(v["result"]["patient"]["id"], 21);
        assert_eq!(v["result"]["patient"]["phone"], "+221335550101");
        let out = execute(&store, &call("register_patient", &a)).await;
        let v: Value = serde_json::from_str(&out.content).unwrap();
        assert_eq!(
            (
                v["result"]["created"].clone(),
                v["result"]["patient"]["id"].clone()
            ),
            (json!(false), json!(21))
        );
    }

    #[test]
    fn every_spec_is_named_in_tool_names() {
        let names: Vec<String> = tool_specs().into_iter().map(|s| s.name).collect();
        assert_eq!(names, TOOL_NAMES);
    }
}
