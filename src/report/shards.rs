//! What a report says about shards: for a result set merged from a plan's shards, which shard
//! ran where and when; for one shard's own report, which part of the plan it holds.

use super::data::Merged;
use super::doc::Block;
use crate::results::RunResults;

fn secs(ms: Option<f64>) -> String {
    ms.map(|v| format!("{:.1}", v / 1e3)).unwrap_or_else(|| "—".into())
}

fn merged_blocks(r: &RunResults, label: &str, multi: bool) -> Vec<Block> {
    let Some(set) = &r.shards else { return vec![] };
    let mut bullets = vec![format!(
        "One result set merged from the {} shards of one plan (plan `{}`, scenario `{}`): each shard ran its own (model, runtime) groups with `xbench scenario … --shard I/{}`, and every table and figure of this report is the whole plan's, as one run would give it. Outputs of cells on different shards were compared when the shards were merged.",
        set.count, set.plan_id, r.scenario.name, set.count
    )];
    for p in set.parts.iter().filter(|p| !p.complete) {
        bullets.push(format!("⚠ shard {}/{} ({}) did not finish: its cells not run are shown as missing; resume it with `xbench scenario <scenario> --resume <its folder>` and report again", p.index, set.count, p.source));
    }
    let slowest = set.parts.iter().filter_map(|p| p.wall_ms).fold(None, |m: Option<f64>, w| Some(m.map_or(w, |m| m.max(w))));
    if let Some(w) = slowest {
        let sum: f64 = set.parts.iter().filter_map(|p| p.wall_ms).sum();
        bullets.push(format!("Wall time: {:.1} s for the slowest shard; {:.1} s for all shards one after another", w / 1e3, sum / 1e3));
    }
    let head = ["shard", "host", "CPU", "cores", "GPU", "groups", "cells", "xbench (commit)", "runtime versions", "run", "wall (s)"];
    let rows = set
        .parts
        .iter()
        .map(|p| {
            vec![
                format!("{}/{}", p.index, set.count),
                format!("`{}`", p.machine.name),
                p.machine.cpu.clone(),
                p.machine.cores.to_string(),
                p.gpu.as_ref().map(|g| format!("{} (GPU {})", g.name, g.index)).unwrap_or_else(|| "—".into()),
                p.groups.join(", "),
                p.cells.to_string(),
                format!("{} ({})", p.xbench_version, p.git_commit),
                p.runtime_versions.join(", "),
                format!("{} → {}{}", p.started_at, p.finished_at.as_deref().unwrap_or("not finished"), if p.complete { "" } else { " (partial)" }),
                secs(p.wall_ms),
            ]
        })
        .collect();
    let heading = if multi { format!("Shards of `{label}`") } else { "Shards".to_string() };
    vec![Block::Heading(heading), Block::Bullets(bullets), Block::Table { head: head.iter().map(|s| s.to_string()).collect(), rows }]
}

fn shard_blocks(r: &RunResults, label: &str, multi: bool) -> Vec<Block> {
    let Some(s) = &r.shard else { return vec![] };
    let groups: Vec<String> = r.groups.iter().map(|g| format!("{} on {}", g.model, g.runtime)).collect();
    let whose = if multi { format!("`{label}` is") } else { "This is".to_string() };
    vec![Block::Para(format!(
        "{whose} shard {} of scenario `{}` (plan `{}`): {} of the plan's {} groups ({}), {} of its {} cells. The other shards' cells are in their own results; `xbench report` of every shard's results.json merges them into one result set.",
        s.label(),
        r.scenario.name,
        s.plan_id,
        s.groups.len(),
        s.plan_groups,
        if groups.is_empty() { "none".to_string() } else { groups.join(", ") },
        s.cells.len(),
        s.plan_cells
    ))]
}

/// The shard blocks of every source that is a shard or a merged set.
pub fn blocks(m: &Merged) -> Vec<Block> {
    m.sources.iter().flat_map(|s| [merged_blocks(s.results, &s.label, m.multi()), shard_blocks(s.results, &s.label, m.multi())]).flatten().collect()
}
