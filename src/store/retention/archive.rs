//! `--archive FILE`: each removed call's record (its ops, as the record path wrote them) appended
//! as one JSON line and synced to disk before the call is deleted. A batch whose delete then
//! fails is archived again by the next run, so a call may appear twice, never zero times.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::RetentionError;

/// One archived call: its id and every op of its record, oldest first.
#[derive(Debug, Serialize)]
pub struct ArchivedCall {
    pub call_id: String,
    pub ops: Vec<serde_json::Value>,
}

pub struct Archive {
    path: PathBuf,
    file: File,
}

impl Archive {
    /// Append to `path`, creating it readable by its owner only: it holds transcripts.
    #[allow(clippy::disallowed_methods)] // once per retention run, a CLI command, before its batches
    pub fn open(path: &Path) -> Result<Self, RetentionError> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path).map_err(|e| archive_error(path, e))?;
        Ok(Self {
            path: path.to_owned(),
            file,
        })
    }

    /// Write `calls`, one line each, and sync: the caller deletes them only after this returns.
    pub fn write(&mut self, calls: &[ArchivedCall]) -> Result<(), RetentionError> {
        let mut text = Vec::new();
        for call in calls {
            serde_json::to_writer(&mut text, call)
                .map_err(|e| archive_error(&self.path, e.into()))?;
            text.push(b'\n');
        }
        self.file
            .write_all(&text)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| archive_error(&self.path, e))
    }
}

/// Group `(call_id, op)` rows, ordered by call, into one entry per call.
pub fn group(rows: impl IntoIterator<Item = (String, serde_json::Value)>) -> Vec<ArchivedCall> {
    let mut out: Vec<ArchivedCall> = vec![];
    for (call_id, op) in rows {
        match out.last_mut() {
            Some(last) if last.call_id == call_id => last.ops.push(op),
            _ => out.push(ArchivedCall {
                call_id,
                ops: vec![op],
            }),
        }
    }
    out
}

fn archive_error(path: &Path, source: std::io::Error) -> RetentionError {
    RetentionError::Archive {
        path: path.display().to_string(),
        source,
    }
}
