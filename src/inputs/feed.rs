//! Tokenized text → the tensors a model's token inputs take by their role (token ids, attention
//! mask, token type ids, position ids), with the token counts actually fed; the model's other
//! inputs as its input plan says.

use std::path::Path;

use anyhow::{bail, Result};
use ndarray::{ArrayD, IxDyn};
use tokenizers::{PaddingDirection, PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use super::fill::{Fill, InputPlan};
use crate::models::IoInfo;
use crate::results::{FedInput, TextBatch};
use crate::scenario::Role;
use crate::tensor::{ElemType, Tensor};

/// Everything fed to a model for one cell.
#[derive(Debug, Clone)]
pub struct Feed {
    pub batch: usize,
    pub seq_len: usize,
    /// Named input tensors, in the graph's input order.
    pub tensors: Vec<(String, Tensor)>,
    /// Row-major [batch, seq_len] mask of real tokens (1) and padding (0); all ones without text.
    pub mask: Vec<u8>,
    /// The tokens fed, for a model fed from text; `None` for one that took no tokens.
    pub text: Option<TextBatch>,
    /// What the inputs not filled from text were fed.
    pub fed: Vec<FedInput>,
}

/// Loads a tokenizer.json with a clear error.
pub fn load_tokenizer(path: &Path) -> Result<Tokenizer> {
    Tokenizer::from_file(path).map_err(|e| {
        anyhow::anyhow!(
            "cannot load tokenizer {}: {e}\n  fix: put the model's own tokenizer.json there (models/README.md says where the paper models' come from)",
            path.display()
        )
    })
}

/// Refuses a tokenizer whose token ids run past the model's word embedding table of `rows` rows
/// (when the graph has one): runtimes would fail, crash or read garbage on those ids.
pub fn check_vocab(tok: &Tokenizer, model: &str, rows: Option<usize>) -> Result<()> {
    let Some(rows) = rows else { return Ok(()) };
    let size = tok.get_vocab_size(true);
    let ids = tok.get_vocab(true).values().max().map_or(0, |&id| id as usize + 1);
    if size.max(ids) > rows {
        bail!(
            "model `{model}`: its tokenizer has {size} tokens (added tokens included; largest id {}) but the model's word embedding table (`word_embeddings`) has {rows} rows, so ids from {rows} on index past it\n  fix: use the tokenizer the model was exported with, or export the model with an embedding of at least {} rows",
            ids.saturating_sub(1),
            size.max(ids)
        );
    }
    Ok(())
}

/// The tokenizer's own padding token, looked up among the usual spellings.
fn pad_token(tok: &Tokenizer) -> Option<(String, u32)> {
    ["[PAD]", "<pad>", "<|pad|>", "[pad]", "<PAD>"]
        .iter()
        .find_map(|t| tok.token_to_id(t).map(|id| (t.to_string(), id)))
}

impl Feed {
    /// Tokenizes `texts` (one row each) and builds the tensors the model's inputs take, as `plan`
    /// says. The tokenizer's padding and truncation are set here (setting them is cheap; cloning a
    /// large vocabulary is not). `position_offset` is the model's first position id; `dims` fills
    /// dims of inputs not fed from text.
    pub fn from_texts(tok: &mut Tokenizer, texts: &[String], plan: &InputPlan, position_offset: i64, max_positions: Option<usize>, dims: &super::Dims) -> Result<Feed> {
        let model = plan.model.as_str();
        let started = std::time::Instant::now();
        if let Some((pad_token, pad_id)) = pad_token(tok) {
            tok.with_padding(Some(PaddingParams {
                strategy: PaddingStrategy::BatchLongest,
                direction: PaddingDirection::Right,
                pad_to_multiple_of: None,
                pad_id,
                pad_type_id: 0,
                pad_token,
            }));
        } else {
            tok.with_padding(None);
        }
        let trunc = max_positions.map(|max_length| TruncationParams { max_length, ..Default::default() });
        tok.with_truncation(trunc).map_err(|e| anyhow::anyhow!("cannot set truncation: {e}"))?;
        let encodings = tok
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| anyhow::anyhow!("tokenizing failed for model `{model}`: {e}"))?;
        let tokenize_ms = started.elapsed().as_secs_f64() * 1e3;

        let batch = encodings.len();
        let seq_len = encodings.iter().map(|e| e.len()).max().unwrap_or(0);
        if encodings.iter().any(|e| e.len() != seq_len) {
            bail!(
                "model `{}`: its tokenizer has no padding token ([PAD] or <pad>), so rows of different lengths cannot be batched\n  fix: use batch size 1, or a tokenizer.json with a pad token",
                model
            );
        }
        // The tokenizer cannot truncate below the special tokens it adds: such rows would be fed past
        // the model's positions, and would not even count as truncated.
        if let Some(max) = max_positions.filter(|&max| seq_len > max) {
            bail!(
                "model `{model}`: rows of {seq_len} tokens, more than its {max} positions (`max_positions`), which its tokenizer cannot truncate to (it adds its special tokens to every row)\n  fix: set `max_positions` in the model's model.yaml to the positions the model really has (e.g. 512 for BERT)"
            );
        }
        let truncated_rows = encodings.iter().filter(|e| !e.get_overflowing().is_empty()).count();
        let mut ids = Vec::with_capacity(batch * seq_len);
        let mut mask = Vec::with_capacity(batch * seq_len);
        let mut types = Vec::with_capacity(batch * seq_len);
        for e in &encodings {
            ids.extend(e.get_ids().iter().map(|&v| v as i64));
            mask.extend(e.get_attention_mask().iter().map(|&v| v as i64));
            types.extend(e.get_type_ids().iter().map(|&v| v as i64));
        }
        let tokens_per_row = encodings.iter().map(|e| e.get_attention_mask().iter().filter(|&&m| m == 1).count()).collect();
        let offset = position_offset;
        let positions: Vec<i64> = (0..batch).flat_map(|_| (0..seq_len as i64).map(move |p| p + offset)).collect();

        if seq_len == 0 {
            bail!("model `{model}`: its tokenizer turned the text into no tokens at all\n  fix: use the tokenizer.json the model was exported with");
        }
        let mut tensors = Vec::new();
        let mut fed = Vec::new();
        for (k, f) in plan.fills.iter().enumerate() {
            let data = match &f.fill {
                Fill::Token(Role::TokenIds) => &ids,
                Fill::Token(Role::AttentionMask) => &mask,
                Fill::Token(Role::TokenTypeIds) => &types,
                Fill::Token(Role::PositionIds) => &positions,
                _ => {
                    let (t, record) = super::values::make(model, f, k, batch, seq_len, dims)?;
                    fed.push(record);
                    tensors.push((f.input.name.clone(), t));
                    continue;
                }
            };
            tensors.push((f.input.name.clone(), int_tensor(data, batch, seq_len, &f.input, model)?));
        }
        Ok(Feed {
            batch,
            seq_len,
            tensors,
            mask: mask.iter().map(|&m| m as u8).collect(),
            text: Some(TextBatch { tokens_per_row, padded_len: seq_len, truncated_rows, tokenize_ms }),
            fed,
        })
    }

    /// Real tokens in the whole batch, for a feed of text.
    pub fn real_tokens(&self) -> Option<usize> {
        self.text.as_ref().map(|t| t.tokens_per_row.iter().sum())
    }
}

