//! The worker's call records (tables `calls` and `turns`) of this run's rooms, read from its
//! database: per-turn latencies on the agent's clock, to set beside what the callers measured.
//! Rows are matched by room (`calls.room`, this run's room-name prefix), then by turn index: the
//! agent numbers caller turns from 1 and the greeting is not one.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::LoadtestError;
use crate::store::{Backend, DatabaseConfig};

/// The per-turn latencies the worker records, in ms (None when the stage did not happen).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AgentTurn {
    pub transcription_delay: Option<f64>,
    pub end_of_turn_delay: Option<f64>,
    pub llm_ttft: Option<f64>,
    pub tts_ttfb: Option<f64>,
    pub turn_latency: Option<f64>,
    pub pipeline_overhead: Option<f64>,
}

/// The stages of a turn's record, in table order.
pub use crate::simulate::report::TURN_STAGES as STAGES;

impl AgentTurn {
    /// In [`STAGES`] order.
    pub fn values(&self) -> [Option<f64>; 6] {
        [
            self.transcription_delay,
            self.end_of_turn_delay,
            self.llm_ttft,
            self.tts_ttfb,
            self.turn_latency,
            self.pipeline_overhead,
        ]
    }

    fn from_values(v: [Option<f64>; 6]) -> Self {
        Self {
            transcription_delay: v[0],
            end_of_turn_delay: v[1],
            llm_ttft: v[2],
            tts_ttfb: v[3],
            turn_latency: v[4],
            pipeline_overhead: v[5],
        }
    }
}

/// One call's record.
#[derive(Clone, Debug, Default)]
pub struct CallRecord {
    pub call_id: String,
    pub ended: bool,
    /// By turn index (1-based).
    pub turns: BTreeMap<u32, AgentTurn>,
}

/// Records by room.
pub type Records = BTreeMap<String, CallRecord>;

/// One row of the join: room, call id, ended, then the turn (absent for a call without turns).
type Row = (String, String, bool, Option<(u32, AgentTurn)>);

const QUERY: &str = "SELECT c.room, c.id, c.ended_at IS NOT NULL, t.turn_index,
        t.transcription_delay_ms, t.end_of_turn_delay_ms, t.llm_ttft_ms, t.tts_ttfb_ms,
        t.turn_latency_ms, t.pipeline_overhead_ms
   FROM calls c LEFT JOIN turns t ON t.call_id = c.id
  WHERE c.room LIKE $1";

