//! The seams between the call tree and the outside world. Real implementations live in the service
//! crate (LiveKit, Deepgram, OpenAI, Cartesia); in-process doubles live in `crate::doubles`.

pub mod llm;
pub mod room;
pub mod stt;
pub mod tts;

pub use llm::{
    CacheLookup, ChatMessage, ChatRequest, LlmError, LlmEvent, LlmProvider, Role, ToolCall,
    ToolSpec, Usage,
};
pub use room::{AgentAudioOut, JoinRequest, RoomError, RoomEvent, RoomIo, RoomLink, StayGuard};
pub use stt::{SttError, SttEvent, SttProvider, SttSession, SttSessionConfig, SttSink};
pub use tts::{TtsCacheUsage, TtsError, TtsEvent, TtsInput, TtsProvider, TtsRequest, TtsSession};
