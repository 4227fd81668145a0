//! A worker's generation group: one generator made from the loaded session (xbench's loop on a
//! decoder whose cache the runtime keeps, or an external program's own loop), then each cell's
//! prompt generated from as the scenario says.

use std::time::Instant;

use anyhow::{anyhow, bail, Result};

use super::job::GroupJob;
use super::worker::TextInputs;
use crate::generate::{self, prompt, Prompt};
use crate::inputs::Prose;
use crate::results::{CellRecord, OutputsDir, RunEvent, SavedOutputs, Status};
use crate::runtimes::Session;
use crate::scenario::{Cell, PromptUnit, TextSource};
use crate::stats::summarize;
use tokenizers::Tokenizer;

/// The name of the text prompts are cut from, as their record says.
fn text_name(job: &GroupJob) -> String {
    match &job.measuring.text {
        TextSource::Builtin(n) => n.clone(),
        TextSource::File(p) => p.display().to_string(),
    }
}

/// The id a tokenizer pads with: its padding's, else the first of the usual padding tokens it has, else 0.
fn pad_id(tokenizer: &tokenizers::Tokenizer) -> i64 {
    tokenizer.get_padding().map(|p| p.pad_id).or_else(|| ["<pad>", "[PAD]", "<|endoftext|>", "</s>"].iter().find_map(|t| tokenizer.token_to_id(t))).map_or(0, |i| i as i64)
}

/// The prompt of `cell`.
fn prompt_of(job: &GroupJob, cell: &Cell, text: Option<&(Prose, Tokenizer)>) -> Result<Prompt> {
    let spec = job.measuring.generate.as_ref().ok_or_else(|| anyhow!("a generation cell in a scenario without `generate:`"))?;
    let layout = job.model.decoder.as_ref().ok_or_else(|| anyhow!("model `{}` has no key/value cache layout", job.model.name))?;
    match (text, spec.unit) {
        (Some((prose, tokenizer)), unit) => prompt::from_text(prose, tokenizer, unit, cell.chars, cell.batch, &text_name(job), pad_id(tokenizer)),
        (None, PromptUnit::Chars) => bail!(
            "model `{}` has no tokenizer.json, so a prompt of {} characters cannot be made into tokens\n  fix: give prompt lengths in tokens (`generate.prompt_tokens`), or copy the model's tokenizer.json into its folder",
            job.model.name,
            cell.chars
        ),
        (None, PromptUnit::Tokens) => {
            let vocab = layout.vocab.ok_or_else(|| anyhow!("model `{}` has no tokenizer.json and its logits do not say the vocabulary size, so xbench cannot pick token ids\n  fix: copy the model's tokenizer.json into its folder", job.model.name))?;
            Ok(prompt::seeded(cell.chars, cell.batch, vocab, spec.seed))
        }
    }
}

/// Runs the job's generation cells on `session`, emitting each finished cell. `text` is the
/// worker's text and tokenizer (read while the session loaded); `gpu`, for CUDA groups, reads the
/// process's GPU memory after each cell.
pub fn run_cells(job: &GroupJob, session: &mut dyn Session, text: &Result<TextInputs>, gpu: Option<&crate::gpu::Gpu>, emit: &mut dyn FnMut(RunEvent), stop: &dyn Fn() -> bool) {
    let fail = |cell: &Cell, e: String| job.empty_record(cell, Status::Failed, Some(e));
    let setup = || -> Result<(Option<&(Prose, Tokenizer)>, &crate::models::DecoderLayout)> {
        let layout = job.model.decoder.as_ref().ok_or_else(|| anyhow!("model `{}` has no key/value cache inputs, so it cannot generate\n  fix: run it as a plain model (a scenario without `generate:`)", job.model.name))?;
        let text = text.as_ref().map_err(|e| anyhow!("{e:#}"))?;
        Ok((text.as_ref(), layout))
    };
    let (text, layout) = match setup() {
        Ok(s) => s,
        Err(e) => {
            for cell in &job.cells {
                emit(RunEvent::Cell(Box::new(fail(cell, format!("{e:#}")))));
            }
            return;
        }
    };
    let t = Instant::now();
    let runtime = job.runtime.id;
    let mut generator = match session.generator(layout, &job.model.io) {
        Ok(d) => d,
        Err(e) => {
            let e = format!("{runtime}: {e:#}");
            for cell in &job.cells {
                emit(RunEvent::Cell(Box::new(fail(cell, e.clone()))));
            }
            return;
        }
    };
    let mut prepare_ms = Some(t.elapsed().as_secs_f64() * 1e3);
    for cell in &job.cells {
        if stop() {
            break;
        }
        let mut record = run_cell(job, cell, generator.as_mut(), text, layout, prepare_ms.take().unwrap_or(0.0)).unwrap_or_else(|e| fail(cell, format!("{e:#}")));
        record.gpu_memory_mib = gpu.and_then(|g| g.process_memory_mib(std::process::id()));
        emit(RunEvent::Cell(Box::new(record)));
    }
}

