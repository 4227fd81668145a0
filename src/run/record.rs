//! The record a run starts from: every cell pending, the machine, the runtimes as they were found,
//! the models as resolved — or, for `--resume`, the earlier run's record with its finished cells,
//! after checking that it is the same grid.

use anyhow::{bail, Result};

use super::RunOptions;
use crate::resolve::ResolvedPlan;
use crate::results::{self, Availability, CellRecord, GroupRecord, ModelInput, ModelRecord, RunResults, Status};
use crate::runtimes::Timing;
use crate::scenario::ScenarioFile;

/// What the timer of the run's cells covers, in words.
pub fn timer_text(opts: &RunOptions) -> String {
    let r = &opts.runtime;
    let base = match r.timing {
        Timing::EndToEnd => results::TIMER_END_TO_END,
        Timing::DeviceResident => results::TIMER_DEVICE_RESIDENT,
    };
    let staged = match (r.pinned_io || r.cuda_graph, r.timing) {
        (false, _) => "",
        (true, Timing::EndToEnd) => results::TIMER_STAGED_END_TO_END,
        (true, Timing::DeviceResident) => results::TIMER_STAGED_DEVICE,
    };
    let graph = if r.cuda_graph { results::TIMER_CUDA_GRAPH } else { "" };
    format!("{base}{staged}{graph}")
}

/// What each model is, as the results record it.
pub fn model_records(plan: &ResolvedPlan) -> Vec<ModelRecord> {
    plan.models
        .iter()
        .enumerate()
        .map(|(k, m)| {
            let meta = m.meta();
            let input = if plan.runs_test_data(k) {
                ModelInput::TestData
            } else if m.inputs().map_or(true, |p| p.takes_text()) {
                ModelInput::Text
            } else {
                ModelInput::Generated
            };
            let io = m.io().ok();
            ModelRecord {
                name: m.name.clone(),
                onnx: m.onnx().map(|p| p.display().to_string()).unwrap_or_default(),
                onnx_bytes: m.onnx().and_then(|p| std::fs::metadata(p).ok()).filter(|md| md.is_file()).map(|md| md.len()).unwrap_or(0),
                tokenizer: m.tokenizer().map(|p| p.display().to_string()),
                weights: meta.weights.clone().unwrap_or_else(|| "unknown".into()),
                precision: io.map(|io| io.precision()).unwrap_or("fp32").to_string(),
                input,
                flops_per_token: io.map(|io| io.flops_per_token).unwrap_or(0),
                max_positions: m.max_positions(),
                compare_with: m.sibling(),
                hub_id: meta.hub_id.clone(),
                revision: meta.revision.clone(),
            }
        })
        .collect()
}

/// A fresh record of `plan`: every group and cell pending.
pub fn fresh(plan: &ResolvedPlan, file: &ScenarioFile, availability: Vec<Availability>, gpu: Option<results::GpuInfo>, opts: &RunOptions) -> RunResults {
    let p = &plan.plan;
    RunResults {
        format_version: results::FORMAT_VERSION,
        xbench_version: crate::VERSION.into(),
        git_commit: crate::GIT_COMMIT.into(),
        started_at: results::now_rfc3339(),
        finished_at: None,
        complete: false,
        machine: crate::machine::detect(),
        scenario_source: p.origin.clone(),
        scenario: file.clone(),
        timer: timer_text(opts),
        gpu,
        reference_runtime: p.settings.reference,
        tolerances: p.settings.tolerances,
        runtimes: availability,
        models: model_records(plan),
        groups: p
            .groups
            .iter()
            .map(|g| GroupRecord {
                model: plan.models[g.model].name.clone(),
                runtime: g.runtime,
                status: Status::Pending,
                error: None,
                load_ms: None,
                ready_ms: None,
                peak_rss_mib: None,
                session: None,
            })
            .collect(),
        cells: p.cells.iter().map(|c| CellRecord::empty(c, p.settings.warmup, p.settings.iterations, Status::Pending, None)).collect(),
        resumed_at: Vec::new(),
        wall: None,
        shard: None,
        shards: None,
    }
}

/// Refuses to resume `prev` with `plan` (from `file`) unless they describe the same grid and settings.
pub fn check_resumable(prev: &RunResults, plan: &ResolvedPlan, file: &ScenarioFile, dir: &std::path::Path) -> Result<()> {
    let fix = format!("fix: resume with the same scenario file and --runtimes as the first run, or start a new run without --resume (another --out than {})", dir.display());
    // The runtimes may have come from --runtimes; the cells below carry them.
    let same_file = ScenarioFile { runtimes: vec![], ..prev.scenario.clone() } == ScenarioFile { runtimes: vec![], ..file.clone() };
    if !same_file {
        bail!("{} was made by a different scenario than this one (names, sizes, iterations or settings changed)\n  {fix}", dir.display());
    }
    let cells = &plan.plan.cells;
    let same_cells = prev.cells.len() == cells.len()
        && prev.cells.iter().zip(cells).all(|(a, b)| a.model == b.model && a.runtime == b.runtime && a.chars == b.chars && a.batch == b.batch);
    if !same_cells {
        bail!("{} holds a different grid of cells ({} cells) than this scenario gives ({} cells)\n  {fix}", dir.display(), prev.cells.len(), cells.len());
    }
    if prev.cells.iter().all(|c| c.status != Status::Pending) && prev.complete {
        bail!("{}: every cell of this run is already finished; nothing to resume\n  fix: start a new run without --resume", dir.display());
    }
    Ok(())
}

/// The earlier run's record, continued: its finished cells kept, the runtimes and models as found now.
pub fn resumed(prev: RunResults, fresh: RunResults) -> RunResults {
    let mut r = prev;
    r.format_version = results::FORMAT_VERSION;
    r.resumed_at.push(results::now_rfc3339());
    r.runtimes = fresh.runtimes;
    r.models = fresh.models;
    r.complete = false;
    r.finished_at = None;
    r
}
