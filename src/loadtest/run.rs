//! The run: set up the worker and the callers, sample the processes, run the calls, read the call
//! records, build the report.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::caller::{self, CallResult, Failure, Plan, Script, Setup, Timing};
use super::dispatch::{port_of, Dispatcher};
use super::ear::EarConfig;
use super::procstat::{find_server_pid, Sample, Sampler};
use super::report::{Report, Resources};
use super::usage::{usage, Window};
use super::worker::{SpawnSpec, Worker};
use super::{records, vadtail, LoadtestArgs, LoadtestError, WorkerSource};
use crate::config::AppConfig;
use crate::room::LiveKitRoom;
use crate::secret::Secret;
use crate::simulate::clips::Clips;

/// Idle samples of every process before the first call.
const IDLE: Duration = Duration::from_millis(1_500);
/// How long the worker may take to write its last call records after the callers hung up.
const RECORDS_TIMEOUT: Duration = Duration::from_secs(20);
/// Speech after this much quiet is a new onset.
const ONSET_GAP: Duration = Duration::from_millis(300);

/// What the run is: its id, rooms and callers' shared setup.
struct Prepared {
    prefix: String,
    agent_name: String,
    dir: PathBuf,
    setup: Arc<Setup>,
}

/// The whole load test; the report (failed calls are in it, not errors).
#[allow(clippy::disallowed_methods)] // CLI teardown of the spawned worker's folder, after the run
pub async fn run(cfg: &AppConfig, args: &LoadtestArgs) -> Result<Report, LoadtestError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let p = prepare(cfg, args)?;
    let mut worker = start_worker(cfg, args, &p).await?;
    let result = measure(cfg, args, &p, &worker).await;
    worker.stop().await;
    let clean = result.as_ref().is_ok_and(Report::all_calls_completed);
    if args.worker == WorkerSource::Spawn {
        if clean && !args.keep {
            let _ = std::fs::remove_dir_all(&p.dir);
        } else {
            tracing::warn!(dir = %p.dir.display(), "the spawned worker's database and log are kept");
        }
    }
    let mut report = result?;
    report.settings = settings(cfg, args, &p);
    Ok(report)
}

fn prepare(cfg: &AppConfig, args: &LoadtestArgs) -> Result<Prepared, LoadtestError> {
    validate(cfg, args)?;
    let run_id = format!(
        "{}-{}",
        chrono::Utc::now().format("%m%d%H%M%S"),
        std::process::id()
    );
    let agent_name = match (&args.agent_name, args.worker) {
        (Some(name), _) => name.clone(),
        (None, WorkerSource::Spawn) => format!("loadtest-{run_id}"),
        (None, WorkerSource::External) => cfg.worker.agent_name.clone(),
    };
    Ok(Prepared {
        prefix: format!("lt-{run_id}-"),
        dir: std::env::temp_dir().join(format!("frontdesk-loadtest-{run_id}")),
        setup: Arc::new(setup(cfg, args, &agent_name)?),
        agent_name,
    })
}

fn validate(cfg: &AppConfig, args: &LoadtestArgs) -> Result<(), LoadtestError> {
    let w = &cfg.worker;
    let problem = if w.url.is_empty() {
        "no LiveKit server: set LIVEKIT_URL or --url"
    } else if w.api_key.is_empty() || w.api_secret.is_empty() {
        "no LiveKit credentials: set LIVEKIT_API_KEY and LIVEKIT_API_SECRET or --api-key/--api-secret"
    } else if args.calls == 0 || args.turns == Some(0) {
        "--calls and --turns must be at least 1"
    } else {
        return Ok(());
    };
    Err(LoadtestError::Args(problem.into()))
}

