//! The record a run starts from: every cell pending, the machine, the runtimes as they were found,
//! the models as resolved — or, for `--resume`, the earlier run's record with its finished cells,
//! after checking that it is the same grid.

use anyhow::{bail, Result};

use super::RunOptions;
use crate::resolve::ResolvedPlan;
use crate::results::{self, Availability, CellRecord, GroupRecord, ModelInput, ModelRecord, RunResults, Scope, Status};
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
                onnx_bytes: m.onnx().map_or(0, |p| onnx_bytes(p, io)),
                tokenizer: m.tokenizer().map(|p| p.display().to_string()),
                weights: meta.weights.clone().unwrap_or_else(|| "unknown".into()),
                precision: io.map(|io| io.precision()).unwrap_or_default(),
                grid: if input == ModelInput::Generated { crate::resolve::model_grid(&plan.plan, m).ok().flatten().and_then(|g| g.note) } else { None },
                input,
                flops_per_token: io.and_then(|io| io.flops_per_token),
                max_positions: m.max_positions(),
                compare_with: m.sibling(),
                hub_id: meta.hub_id.clone(),
                revision: meta.revision.clone(),
            }
        })
        .collect()
}

/// The bytes of a model's ONNX file and of the external data files beside it that its weights are
/// stored in (each counted once); 0 when the ONNX file is not there.
fn onnx_bytes(onnx: &std::path::Path, io: Option<&crate::models::ModelIo>) -> u64 {
    let size = |p: &std::path::Path| std::fs::metadata(p).ok().filter(|md| md.is_file()).map(|md| md.len());
    let Some(graph) = size(onnx) else { return 0 };
    let dir = onnx.parent().unwrap_or(std::path::Path::new("."));
    let mut seen = std::collections::BTreeSet::new();
    graph + io.map_or(0, |io| io.external_files.iter().filter(|f| seen.insert(f.location.as_str())).filter_map(|f| size(&dir.join(&f.location))).sum())
}

/// A fresh record of `plan`: every group and cell pending.
/// A new record of `plan`; `files` are the digests of its files (`conditions::digests`).
pub fn fresh(plan: &ResolvedPlan, file: &ScenarioFile, availability: Vec<Availability>, gpu: Option<results::GpuInfo>, opts: &RunOptions, files: Vec<results::FileDigest>) -> RunResults {
    let p = &plan.plan;
    let machine = crate::machine::detect();
    let conditions = super::conditions::gather(opts, &availability, &machine, gpu.as_ref(), files);
    RunResults {
        format_version: results::FORMAT_VERSION,
        xbench_version: crate::VERSION.into(),
        git_commit: crate::GIT_COMMIT.into(),
        started_at: results::now_rfc3339(),
        finished_at: None,
        complete: false,
        machine,
        scenario_source: p.origin.clone(),
        scenario: file.clone(),
        timer: timer_text(opts),
        gpu,
        reference_runtime: reference(p.settings.reference, file.reference.is_some(), &availability),
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
                first_run_ms: None,
                peak_rss_mib: None,
                session: None,
            })
            .collect(),
        cells: p.cells.iter().map(|c| CellRecord::empty(c, p.settings.warmup, p.settings.iterations, Status::Pending, None)).collect(),
        resumed_at: Vec::new(),
        wall: None,
        conditions: Some(conditions),
        shard: None,
        shards: None,
        run: None,
        log_lines: 0,
    }
}

/// The runtime the others are compared with: the one the scenario names (`named`), even when it
/// cannot run here (its cells are then flagged not compared, and the run says so); else the
/// default (ONNX Runtime on the CPU) when it runs here, else the first listed runtime that does.
fn reference(planned: crate::scenario::RuntimeId, named: bool, availability: &[Availability]) -> crate::scenario::RuntimeId {
    let usable = |id| availability.iter().any(|a| a.runtime == id && a.usable);
    if named || usable(planned) {
        return planned;
    }
    availability.iter().find(|a| a.usable).map_or(planned, |a| a.runtime)
}

/// Refuses to resume `prev` with `plan` (from `file`) unless they describe the same grid and
/// settings, and unless something is left to run: pending cells, or failed ones with `retry`.
pub fn check_resumable(prev: &RunResults, plan: &ResolvedPlan, file: &ScenarioFile, dir: &std::path::Path, retry: bool) -> Result<()> {
    let fix = format!("fix: resume with the same scenario file and --runtimes as the first run, or start a new run without --resume (another --out than {})", dir.display());
    // The runtimes may have come from --runtimes; the cells below carry them.
    let same_file = ScenarioFile { runtimes: vec![], ..prev.scenario.clone() } == ScenarioFile { runtimes: vec![], ..file.clone() };
    if !same_file {
        bail!("{} was made by a different scenario than this one (names, sizes, iterations or settings changed)\n  {fix}", dir.display());
    }
    let cells = &plan.plan.cells;
    let same_cells = prev.cells.len() == cells.len()
        && prev.cells.iter().zip(cells).all(|(a, b)| a.model == b.model && a.runtime == b.runtime && a.chars == b.chars && a.batch == b.batch && a.data_set == b.data_set);
    if !same_cells {
        bail!("{} holds a different grid of cells ({} cells) than this scenario gives ({} cells)\n  {fix}", dir.display(), prev.cells.len(), cells.len());
    }
    let groups = &plan.plan.groups;
    let same_groups = prev.groups.len() == groups.len() && prev.groups.iter().zip(groups).all(|(a, b)| a.model == plan.models[b.model].name && a.runtime == b.runtime);
    if !same_groups {
        bail!("{} holds other (model, runtime) groups ({}) than this scenario gives ({})\n  {fix}", dir.display(), prev.groups.len(), groups.len());
    }
    let count = |s| prev.cells.iter().filter(|c| c.status == s).count();
    let (pending, failed, skipped) = (count(Status::Pending), count(Status::Failed), count(Status::Skipped));
    let skipped = if skipped > 0 { format!("; {skipped} were skipped, their runtime not usable here, and stay so") } else { String::new() };
    match (pending, failed, retry) {
        (0, 0, true) => bail!("{}: no cell of this run failed{skipped}; nothing to retry\n  fix: start a new run without --resume (another --out than {})", dir.display(), dir.display()),
        (0, 0, false) if prev.complete => bail!("{}: every cell of this run is already finished{skipped}; nothing to resume\n  fix: start a new run without --resume", dir.display()),
        (0, n, false) if prev.complete => bail!(
            "{}: every cell of this run is already finished, {n} of them failed; nothing to resume\n  fix: add --retry-failed to run the failed cells again (the others are kept), or start a new run without --resume",
            dir.display()
        ),
        _ => Ok(()),
    }
}

