//! Streaming chat completions with function tools.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// JSON text exactly as the model produced it (it may be invalid).
    pub arguments: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    pub fn system(content: impl Into<String>) -> Self {
        Self::plain(Role::System, content)
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self::plain(Role::User, content)
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::plain(Role::Assistant, content)
    }
    pub fn tool_result(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: Role::Tool,
            content: content.into(),
            tool_calls: vec![],
            tool_call_id: Some(call_id.into()),
        }
    }
    fn plain(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: vec![],
            tool_call_id: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: serde_json::Value,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<ToolSpec>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub enum LlmEvent {
    TextDelta(String),
    /// A complete tool call (fragments already accumulated by the client).
    ToolCall(ToolCall),
    Usage(Usage),
    /// What the LLM answer cache made of this request (sent first, by the caching decorator only).
    Cache(CacheLookup),
    /// End of the stream.
    Done,
}

/// The LLM answer cache's verdict on one completion request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheLookup {
    /// Served from the cache: no provider call. `saved` is what the answer cost when it was made;
    /// `ends_reply` is true when the answer has no tool calls (the reply ends with it).
    Hit { saved: Usage, ends_reply: bool },
    /// Caller-independent, not cached yet: asked from the provider (and stored if it qualifies).
    Miss,
    /// Carries or may carry caller data: never looked up, never stored.
    Uncacheable,
    /// The cache could not answer in time or its entry was unusable: asked from the provider.
    Error,
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("llm authentication failed: {0}")]
    Auth(String),
    #[error("llm quota exhausted: {0}")]
    Quota(String),
    #[error("llm rate limited: {0}")]
    RateLimited(String),
    #[error("llm server error: {0}")]
    Server(String),
    #[error("llm rejected the request: {0}")]
    BadRequest(String),
    #[error("llm stream broken: {0}")]
    Stream(String),
    #[error("llm timed out: {0}")]
    Timeout(String),
}

impl LlmError {
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            LlmError::RateLimited(_)
                | LlmError::Server(_)
                | LlmError::Stream(_)
                | LlmError::Timeout(_)
        )
    }
}

#[async_trait]
pub trait LlmProvider: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Start one completion; events arrive on the channel, which closes after `Done` or an error.
    async fn stream(
        &self,
        req: ChatRequest,
    ) -> Result<mpsc::Receiver<Result<LlmEvent, LlmError>>, LlmError>;
}
