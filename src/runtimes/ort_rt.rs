//! ONNX Runtime through the `ort` crate, loaded dynamically, with exactly one execution provider
//! per runtime: registration must succeed or loading fails (no silent fallback to CPU).

use std::borrow::Cow;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{anyhow, bail, Context, Result};
use ort::ep::{self, ExecutionProvider};
use ort::environment::Environment;
use ort::logging::LogLevel;
use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
use ort::session::{IoBinding, RunOptions, Session as OrtInner, SessionInputValue};
use ort::value::{DynValue, Tensor, TensorRef};

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

fn provider(id: RuntimeId, device_id: u32) -> ep::ExecutionProviderDispatch {
    match id {
        RuntimeId::OrtCuda => ep::CUDA::default().with_device_id(device_id as i32).build().error_on_failure(),
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
        .and_then(|mut b| provider(id, opts.device_id).register(&mut b).map_err(|e| e.to_string()));
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

pub struct OrtSession {
    session: OrtInner,
    timing: Timing,
    /// Where bound inputs and outputs live: the GPU for CUDA, host memory otherwise.
    device: (AllocationDevice<'static>, i32),
    bound: Option<Bound>,
    /// Outputs of the last end-to-end run, in host memory.
    last: Vec<DynValue>,
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
            .with_execution_providers([provider(id, opts.device_id)])
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
            threads: format!("intra-op {threads}, inter-op 1, spinning on"),
            providers: vec![provider_name(id).to_string()],
            version: l.version.clone(),
            placement,
        };
        let device = if id == RuntimeId::OrtCuda { (AllocationDevice::CUDA, opts.device_id as i32) } else { (AllocationDevice::CPU, 0) };
        Ok(OrtSession { session, timing: opts.timing, device, bound: None, last: Vec::new(), run_options, output_names, info })
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
        if self.timing == Timing::DeviceResident {
            self.bind(feed)?;
        }
        Ok(())
    }

    fn run(&mut self, feed: &Feed) -> Result<()> {
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
        // Device-resident runs leave nothing on the host: one more run with host outputs.
        if self.timing == Timing::DeviceResident || self.last.is_empty() {
            self.run_host(feed)?;
        }
        self.output_names.iter().zip(&self.last).map(|(n, v)| Ok(Output { name: n.clone(), data: to_f32(n, v)? })).collect()
    }

    fn timing(&self) -> Timing {
        self.timing
    }

    fn info(&self) -> SessionInfo {
        self.info.clone()
    }
}


#[cfg(test)]
mod tests {
    use super::parse_placement;

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
