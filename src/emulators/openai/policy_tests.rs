use frontdesk_actors::provider::{ChatMessage, ToolCall};
use frontdesk_actors::store::Store;

use super::*;

const MONDAY: Date = Date {
    y: 2026,
    m: 11,
    d: 23,
};

/// Append the model's reply (with ids) and the given tool results, in call order.
fn step(msgs: &mut Vec<ChatMessage>, reply: &Reply, results: &[Value]) {
    let mut a = ChatMessage::assistant(reply.text.clone());
    a.tool_calls = reply
        .calls
        .iter()
        .enumerate()
        .map(|(i, (name, args))| ToolCall {
            id: format!("c{}_{i}", msgs.len()),
            name: name.clone(),
            arguments: args.to_string(),
        })
        .collect();
    let ids: Vec<String> = a.tool_calls.iter().map(|c| c.id.clone()).collect();
    msgs.push(a);
    for (id, r) in ids.iter().zip(results) {
        msgs.push(ChatMessage::tool_result(id, r.to_string()));
    }
}

fn ask(msgs: &[ChatMessage]) -> Reply {
    respond(
        &ChatRequest {
            messages: msgs.to_vec(),
            tools: vec![],
        },
        MONDAY,
    )
}

fn names(r: &Reply) -> Vec<&str> {
    r.calls.iter().map(|(n, _)| n.as_str()).collect()
}

#[test]
fn greeting_and_unknown_patient() {
    assert!(ask(&[]).text.contains("How can I help"));
    let mut msgs = vec![ChatMessage::user(
        "Cardiology appointment please. My name is John Doe, born 1980-01-01",
    )];
    let r = ask(&msgs);
    assert_eq!(names(&r), ["list_doctors", "find_patient"]);
    assert_eq!(r.calls[1].1["date_of_birth"], "1980-01-01");
    let doctors =
        json!({ "result": [{ "id": 1, "name": "Dr. Amelia Hart", "specialty": "Cardiology" }] });
    step(&mut msgs, &r, &[doctors, json!({ "result": [] })]);
    let r = ask(&msgs);
    assert!(
        r.calls.is_empty() && r.text.contains("couldn't find"),
        "{r:?}"
    );
}

#[test]
fn empty_day_and_unavailable_time() {
    let mut msgs = vec![ChatMessage::user(
        "I'd like to book with Dr. Patel. I'm Mia Chen, born 2010-05-05.",
    )];
    let r = ask(&msgs);
    let doctors = json!({ "result": [
        { "id": 1, "name": "Dr. Amelia Hart", "specialty": "Cardiology" },
        { "id": 2, "name": "Dr. Rajesh Patel", "specialty": "Dermatology" }] });
    step(
        &mut msgs,
        &r,
        &[doctors, json!({ "result": [{ "id": 11 }] })],
    );
    let r = ask(&msgs);
    assert!(r.text.contains("Which day"), "{r:?}");
    step(&mut msgs, &r, &[]);
    msgs.push(ChatMessage::user("Sunday"));
    let r = ask(&msgs);
    assert_eq!(
        r.calls,
        vec![(
            "list_free_slots".to_string(),
            json!({ "doctor_id": 2, "date": "2026-11-29" })
        )]
    );
    step(&mut msgs, &r, &[json!({ "result": [] })]);
    // Nothing on Sunday: the next days are looked up together, the first with a slot offered.
    let r = ask(&msgs);
    let dates: Vec<&Value> = r.calls.iter().map(|(_, a)| &a["date"]).collect();
    assert_eq!(names(&r), ["list_free_slots"; 3]);
    assert_eq!(dates, ["2026-11-30", "2026-12-01", "2026-12-02"]);
    let monday = json!({ "doctor_id": 2, "start": "2026-11-30T09:00:00Z", "end": "x" });
    let results = [
        json!({ "result": [monday] }),
        json!({ "result": [] }),
        json!({ "result": [] }),
    ];
    step(&mut msgs, &r, &results);
    let r = ask(&msgs);
    assert!(
        r.text.contains("nothing free on Sunday 2026-11-29")
            && r.text.contains("09:00 on Monday 2026-11-30"),
        "{r:?}"
    );
    step(&mut msgs, &r, &[]);
    msgs.push(ChatMessage::user("Tuesday then"));
    let r = ask(&msgs);
    assert_eq!(r.calls[0].1["date"], "2026-11-24");
    let slot =
        |t: &str| json!({ "doctor_id": 2, "start": format!("2026-11-24T{t}:00Z"), "end": "x" });
    step(
        &mut msgs,
        &r,
        &[json!({ "result": [slot("09:00"), slot("09:30")] })],
    );
    msgs.push(ChatMessage::user("eleven o'clock?"));
    let r = ask(&msgs);
    assert!(r.calls.is_empty() && r.text.contains("isn't free"), "{r:?}");
    step(&mut msgs, &r, &[]);
    msgs.push(ChatMessage::user("OK, 9:30 then"));
    let r = ask(&msgs);
    assert_eq!(names(&r), ["book_appointment"]);
    assert_eq!(r.calls[0].1["patient_id"], 11);
    assert_eq!(r.calls[0].1["start"], "2026-11-24T09:30:00Z");
}

