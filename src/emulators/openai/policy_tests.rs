use frontdesk_actors::provider::{ChatMessage, ToolCall};

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
    assert!(ask(&msgs).text.contains("nothing free"));
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
