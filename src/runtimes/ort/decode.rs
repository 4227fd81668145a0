//! Generation on ONNX Runtime: each step's integer inputs made on the host and bound, the past
//! bound as the values the step before returned (on the provider's device: the cache never leaves
//! it), the presents and logits left on the device, and only the last position's logits copied to
//! host memory the decoder keeps between steps (page-locked with `--pinned-io`, where the integer
//! inputs also go through page-locked buffers into GPU buffers of their own).

use anyhow::{anyhow, bail, Context, Result};
use ndarray::{Array2, ArrayView2};
use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::value::{DynTensor, DynValue, TensorElementType};

use super::cudart::{self, Direction, HostBuf};
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
    /// The last step's logits `[batch, vocab]`, in host memory kept between steps.
    logits: HostBuf,
    /// `--pinned-io` on the GPU: the integer inputs' page-locked buffers (ids, mask, positions)
    /// and ONNX Runtime's CUDA allocator for their GPU copies.
    pinned: Option<(Vec<HostBuf>, Allocator)>,
}

impl<'s> OrtDecoder<'s> {
    /// A decoder on `core`'s session; with `pinned` (`--pinned-io`, on the GPU only), every copy
    /// between host and GPU goes through page-locked memory.
    pub fn new(core: &'s mut Core, layout: &DecoderLayout, int32: bool, pinned: bool) -> Result<OrtDecoder<'s>> {
        let (slots, kv_heads, head_size) = roles(core, layout)?;
        let f16 = cache_type(layout)? == ElemType::Float16;
        let cuda = core.device.0 == AllocationDevice::CUDA;
        let device = MemoryInfo::new(core.device.0.clone(), core.device.1, AllocatorType::Device, MemoryType::Default)?;
        let pinned = if pinned && cuda {
            let alloc = Allocator::new(&core.session, MemoryInfo::new(AllocationDevice::CUDA, core.device.1, AllocatorType::Device, MemoryType::Default)?).map_err(|e| anyhow!("cannot get ONNX Runtime's CUDA allocator: {e}"))?;
            Some(((0..3).map(|_| HostBuf::new(true)).collect(), alloc))
        } else {
            None
        };
        let logits = HostBuf::new(pinned.is_some());
        Ok(OrtDecoder { core, layout: layout.clone(), slots, cache: Vec::new(), device, cuda, int32, kv_heads, head_size, f16, logits, pinned })
    }

    fn ints(&self, a: &Array2<i64>) -> Result<DynValue> {
        Ok(if self.int32 { ort::value::Tensor::from_array(a.mapv(|v| v as i32))?.into_dyn() } else { ort::value::Tensor::from_array(a.clone())?.into_dyn() })
    }

    /// `a` as a GPU tensor, copied through the `k`th page-locked buffer (`--pinned-io`).
    fn pinned_ints(&mut self, k: usize, a: &Array2<i64>) -> Result<DynValue> {
        let (bufs, alloc) = self.pinned.as_mut().expect("called with pinned buffers only");
        let ty = if self.int32 { TensorElementType::Int32 } else { TensorElementType::Int64 };
        let t = DynTensor::new(alloc, ty, vec![a.nrows() as i64, a.ncols() as i64]).map_err(|e| anyhow!("cannot allocate a GPU tensor of {:?} {ty:?}: {e}", a.dim()))?;
        let (src, bytes) = bufs[k].put_ints(a, self.int32)?;
        // SAFETY: the tensor holds `a`'s elements of `ty` on the GPU; `src` holds their bytes. A
        // copy from page-locked memory has landed when cudaMemcpy returns.
        unsafe { cudart::get()?.copy(t.data_ptr() as *mut _, src.cast(), bytes, Direction::HostToDevice)? };
        Ok(t.into_dyn())
    }

    fn empty_past(&self, batch: usize) -> Result<DynValue> {
        let shape = [batch, self.kv_heads, 0, self.head_size];
        Ok(if self.f16 {
            ort::value::Tensor::from_array(ndarray::Array4::<half::f16>::zeros(shape))?.into_dyn()
        } else {
            ort::value::Tensor::from_array(ndarray::Array4::<f32>::zeros(shape))?.into_dyn()
        })
    }

    /// The last position's logits of each row, copied into the decoder's host buffer as f32.
    fn last_logits(&mut self, logits: DynValue) -> Result<ArrayView2<'_, f32>> {
        let t: DynTensor = logits.downcast().map_err(|e| anyhow!("logits are not a tensor: {e}"))?;
        let shape: Vec<usize> = t.shape().iter().map(|&d| d as usize).collect();
        let [batch, n, vocab] = shape[..] else { bail!("logits have shape {shape:?}, not [batch, sequence, vocab]") };
        // SAFETY: the tensor holds batch × n × vocab elements of its type, on the GPU when `cuda`.
        unsafe { last_rows(t.data_ptr() as *const u8, [batch, n, vocab], *t.data_type(), self.cuda, &mut self.logits) }
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
/// `cuda`), copied into `host` as f32 `[batch, vocab]`.
///
/// # Safety
/// `base` must hold `batch × n × vocab` elements of `ty`, on the side `cuda` names.
pub(super) unsafe fn last_rows(base: *const u8, [batch, n, vocab]: [usize; 3], ty: TensorElementType, cuda: bool, host: &mut HostBuf) -> Result<ArrayView2<'_, f32>> {
    let size = logit_size(ty)?;
    let row_bytes = vocab * size;
    let values = host.reserve(batch * vocab * 4)?;
    let copy = |dst: *mut u8, src: *const u8, bytes: usize| -> Result<()> {
        if cuda {
            // SAFETY: as the caller promises for `src`; `dst` has room for `bytes` bytes.
            unsafe { cudart::get()?.copy(dst.cast(), src.cast(), bytes, Direction::DeviceToHost) }
        } else {
            // SAFETY: as above, in host memory.
            unsafe { std::ptr::copy_nonoverlapping(src, dst, bytes) };
            Ok(())
        }
    };
    if n == 1 && size == 4 {
        // A decode step's logits are one position per row: the rows lie end to end, one copy.
        copy(values, base, batch * row_bytes)?;
    } else {
        let mut half_row = if size == 2 { vec![half::f16::ZERO; vocab] } else { Vec::new() };
        for b in 0..batch {
            // SAFETY: row b's last position lies inside the caller's batch × n × vocab elements.
            let src = unsafe { base.add((b * n + n - 1) * row_bytes) };
            // SAFETY: `values` holds batch × vocab f32.
            let row = unsafe { values.add(b * vocab * 4) };
            if size == 4 {
                copy(row, src, row_bytes)?;
            } else {
                copy(half_row.as_mut_ptr().cast(), src, row_bytes)?;
                // SAFETY: as above; f32-aligned (the buffer is 4-byte aligned).
                let out = unsafe { std::slice::from_raw_parts_mut(row.cast::<f32>(), vocab) };
                for (v, h) in out.iter_mut().zip(&half_row) {
                    *v = h.to_f32();
                }
            }
        }
    }
    Ok(ArrayView2::from_shape((batch, vocab), host.f32s(batch * vocab))?)
}

impl Decoder for OrtDecoder<'_> {
    fn reset(&mut self) {
        self.cache.clear();
    }

