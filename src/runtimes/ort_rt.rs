//! ONNX Runtime through the `ort` crate, loaded dynamically, with exactly one execution provider
//! per runtime: registration must succeed or loading fails (no silent fallback to CPU).

use std::borrow::Cow;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{anyhow, bail, Context, Result};
use ort::ep::{self, ExecutionProvider};
use ort::environment::Environment;
use ort::logging::LogLevel;
use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::{IoBinding, RunOptions, Session as OrtInner, SessionInputValue};
use ort::value::{DynTensor, DynValue, Tensor, TensorElementType, TensorRef, ValueType};

use super::cudart::{self, Direction};
use super::ort_lib::{find_ort_library, OrtLibrary};
use super::{Availability, Output, RuntimeId, RuntimeOptions, Session, SessionInfo, Timing};
use crate::inputs::{Feed, HostTensor};
use crate::models::ModelSpec;

struct Loaded {
    env: Environment,
    lib: OrtLibrary,
    version: String,
}

static LOADED: OnceLock<std::result::Result<Loaded, String>> = OnceLock::new();

/// ONNX Runtime's log messages, collected while a session is being created (to read node placement).
static CAPTURED_LOG: Mutex<Option<Vec<String>>> = Mutex::new(None);

fn capture_log(_level: LogLevel, _category: &str, _id: &str, _location: &str, message: &str) {
    if let Ok(mut guard) = CAPTURED_LOG.lock() {
        if let Some(lines) = guard.as_mut() {
            lines.push(message.to_string());
        }
    }
}

/// Nodes per execution provider, read from ONNX Runtime's verbose "placed on [EP]. Number of nodes: N" lines.
pub fn parse_placement(log: &[String]) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for line in log.iter().flat_map(|m| m.lines()) {
        let Some(at) = line.find("placed on [") else { continue };
        let rest = &line[at + "placed on [".len()..];
        let Some(end) = rest.find(']') else { continue };
        let ep = rest[..end].to_string();
        let count = rest[end..]
            .split("Number of nodes:")
            .nth(1)
            .and_then(|n| n.trim().split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0);
        match out.iter_mut().find(|(e, _)| *e == ep) {
            Some((_, n)) => *n += count,
            None => out.push((ep, count)),
        }
    }
    out
}

/// Loads the library once per process; later calls return the same outcome.
fn loaded(opts: &RuntimeOptions) -> std::result::Result<&'static Loaded, String> {
    LOADED
        .get_or_init(|| {
            let lib = find_ort_library(opts.ort_lib.as_deref())?;
            let builder = ort::init_from(&lib.path).map_err(|e| {
                format!(
                    "cannot load ONNX Runtime from {} (found by {}): {e}\n  fix: use ONNX Runtime {} (`xbench setup ort`), or pass --ort-lib PATH",
                    lib.path.display(),
                    lib.found_by,
                    super::ORT_VERSION
                )
            })?;
            let env = builder
                .with_name("xbench")
                .with_logger(Arc::new(capture_log))
                .build()
                .map_err(|e| format!("cannot create the ONNX Runtime environment: {e}"))?;
            let version = library_version(&lib.path).unwrap_or_else(|| "unknown".into());
            Ok(Loaded { env, lib, version })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The process's ONNX Runtime environment (loading the library on first use), for code that
/// drives `ort` directly beside xbench, such as the overhead benchmark.
pub fn environment(opts: &RuntimeOptions) -> Result<&'static Environment> {
    loaded(opts).map(|l| &l.env).map_err(|e| anyhow!(e))
}

/// The version the library reports through its API base (`OrtGetApiBase()->GetVersionString()`).
fn library_version(path: &std::path::Path) -> Option<String> {
    // SAFETY: the library is ONNX Runtime (ort has just loaded it from this path); `OrtGetApiBase`
    // returns a pointer to a static struct whose second member returns a static C string.
    unsafe {
        let lib = libloading::Library::new(path).ok()?;
        let get_base: libloading::Symbol<unsafe extern "C" fn() -> *const ort::sys::OrtApiBase> = lib.get(b"OrtGetApiBase").ok()?;
        let base = get_base();
        if base.is_null() {
            return None;
        }
        let s = ((*base).GetVersionString)();
        if s.is_null() {
            return None;
        }
        Some(std::ffi::CStr::from_ptr(s).to_string_lossy().into_owned())
    }
}

fn provider(id: RuntimeId, opts: &RuntimeOptions) -> ep::ExecutionProviderDispatch {
    match id {
        RuntimeId::OrtCuda => ep::CUDA::default()
            .with_device_id(opts.device_id as i32)
            .with_cuda_graph(opts.cuda_graph)
            .with_tf32(!opts.no_tf32)
            .build()
            .error_on_failure(),
        RuntimeId::OrtCoreml => ep::CoreML::default().build().error_on_failure(),
        _ => ep::CPU::default().build().error_on_failure(),
    }
}

fn provider_name(id: RuntimeId) -> &'static str {
    match id {
        RuntimeId::OrtCuda => ep::CUDA::NAME,
        RuntimeId::OrtCoreml => ep::CoreML::NAME,
        _ => ep::CPU::NAME,
    }
}

