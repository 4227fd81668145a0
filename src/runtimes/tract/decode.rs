//! Generation on tract: one plan for every step, its symbols (batch, sequence and past lengths)
//! bound from each step's inputs, and the cache kept as the tensors tract returned.

use anyhow::{anyhow, bail, Context, Result};
use ndarray::{Array2, ArrayView2, Axis};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::model::typed::TypedSimpleState;

use crate::models::DecoderLayout;
use crate::runtimes::decode::{cache_type, Decoder, Step};
use crate::tensor::ElemType;

/// What feeds each input of the plan, in its order.
enum Feed {
    Ids,
    Mask,
    Positions,
    /// Past of cache slot `k` (the layout's pairs flattened: key, value, key, …).
    Past(usize),
    UseCacheBranch,
}

pub(super) struct TractDecoder {
    state: TypedSimpleState,
    feeds: Vec<Feed>,
    logits: usize,
    /// Output position of each cache slot's present.
    presents: Vec<usize>,
    /// The cache: one tensor per slot; empty before the first step of a generation.
    cache: Vec<TValue>,
    /// The empty past of a prefill, `[batch, heads, 0, head size]`, made per batch size.
    kv_heads: usize,
    head_size: usize,
    cache_dt: DatumType,
    int32: bool,
    /// What the optimized plan is made of, as the timer says it.
    plan: String,
    /// The last step's logits `[batch, vocab]`.
    last: Array2<f32>,
}

/// The ops tract puts in place of a transformer's subgraphs when it recognises them (its own
/// normalisation, rotary embedding, attention, cache and activation ops).
const TRANSFORMER_OPS: [&str; 13] =
    ["RmsNorm", "ScaledRmsNorm", "ApplyRope", "RotateHalf", "SDPA", "FlashSDPA", "StreamedSDPA", "ScaledMaskedSoftmax", "DynamicKeyValueCache", "InPlaceKvSdpa", "Silu", "GeluApproximate", "ClampedSwiGlu"];

/// What an optimized plan is made of: its nodes, and how many of each transformer op it holds
/// (`names` are its nodes' op names).
pub(super) fn plan_summary<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let mut nodes = 0;
    let mut found = std::collections::BTreeMap::new();
    for n in names {
        nodes += 1;
        if TRANSFORMER_OPS.contains(&n) {
            *found.entry(n).or_insert(0usize) += 1;
        }
    }
    let ops = if found.is_empty() {
        "none (attention, normalisation and rotary embedding run as the graph's own operators)".to_string()
    } else {
        found.iter().map(|(n, c)| format!("{n} ×{c}")).collect::<Vec<_>>().join(", ")
    };
    format!("tract {}, plan of {nodes} nodes; transformer ops: {ops}", crate::runtimes::TRACT_VERSION)
}