#[test]
fn tool_errors_get_an_apology() {
    let mut msgs = vec![ChatMessage::user(
        "I need to cancel my appointment. My name is Mia Chen, born 2010-05-05",
    )];
    let r = ask(&msgs);
    assert_eq!(names(&r), ["find_patient"]);
    step(
        &mut msgs,
        &r,
        &[json!({ "error": "The appointment system is unavailable right now." })],
    );
    let r = ask(&msgs);
    assert!(r.calls.is_empty() && r.text.contains("sorry"), "{r:?}");
}

/// The caller's lines of every emulated call (simulate, console, dev).
const FIXTURE: &str = include_str!("../../../tests/fixtures/speech/lines.txt");

/// A seeded store whose clock reads 08:00 UTC on `today`.
fn store_on(today: Date) -> frontdesk_actors::doubles::MemoryStore {
    let now = chrono::NaiveDate::from_ymd_opt(today.y, today.m, today.d)
        .and_then(|d| d.and_hms_opt(8, 0, 0))
        .unwrap()
        .and_utc();
    frontdesk_actors::doubles::MemoryStore::seeded().with_clock(move || now)
}

/// What the agent said and which tools it called, in order.
#[derive(Debug, Default)]
struct Heard {
    said: Vec<String>,
    tools: Vec<String>,
}

/// One caller turn: the policy's steps, tools run against `store`, until it answers in words (at
/// most five steps, as the dialogue's `max_tool_steps`).
async fn turn(
    msgs: &mut Vec<ChatMessage>,
    line: &str,
    store: &frontdesk_actors::doubles::MemoryStore,
    today: Date,
    heard: &mut Heard,
) {
    let mut uses = vec![];
    let said = turn_recorded(msgs, line, store, today, &mut uses).await;
    heard.tools.extend(uses.into_iter().map(|u| u.name));
    heard.said.push(said);
}

/// The first weekday after `today` (Dr. Hart, cardiology, works weekdays only).
fn next_weekday(today: Date) -> Date {
    (1..)
        .map(|k| today.add_days(k))
        .find(|d| d.weekday() < 5)
        .unwrap()
}

#[tokio::test]
async fn the_fixture_call_books_on_every_day_of_the_week() {
    let lines: Vec<&str> = FIXTURE.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 6);
    for k in 0..7 {
        let today = MONDAY.add_days(k);
        let store = store_on(today);
        let (mut msgs, mut heard) = (vec![], Heard::default());
        for line in &lines {
            turn(&mut msgs, line, &store, today, &mut heard).await;
        }
        let day = next_weekday(today).to_string();
        let ctx = format!("{} {today}: {heard:#?}", today.weekday_name());
        assert_eq!(heard.tools[..2], ["list_doctors", "find_patient"], "{ctx}");
        assert_eq!(heard.tools.last().unwrap(), "book_appointment", "{ctx}");
        assert!(
            heard.tools[2..heard.tools.len() - 1]
                .iter()
                .all(|t| t == "list_free_slots"),
            "{ctx}"
        );
        // Seeded patient 4 is Noah Fischer, born 1979-04-22; doctor 1 is Dr. Amelia Hart.
        let booked = store.appointments_for(4).await.unwrap();
        assert_eq!(booked.len(), 1, "{ctx}");
        assert_eq!(booked[0].doctor_id, 1);
        assert_eq!(
            booked[0].start.to_rfc3339(),
            format!("{day}T09:30:00+00:00")
        );
        assert!(heard.said[2].contains("09:30 free on"), "{ctx}");
        assert!(heard.said[3].contains("all set"), "{ctx}");
        assert!(heard.said[4].contains("Monday to Friday"), "{ctx}");
        assert!(heard.said[5].contains("goodbye"), "{ctx}");
    }
}