/// Whether this build of the library has the provider at all.
fn provider_compiled_in(id: RuntimeId) -> std::result::Result<bool, String> {
    let r = match id {
        RuntimeId::OrtCuda => ep::CUDA::is_available(),
        RuntimeId::OrtCoreml => ep::CoreML::is_available(),
        _ => ep::CPU::is_available(),
    };
    r.map_err(|e| e.to_string())
}

pub fn check(id: RuntimeId, opts: &RuntimeOptions) -> Availability {
    let na = |detail: String, version: Option<String>| Availability { runtime: id, usable: false, version, detail };
    if id == RuntimeId::OrtCoreml && !cfg!(target_os = "macos") {
        return na("CoreML: macOS only (this machine runs another OS)".into(), None);
    }
    let l = match loaded(opts) {
        Ok(l) => l,
        Err(e) => return na(e, None),
    };
    let version = Some(l.version.clone());
    match provider_compiled_in(id) {
        Ok(true) => {}
        Ok(false) => {
            let fix = match id {
                RuntimeId::OrtCuda => "use the CUDA build of ONNX Runtime (`xbench setup ort --gpu`, then --ort-lib) on a machine with an NVIDIA GPU",
                _ => "use an ONNX Runtime build that includes it",
            };
            return na(format!("{} provider not in this build of ONNX Runtime ({})\n  fix: {fix}", provider_name(id), l.lib.path.display()), version);
        }
        Err(e) => return na(format!("cannot ask ONNX Runtime for its providers: {e}"), version),
    }
    // Registering on a throwaway builder catches missing CUDA/cuDNN libraries and absent devices.
    let registered = OrtInner::builder(&l.env)
        .map_err(|e| e.to_string())
        .and_then(|mut b| provider(id, opts).register(&mut b).map_err(|e| e.to_string()));
    match registered {
        Ok(()) => Availability {
            runtime: id,
            usable: true,
            version,
            detail: format!("{} via {} ({})", provider_name(id), l.lib.path.display(), l.lib.found_by),
        },
        Err(e) => na(format!("{} provider failed to register: {e}", provider_name(id)), version),
    }
}

/// Inputs bound once for device-resident timing.
struct Bound {
    binding: IoBinding,
    shapes: Vec<Vec<usize>>,
    _inputs: Vec<DynValue>,
}

/// `--pinned-io` / `--cuda-graph`: every input and output has a buffer of its own (on the GPU for
/// ort-cuda), bound once per shape, and xbench makes the copies itself (see `Mover`): inputs from
/// the feed's arrays, outputs into host memory (page-locked for ort-cuda). End to end, both copies
/// are inside the timer; device-resident, neither is.
struct Staging {
    /// How bytes move between the feed, the bound buffers and host memory.
    mover: Mover,
    /// End to end: copy inputs in and outputs out on every run.
    copies: bool,
    /// Capture each shape's run in a CUDA graph and replay it.
    graph: bool,
    device: Allocator,
    graphs_captured: i32,
}

