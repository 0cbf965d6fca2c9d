//! The emulator's scripted receptionist. It reads the whole conversation (caller turns and tool
//! results), works out where the booking / cancelling / rescheduling flow stands, and answers with
//! text or tool calls the way a tool-using model would. Deterministic: same conversation, same
//! answer. When two lookups are both ready (doctors and the patient record) it asks for them in one
//! step, which exercises parallel tool calls; so does a search for a free day (a few days per step).
//! Days are searched from the one asked for: from tomorrow when the caller leaves it open ("the
//! next available morning at nine thirty": the first day with that time free), the following days
//! when the day asked for has nothing free (a weekend, say), up to two weeks ahead.

use std::collections::HashMap;

use frontdesk_actors::provider::{ChatRequest, Role};
use serde_json::{json, Value};

use super::parse::{self, Date};

#[path = "policy_input.rs"]
mod input;
#[cfg(feature = "simulate")]
pub use input::double_policy;
use input::{invalid_date, phone_number};

/// What the "model" says next.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub text: String,
    /// (name, arguments) of tool calls, in index order.
    pub calls: Vec<(String, Value)>,
}

impl Reply {
    fn say(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            calls: vec![],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Intent {
    Book,
    Cancel,
    Reschedule,
}

const SPECIALTIES: &[(&str, &str)] = &[
    ("cardio", "Cardiology"),
    ("heart", "Cardiology"),
    ("skin", "Dermatology"),
    ("derma", "Dermatology"),
    ("rash", "Dermatology"),
    ("child", "Paediatrics"),
    ("paediatric", "Paediatrics"),
    ("pediatric", "Paediatrics"),
    ("bone", "Orthopaedics"),
    ("knee", "Orthopaedics"),
    ("ortho", "Orthopaedics"),
    ("neuro", "Neurology"),
    ("migraine", "Neurology"),
    ("general", "General Practice"),
    ("gp", "General Practice"),
];
/// The seed hospital's hours (actors/src/seed.rs: weekday shifts, some Saturday mornings).
const HOURS: &str = "We're open Monday to Friday from 9 am to 5 pm, and some of our clinics \
    also see patients on Saturday mornings from 9 to 1. Is there anything else I can help with?";
const YES: &[&str] = &[
    "yes",
    "yeah",
    "yep",
    "sure",
    "book it",
    "that works",
    "perfect",
    "please do",
    "okay",
    "ok",
    "sounds good",
];

/// Everything the conversation has established so far.
#[derive(Debug, Default)]
struct Facts {
    intent: Option<Intent>,
    specialty: Option<&'static str>,
    name: Option<String>,
    dob: Option<Date>,
    /// Message index of the latest caller turn that gave identity details.
    identity_at: usize,
    /// The day asked for (the first day searched).
    day: Option<Date>,
    /// The caller left the day open: search from `day` for the first day that has `want`.
    flexible: bool,
    /// The time the caller said they want ("HH:MM"), if any.
    want: Option<String>,
    /// The caller's turns in this flow, lowercase (a doctor may be named before the list is known).
    said: Vec<String>,
    doctors: Option<Vec<Value>>,
    patient: Option<Value>,
    /// Message index of the latest find_patient result.
    searched_at: Option<usize>,
    /// The caller's phone number (digits, with a leading + if said), for registering them.
    phone: Option<String>,
    /// A date the caller just said that is not on the calendar ("February thirtieth").
    bad_date: Option<String>,
    /// (doctor_id, date, slot starts) of each list_free_slots, the latest per doctor and date.
    slots: Vec<(i64, String, Vec<String>)>,
    /// Message index of the latest list_free_slots result.
    slots_at: usize,
    /// A booking found its slot gone (taken meanwhile, or now past): the slots are looked up again.
    taken: bool,
    /// The caller's answer after slots were offered: a time ("HH:MM") or "" for a plain yes.
    confirm: Option<String>,
    appointments: Option<Vec<Value>>,
    done: Option<Value>,
    /// Errors among the tool results since the model's last step.
    step_errors: Vec<String>,
}

/// Decide the next reply to `req`; `today` anchors "tomorrow" and weekday names.
pub fn respond(req: &ChatRequest, today: Date) -> Reply {
    let facts = Facts::gather(req, today);
    let last = req.messages.last();
    if let Some(e) = facts.step_errors.first() {
        return Reply::say(format!("I'm sorry, something went wrong on my side: {e} Would you like me to try something else?"));
    }
    if let Some(m) = last.filter(|m| m.role == Role::User) {
        let t = m.content.to_lowercase();
        if (t.contains("thank") || t.contains("bye")) && facts.done.is_some() {
            return Reply::say("You're welcome. Have a good day, goodbye!");
        }
        // Between requests, not in the middle of one (the flow would lose its step).
        let asks_hours = parse::words(&t)
            .iter()
            .any(|w| matches!(w.as_str(), "hours" | "open" | "opening"));
        if asks_hours && (facts.intent.is_none() || facts.done.is_some()) {
            return Reply::say(HOURS);
        }
    }
    if let Some(d) = facts
        .bad_date
        .as_deref()
        .filter(|_| last.is_some_and(|m| m.role == Role::User))
    {
        return Reply::say(format!(
            "I'm sorry, {d} isn't a real date. Could you give me the date again?"
        ));
    }
    if !matches!(last.map(|m| m.role), Some(Role::User | Role::Tool)) {
        return Reply::say("Thank you for calling. How can I help you today?");
    }
    match facts.intent {
        Some(Intent::Book) => facts.book(),
        Some(Intent::Cancel) | Some(Intent::Reschedule) => facts.change(),
        None => Reply::say("I can book, move or cancel appointments. What would you like to do?"),
    }
}

impl Facts {
    fn gather(req: &ChatRequest, today: Date) -> Self {
        let mut f = Facts::default();
        let mut calls: HashMap<&str, (&str, Value)> = HashMap::new();
        for (i, m) in req.messages.iter().enumerate() {
            match m.role {
                Role::User => f.on_user(i, &m.content, today),
                Role::Assistant => {
                    f.step_errors.clear();
                    for c in &m.tool_calls {
                        let args = serde_json::from_str(&c.arguments).unwrap_or(Value::Null);
                        calls.insert(c.id.as_str(), (c.name.as_str(), args));
                    }
                }
                Role::Tool => {
                    let call = m.tool_call_id.as_deref().and_then(|id| calls.get(id));
                    if let Some((name, args)) = call {
                        f.on_result(i, name, args, &m.content);
                    }
                }
                Role::System => {}
            }
        }
        f
    }

    fn on_user(&mut self, i: usize, text: &str, today: Date) {
        self.step_errors.clear();
        let t = text.to_lowercase();
        let specialty = SPECIALTIES
            .iter()
            .find(|(k, _)| t.split_whitespace().any(|w| w.starts_with(k)))
            .map(|(_, s)| *s);
        let intent = detect_intent(&t, specialty.is_some(), self.intent);
        if let Some(new) = intent.filter(|n| Some(*n) != self.intent) {
            // A new request starts its own flow; who the caller is stays known.
            *self = Facts {
                intent: Some(new),
                name: self.name.take(),
                dob: self.dob.take(),
                patient: self.patient.take(),
                identity_at: self.identity_at,
                searched_at: self.searched_at,
                phone: self.phone.take(),
                doctors: self.doctors.take(),
                specialty: self.specialty,
                ..Facts::default()
            };
        }
        if let Some(s) = specialty {
            if self.specialty != Some(s) {
                self.doctors = None;
            }
            self.specialty = Some(s);
        }
        // A date in the past is a birthday, one in the future the day wanted.
        let dob = parse::date_of_birth(text).filter(|d| *d < today);
        let name = parse::name(text);
        if name.is_some() || dob.is_some() {
            self.name = name.or(self.name.take());
            self.dob = dob.or(self.dob);
            self.identity_at = i;
            self.patient = None;
        }
        if let Some(d) = parse::day(text, today).filter(|d| *d >= today) {
            self.day = Some(d);
            self.flexible = false;
        } else if parse::flexible_day(text) {
            self.day = Some(today.add_days(1));
            self.flexible = true;
        }
        self.bad_date = invalid_date(text);
        let phone = phone_number(&t);
        if phone.is_some() {
            self.phone = phone.clone();
        }
        // A time said with a birthday is part of the birthday ("nineteen forty five"); digits
        // of a phone number are no time either.
        if dob.is_none() && phone.is_none() {
            self.want = parse::time(text).or(self.want.take());
        }
        self.taken = false;
        self.on_user_choice(i, &t);
    }

    /// The caller's answer to offered slots.
    fn on_user_choice(&mut self, i: usize, t: &str) {
        self.said.push(t.to_string());
        if !self.slots.is_empty() && i > self.slots_at {
            if let Some(hm) = parse::time(t) {
                self.confirm = Some(hm);
            } else if YES.iter().any(|y| {
                t.split([' ', ',', '.', '!']).any(|w| w == *y) || (y.contains(' ') && t.contains(y))
            }) {
                self.confirm = Some(String::new());
            }
        }
    }

    fn on_result(&mut self, i: usize, name: &str, args: &Value, content: &str) {
        let v: Value = serde_json::from_str(content).unwrap_or(Value::Null);
        if let Some(e) = v.get("error").and_then(Value::as_str) {
            let booking = matches!(name, "book_appointment" | "reschedule_appointment");
            if booking && (e.contains("already taken") || e.contains("in the past")) {
                // The offer is stale: look the days up again and offer what is left.
                self.slots.clear();
                self.confirm = None;
                self.taken = true;
            } else {
                self.step_errors.push(e.to_string());
            }
            return;
        }
        let list = || v["result"].as_array().cloned().unwrap_or_default();
        match name {
            "list_doctors" => self.doctors = Some(list()),
            "register_patient" => {
                self.patient = Some(v["result"]["patient"].clone());
                self.searched_at = Some(i);
            }
            "find_patient" => {
                self.patient = list().into_iter().next();
                self.searched_at = Some(i);
            }
            "list_free_slots" => {
                let starts = list()
                    .iter()
                    .filter_map(|s| s["start"].as_str().map(String::from))
                    .collect();
                let date = args["date"].as_str().unwrap_or_default().to_string();
                let doctor_id = args["doctor_id"].as_i64().unwrap_or(0);
                self.slots
                    .retain(|(d, day, _)| (*d, day.as_str()) != (doctor_id, date.as_str()));
                self.slots.push((doctor_id, date, starts));
                self.slots_at = i;
                self.confirm = None;
            }
            "list_appointments" => {
                let upcoming = list()
                    .into_iter()
                    .filter(|a| a["status"] == "scheduled")
                    .collect();
                self.appointments = Some(upcoming);
            }
            _ => self.done = Some(v["result"].clone()),
        }
    }

    /// Find the patient, or ask who they are; `None` when the patient is known.
    fn identify(&self) -> Option<Reply> {
        if self.patient.is_some() {
            return None;
        }
        let searched = self.searched_at.is_some_and(|s| s > self.identity_at);
        match (&self.name, self.dob) {
            (Some(n), Some(d)) if !searched => Some(call("find_patient", json!({ "name": n, "date_of_birth": d.to_string() }))),
            (Some(n), Some(d)) if self.intent == Some(Intent::Book) => Some(self.register(n, d)),
            (Some(n), Some(d)) => Some(Reply::say(format!(
                "I'm sorry, I couldn't find a record for {n} born {d}. Could you repeat your full name and date of birth?"
            ))),
            (Some(_), None) => Some(Reply::say("Thank you. And your date of birth, please?")),
            _ => Some(Reply::say("Could I have your full name and date of birth, please?")),
        }
    }

    /// A caller with no record who wants to book: register them once their phone is known.
    fn register(&self, name: &str, dob: Date) -> Reply {
        let Some(phone) = &self.phone else {
            return Reply::say(format!(
                "I couldn't find a record for {name} born {dob}, so I'll register you as a new \
                 patient. What phone number can we reach you on?"
            ));
        };
        // The last word is the family name; a one-word name is both.
        let (first, last) = name.rsplit_once(' ').unwrap_or((name, name));
        call(
            "register_patient",
            json!({ "first_name": first, "last_name": last, "date_of_birth": dob.to_string(), "phone": phone }),
        )
    }

    fn book(&self) -> Reply {
        if let Some(a) = &self.done {
            return Reply::say(format!(
                "You're all set: {}. Is there anything else I can help with?",
                describe(a, &self.doctors)
            ));
        }
        let mut lookups = vec![];
        if self.doctors.is_none() {
            let args = self
                .specialty
                .map_or(json!({}), |s| json!({ "specialty": s }));
            lookups.push(("list_doctors".to_string(), args));
        }
        if let Some(r) = self.identify().filter(|r| !r.calls.is_empty()) {
            lookups.extend(r.calls);
        }
        if !lookups.is_empty() {
            return Reply {
                text: "One moment, let me check. ".into(),
                calls: lookups,
            };
        }
        let doctors = self.doctors.as_deref().unwrap_or_default();
        let Some(doctor) = self.named_doctor(doctors).or(doctors.first()) else {
            return Reply::say("I'm sorry, we have no doctor for that at the moment. Can I help with something else?");
        };
        let dname = doctor["name"].as_str().unwrap_or("the doctor");
        if let Some(r) = self.identify() {
            return Reply::say(format!("I can book you with {dname}. {}", r.text));
        }
        let (doctor_id, patient_id) = (doctor["id"].as_i64().unwrap_or(0), self.patient_id());
        self.pick_slot(doctor_id, dname, |start| call("book_appointment", json!({
            "patient_id": patient_id, "doctor_id": doctor_id, "start": start, "reason": self.specialty.unwrap_or("consultation") })))
    }

    /// Cancel or reschedule the caller's next appointment.
    fn change(&self) -> Reply {
        if let Some(a) = &self.done {
            let what = if self.intent == Some(Intent::Cancel) {
                "cancelled"
            } else {
                "moved"
            };
            return Reply::say(format!(
                "Done, your appointment is {what}: {}. Anything else?",
                describe(a, &self.doctors)
            ));
        }
        if let Some(r) = self.identify() {
            return r;
        }
        let Some(appts) = &self.appointments else {
            return call(
                "list_appointments",
                json!({ "patient_id": self.patient_id() }),
            );
        };
        let Some(appt) = appts.first() else {
            return Reply::say(
                "I can't see any upcoming appointments for you. Would you like to book one?",
            );
        };
        let id = appt["id"].as_i64().unwrap_or(0);
        if self.intent == Some(Intent::Cancel) {
            return call("cancel_appointment", json!({ "appointment_id": id }));
        }
        let doctor_id = appt["doctor_id"].as_i64().unwrap_or(0);
        self.pick_slot(doctor_id, "the doctor", |start| {
            call(
                "reschedule_appointment",
                json!({ "appointment_id": id, "new_start": start }),
            )
        })
    }

    /// Day → free slots → the caller's choice → `act(start)`.
    fn pick_slot(&self, doctor_id: i64, dname: &str, act: impl FnOnce(&str) -> Reply) -> Reply {
        let Some(day) = self.day else {
            return Reply::say("Which day would suit you?");
        };
        let (date, starts) = match self.search(doctor_id, day) {
            Search::List(dates) => {
                let calls = dates
                    .into_iter()
                    .map(|d| {
                        let args = json!({ "doctor_id": doctor_id, "date": d.to_string() });
                        ("list_free_slots".to_string(), args)
                    })
                    .collect();
                return Reply {
                    text: String::new(),
                    calls,
                };
            }
            Search::Nothing => {
                return Reply::say(format!(
                    "I'm sorry, {dname} has nothing free from {} for the next two weeks. Would a later date work?",
                    when(day)
                ));
            }
            Search::Found(date, starts) => (date, starts),
        };
        let offer: Vec<String> = starts.iter().take(3).map(|s| hm(s)).collect();
        let wanted = self
            .want
            .as_deref()
            .and_then(|t| starts.iter().find(|s| hm(s) == t));
        match self.confirm.as_deref() {
            // A plain yes takes what was proposed: the time asked for, else the earliest.
            Some("") => return act(wanted.unwrap_or(&starts[0])),
            Some(t) => {
                return match starts.iter().find(|s| hm(s) == t) {
                    Some(s) => act(s),
                    None => Reply::say(format!(
                        "I'm sorry, {t} isn't free. I have {}. Which would you like?",
                        offer.join(", ")
                    )),
                };
            }
            None => {}
        }
        let mut text = String::new();
        if self.taken {
            text.push_str("I'm sorry, that time has just been taken. ");
        }
        if date != day && !self.flexible {
            text.push_str(&format!("{dname} has nothing free on {}. ", when(day)));
        }
        let on = when(date);
        text.push_str(&match (wanted, self.want.as_deref()) {
            (Some(s), _) => format!("{dname} has {} free on {on}. Shall I book that?", hm(s)),
            (None, Some(t)) => format!(
                "{t} isn't free on {on}, but {dname} has {}. Which would you like?",
                offer.join(", ")
            ),
            (None, None) => format!(
                "{dname} has {} on {on}. The earliest is {}. Shall I book that?",
                offer.join(", "),
                offer[0]
            ),
        });
        Reply::say(text)
    }

    /// The day to offer: the day asked for if it has a free slot (with the wanted time, when the
    /// day was left open), else the first following day that has one, up to `HORIZON_DAYS`; days
    /// not looked up yet are asked for first, a few at a time. An open day with the wanted time
    /// nowhere falls back to the first day with anything free.
    fn search(&self, doctor_id: i64, day: Date) -> Search<'_> {
        let listed = |d: Date| {
            let date = d.to_string();
            self.slots
                .iter()
                .find(|(doc, listed, _)| *doc == doctor_id && *listed == date)
                .map(|(_, _, starts)| starts.as_slice())
        };
        let fits = |starts: &[String]| match (&self.want, self.flexible) {
            (Some(t), true) => starts.iter().any(|s| hm(s) == *t),
            _ => !starts.is_empty(),
        };
        for k in 0..HORIZON_DAYS {
            let d = day.add_days(k);
            match listed(d) {
                Some(starts) if fits(starts) => return Search::Found(d, starts),
                Some(_) => {}
                None => {
                    // A day named by the caller is looked up alone; a search goes a few days at a time.
                    let n = if k == 0 && !self.flexible {
                        1
                    } else {
                        BATCH_DAYS
                    };
                    let dates = (k..(k + n).min(HORIZON_DAYS))
                        .map(|j| day.add_days(j))
                        .filter(|d| listed(*d).is_none())
                        .collect();
                    return Search::List(dates);
                }
            }
        }
        (0..HORIZON_DAYS)
            .map(|k| day.add_days(k))
            .find_map(|d| listed(d).filter(|s| !s.is_empty()).map(|s| (d, s)))
            .map_or(Search::Nothing, |(d, s)| Search::Found(d, s))
    }

    /// The doctor the caller named most recently (by surname), if any.
    fn named_doctor<'a>(&self, doctors: &'a [Value]) -> Option<&'a Value> {
        let surname = |d: &Value| {
            let n = d["name"].as_str().and_then(|n| n.split_whitespace().last());
            n.unwrap_or("-").to_lowercase()
        };
        self.said
            .iter()
            .rev()
            .find_map(|t| doctors.iter().find(|d| t.contains(&surname(d))))
    }

    fn patient_id(&self) -> i64 {
        self.patient
            .as_ref()
            .and_then(|p| p["id"].as_i64())
            .unwrap_or(0)
    }
}

