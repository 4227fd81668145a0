//! Generation on ort-cuda with `--cuda-graph`: the prefill and each decode step replay a CUDA
//! graph of their own (one graph id per step index), every buffer they touch fixed for the cell as
//! `graph_plan` lays it out. A cell's preparation runs its generation three times, untimed: ONNX
//! Runtime runs each graph id twice as usual and captures it on the third run; every later run of
//! the id replays the graph. Before each step, the token ids, mask and positions made on the host
//! are copied into their GPU buffers; after it, the last position's logits are copied out.
//!
//! ONNX Runtime captures a session's graph only when all its nodes run on the CUDA provider (shape
//! computations on the CPU are allowed when no copy sits between them) and it has no control-flow
//! node (`If`, `Loop`): a session it will not capture fails its load with ONNX Runtime's reason.

use std::ffi::{c_void, CString};
use std::ptr::NonNull;

use anyhow::{anyhow, bail, Context, Result};
use ndarray::{Array2, ArrayView2};
use ort::logging::LogLevel;
use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::{IoBinding, RunOptions};
use ort::value::{DynTensor, TensorElementType, ValueType};
use ort::AsPointer;

use super::cudart::{self, CudaRt, Direction, HostBuf};
use super::decode::{last_rows, logit_size, roles};
use super::graph_plan::{Half, Plan};
use super::io::Core;
use super::GRAPH_RUNS_TO_CAPTURE;
use crate::models::DecoderLayout;
use crate::runtimes::decode::{cache_type, Decoder, Step};
use crate::tensor::ElemType;

/// An `OrtValue` that views GPU memory xbench owns: releasing it leaves the memory alone.
struct View(NonNull<ort::sys::OrtValue>);

impl Drop for View {
    fn drop(&mut self) {
        // SAFETY: the value was made by CreateTensorWithDataAsOrtValue and is released once.
        unsafe { (ort::api().ReleaseValue)(self.0.as_ptr()) }
    }
}

/// ONNX Runtime's status as a result (the status released).
fn check(status: ort::sys::OrtStatusPtr, what: &str) -> Result<()> {
    if status.0.is_null() {
        return Ok(());
    }
    // SAFETY: a status that is not null holds a message until it is released, once, here.
    let msg = unsafe {
        let m = std::ffi::CStr::from_ptr((ort::api().GetErrorMessage)(status.0)).to_string_lossy().into_owned();
        (ort::api().ReleaseStatus)(status.0);
        m
    };
    Err(anyhow!("{what}: {msg}"))
}

impl View {
    /// A tensor of `shape` and type `ty` over the memory at `data`.
    ///
    /// # Safety
    /// `data` must hold the shape's elements of `ty` on the device `mem` names, and stay allocated
    /// while the view is bound.
    unsafe fn new(mem: &MemoryInfo, data: *mut c_void, shape: &[usize], ty: TensorElementType) -> Result<View> {
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let bytes = ty.byte_size(shape.iter().product()).with_context(|| format!("{ty:?} has no fixed size"))?;
        let mut out = std::ptr::null_mut();
        let api = ort::api();
        check((api.CreateTensorWithDataAsOrtValue)(mem.ptr(), data, bytes, dims.as_ptr(), dims.len(), ty.into(), &mut out), "cannot view a GPU buffer as a tensor")?;
        Ok(View(NonNull::new(out).context("ONNX Runtime made no tensor over a GPU buffer")?))
    }
}

/// Binds `view` to `name` as it is (the `ort` crate's binding would copy a tensor it does not own,
/// which would move it).
fn bind(binding: &mut IoBinding, name: &str, view: &View, input: bool) -> Result<()> {
    let c = CString::new(name)?;
    let api = ort::api();
    let f = if input { api.BindInput } else { api.BindOutput };
    // SAFETY: the binding, the name and the value are valid; ONNX Runtime keeps its own reference.
    check(unsafe { f(binding.ptr_mut(), c.as_ptr(), view.0.as_ptr()) }, &format!("cannot bind `{name}` to its GPU buffer"))
}

/// One step's binding of the cell's buffers and its graph id.
struct StepGraph {
    binding: IoBinding,
    _views: Vec<View>,
    options: RunOptions,
}