/// Copies between host memory and bound buffers: the CUDA runtime for GPU buffers, plain memory
/// copies for host buffers (ort-cpu, where the path is the same but nothing crosses a bus).
#[derive(Clone, Copy)]
enum Mover {
    Cuda(&'static cudart::CudaRt),
    Host,
}

/// Host memory that outputs are copied to: page-locked for the GPU, plain otherwise.
enum HostBuf {
    Pinned(cudart::PinnedBuf),
    Plain(Vec<u8>),
}

impl HostBuf {
    fn ptr(&mut self) -> *mut std::ffi::c_void {
        match self {
            HostBuf::Pinned(p) => p.ptr(),
            HostBuf::Plain(v) => v.as_mut_ptr() as *mut _,
        }
    }
    fn as_bytes(&self) -> &[u8] {
        match self {
            HostBuf::Pinned(p) => p.as_bytes(),
            HostBuf::Plain(v) => v,
        }
    }
}

impl Mover {
    fn host_buf(self, bytes: usize) -> Result<HostBuf> {
        Ok(match self {
            Mover::Cuda(rt) => HostBuf::Pinned(rt.pinned(bytes)?),
            Mover::Host => HostBuf::Plain(vec![0; bytes]),
        })
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

struct Staged {
    shapes: Vec<Vec<usize>>,
    binding: IoBinding,
    inputs: Vec<(DynTensor, usize)>,
    outputs: Vec<StagedOutput>,
    run_options: RunOptions,
}

/// Fields drop in order: bound values before the allocator and session that made them.
pub struct OrtSession {
    staged: Option<Staged>,
    bound: Option<Bound>,
    /// Outputs of the last end-to-end run, in host memory.
    last: Vec<DynValue>,
    staging: Option<Staging>,
    session: OrtInner,
    timing: Timing,
    /// Where bound inputs and outputs live: the GPU for CUDA, host memory otherwise.
    device: (AllocationDevice<'static>, i32),
    /// Keeps run-time logging at warnings, whatever the session's level was while it was created.
    run_options: RunOptions,
    output_names: Vec<String>,
    info: SessionInfo,
}

impl OrtSession {
    pub fn load(id: RuntimeId, model: &ModelSpec, opts: &RuntimeOptions) -> Result<OrtSession> {
        let l = loaded(opts).map_err(|e| anyhow!(e))?;
        let threads = opts.threads.unwrap_or_else(default_threads);
        let mut builder = OrtInner::builder(&l.env)
            .map_err(|e| anyhow!("{e}"))?
            .with_intra_threads(threads)
            .map_err(ort::Error::<()>::from)?
            .with_execution_providers([provider(id, opts)])
            .map_err(|e| anyhow!("{} provider failed to register: {}", provider_name(id), ort::Error::<()>::from(e)))?
            .with_log_level(LogLevel::Verbose)
            .map_err(ort::Error::<()>::from)?;
        *CAPTURED_LOG.lock().unwrap_or_else(|p| p.into_inner()) = Some(Vec::new());
        let committed = builder.commit_from_file(&model.onnx);
        let log = CAPTURED_LOG.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or_default();
        let session = committed.map_err(|e| anyhow!("ONNX Runtime cannot load {}: {e}", model.onnx.display()))?;
        let placement = parse_placement(&log);
        let wanted = provider_name(id);
        let total: usize = placement.iter().map(|(_, n)| n).sum();
        if placement.is_empty() {
            bail!("ONNX Runtime did not report where the graph's nodes were placed, so {wanted} cannot be confirmed to run them");
        }
        if !placement.iter().any(|(ep, n)| ep == wanted && *n > 0) {
            bail!(
                "{wanted} was asked for but took none of the graph's {total} nodes (placement: {})\n  fix: the model's operators are not supported by this provider; use another runtime",
                placement.iter().map(|(ep, n)| format!("{ep} {n}")).collect::<Vec<_>>().join(", ")
            );
        }
        let mut run_options = RunOptions::new()?;
        run_options.set_log_level(LogLevel::Warning)?;
        let output_names = session.outputs().iter().map(|o| o.name().to_string()).collect();
        let info = SessionInfo {
            threads: if id == RuntimeId::OrtCuda {
                // Which arithmetic fp32 matrix products use is part of what the numbers mean.
                format!("intra-op {threads}, inter-op 1, spinning on; fp32 matrix products in {}", if opts.no_tf32 { "fp32 (TF32 off)" } else { "TF32 (ONNX Runtime's default)" })
            } else {
                format!("intra-op {threads}, inter-op 1, spinning on")
            },
            providers: vec![provider_name(id).to_string()],
            version: l.version.clone(),
            placement,
            io: None,
        };
        let device = if id == RuntimeId::OrtCuda { (AllocationDevice::CUDA, opts.device_id as i32) } else { (AllocationDevice::CPU, 0) };
        let mut info = info;
        // CUDA graphs are an ort-cuda setting; other providers run as they would without it.
        let graph = opts.cuda_graph && id == RuntimeId::OrtCuda;
        let staging = if opts.pinned_io || graph {
            let (mover, device, what) = if id == RuntimeId::OrtCuda {
                let rt = cudart::get()?;
                let mem = MemoryInfo::new(AllocationDevice::CUDA, opts.device_id as i32, AllocatorType::Device, MemoryType::Default)?;
                let device = Allocator::new(&session, mem).map_err(|e| anyhow!("cannot get ONNX Runtime's CUDA allocator: {e}"))?;
                (Mover::Cuda(rt), device, format!("GPU buffers of their own; the copies are cudaMemcpy ({}), outputs into page-locked host memory", rt.name))
            } else {
                (Mover::Host, Allocator::default(), "host buffers of their own; the copies are plain memory copies".to_string())
            };
            info.io = Some(format!(
                "inputs and outputs bound to {what}; {}{}",
                match opts.timing {
                    Timing::EndToEnd => "the timer covers copying the inputs in and the outputs out",
                    Timing::DeviceResident => "no copies are timed",
                },
                if graph { "; each shape's run is captured once in a CUDA graph and replayed" } else { "" }
            ));
            Some(Staging { mover, copies: opts.timing == Timing::EndToEnd, graph, device, graphs_captured: 0 })
        } else {
            None
        };
        Ok(OrtSession { staged: None, bound: None, last: Vec::new(), staging, session, timing: opts.timing, device, run_options, output_names, info })
    }
}

/// Threads used when the scenario sets none: the cores the process may use.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn host_tensor<T: ort::value::PrimitiveTensorElementType + Clone + std::fmt::Debug + 'static>(
    a: &ndarray::ArrayD<T>,
    device: &(AllocationDevice<'static>, i32),
) -> Result<DynValue> {
    let t = Tensor::from_array(a.clone())?;
    Ok(if device.0 == AllocationDevice::CPU { t.into_dyn() } else { t.to(device.0.clone(), device.1)?.into_dyn() })
}

impl OrtSession {
    /// Binds `feed`'s inputs on the device and its outputs to device memory (untimed).
    fn bind(&mut self, feed: &Feed) -> Result<()> {
        let shapes: Vec<Vec<usize>> = feed.tensors.iter().map(|(_, t)| t.shape().to_vec()).collect();
        if self.bound.as_ref().is_some_and(|b| b.shapes == shapes) {
            return Ok(());
        }
        self.bound = None;
        let mut binding = self.session.create_binding()?;
        let mut inputs = Vec::new();
        for (name, t) in &feed.tensors {
            let v = match t {
                HostTensor::I64(a) => host_tensor(a, &self.device)?,
                HostTensor::I32(a) => host_tensor(a, &self.device)?,
                HostTensor::F32(a) => host_tensor(a, &self.device)?,
            };
            binding.bind_input(name.as_str(), &v)?;
            inputs.push(v);
        }
        let mem = MemoryInfo::new(self.device.0.clone(), self.device.1, AllocatorType::Device, MemoryType::Default)?;
        for name in &self.output_names {
            binding.bind_output_to_device(name.as_str(), &mem)?;
        }
        self.bound = Some(Bound { binding, shapes, _inputs: inputs });
        Ok(())
    }

    /// One run with host inputs; the outputs, in host memory as ONNX Runtime returned them, are kept.
    fn run_host(&mut self, feed: &Feed) -> Result<()> {
        let mut inputs: Vec<(Cow<'_, str>, SessionInputValue<'_>)> = Vec::with_capacity(feed.tensors.len());
        for (name, t) in &feed.tensors {
            let v: SessionInputValue<'_> = match t {
                HostTensor::I64(a) => TensorRef::from_array_view(a.view())?.into(),
                HostTensor::I32(a) => TensorRef::from_array_view(a.view())?.into(),
                HostTensor::F32(a) => TensorRef::from_array_view(a.view())?.into(),
            };
            inputs.push((Cow::Borrowed(name.as_str()), v));
        }
        let mut outputs = self.session.run_with_options(inputs, &self.run_options)?;
        self.last.clear();
        for name in &self.output_names {
            self.last.push(outputs.remove(name.as_str()).with_context(|| format!("ONNX Runtime returned no output `{name}`"))?);
        }
        Ok(())
    }
}

/// An input's element type, host address and size in bytes.
fn host_view(t: &HostTensor) -> (TensorElementType, *const std::ffi::c_void, usize) {
    fn view<T>(a: &ndarray::ArrayD<T>) -> (*const std::ffi::c_void, usize) {
        assert!(a.is_standard_layout(), "feeds are built in standard layout");
        (a.as_ptr() as *const std::ffi::c_void, a.len() * std::mem::size_of::<T>())
    }
    match t {
        HostTensor::I64(a) => (TensorElementType::Int64, view(a).0, view(a).1),
        HostTensor::I32(a) => (TensorElementType::Int32, view(a).0, view(a).1),
        HostTensor::F32(a) => (TensorElementType::Float32, view(a).0, view(a).1),
    }
}

impl OrtSession {
    /// Allocates and binds GPU buffers for `feed`'s shapes (untimed); with CUDA graphs, also
    /// makes the runs ONNX Runtime needs before it captures, so that every later run replays.
    fn stage(&mut self, feed: &Feed) -> Result<()> {
        let shapes: Vec<Vec<usize>> = feed.tensors.iter().map(|(_, t)| t.shape().to_vec()).collect();
        if self.staged.as_ref().is_some_and(|s| s.shapes == shapes) {
            return Ok(());
        }
        self.staged = None;
        let cfg = self.staging.as_mut().expect("staging is set for staged sessions");
        let mover = cfg.mover;
        let mut binding = self.session.create_binding()?;
        let mut inputs = Vec::new();
        for ((name, t), shape) in feed.tensors.iter().zip(&shapes) {
            let (ty, ptr, bytes) = host_view(t);
            let dev = DynTensor::new(&cfg.device, ty, shape.iter().map(|&d| d as i64).collect::<Vec<_>>())?;
            // SAFETY: `dev` was just allocated with exactly this shape and element type.
            unsafe { mover.copy(dev.data_ptr() as *mut _, ptr, bytes, Direction::HostToDevice)? };
            binding.bind_input(name.as_str(), &dev)?;
            inputs.push((dev, bytes));
        }
        // The outputs' shapes come from one run with outputs left to ONNX Runtime, outside any graph.
        let mem = MemoryInfo::new(self.device.0.clone(), self.device.1, AllocatorType::Device, MemoryType::Default)?;
        for name in &self.output_names {
            binding.bind_output_to_device(name.as_str(), &mem)?;
        }
        let mut probe = RunOptions::new()?;
        probe.set_log_level(LogLevel::Warning)?;
        if cfg.graph {
            probe.set("gpu_graph_id", "-1")?;
        }
        let learned: Vec<(TensorElementType, Vec<usize>)> = {
            let outs = self.session.run_binding_with_options(&binding, &probe)?;
            self.output_names
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
        for (name, (ty, shape)) in self.output_names.iter().zip(learned) {
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
        self.staged = Some(Staged { shapes, binding, inputs, outputs, run_options });
        if graph {
            // ONNX Runtime runs a graph id twice as usual and captures it on the third run.
            for _ in 0..3 {
                self.run_staged(feed)?;
            }
        }
        Ok(())
    }

    fn run_staged(&mut self, feed: &Feed) -> Result<()> {
        let cfg = self.staging.as_ref().expect("staging is set for staged sessions");
        let (mover, copies) = (cfg.mover, cfg.copies);
        let st = self.staged.as_mut().context("no buffers bound for this shape")?;
        if copies {
            for ((_, t), (dev, bytes)) in feed.tensors.iter().zip(&st.inputs) {
                let (_, ptr, _) = host_view(t);
                // SAFETY: `dev` holds `bytes` bytes, allocated for this input's shape.
                unsafe { mover.copy(dev.data_ptr() as *mut _, ptr, *bytes, Direction::HostToDevice)? };
            }
        }
        let outs = self.session.run_binding_with_options(&st.binding, &st.run_options)?;
        st.binding.synchronize_outputs()?;
        drop(outs);
        if copies {
            for o in &mut st.outputs {
                // SAFETY: both buffers hold `o.bytes` bytes: the bound output and its host copy.
                unsafe { mover.copy(o.host.ptr(), o.device.data_ptr(), o.bytes, Direction::DeviceToHost)? };
            }
        }
        Ok(())
    }

    /// The staged outputs as f32 arrays (device-resident runs copy them out first, untimed).
    fn staged_outputs(&mut self) -> Result<Vec<Output>> {
        let cfg = self.staging.as_ref().expect("staging is set for staged sessions");
        let (mover, copies) = (cfg.mover, cfg.copies);
        let st = self.staged.as_mut().context("no run has been made")?;
        let mut out = Vec::new();
        for (name, o) in self.output_names.iter().zip(&mut st.outputs) {
            if !copies {
                // SAFETY: as in `run_staged`.
                unsafe { mover.copy(o.host.ptr(), o.device.data_ptr(), o.bytes, Direction::DeviceToHost)? };
            }
            out.push(Output { name: name.clone(), data: bytes_to_f32(name, o.ty, &o.shape, o.host.as_bytes())? });
        }
        Ok(out)
    }
}

/// Host bytes of a tensor as f32.
fn bytes_to_f32(name: &str, ty: TensorElementType, shape: &[usize], bytes: &[u8]) -> Result<ndarray::ArrayD<f32>> {
    let data: Vec<f32> = match ty {
        TensorElementType::Float32 => bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        TensorElementType::Float16 => bytes.chunks_exact(2).map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect(),
        TensorElementType::Int64 => bytes.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32).collect(),
        TensorElementType::Int32 => bytes.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32).collect(),
        other => bail!("output `{name}` has a type xbench cannot read yet ({other:?})"),
    };
    Ok(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(shape), data)?)
}

/// IEEE 754 half precision to single precision.
fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: value = f × 2^-24.
            let v = f as f32 * (1.0 / 16_777_216.0);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 112) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

/// An output value in host memory as f32.
fn to_f32(name: &str, value: &DynValue) -> Result<ndarray::ArrayD<f32>> {
    Ok(if let Ok(a) = value.try_extract_array::<f32>() {
        a.to_owned()
    } else if let Ok(a) = value.try_extract_array::<i64>() {
        a.mapv(|v| v as f32)
    } else if let Ok(a) = value.try_extract_array::<i32>() {
        a.mapv(|v| v as f32)
    } else {
        bail!("output `{name}` has a type xbench cannot read yet ({:?})", value.dtype());
    })
}

impl Session for OrtSession {
    fn prepare(&mut self, feed: &Feed) -> Result<()> {
        if self.staging.is_some() {
            return self.stage(feed);
        }
        if self.timing == Timing::DeviceResident {
            self.bind(feed)?;
        }
        Ok(())
    }

