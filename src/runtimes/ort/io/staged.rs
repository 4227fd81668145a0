//! `--pinned-io` / `--cuda-graph`: every input and output has a buffer of its own (on the GPU for
//! ort-cuda), bound once per shape, and xbench makes the copies itself (see `Mover`): inputs from
//! the feed's arrays, outputs into host memory (page-locked for ort-cuda). End to end, both copies
//! are inside the timer; device-resident, neither is. With CUDA graphs, each shape's run is
//! captured once before timing and every timed run replays it.

use anyhow::{anyhow, bail, Context, Result};
use ort::logging::LogLevel;
use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::{IoBinding, RunOptions};
use ort::value::{DynTensor, TensorElementType, ValueType};

use super::super::cudart::{self, Direction, HostBuf};
use super::{convert, Core, IoMode};
use crate::inputs::Feed;
use crate::runtimes::Timing;
use crate::tensor::Output;

/// How a session stages its data, fixed at load.
pub(in crate::runtimes::ort) struct Staging {
    /// How bytes move between the feed, the bound buffers and host memory.
    mover: Mover,
    /// End to end: copy inputs in and outputs out on every run.
    copies: bool,
    /// Capture each shape's run in a CUDA graph and replay it.
    graph: bool,
    device: Allocator,
    graphs_captured: i32,
}

impl Staging {
    /// The staging of a session on the GPU (`cuda`) or in host memory, and how it reads in a
    /// session's record.
    pub fn new(core: &Core, cuda: bool, timing: Timing, graph: bool) -> Result<(Staging, String)> {
        let (mover, device, what) = if cuda {
            let rt = cudart::get()?;
            let mem = MemoryInfo::new(AllocationDevice::CUDA, core.device.1, AllocatorType::Device, MemoryType::Default)?;
            let device = Allocator::new(&core.session, mem).map_err(|e| anyhow!("cannot get ONNX Runtime's CUDA allocator: {e}"))?;
            (Mover::Cuda(rt), device, format!("GPU buffers of their own; the copies are cudaMemcpy ({}), outputs into page-locked host memory", rt.name))
        } else {
            (Mover::Host, Allocator::default(), "host buffers of their own; the copies are plain memory copies".to_string())
        };
        let io = format!(
            "inputs and outputs bound to {what}; {}{}",
            match timing {
                Timing::EndToEnd => "the timer covers copying the inputs in and the outputs out",
                Timing::DeviceResident => "no copies are timed",
            },
            if graph { "; each shape's run is captured once in a CUDA graph and replayed" } else { "" }
        );
        Ok((Staging { mover, copies: timing == Timing::EndToEnd, graph, device, graphs_captured: 0 }, io))
    }
}

/// Copies between host memory and bound buffers: the CUDA runtime for GPU buffers, plain memory
/// copies for host buffers (ort-cpu, where the path is the same but nothing crosses a bus).
#[derive(Clone, Copy)]
enum Mover {
    Cuda(&'static cudart::CudaRt),
    Host,
}

impl Mover {
    /// Host memory that outputs are copied to: page-locked for the GPU, plain otherwise.
    fn host_buf(self, bytes: usize) -> Result<HostBuf> {
        let mut host = HostBuf::new(matches!(self, Mover::Cuda(_)));
        host.reserve(bytes)?;
        Ok(host)
    }

    /// # Safety
    /// `dst` and `src` must be valid for `bytes` bytes on the sides `dir` names.
    unsafe fn copy(self, dst: *mut std::ffi::c_void, src: *const std::ffi::c_void, bytes: usize, dir: Direction) -> Result<()> {
        match self {
            Mover::Cuda(rt) => rt.copy(dst, src, bytes, dir),
            Mover::Host => {
                std::ptr::copy_nonoverlapping(src as *const u8, dst as *mut u8, bytes);
                Ok(())
            }
        }
    }
}

struct StagedOutput {
    device: DynTensor,
    host: HostBuf,
    bytes: usize,
    ty: TensorElementType,
    shape: Vec<usize>,
}

/// The buffers bound for one shape.
struct Buffers {
    shapes: Vec<Vec<usize>>,
    binding: IoBinding,
    inputs: Vec<(DynTensor, usize)>,
    outputs: Vec<StagedOutput>,
    run_options: RunOptions,
}

/// Fields drop in order: the buffers before the allocator that made them.
pub(in crate::runtimes::ort) struct Staged {
    current: Option<Buffers>,
    cfg: Staging,
}

impl Staged {
    pub fn new(cfg: Staging) -> Staged {
        Staged { current: None, cfg }
    }

