//! What a shard's results say about the shard (`--shard I/N`), and what a result set merged from
//! the shards of one scenario says about each of them.

use serde::{Deserialize, Serialize};

use super::{GpuInfo, Machine};

/// One shard of a scenario's plan, as its results record it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// This shard's number, from 1.
    pub index: usize,
    /// How many shards the plan was split into.
    pub count: usize,
    /// A digest of the whole plan (scenario, runtimes, cells, timer): shards merge only with
    /// shards of the same plan.
    pub plan_id: String,
    /// Groups and cells of the whole plan.
    pub plan_groups: usize,
    pub plan_cells: usize,
    /// The plan's groups this shard runs, by their index in the whole plan, in order (its
    /// `groups` are these, in this order).
    pub groups: Vec<usize>,
    /// Each cell of this file, by its index in the whole plan.
    pub cells: Vec<usize>,
    /// Cells (by index in this file) whose outputs are kept in the shard's `outputs/` folder,
    /// because a cell of another shard is compared with them (or they with it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept_outputs: Vec<usize>,
    /// The XXH64 digest (hex) of each kept outputs file, by cell, recorded as it is kept: a file
    /// that does not match (swapped with another cell's, edited) is not compared when the shards
    /// are merged.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub kept_digests: std::collections::BTreeMap<usize, String>,
}

impl ShardInfo {
    /// `I/N`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.index, self.count)
    }
}

/// One shard of a merged result set: where and when it ran, and what it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardPart {
    pub index: usize,
    /// The results file it was read from.
    pub source: String,
    pub machine: Machine,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuInfo>,
    pub xbench_version: String,
    pub git_commit: String,
    /// Each runtime it ran, with its version (`ort-cpu 1.31.1`).
    pub runtime_versions: Vec<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub complete: bool,
    /// Its groups, as `model on runtime`.
    pub groups: Vec<String>,
    pub cells: usize,
    /// From its start to its report written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_ms: Option<f64>,
}

/// A result set merged from every shard of one plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardSet {
    pub count: usize,
    pub plan_id: String,
    /// In shard order.
    pub parts: Vec<ShardPart>,
}
