//! Generation on ONNX Runtime: each step's integer inputs made on the host and bound, the past
//! bound as the values the step before returned (on the provider's device: the cache never leaves
//! it), the presents and logits left on the device, and only the last position's logits copied to
//! host memory.

use anyhow::{anyhow, bail, Context, Result};
use ndarray::Array2;
use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
use ort::value::{DynTensor, DynValue, TensorElementType};

use super::cudart::{self, Direction};
use super::io::Core;
use crate::models::DecoderLayout;
use crate::runtimes::decode::{cache_type, Decoder, Step};
use crate::tensor::ElemType;

pub(super) struct OrtDecoder<'s> {
    core: &'s mut Core,
    layout: DecoderLayout,
    /// (past, present) names of each cache slot: key, value of layer 0, then layer 1, …
    slots: Vec<(String, String)>,
    cache: Vec<DynValue>,
    device: MemoryInfo<'static>,
    cuda: bool,
    int32: bool,
    kv_heads: usize,
    head_size: usize,
    f16: bool,
}

impl<'s> OrtDecoder<'s> {
    pub fn new(core: &'s mut Core, layout: &DecoderLayout, int32: bool) -> Result<OrtDecoder<'s>> {
        let (slots, kv_heads, head_size) = roles(core, layout)?;
        let f16 = cache_type(layout)? == ElemType::Float16;
        let cuda = core.device.0 == AllocationDevice::CUDA;
        let device = MemoryInfo::new(core.device.0.clone(), core.device.1, AllocatorType::Device, MemoryType::Default)?;
        Ok(OrtDecoder { core, layout: layout.clone(), slots, cache: Vec::new(), device, cuda, int32, kv_heads, head_size, f16 })
    }

    fn ints(&self, a: &Array2<i64>) -> Result<DynValue> {
        Ok(if self.int32 { ort::value::Tensor::from_array(a.mapv(|v| v as i32))?.into_dyn() } else { ort::value::Tensor::from_array(a.clone())?.into_dyn() })
    }

    fn empty_past(&self, batch: usize) -> Result<DynValue> {
        let shape = [batch, self.kv_heads, 0, self.head_size];
        Ok(if self.f16 {
            ort::value::Tensor::from_array(ndarray::Array4::<half::f16>::zeros(shape))?.into_dyn()
        } else {
            ort::value::Tensor::from_array(ndarray::Array4::<f32>::zeros(shape))?.into_dyn()
        })
    }

    /// The last position's logits of each row, in host memory as f32.
    fn last_logits(&self, logits: DynValue) -> Result<Array2<f32>> {
        let t: DynTensor = logits.downcast().map_err(|e| anyhow!("logits are not a tensor: {e}"))?;
        let shape: Vec<usize> = t.shape().iter().map(|&d| d as usize).collect();
        let [batch, n, vocab] = shape[..] else { bail!("logits have shape {shape:?}, not [batch, sequence, vocab]") };
        // SAFETY: the tensor holds batch × n × vocab elements of its type, on the GPU when `cuda`.
        unsafe { last_rows(t.data_ptr() as *const u8, [batch, n, vocab], *t.data_type(), self.cuda) }
    }
}

/// The (past, present) names of each cache slot (key, value of layer 0, then layer 1, …), the
/// cache's heads and head size; refuses a decoder input without a role in generation.
pub(super) fn roles(core: &Core, layout: &DecoderLayout) -> Result<(Vec<(String, String)>, usize, usize)> {
    let inputs: Vec<String> = core.session.inputs().iter().map(|i| i.name().to_string()).collect();
    let slots: Vec<(String, String)> = layout.cache.iter().flat_map(|p| [(p.past_key.clone(), p.present_key.clone()), (p.past_value.clone(), p.present_value.clone())]).collect();
    let known = |n: &String| {
        *n == layout.input_ids
            || Some(n) == layout.attention_mask.as_ref()
            || Some(n) == layout.position_ids.as_ref()
            || Some(n) == layout.use_cache_branch.as_ref()
            || slots.iter().any(|(p, _)| p == n)
    };
    if let Some(n) = inputs.iter().find(|n| !known(n)) {
        bail!("decoder input `{n}` has no role in generation (token ids, attention mask, position ids, past key/value, use_cache_branch)\n  fix: map it in the model's model.yaml (`decoder:`)");
    }
    let (Some(kv_heads), Some(head_size)) = (layout.kv_heads, layout.head_size) else {
        bail!("the cache inputs do not say their heads and head size (dims 1 and 3 are not fixed numbers)\n  fix: export the decoder with fixed head dims, as optimum does")
    };
    Ok((slots, kv_heads, head_size))
}

/// The size of a logit of type `ty`: float32 and float16 are read.
pub(super) fn logit_size(ty: TensorElementType) -> Result<usize> {
    match ty {
        TensorElementType::Float32 => Ok(4),
        TensorElementType::Float16 => Ok(2),
        other => bail!("logits are {other:?}; xbench reads float32 and float16 logits"),
    }
}

/// Each row's last position of logits `[batch, n, vocab]` of type `ty` at `base` (on the GPU when
/// `cuda`), in host memory as f32.
///
/// # Safety
/// `base` must hold `batch × n × vocab` elements of `ty`, on the side `cuda` names.
pub(super) unsafe fn last_rows(base: *const u8, [batch, n, vocab]: [usize; 3], ty: TensorElementType, cuda: bool) -> Result<Array2<f32>> {
    let size = logit_size(ty)?;
    let row_bytes = vocab * size;
    // Each row's last position, straight into the array the host reads (f16 through a row buffer).
    let mut values = vec![0f32; batch * vocab];
    if n == 1 && size == 4 {
        // A decode step's logits are one position per row: the rows lie end to end, one copy.
        let dst: *mut u8 = values.as_mut_ptr().cast();
        if cuda {
            // SAFETY: as the caller promises: batch × 1 × vocab f32 on the GPU; `values` holds as many.
            unsafe { cudart::get()?.copy(dst.cast(), base.cast(), batch * row_bytes, Direction::DeviceToHost)? };
        } else {
            // SAFETY: as above, in host memory.
            unsafe { std::ptr::copy_nonoverlapping(base, dst, batch * row_bytes) };
        }
        return Ok(Array2::from_shape_vec((batch, vocab), values)?);
    }
    let mut half_row = if size == 2 { vec![half::f16::ZERO; vocab] } else { Vec::new() };
    for b in 0..batch {
        let at = ((b * n + n - 1) * row_bytes) as isize;
        let dst: *mut u8 = if size == 4 { values[b * vocab..].as_mut_ptr().cast() } else { half_row.as_mut_ptr().cast() };
        if cuda {
            // SAFETY: as the caller promises; `dst` has room for one row.
            unsafe { cudart::get()?.copy(dst.cast(), base.offset(at).cast(), row_bytes, Direction::DeviceToHost)? };
        } else {
            // SAFETY: as above, in host memory.
            unsafe { std::ptr::copy_nonoverlapping(base.offset(at), dst, row_bytes) };
        }
        if size == 2 {
            for (v, h) in values[b * vocab..(b + 1) * vocab].iter_mut().zip(&half_row) {
                *v = h.to_f32();
            }
        }
    }
    Ok(Array2::from_shape_vec((batch, vocab), values)?)
}

impl Decoder for OrtDecoder<'_> {
    fn reset(&mut self) {
        self.cache.clear();
    }

