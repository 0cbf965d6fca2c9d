//! `CachedTts`: a `TtsProvider` around the configured one. A cacheable reply (no caller data)
//! is spoken sentence by sentence: a sentence in the cache is played from it, any other gets
//! its own provider context and is kept once its audio is complete. Sentence order, `Done`
//! after the last sentence and cancel are as a plain session's. Other replies go straight to
//! the provider with no added work.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use frontdesk_actors::call::dialogue::sentence::SentenceSplitter;
use frontdesk_actors::provider::{
    TtsCacheUsage, TtsError, TtsEvent, TtsInput, TtsProvider, TtsRequest, TtsSession,
};
use tokio::sync::{mpsc, watch};

use super::cache::PhraseCache;
use super::phrase::Phrase;

/// Events ahead of playout per session (16 chunks of 40 ms: 0.64 s), as a provider session's own
/// channel; more would only hold audio the bounded tts→room edge is not ready for.
const EVENTS: usize = 16;
/// Sentences waiting for their turn (a reply has a handful).
const COMMANDS: usize = 64;
/// A cached phrase is replayed in 40 ms chunks, the size a provider streams.
const HIT_CHUNKS_PER_SECOND: u32 = 25;
/// Longer audio is played but not kept (a runaway synthesis must not fill the cache).
const MAX_PHRASE_SECONDS: usize = 60;
/// A provider context left behind by a cancel gets this long to close.
const CANCEL_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

pub struct CachedTts {
    inner: Arc<dyn TtsProvider>,
    cache: Arc<PhraseCache>,
}

impl CachedTts {
    pub fn new(inner: Arc<dyn TtsProvider>, cache: Arc<PhraseCache>) -> Self {
        Self { inner, cache }
    }

    pub fn cache(&self) -> &Arc<PhraseCache> {
        &self.cache
    }
}

#[async_trait]
impl TtsProvider for CachedTts {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn open(&self, req: &TtsRequest) -> Result<TtsSession, TtsError> {
        if !req.cacheable {
            return self.inner.open(req).await;
        }
        let (cmd_tx, cmd_rx) = mpsc::channel(COMMANDS);
        let (ev_tx, ev_rx) = mpsc::channel(EVENTS);
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let usage = Arc::new(Mutex::new(TtsCacheUsage::default()));
        let driver = Driver {
            inner: Arc::clone(&self.inner),
            cache: Arc::clone(&self.cache),
            req: req.clone(),
            events: ev_tx,
            usage: Arc::clone(&usage),
            context: None,
        };
        tokio::spawn(driver.run(cmd_rx, cancel_rx));
        Ok(TtsSession {
            input: Box::new(CachedInput {
                commands: cmd_tx,
                cancel: cancel_tx,
                usage,
                splitter: SentenceSplitter::new(),
            }),
            events: ev_rx,
        })
    }
}

enum Command {
    Say(String),
    Finish,
}

struct CachedInput {
    commands: mpsc::Sender<Command>,
    /// Dropping it (the TTS actor gave up the session) cancels too.
    cancel: watch::Sender<bool>,
    usage: Arc<Mutex<TtsCacheUsage>>,
    splitter: SentenceSplitter,
}

impl CachedInput {
    async fn send(&self, c: Command) -> Result<(), TtsError> {
        self.commands
            .send(c)
            .await
            .map_err(|_| TtsError::Closed("phrase cache session ended".into()))
    }
}