fn int_tensor(data: &[i64], batch: usize, seq: usize, input: &IoInfo, model: &str) -> Result<Tensor> {
    if let Some(dims) = &input.dims {
        if dims.len() != 2 {
            bail!("model `{model}`: input `{}` has shape {}, expected [batch, sequence]", input.name, input.shape_string());
        }
        for (d, want) in dims.iter().zip([batch, seq]) {
            if let crate::models::Dim::Fixed(n) = d {
                if *n as usize != want {
                    bail!(
                        "model `{model}`: input `{}` is fixed at shape {} but this cell feeds [{batch}, {seq}]\n  fix: export the model with dynamic batch and sequence dims, or choose sizes that match",
                        input.name,
                        input.shape_string()
                    );
                }
            }
        }
    }
    let shape = IxDyn(&[batch, seq]);
    Ok(match input.elem() {
        Some(ElemType::Int64) => Tensor::I64(ArrayD::from_shape_vec(shape, data.to_vec())?),
        Some(ElemType::Int32) => Tensor::I32(ArrayD::from_shape_vec(shape, data.iter().map(|&v| v as i32).collect())?),
        Some(ElemType::Float32) => Tensor::F32(ArrayD::from_shape_vec(shape, data.iter().map(|&v| v as f32).collect())?),
        _ => bail!("model `{model}`: input `{}` has element type {}; token inputs must be int64 or int32", input.name, input.elem_type),
    })
}