/// A cell's GPU buffers and its steps' graphs. Fields drop in order: the bindings and views
/// before the buffers they view.
struct Cell {
    plan: Plan,
    steps: Vec<Option<StepGraph>>,
    /// Runs of each step's graph id so far.
    runs: Vec<usize>,
    /// Per cache tensor (in the slots' order), buffers A and B.
    cache: Vec<[DynTensor; 2]>,
    ids: DynTensor,
    mask: DynTensor,
    positions: DynTensor,
    branch: DynTensor,
    logits: DynTensor,
}

fn dev(t: &DynTensor) -> *mut c_void {
    t.data_ptr() as *mut c_void
}

pub(super) struct GraphDecoder<'s> {
    cell: Option<Cell>,
    core: &'s mut Core,
    alloc: Allocator,
    mem: MemoryInfo<'static>,
    rt: &'static CudaRt,
    layout: DecoderLayout,
    slots: Vec<(String, String)>,
    int_ty: TensorElementType,
    cache_ty: TensorElementType,
    logits_ty: TensorElementType,
    kv_heads: usize,
    head_size: usize,
    vocab: usize,
    next_id: i32,
    /// Graphs captured by this decoder, over all its cells.
    captured: usize,
    /// The next step of the generation under way.
    k: usize,
    /// Page-locked host memory the integer inputs are copied from (ids, mask, positions) and the
    /// logits copied to.
    ints: [HostBuf; 3],
    logits: HostBuf,
}

