//! ONNX Runtime through the `ort` crate, its library loaded at run time (`library`, `env`), with
//! exactly one execution provider per runtime (`ep`: the library's own, or a plugin from a library
//! of its own, `plugins`): registration must succeed or loading fails, and the provider must take
//! nodes of the graph — never a silent fallback to the CPU. A session (`session`) moves inputs and
//! outputs in one of several ways (`io`).

mod cache;
mod convert;
mod cudart;
mod decode;
mod decode_graph;
mod env;
mod ep;
mod graph_plan;
mod io;
mod library;
pub mod plugins;
mod probe;
mod session;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use ort::ep::ExecutionProvider;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::Session as OrtInner;

pub use env::{environment, parse_placement};
pub use ep::Ep;
pub use probe::{probe_main, probe_with};
pub use library::{find_ort_library, setup_ort, xbench_home, OrtLibrary, ORT_VERSION};

use super::{Availability, DeviceClass, Engine, Runtime, RuntimeId, RuntimeOptions, Session, Timing};
use crate::scenario::{RuntimeKind, RuntimeRequest};

/// Session options a scenario may set for an ONNX Runtime runtime (`session:`).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub graph_optimization: Option<GraphOptimizationLevel>,
    /// Where ONNX Runtime saves the graph it optimized (a later run can load it instead).
    pub optimized_model: Option<PathBuf>,
    /// A folder of optimized graphs, one per model, provider and options: saved on the first
    /// load, read (with graph optimization off) on later ones.
    pub optimized_cache: Option<PathBuf>,
    /// Fail the load when any node would fall back to the CPU provider.
    pub disable_cpu_fallback: bool,
    /// Which device a plugin offers to use: `cpu`, `gpu` or `npu`.
    pub device: Option<String>,
    /// This runtime's timer, over the run's `--timing`.
    pub timing: Option<Timing>,
    /// This runtime's inputs and outputs: `pinned` (`--pinned-io`) or `cuda-graph` (`--cuda-graph`).
    pub io: Option<String>,
    /// ONNX Runtime's memory pattern (plans and allocates each shape's intermediate tensors in one
    /// block); `None`: ONNX Runtime's default (on).
    pub memory_pattern: Option<bool>,
    /// Whether operators may keep weights repacked for their kernels (`session.disable_prepacking`
    /// when false); `None`: ONNX Runtime's default (on).
    pub prepacking: Option<bool>,
    /// The CPU provider's memory arena; `None`: off.
    pub cpu_arena: Option<bool>,
}

/// Whether `path` holds an optimized graph xbench saved there (`optimized_model`), with its
/// record: the only existing file a run may write an optimized graph over.
pub fn is_saved_graph(path: &std::path::Path) -> bool {
    cache::is_recorded(path)
}

/// ONNX Runtime runs a CUDA graph id twice as usual and captures it on the third run; every later
/// run of the id replays the graph.
const GRAPH_RUNS_TO_CAPTURE: usize = 3;

const SESSION_KEYS: &str = "graph_optimization (disable, basic, extended, all), optimized_model (a path), optimized_cache (a folder), disable_cpu_fallback (true/false), device (cpu, gpu, npu), timing (end-to-end, device-resident), io (default, pinned, cuda-graph), memory_pattern, prepacking, cpu_arena (true/false)";

fn flag(key: &str, v: &str) -> std::result::Result<bool, String> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(format!("`session.{key}` = `{other}` is not true or false\n  fix: use true or false")),
    }
}

impl Settings {
    fn parse(session: &BTreeMap<String, String>) -> std::result::Result<Settings, String> {
        let mut s = Settings::default();
        for (k, v) in session {
            match k.as_str() {
                "graph_optimization" => {
                    s.graph_optimization = Some(match v.as_str() {
                        "disable" => GraphOptimizationLevel::Disable,
                        "basic" => GraphOptimizationLevel::Level1,
                        "extended" => GraphOptimizationLevel::Level2,
                        "all" => GraphOptimizationLevel::All,
                        other => return Err(format!("`session.graph_optimization` = `{other}` is not a level\n  fix: use disable, basic, extended or all")),
                    })
                }
                "optimized_model" => s.optimized_model = Some(PathBuf::from(v)),
                "optimized_cache" => s.optimized_cache = Some(PathBuf::from(v)),
                "disable_cpu_fallback" => s.disable_cpu_fallback = matches!(v.as_str(), "true" | "1"),
                "device" if matches!(v.as_str(), "cpu" | "gpu" | "npu") => s.device = Some(v.clone()),
                "device" => return Err(format!("`session.device` = `{v}` is not a device kind\n  fix: use cpu, gpu or npu")),
                "timing" => {
                    s.timing = Some(match v.as_str() {
                        "end-to-end" => Timing::EndToEnd,
                        "device-resident" => Timing::DeviceResident,
                        _ => return Err(format!("`session.timing` = `{v}` is not a timer\n  fix: use end-to-end or device-resident")),
                    })
                }
                "io" if matches!(v.as_str(), "default" | "pinned" | "cuda-graph") => s.io = Some(v.clone()),
                "io" => return Err(format!("`session.io` = `{v}` is not an I/O mode\n  fix: use default, pinned or cuda-graph")),
                "memory_pattern" => s.memory_pattern = Some(flag(k, v)?),
                "prepacking" => s.prepacking = Some(flag(k, v)?),
                "cpu_arena" => s.cpu_arena = Some(flag(k, v)?),
                other => return Err(format!("`session.{other}` is not a session option xbench sets\n  fix: use {SESSION_KEYS}")),
            }
        }
        Ok(s)
    }

