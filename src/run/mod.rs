//! Running a resolved plan: each (model, runtime) group in a worker (`executor`: a child process
//! per group, optionally all loaded at once, or this process), its messages turned into events
//! that the results store logs at once and applies; after each group the analysis pass judges
//! what that group's cells let be judged, the record is written (spaced: `results::Spacing`), and
//! the saved outputs nobody
//! needs are removed. Prints nothing: what
//! happens is told to an `Observer`.

mod budget;
pub mod conditions;
mod executor;
mod generation;
pub mod job;
pub mod outdir;
mod process;
pub mod record;
pub mod stop;
mod tree;
mod worker;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};

pub use executor::Isolation;
pub use job::{GroupJob, MSG_PREFIX};
pub use process::worker_main;
pub use stop::Stop;
pub use worker::run_group;

use crate::resolve::ResolvedPlan;
use job::JobModel;
use crate::results::{self, Availability, CellRecord, OutputsDir, ResultsStore, RunEvent, RunResults, SavedOutputs, Status, WallTime};
use crate::runtimes::{self, RuntimeOptions};

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub runtime: RuntimeOptions,
    pub isolation: Isolation,
    /// Fetch ONNX Runtime from PyPI when an ONNX Runtime runtime is asked for and no library is found.
    pub auto_setup: bool,
    /// Start every group's worker at once so that loads overlap (process isolation only); timed
    /// runs still go one group at a time, and only after every load has finished.
    pub parallel_loads: bool,
    /// Saved outputs to keep after the run (a shard's cells that other shards' are compared with).
    pub keep_outputs: Option<KeepOutputs>,
}

/// Cells whose saved outputs outlive the run, and the folder they are kept in.
#[derive(Debug, Clone)]
pub struct KeepOutputs {
    pub dir: PathBuf,
    /// Cell indices.
    pub cells: Vec<usize>,
}

impl KeepOutputs {
    /// Keeps the saved outputs of `group`'s cells that are to be kept (linked, else copied);
    /// returns each kept file's digest, by cell, for the record that ties it to its cell.
    fn keep(&self, plan: &ResolvedPlan, group: usize, outputs_dir: &Path) -> Result<Vec<(usize, String)>> {
        let g = &plan.plan.groups[group];
        let mut digests = Vec::new();
        for c in plan.plan.group_cells(g).iter().filter(|c| self.cells.contains(&c.index)) {
            let from = OutputsDir::at(outputs_dir);
            if !from.cell_file(c.index).is_file() {
                continue;
            }
            let to = OutputsDir::at(&self.dir).take(from, c.index, c.index)?;
            let (_, digest) = crate::digest::file(&to).with_context(|| format!("cannot read {}", to.display()))?;
            digests.push((c.index, format!("{digest:016x}")));
        }
        Ok(digests)
    }
}

/// Where a run stands, for progress displays.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    /// Seconds left, estimated from the cells measured so far.
    pub eta_s: Option<f64>,
}

/// What a run tells as it goes; every method does nothing unless implemented.
pub trait Observer {
    /// The run starts: `total` cells, `done` of them finished before (a resumed run).
    fn start(&mut self, _total: usize, _done: usize) {}
    /// Every cell has run (or the run was stopped); the report is next.
    fn finished(&mut self) {}
    /// A note for the user (a sibling model not run, parallel loading, …).
    fn note(&mut self, _text: &str) {}
    /// Whether each runtime can run here.
    fn runtimes(&mut self, _availability: &[Availability]) {}
    /// A cell finished.
    fn cell(&mut self, _record: &CellRecord, _progress: Progress) {}
    /// A group failed as a whole (its session did not load, its process died).
    fn group_failed(&mut self, _model: &str, _runtime: &str, _why: &str) {}
    /// A group ended; the record holds everything so far.
    fn group_done(&mut self, _results: &RunResults) {}
}

/// An observer that tells nothing.
pub struct Silent;
impl Observer for Silent {}

