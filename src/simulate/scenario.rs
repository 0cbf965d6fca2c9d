//! What the simulated callers want: whole scenarios (a new patient registers and books; a known
//! patient books, reschedules, cancels; asks for a fully booked day; gives an invalid date), each
//! as the caller's lines, what the database needs before the call, and a check after it that the
//! goal was reached, read from the database (the appointments and the call record's tool calls).
//! Calls take the scenarios round-robin; call `i`'s lines are its STT script (keyed by call id).

mod check;
mod tally;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc, Weekday};
use frontdesk_actors::seed;
use frontdesk_actors::store::{PatientQuery, Store};

pub use self::check::{tool_uses, ToolUse};
pub use self::tally::{table, ScenarioRow, Tally};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Scenario {
    /// Not in the records: registers (name, birth date, phone), then books.
    NewPatient,
    /// A seeded patient books the first day with the time they want.
    Book,
    /// A seeded patient moves their appointment.
    Reschedule,
    /// A seeded patient cancels their appointment.
    Cancel,
    /// Asks for a day the doctor is fully booked: books the next day that has the time.
    FullDay,
    /// Asks for "February thirtieth", is asked again, then books.
    InvalidDate,
    /// Asks what every caller may ask (opening hours, Saturday doctors): the LLM answer cache's.
    Questions,
}

pub const ALL: [Scenario; 7] = [
    Scenario::NewPatient,
    Scenario::Book,
    Scenario::Reschedule,
    Scenario::Cancel,
    Scenario::FullDay,
    Scenario::InvalidDate,
    Scenario::Questions,
];

/// `--scenario`: one scenario, or all of them round-robin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Selection {
    #[default]
    All,
    One(Scenario),
}

/// Parse `--scenario NAME|all` (names as in `--help`, e.g. new-patient, full-day).
pub fn parse_selection(s: &str) -> Result<Selection, String> {
    if s == "all" {
        return Ok(Selection::All);
    }
    <Scenario as clap::ValueEnum>::from_str(s, true)
        .map(Selection::One)
        .map_err(|_| {
            let names: Vec<&str> = ALL.iter().map(|s| s.name()).collect();
            format!("unknown scenario {s:?}: one of all, {}", names.join(", "))
        })
}

impl Selection {
    /// Call `i`'s scenario and its index among the calls of that scenario.
    pub fn for_call(self, i: usize) -> (Scenario, usize) {
        match self {
            Selection::All => (ALL[i % ALL.len()], i / ALL.len()),
            Selection::One(s) => (s, i),
        }
    }
}

/// The id of simulated call `i` (also its STT script's key).
pub fn call_id(i: usize) -> String {
    format!("sim-{i:05}")
}

/// Every call's lines by call id: the STT emulator's or double's scripts.
pub fn scripts(sel: Selection, calls: usize) -> HashMap<String, Vec<String>> {
    let now = Utc::now();
    (0..calls)
        .map(|i| (call_id(i), Plan::new(sel, i, now).lines))
        .collect()
}

/// New patients' names: any script, each with a few birth years so calls never share one.
const NEW_NAMES: [(&str, &str); 8] = [
    ("Zoë", "Ångström"),
    ("José", "Núñez"),
    ("Siobhán", "O'Neill"),
    ("Łukasz", "Żółkiewski"),
    ("Chloé", "Lefèvre"),
    ("Björn", "Ødegård"),
    ("Ayşe", "Yıldız"),
    ("Nguyễn", "Thị-Hoa"),
];
/// Doctor 5 (Orthopaedics, weekdays only) is the one fully booked.
const FULL_DOCTOR: i64 = 5;
/// Doctor 6 (Neurology) holds the appointments that are moved and cancelled.
const PREPARED_DOCTOR: i64 = 6;

/// Who calls: their name, birth date and (for a new patient) phone.
#[derive(Clone, Debug)]
pub struct Caller {
    pub first_name: String,
    pub last_name: String,
    pub date_of_birth: NaiveDate,
    pub phone: Option<String>,
}

impl Caller {
    fn seeded(i: usize) -> Self {
        let all = seed::patients();
        let p = &all[i % all.len()];
        Self {
            first_name: p.first_name.into(),
            last_name: p.last_name.into(),
            date_of_birth: p.date_of_birth,
            phone: None,
        }
    }

    fn new_patient(k: usize) -> Self {
        let (first, last) = NEW_NAMES[k % NEW_NAMES.len()];
        let n = k / NEW_NAMES.len();
        let year = 1950 + (n % 60) as i32;
        let dob = NaiveDate::from_ymd_opt(year, 1 + (k % 12) as u32, 1 + (k % 28) as u32);
        Self {
            first_name: first.into(),
            last_name: last.into(),
            date_of_birth: dob.unwrap_or_default(),
            phone: Some(format!("020 7946 {:04}", k % 10_000)),
        }
    }

    /// "My name is Zoë Ångström, born March 3, 1990."
    fn introduction(&self) -> String {
        // chrono's English names: "%B %-d, %Y" is "March 3, 1990".
        let born = self.date_of_birth.format("%B %-d, %Y");
        format!(
            "My name is {} {}, born {born}.",
            self.first_name, self.last_name
        )
    }