    fn step(&mut self, step: &Step) -> Result<ArrayView2<'_, f32>> {
        let batch = step.ids.nrows();
        let first = self.cache.is_empty();
        let mut binding = self.core.session.create_binding()?;
        let mut held = Vec::new();
        let mut ints = vec![(self.layout.input_ids.clone(), step.ids)];
        if let Some(n) = &self.layout.attention_mask {
            ints.push((n.clone(), step.mask));
        }
        if let Some(n) = &self.layout.position_ids {
            ints.push((n.clone(), step.positions));
        }
        for (k, (name, a)) in ints.into_iter().enumerate() {
            let v = if self.pinned.is_some() { self.pinned_ints(k, a)? } else { self.ints(a)? };
            held.push((name, v));
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
        drop(held);
        self.cache = cache;
        self.last_logits(logits)
    }

    fn timer(&self) -> String {
        let dev = if self.cuda { "GPU" } else { "host memory" };
        let (ints, logits) = match (&self.pinned, self.cuda) {
            (Some(_), _) => ("copied through page-locked host buffers (cudaMemcpy) into GPU tensors and bound", "page-locked host memory kept for the decoder"),
            (None, true) => ("bound from host memory (ONNX Runtime copies them to the GPU)", "host memory kept for the decoder (pageable)"),
            (None, false) => ("bound", "host memory kept for the decoder"),
        };
        format!("ONNX Runtime (IO binding): token ids, mask and positions made on the host and {ints}, the past bound as the presents of the step before (left in {dev}), the step run, the last position's logits copied to {logits} as f32, the next ids picked on the host")
    }

