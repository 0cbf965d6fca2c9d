//! Local emulators of the providers, speaking each wire protocol as the reference describes
//! (shared/docs/protocols.md), so the real clients are what runs in tests and simulation. Each has
//! latency settings and fault injection (`faults`).

pub mod admin;
pub mod cartesia;
pub mod deepgram;
pub mod faults;
pub mod openai;
pub mod serve;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;

use self::faults::Faults;

/// A running emulator on a loopback port; it stops when dropped.
pub struct Emulator {
    pub name: &'static str,
    pub addr: SocketAddr,
    pub faults: Arc<Faults>,
    task: tokio::task::JoinHandle<()>,
}

impl Emulator {
    /// Serve `router` on `addr` (port 0: any free port), with the fault controls
    /// ([`admin`]) beside it.
    pub async fn serve(
        name: &'static str,
        addr: SocketAddr,
        router: axum::Router,
        faults: Arc<Faults>,
    ) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("{name} emulator: binding {addr}"))?;
        let addr = listener.local_addr()?;
        let router = router.merge(admin::routes(faults.clone()));
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(emulator = name, error = %e, "emulator stopped");
            }
        });
        Ok(Self {
            name,
            addr,
            faults,
            task,
        })
    }

    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The emulators share the process with the clients in a simulation: small socket buffers keep
/// their memory from hiding the service's own footprint (messages are a few KB).
pub(crate) fn small_buffers(
    ws: axum::extract::WebSocketUpgrade,
) -> axum::extract::WebSocketUpgrade {
    ws.read_buffer_size(16 * 1024).write_buffer_size(0)
}

/// How long a socket that a `drop_socket` fault ends keeps reading (and discarding) the client.
pub const DROP_LINGER: std::time::Duration = std::time::Duration::from_millis(250);

/// End a websocket the way a network failure does (no close frame), but only once the client has
/// had [`DROP_LINGER`] to read what was already sent. Closing a TCP socket with unread input makes
/// the kernel reset the connection at once, and a client whose next write then fails may tear the
/// connection down before it reads the messages already in its buffer (Python's `websockets`
/// does): the fault must cut the stream, not the messages the client was sent before it.
pub(crate) async fn drop_after_linger(ws: &mut axum::extract::ws::WebSocket) {
    let drain = async { while let Some(Ok(_)) = ws.recv().await {} };
    let _ = tokio::time::timeout(DROP_LINGER, drain).await;
}