impl<'s> GraphDecoder<'s> {
    pub fn new(core: &'s mut Core, layout: &DecoderLayout, int32: bool) -> Result<GraphDecoder<'s>> {
        if core.device.0 != AllocationDevice::CUDA {
            bail!("CUDA graphs are an ort-cuda mode\n  fix: generate without --cuda-graph");
        }
        let (slots, kv_heads, head_size) = roles(core, layout)?;
        let vocab = layout.vocab.ok_or_else(|| anyhow!("the logits do not say the vocabulary size (their last dim is not a fixed number), so their GPU buffer cannot be made before the first step\n  fix: generate without --cuda-graph"))?;
        let cache_ty = if cache_type(layout)? == ElemType::Float16 { TensorElementType::Float16 } else { TensorElementType::Float32 };
        let logits_ty = match core.session.outputs().iter().find(|o| o.name() == layout.logits).map(|o| o.dtype()) {
            Some(ValueType::Tensor { ty, .. }) => *ty,
            _ => bail!("the decoder has no tensor output `{}`", layout.logits),
        };
        logit_size(logits_ty)?;
        let bound: Vec<&str> = slots.iter().map(|(_, p)| p.as_str()).chain([layout.logits.as_str()]).collect();
        if let Some(o) = core.session.outputs().iter().find(|o| !bound.contains(&o.name())) {
            bail!("decoder output `{}` is neither the logits nor a present: ONNX Runtime would allocate it during each step, which a CUDA graph cannot replay\n  fix: generate without --cuda-graph", o.name());
        }
        let mem = MemoryInfo::new(AllocationDevice::CUDA, core.device.1, AllocatorType::Device, MemoryType::Default)?;
        let alloc = Allocator::new(&core.session, MemoryInfo::new(AllocationDevice::CUDA, core.device.1, AllocatorType::Device, MemoryType::Default)?).map_err(|e| anyhow!("cannot get ONNX Runtime's CUDA allocator: {e}"))?;
        let int_ty = if int32 { TensorElementType::Int32 } else { TensorElementType::Int64 };
        let rt = cudart::get()?;
        Ok(GraphDecoder {
            cell: None,
            core,
            alloc,
            mem,
            rt,
            layout: layout.clone(),
            slots,
            int_ty,
            cache_ty,
            logits_ty,
            kv_heads,
            head_size,
            vocab,
            next_id: 1,
            captured: 0,
            k: 0,
            ints: [HostBuf::new(true), HostBuf::new(true), HostBuf::new(true)],
            logits: HostBuf::new(true),
        })
    }

    fn buffer(&self, ty: TensorElementType, elems: usize) -> Result<DynTensor> {
        DynTensor::new(&self.alloc, ty, vec![elems.max(1) as i64]).map_err(|e| anyhow!("cannot allocate a GPU buffer of {elems} {ty:?} elements for the CUDA graphs: {e}"))
    }

    /// The buffers of a cell of these shapes; its graph ids follow the last cell's.
    fn cell(&mut self, batch: usize, prompt: usize, new_tokens: usize) -> Result<Cell> {
        let plan = Plan { batch, prompt, new_tokens, kv_heads: self.kv_heads, head_size: self.head_size, vocab: self.vocab, first_id: self.next_id };
        self.next_id = plan.next_id();
        let cache = (0..self.slots.len()).map(|_| Ok([self.buffer(self.cache_ty, plan.cache_elems())?, self.buffer(self.cache_ty, plan.cache_elems())?])).collect::<Result<_>>()?;
        Ok(Cell {
            steps: (0..plan.steps()).map(|_| None).collect(),
            runs: vec![0; plan.steps()],
            cache,
            ids: self.buffer(self.int_ty, plan.ids_elems())?,
            mask: self.buffer(self.int_ty, plan.mask_elems())?,
            positions: self.buffer(self.int_ty, plan.ids_elems())?,
            branch: self.buffer(TensorElementType::Bool, 1)?,
            logits: self.buffer(self.logits_ty, plan.logits_elems())?,
            plan,
        })
    }

    /// Step `k`'s binding of the cell's buffers, viewed at its shapes, and its graph id.
    fn bind_step(&self, cell: &Cell, k: usize) -> Result<StepGraph> {
        let (p, l) = (&cell.plan, &self.layout);
        let s = p.step(k).context("a step past the cell's last")?;
        let mut binding = self.core.session.create_binding()?;
        let mut views = Vec::new();
        let mut add = |name: &str, data: *mut c_void, shape: &[usize], ty: TensorElementType, input: bool| -> Result<()> {
            // SAFETY: `graph_plan` sizes every buffer for the largest view a step takes of it
            // (tested there); the cell keeps its buffers while the bindings live.
            let v = unsafe { View::new(&self.mem, data, shape, ty)? };
            bind(&mut binding, name, &v, input)?;
            views.push(v);
            Ok(())
        };
        add(&l.input_ids, dev(&cell.ids), &[p.batch, s.tokens], self.int_ty, true)?;
        if let Some(n) = &l.attention_mask {
            add(n, dev(&cell.mask), &[p.batch, s.present], self.int_ty, true)?;
        }
        if let Some(n) = &l.position_ids {
            add(n, dev(&cell.positions), &[p.batch, s.tokens], self.int_ty, true)?;
        }
        if let Some(n) = &l.use_cache_branch {
            add(n, dev(&cell.branch), &[1], TensorElementType::Bool, true)?;
        }
        let half = |bufs: &[DynTensor; 2], h: Half| dev(&bufs[if h == Half::A { 0 } else { 1 }]);
        for ((past, present), bufs) in self.slots.iter().zip(&cell.cache) {
            add(past, half(bufs, s.reads), &p.cache_shape(s.past), self.cache_ty, true)?;
            add(present, half(bufs, s.writes), &p.cache_shape(s.present), self.cache_ty, false)?;
        }
        add(&l.logits, dev(&cell.logits), &[p.batch, s.tokens, p.vocab], self.logits_ty, false)?;
        let mut options = RunOptions::new()?;
        options.set_log_level(LogLevel::Warning)?;
        options.set("gpu_graph_id", s.graph_id.to_string())?;
        Ok(StepGraph { binding, _views: views, options })
    }

    /// Copies `a` (in its logical order) into the integer buffer `dst`, through page-locked
    /// buffer `k` (a copy from page-locked memory has landed when cudaMemcpy returns).
    fn put(&mut self, k: usize, dst: &DynTensor, a: &Array2<i64>) -> Result<()> {
        let (src, bytes) = self.ints[k].put_ints(a, self.int_ty == TensorElementType::Int32)?;
        // SAFETY: the caller checked `a`'s shape against the step's view of `dst`, which fits it.
        unsafe { self.rt.copy(dev(dst), src.cast(), bytes, Direction::HostToDevice) }
    }

    /// Step `self.k` of the generation under way, on `cell`'s buffers; the step's tokens per row.
    fn run_step(&mut self, cell: &mut Cell, step: &Step) -> Result<usize> {
        let k = self.k;
        let p = cell.plan.clone();
        let s = p.step(k).with_context(|| format!("step {k} is past the {} steps the CUDA graphs were prepared for", p.steps()))?;
        let want = [(p.batch, s.tokens), (p.batch, s.present), (p.batch, s.tokens)];
        let got = [step.ids.dim(), step.mask.dim(), step.positions.dim()];
        if got != want {
            bail!("step {k}'s ids, mask and positions are {got:?}, not the {want:?} its CUDA graph was prepared for");
        }
        self.put(0, &cell.ids, step.ids)?;
        if self.layout.attention_mask.is_some() {
            self.put(1, &cell.mask, step.mask)?;
        }
        if self.layout.position_ids.is_some() {
            self.put(2, &cell.positions, step.positions)?;
        }
        let branch = [u8::from(k > 0)];
        // SAFETY: the branch buffer holds one bool.
        unsafe { self.rt.copy(dev(&cell.branch), branch.as_ptr().cast(), 1, Direction::HostToDevice)? };
        self.rt.synchronize()?;
        if cell.steps[k].is_none() {
            cell.steps[k] = Some(self.bind_step(cell, k)?);
        }
        let g = cell.steps[k].as_ref().expect("bound just above");
        let capture = cell.runs[k] + 1 == GRAPH_RUNS_TO_CAPTURE;
        let outs = self.core.session.run_binding_with_options(&g.binding, &g.options).map_err(|e| {
            if capture {
                anyhow!("ONNX Runtime could not capture step {k}'s CUDA graph (graph id {}): {e}\n  fix: generate without --cuda-graph", s.graph_id)
            } else {
                anyhow!("ONNX Runtime's decoder step {k} (graph id {}) failed: {e}\n  fix: generate without --cuda-graph to see whether the graphs are the cause", s.graph_id)
            }
        })?;
        drop(outs);
        g.binding.synchronize_outputs()?;
        cell.runs[k] += 1;
        if capture {
            self.captured += 1;
        }
        Ok(s.tokens)
    }
}

impl Decoder for GraphDecoder<'_> {
    fn reset(&mut self) {
        self.k = 0;
    }

