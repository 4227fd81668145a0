//! Running one group — one model loaded in one runtime — through all its cells. This is what a
//! child process of `xbench scenario` does; it reports each finished cell as a message.

use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::inputs::{self, Feed};
use crate::measure::{measure, MeasureSpec};
use crate::models::ModelIo;
use crate::results::{save_outputs, CellRecord, Status};
use crate::runtimes::{self, RuntimeOptions, SessionInfo};
use crate::scenario::{Cell, Plan};
use crate::stats::summarize;

/// Everything a worker needs, serialized to a file for the child process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupJob {
    pub plan: Plan,
    pub group: usize,
    /// Indices of the group's cells to run (those a resumed run has not finished).
    pub cells: Vec<usize>,
    /// The declared inputs/outputs of the group's model (read once by the parent).
    pub io: ModelIo,
    pub runtime: RuntimeOptions,
    /// Where each cell's outputs are saved for the agreement check.
    pub outputs_dir: PathBuf,
    /// Once loaded, wait for a line on standard input before the first cell (parallel loads).
    #[serde(default)]
    pub gated: bool,
}

/// Messages from a worker, one JSON line each on its standard output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum WorkerMsg {
    Loaded { load_ms: f64, session: SessionInfo },
    LoadFailed { error: String },
    Cell(Box<CellRecord>),
    Done { peak_rss_mib: Option<f64> },
}

/// Prefix of message lines, so that anything a native library prints is told apart.
pub const MSG_PREFIX: &str = "XBENCH-MSG ";

/// Path of a cell's saved outputs.
pub fn outputs_path(job_outputs: &std::path::Path, cell: usize) -> PathBuf {
    job_outputs.join(format!("cell-{cell}.bin"))
}

/// A record for `cell` with nothing measured yet.
pub fn empty_record(plan: &Plan, cell: &Cell, status: Status, error: Option<String>) -> CellRecord {
    CellRecord {
        index: cell.index,
        model: cell.model.clone(),
        runtime: cell.runtime,
        chars: cell.chars,
        batch: cell.batch,
        status,
        error,
        tokens: None,
        warmup: plan.warmup,
        iterations: plan.iterations,
        prepare_ms: None,
        timer_resolution_ms: None,
        samples_ms: Vec::new(),
        summary: None,
        agreement: None,
        sibling_agreement: None,
        flags: Vec::new(),
        timer: "end-to-end".into(),
        gpu_memory_mib: None,
        energy_mj_per_inference: None,
        warmup_ms: None,
        wall_ms: None,
    }
}

/// Runs every cell of the job's group, calling `emit` as things finish. Errors inside a cell
/// become a failed cell; the next cell still runs.
/// `stop` is asked before each cell; when it says so, the remaining cells are left unrun.
/// Returns the loaded session, if any, for the caller to drop.
pub fn run_group(job: &GroupJob, emit: &mut dyn FnMut(WorkerMsg), stop: &dyn Fn() -> bool) -> Option<Box<dyn runtimes::Session>> {
    let plan = &job.plan;
    let group = &plan.groups[job.group];
    let model = &plan.models[group.model];
    let cells: Vec<&Cell> = plan.group_cells(group).iter().filter(|c| job.cells.contains(&c.index)).collect();

    // Text models get prose and their tokenizer; other models get generated tensors.
    let text_inputs = inputs::takes_tokens(&job.io.inputs);
    let mut prepared = (|| -> anyhow::Result<Option<(String, tokenizers::Tokenizer)>> {
        if !text_inputs {
            return Ok(None);
        }
        let text = inputs::load_text(&plan.text)?;
        let tokenizer = match &model.tokenizer {
            Some(p) => inputs::feed::load_tokenizer(p)?,
            None => anyhow::bail!(
                "model `{}` takes token ids but has no tokenizer.json beside its ONNX file\n  fix: copy the model's tokenizer.json into its folder",
                model.name
            ),
        };
        inputs::feed::check_vocab(&tokenizer, &model.name, job.io.word_embedding_rows)?;
        Ok(Some((text, tokenizer)))
    })();
    let started = Instant::now();
    let loaded = runtimes::load(group.runtime, model, &job.runtime);
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    let mut session = match loaded {
        Ok(s) => s,
        Err(e) => {
            emit(WorkerMsg::LoadFailed { error: format!("{e:#}") });
            emit(WorkerMsg::Done { peak_rss_mib: crate::machine::peak_rss_mib() });
            return None;
        }
    };
    // GPU facts for CUDA groups (NVML; absent without the driver).
    let gpu = (group.runtime == crate::runtimes::RuntimeId::OrtCuda).then(|| crate::gpu::Gpu::open(job.runtime.device_id).ok()).flatten();
    emit(WorkerMsg::Loaded { load_ms, session: session.info() });
    if job.gated {
        // Other groups may still be loading or running: wait for this group's turn. An empty read
        // means xbench is gone or stopped the run.
        let mut line = String::new();
        if std::io::stdin().read_line(&mut line).map_or(true, |n| n == 0) {
            return Some(session);
        }
    }

    let max_positions = model.max_positions(Some(&job.io));
    for cell in cells {
        if stop() {
            break;
        }
        let record = match &mut prepared {
            Err(e) => empty_record(plan, cell, Status::Failed, Some(format!("{e:#}"))),
            Ok(text) => {
                run_cell(job, cell, session.as_mut(), text.as_mut(), max_positions, gpu.as_ref()).unwrap_or_else(|e| {
                    empty_record(plan, cell, Status::Failed, Some(format!("{e:#}")))
                })
            }
        };
        let mut record = record;
        if let Some(g) = &gpu {
            record.gpu_memory_mib = g.process_memory_mib(std::process::id());
        }
        emit(WorkerMsg::Cell(Box::new(record)));
    }
    emit(WorkerMsg::Done { peak_rss_mib: crate::machine::peak_rss_mib() });
    // Unloading is left to the caller: a worker process exits without it.
    Some(session)
}

