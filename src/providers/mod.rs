//! Real provider clients implementing the call tree's seams: Deepgram (STT), OpenAI-compatible chat
//! completions (LLM), Cartesia (TTS).

pub mod cartesia;
pub mod deepgram;
pub mod fallback;
pub mod openai;
pub mod pricing;