    fn run(&mut self, feed: &Feed) -> Result<()> {
        if self.staging.is_some() {
            self.stage(feed)?;
            return self.run_staged(feed);
        }
        if self.timing == Timing::EndToEnd {
            return self.run_host(feed);
        }
        self.bind(feed)?;
        let b = self.bound.as_ref().expect("bound above");
        let outputs = self.session.run_binding_with_options(&b.binding, &self.run_options)?;
        // The timer stops only once the device has finished writing the outputs.
        b.binding.synchronize_outputs()?;
        drop(outputs);
        Ok(())
    }

    fn outputs(&mut self, feed: &Feed) -> Result<Vec<Output>> {
        if self.staging.is_some() {
            return self.staged_outputs();
        }
        // Device-resident runs leave nothing on the host: one more run with host outputs.
        if self.timing == Timing::DeviceResident || self.last.is_empty() {
            self.run_host(feed)?;
        }
        self.output_names.iter().zip(&self.last).map(|(n, v)| Ok(Output { name: n.clone(), data: to_f32(n, v)? })).collect()
    }

    fn timing(&self) -> Timing {
        self.timing
    }

    fn timer_label(&self) -> String {
        match &self.staging {
            None => self.timing.as_str().to_string(),
            Some(s) => format!(
                "{} ({}{})",
                self.timing.as_str(),
                match (s.copies, s.mover) {
                    (true, Mover::Cuda(_)) => "pinned copies",
                    (true, Mover::Host) => "bound-buffer copies",
                    (false, _) => "bound buffers",
                },
                if s.graph { ", CUDA graph" } else { "" }
            ),
        }
    }

