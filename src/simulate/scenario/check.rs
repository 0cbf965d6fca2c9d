//! The goal of each scenario, checked in the database after the call (its appointments, and
//! the call record's tool calls), and what the database needs before it.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use frontdesk_actors::seed;
use frontdesk_actors::store::{
    Appointment, AppointmentStatus, BookingRequest, RecordKind, Store, StoreError,
};
use serde_json::Value;

use super::{Plan, Scenario, FULL_DOCTOR, PREPARED_DOCTOR};

impl Plan {
    /// What the database needs before the call: an appointment to move or cancel, a full day.
    pub async fn prepare(&self, store: &dyn Store, now: DateTime<Utc>) -> anyhow::Result<()> {
        match self.scenario {
            Scenario::Reschedule | Scenario::Cancel => {
                let found = store.find_patient(&self.caller.query()).await?;
                let p = found
                    .first()
                    .ok_or_else(|| anyhow::anyhow!("seeded caller missing"))?;
                book_first_free(store, p.id, now.date_naive()).await?;
            }
            Scenario::FullDay => {
                let day = self.full_day.unwrap_or_default();
                for (n, slot) in store.free_slots(FULL_DOCTOR, day).await?.iter().enumerate() {
                    let req = BookingRequest {
                        patient_id: 1 + (n % 20) as i64,
                        doctor_id: FULL_DOCTOR,
                        start: slot.start,
                        duration_min: 30,
                        reason: "fully booked".into(),
                    };
                    // Another call filling the same day got there first: just as full.
                    match store.book(&req).await {
                        Ok(_) | Err(StoreError::SlotTaken) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether the call reached its goal, read from the database; `Err` says why not.
    pub async fn check(&self, store: &dyn Store, tools: &[ToolUse]) -> Result<(), String> {
        // A general question's caller need not be a patient.
        if self.scenario == Scenario::Questions {
            return answered(tools);
        }
        let found = store
            .find_patient(&self.caller.query())
            .await
            .map_err(|e| e.to_string())?;
        let [patient] = found.as_slice() else {
            return Err(format!(
                "{} patients of the caller's name and birth date",
                found.len()
            ));
        };
        let mine = store
            .appointments_for(patient.id)
            .await
            .map_err(|e| e.to_string())?;
        match self.scenario {
            Scenario::NewPatient => {
                if patient.id <= seed::patients().len() as i64
                    || !tools.iter().any(|t| t.name == "register_patient" && t.ok())
                {
                    return Err("the caller was not registered in this call".into());
                }
                booked(store, &mine, tools, None).await
            }
            Scenario::Book => booked(store, &mine, tools, None).await,
            Scenario::FullDay => booked(store, &mine, tools, self.full_day).await,
            Scenario::InvalidDate => {
                if tools.iter().any(|t| t.arguments.contains("-02-30")) {
                    return Err("the invalid date reached a tool".into());
                }
                booked(store, &mine, tools, None).await
            }
            Scenario::Reschedule => moved(&mine, tools),
            Scenario::Cancel => cancelled(&mine, tools),
            Scenario::Questions => answered(tools),
        }
    }
}

/// General questions: the doctors were looked up, and no caller data was touched.
fn answered(tools: &[ToolUse]) -> Result<(), String> {
    if let Some(t) = tools
        .iter()
        .find(|t| !matches!(t.name.as_str(), "list_doctors" | "list_free_slots"))
    {
        return Err(format!("{} was called for a general question", t.name));
    }
    tools
        .iter()
        .any(|t| t.name == "list_doctors" && t.ok())
        .then_some(())
        .ok_or_else(|| "the doctors were never looked up".into())
}

/// The last appointment a successful `tool` call returned.
fn returned(tools: &[ToolUse], tool: &str) -> Option<Appointment> {
    let ok = tools.iter().filter(|t| t.name == tool && t.ok());
    ok.filter_map(ToolUse::appointment).next_back()
}

/// The caller's appointment was moved: still scheduled, at the new time, not the listed one.
fn moved(mine: &[Appointment], tools: &[ToolUse]) -> Result<(), String> {
    let moved = returned(tools, "reschedule_appointment").ok_or("no appointment was moved")?;
    let now = mine
        .iter()
        .find(|a| a.id == moved.id)
        .ok_or("moved appointment gone")?;
    // Where it was: as list_appointments showed it before the move.
    let before = tools.iter().find_map(|t| {
        let list = t.result.get("result")?.as_array()?;
        let a = list.iter().find(|a| a["id"] == moved.id)?;
        a["start"].as_str().map(str::to_string)
    });
    let was = before.ok_or("the appointment was never listed")?;
    if now.status != AppointmentStatus::Scheduled || now.start != moved.start {
        return Err(format!("appointment is {:?} at {}", now.status, now.start));
    }
    (was.parse::<DateTime<Utc>>().ok() != Some(now.start))
        .then_some(())
        .ok_or_else(|| "the appointment did not move".into())
}

/// The caller's appointment is cancelled in the database.
fn cancelled(mine: &[Appointment], tools: &[ToolUse]) -> Result<(), String> {
    let gone = returned(tools, "cancel_appointment").ok_or("no appointment was cancelled")?;
    let a = mine
        .iter()
        .find(|a| a.id == gone.id)
        .ok_or("cancelled appointment missing")?;
    (a.status == AppointmentStatus::Cancelled)
        .then_some(())
        .ok_or_else(|| format!("appointment is {:?}", a.status))
}

/// Book `patient_id` into the prepared doctor's first free slot from tomorrow.
async fn book_first_free(
    store: &dyn Store,
    patient_id: i64,
    today: NaiveDate,
) -> anyhow::Result<()> {
    for k in 1..15 {
        let day = today + TimeDelta::days(k);
        for slot in store.free_slots(PREPARED_DOCTOR, day).await? {
            let req = BookingRequest {
                patient_id,
                doctor_id: PREPARED_DOCTOR,
                start: slot.start,
                duration_min: 30,
                reason: "follow-up".into(),
            };
            match store.book(&req).await {
                Ok(_) => return Ok(()),
                Err(StoreError::SlotTaken) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
    anyhow::bail!("no free slot to prepare an appointment")
}

/// The call's booking is in the database: scheduled, the caller's, its slot no longer offered
/// (no one else can have it), and not on `not_on` (the full day).
async fn booked(
    store: &dyn Store,
    mine: &[Appointment],
    tools: &[ToolUse],
    not_on: Option<NaiveDate>,
) -> Result<(), String> {
    let made = returned(tools, "book_appointment").ok_or("nothing was booked")?;
    let a = mine
        .iter()
        .find(|a| a.id == made.id)
        .ok_or("the booking is not the caller's")?;
    if a.status != AppointmentStatus::Scheduled || a.start != made.start {
        return Err(format!("booking is {:?} at {}", a.status, a.start));
    }
    if not_on == Some(a.start.date_naive()) {
        return Err("booked on the full day".into());
    }
    let free = store.free_slots(a.doctor_id, a.start.date_naive()).await;
    if free
        .map_err(|e| e.to_string())?
        .iter()
        .any(|s| s.start == a.start)
    {
        return Err("the booked slot is still offered".into());
    }
    Ok(())
}

/// One tool call of a call record.
#[derive(Clone, Debug)]
pub struct ToolUse {
    pub name: String,
    pub arguments: String,
    pub result: Value,
}

impl ToolUse {
    fn ok(&self) -> bool {
        self.result.get("error").is_none()
    }

    /// The appointment a booking, move or cancellation returned.
    fn appointment(&self) -> Option<Appointment> {
        serde_json::from_value(self.result.get("result")?.clone()).ok()
    }
}

/// The tool calls of call `call_id`, from its record in the database.
pub async fn tool_uses(store: &dyn Store, call_id: &str) -> Result<Vec<ToolUse>, StoreError> {
    let record = store.call_record(call_id).await?;
    Ok(record
        .into_iter()
        .filter_map(|op| match op.kind {
            RecordKind::ToolCall {
                name,
                arguments,
                result,
                ..
            } => Some(ToolUse {
                name,
                arguments,
                result: serde_json::from_str(&result).unwrap_or(Value::Null),
            }),
            _ => None,
        })
        .collect())
}
