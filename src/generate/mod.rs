//! Generation cells: a prompt run through a decoder with an empty cache (prefill, up to the first
//! token picked), then one step per new token with the cache the runtime kept (decode), picking the
//! largest logit each step (greedy: the same ids for every runtime that computes the same thing).
//! Warm-ups and timed generations as the scenario says; every step timed on its own.

pub mod prompt;

use std::time::Instant;

use anyhow::{bail, Result};
use ndarray::{Array2, Array3, Axis};

use crate::runtimes::decode::{Decoder, Step};
use crate::stats::summarize;
use crate::tensor::{Output, Tensor};
pub use prompt::Prompt;

/// The most logits a cell keeps for comparison with the reference runtime's (all steps, the rows
/// that fit): beyond it, fewer rows are kept and the record says how many.
pub const LOGITS_KEPT_MAX_BYTES: usize = 256 << 20;

/// One generation's ids, times and logits.
#[derive(Debug, Clone)]
pub struct Generated {
    /// `[batch, new_tokens]`.
    pub ids: Array2<i64>,
    pub prefill_ms: f64,
    /// One per step after the first token.
    pub step_ms: Vec<f64>,
    /// `[new_tokens, rows kept, vocab]`: each step's logits of the first rows (none unless asked).
    pub logits: Option<Array3<f32>>,
    pub cache_bytes: u64,
}

/// The index of each row's largest logit (the first of equal ones).
pub fn argmax(logits: ndarray::ArrayView2<'_, f32>) -> Vec<i64> {
    // The largest value of each block of 512, lane by lane over chunks of 16 (a loop the compiler
    // vectorises: a large vocabulary's rows are read once at memory speed); the first block whose
    // largest is the row's; the first index in that block that holds it. NaN is never the
    // largest; a row with nothing above -inf gives its first -inf, a row of NaN 0.
    fn largest(block: &[f32]) -> f32 {
        let mut lanes = [f32::NEG_INFINITY; 16];
        let chunks = block.chunks_exact(16);
        let rest = chunks.remainder();
        for c in chunks {
            for (l, &v) in lanes.iter_mut().zip(c) {
                *l = if v > *l { v } else { *l };
            }
        }
        lanes.iter().chain(rest).fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m })
    }
    fn first_largest(row: &[f32]) -> usize {
        const BLOCK: usize = 512;
        let (mut best, mut at) = (f32::NEG_INFINITY, None);
        for (k, block) in row.chunks(BLOCK).enumerate() {
            let m = largest(block);
            if m > best {
                (best, at) = (m, Some(k));
            }
        }
        match at {
            Some(k) => k * BLOCK + row[k * BLOCK..].iter().position(|&v| v == best).unwrap_or(0),
            None => row.iter().position(|&v| v == f32::NEG_INFINITY).unwrap_or(0),
        }
    }
    logits
        .rows()
        .into_iter()
        .map(|r| match r.as_slice() {
            Some(row) => first_largest(row) as i64,
            None => first_largest(&r.to_vec()) as i64,
        })
        .collect()
}

/// Generates `new_tokens` tokens after `prompt`, greedily; keeps the logits of the first
/// `keep_rows` rows of every step when asked.
pub fn generate(dec: &mut dyn Decoder, prompt: &Prompt, new_tokens: usize, keep_rows: usize) -> Result<Generated> {
    let batch = prompt.ids.nrows();
    let mut ids = Array2::<i64>::zeros((batch, new_tokens));
    let mut kept: Vec<Array2<f32>> = Vec::new();
    dec.reset();
    let positions = prompt.positions();
    let t = Instant::now();
    let logits = dec.step(&Step { ids: &prompt.ids, mask: &prompt.mask, positions: &positions })?;
    let mut next = argmax(logits.view());
    let prefill_ms = t.elapsed().as_secs_f64() * 1e3;
    ids.column_mut(0).assign(&ndarray::Array1::from(next.clone()));
    if keep_rows > 0 {
        kept.push(logits.slice(ndarray::s![..keep_rows, ..]).to_owned());
    }
    let mut mask = prompt.mask.clone();
    let mut last: Vec<i64> = positions.column(positions.ncols() - 1).to_vec();
    // Padding rows' last position is a real token's (prompts are padded on the left).
    let mut step_ms = Vec::with_capacity(new_tokens.saturating_sub(1));
    for k in 1..new_tokens {
        let t = Instant::now();
        let input = Array2::from_shape_vec((batch, 1), next)?;
        mask.push_column(ndarray::Array1::ones(batch).view())?;
        for p in last.iter_mut() {
            *p += 1;
        }
        let pos = Array2::from_shape_vec((batch, 1), last.clone())?;
        let logits = dec.step(&Step { ids: &input, mask: &mask, positions: &pos })?;
        next = argmax(logits.view());
        step_ms.push(t.elapsed().as_secs_f64() * 1e3);
        ids.column_mut(k).assign(&ndarray::Array1::from(next.clone()));
        if keep_rows > 0 {
            kept.push(logits.slice(ndarray::s![..keep_rows, ..]).to_owned());
        }
    }
    let logits = if keep_rows > 0 {
        let views: Vec<_> = kept.iter().map(|a| a.view()).collect();
        Some(ndarray::stack(Axis(0), &views)?)
    } else {
        None
    };
    Ok(Generated { ids, prefill_ms, step_ms, logits, cache_bytes: dec.cache_bytes() })
}

