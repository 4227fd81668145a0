//! ONNX Runtime through the `ort` crate, loaded dynamically, with exactly one execution provider
//! per runtime: registration must succeed or loading fails (no silent fallback to CPU).

use std::borrow::Cow;
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Result};
use ort::ep::{self, ExecutionProvider};
use ort::environment::Environment;
use ort::session::{Session as OrtInner, SessionInputValue};
use ort::value::TensorRef;

use super::ort_lib::{find_ort_library, OrtLibrary};
use super::{Availability, Output, RuntimeId, RuntimeOptions, Session, SessionInfo};
use crate::inputs::{Feed, HostTensor};
use crate::models::ModelSpec;

struct Loaded {
    env: Environment,
    lib: OrtLibrary,
    version: String,
}

static LOADED: OnceLock<std::result::Result<Loaded, String>> = OnceLock::new();

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
            let env = builder.with_name("xbench").build().map_err(|e| format!("cannot create the ONNX Runtime environment: {e}"))?;
            let version = library_version(&lib.path).unwrap_or_else(|| "unknown".into());
            Ok(Loaded { env, lib, version })
        })
        .as_ref()
        .map_err(Clone::clone)
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

fn provider(id: RuntimeId) -> ep::ExecutionProviderDispatch {
    match id {
        RuntimeId::OrtCuda => ep::CUDA::default().with_device_id(0).build().error_on_failure(),
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
        .and_then(|mut b| provider(id).register(&mut b).map_err(|e| e.to_string()));
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

pub struct OrtSession {
    session: OrtInner,
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
            .with_execution_providers([provider(id)])
            .map_err(|e| anyhow!("{} provider failed to register: {}", provider_name(id), ort::Error::<()>::from(e)))?;
        let session = builder
            .commit_from_file(&model.onnx)
            .map_err(|e| anyhow!("ONNX Runtime cannot load {}: {e}", model.onnx.display()))?;
        let output_names = session.outputs().iter().map(|o| o.name().to_string()).collect();
        let info = SessionInfo {
            threads: format!("intra-op {threads}, inter-op 1, spinning on"),
            providers: vec![provider_name(id).to_string()],
            version: l.version.clone(),
        };
        Ok(OrtSession { session, output_names, info })
    }
}

/// Threads used when the scenario sets none: the cores the process may use.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

impl Session for OrtSession {
    fn run(&mut self, feed: &Feed) -> Result<Vec<Output>> {
        let mut inputs: Vec<(Cow<'_, str>, SessionInputValue<'_>)> = Vec::with_capacity(feed.tensors.len());
        for (name, t) in &feed.tensors {
            let v: SessionInputValue<'_> = match t {
                HostTensor::I64(a) => TensorRef::from_array_view(a.view())?.into(),
                HostTensor::I32(a) => TensorRef::from_array_view(a.view())?.into(),
                HostTensor::F32(a) => TensorRef::from_array_view(a.view())?.into(),
            };
            inputs.push((Cow::Borrowed(name.as_str()), v));
        }
        let outputs = self.session.run(inputs)?;
        let mut result = Vec::with_capacity(self.output_names.len());
        for name in &self.output_names {
            let value = &outputs[name.as_str()];
            let data = if let Ok(a) = value.try_extract_array::<f32>() {
                a.to_owned()
            } else if let Ok(a) = value.try_extract_array::<i64>() {
                a.mapv(|v| v as f32)
            } else if let Ok(a) = value.try_extract_array::<i32>() {
                a.mapv(|v| v as f32)
            } else {
                bail!("output `{name}` has a type xbench cannot read yet ({:?})", value.dtype());
            };
            result.push(Output { name: name.clone(), data });
        }
        Ok(result)
    }

    fn info(&self) -> SessionInfo {
        self.info.clone()
    }
}