    fn cache_bytes(&self) -> u64 {
        self.cache
            .iter()
            .filter_map(|v| v.dtype().tensor_shape().map(|s| s.iter().product::<i64>() as u64 * if self.f16 { 2 } else { 4 }))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_logits_are_each_rows_last_position_in_memory_kept_between_steps() {
        let mut host = HostBuf::new(false);
        // [batch 2, n 3, vocab 4] f32: row b's last position is values 8..12 and 20..24.
        let logits: Vec<f32> = (0..24).map(|v| v as f32).collect();
        let got = unsafe { last_rows(logits.as_ptr().cast(), [2, 3, 4], TensorElementType::Float32, false, &mut host) }.unwrap().to_owned();
        assert_eq!(got, ndarray::arr2(&[[8.0, 9.0, 10.0, 11.0], [20.0, 21.0, 22.0, 23.0]]));
        let kept = host.f32s(8).as_ptr();
        // A decode step (n = 1) of f16 logits lands in the same memory, converted.
        let half: Vec<half::f16> = [1.5f32, -2.0, 0.25, 7.0, 3.0, 4.0, 5.0, 6.0].iter().map(|&v| half::f16::from_f32(v)).collect();
        let got = unsafe { last_rows(half.as_ptr().cast(), [2, 1, 4], TensorElementType::Float16, false, &mut host) }.unwrap();
        assert_eq!(got, ndarray::arr2(&[[1.5, -2.0, 0.25, 7.0], [3.0, 4.0, 5.0, 6.0]]));
        assert_eq!(got.as_ptr(), kept, "no new memory for a step that fits");
        // Integer inputs as the decoder's int64 or int32 bytes, in logical order.
        let a = ndarray::arr2(&[[1i64, -2], [3, 4]]);
        let mut ints = HostBuf::new(false);
        let (p, n) = ints.put_ints(&a.t().to_owned(), false).unwrap();
        let bytes = unsafe { std::slice::from_raw_parts(p, n) };
        assert_eq!(bytes.chunks(8).map(|c| i64::from_ne_bytes(c.try_into().unwrap())).collect::<Vec<_>>(), [1, 3, -2, 4]);
        let (p, n) = ints.put_ints(&a, true).unwrap();
        let bytes = unsafe { std::slice::from_raw_parts(p, n) };
        assert_eq!(bytes.chunks(4).map(|c| i32::from_ne_bytes(c.try_into().unwrap())).collect::<Vec<_>>(), [1, -2, 3, 4]);
        assert!(unsafe { last_rows(logits.as_ptr().cast(), [1, 1, 4], TensorElementType::Int64, false, &mut host) }.is_err());
        // A mask one position longer each step: the buffer grows by doubling, not each step.
        let mut mask = HostBuf::new(false);
        let mut sizes = Vec::new();
        for n in 1..=40_000 {
            mask.reserve(n * 8).unwrap();
            if sizes.last() != Some(&mask.capacity()) {
                sizes.push(mask.capacity());
            }
        }
        assert_eq!(sizes, [64 << 10, 128 << 10, 256 << 10, 512 << 10]);
    }
}