fn run_cell(
    job: &GroupJob,
    cell: &Cell,
    session: &mut dyn runtimes::Session,
    text: Option<&mut (String, tokenizers::Tokenizer)>,
    max_positions: Option<usize>,
    gpu: Option<&crate::gpu::Gpu>,
) -> anyhow::Result<CellRecord> {
    let cell_clock = Instant::now();
    let plan = &job.plan;
    let model = &plan.models[plan.groups[job.group].model];
    let feed = match text {
        Some((text, tokenizer)) => {
            let texts = inputs::passages(text, cell.chars, cell.batch)?;
            Feed::from_texts(tokenizer, &texts, model, &job.io.inputs, max_positions)?
        }
        // Without text, an input length is used as the `sequence` dim itself.
        None => Feed::generated(&model.name, &job.io.inputs, cell.batch, cell.chars, &plan.dims)?,
    };
    let energy = gpu.map(|g| move || g.energy_mj());
    let samples = measure(
        session,
        &feed,
        MeasureSpec { warmup: plan.warmup, iterations: plan.iterations, min_time_s: plan.min_time_s },
        energy.as_ref().map(|f| f as &dyn Fn() -> Option<u64>),
    )?;
    let summary = summarize(&samples.latency_ms, feed.batch, feed.real_tokens());
    let mut record = empty_record(plan, cell, Status::Ok, None);
    if feed.text.truncated_rows > 0 {
        record.flags.push(format!(
            "{} of {} rows truncated at the model's {} positions",
            feed.text.truncated_rows,
            feed.batch,
            max_positions.unwrap_or(0)
        ));
    }
    if summary.min_ms < 100.0 * samples.timer_resolution_ms {
        record.flags.push(format!(
            "fastest run ({:.4} ms) is under 100× the timer's resolution ({:.6} ms)",
            summary.min_ms, samples.timer_resolution_ms
        ));
    }
    let ci = summary.mean_ci95_ms;
    if ci[1] - ci[0] > plan.ci_warn_share * summary.mean_ms {
        record.flags.push(format!(
            "95% interval of the mean [{:.4}, {:.4}] ms is wider than {:.0}% of the mean: noisy, measure longer (`min_time_s`) or on a quieter machine",
            ci[0],
            ci[1],
            plan.ci_warn_share * 100.0
        ));
    }
    // Outputs are saved only when another runtime, or a sibling model, will be compared with them.
    if plan.keeps_outputs(plan.groups[job.group].model) {
        save_outputs(&outputs_path(&job.outputs_dir, cell.index), &samples.outputs, &feed)?;
    }
    record.tokens = Some(feed.text.clone());
    record.prepare_ms = Some(samples.prepare_ms);
    record.warmup_ms = Some(samples.warmup_ms);
    record.timer_resolution_ms = Some(samples.timer_resolution_ms);
    record.iterations = samples.latency_ms.len();
    record.energy_mj_per_inference = samples.energy_mj.map(|e| e as f64 / record.iterations as f64);
    record.timer = session.timer_label();
    record.samples_ms = samples.latency_ms;
    record.summary = Some(summary);
    record.wall_ms = Some(cell_clock.elapsed().as_secs_f64() * 1e3);
    Ok(record)
}
