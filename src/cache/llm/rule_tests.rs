use frontdesk_actors::provider::{ChatMessage, ToolCall};

use super::*;

fn req(messages: Vec<ChatMessage>) -> ChatRequest {
    let mut all = vec![ChatMessage::system("You are the front desk.")];
    all.extend(messages);
    ChatRequest {
        messages: all,
        tools: frontdesk_actors::tools::tool_specs(),
    }
}

fn call(id: &str, name: &str) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: "{}".into(),
    }
}

fn with_calls(calls: Vec<ToolCall>) -> ChatMessage {
    let mut m = ChatMessage::assistant("");
    m.tool_calls = calls;
    m
}

#[test]
fn a_plain_question_is_cacheable() {
    let q = assess(&req(vec![ChatMessage::user(
        "What are your opening hours?",
    )]))
    .unwrap();
    assert_eq!(q.question, "what are your opening hours");
    assert!(!q.day_bound);
}

#[test]
fn a_question_after_find_patient_is_never_cached() {
    let r = req(vec![
        ChatMessage::user("Can you look someone up?"),
        with_calls(vec![call("a", "find_patient")]),
        ChatMessage::tool_result("a", "[]"),
        ChatMessage::assistant("Done. "),
        ChatMessage::user("What are your opening hours?"),
    ]);
    assert_eq!(assess(&r), Err(Uncacheable::CallerTool));
    // Every caller-data tool is refused, and so is one we do not know.
    for name in [
        "register_patient",
        "list_appointments",
        "book_appointment",
        "cancel_appointment",
        "reschedule_appointment",
        "something_new",
    ] {
        let r = req(vec![
            ChatMessage::user("Which doctors work on Saturday?"),
            with_calls(vec![call("a", name)]),
            ChatMessage::tool_result("a", "{}"),
        ]);
        assert_eq!(assess(&r), Err(Uncacheable::CallerTool), "{name}");
    }
}

#[test]
fn caller_independent_tools_keep_it_cacheable() {
    let r = req(vec![
        ChatMessage::user("Which doctors work on Saturday?"),
        with_calls(vec![call("a", "list_doctors")]),
        ChatMessage::tool_result("a", "[{\"id\":1}]"),
    ]);
    let q = assess(&r).unwrap();
    assert!(q.context.contains("result:[{\"id\":1}]"));
    assert!(q.day_bound, "weekday names bind the answer to the day");
}

#[test]
fn a_question_with_a_phone_number_is_never_cached() {
    for text in [
        "Can you call me back on 020 7946 0018?",
        "My number is oh two oh seven nine four six",
        "Are you open on the 3rd?",
        "I was born on the fourth of July",
        "Write to zoe@example.com please",
        "Hello, this is Zoë Ångström, when are you open?",
        "Hi, it's Jane Smith, when are you open?",
        "Is Dr. Lee in, I need to cancel my appointment.",
    ] {
        assert_eq!(
            assess(&req(vec![ChatMessage::user(text)])),
            Err(Uncacheable::CallerText),
            "{text}"
        );
    }
}

#[test]
fn an_earlier_caller_turn_with_data_spoils_the_rest() {
    let r = req(vec![
        ChatMessage::user("My name is Jane, born in nineteen eighty."),
        ChatMessage::assistant("Thank you. "),
        ChatMessage::user("What are your opening hours?"),
    ]);
    assert_eq!(assess(&r), Err(Uncacheable::CallerText));
}

#[test]
fn the_key_covers_the_exchange_the_versions_and_the_day() {
    let day = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
    let next = day.succ_opt().unwrap();
    let alone = assess(&req(vec![ChatMessage::user("And on Saturday?")])).unwrap();
    let after = assess(&req(vec![
        ChatMessage::user("What are your opening hours?"),
        ChatMessage::assistant("Nine to five. "),
        ChatMessage::user("And on Saturday?"),
    ]))
    .unwrap();
    assert_eq!(alone.question, after.question);
    assert_ne!(alone.key("m", "d", day), after.key("m", "d", day));
    assert_ne!(after.key("m", "d", day), after.key("m", "d2", day));
    assert_ne!(after.key("m", "d", day), after.key("m2", "d", day));
    assert_ne!(after.key("m", "d", day), after.key("m", "d", next));
    let hours = assess(&req(vec![ChatMessage::user(
        "What are your opening hours?",
    )]))
    .unwrap();
    assert_eq!(hours.key("m", "d", day), hours.key("m", "d", next));
    let mut other_prompt = req(vec![ChatMessage::user("What are your opening hours?")]);
    other_prompt.messages[0] = ChatMessage::system("You are a pirate.");
    assert_ne!(
        assess(&other_prompt).unwrap().key("m", "d", day),
        hours.key("m", "d", day)
    );
}

#[test]
fn only_requests_for_an_answer_are_cacheable() {
    let r = req(vec![
        ChatMessage::user("What are your opening hours?"),
        ChatMessage::assistant("Nine to five. "),
    ]);
    assert_eq!(assess(&r), Err(Uncacheable::NotAnswering));
    let no_system = ChatRequest {
        messages: vec![ChatMessage::user("What are your opening hours?")],
        tools: vec![],
    };
    assert_eq!(assess(&no_system), Err(Uncacheable::NoSystemPrompt));
}

#[test]
fn month_names_and_abbreviations_are_caller_words() {
    let months = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
    ];
    for m in months {
        assert!(names_a_month(m), "{m}");
    }
    for w in ["ma", "marc", "junes", "septe", "doctor", "monday", ""] {
        assert!(!names_a_month(w), "{w}");
    }
}