/// What every caller shares: the fixture lines, where each ends, the room and the dispatcher.
fn setup(cfg: &AppConfig, args: &LoadtestArgs, agent_name: &str) -> Result<Setup, LoadtestError> {
    let w = &cfg.worker;
    let clips = Clips::load_at(frontdesk_actors::audio::ROOM_RATE)
        .map_err(|e| LoadtestError::Args(format!("fixture lines: {e:#}")))?;
    let script = match (args.duration, args.turns) {
        (Some(d), _) => Script::For(d),
        (None, Some(k)) => Script::Turns(k),
        (None, None) => Script::Turns(clips.lines.len()),
    };
    let speech_ends = Setup::speech_ends(&clips, args.threshold_dbfs);
    let room = crate::room::RoomConfig {
        dtx: args.caller_dtx,
        ..cfg.room.clone()
    };
    Ok(Setup {
        vad_tails: vadtail::vad_tails(&clips, room.encoder(), &cfg.pipeline.vad, &speech_ends),
        room_io: LiveKitRoom::caller_side(room),
        livekit: w.clone(),
        dispatcher: Dispatcher::new(&w.url, w.api_key.expose(), &w.api_secret, agent_name)?,
        speech_ends,
        clips,
        script,
        timing: timing(args),
        ear: EarConfig {
            threshold_dbfs: args.threshold_dbfs,
            onset_gap: ONSET_GAP,
        },
    })
}

fn timing(args: &LoadtestArgs) -> Timing {
    Timing {
        greeting_timeout: args.greeting_timeout,
        reply_timeout: args.reply_timeout,
        quiet: args.quiet,
        max_reply: args.max_reply,
        pause: args.pause,
    }
}

#[allow(clippy::disallowed_methods)] // CLI setup of the spawned worker's folder, before the run
async fn start_worker(
    cfg: &AppConfig,
    args: &LoadtestArgs,
    p: &Prepared,
) -> Result<Worker, LoadtestError> {
    match args.worker {
        WorkerSource::External => {
            let db = match &args.database_url {
                Some(url) => crate::store::DatabaseConfig {
                    url: Secret::new(url),
                    ..cfg.database.clone()
                },
                None => cfg.database.clone(),
            };
            Ok(Worker::external(
                args.worker_pid,
                Some(db),
                args.worker_metrics.clone(),
            ))
        }
        WorkerSource::Spawn => {
            std::fs::create_dir_all(&p.dir)?;
            Worker::spawn(SpawnSpec {
                cfg,
                agent_name: &p.agent_name,
                calls: args.calls,
                dir: &p.dir,
                log_level: &args.worker_log,
            })
            .await
        }
    }
}

/// The processes whose CPU and memory are sampled.
struct Samplers {
    worker: Option<Sampler>,
    server: Option<Sampler>,
    callers: Sampler,
}

struct Series {
    worker: Option<(u32, Vec<Sample>)>,
    server: Option<(u32, Vec<Sample>)>,
    callers: (u32, Vec<Sample>),
}

impl Samplers {
    fn start(worker: Option<u32>, server: Option<u32>) -> Self {
        Self {
            worker: worker.map(Sampler::start),
            server: server.map(Sampler::start),
            callers: Sampler::start(std::process::id()),
        }
    }

    fn stop(self) -> Series {
        let done = |s: Sampler| (s.pid, s.stop());
        Series {
            worker: self.worker.map(done),
            server: self.server.map(done),
            callers: done(self.callers),
        }
    }
}

async fn measure(
    cfg: &AppConfig,
    args: &LoadtestArgs,
    p: &Prepared,
    worker: &Worker,
) -> Result<Report, LoadtestError> {
    let server_pid = args
        .server_pid
        .or_else(|| port_of(&cfg.worker.url).and_then(find_server_pid));
    let samplers = Samplers::start(worker.pid, server_pid);
    tokio::time::sleep(IDLE).await;
    let before = worker.packet_counters().await;
    let began = Instant::now();
    tracing::info!(calls = args.calls, agent = %p.agent_name, "load test: calls starting");
    let results = run_calls(&p.setup, plans(p, args, began)).await;
    let wall = began.elapsed();
    let after = worker.packet_counters().await;
    let series = samplers.stop();
    let mut report = Report::from_calls(results);
    report.wall_seconds = wall.as_secs_f64();
    report.worker_packets(before, after);
    report.correlate(read_records(worker, p, &report.per_call).await);
    report.resources = resources(&report.per_call, &series, began);
    Ok(report)
}

