//! ONNX Runtime through the `ort` crate, its library loaded at run time (`library`, `env`), with
//! exactly one execution provider per runtime (`Ort(Provider)`): registration must succeed or
//! loading fails, and the provider must take nodes of the graph — never a silent fallback to CPU.
//! A session (`session`) moves inputs and outputs in one of several ways (`io`).

mod convert;
mod cudart;
mod env;
mod io;
mod library;
mod session;

use std::path::Path;

use anyhow::Result;
use ort::ep::{self, ExecutionProvider};
use ort::session::Session as OrtInner;

pub use env::{environment, parse_placement};
pub use library::{find_ort_library, setup_ort, xbench_home, OrtLibrary, ORT_VERSION};

use super::{Availability, DeviceClass, Engine, Runtime, RuntimeId, RuntimeOptions, Session};

/// The execution provider of an ONNX Runtime runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Cpu,
    Cuda,
    CoreMl,
}

impl Provider {
    /// The provider's name as ONNX Runtime reports it (in placement, too).
    pub fn name(self) -> &'static str {
        match self {
            Provider::Cuda => ep::CUDA::NAME,
            Provider::CoreMl => ep::CoreML::NAME,
            Provider::Cpu => ep::CPU::NAME,
        }
    }

    fn dispatch(self, opts: &RuntimeOptions) -> ep::ExecutionProviderDispatch {
        match self {
            Provider::Cuda => ep::CUDA::default()
                .with_device_id(opts.device_id as i32)
                .with_cuda_graph(opts.cuda_graph)
                .with_tf32(!opts.no_tf32)
                .build()
                .error_on_failure(),
            Provider::CoreMl => ep::CoreML::default().build().error_on_failure(),
            Provider::Cpu => ep::CPU::default().build().error_on_failure(),
        }
    }

    /// Whether this build of the library has the provider at all.
    fn compiled_in(self) -> std::result::Result<bool, String> {
        let r = match self {
            Provider::Cuda => ep::CUDA::is_available(),
            Provider::CoreMl => ep::CoreML::is_available(),
            Provider::Cpu => ep::CPU::is_available(),
        };
        r.map_err(|e| e.to_string())
    }
}

/// ONNX Runtime with one execution provider.
pub struct Ort(pub Provider);

impl Runtime for Ort {
    fn check(&self, id: RuntimeId, opts: &RuntimeOptions) -> Availability {
        let provider = self.0;
        let na = |detail: String, version: Option<String>| Availability { runtime: id, usable: false, version, detail, device: None, engine: None };
        if provider == Provider::CoreMl && !cfg!(target_os = "macos") {
            return na("CoreML: macOS only (this machine runs another OS)".into(), None);
        }
        let l = match env::loaded(opts) {
            Ok(l) => l,
            Err(e) => return na(e, None),
        };
        let version = Some(l.version.clone());
        match provider.compiled_in() {
            Ok(true) => {}
            Ok(false) => {
                let fix = match provider {
                    Provider::Cuda => "use the CUDA build of ONNX Runtime (`xbench setup ort --gpu`, then --ort-lib) on a machine with an NVIDIA GPU",
                    _ => "use an ONNX Runtime build that includes it",
                };
                return na(format!("{} provider not in this build of ONNX Runtime ({})\n  fix: {fix}", provider.name(), l.lib.path.display()), version);
            }
            Err(e) => return na(format!("cannot ask ONNX Runtime for its providers: {e}"), version),
        }
        // Registering on a throwaway builder catches missing CUDA/cuDNN libraries and absent devices.
        let registered = OrtInner::builder(&l.env).map_err(|e| e.to_string()).and_then(|mut b| provider.dispatch(opts).register(&mut b).map_err(|e| e.to_string()));
        match registered {
            Ok(()) => Availability {
                runtime: id,
                usable: true,
                version,
                detail: format!("{} via {} ({})", provider.name(), l.lib.path.display(), l.lib.found_by),
                device: None,
                engine: None,
            },
            Err(e) => na(format!("{} provider failed to register: {e}", provider.name()), version),
        }
    }

    fn load(&self, onnx: &Path, opts: &RuntimeOptions) -> Result<Box<dyn Session>> {
        Ok(Box::new(session::OrtSession::load(self.0, onnx, opts)?))
    }

    fn device(&self) -> DeviceClass {
        match self.0 {
            Provider::Cpu => DeviceClass::Cpu,
            Provider::Cuda => DeviceClass::CudaGpu,
            Provider::CoreMl => DeviceClass::Apple,
        }
    }

    fn engine(&self) -> Engine {
        Engine::OnnxRuntime
    }
}
