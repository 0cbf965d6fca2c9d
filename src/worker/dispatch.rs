//! Offers, assignments and terminations: the worker's side of job dispatch (protocols.md §1.2).

use std::sync::Arc;
use std::time::Duration;

use livekit_protocol as lk;
use tokio::sync::watch;

use super::job::{JobError, JobInfo, RunningJob};
use super::state::Shared;
use super::wire::{self, Acceptance};

const OFFERS: &str = "frontdesk_worker_offers_total";
const JOBS: &str = "frontdesk_worker_jobs_total";

/// Answer an offer: accept only with a slot reserved for it.
pub(crate) fn on_availability(sh: &Arc<Shared>, req: lk::AvailabilityRequest) -> lk::WorkerMessage {
    let name = &sh.cfg.agent_name;
    let Some(job) = req.job else {
        tracing::warn!("availability request without a job");
        return wire::availability("", None, name);
    };
    let decision = if sh.draining() {
        Err(super::admission::Refusal::Draining)
    } else if sh.cpu_overloaded() {
        Err(super::admission::Refusal::Load)
    } else {
        sh.admission.offer(&job.id)
    };
    match decision {
        Ok(()) => {
            metrics::counter!(OFFERS, "decision" => "accepted").increment(1);
            tracing::info!(job_id = %job.id, room = %frontdesk_actors::provider::room::room_tag(room_name(&job)), "offer accepted");
            expire_later(sh, &job.id);
            sh.nudge.notify_one();
            wire::availability(&job.id, Some(&Acceptance::for_job(&job.id, name)), name)
        }
        Err(why) => {
            metrics::counter!(OFFERS, "decision" => why.label()).increment(1);
            tracing::info!(job_id = %job.id, reason = why.label(), "offer refused");
            wire::availability(&job.id, None, name)
        }
    }
}

/// Release the reservation if the assignment does not come in time.
fn expire_later(sh: &Arc<Shared>, job_id: &str) {
    let (sh, job_id) = (Arc::clone(sh), job_id.to_owned());
    let wait = Duration::from_millis(sh.cfg.assignment_timeout_ms);
    tokio::spawn(async move {
        tokio::time::sleep(wait).await;
        if sh.admission.expire(&job_id) {
            tracing::warn!(%job_id, ?wait, "no assignment for an accepted offer; slot released");
            metrics::counter!("frontdesk_worker_assignment_timeouts_total").increment(1);
            sh.nudge.notify_one();
        }
    });
}

/// Start an assigned job on its reserved slot.
pub(crate) fn on_assignment(sh: &Arc<Shared>, a: lk::JobAssignment) {
    let Some(job) = a.job else {
        tracing::warn!("assignment without a job");
        return;
    };
    if !sh.admission.claim(&job.id) {
        // As the reference worker does: only offers we accepted (and still hold) are run.
        tracing::warn!(job_id = %job.id, "assignment for a job without a reservation; ignored");
        return;
    }
    let Some(stop) = sh.jobs.insert(&job.id) else {
        tracing::warn!(job_id = %job.id, "assignment for a job already running; ignored");
        sh.admission.release();
        return;
    };
    let info = job_info(sh, &job, a.url, a.token);
    sh.jobs_changed();
    tokio::spawn(run_job(Arc::clone(sh), info, stop));
}

pub(crate) fn on_termination(sh: &Shared, t: lk::JobTermination) {
    if sh.jobs.end(&t.job_id) {
        tracing::info!(job_id = %t.job_id, "job terminated by the server");
    } else {
        tracing::debug!(job_id = %t.job_id, "termination for an unknown job; ignored");
    }
}

fn room_name(job: &lk::Job) -> &str {
    job.room.as_ref().map_or("", |r| r.name.as_str())
}

fn job_info(sh: &Shared, job: &lk::Job, url: Option<String>, token: String) -> JobInfo {
    let identity = job
        .state
        .as_ref()
        .map(|s| s.participant_identity.clone())
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| Acceptance::for_job(&job.id, &sh.cfg.agent_name).identity);
    JobInfo {
        job_id: job.id.clone(),
        room: room_name(job).to_owned(),
        url: url
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| sh.cfg.url.clone()),
        token: crate::secret::Secret::new(token),
        participant_identity: identity,
        caller: job
            .participant
            .as_ref()
            .map(|p| p.identity.clone())
            .unwrap_or_default(),
    }
}

/// One job from start to end; reports JS_RUNNING, then JS_SUCCESS or JS_FAILED.
async fn run_job(sh: Arc<Shared>, info: JobInfo, stop: watch::Receiver<bool>) {
    let job_id = info.job_id.clone();
    // In its own task so a panicking runner still frees the slot and reports the job failed.
    let (result, job) = tokio::spawn(drive(Arc::clone(&sh), info, stop))
        .await
        .unwrap_or_else(|e| (Err(JobError::Failed(format!("job task failed: {e}"))), None));
    report_end(&sh, &job_id, result).await;
    // After the final status is queued, so a drain that sees no jobs also sees it sent.
    sh.jobs.remove(&job_id);
    sh.admission.release();
    sh.jobs_changed();
    if let Some(job) = job {
        // The server fails a job whose agent leaves the room before its status arrives: the
        // job (and with it the agent's presence in the room) goes only after the status.
        tokio::time::sleep(LEAVE_AFTER_STATUS).await;
        drop(job);
    }
}

/// How long a finished job's agent stays in its room after the final status was queued.
const LEAVE_AFTER_STATUS: std::time::Duration = std::time::Duration::from_millis(250);

/// The job's end, and the job itself (dropped only after its status is reported).
type Driven = (Result<(), JobError>, Option<Box<dyn RunningJob>>);

async fn drive(sh: Arc<Shared>, info: JobInfo, mut stop: watch::Receiver<bool>) -> Driven {
    let job_id = info.job_id.clone();
    let mut job = match sh.runner.start(info).await {
        Ok(job) => job,
        Err(e) => return (Err(e), None),
    };
    tracing::info!(%job_id, "job running");
    sh.send(wire::job_status(&job_id, lk::JobStatus::JsRunning, ""))
        .await;
    let mut ended = false;
    loop {
        tokio::select! {
            end = job.finished() => return (end, Some(job)),
            // Also fires at once for an end requested while the job was starting.
            _ = stop.wait_for(|s| *s), if !ended => {
                ended = true;
                job.end();
            }
        }
    }
}

async fn report_end(sh: &Shared, job_id: &str, result: Result<(), JobError>) {
    match result {
        Ok(()) => {
            tracing::info!(%job_id, "job ended");
            metrics::counter!(JOBS, "outcome" => "success").increment(1);
            sh.send(wire::job_status(job_id, lk::JobStatus::JsSuccess, ""))
                .await;
        }
        Err(e) => {
            tracing::error!(%job_id, error = %e, "job failed");
            metrics::counter!(JOBS, "outcome" => "failed").increment(1);
            sh.send(wire::job_status(
                job_id,
                lk::JobStatus::JsFailed,
                &e.to_string(),
            ))
            .await;
        }
    }
}
