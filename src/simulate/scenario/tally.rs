//! The scenario results of a run: per scenario, calls, goals reached and tools by name.

use std::collections::BTreeMap;
use std::sync::Mutex;

use frontdesk_actors::call::shared::lock;
use serde::Serialize;

use super::{Plan, ToolUse};

/// Per scenario: calls, goals reached, tools called by name, and why goals were missed.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ScenarioRow {
    pub calls: u64,
    pub goal_reached: u64,
    pub goal: &'static str,
    pub tools: BTreeMap<String, u64>,
    /// Why goals were missed, with how often (a few distinct reasons).
    pub misses: BTreeMap<String, u64>,
}

/// The scenario results of a run, filled as calls end.
#[derive(Debug, Default)]
pub struct Tally {
    rows: Mutex<BTreeMap<&'static str, ScenarioRow>>,
}

impl Tally {
    pub fn add(&self, plan: &Plan, tools: &[ToolUse], goal: Result<(), String>) {
        let mut rows = lock(&self.rows);
        let row = rows.entry(plan.scenario.name()).or_default();
        row.goal = plan.scenario.goal();
        row.calls += 1;
        match goal {
            Ok(()) => row.goal_reached += 1,
            Err(why) => *row.misses.entry(why).or_default() += 1,
        }
        for t in tools {
            *row.tools.entry(t.name.clone()).or_default() += 1;
        }
    }

    pub fn rows(&self) -> BTreeMap<String, ScenarioRow> {
        let rows = lock(&self.rows);
        rows.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }
}

/// The report's scenario section: one row per scenario, the tools it called, why goals missed.
pub fn table(rows: &BTreeMap<String, ScenarioRow>) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut t = format!(
        "\n{:<14}{:>6}{:>6}  {:<32}tools called\n",
        "scenario", "calls", "goal", "goal (checked in the database)"
    );
    for (name, r) in rows {
        let tools: Vec<String> = r.tools.iter().map(|(k, n)| format!("{k} {n}")).collect();
        t.push_str(&format!(
            "{name:<14}{:>6}{:>6}  {:<32}{}\n",
            r.calls,
            r.goal_reached,
            r.goal,
            tools.join(", ")
        ));
        for (why, n) in &r.misses {
            t.push_str(&format!("{:<14}missed {n}: {why}\n", ""));
        }
    }
    t
}