#[tokio::test]
async fn a_slot_taken_meanwhile_is_looked_up_and_offered_again() {
    use frontdesk_actors::store::BookingRequest;
    let lines: Vec<&str> = FIXTURE.lines().take(3).collect();
    let store = store_on(MONDAY);
    let (mut msgs, mut heard) = (vec![], Heard::default());
    for line in &lines {
        turn(&mut msgs, line, &store, MONDAY, &mut heard).await;
    }
    assert!(
        heard.said[2].contains("09:30 free on Tuesday 2026-11-24"),
        "{heard:?}"
    );
    // Another caller takes it before this one says yes.
    let other = BookingRequest {
        patient_id: 1,
        doctor_id: 1,
        start: "2026-11-24T09:30:00Z".parse().unwrap(),
        duration_min: 30,
        reason: String::new(),
    };
    store.book(&other).await.unwrap();
    turn(&mut msgs, "Yes, book it", &store, MONDAY, &mut heard).await;
    let said = heard.said.last().unwrap();
    assert!(
        said.contains("just been taken") && said.contains("09:30 free on Wednesday 2026-11-25"),
        "{heard:?}"
    );
    turn(&mut msgs, "Yes please", &store, MONDAY, &mut heard).await;
    let booked = store.appointments_for(4).await.unwrap();
    assert_eq!(booked.len(), 1);
    assert_eq!(booked[0].start.to_rfc3339(), "2026-11-25T09:30:00+00:00");
}

#[test]
fn opening_hours_between_requests_only() {
    let r = ask(&[ChatMessage::user("What are your opening hours?")]);
    assert!(r.text.contains("Monday to Friday"), "{r:?}");
    // In the middle of a booking the flow goes on.
    let r = ask(&[ChatMessage::user(
        "Are you open for a cardiology appointment? My name is Mia Chen, born 1990-03-15",
    )]);
    assert_eq!(names(&r), ["list_doctors", "find_patient"]);
}

/// One caller turn as [`turn`], keeping each tool call's arguments and result (as a call record
/// does) for the scenarios' goal checks.
async fn turn_recorded(
    msgs: &mut Vec<ChatMessage>,
    line: &str,
    store: &frontdesk_actors::doubles::MemoryStore,
    today: Date,
    uses: &mut Vec<crate::simulate::scenario::ToolUse>,
) -> String {
    msgs.push(ChatMessage::user(line));
    for _ in 0..5 {
        let req = ChatRequest {
            messages: msgs.clone(),
            tools: vec![],
        };
        let r = respond(&req, today);
        let mut results = vec![];
        for (i, (name, args)) in r.calls.iter().enumerate() {
            let call = ToolCall {
                id: format!("c{}_{i}", msgs.len()),
                name: name.clone(),
                arguments: args.to_string(),
            };
            let out = frontdesk_actors::tools::execute(store, &call).await;
            let result: Value = serde_json::from_str(&out.content).unwrap();
            uses.push(crate::simulate::scenario::ToolUse {
                name: name.clone(),
                arguments: call.arguments.clone(),
                result: result.clone(),
            });
            results.push(result);
        }
        step(msgs, &r, &results);
        if r.calls.is_empty() {
            return r.text;
        }
    }
    panic!("no answer within five steps: {msgs:?}");
}

/// Every simulated scenario (several callers each, every day of the week): the lines the
/// simulated caller says lead the receptionist to the scenario's goal, checked in the store.
#[tokio::test]
async fn every_scenario_reaches_its_goal_on_every_day_of_the_week() {
    use crate::simulate::scenario::{Plan, Selection, ALL};
    for k in 0..7 {
        let today = MONDAY.add_days(k);
        let store = store_on(today);
        let now = chrono::NaiveDate::from_ymd_opt(today.y, today.m, today.d)
            .and_then(|d| d.and_hms_opt(8, 0, 0))
            .unwrap()
            .and_utc();
        for i in 0..3 * ALL.len() {
            let plan = Plan::new(Selection::All, i, now);
            plan.prepare(&store, now).await.unwrap();
            let (mut msgs, mut uses, mut said) = (vec![], vec![], vec![]);
            for line in &plan.lines {
                said.push(turn_recorded(&mut msgs, line, &store, today, &mut uses).await);
            }
            let ctx = format!(
                "{} {today} call {i} {:?}: {said:#?} {uses:#?}",
                today.weekday_name(),
                plan.scenario
            );
            plan.check(&store, &uses)
                .await
                .unwrap_or_else(|e| panic!("{e}: {ctx}"));
        }
    }
}