    /// Allocates and binds buffers for `feed`'s shapes (untimed); with CUDA graphs, also makes
    /// the runs ONNX Runtime needs before it captures, so that every later run replays.
    fn stage(&mut self, core: &mut Core, feed: &Feed) -> Result<()> {
        let shapes: Vec<Vec<usize>> = feed.tensors.iter().map(|(_, t)| t.shape().to_vec()).collect();
        if self.current.as_ref().is_some_and(|s| s.shapes == shapes) {
            return Ok(());
        }
        self.current = None;
        let cfg = &mut self.cfg;
        let mover = cfg.mover;
        let mut binding = core.session.create_binding()?;
        let mut inputs = Vec::new();
        for ((name, t), shape) in feed.tensors.iter().zip(&shapes) {
            let (ty, ptr, bytes) = convert::host_view(name, t)?;
            let dev = DynTensor::new(&cfg.device, ty, shape.iter().map(|&d| d as i64).collect::<Vec<_>>())?;
            // SAFETY: `dev` was just allocated with exactly this shape and element type.
            unsafe { mover.copy(dev.data_ptr() as *mut _, ptr, bytes, Direction::HostToDevice)? };
            binding.bind_input(name.as_str(), &dev)?;
            inputs.push((dev, bytes));
        }
        // The outputs' shapes come from one run with outputs left to ONNX Runtime, outside any graph.
        let mem = MemoryInfo::new(core.device.0.clone(), core.device.1, AllocatorType::Device, MemoryType::Default)?;
        for name in &core.output_names {
            binding.bind_output_to_device(name.as_str(), &mem)?;
        }
        let mut probe = RunOptions::new()?;
        probe.set_log_level(LogLevel::Warning)?;
        if cfg.graph {
            probe.set("gpu_graph_id", "-1")?;
        }
        let learned: Vec<(TensorElementType, Vec<usize>)> = {
            let outs = core.session.run_binding_with_options(&binding, &probe)?;
            core.output_names
                .iter()
                .map(|n| match outs.get(n.as_str()).map(|v| v.dtype()) {
                    Some(ValueType::Tensor { ty, shape, .. }) => Ok((*ty, shape.iter().map(|&d| d.max(0) as usize).collect())),
                    Some(other) => bail!("output `{n}` is not a tensor ({other:?}); xbench reads tensor outputs only"),
                    None => bail!("ONNX Runtime returned no output `{n}`"),
                })
                .collect::<Result<_>>()?
        };
        binding.clear_outputs();
        let mut outputs = Vec::new();
        for (name, (ty, shape)) in core.output_names.iter().zip(learned) {
            let n: usize = shape.iter().product();
            let bytes = ty.byte_size(n).with_context(|| format!("output `{name}` has element type {ty:?}, which has no fixed size"))?;
            let mut device = DynTensor::new(&cfg.device, ty, shape.iter().map(|&d| d as i64).collect::<Vec<_>>())?;
            binding.bind_output(name.as_str(), &mut device)?;
            outputs.push(StagedOutput { device, host: mover.host_buf(bytes)?, bytes, ty, shape });
        }
        let mut run_options = RunOptions::new()?;
        run_options.set_log_level(LogLevel::Warning)?;
        if cfg.graph {
            cfg.graphs_captured += 1;
            run_options.set("gpu_graph_id", cfg.graphs_captured.to_string())?;
        }
        let graph = cfg.graph;
        self.current = Some(Buffers { shapes, binding, inputs, outputs, run_options });
        if graph {
            for _ in 0..super::super::GRAPH_RUNS_TO_CAPTURE {
                self.run_staged(core, feed)?;
            }
        }
        Ok(())
    }

    fn run_staged(&mut self, core: &mut Core, feed: &Feed) -> Result<()> {
        let (mover, copies) = (self.cfg.mover, self.cfg.copies);
        let st = self.current.as_mut().context("no buffers bound for this shape")?;
        if copies {
            for ((name, t), (dev, bytes)) in feed.tensors.iter().zip(&st.inputs) {
                let (_, ptr, _) = convert::host_view(name, t)?;
                // SAFETY: `dev` holds `bytes` bytes, allocated for this input's shape.
                unsafe { mover.copy(dev.data_ptr() as *mut _, ptr, *bytes, Direction::HostToDevice)? };
            }
        }
        let outs = core.session.run_binding_with_options(&st.binding, &st.run_options)?;
        st.binding.synchronize_outputs()?;
        drop(outs);
        if copies {
            for o in &mut st.outputs {
                // SAFETY: both buffers hold `o.bytes` bytes: the bound output and its host copy.
                unsafe { mover.copy(o.host.ptr().cast(), o.device.data_ptr(), o.bytes, Direction::DeviceToHost)? };
            }
        }
        Ok(())
    }
}

impl IoMode for Staged {
    fn prepare(&mut self, core: &mut Core, feed: &Feed) -> Result<()> {
        self.stage(core, feed)
    }

    fn run(&mut self, core: &mut Core, feed: &Feed) -> Result<()> {
        self.stage(core, feed)?;
        self.run_staged(core, feed)
    }

    /// The staged outputs as host tensors (device-resident runs copy them out first, untimed).
    fn outputs(&mut self, core: &mut Core, _feed: &Feed) -> Result<Vec<Output>> {
        let (mover, copies) = (self.cfg.mover, self.cfg.copies);
        let st = self.current.as_mut().context("no run has been made")?;
        let mut out = Vec::new();
        for (name, o) in core.output_names.iter().zip(&mut st.outputs) {
            if !copies {
                // SAFETY: as in `run_staged`.
                unsafe { mover.copy(o.host.ptr().cast(), o.device.data_ptr(), o.bytes, Direction::DeviceToHost)? };
            }
            out.push(Output { name: name.clone(), data: convert::bytes_to_tensor(name, o.ty, &o.shape, o.host.bytes(o.bytes))? });
        }
        Ok(out)
    }

    fn label(&self) -> String {
        let timing = if self.cfg.copies { Timing::EndToEnd } else { Timing::DeviceResident };
        let how = match (self.cfg.copies, self.cfg.mover) {
            (true, Mover::Cuda(_)) => "pinned copies",
            (true, Mover::Host) => "bound-buffer copies",
            (false, _) => "bound buffers",
        };
        format!("{} ({how}{})", timing.as_str(), if self.cfg.graph { ", CUDA graph" } else { "" })
    }
}
