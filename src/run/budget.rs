//! What a cell needs in memory at least, from shapes, checked before it runs: the text cut and
//! tokenized for it, its input tensors and the outputs whose shapes the model declares. A cell
//! over the run's budget fails with the figures and the fix instead of taking the machine down.

use super::job::JobModel;
use crate::inputs::{concrete_shape, Dims};
use crate::models::IoInfo;
use crate::scenario::Cell;
use crate::tensor::ElemType;

/// Bytes the tokenizer holds per character of input while it works: the text, its normalized
/// copy and the per-token offsets and ids. Measured with BERT's tokenizer (the `tokenizers`
/// library xbench uses): 16 and 64 rows of 100 000 characters raised the peak resident memory by
/// 58 and 46 bytes per character.
pub const TOKENIZER_BYTES_PER_CHAR: u64 = 48;

/// An estimate of what `cell` of `model` needs, in bytes, with what it is made of. `None` when
/// nothing can be estimated (a test data set: its files are what they are).
pub fn cell_need(model: &JobModel, cell: &Cell, dims: &Dims) -> Option<(u64, String)> {
    if cell.data_set.is_some() {
        return None;
    }
    if let Some(new) = cell.new_tokens {
        // Generation: the cache at its longest and the prompt's logits (every position of every
        // row, as decoders export them). A prompt of N characters has at most about N + 2 tokens.
        let layout = model.decoder.as_ref()?;
        let prompt = cell.chars + 2;
        let cache = layout.cache_bytes(cell.batch, prompt + new)?;
        let logits = (cell.batch * prompt * layout.vocab?) as u64 * 4;
        return Some((cache + logits, format!("key/value cache {} and the prompt's logits {}", gib(cache), gib(logits))));
    }
    let plan = model.inputs.as_ref()?;
    let (batch, chars) = (cell.batch as u64, cell.chars as u64);
    // A row holds at most about one token per character, plus the special tokens, and is cut at
    // the model's maximum positions.
    let sequence = if plan.takes_text() {
        (cell.chars + 2).min(model.max_positions.unwrap_or(usize::MAX))
    } else {
        cell.chars
    };
    let text = if plan.takes_text() { batch.saturating_mul(chars).saturating_mul(TOKENIZER_BYTES_PER_CHAR) } else { 0 };
    // Values that are not token ids are made as f64 numbers first, then converted: 8 bytes more
    // per element while the input is made.
    let staged = |k: usize| !matches!(plan.fills.get(k).map(|f| &f.fill), Some(crate::inputs::Fill::Token(_)));
    let tensors = |list: &[IoInfo], inputs: bool| -> u64 {
        list.iter()
            .enumerate()
            .filter_map(|(k, t)| {
                let shape = concrete_shape(&model.name, t, cell.batch, sequence, dims).ok()?;
                let elems = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64)).unwrap_or(u64::MAX);
                let size = t.elem().and_then(ElemType::size).unwrap_or(1) as u64;
                let staging = if inputs && staged(k) { 8 } else { 0 };
                Some(elems.saturating_mul(size + staging))
            })
            .fold(0u64, u64::saturating_add)
    };
    // An input beyond what a tensor may hold is refused when it is made, with its own message.
    let too_large = model.io.inputs.iter().filter_map(|t| concrete_shape(&model.name, t, cell.batch, sequence, dims).ok()).any(|s| crate::inputs::element_count(&model.name, "", &s).is_err());
    if too_large {
        return None;
    }
    let (inputs, outputs) = (tensors(&model.io.inputs, true), tensors(&model.io.outputs, false));
    let total = text.saturating_add(inputs).saturating_add(outputs);
    let mut parts = Vec::new();
    if text > 0 {
        parts.push(format!("{} tokenizing {} rows of {} characters", gib(text), batch, chars));
    }
    parts.push(format!("{} of inputs", gib(inputs)));
    parts.push(format!("{} of outputs", gib(outputs)));
    Some((total, parts.join(", ")))
}

/// Why `cell` cannot run within `budget_gib`, if it cannot.
pub fn over_budget(model: &JobModel, cell: &Cell, dims: &Dims, budget_gib: f64) -> Option<String> {
    let (need, parts) = cell_need(model, cell, dims)?;
    if (need as f64) <= budget_gib * (1u64 << 30) as f64 {
        return None;
    }
    Some(format!(
        "needs at least {} ({parts}), over the memory budget of {budget_gib:.1} GiB; not run\n  fix: use a smaller batch size or input length, or raise `memory_budget_gib` in the scenario if the machine has the memory",
        gib(need)
    ))
}

fn gib(bytes: u64) -> String {
    let g = bytes as f64 / (1u64 << 30) as f64;
    if g >= 0.1 {
        format!("{g:.1} GiB")
    } else {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}