/// Sets every failed cell of `prev` (not skipped ones) and its group back to pending, so that a
/// resume runs them again; returns how many.
pub fn retry_failed(prev: &mut RunResults, plan: &ResolvedPlan) -> usize {
    let s = &plan.plan.settings;
    let mut n = 0;
    for (c, cell) in prev.cells.iter_mut().zip(&plan.plan.cells).filter(|(c, _)| c.status == Status::Failed) {
        *c = CellRecord::empty(cell, s.warmup, s.iterations, Status::Pending, None);
        n += 1;
    }
    for g in prev.groups.iter_mut() {
        if prev.cells.iter().any(|c| c.model == g.model && c.runtime == g.runtime && c.status == Status::Pending) {
            g.status = Status::Pending;
            g.error = None;
        }
    }
    n
}

/// Refuses to continue `prev` under other conditions than its finished cells (measured or
/// failed) were run under: each difference that concerns one of them is named, old → new.
pub fn check_conditions(prev: &RunResults, now: &RunResults, dir: &std::path::Path) -> Result<()> {
    let kept = |scope: &Scope| {
        prev.cells.iter().filter(|c| matches!(c.status, Status::Ok | Status::Failed)).any(|c| match scope {
            Scope::All => true,
            Scope::Model(m) => c.model == *m,
            Scope::Runtime(r) => c.runtime.as_str() == r,
        })
    };
    let Some(new) = &now.conditions else { return Ok(()) };
    let Some(old) = &prev.conditions else {
        if kept(&Scope::All) {
            bail!(
                "{}: its results.json does not record the conditions its cells were measured under (timing and I/O modes, versions, digests of the model files; it was written by an older xbench), so a resume cannot tell whether new cells would mean what the finished ones mean\n  fix: start a new run without --resume (another --out than {})",
                dir.display(),
                dir.display()
            );
        }
        return Ok(());
    };
    let diffs: Vec<results::Difference> = results::differences(old, new).into_iter().filter(|d| kept(&d.scope)).collect();
    if diffs.is_empty() {
        return Ok(());
    }
    let lines: String = diffs.iter().map(|d| format!("\n    {}: {} → {}", d.what, d.old, d.new)).collect();
    let mut fixes: Vec<&str> = Vec::new();
    for d in &diffs {
        if !fixes.contains(&d.fix.as_str()) {
            fixes.push(&d.fix);
        }
    }
    bail!(
        "{} cannot be resumed: its finished cells were run under other conditions than this run's, and one table would mix them:{lines}\n  fix: {}; or start a new run without --resume (another --out than {})",
        dir.display(),
        fixes.join("; "),
        dir.display()
    )
}

/// The earlier run's record, continued: its finished cells kept, the runtimes, models and
/// conditions as found now (checked against the old ones by `check_conditions`).
pub fn resumed(prev: RunResults, fresh: RunResults) -> RunResults {
    let mut r = prev;
    r.format_version = results::FORMAT_VERSION;
    r.resumed_at.push(results::now_rfc3339());
    r.runtimes = fresh.runtimes;
    r.models = fresh.models;
    r.conditions = fresh.conditions;
    r.complete = false;
    r.finished_at = None;
    r
}

#[cfg(test)]
mod tests {
    use crate::models::{ExternalFile, ModelIo};

    #[test]
    fn a_models_onnx_size_counts_its_external_data_files_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let onnx = dir.path().join("model.onnx");
        std::fs::write(&onnx, vec![0u8; 1000]).unwrap();
        std::fs::write(dir.path().join("model.onnx.data"), vec![0u8; 50_000]).unwrap();
        std::fs::write(dir.path().join("more.bin"), vec![0u8; 7]).unwrap();
        let mut io = ModelIo {
            inputs: Vec::new(),
            outputs: Vec::new(),
            opsets: Vec::new(),
            position_table_rows: None,
            word_embedding_rows: None,
            external_files: Vec::new(),
            weights_precision: crate::scenario::Precision::Fp32,
            quantized: None,
            flops_per_token: None,
        };
        assert_eq!(super::onnx_bytes(&onnx, Some(&io)), 1000, "weights inside the file");
        let file = |location: &str| ExternalFile { location: location.into(), min_bytes: 1, initializer: "w".into() };
        io.external_files = vec![file("model.onnx.data"), file("more.bin"), file("model.onnx.data")];
        assert_eq!(super::onnx_bytes(&onnx, Some(&io)), 1000 + 50_000 + 7);
        assert_eq!(super::onnx_bytes(&onnx, None), 1000);
        assert_eq!(super::onnx_bytes(&dir.path().join("absent.onnx"), Some(&io)), 0);
    }
}