/// Checks each runtime of the plan, fetching ONNX Runtime first when allowed and needed.
pub fn check_runtimes(plan: &ResolvedPlan, opts: &RunOptions) -> Vec<Availability> {
    let wants_ort = plan.runtimes.iter().any(|r| r.engine() == runtimes::Engine::OnnxRuntime);
    if opts.auto_setup && opts.runtime.ort_lib.is_none() && wants_ort && runtimes::find_ort_library(None).is_err() {
        if let Err(e) = runtimes::setup_ort(false) {
            tracing::warn!("could not fetch ONNX Runtime: {e:#}");
        }
    }
    // Plugin execution providers are fetched the same way, on platforms their wheels exist for.
    if opts.auto_setup {
        for spec in &plan.runtimes {
            let plugin = runtimes::ort::plugins::PLUGINS.iter().find(|p| spec.request.kind == crate::scenario::RuntimeKind::Registered(p.runtime.to_string()));
            if let Some(p) = plugin.filter(|p| (p.supported_here)() && !opts.runtime.ep_libs.contains_key(p.name) && p.find(None).is_err()) {
                if let Err(e) = runtimes::ort::plugins::setup(p) {
                    tracing::warn!("could not fetch {}: {e:#}", p.package);
                }
            }
        }
    }
    plan.runtimes.iter().map(|r| r.check(&opts.runtime)).collect()
}

/// How a run ended.
pub struct RunEnd {
    /// A stop was asked for before every cell was measured.
    pub stopped: bool,
    pub wall: WallTime,
}

