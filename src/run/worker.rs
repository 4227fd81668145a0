//! Running one group — one model loaded in one runtime — through its cells. This is what a child
//! process of `xbench scenario` does (or the process itself, in-process); it reports the load and
//! each finished cell as a message.

use std::time::Instant;

use super::job::GroupJob;
use crate::inputs::{self, Feed};
use crate::measure::{measure, MeasureSpec};
use crate::results::{CellRecord, RunEvent, SavedOutputs, Status};
use crate::runtimes::{self, DeviceClass, Session};
use crate::scenario::Cell;
use crate::stats::summarize;

/// Text and tokenizer for a model that takes token ids, read once per group.
pub(super) type TextInputs = Option<(inputs::Prose, tokenizers::Tokenizer)>;

fn text_inputs(job: &GroupJob) -> anyhow::Result<TextInputs> {
    let model = &job.model;
    // Only cells on the scenario's grid take text; test data cells bring their own inputs.
    let on_grid = job.cells.iter().any(|c| c.data_set.is_none());
    let plan = model.inputs.as_ref().filter(|p| on_grid && p.takes_text());
    // Generation prompts are cut from the text whenever the model has a tokenizer (else seeded).
    let prompts = job.measuring.generate.is_some() && model.tokenizer.is_some();
    if plan.is_none() && !prompts {
        return Ok(None);
    }
    let text = inputs::Prose::new(&inputs::load_text(&job.measuring.text)?);
    let tokenizer = match &model.tokenizer {
        Some(p) => inputs::load_tokenizer(p)?,
        None => anyhow::bail!(
            "model `{}` takes token ids (input `{}`) but has no tokenizer.json\n  fix: copy the model's tokenizer.json into its folder",
            model.name,
            plan.and_then(|p| p.fills.iter().find(|f| f.fill == inputs::Fill::Token(crate::scenario::Role::TokenIds))).map_or("?", |f| f.input.name.as_str())
        ),
    };
    inputs::check_vocab(&tokenizer, &model.name, model.io.word_embedding_rows)?;
    Ok(Some((text, tokenizer)))
}

/// Runs every cell of the job's group, calling `emit` as things finish. Errors inside a cell
/// become a failed cell; the next cell still runs. `stop` is asked before each cell; when it
/// says so, the remaining cells are left unrun. Returns the loaded session, if any, for the caller
/// to drop (a worker process exits without unloading).
pub fn run_group(job: &GroupJob, emit: &mut dyn FnMut(RunEvent), stop: &dyn Fn() -> bool) -> Option<Box<dyn Session>> {
    // Text models get prose and their tokenizer (read while the session loads: a large vocabulary
    // takes a good part of a second); other models get generated tensors.
    let started = Instant::now();
    let group = job.group;
    let spec = runtimes::lookup(&job.runtime).map_err(|why| anyhow::anyhow!("`{}` {why}", job.runtime.id));
    let (prepared, loaded, load_ms) = std::thread::scope(|scope| {
        let reading = scope.spawn(|| text_inputs(job));
        let loaded = spec.as_ref().map_err(|e| anyhow::anyhow!("{e:#}")).and_then(|s| s.load(&job.model.onnx, &job.options));
        let load_ms = started.elapsed().as_secs_f64() * 1e3;
        let prepared = reading.join().unwrap_or_else(|_| Err(anyhow::anyhow!("reading the text and tokenizer panicked")));
        (prepared, loaded, load_ms)
    });
    let mut prepared = prepared;
    let mut session = match loaded {
        Ok(s) => s,
        Err(e) => {
            emit(RunEvent::LoadFailed { group, error: format!("{e:#}") });
            emit(RunEvent::GroupDone { group, peak_rss_mib: crate::machine::peak_rss_mib() });
            return None;
        }
    };
    // GPU facts for CUDA groups (NVML; absent without the driver).
    let cuda = spec.as_ref().is_ok_and(|s| s.device() == DeviceClass::CudaGpu);
    let gpu = cuda.then(|| crate::gpu::Gpu::open(job.options.device_id).ok()).flatten();
    // Its ready time is the executor's to set (from the worker's start); `load_ms` stands until then.
    let mut info = session.info();
    if job.measuring.generate.is_some() {
        // A decoder states its own copies in its cells' timer; how plain runs bind their inputs
        // and outputs does not apply to it.
        info.io = None;
    }
    emit(RunEvent::Loaded { group, load_ms, ready_ms: load_ms, session: info });
    if job.gated {
        // Loaded side by side with other groups, the group runs its first cell once, untimed,
        // before it counts as ready: one-time start-up work overlaps the other loads, never a
        // timed run (xbench waits for this message before any group's cells start).
        let ms = first_run(job, session.as_mut(), prepared.as_mut().ok().and_then(|t| t.as_mut()));
        emit(RunEvent::FirstRun { group, ms });
        // Other groups may still be loading or running: wait for this group's turn. An empty read
        // means xbench is gone or stopped the run.
        let mut line = String::new();
        if std::io::stdin().read_line(&mut line).map_or(true, |n| n == 0) {
            return Some(session);
        }
    }
    if job.measuring.generate.is_some() {
        super::generation::run_cells(job, session.as_mut(), &prepared, gpu.as_ref(), emit, stop);
        session.close();
        emit(RunEvent::GroupDone { group, peak_rss_mib: crate::machine::peak_rss_mib() });
        return Some(session);
    }
    for cell in &job.cells {
        if stop() {
            break;
        }
        let mut record = match &mut prepared {
            Err(e) => job.empty_record(cell, Status::Failed, Some(format!("{e:#}"))),
            Ok(text) => run_cell(job, cell, session.as_mut(), text.as_mut(), gpu.as_ref()).unwrap_or_else(|e| job.empty_record(cell, Status::Failed, Some(format!("{e:#}")))),
        };
        if let Some(g) = &gpu {
            let t = Instant::now();
            record.gpu_memory_mib = g.process_memory_mib(std::process::id());
            tracing::debug!("cell {}: GPU memory read in {:.1} ms", cell.index, t.elapsed().as_secs_f64() * 1e3);
        }
        emit(RunEvent::Cell(Box::new(record)));
    }
    session.close();
    emit(RunEvent::GroupDone { group, peak_rss_mib: crate::machine::peak_rss_mib() });
    Some(session)
}

