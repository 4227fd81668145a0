//! Generation in a runtime: a decoder's steps with its key/value cache kept by the runtime between
//! them (`Decoder`), made by a loaded session for a model whose cache layout is known
//! (`models::DecoderLayout`). The loop that picks tokens and times the steps is `generate`'s.

use anyhow::{bail, Result};
use ndarray::{Array2, ArrayView2};

use crate::generate::{Measured, Prompt};
use crate::models::DecoderLayout;
use crate::tensor::ElemType;

/// One step's inputs: token ids `[batch, n]`, the attention mask over the cached and the new
/// positions `[batch, past + n]` (1: a real token, 0: padding), and the new tokens' position ids
/// `[batch, n]`.
pub struct Step<'a> {
    pub ids: &'a Array2<i64>,
    pub mask: &'a Array2<i64>,
    pub positions: &'a Array2<i64>,
}

/// A decoder whose key/value cache stays in the runtime between steps.
pub trait Decoder {
    /// Forgets the cache: the next step starts a generation with an empty past.
    fn reset(&mut self);
    /// Untimed work before a cell whose generations have `batch` rows, prompts of `prompt` tokens
    /// and `new_tokens` new tokens: the number of whole generations the cell must run, untimed,
    /// before its warm-ups (a decoder that captures each step in a CUDA graph runs it twice and
    /// captures it on the third). Recorded in the cell's preparation time.
    fn prepare(&mut self, _batch: usize, _prompt: usize, _new_tokens: usize) -> Result<usize> {
        Ok(0)
    }
    /// Runs one step on the cache of the steps before it and keeps the cache it returns; gives the
    /// last position's logits of each row in host memory, as f32 `[batch, vocab]` (the decoder's
    /// own memory, which the next step overwrites).
    fn step(&mut self, step: &Step) -> Result<ArrayView2<'_, f32>>;
    /// What a timed step covers (inputs in, the cache where it stays, logits out), as recorded.
    fn timer(&self) -> String;
    /// Bytes the cache holds now.
    fn cache_bytes(&self) -> u64;
}

/// A cell's generations in a runtime: warm-ups and timed generations of a prompt, measured and
/// recorded as `generate::record` does. In-process runtimes run xbench's loop on their `Decoder`
/// (`Looped`); an external program runs the loop itself and answers with its times.
pub trait Generator {
    /// Generates `new_tokens` tokens after `prompt`, `warmup` times untimed then `iterations` times
    /// timed, each from an empty cache; keeps the logits of the first `keep_rows` rows of the last.
    fn measure(&mut self, prompt: &Prompt, new_tokens: usize, warmup: usize, iterations: usize, keep_rows: usize) -> Result<Measured>;
}

/// xbench's own loop (`generate::measure`) on a runtime's decoder.
pub struct Looped<'a>(pub Box<dyn Decoder + 'a>);

impl Generator for Looped<'_> {
    fn measure(&mut self, prompt: &Prompt, new_tokens: usize, warmup: usize, iterations: usize, keep_rows: usize) -> Result<Measured> {
        // Untimed runs some decoders need before timing (CUDA graphs: two runs and a capture per
        // step), counted as the cell's preparation.
        let t = std::time::Instant::now();
        for _ in 0..self.0.prepare(prompt.ids.nrows(), prompt.ids.ncols(), new_tokens)? {
            crate::generate::generate(self.0.as_mut(), prompt, new_tokens, 0)?;
        }
        let prepare_ms = t.elapsed().as_secs_f64() * 1e3;
        let mut m = crate::generate::measure(self.0.as_mut(), prompt, new_tokens, warmup, iterations, keep_rows)?;
        m.prepare_ms = Some(prepare_ms);
        Ok(m)
    }
}

/// The element type of the integer inputs a decoder takes (`input_ids`, `attention_mask`,
/// `position_ids`): int64 as optimum and onnxruntime-genai export them, or int32.
pub fn index_type(io: &crate::models::ModelIo, name: &str) -> Result<ElemType> {
    let Some(i) = io.inputs.iter().find(|i| i.name == name) else { bail!("the model has no input `{name}`") };
    match i.elem() {
        Some(t @ (ElemType::Int64 | ElemType::Int32)) => Ok(t),
        _ => bail!("input `{name}` is {}, not int64 or int32: xbench feeds token ids, masks and positions as integers\n  fix: map the decoder's inputs in model.yaml (`decoder:`), or run the model as a plain model", i.elem_type),
    }
}

/// The default answer of a session that cannot keep a cache between steps.
pub fn cannot_keep_cache() -> anyhow::Error {
    anyhow::anyhow!("this runtime cannot keep a decoder's key/value cache between steps, so it cannot generate\n  fix: generate with ort-cpu, ort-cuda or tract-cpu (or an external program that speaks the generation messages)")
}

/// The layout's cache element type, for runtimes that make the empty past of a prefill.
pub fn cache_type(layout: &DecoderLayout) -> Result<ElemType> {
    match layout.cache_type {
        t @ (ElemType::Float32 | ElemType::Float16) => Ok(t),
        other => bail!("the key/value cache is {other}; xbench generates with float32 and float16 caches\n  fix: export the decoder with a float32 or float16 cache"),
    }
}