#[tokio::test]
async fn a_new_caller_is_asked_for_a_phone_and_registered_once() {
    let store = store_on(MONDAY);
    let (mut msgs, mut uses) = (vec![], vec![]);
    let lines = [
        "I'd like to book an appointment with a skin doctor.",
        "My name is Zoë Ångström, born March 3, 1990.",
    ];
    let mut said = String::new();
    for line in lines {
        said = turn_recorded(&mut msgs, line, &store, MONDAY, &mut uses).await;
    }
    assert!(
        said.contains("register you") && said.contains("phone number"),
        "{said}"
    );
    let said = turn_recorded(
        &mut msgs,
        "My phone number is 12 34",
        &store,
        MONDAY,
        &mut uses,
    )
    .await;
    // Too short to be a phone number: still asked for it, nothing registered.
    assert!(said.contains("phone number"), "{said}");
    let said = turn_recorded(
        &mut msgs,
        "My number is +44 20 7946 0018",
        &store,
        MONDAY,
        &mut uses,
    )
    .await;
    assert!(said.contains("Which day"), "{said}");
    let reg: Vec<_> = uses
        .iter()
        .filter(|u| u.name == "register_patient")
        .collect();
    assert_eq!(reg.len(), 1, "{uses:?}");
    let args: Value = serde_json::from_str(&reg[0].arguments).unwrap();
    assert_eq!(
        args,
        json!({ "first_name": "Zoë", "last_name": "Ångström", "date_of_birth": "1990-03-03", "phone": "+442079460018" })
    );
    assert_eq!(reg[0].result["result"]["created"], true);
}

#[test]
fn an_invalid_date_is_questioned_not_used() {
    for line in [
        "On February thirtieth, please.",
        "the thirty first of April",
        "June 31 please",
    ] {
        let r = ask(&[
            ChatMessage::user("Book me with Dr. Hart. My name is Mia Chen, born 2010-05-05"),
            ChatMessage::assistant("Which day?"),
            ChatMessage::user(line),
        ]);
        assert!(
            r.calls.is_empty() && r.text.contains("isn't a real date"),
            "{line}: {r:?}"
        );
    }
    let r = ask(&[ChatMessage::user("On February twenty ninth, please.")]);
    assert!(!r.text.contains("real date"), "{r:?}");
    // A real birthday is not questioned.
    let r = ask(&[ChatMessage::user(
        "My name is Noah Fischer, born April 22, 1979.",
    )]);
    assert!(!r.text.contains("real date"), "{r:?}");
}

proptest::proptest! {
    /// A month and day in digits is questioned exactly when no year has that date.
    #[test]
    fn invalid_dates_are_those_no_calendar_has(m in 0usize..12, d in 1u32..=31, words in "[a-z ]{0,12}") {
        const NAMES: [&str; 12] = ["January", "February", "March", "April", "May", "June", "July",
            "August", "September", "October", "November", "December"];
        let text = format!("{words} {} {d}, please", NAMES[m]);
        let exists = Date::new(2000, m as u32 + 1, d).is_some();
        proptest::prop_assert_eq!(invalid_date(&text).is_some(), !exists, "{}", text);
    }

    /// A phone number said with any spacing or dashes is its digits; dates never are one.
    #[test]
    fn phone_numbers_are_their_digits(digits in "[0-9]{7,15}", sep in "[ -]{0,2}", plus in proptest::bool::ANY) {
        let spoken: String = digits.chars().flat_map(|c| std::iter::once(c).chain(sep.chars())).collect();
        let text = format!("my phone number is {}{spoken}", if plus { "+" } else { "" });
        let want = if plus { format!("+{digits}") } else { digits.clone() };
        proptest::prop_assert_eq!(phone_number(&text), Some(want));
        proptest::prop_assert_eq!(phone_number(&format!("born {digits}")), None);
    }
}
