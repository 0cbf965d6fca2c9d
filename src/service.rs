//! `frontdesk start` / `dev`: the HTTP server and dependency checks, the store and providers, and
//! the LiveKit agent worker running one call tree per job; drained on the first SIGTERM or ctrl-c,
//! stopped at once on the second.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use frontdesk_actors::call::{
    spawn_call, CallDeps, CallOutcome, CallSpec, EndReason, NoopObserver, SupervisorMsg,
};
use frontdesk_actors::provider::{JoinRequest, RoomIo};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::AppConfig;
use crate::room::LiveKitRoom;
use crate::simulate::caller::CallerConfig;
use crate::simulate::room::SimulatedCallerRoom;
use crate::status::ServiceStatus;
use crate::worker::{self, CallJobRunner};
use crate::{checks, http, telemetry};

/// The HTTP server and the background dependency checks, running until `stop`.
pub struct Service {
    server: tokio::task::JoinHandle<Result<(), http::HttpError>>,
    checks: tokio::task::JoinHandle<()>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl Service {
    pub async fn stop(self) -> anyhow::Result<()> {
        self.checks.abort();
        let _ = self.stop.send(());
        self.server.await.context("http server task")??;
        Ok(())
    }
}

/// Bind `[http]`, serve `/health`, `/worker`, `/metrics`, and re-check the dependencies every
/// `http.check_interval_ms`.
pub async fn start_service(
    cfg: &AppConfig,
    status: Arc<ServiceStatus>,
    metrics: PrometheusHandle,
) -> anyhow::Result<Service> {
    let addr = format!("{}:{}", cfg.http.bind, cfg.http.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding the http server to {addr}"))?;
    tracing::info!(%addr, "http server listening");
    let checks = checks::spawn(
        checks::targets(cfg),
        Duration::from_millis(cfg.http.check_interval_ms),
        Duration::from_millis(cfg.http.check_timeout_ms),
        Arc::clone(&status),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let playground = crate::playground::Playground::from_config(&cfg.http, &cfg.worker);
    if playground.is_some() {
        tracing::info!(url = %format!("http://{addr}/playground"), "web playground on");
    }
    let server = tokio::spawn(http::serve_with(
        listener, status, metrics, playground, shutdown,
    ));
    Ok(Service {
        server,
        checks,
        stop,
    })
}

/// How `start`/`dev` run.
#[derive(Clone, Copy, Debug, Default)]
pub struct WorkerMode {
    /// `dev`: debug logs and no load threshold (already applied to the configuration).
    pub dev: bool,
    /// Rooms get a simulated caller instead of the WebRTC transport (tests, demos without a
    /// media path).
    pub simulated_caller: bool,
}

/// The service until ctrl-c or SIGTERM.
pub async fn run_worker(cfg: AppConfig, mode: WorkerMode) -> anyhow::Result<()> {
    let metrics = telemetry::init_metrics()?;
    telemetry::init_traces(&cfg.telemetry)?;
    let status = Arc::new(ServiceStatus::new());
    status.update_worker(|w| {
        w.agent_name = cfg.worker.agent_name.clone();
        w.max_calls = cfg.worker.max_calls;
    });
    let service = start_service(&cfg, Arc::clone(&status), metrics).await?;
    // Off unless `[retention] every` is set.
    let retention =
        crate::store::retention::spawn_schedule(&cfg.retention, &cfg.database, cfg.environment);
    // Off when `[usage] refresh_interval_ms` is 0.
    let usage_gauges = crate::store::usage::gauges::spawn(&cfg.database, &cfg.usage);
    let result = if cfg.worker.url.is_empty() {
        tracing::warn!("LIVEKIT_URL is not set: no agent worker, serving health and metrics only");
        shutdown_signal().await;
        Ok(())
    } else {
        run_agent(&cfg, mode, status, signals()).await
    };
    tracing::info!("shutting down");
    if let Some(task) = usage_gauges {
        task.abort();
    }
    if let Some(job) = retention {
        // A batch cut short rolls back whole: nothing is half-removed.
        job.abort();
    }
    service.stop().await?;
    // The last calls' spans are still batched; a blocking flush, off the runtime's workers.
    let _ = tokio::task::spawn_blocking(telemetry::otel::flush).await;
    result
}

/// The process's shutdown signals: the first starts the drain, the second ends it at once.
fn signals() -> impl FnMut() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
    || Box::pin(shutdown_signal())
}

/// Register with LiveKit and take jobs until the first signal, then drain; a second signal during
/// the drain hangs up every call at once.
pub async fn run_agent<S, F>(
    cfg: &AppConfig,
    mode: WorkerMode,
    status: Arc<ServiceStatus>,
    mut signal: S,
) -> anyhow::Result<()>
where
    S: FnMut() -> F,
    F: Future<Output = ()>,
{
    let (deps, _emulators) = call_deps(cfg).await?;
    let room = room_io(cfg, mode)?;
    tracing::info!(connector = room.name(), "room media connector");
    let runner = CallJobRunner::new(room, deps, cfg.pipeline.clone());
    let handle = worker::start(cfg.worker.clone(), Arc::new(runner), status)?;
    tokio::select! {
        gave_up = handle.wait() => {
            // Calls outlive the connection: let them finish before reporting the failure.
            let _ = handle.drain().await;
            gave_up?;
        }
        () = signal() => {
            tracing::info!(calls = handle.active_jobs(), "draining: no new jobs, running calls finish");
            tokio::select! {
                drained = handle.drain() => drained?,
                () = signal() => {
                    tracing::warn!("second signal: hanging up every call");
                    handle.abort();
                }
            }
        }
    }
    Ok(())
}

/// How rooms are joined: the LiveKit WebRTC transport, or a simulated caller when asked.
pub fn room_io(cfg: &AppConfig, mode: WorkerMode) -> anyhow::Result<Arc<dyn RoomIo>> {
    if mode.simulated_caller {
        let clips = crate::simulate::clips::Clips::load()?;
        tracing::warn!("rooms get a simulated caller (--simulated-caller): no real media");
        return Ok(Arc::new(SimulatedCallerRoom::new(clips, dev_caller())));
    }
    Ok(Arc::new(LiveKitRoom::new(cfg.room.clone())))
}

/// What each call needs: the providers (the emulators when a key is missing), the store.
pub async fn call_deps(
    cfg: &AppConfig,
) -> anyhow::Result<(CallDeps, Option<crate::simulate::wire::Wire>)> {
    let p = &cfg.providers;
    let (providers, wire) = if !p.has_all_keys() {
        tracing::warn!("a provider key is missing: calls use the local provider emulators");
        let script = crate::simulate::clips::Clips::load()?.texts();
        let wire = crate::console::emulators_for(cfg, script).await?;
        (wire.providers.clone(), Some(wire))
    } else {
        (p.build()?, None)
    };
    let store = crate::store::open_store(&cfg.database)?;
    let tts = crate::cache::tts::wrap(
        &cfg.cache.tts,
        providers.tts,
        crate::cache::tts::providers_voice(p, wire.is_some()),
        Some(&cfg.database),
        &cfg.pipeline.dialogue,
    )
    .await;
    let llm = crate::cache::llm::wrap(
        &cfg.cache.llm,
        providers.llm,
        &crate::cache::llm::model_name(&p.openai.model, wire.is_some()),
        Some(&cfg.database),
        Arc::clone(&store),
    );
    let deps = CallDeps {
        stt: providers.stt,
        llm,
        tts,
        store,
        observer: Arc::new(NoopObserver),
        prices: p.prices.clone(),
    };
    Ok((deps, wire))
}

/// `frontdesk connect`: which room, as whom, with whom.
#[derive(Clone, Debug)]
pub struct ConnectTarget {
    pub room: String,
    pub identity: String,
    /// The participant to talk to; else the first one who publishes audio.
    pub caller: Option<String>,
}

/// Join `target.room` directly (no dispatch, as LiveKit Agents' `connect`) with a token minted
/// from the configured key and secret, and hold one call until it ends or ctrl-c.
pub async fn connect(cfg: &AppConfig, target: ConnectTarget) -> anyhow::Result<CallOutcome> {
    anyhow::ensure!(
        !cfg.worker.url.is_empty(),
        "no LiveKit server: set LIVEKIT_URL or --url"
    );
    let args = crate::token::TokenArgs {
        room: target.room.clone(),
        identity: target.identity.clone(),
        ttl: Duration::from_secs(6 * 3600),
    };
    let token = crate::token::mint_agent(&cfg.worker, &args)?;
    let (deps, _emulators) = call_deps(cfg).await?;
    let req = JoinRequest {
        url: cfg.worker.url.clone(),
        token,
        room: target.room.clone(),
        caller: target.caller.clone(),
    };
    let link = LiveKitRoom::new(cfg.room.clone())
        .join(req)
        .await
        .with_context(|| format!("joining room {}", target.room))?;
    tracing::info!(room = %frontdesk_actors::provider::room::room_tag(&target.room), "joined; waiting for a caller (ctrl-c hangs up)");
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f");
    let spec = CallSpec {
        call_id: format!("connect-{}-{stamp}", target.room),
        room: target.room,
        caller: target.caller.unwrap_or_else(|| "unknown".into()),
    };
    let handle = spawn_call(spec, cfg.pipeline.clone(), deps, link).await?;
    let supervisor = handle.supervisor.clone();
    let wait = handle.wait();
    tokio::pin!(wait);
    let outcome = tokio::select! {
        outcome = &mut wait => outcome,
        () = shutdown_signal() => {
            let _ = supervisor.cast(SupervisorMsg::EndCall(EndReason::Shutdown));
            wait.await
        }
    };
    outcome.context("the call ended without an outcome")
}

fn dev_caller() -> CallerConfig {
    CallerConfig {
        duration: Duration::from_secs(30),
        reply_timeout: Duration::from_secs(15),
        quiet: Duration::from_millis(500),
        pause: Duration::from_millis(300),
    }
}

/// Ctrl-C, or SIGTERM (what orchestrators send) on Unix.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
