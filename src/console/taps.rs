//! Provider wrappers that record the conversation as it passes: the caller's final transcripts
//! (STT events) and the agent's replies (text sent to TTS). The call tree cannot tell them from
//! the providers they wrap.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use frontdesk_actors::provider::{
    SttError, SttEvent, SttProvider, SttSession, SttSessionConfig, TtsError, TtsInput, TtsProvider,
    TtsRequest, TtsSession,
};
use tokio::sync::mpsc;

/// Who said a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Speaker {
    Caller,
    Agent,
    /// A reply cut short by barge-in.
    AgentInterrupted,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub speaker: Speaker,
    pub text: String,
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = match self.speaker {
            Speaker::Caller => "caller",
            Speaker::Agent => "agent",
            Speaker::AgentInterrupted => "agent (interrupted)",
        };
        write!(f, "{who}: {}", self.text)
    }
}

/// The conversation so far; optionally printed line by line as it happens. The caller's finals
/// are joined into one line per turn: Deepgram closes a final at each pause of the caller's
/// (`endpointing`), so one spoken sentence can come in several.
#[derive(Clone, Default)]
pub struct Transcript {
    inner: Arc<Mutex<Lines>>,
    print: bool,
}

#[derive(Default)]
struct Lines {
    done: Vec<Line>,
    /// The caller's turn so far (printed when the agent answers or the call ends).
    caller: Option<Line>,
}

impl Transcript {
    pub fn new(print: bool) -> Self {
        Self {
            inner: Arc::default(),
            print,
        }
    }

    fn push(&self, speaker: Speaker, text: &str) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        let mut lines = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if speaker == Speaker::Caller {
            match &mut lines.caller {
                Some(turn) => {
                    turn.text.push(' ');
                    turn.text.push_str(text);
                }
                None => lines.caller = Some(Line::new(speaker, text)),
            }
            return;
        }
        self.close_turn(&mut lines);
        self.add(&mut lines, Line::new(speaker, text));
    }

    /// Ends the caller's turn in progress (the call is over).
    pub fn finish(&self) {
        let mut lines = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        self.close_turn(&mut lines);
    }

    fn close_turn(&self, lines: &mut Lines) {
        if let Some(turn) = lines.caller.take() {
            self.add(lines, turn);
        }
    }

    fn add(&self, lines: &mut Lines, line: Line) {
        if self.print {
            crate::outln!("{line}");
        }
        lines.done.push(line);
    }

    /// Every line so far, the caller's turn in progress included.
    pub fn lines(&self) -> Vec<Line> {
        let lines = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        lines.done.iter().chain(&lines.caller).cloned().collect()
    }
}

impl Line {
    fn new(speaker: Speaker, text: &str) -> Self {
        Self {
            speaker,
            text: text.to_owned(),
        }
    }
}

/// STT that records each final transcript.
pub struct SttTap {
    pub inner: Arc<dyn SttProvider>,
    pub transcript: Transcript,
}

#[async_trait]
impl SttProvider for SttTap {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn connect(&self, cfg: &SttSessionConfig) -> Result<SttSession, SttError> {
        let mut session = self.inner.connect(cfg).await?;
        let (tx, rx) = mpsc::channel(64);
        let transcript = self.transcript.clone();
        let mut events = std::mem::replace(&mut session.events, rx);
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let Ok(SttEvent::Final { text, .. }) = &event {
                    transcript.push(Speaker::Caller, text);
                }
                if tx.send(event).await.is_err() {
                    break;
                }
            }
        });
        Ok(session)
    }
}

/// TTS that records the text of each reply, printed whole when it is finished or cancelled.
pub struct TtsTap {
    pub inner: Arc<dyn TtsProvider>,
    pub transcript: Transcript,
}

#[async_trait]
impl TtsProvider for TtsTap {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn open(&self, req: &TtsRequest) -> Result<TtsSession, TtsError> {
        let mut session = self.inner.open(req).await?;
        let inner = std::mem::replace(&mut session.input, Box::new(Closed));
        session.input = Box::new(TextTap {
            inner,
            text: String::new(),
            transcript: self.transcript.clone(),
        });
        Ok(session)
    }
}

struct TextTap {
    inner: Box<dyn TtsInput>,
    text: String,
    transcript: Transcript,
}

#[async_trait]
impl TtsInput for TextTap {
    async fn push_text(&mut self, text: &str) -> Result<(), TtsError> {
        self.text.push_str(text);
        self.inner.push_text(text).await
    }

    async fn finish(&mut self) -> Result<(), TtsError> {
        self.transcript
            .push(Speaker::Agent, &std::mem::take(&mut self.text));
        self.inner.finish().await
    }

    async fn cancel(&mut self) -> Result<(), TtsError> {
        self.transcript
            .push(Speaker::AgentInterrupted, &std::mem::take(&mut self.text));
        self.inner.cancel().await
    }
}

/// Placeholder while swapping the real input into the tap; never used.
struct Closed;

#[async_trait]
impl TtsInput for Closed {
    async fn push_text(&mut self, _: &str) -> Result<(), TtsError> {
        Err(TtsError::Closed("console tap".into()))
    }
    async fn finish(&mut self) -> Result<(), TtsError> {
        Err(TtsError::Closed("console tap".into()))
    }
    async fn cancel(&mut self) -> Result<(), TtsError> {
        Err(TtsError::Closed("console tap".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callers_finals_make_one_line_per_turn() {
        let t = Transcript::new(false);
        t.push(Speaker::Caller, "Hello, I ");
        t.push(Speaker::Caller, " would like an appointment.");
        assert_eq!(t.lines().len(), 1, "the turn in progress is shown");
        t.push(Speaker::Agent, "Of course.");
        t.push(Speaker::Caller, "   ");
        t.push(Speaker::Caller, "Monday?");
        t.finish();
        t.push(Speaker::AgentInterrupted, "Monday at");
        let lines: Vec<String> = t.lines().iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "caller: Hello, I would like an appointment.",
                "agent: Of course.",
                "caller: Monday?",
                "agent (interrupted): Monday at",
            ]
        );
    }
}