/// Runs every pending cell of `plan` into `store`; saved outputs go to `outputs_dir`. `clock`
/// started with the command, for the wall-time record; `stop` ends it early.
pub fn run(plan: &ResolvedPlan, opts: &RunOptions, store: &mut ResultsStore, outputs_dir: &Path, observer: &mut dyn Observer, stop: &Stop, clock: Instant) -> Result<RunEnd> {
    std::fs::create_dir_all(outputs_dir).with_context(|| format!("cannot create {}", outputs_dir.display()))?;
    for note in crate::analysis::siblings::missing_notes(store.results()) {
        observer.note(&note);
    }
    observer.runtimes(&store.results().runtimes);
    refuse_over_budget(plan, store, observer)?;
    let total = plan.plan.cells.len();
    let mut done = store.results().cells.iter().filter(|c| c.status != Status::Pending).count();
    let mut wall = WallTime { parallel_loads: opts.parallel_loads, ..Default::default() };

    write_expected(plan, outputs_dir);
    // What each group still has to do: its job, or the reason it cannot run.
    let todo: Vec<Todo> = plan.plan.groups.iter().map(|g| Todo::of(plan, g.index, store.results(), opts, outputs_dir)).collect();
    let mut exec = executor::Executor::new(&opts.isolation, stop);
    wall.setup_ms = ms(clock.elapsed());
    if opts.parallel_loads {
        let t = Instant::now();
        let jobs: Vec<&GroupJob> = todo.iter().filter_map(|t| t.job.as_ref().ok()).collect();
        observer.note(&format!("loading {} sessions at once (--parallel-loads); cells run one group at a time once all have loaded", jobs.len()));
        exec.preload(&jobs)?;
        wall.loads_ms = Some(ms(t.elapsed()));
    }

    let started = Instant::now();
    let (mut measured_cells, mut measured_secs) = (0usize, 0f64);
    // The last group that runs: nothing runs after it, so its worker's exit is not waited for.
    let last = todo.iter().rposition(|t| t.pending > 0 && t.job.is_ok());
    let mut stopped = false;
    // The cells' keys do not change as they run: one index serves every group's analysis.
    let ix = results::CellIndex::of(store.results());
    for (k, (group, t)) in plan.plan.groups.iter().zip(todo).enumerate() {
        if stop.requested() {
            stopped = true;
            break;
        }
        if t.pending == 0 {
            continue;
        }
        let model = &plan.models[group.model].name;
        match t.job {
            Err((status, why)) => {
                done += t.pending;
                store.apply(RunEvent::GroupEnded { group: group.index, status, why })?;
            }
            Ok(first) => {
                let warmup_share = plan.plan.settings.warmup as f64 / plan.plan.settings.iterations as f64;
                // A cell that outlived the time limit is failed; the group's other cells go on in a new worker.
                let mut job = first;
                loop {
                    let end = exec.run(&job, last == Some(k), &mut |event| {
                        match &event {
                            RunEvent::Cell(record) => {
                                done += 1;
                                if record.status == Status::Ok {
                                    measured_secs += record.samples_ms.iter().sum::<f64>() / 1e3 * (1.0 + warmup_share);
                                    measured_cells += 1;
                                }
                                let elapsed = started.elapsed().as_secs_f64();
                                let eta_s = (done > 0 && done < total).then(|| {
                                    let per = if measured_cells > 0 { elapsed.max(measured_secs) / done as f64 } else { elapsed / done as f64 };
                                    per * (total - done) as f64
                                });
                                observer.cell(record, Progress { done, total, eta_s });
                            }
                            RunEvent::LoadFailed { error, .. } => observer.group_failed(model, group.runtime.as_str(), error),
                            RunEvent::GroupEnded { why, .. } => observer.group_failed(model, group.runtime.as_str(), why),
                            _ => {}
                        }
                        let t = Instant::now();
                        let written = store.apply(event);
                        tracing::debug!("results written in {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
                        written
                    })?;
                    // A dead worker's unrun cells are counted as they are failed.
                    done = store.results().cells.iter().filter(|c| c.status != Status::Pending).count();
                    stopped |= end == executor::GroupEnd::Stopped;
                    if end != executor::GroupEnd::Retry || stop.requested() {
                        break;
                    }
                    match Todo::of(plan, group.index, store.results(), opts, outputs_dir).job {
                        Ok(next) if !next.cells.is_empty() => job = next,
                        _ => break,
                    }
                }
            }
        }
        let ended = Instant::now();
        store.group_end(|r| crate::analysis::analyze_group(r, &ix, Some(outputs_dir), group.index))?;
        if let Some(keep) = &opts.keep_outputs {
            let digests = keep.keep(plan, group.index, outputs_dir)?;
            if !digests.is_empty() {
                store.update(|r| r.shard.iter_mut().for_each(|s| s.kept_digests.extend(digests.iter().cloned())))?;
            }
        }
        crate::analysis::siblings::release_outputs(store.results(), &ix, outputs_dir, Some(model));
        observer.group_done(store.results());
        tracing::debug!("group {} analysed and its results written in {:.1} ms", group.index, ended.elapsed().as_secs_f64() * 1e3);
        if stopped {
            break;
        }
    }
    // Workers loaded ahead whose turn never came (a stopped run) are ended here.
    drop(exec);
    wall.groups_ms = ms(started.elapsed());
    if !stopped {
        OutputsDir::at(outputs_dir).remove_all();
        store.update(|r| {
            r.finished_at = Some(results::now_rfc3339());
            r.complete = true;
        })?;
    } else {
        // Group ends whose record was not written yet (their writes are spaced).
        store.flush()?;
    }
    Ok(RunEnd { stopped, wall })
}

/// The expected outputs of every test data set a model runs, kept with the run's saved outputs so
/// that the analysis compares each runtime's outputs with them (as it does with the reference
/// runtime's). A data set whose expected outputs cannot be read is said so, and its cells are
/// left not compared.
fn write_expected(plan: &ResolvedPlan, outputs_dir: &Path) {
    for (m, model) in plan.models.iter().enumerate().filter(|(m, _)| plan.runs_test_data(*m)) {
        let Ok(io) = model.io() else { continue };
        for (k, set) in model.test_data().iter().enumerate() {
            let dir = OutputsDir::at(outputs_dir);
            if dir.has_expected(m, k) {
                continue;
            }
            let written = crate::models::test_data::read_expected(set, &io.outputs)
                .and_then(|outputs| dir.write_expected(m, k, &SavedOutputs { outputs, batch: 1, seq_len: 1, mask: vec![1], inputs: Vec::new() }));
            if let Err(e) = written {
                tracing::warn!("model `{}`: the expected outputs of {} cannot be used, so its cells there are not compared with them: {e:#}", model.name, set.display());
            }
        }
    }
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A group's share of a run: how many of its cells are still to run, and the job that runs them,
/// or the status and reason they get when it cannot run.
/// Share of the machine's memory a cell may need when the scenario sets no `memory_budget_gib`:
/// the model, the runtime's own buffers and the rest of the machine need the other half.
pub const DEFAULT_BUDGET_SHARE: f64 = 0.5;

/// Fails, before anything runs, the pending cells that need more memory than the budget allows
/// (the scenario's `memory_budget_gib`, else half the machine's memory).
fn refuse_over_budget(plan: &ResolvedPlan, store: &mut ResultsStore, observer: &mut dyn Observer) -> Result<()> {
    let budget = plan.plan.settings.memory_budget_gib.unwrap_or_else(|| DEFAULT_BUDGET_SHARE * crate::machine::detect().memory_gib);
    if budget <= 0.0 {
        return Ok(());
    }
    let s = &plan.plan.settings;
    let mut refused: Vec<String> = Vec::new();
    for group in &plan.plan.groups {
        let Some(model) = JobModel::of(&plan.models[group.model]) else { continue };
        for cell in plan.plan.group_cells(group) {
            if store.results().cells.get(cell.index).is_none_or(|c| c.status != Status::Pending) {
                continue;
            }
            if let Some(why) = budget::over_budget(&model, cell, &plan.dims_of(group.model), budget) {
                refused.push(format!("{} on {}, {} characters × batch {}: {why}", cell.model, cell.runtime, cell.chars, cell.batch));
                store.apply(RunEvent::Cell(Box::new(CellRecord::empty(cell, s.warmup, s.iterations, Status::Failed, Some(why)))))?;
            }
        }
    }
    if let Some(first) = refused.first() {
        observer.note(&format!("{} cell(s) failed without running, over the memory budget; the first: {first}", refused.len()));
    }
    Ok(())
}

struct Todo {
    pending: usize,
    job: std::result::Result<GroupJob, (Status, String)>,
}

impl Todo {
    fn of(plan: &ResolvedPlan, g: usize, r: &RunResults, opts: &RunOptions, outputs_dir: &Path) -> Todo {
        let group = &plan.plan.groups[g];
        // The record was checked against the plan (`record::check_resumable`); a cell or runtime
        // it lacks all the same is not run, never indexed.
        let cells: Vec<crate::scenario::Cell> = plan.plan.group_cells(group).iter().filter(|c| r.cells.get(c.index).is_some_and(|x| x.status == Status::Pending)).cloned().collect();
        let model = &plan.models[group.model];
        let pending = cells.len();
        // Generation cells feed decoders themselves (prompt ids, mask, positions, cache), not through the input plan.
        let on_grid = cells.iter().any(|c| c.data_set.is_none() && c.new_tokens.is_none());
        let Some(avail) = r.runtimes.iter().find(|a| a.runtime == group.runtime) else {
            return Todo { pending, job: Err((Status::Failed, format!("the results record nothing of runtime {}", group.runtime))) };
        };
        let job = match (model.io(), avail.usable) {
            (_, false) => Err((Status::Skipped, format!("{} is not usable here: {}", group.runtime, avail.detail))),
            (Err(why), _) => Err((Status::Failed, why.to_string())),
            (Ok(_), true) if on_grid && model.inputs().is_err() => Err((Status::Failed, model.inputs().err().unwrap_or_default().to_string())),
            (Ok(_), true) => GroupJob::new(plan, g, cells, &opts.runtime, outputs_dir).ok_or((Status::Failed, format!("model `{}` is not ready", model.name))),
        };
        Todo { pending, job }
    }
}

/// Default output folder: `reports/<scenario name>-<UTC time>`.
pub fn default_out_dir(name: &str) -> PathBuf {
    let stamp: String = results::now_rfc3339().chars().filter(|c| c.is_ascii_digit()).collect();
    let safe: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
    PathBuf::from("reports").join(format!("{safe}-{}-{}", &stamp[..8], &stamp[8..]))
}