    fn step(&mut self, step: &Step) -> Result<Array2<f32>> {
        let batch = step.ids.nrows();
        let first = self.cache.is_empty();
        let mut binding = self.core.session.create_binding()?;
        let mut held = Vec::new();
        held.push((self.layout.input_ids.clone(), self.ints(step.ids)?));
        if let Some(n) = &self.layout.attention_mask {
            held.push((n.clone(), self.ints(step.mask)?));
        }
        if let Some(n) = &self.layout.position_ids {
            held.push((n.clone(), self.ints(step.positions)?));
        }
        if let Some(n) = &self.layout.use_cache_branch {
            held.push((n.clone(), ort::value::Tensor::from_array(ndarray::arr1(&[!first]))?.into_dyn()));
        }
        for (name, v) in &held {
            binding.bind_input(name.as_str(), v)?;
        }
        let empty = if first { Some(self.empty_past(batch)?) } else { None };
        for (k, (past, _)) in self.slots.iter().enumerate() {
            binding.bind_input(past.as_str(), empty.as_ref().unwrap_or_else(|| &self.cache[k]))?;
        }
        for (_, present) in &self.slots {
            binding.bind_output_to_device(present.as_str(), &self.device)?;
        }
        binding.bind_output_to_device(self.layout.logits.as_str(), &self.device)?;
        let mut outputs = self
            .core
            .session
            .run_binding_with_options(&binding, &self.core.run_options)
            .map_err(|e| anyhow!("ONNX Runtime's decoder step failed: {e}\n  fix: check the decoder's inputs (`xbench models` lists them), or run it on another runtime to compare"))?;
        binding.synchronize_outputs()?;
        let logits = outputs.remove(self.layout.logits.as_str()).with_context(|| format!("ONNX Runtime returned no `{}`", self.layout.logits))?;
        let cache = self.slots.iter().map(|(_, present)| outputs.remove(present.as_str()).with_context(|| format!("ONNX Runtime returned no `{present}`"))).collect::<Result<Vec<_>>>()?;
        drop(outputs);
        self.cache = cache;
        self.last_logits(logits)
    }

    fn timer(&self) -> String {
        let dev = if self.cuda { "GPU" } else { "host memory" };
        format!("ONNX Runtime (IO binding): token ids, mask and positions made on the host and bound, the past bound as the presents of the step before (left in {dev}), the step run, the last position's logits copied to host memory as f32, the next ids picked on the host")
    }

    fn cache_bytes(&self) -> u64 {
        self.cache
            .iter()
            .filter_map(|v| v.dtype().tensor_shape().map(|s| s.iter().product::<i64>() as u64 * if self.f16 { 2 } else { 4 }))
            .sum()
    }
}