/// One untimed run of the job's first cell; `None` when there is none or it fails (the cell then
/// fails on its own, with the reason).
fn first_run(job: &GroupJob, session: &mut dyn Session, text: Option<&mut (inputs::Prose, tokenizers::Tokenizer)>) -> Option<f64> {
    // A generation group's first decoder step is its first cell's (untimed) preparation.
    let cell = job.cells.first().filter(|c| c.new_tokens.is_none())?;
    let feed = feed(job, cell, text).ok()?;
    let t = Instant::now();
    session.prepare(&feed).and_then(|()| session.run(&feed)).ok()?;
    Some(t.elapsed().as_secs_f64() * 1e3)
}

/// The inputs of `cell`: its test data set, its passages tokenized, or generated tensors.
fn feed(job: &GroupJob, cell: &Cell, text: Option<&mut (inputs::Prose, tokenizers::Tokenizer)>) -> anyhow::Result<Feed> {
    let model = &job.model;
    let plan = || model.inputs.as_ref().ok_or_else(|| anyhow::anyhow!("model `{}`: its inputs cannot be fed", model.name));
    Ok(match (cell.data_set, text) {
        (Some(n), _) => {
            let set = model.test_data.get(n).ok_or_else(|| anyhow::anyhow!("model `{}` has no test data set {n}", model.name))?;
            Feed::from_test_data(&model.name, set, &model.io.inputs)?
        }
        (None, Some((text, tokenizer))) => {
            let texts = text.passages(cell.chars, cell.batch)?;
            Feed::from_texts(tokenizer, &texts, plan()?, model.position_offset, model.max_positions, &job.measuring.dims)?
        }
        // Without text, an input length is used as the `sequence` dim itself.
        (None, None) => Feed::generated(plan()?, cell.batch, cell.chars, &job.measuring.dims)?,
    })
}

fn run_cell(job: &GroupJob, cell: &Cell, session: &mut dyn Session, text: Option<&mut (inputs::Prose, tokenizers::Tokenizer)>, gpu: Option<&crate::gpu::Gpu>) -> anyhow::Result<CellRecord> {
    let cell_clock = Instant::now();
    tracing::debug!("cell {}: starts", cell.index);
    let feed = feed(job, cell, text)?;
    let fed_ms = cell_clock.elapsed().as_secs_f64() * 1e3;
    let energy = gpu.map(|g| move || g.energy_mj());
    let m = &job.measuring;
    let samples = measure(
        session,
        &feed,
        MeasureSpec { warmup: m.warmup, iterations: m.iterations, min_time_s: m.min_time_s },
        energy.as_ref().map(|f| f as &dyn Fn() -> Option<u64>),
    )?;
    let measured_ms = cell_clock.elapsed().as_secs_f64() * 1e3;
    // Outputs are saved only when another runtime, or a sibling model, will be compared with them.
    if let Some(dir) = &job.outputs_dir {
        let saved = SavedOutputs {
            outputs: samples.outputs,
            batch: feed.batch,
            seq_len: feed.seq_len,
            mask: feed.mask.clone(),
            inputs: feed.tensors.iter().map(|(name, t)| (name.clone(), t.digest())).collect(),
        };
        crate::results::OutputsDir::at(dir).write(cell.index, &saved)?;
    }
    let mut record = job.empty_record(cell, Status::Ok, None);
    let (kept, stalled) = crate::stats::split_stalled(&samples.latency_ms);
    let summary = summarize(&kept, feed.batch, feed.real_tokens());
    // results.json holds numbers only: statistics that are not finite fail the cell, never the file.
    if !summary.is_finite() {
        anyhow::bail!("the statistics of the samples ({} to {} ms) are not finite numbers\n  fix: check the runtime's timer", summary.min_ms, summary.max_ms);
    }
    record.summary = Some(summary);
    record.tokens = feed.text;
    record.fed = feed.fed;
    record.prepare_ms = Some(samples.prepare_ms);
    record.warmup_ms = Some(samples.warmup_ms);
    record.timer_resolution_ms = Some(samples.timer_resolution_ms);
    record.iterations = kept.len();
    record.energy_mj_per_inference = samples.energy_mj.map(|e| e as f64 / record.iterations as f64);
    record.timer = session.timer_label();
    record.samples_ms = kept;
    record.stalled_ms = stalled;
    record.wall_ms = Some(cell_clock.elapsed().as_secs_f64() * 1e3);
    tracing::debug!("cell {}: inputs made in {fed_ms:.1} ms, measured by {measured_ms:.1} ms, outputs kept by {:.1} ms", cell.index, record.wall_ms.unwrap_or(0.0));
    Ok(record)
}