/// Rows whose logits of every step fit in `LOGITS_KEPT_MAX_BYTES` (at least one).
pub fn rows_kept(batch: usize, new_tokens: usize, vocab: usize) -> usize {
    (LOGITS_KEPT_MAX_BYTES / (new_tokens * vocab * 4).max(1)).clamp(1, batch)
}

/// All measurements of one cell.
pub struct Measured {
    pub generation: crate::results::Generation,
    /// Whole generations (prefill and every step), one per timed generation.
    pub samples_ms: Vec<f64>,
    pub warmup_ms: f64,
    /// Preparation for the cell the runtime reported (an external program's), untimed.
    pub prepare_ms: Option<f64>,
    /// The last timed generation's ids and kept logits, as saved outputs (`ids`, `logits`).
    pub outputs: Vec<Output>,
}

/// What a cell's generations gave, as xbench's loop or an external program measured them.
pub struct Timings {
    /// One per timed generation.
    pub prefill_ms: Vec<f64>,
    /// One list per timed generation, `new_tokens - 1` steps each.
    pub step_ms: Vec<Vec<f64>>,
    pub warmup_ms: f64,
    pub prepare_ms: Option<f64>,
    /// The last timed generation's ids `[batch, new_tokens]`.
    pub ids: Array2<i64>,
    /// Its logits `[new_tokens, rows kept, vocab]`, when kept.
    pub logits: Option<Array3<f32>>,
    /// What the cache held at the end of the last generation.
    pub cache_bytes: u64,
    /// What a timed prefill and step cover, as recorded.
    pub timer: String,
    /// Every generation of the cell (warm-ups included) picked the same ids.
    pub repeatable: bool,
}

/// Warms up and times `iterations` generations of one cell.
pub fn measure(dec: &mut dyn Decoder, prompt: &Prompt, new_tokens: usize, warmup: usize, iterations: usize, keep_rows: usize) -> Result<Measured> {
    if iterations == 0 {
        bail!("no timed generation asked for");
    }
    let t = Instant::now();
    let mut first: Option<Array2<i64>> = None;
    let mut repeatable = true;
    for _ in 0..warmup {
        let g = generate(dec, prompt, new_tokens, 0)?;
        repeatable &= first.get_or_insert_with(|| g.ids.clone()) == &g.ids;
    }
    let warmup_ms = t.elapsed().as_secs_f64() * 1e3;
    let (mut prefill_ms, mut step_ms) = (Vec::new(), Vec::new());
    let mut last = None;
    for i in 0..iterations {
        let g = generate(dec, prompt, new_tokens, if i + 1 == iterations { keep_rows } else { 0 })?;
        repeatable &= first.get_or_insert_with(|| g.ids.clone()) == &g.ids;
        prefill_ms.push(g.prefill_ms);
        step_ms.push(g.step_ms.clone());
        last = Some(g);
    }
    let g = last.expect("one timed generation at least");
    Ok(record(prompt, new_tokens, Timings { prefill_ms, step_ms, warmup_ms, prepare_ms: None, ids: g.ids, logits: g.logits, cache_bytes: g.cache_bytes, timer: dec.timer(), repeatable }))
}

/// The record of a cell's generations: prefill and decode statistics, tokens per second, the
/// last generation's ids, and the outputs saved (`ids`, `logits`).
pub fn record(prompt: &Prompt, new_tokens: usize, t: Timings) -> Measured {
    let batch = prompt.ids.nrows();
    let prompt_tokens: usize = prompt.tokens_per_row.iter().sum();
    let steps: Vec<f64> = t.step_ms.iter().flatten().copied().collect();
    let whole = t.prefill_ms.iter().zip(&t.step_ms).map(|(p, s)| p + s.iter().sum::<f64>()).collect();
    let prefill_summary = summarize(&t.prefill_ms, batch, Some(prompt_tokens));
    let decode = (!steps.is_empty()).then(|| summarize(&steps, batch, Some(batch)));
    let generation = crate::results::Generation {
        prompt_tokens: prompt.tokens_per_row.clone(),
        new_tokens,
        prompt: prompt.from.clone(),
        prefill_tokens_per_s: prompt_tokens as f64 / (prefill_summary.mean_ms / 1e3),
        prefill: prefill_summary,
        decode_tokens_per_s: decode.as_ref().map(|_| (batch * steps.len()) as f64 / (steps.iter().sum::<f64>() / 1e3)),
        decode,
        cache_bytes: t.cache_bytes,
        timer: t.timer,
        ids: t.ids.rows().into_iter().map(|r| r.to_vec()).collect(),
        repeatable: t.repeatable,
        agreement: None,
    };
    let mut outputs = vec![Output { name: "ids".into(), data: Tensor::I64(t.ids.into_dyn()) }];
    if let Some(l) = t.logits {
        outputs.push(Output { name: "logits".into(), data: Tensor::F32(l.into_dyn()) });
    }
    Measured { generation, samples_ms: whole, warmup_ms: t.warmup_ms, prepare_ms: t.prepare_ms, outputs }
}

#[cfg(test)]
mod tests;
