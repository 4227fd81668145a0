//! The runtimes xbench knows, by name. Each is a `Runtime`: it says whether it can run here (and
//! why not, with the fix), what device it computes on, and loads a model. Adding a runtime is a
//! file implementing `Runtime` and one line in `REGISTRY`.

use std::path::Path;

use anyhow::Result;

use super::{fake, ort, tract, Availability, DeviceClass, Engine, RuntimeId, RuntimeOptions, Session};

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

struct Registration {
    name: &'static str,
    /// Only with `XBENCH_FAKE_RUNTIMES=1` (test doubles).
    test_double: bool,
    runtime: &'static dyn Runtime,
}

const fn reg(name: &'static str, runtime: &'static dyn Runtime) -> Registration {
    Registration { name, test_double: false, runtime }
}

const fn double(name: &'static str, runtime: &'static dyn Runtime) -> Registration {
    Registration { name, test_double: true, runtime }
}

static REGISTRY: &[Registration] = &[
    reg("tract-cpu", &tract::Tract),
    reg("ort-cpu", &ort::Ort(ort::Provider::Cpu)),
    reg("ort-cuda", &ort::Ort(ort::Provider::Cuda)),
    reg("ort-coreml", &ort::Ort(ort::Provider::CoreMl)),
    double("fake-exact", &fake::Fake(fake::Behaviour::Exact)),
    double("fake-wrong", &fake::Fake(fake::Behaviour::Wrong)),
    double("fake-flat", &fake::Fake(fake::Behaviour::Flat)),
    double("fake-crash", &fake::Fake(fake::Behaviour::Crash)),
];

/// A runtime of a plan: its name and what it is.
#[derive(Clone, Copy)]
pub struct RuntimeSpec {
    pub id: RuntimeId,
    runtime: &'static dyn Runtime,
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

    pub fn engine(&self) -> Engine {
        self.runtime.engine()
    }

    pub fn load(&self, onnx: &Path, opts: &RuntimeOptions) -> Result<Box<dyn Session>> {
        self.runtime.load(onnx, opts)
    }

    pub fn device(&self) -> DeviceClass {
        self.runtime.device()
    }
}

fn registered() -> impl Iterator<Item = &'static Registration> {
    let doubles = fake::enabled();
    REGISTRY.iter().filter(move |r| doubles || !r.test_double)
}

/// Every runtime that can be named here, in the order `xbench runtimes` lists them.
pub fn all() -> Vec<RuntimeSpec> {
    registered().map(|r| RuntimeSpec { id: RuntimeId::new(r.name), runtime: r.runtime }).collect()
}

/// The names of the runtimes, comma-separated, for messages (test doubles left out).
pub fn names() -> String {
    REGISTRY.iter().filter(|r| !r.test_double).map(|r| r.name).collect::<Vec<_>>().join(", ")
}

/// The runtime called `id`; an error says it is unknown and lists the known ones.
pub fn lookup(id: RuntimeId) -> std::result::Result<RuntimeSpec, String> {
    registered()
        .find(|r| r.name == id.as_str())
        .map(|r| RuntimeSpec { id, runtime: r.runtime })
        .ok_or_else(|| format!("= `{id}` is not a runtime xbench knows\n  fix: use one of: {}", names()))
}

/// Whether the runtime called `id` can run here (an unknown name cannot).
pub fn check(id: RuntimeId, opts: &RuntimeOptions) -> Availability {
    match lookup(id) {
        Ok(spec) => spec.check(opts),
        Err(why) => Availability { runtime: id, usable: false, version: None, detail: format!("`{id}` {why}"), device: None, engine: None },
    }
}

/// Loads `onnx` in the runtime called `id`.
pub fn load(id: RuntimeId, onnx: &Path, opts: &RuntimeOptions) -> Result<Box<dyn Session>> {
    lookup(id).map_err(|why| anyhow::anyhow!("`{id}` {why}"))?.load(onnx, opts)
}