    fn query(&self) -> PatientQuery {
        PatientQuery {
            name: Some(format!("{} {}", self.first_name, self.last_name)),
            date_of_birth: Some(self.date_of_birth),
            phone: None,
        }
    }
}

/// One call's scenario: its caller, lines, and what the goal check needs.
#[derive(Clone, Debug)]
pub struct Plan {
    pub scenario: Scenario,
    pub caller: Caller,
    pub lines: Vec<String>,
    /// The fully booked day (`FullDay`).
    pub full_day: Option<NaiveDate>,
}

/// The first weekday after `today`.
fn next_weekday(today: NaiveDate) -> NaiveDate {
    let mut d = today + TimeDelta::days(1);
    while matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
        d += TimeDelta::days(1);
    }
    d
}

impl Plan {
    /// Call `i`'s plan; its wanted time varies by call so concurrent callers rarely collide.
    pub fn new(sel: Selection, i: usize, now: DateTime<Utc>) -> Self {
        let (scenario, k) = sel.for_call(i);
        let time = format!("{:02}:{:02}", 9 + (k % 14) / 2, 30 * (k % 2));
        let caller = match scenario {
            Scenario::NewPatient => Caller::new_patient(k),
            _ => Caller::seeded(i),
        };
        let intro = caller.introduction();
        let book_it = "Yes, please book it.".to_string();
        let mut full_day = None;
        // Few turns: each is several seconds of speech and reply, and a call lasts about 30 s.
        let lines = match scenario {
            Scenario::NewPatient => vec![
                format!(
                    "Hello, I would like to book a skin doctor the next available day at {time}."
                ),
                format!(
                    "{}, and my phone number is {}.",
                    intro.trim_end_matches('.'),
                    caller.phone.as_deref().unwrap_or("")
                ),
                book_it,
            ],
            Scenario::Book => vec![
                format!(
                    "Hello, I would like to book a heart doctor the next available day at {time}."
                ),
                intro,
                book_it,
            ],
            Scenario::Reschedule => vec![
                format!(
                    "Hello, I need to move my appointment to the next available day at {time}."
                ),
                intro,
                "Yes, please move it.".into(),
            ],
            Scenario::Cancel => vec!["Hello, I need to cancel my appointment.".into(), intro],
            Scenario::FullDay => {
                let day = next_weekday(now.date_naive());
                full_day = Some(day);
                vec![
                    format!(
                        "Hello, I would like an appointment for my knee on {} at {time}.",
                        day.format("%A")
                    ),
                    intro,
                    book_it,
                ]
            }
            Scenario::InvalidDate => vec![
                format!("Hello, I would like to book a general practitioner. {intro}"),
                format!("On February thirtieth at {time}, please."),
                "Sorry, I meant the next available day.".into(),
                book_it,
            ],
            Scenario::Questions => vec![
                "What are your opening hours?".into(),
                "Which doctors work on Saturday?".into(),
            ],
        };
        Self {
            scenario,
            caller,
            lines,
            full_day,
        }
    }
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::NewPatient => "new-patient",
            Scenario::Book => "book",
            Scenario::Reschedule => "reschedule",
            Scenario::Cancel => "cancel",
            Scenario::FullDay => "full-day",
            Scenario::InvalidDate => "invalid-date",
            Scenario::Questions => "questions",
        }
    }

    /// The goal, as the report names it.
    pub fn goal(self) -> &'static str {
        match self {
            Scenario::NewPatient => "registered and booked",
            Scenario::Book => "booked",
            Scenario::Reschedule => "moved",
            Scenario::Cancel => "cancelled",
            Scenario::FullDay => "booked another day",
            Scenario::InvalidDate => "booked after a corrected date",
            Scenario::Questions => "answered, nothing booked",
        }
    }
}

/// A run's scenarios: each call's plan (prepared in the database before it starts) and, after
/// it ends, its goal checked and tallied.
#[derive(Debug)]
pub struct Runs {
    sel: Selection,
    tally: Tally,
}

impl Runs {
    pub fn new(sel: Selection) -> Self {
        Self {
            sel,
            tally: Tally::default(),
        }
    }

    /// Call `i`'s plan, with the database prepared for it, and the clips that speak its lines.
    pub async fn before(
        &self,
        i: usize,
        store: &dyn Store,
        clips: &super::clips::Clips,
    ) -> anyhow::Result<(Plan, Vec<usize>)> {
        let now = Utc::now();
        let plan = Plan::new(self.sel, i, now);
        plan.prepare(store, now).await?;
        let order = plan.lines.iter().map(|l| clips.closest(l)).collect();
        Ok((plan, order))
    }

    /// Check call `call_id`'s goal in the database and count it.
    pub async fn after(&self, plan: &Plan, call_id: &str, store: &dyn Store) {
        let (tools, goal) = match tool_uses(store, call_id).await {
            Ok(tools) => {
                let goal = plan.check(store, &tools).await;
                (tools, goal)
            }
            Err(e) => (vec![], Err(format!("call record unreadable: {e}"))),
        };
        self.tally.add(plan, &tools, goal);
    }

    pub fn rows(&self) -> BTreeMap<String, ScenarioRow> {
        self.tally.rows()
    }
}