#[async_trait]
impl TtsInput for CachedInput {
    /// Split into sentences so a phrase's key does not depend on how text was batched.
    async fn push_text(&mut self, text: &str) -> Result<(), TtsError> {
        let mut sentences = self.splitter.push(text);
        sentences.extend(self.splitter.finish());
        for s in sentences {
            self.send(Command::Say(s)).await?;
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<(), TtsError> {
        self.send(Command::Finish).await
    }

    async fn cancel(&mut self) -> Result<(), TtsError> {
        let _ = self.cancel.send(true);
        Ok(())
    }

    fn take_cache_usage(&mut self) -> TtsCacheUsage {
        std::mem::take(&mut *self.usage.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Runs one cacheable session: the sentences in order, each from the cache or its own context.
struct Driver {
    inner: Arc<dyn TtsProvider>,
    cache: Arc<PhraseCache>,
    req: TtsRequest,
    events: mpsc::Sender<Result<TtsEvent, TtsError>>,
    usage: Arc<Mutex<TtsCacheUsage>>,
    /// The provider context of the sentence being synthesised (to cancel it).
    context: Option<Box<dyn TtsInput>>,
}

/// Why a session stopped early.
enum Stop {
    /// Cancelled, or nobody listens any more: no more events.
    Quiet,
    Failed(TtsError),
}

impl Driver {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut cancel: watch::Receiver<bool>,
    ) {
        let outcome = tokio::select! {
            biased;
            _ = cancelled(&mut cancel) => Err(Stop::Quiet),
            r = self.serve(&mut commands) => r,
        };
        match outcome {
            Ok(()) => {
                let _ = self.events.send(Ok(TtsEvent::Done)).await;
            }
            Err(Stop::Failed(e)) => {
                let _ = self.events.send(Err(e)).await;
            }
            Err(Stop::Quiet) => {}
        }
        if let Some(mut ctx) = self.context.take() {
            let _ = tokio::time::timeout(CANCEL_GRACE, ctx.cancel()).await;
        }
    }

    /// Every sentence until `Finish`.
    async fn serve(&mut self, commands: &mut mpsc::Receiver<Command>) -> Result<(), Stop> {
        loop {
            match commands.recv().await {
                Some(Command::Say(text)) => self.say(&text).await?,
                Some(Command::Finish) => return Ok(()),
                None => return Err(Stop::Quiet),
            }
        }
    }

    async fn say(&mut self, text: &str) -> Result<(), Stop> {
        // An unusable entry (corrupt, store down) was counted by the cache: a miss for the call.
        if let Ok(Some(p)) = self.cache.get(text).await {
            self.count(|u| {
                u.hits += 1;
                u.saved_characters += text.chars().count() as u64;
            });
            // Streamed in provider-sized chunks: with the bounded event queue a call then holds
            // a few of them, not a copy of the whole phrase (a 5 s phrase at 48 kHz is 480 KB).
            let chunk = (p.sample_rate / HIT_CHUNKS_PER_SECOND).max(1) as usize;
            for piece in p.samples.chunks(chunk) {
                let audio = TtsEvent::Audio {
                    samples: piece.to_vec(),
                    sample_rate: p.sample_rate,
                };
                self.emit(Ok(audio)).await?;
            }
            return Ok(());
        }
        self.count(|u| u.misses += 1);
        self.synthesise(text).await
    }

    /// One sentence in its own provider context; kept in the cache when its audio is complete.
    async fn synthesise(&mut self, text: &str) -> Result<(), Stop> {
        let TtsSession { input, mut events } =
            self.inner.open(&self.req).await.map_err(Stop::Failed)?;
        let ctx = self.context.insert(input);
        ctx.push_text(text).await.map_err(Stop::Failed)?;
        ctx.finish().await.map_err(Stop::Failed)?;
        let mut audio: Vec<i16> = vec![];
        let mut rate = 0;
        let mut keep = true;
        loop {
            match events.recv().await {
                Some(Ok(TtsEvent::Audio {
                    samples,
                    sample_rate,
                })) => {
                    keep &= rate == 0 || rate == sample_rate;
                    rate = sample_rate;
                    keep &=
                        audio.len() + samples.len() <= MAX_PHRASE_SECONDS * sample_rate as usize;
                    if keep {
                        audio.extend_from_slice(&samples);
                    }
                    self.emit(Ok(TtsEvent::Audio {
                        samples,
                        sample_rate,
                    }))
                    .await?;
                }
                Some(Ok(TtsEvent::Done)) => break,
                Some(Err(e)) => return Err(Stop::Failed(e)),
                None => return Err(Stop::Failed(TtsError::Closed("tts stream ended".into()))),
            }
        }
        self.context = None;
        if !keep {
            super::metrics::write("skipped");
        } else if !audio.is_empty() {
            self.cache.put(Phrase {
                text: text.to_owned(),
                samples: audio.into(),
                sample_rate: rate,
            });
        }
        Ok(())
    }

    async fn emit(&mut self, ev: Result<TtsEvent, TtsError>) -> Result<(), Stop> {
        self.events.send(ev).await.map_err(|_| Stop::Quiet)
    }

    fn count(&mut self, f: impl FnOnce(&mut TtsCacheUsage)) {
        f(&mut self.usage.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// Resolves when the session is cancelled or its input dropped.
async fn cancelled(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|c| *c).await;
}