fn plans(p: &Prepared, args: &LoadtestArgs, t0: Instant) -> Vec<Plan> {
    let n = args.calls as u32;
    (0..n)
        .map(|i| Plan {
            room: format!("{}{i:03}", p.prefix),
            identity: format!("loadtest-caller-{i:03}"),
            start_at: t0 + args.ramp * i / n,
        })
        .collect()
}

async fn run_calls(setup: &Arc<Setup>, plans: Vec<Plan>) -> Vec<CallResult> {
    let mut set = JoinSet::new();
    let mut rooms = HashMap::new();
    for plan in plans {
        let room = plan.room.clone();
        let handle = set.spawn(caller::run(Arc::clone(setup), plan));
        rooms.insert(handle.id(), room);
    }
    let mut out = Vec::with_capacity(rooms.len());
    while let Some(joined) = set.join_next_with_id().await {
        match joined {
            Ok((_, r)) => out.push(r),
            Err(e) => out.push(CallResult {
                room: rooms.get(&e.id()).cloned().unwrap_or_default(),
                failure: Some(Failure {
                    stage: "caller".into(),
                    reason: format!("the caller task failed: {e}"),
                    retriable: false,
                }),
                ..Default::default()
            }),
        }
    }
    out.sort_by(|a, b| a.room.cmp(&b.room));
    out
}

/// The worker's records of the rooms it got to (the greeting was heard).
async fn read_records(
    worker: &Worker,
    p: &Prepared,
    calls: &[CallResult],
) -> Result<records::Records, String> {
    let Some(db) = &worker.records else {
        return Err("no database given (--database-url)".into());
    };
    let rooms: Vec<String> = calls
        .iter()
        .filter(|c| c.greeting_ms.is_some())
        .map(|c| c.room.clone())
        .collect();
    records::wait_for(db, &p.prefix, &rooms, RECORDS_TIMEOUT)
        .await
        .map_err(|e| e.to_string())
}

fn resources(calls: &[CallResult], series: &Series, idle_before: Instant) -> Resources {
    let spans: Vec<_> = calls.iter().filter_map(|c| c.active).collect();
    let settled: Vec<_> = calls.iter().filter_map(|c| c.settled_at).collect();
    let Some(w) = Window::of(spans, &settled) else {
        return Resources::default();
    };
    let of = |s: &(u32, Vec<Sample>)| usage(s.0, &s.1, idle_before, &w);
    Resources {
        window: if w.steady { "steady" } else { "whole run" }.into(),
        window_seconds: w.seconds(),
        mean_calls: w.mean_calls(),
        worker: series.worker.as_ref().and_then(of),
        livekit_server: series.server.as_ref().and_then(of),
        loadtest_callers: of(&series.callers),
    }
}

fn settings(cfg: &AppConfig, args: &LoadtestArgs, p: &Prepared) -> BTreeMap<String, String> {
    let script = match p.setup.script {
        Script::Turns(k) => format!("{k} turns"),
        Script::For(d) => format!("{} per call", humantime::format_duration(d)),
    };
    [
        ("url", cfg.worker.url.clone()),
        ("calls", args.calls.to_string()),
        ("ramp", humantime::format_duration(args.ramp).to_string()),
        ("script", script),
        ("worker", format!("{:?}", args.worker).to_lowercase()),
        ("agent_name", p.agent_name.clone()),
        ("room_prefix", p.prefix.clone()),
        ("threshold_dbfs", args.threshold_dbfs.to_string()),
        ("quiet", humantime::format_duration(args.quiet).to_string()),
        ("caller_dtx", args.caller_dtx.to_string()),
        ("pause", humantime::format_duration(args.pause).to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}