fn run_cell(job: &GroupJob, cell: &Cell, generator: &mut dyn crate::runtimes::decode::Generator, text: Option<&(Prose, Tokenizer)>, layout: &crate::models::DecoderLayout, prepare_ms: f64) -> Result<CellRecord> {
    let clock = Instant::now();
    let new_tokens = cell.new_tokens.ok_or_else(|| anyhow!("cell {} is not a generation cell", cell.index))?;
    let prompt = prompt_of(job, cell, text)?;
    let longest = prompt.ids.ncols();
    if let Some(max) = layout.max_positions.or(job.model.max_positions) {
        if longest > max {
            bail!("a prompt of {longest} tokens is longer than the model's {max} positions\n  fix: ask for shorter prompts (`generate.prompt_tokens` / `prompt_chars`)");
        }
        if longest + new_tokens > max {
            bail!("{longest} prompt tokens and {new_tokens} new tokens pass the model's {max} positions\n  fix: ask for fewer new tokens (`generate.new_tokens`) or shorter prompts");
        }
    }
    let m = &job.measuring;
    let vocab = layout.vocab.unwrap_or(1);
    let keep_rows = if job.outputs_dir.is_some() { generate::rows_kept(cell.batch, new_tokens, vocab) } else { 0 };
    let measured = generator.measure(&prompt, new_tokens, m.warmup, m.iterations, keep_rows)?;
    if let Some(dir) = &job.outputs_dir {
        let saved = SavedOutputs {
            outputs: measured.outputs,
            batch: cell.batch,
            seq_len: longest,
            mask: prompt.mask.iter().map(|&v| v as u8).collect(),
            inputs: vec![("input_ids".into(), crate::tensor::Tensor::I64(prompt.ids.clone().into_dyn()).digest())],
        };
        OutputsDir::at(dir).write(cell.index, &saved)?;
    }
    let mut record = job.empty_record(cell, Status::Ok, None);
    let generated = (cell.batch * new_tokens) as f64;
    let summary = summarize(&measured.samples_ms, cell.batch, Some(generated as usize));
    if !summary.is_finite() {
        bail!("the statistics of the generations ({} to {} ms) are not finite numbers\n  fix: check the runtime's timer", summary.min_ms, summary.max_ms);
    }
    record.summary = Some(summary);
    record.samples_ms = measured.samples_ms;
    record.iterations = record.samples_ms.len();
    // The generator's making (first cell) and what the runtime reports preparing for the cell.
    record.prepare_ms = Some(prepare_ms + measured.prepare_ms.unwrap_or(0.0));
    record.warmup_ms = Some(measured.warmup_ms);
    record.timer_resolution_ms = Some(crate::measure::timer_resolution_ms());
    record.timer = format!("generation: each step timed on its own; {}", measured.generation.timer);
    record.generation = Some(Box::new(measured.generation));
    record.wall_ms = Some(clock.elapsed().as_secs_f64() * 1e3);
    Ok(record)
}
