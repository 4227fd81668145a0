//! The runtimes xbench knows, by name. Each is a `Runtime`: it says whether it can run here (and
//! why not, with the fix), what device it computes on, and loads a model. Adding a runtime is a
//! file implementing `Runtime` and one line in `REGISTRY`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;

use super::{external, fake, ort, tract, Availability, DeviceClass, Engine, RuntimeId, RuntimeOptions, Session};
use crate::scenario::{RuntimeKind, RuntimeRequest};

/// A runtime: an engine (and, for ONNX Runtime, an execution provider) that loads ONNX models.
pub trait Runtime: Send + Sync {
    /// Whether it can run on this machine; when not, why and how to fix that.
    fn check(&self, id: RuntimeId, opts: &RuntimeOptions) -> Availability;
    /// Loads the model at `onnx`. Fails (never falls back to another device) when it cannot.
    fn load(&self, onnx: &Path, opts: &RuntimeOptions) -> Result<Box<dyn Session>>;
    /// What it computes on.
    fn device(&self) -> DeviceClass;
    /// The engine it is.
    fn engine(&self) -> Engine;
}

/// How a registered runtime is made from a request (its options checked).
type Make = fn(&RuntimeRequest) -> Result<Arc<dyn Runtime>, String>;

struct Registration {
    name: &'static str,
    /// Only with `XBENCH_FAKE_RUNTIMES=1` (test doubles).
    test_double: bool,
    make: Make,
}

const fn reg(name: &'static str, make: Make) -> Registration {
    Registration { name, test_double: false, make }
}

const fn double(name: &'static str, make: Make) -> Registration {
    Registration { name, test_double: true, make }
}

/// Refuses options for runtimes that take none.
fn no_options(r: &RuntimeRequest) -> Result<(), String> {
    match r.options.keys().chain(r.session.keys()).next() {
        None => Ok(()),
        Some(k) => Err(format!("takes no options, but `{k}` is given\n  fix: remove `options` and `session` from this runtime's entry")),
    }
}

static REGISTRY: &[Registration] = &[
    reg("tract-cpu", |r| no_options(r).map(|_| Arc::new(tract::Tract) as Arc<dyn Runtime>)),
    reg("ort-cpu", |r| ort::Ort::new(ort::Ep::Cpu, r)),
    reg("ort-cuda", |r| ort::Ort::new(ort::Ep::Cuda, r)),
    reg("ort-coreml", |r| ort::Ort::new(ort::Ep::CoreMl, r)),
    reg("ort-tensorrt", |r| ort::Ort::new(ort::Ep::TensorRt, r)),
    reg("ort-openvino", |r| ort::Ort::new(ort::Ep::Plugin(ort::plugins::plugin("openvino").expect("catalogued")), r)),
    reg("ort-webgpu", |r| ort::Ort::new(ort::Ep::Plugin(ort::plugins::plugin("webgpu").expect("catalogued")), r)),
    reg("ort-mlx", |r| ort::Ort::new(ort::Ep::Plugin(ort::plugins::plugin("mlx").expect("catalogued")), r)),
    reg("ort-tensorrt-rtx", |r| ort::Ort::new(ort::Ep::Plugin(ort::plugins::plugin("tensorrt-rtx").expect("catalogued")), r)),
    double("fake-exact", |r| no_options(r).map(|_| Arc::new(fake::Fake(fake::Behaviour::Exact)) as Arc<dyn Runtime>)),
    double("fake-wrong", |r| no_options(r).map(|_| Arc::new(fake::Fake(fake::Behaviour::Wrong)) as Arc<dyn Runtime>)),
    double("fake-flat", |r| no_options(r).map(|_| Arc::new(fake::Fake(fake::Behaviour::Flat)) as Arc<dyn Runtime>)),
    double("fake-crash", |r| no_options(r).map(|_| Arc::new(fake::Fake(fake::Behaviour::Crash)) as Arc<dyn Runtime>)),
    double("fake-hang", |r| no_options(r).map(|_| Arc::new(fake::Fake(fake::Behaviour::Hang)) as Arc<dyn Runtime>)),
    double("fake-instant", |r| no_options(r).map(|_| Arc::new(fake::Fake(fake::Behaviour::Instant)) as Arc<dyn Runtime>)),
];

/// A runtime of a plan: its request and what it is.
#[derive(Clone)]
pub struct RuntimeSpec {
    pub id: RuntimeId,
    pub request: RuntimeRequest,
    runtime: Arc<dyn Runtime>,
}

impl std::fmt::Debug for RuntimeSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RuntimeSpec({})", self.id)
    }
}

impl RuntimeSpec {
    pub fn check(&self, opts: &RuntimeOptions) -> Availability {
        let mut a = self.runtime.check(self.id, opts);
        a.device = Some(self.runtime.device());
        a.engine = Some(self.runtime.engine());
        a
    }

    pub fn load(&self, onnx: &Path, opts: &RuntimeOptions) -> Result<Box<dyn Session>> {
        self.runtime.load(onnx, opts)
    }

    pub fn device(&self) -> DeviceClass {
        self.runtime.device()
    }

    pub fn engine(&self) -> Engine {
        self.runtime.engine()
    }
}

fn registered() -> impl Iterator<Item = &'static Registration> {
    let doubles = fake::enabled();
    REGISTRY.iter().filter(move |r| doubles || !r.test_double)
}

/// Every registered runtime with its defaults, in the order `xbench runtimes` lists them.
pub fn all() -> Vec<RuntimeSpec> {
    registered().filter_map(|r| lookup(&RuntimeRequest::named(RuntimeId::new(r.name))).ok()).collect()
}

/// The names of the runtimes, comma-separated, for messages (test doubles left out).
pub fn names() -> String {
    REGISTRY.iter().filter(|r| !r.test_double).map(|r| r.name).collect::<Vec<_>>().join(", ")
}

/// The runtime a request stands for; an error (the text after the entry's key) says what is
/// unknown or wrong and the fix.
pub fn lookup(request: &RuntimeRequest) -> std::result::Result<RuntimeSpec, String> {
    let runtime = match &request.kind {
        RuntimeKind::Registered(base) => {
            let reg = registered()
                .find(|r| r.name == base)
                .ok_or_else(|| format!("= `{base}` is not a runtime xbench knows\n  fix: use one of: {}", names()))?;
            (reg.make)(request).map_err(|m| format!("(`{base}`) {m}"))?
        }
        RuntimeKind::Ep { .. } => ort::Ort::from_request(request)?,
        RuntimeKind::External { program, python } => Arc::new(external::External::new(request.id, program, python.as_deref(), &request.options)),
    };
    Ok(RuntimeSpec { id: request.id, request: request.clone(), runtime })
}

/// Whether the registered runtime called `id` can run here (an unknown name cannot).
pub fn check(id: RuntimeId, opts: &RuntimeOptions) -> Availability {
    match lookup(&RuntimeRequest::named(id)) {
        Ok(spec) => spec.check(opts),
        Err(why) => Availability { runtime: id, usable: false, version: None, detail: format!("`{id}` {why}"), device: None, engine: None },
    }
}

/// Loads `onnx` in the runtime `request` stands for.
pub fn load(request: &RuntimeRequest, onnx: &Path, opts: &RuntimeOptions) -> Result<Box<dyn Session>> {
    lookup(request).map_err(|why| anyhow::anyhow!("`{}` {why}", request.id))?.load(onnx, opts)
}