/// What the caller asks for in this turn, if it changes anything.
fn detect_intent(t: &str, names_specialty: bool, current: Option<Intent>) -> Option<Intent> {
    let has = |keys: &[&str]| keys.iter().any(|k| t.contains(k));
    if has(&["cancel"]) {
        Some(Intent::Cancel)
    } else if has(&["reschedule", "move my", "move the", "move it", "change my"]) {
        Some(Intent::Reschedule)
    } else if current.is_none()
        && (names_specialty || has(&["appointment", "book", "doctor", "see someone"]))
    {
        Some(Intent::Book)
    } else {
        None
    }
}

/// How far ahead a day is searched, counting the day asked for.
const HORIZON_DAYS: i64 = 14;
/// Days looked up in one step of a search: three days always include a weekday.
const BATCH_DAYS: i64 = 3;

/// Where the search for a day stands.
enum Search<'a> {
    /// Look these days up (in one step).
    List(Vec<Date>),
    /// Offer this day, with its free slot starts (never empty).
    Found(Date, &'a [String]),
    /// Nothing free within the horizon.
    Nothing,
}

/// "09:30" from an RFC 3339 start.
fn hm(start: &str) -> String {
    start.get(11..16).unwrap_or("").to_string()
}

/// "Monday 2026-11-30".
fn when(d: Date) -> String {
    format!("{} {d}", d.weekday_name())
}

fn call(name: &str, args: Value) -> Reply {
    Reply {
        text: String::new(),
        calls: vec![(name.into(), args)],
    }
}

/// "Dr. X on 2026-11-25 at 09:30" from an appointment.
fn describe(a: &Value, doctors: &Option<Vec<Value>>) -> String {
    let start = a["start"].as_str().unwrap_or("");
    let doctor = doctors
        .iter()
        .flatten()
        .find(|d| d["id"] == a["doctor_id"])
        .and_then(|d| d["name"].as_str())
        .unwrap_or("your doctor");
    format!(
        "{doctor} on {} at {}",
        start.get(..10).unwrap_or("?"),
        start.get(11..16).unwrap_or("?")
    )
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
