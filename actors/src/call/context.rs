//! The chat context of a call. Kept by the supervisor so a restarted dialogue continues the same
//! conversation. Assistant text is appended sentence by sentence as it goes to TTS, so after a
//! barge-in the context can be cut to exactly what the caller heard.

use crate::provider::{ChatMessage, ChatRequest, Role, ToolCall, ToolSpec};

/// Oldest messages are dropped beyond this (the system prompt always stays).
const MAX_MESSAGES: usize = 64;

#[derive(Debug, Clone)]
pub struct ChatContext {
    system: ChatMessage,
    messages: Vec<ChatMessage>,
    /// Reply being spoken and the index of its first message.
    reply: Option<(u64, usize)>,
}

impl ChatContext {
    pub fn new(system_prompt: &str) -> Self {
        Self {
            system: ChatMessage::system(system_prompt),
            messages: vec![],
            reply: None,
        }
    }

    pub fn messages(&self) -> &[ChatMessage] {
        &self.messages
    }

    pub fn push_user(&mut self, text: &str) {
        self.messages.push(ChatMessage::user(text));
        self.trim();
    }

    pub fn begin_reply(&mut self, reply_id: u64) {
        self.reply = Some((reply_id, self.messages.len()));
    }

    fn reply_start(&self, reply_id: u64) -> Option<usize> {
        match self.reply {
            Some((id, start)) if id == reply_id => Some(start.min(self.messages.len())),
            _ => None,
        }
    }

    /// Text of the reply went to TTS: append it to the reply's current assistant message.
    pub fn append_assistant_text(&mut self, reply_id: u64, text: &str) {
        let Some(start) = self.reply_start(reply_id) else {
            return;
        };
        match self.open_step(start) {
            Some(m) => m.content.push_str(text),
            None => self.messages.push(ChatMessage::assistant(text)),
        }
    }

    /// The reply's last assistant message, if it can still take text or tool calls.
    fn open_step(&mut self, start: usize) -> Option<&mut ChatMessage> {
        let len = self.messages.len();
        self.messages
            .last_mut()
            .filter(|m| len > start && m.role == Role::Assistant && m.tool_calls.is_empty())
    }

    /// The model asked for tools in this step: attach them to the step's assistant message.
    pub fn attach_tool_calls(&mut self, reply_id: u64, calls: Vec<ToolCall>) {
        let Some(start) = self.reply_start(reply_id) else {
            return;
        };
        match self.open_step(start) {
            Some(m) => m.tool_calls = calls,
            None => {
                let mut m = ChatMessage::assistant("");
                m.tool_calls = calls;
                self.messages.push(m);
            }
        }
    }

    pub fn push_tool_result(&mut self, call_id: &str, content: &str) {
        self.messages
            .push(ChatMessage::tool_result(call_id, content));
    }

    /// Keep only the first `heard` bytes of the reply's spoken text (across its assistant
    /// messages); tool calls and results stay, they happened.
    pub fn truncate_reply(&mut self, reply_id: u64, heard: usize) {
        let Some(start) = self.reply_start(reply_id) else {
            return;
        };
        let mut remaining = heard;
        let mut idx = start;
        while idx < self.messages.len() {
            let m = &mut self.messages[idx];
            if m.role == Role::Assistant {
                if m.content.len() <= remaining {
                    remaining -= m.content.len();
                } else {
                    let cut = floor_char_boundary(&m.content, remaining);
                    m.content.truncate(cut);
                    remaining = 0;
                }
                if m.content.trim().is_empty() && m.tool_calls.is_empty() {
                    self.messages.remove(idx);
                    continue;
                }
            }
            idx += 1;
        }
    }

    /// The spoken text of a reply, as the context holds it.
    pub fn reply_text(&self, reply_id: u64) -> String {
        let Some(start) = self.reply_start(reply_id) else {
            return String::new();
        };
        self.messages[start..]
            .iter()
            .filter(|m| m.role == Role::Assistant)
            .map(|m| m.content.as_str())
            .collect()
    }

    pub fn request(&self, tools: &[ToolSpec]) -> ChatRequest {
        let mut messages = Vec::with_capacity(self.messages.len() + 1);
        messages.push(self.system.clone());
        messages.extend(self.messages.iter().cloned());
        ChatRequest {
            messages,
            tools: tools.to_vec(),
        }
    }

    fn trim(&mut self) {
        if self.messages.len() <= MAX_MESSAGES {
            return;
        }
        // Cut at a user message so no tool result is left without its call.
        let excess = self.messages.len() - MAX_MESSAGES;
        let cut = self.messages[excess..]
            .iter()
            .position(|m| m.role == Role::User)
            .map_or(excess, |p| excess + p);
        self.messages.drain(..cut);
        if let Some((_, start)) = self.reply.as_mut() {
            *start = start.saturating_sub(cut);
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: "list_doctors".into(),
            arguments: "{}".into(),
        }
    }

    #[test]
    fn truncation_spans_steps_and_keeps_tools() {
        let mut c = ChatContext::new("sys");
        c.push_user("hi");
        c.begin_reply(1);
        c.append_assistant_text(1, "Let me check. ");
        c.attach_tool_calls(1, vec![call("a")]);
        c.push_tool_result("a", "{}");
        c.append_assistant_text(1, "Dr. Lee is free at nine. ");
        c.append_assistant_text(1, "Shall I book it? ");
        c.truncate_reply(1, "Let me check. Dr. Lee is free ".len());
        assert_eq!(c.reply_text(1), "Let me check. Dr. Lee is free ");
        assert_eq!(c.messages().len(), 4);
        assert_eq!(c.messages()[1].tool_calls.len(), 1);
    }

    #[test]
    fn nothing_heard_removes_plain_assistant_text() {
        let mut c = ChatContext::new("sys");
        c.push_user("hi");
        c.begin_reply(2);
        c.append_assistant_text(2, "Hello there. ");
        c.truncate_reply(2, 0);
        assert_eq!(c.messages().len(), 1);
        assert_eq!(c.request(&[]).messages.len(), 2);
    }
}