impl TractDecoder {
    pub fn new(state: TypedSimpleState, layout: &DecoderLayout, int32: bool) -> Result<TractDecoder> {
        let m = state.model();
        let input_name = |o: &OutletId| m.node(o.node).name.clone();
        let output_name = |o: &OutletId| m.outlet_label(*o).map(str::to_string).unwrap_or_else(|| m.node(o.node).name.clone());
        let slots: Vec<(&str, &str)> = layout.cache.iter().flat_map(|p| [(p.past_key.as_str(), p.present_key.as_str()), (p.past_value.as_str(), p.present_value.as_str())]).collect();
        let mut feeds = Vec::new();
        for o in m.input_outlets()? {
            let name = input_name(o);
            feeds.push(if name == layout.input_ids {
                Feed::Ids
            } else if Some(&name) == layout.attention_mask.as_ref() {
                Feed::Mask
            } else if Some(&name) == layout.position_ids.as_ref() {
                Feed::Positions
            } else if Some(&name) == layout.use_cache_branch.as_ref() {
                Feed::UseCacheBranch
            } else if let Some(k) = slots.iter().position(|(past, _)| *past == name) {
                Feed::Past(k)
            } else {
                bail!("decoder input `{name}` has no role in generation (token ids, attention mask, position ids, past key/value, use_cache_branch)\n  fix: map it in the model's model.yaml (`decoder:`)")
            });
        }
        let outputs: Vec<String> = m.output_outlets()?.iter().map(output_name).collect();
        let find = |n: &str| outputs.iter().position(|o| o == n).ok_or_else(|| anyhow!("tract's plan has no output `{n}` (outputs: {})", outputs.join(", ")));
        let logits = find(&layout.logits)?;
        let presents = slots.iter().map(|(_, present)| find(present)).collect::<Result<_>>()?;
        let cache_dt = match cache_type(layout)? {
            ElemType::Float16 => DatumType::F16,
            _ => DatumType::F32,
        };
        let (Some(kv_heads), Some(head_size)) = (layout.kv_heads, layout.head_size) else {
            bail!("the cache inputs do not say their heads and head size (dims 1 and 3 are not fixed numbers)\n  fix: export the decoder with fixed head dims, as optimum does")
        };
        let plan = plan_summary(m.nodes().iter().map(|n| n.op.name()).collect::<Vec<_>>().iter().map(|n| n.as_ref()));
        Ok(TractDecoder { state, feeds, logits, presents, cache: Vec::new(), kv_heads, head_size, cache_dt, int32, plan, last: Array2::zeros((0, 0)) })
    }

    fn ints(&self, a: &Array2<i64>) -> TValue {
        if self.int32 {
            Tensor::from(a.mapv(|v| v as i32)).into_tvalue()
        } else {
            Tensor::from(a.clone()).into_tvalue()
        }
    }
}

impl Decoder for TractDecoder {
    fn reset(&mut self) {
        self.cache.clear();
    }

    fn step(&mut self, step: &Step) -> Result<ArrayView2<'_, f32>> {
        let batch = step.ids.nrows();
        let first = self.cache.is_empty();
        let empty = || -> Result<TValue> { Ok(Tensor::zero_dt(self.cache_dt, &[batch, self.kv_heads, 0, self.head_size])?.into_tvalue()) };
        let mut inputs: TVec<TValue> = TVec::with_capacity(self.feeds.len());
        for f in &self.feeds {
            inputs.push(match f {
                Feed::Ids => self.ints(step.ids),
                Feed::Mask => self.ints(step.mask),
                Feed::Positions => self.ints(step.positions),
                Feed::UseCacheBranch => tensor1(&[!first]).into_tvalue(),
                Feed::Past(_) if first => empty()?,
                Feed::Past(k) => self.cache[*k].clone(),
            });
        }
        let mut out = self.state.run(inputs).map_err(|e| anyhow!("tract's decoder step failed: {e:#}\n  fix: run the model on ort-cpu to compare; tract does not implement every ONNX operator and form"))?;
        let logits = out[self.logits].clone();
        self.cache = self.presents.iter().map(|&i| std::mem::replace(&mut out[i], Tensor::zero::<f32>(&[0]).expect("an empty tensor").into_tvalue())).collect();
        let logits = logits.cast_to::<f32>().context("tract's logits as f32")?;
        let view = logits.to_plain_array_view::<f32>()?;
        if view.ndim() != 3 {
            bail!("logits have shape {:?}, not [batch, sequence, vocab]", view.shape());
        }
        let last = view.shape()[1] - 1;
        self.last = view.index_axis(Axis(1), last).to_owned().into_dimensionality()?;
        Ok(self.last.view())
    }

    fn timer(&self) -> String {
        format!("{}: token ids, mask and positions copied into tract's tensors, the step run, the cache kept as tract returned it, the last position's logits read as f32, the next ids picked on the host", self.plan)
    }

    fn cache_bytes(&self) -> u64 {
        self.cache.iter().map(|t| (t.len() * t.datum_type().size_of()) as u64).sum()
    }
}