    /// The settings as recorded with a session (`session.KEY`).
    fn describe(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(level) = self.graph_optimization {
            out.push(("session.graph_optimization".into(), format!("{level:?}")));
        }
        if let Some(p) = &self.optimized_model {
            out.push(("session.optimized_model".into(), p.display().to_string()));
        }
        if let Some(p) = &self.optimized_cache {
            out.push(("session.optimized_cache".into(), p.display().to_string()));
        }
        if self.disable_cpu_fallback {
            out.push(("session.disable_cpu_fallback".into(), "true".into()));
        }
        if let Some(d) = &self.device {
            out.push(("session.device".into(), d.clone()));
        }
        if let Some(t) = self.timing {
            out.push(("session.timing".into(), t.as_str().into()));
        }
        if let Some(io) = &self.io {
            out.push(("session.io".into(), io.clone()));
        }
        for (k, v) in [("memory_pattern", self.memory_pattern), ("prepacking", self.prepacking), ("cpu_arena", self.cpu_arena)] {
            if let Some(v) = v {
                out.push((format!("session.{k}"), v.to_string()));
            }
        }
        out
    }

    /// The run's options with this runtime's own timer and I/O mode in place of the run's.
    fn overlay(&self, opts: &RuntimeOptions) -> RuntimeOptions {
        let mut o = opts.clone();
        if let Some(t) = self.timing {
            o.timing = t;
        }
        match self.io.as_deref() {
            Some("default") => (o.pinned_io, o.cuda_graph) = (false, false),
            Some("pinned") => (o.pinned_io, o.cuda_graph) = (true, false),
            Some("cuda-graph") => (o.pinned_io, o.cuda_graph) = (false, true),
            _ => {}
        }
        o
    }

    fn apply(&self, mut b: SessionBuilder) -> Result<SessionBuilder> {
        if let Some(level) = self.graph_optimization {
            b = b.with_optimization_level(level).map_err(ort::Error::<()>::from)?;
        }
        if let Some(p) = &self.optimized_model {
            b = b.with_optimized_model_path(p).map_err(ort::Error::<()>::from)?;
        }
        if self.disable_cpu_fallback {
            b = b.with_disable_cpu_fallback().map_err(ort::Error::<()>::from)?;
        }
        if let Some(on) = self.memory_pattern {
            b = b.with_memory_pattern(on).map_err(ort::Error::<()>::from)?;
        }
        if self.prepacking == Some(false) {
            b = b.with_config_entry("session.disable_prepacking", "1").map_err(ort::Error::<()>::from)?;
        }
        Ok(b)
    }
}

/// ONNX Runtime with one execution provider, its options and session settings.
pub struct Ort {
    ep: Ep,
    options: BTreeMap<String, String>,
    settings: Settings,
}

impl Ort {
    /// The runtime a request stands for, on provider `ep`; session options are checked here, the
    /// provider's own options by the provider when it registers.
    pub fn new(ep: Ep, request: &RuntimeRequest) -> std::result::Result<Arc<dyn Runtime>, String> {
        if matches!(ep, Ep::Cpu | Ep::CoreMl) {
            if let Some(k) = request.options.keys().next() {
                return Err(format!("`options.{k}`: {} takes no options in xbench\n  fix: remove `options` (session options go under `session:`)", ep.name()));
            }
        }
        Ok(Arc::new(Ort { ep, options: request.options.clone(), settings: Settings::parse(&request.session)? }))
    }

    /// The runtime of an `ep:` entry.
    pub fn from_request(request: &RuntimeRequest) -> std::result::Result<Arc<dyn Runtime>, String> {
        match &request.kind {
            RuntimeKind::Ep { provider, library } => Ort::new(Ep::from_entry(provider, library.as_deref()), request),
            _ => Err("is not an execution provider entry".into()),
        }
    }