/// Polls until every room in `rooms` has an ended call or `timeout` passes; returns what is there.
pub async fn wait_for(
    db: &DatabaseConfig,
    prefix: &str,
    rooms: &[String],
    timeout: Duration,
) -> Result<Records, LoadtestError> {
    let deadline = Instant::now() + timeout;
    loop {
        let records = read(db, prefix).await?;
        let done = rooms
            .iter()
            .all(|r| records.get(r).is_some_and(|c| c.ended));
        if done || Instant::now() >= deadline {
            return Ok(records);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The records of rooms named `prefix…`.
pub async fn read(db: &DatabaseConfig, prefix: &str) -> Result<Records, LoadtestError> {
    let pattern = format!("{prefix}%");
    let rows = match db.backend() {
        Backend::Sqlite(path) => tokio::task::spawn_blocking(move || read_sqlite(&path, &pattern))
            .await
            .map_err(|e| LoadtestError::Records(e.to_string()))??,
        Backend::Postgres => read_postgres(db, &pattern).await?,
    };
    Ok(group(rows))
}

/// By room; a room with more than one call (a second dispatch) keeps the one with most turns.
fn group(rows: Vec<Row>) -> Records {
    let mut calls: BTreeMap<(String, String), CallRecord> = BTreeMap::new();
    for (room, id, ended, turn) in rows {
        let c = calls.entry((room, id.clone())).or_default();
        c.call_id = id;
        c.ended = ended;
        if let Some((index, t)) = turn {
            c.turns.insert(index, t);
        }
    }
    let mut by_room = Records::new();
    for ((room, _), c) in calls {
        let keep = by_room
            .get(&room)
            .is_none_or(|old| c.turns.len() > old.turns.len());
        if keep {
            by_room.insert(room, c);
        }
    }
    by_room
}

fn read_sqlite(path: &str, pattern: &str) -> Result<Vec<Row>, LoadtestError> {
    use rusqlite::OpenFlags;
    let err = |e: rusqlite::Error| LoadtestError::Records(format!("{path}: {e}"));
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = rusqlite::Connection::open_with_flags(path, flags).map_err(err)?;
    conn.busy_timeout(Duration::from_secs(2)).map_err(err)?;
    let mut stmt = conn.prepare(&QUERY.replace("$1", "?1")).map_err(err)?;
    let rows = stmt
        .query_map([pattern], |r| {
            let index: Option<i64> = r.get(3)?;
            let mut v = [None; 6];
            for (i, slot) in v.iter_mut().enumerate() {
                *slot = r.get(4 + i)?;
            }
            let turn = index.map(|i| {
                (
                    i.clamp(0, i64::from(u32::MAX)) as u32,
                    AgentTurn::from_values(v),
                )
            });
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, turn))
        })
        .map_err(err)?;
    rows.collect::<Result<_, _>>().map_err(err)
}

async fn read_postgres(db: &DatabaseConfig, pattern: &str) -> Result<Vec<Row>, LoadtestError> {
    let err = |e: String| LoadtestError::Records(e);
    let pool = crate::store::postgres::pool::build(db).map_err(|e| err(e.to_string()))?;
    let client = crate::store::postgres::pool::get(&pool)
        .await
        .map_err(|e| err(e.to_string()))?;
    let rows = client
        .query(QUERY, &[&pattern])
        .await
        .map_err(|e| err(e.to_string()))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let get = |i: usize| {
            r.try_get::<_, Option<f64>>(i)
                .map_err(|e| err(e.to_string()))
        };
        let mut v = [None; 6];
        for (i, slot) in v.iter_mut().enumerate() {
            *slot = get(4 + i)?;
        }
        let index: Option<i32> = r.try_get(3).map_err(|e| err(e.to_string()))?;
        let turn = index.map(|i| (i.max(0) as u32, AgentTurn::from_values(v)));
        let room: String = r.try_get(0).map_err(|e| err(e.to_string()))?;
        let id: String = r.try_get(1).map_err(|e| err(e.to_string()))?;
        let ended: bool = r.try_get(2).map_err(|e| err(e.to_string()))?;
        out.push((room, id, ended, turn));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_records_group_by_room_and_turn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(include_str!("../../sql/sqlite/0002_call_record.up.sql"))
            .unwrap();
        c.execute_batch(
            "INSERT INTO calls (id, room, ended_at) VALUES ('j1', 'lt-x-000', 'now'),
                 ('j2', 'lt-x-001', NULL), ('j3', 'other', 'now');
             INSERT INTO turns VALUES ('j1', 1, 'now', 'a', 'b', 0, 1, 2, 3, 4, 1000, 5),
                 ('j1', 2, 'now', 'a', 'b', 0, NULL, 2, 3, 4, 900, 6),
                 ('j3', 1, 'now', 'a', 'b', 0, 1, 2, 3, 4, 5, 6);",
        )
        .unwrap();
        let db = DatabaseConfig {
            url: crate::secret::Secret::new(format!("sqlite://{}", path.display())),
            ..Default::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let r = rt.block_on(read(&db, "lt-x-")).unwrap();
        assert_eq!(r.len(), 2);
        let j1 = &r["lt-x-000"];
        assert!(j1.ended && j1.call_id == "j1");
        assert_eq!(j1.turns[&1].turn_latency, Some(1000.0));
        assert_eq!(j1.turns[&2].transcription_delay, None);
        assert_eq!(j1.turns[&2].pipeline_overhead, Some(6.0));
        assert!(!r["lt-x-001"].ended && r["lt-x-001"].turns.is_empty());
    }
}