    fn prepare(&mut self, batch: usize, prompt: usize, new_tokens: usize) -> Result<usize> {
        if let Some(c) = self.cell.as_ref().filter(|c| c.plan.fits(batch, prompt, new_tokens)) {
            return Ok(GRAPH_RUNS_TO_CAPTURE.saturating_sub(c.runs.iter().copied().min().unwrap_or(0)));
        }
        // Another cell's graphs are never replayed again: their buffers go before the new ones come.
        self.cell = None;
        self.cell = Some(self.cell(batch, prompt, new_tokens)?);
        Ok(GRAPH_RUNS_TO_CAPTURE)
    }

    fn step(&mut self, step: &Step) -> Result<ArrayView2<'_, f32>> {
        let mut cell = self.cell.take().context("ort-cuda's CUDA-graph decoder has no buffers for this cell (it was not prepared)")?;
        let result = self.run_step(&mut cell, step);
        self.k += 1;
        let cell = self.cell.insert(cell);
        let tokens = result?;
        let p = &cell.plan;
        // SAFETY: the logits buffer holds the step's [batch, tokens, vocab] logits on the GPU.
        unsafe { last_rows(dev(&cell.logits) as *const u8, [p.batch, tokens, p.vocab], self.logits_ty, true, &mut self.logits) }
    }

    fn timer(&self) -> String {
        let (graphs, longest) = self.cell.as_ref().map_or((0, 0), |c| (c.plan.steps(), c.plan.capacity()));
        format!(
            "ONNX Runtime (IO binding, CUDA graphs): token ids, mask and positions made on the host and copied through page-locked host buffers (cudaMemcpy, {}) into GPU buffers that never move, the prefill and each decode step replaying a CUDA graph of its own ({graphs} graphs for this cell, one per step index, each run twice and captured on the third in the cell's preparation; {} captured by this session), the cache kept on the GPU in two buffers per cache tensor of the cell's longest cache ({longest} positions), each step reading its past from one and writing its present into the other, the last position's logits copied to page-locked host memory kept for the decoder, as f32, the next ids picked on the host",
            self.rt.name, self.captured
        )
    }

    fn cache_bytes(&self) -> u64 {
        let Some(c) = &self.cell else { return 0 };
        let Some(last) = self.k.checked_sub(1).and_then(|k| c.plan.step(k)) else { return 0 };
        let elems: usize = c.plan.cache_shape(last.present).iter().product();
        (elems * self.slots.len() * if self.cache_ty == TensorElementType::Float16 { 2 } else { 4 }) as u64
    }
}