    /// Whether this build of the library has the provider (plugins are always "built": they come apart).
    fn compiled_in(&self) -> std::result::Result<bool, String> {
        use ort::ep;
        let r = match &self.ep {
            Ep::Cuda => ep::CUDA::is_available(),
            Ep::CoreMl => ep::CoreML::is_available(),
            Ep::TensorRt => ep::TensorRT::is_available(),
            Ep::Cpu => ep::CPU::is_available(),
            _ => return Ok(true),
        };
        r.map_err(|e| e.to_string())
    }
}

impl Runtime for Ort {
    fn check(&self, id: RuntimeId, opts: &RuntimeOptions) -> Availability {
        let name = self.ep.name().to_string();
        let na = |detail: String, version: Option<String>| Availability { runtime: id, usable: false, version, detail, device: None, engine: None };
        if matches!(self.ep, Ep::CoreMl) && !cfg!(target_os = "macos") {
            return na("CoreML: macOS only (this machine runs another OS)".into(), None);
        }
        if let Ep::Plugin(p) = &self.ep {
            if !(p.supported_here)() {
                return na(format!("{name}: {} only (its wheel {} exists for no other platform); this machine runs {} on {}", p.platforms, p.package, std::env::consts::OS, std::env::consts::ARCH), None);
            }
        }
        let found = match self.ep.library(opts) {
            Some(Err(e)) => return na(e, None),
            Some(Ok(f)) => Some(f),
            None => None,
        };
        let l = match env::loaded(opts) {
            Ok(l) => l,
            Err(e) => return na(e, None),
        };
        let version = Some(l.version.clone());
        match self.compiled_in() {
            Ok(true) => {}
            Ok(false) => {
                let fix = match self.ep {
                    Ep::Cuda => "use the CUDA build of ONNX Runtime (`xbench setup ort --gpu`, then --ort-lib) on a machine with an NVIDIA GPU",
                    Ep::TensorRt => "use the CUDA build of ONNX Runtime (`xbench setup ort --gpu`) with TensorRT 10 installed",
                    _ => "use an ONNX Runtime build that includes it",
                };
                return na(format!("{name} provider not in this build of ONNX Runtime ({})\n  fix: {fix}", l.lib.path.display()), version);
            }
            Err(e) => return na(format!("cannot ask ONNX Runtime for its providers: {e}"), version),
        }
        // Attaching to a throwaway builder catches missing libraries, absent devices and bad options.
        let opts = &self.settings.overlay(opts);
        let attached = OrtInner::builder(&l.env).map_err(|e| anyhow::anyhow!("{e}")).and_then(|b| self.ep.attach(b, &self.options, &self.settings, opts));
        match attached {
            Ok(_) => {
                let from = match &found {
                    Some(f) => format!("{name} from {} ({}) via {} ({})", f.path.display(), f.found_by, l.lib.path.display(), l.lib.found_by),
                    None => format!("{name} via {} ({})", l.lib.path.display(), l.lib.found_by),
                };
                Availability { runtime: id, usable: true, version, detail: from, device: None, engine: None }
            }
            Err(e) => na(format!("{e:#}"), version),
        }
    }

    fn load(&self, onnx: &Path, opts: &RuntimeOptions) -> Result<Box<dyn Session>> {
        Ok(Box::new(session::OrtSession::load(self, onnx, &self.settings.overlay(opts))?))
    }

    fn device(&self) -> DeviceClass {
        self.ep.device(&self.options)
    }

    fn engine(&self) -> Engine {
        Engine::OnnxRuntime
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> std::result::Result<Settings, String> {
        Settings::parse(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn a_runtime_may_set_its_own_timer_and_io_over_the_runs() {
        let run = RuntimeOptions { cuda_graph: true, ..Default::default() };
        let s = settings(&[("io", "default"), ("timing", "device-resident")]).unwrap();
        let o = s.overlay(&run);
        assert_eq!((o.pinned_io, o.cuda_graph, o.timing), (false, false, Timing::DeviceResident));
        let o = settings(&[("io", "cuda-graph")]).unwrap().overlay(&RuntimeOptions::default());
        assert_eq!((o.pinned_io, o.cuda_graph, o.timing), (false, true, Timing::EndToEnd));
        let o = settings(&[("io", "pinned")]).unwrap().overlay(&run);
        assert_eq!((o.pinned_io, o.cuda_graph), (true, false));
        let kept = Settings::default().overlay(&run);
        assert!(kept.cuda_graph);
        let described = settings(&[("io", "cuda-graph"), ("timing", "end-to-end")]).unwrap().describe();
        assert!(described.contains(&("session.io".into(), "cuda-graph".into())) && described.contains(&("session.timing".into(), "end-to-end".into())));
        for (k, v, says) in [("io", "graph", "is not an I/O mode"), ("timing", "wall", "is not a timer")] {
            let e = settings(&[(k, v)]).unwrap_err();
            assert!(e.contains(says) && e.contains("fix:"), "{e}");
        }
    }
}