    fn info(&self) -> SessionInfo {
        self.info.clone()
    }
}


#[cfg(test)]
mod tests {
    use super::{bytes_to_f32, f16_to_f32, parse_placement};
    use ort::value::TensorElementType;

    #[test]
    fn half_precision_converts_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
        assert!(f16_to_f32(0x7c00).is_infinite() && f16_to_f32(0x7e00).is_nan());
        let bytes: Vec<u8> = [0x3c00u16, 0x4000, 0xbc00].iter().flat_map(|h| h.to_le_bytes()).collect();
        let a = bytes_to_f32("o", TensorElementType::Float16, &[1, 3], &bytes).unwrap();
        assert_eq!(a.as_slice().unwrap(), &[1.0, 2.0, -1.0]);
        assert!(bytes_to_f32("o", TensorElementType::Bool, &[1], &[1]).is_err());
    }

    #[test]
    fn placement_lines_are_counted_per_provider() {
        let log = vec![
            "Node placements".to_string(),
            " Node(s) placed on [CUDAExecutionProvider]. Number of nodes: 40\n  Gather (g)\n Node(s) placed on [CPUExecutionProvider]. Number of nodes: 3".to_string(),
            "unrelated".to_string(),
        ];
        assert_eq!(parse_placement(&log), vec![("CUDAExecutionProvider".to_string(), 40), ("CPUExecutionProvider".to_string(), 3)]);
        assert_eq!(parse_placement(&["All nodes placed on [CPUExecutionProvider]. Number of nodes: 7".to_string()]), vec![("CPUExecutionProvider".to_string(), 7)]);
        assert!(parse_placement(&[]).is_empty());
    }
}
