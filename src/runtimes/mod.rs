//! Runtimes: one trait for a loaded model (`Session`), and the runtimes xbench knows —
//! tract on CPU and ONNX Runtime with its CPU, CUDA and CoreML execution providers.
//! Each says whether it can run here and why not, before anything is measured.

mod cudart;
pub mod fake;
mod ort_lib;
pub mod ort_rt;
mod tract_rt;

use std::path::PathBuf;

use anyhow::Result;
use ndarray::ArrayD;
use serde::{Deserialize, Serialize};

use crate::inputs::Feed;
use crate::models::ModelSpec;

pub use ort_lib::{find_ort_library, setup_ort, OrtLibrary, ORT_VERSION};

/// A runtime xbench can measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeId {
    TractCpu,
    OrtCpu,
    OrtCuda,
    OrtCoreml,
    /// Test doubles (see `fake`), accepted only when `XBENCH_FAKE_RUNTIMES=1`.
    FakeExact,
    FakeWrong,
    FakeFlat,
    FakeCrash,
}

impl RuntimeId {
    pub const ALL: [RuntimeId; 4] = [RuntimeId::TractCpu, RuntimeId::OrtCpu, RuntimeId::OrtCuda, RuntimeId::OrtCoreml];

    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeId::TractCpu => "tract-cpu",
            RuntimeId::OrtCpu => "ort-cpu",
            RuntimeId::OrtCuda => "ort-cuda",
            RuntimeId::OrtCoreml => "ort-coreml",
            RuntimeId::FakeExact => "fake-exact",
            RuntimeId::FakeWrong => "fake-wrong",
            RuntimeId::FakeFlat => "fake-flat",
            RuntimeId::FakeCrash => "fake-crash",
        }
    }

    /// All names, comma-separated, for error messages.
    pub fn names() -> String {
        Self::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
    }

    pub fn is_ort(self) -> bool {
        matches!(self, RuntimeId::OrtCpu | RuntimeId::OrtCuda | RuntimeId::OrtCoreml)
    }

    pub fn is_fake(self) -> bool {
        matches!(self, RuntimeId::FakeExact | RuntimeId::FakeWrong | RuntimeId::FakeFlat | RuntimeId::FakeCrash)
    }
}

impl std::fmt::Display for RuntimeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RuntimeId {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        const FAKES: [RuntimeId; 4] = [RuntimeId::FakeExact, RuntimeId::FakeWrong, RuntimeId::FakeFlat, RuntimeId::FakeCrash];
        let fakes: &[RuntimeId] = if fake::enabled() { &FAKES } else { &[] };
        Self::ALL
            .iter()
            .chain(fakes)
            .copied()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| format!("= `{s}` is not a runtime xbench knows\n  fix: use one of: {}", Self::names()))
    }
}

/// What the timer covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Timing {
    /// Host tensors in, outputs copied to host (the paper's way).
    #[default]
    EndToEnd,
    /// ONNX Runtime only: inputs bound on the device once (IO binding), outputs left there; the
    /// timer stops after the device has finished (outputs synchronized).
    DeviceResident,
}

impl Timing {
    pub fn as_str(self) -> &'static str {
        match self {
            Timing::EndToEnd => "end-to-end",
            Timing::DeviceResident => "device-resident",
        }
    }
}

/// Settings shared by all runtimes of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RuntimeOptions {
    /// Intra-op threads; `None` lets each runtime choose (and records its choice).
    pub threads: Option<usize>,
    /// Explicit ONNX Runtime library path (`--ort-lib`).
    pub ort_lib: Option<PathBuf>,
    /// GPU index for `ort-cuda`.
    #[serde(default)]
    pub device_id: u32,
    #[serde(default)]
    pub timing: Timing,
    /// ort-cuda: bind GPU buffers per shape and copy inputs in and outputs out (to page-locked
    /// host memory) with the CUDA runtime, instead of leaving the copies to ONNX Runtime.
    #[serde(default)]
    pub pinned_io: bool,
    /// ort-cuda: capture each shape's run in a CUDA graph and replay it (implies `pinned_io`'s buffers).
    #[serde(default)]
    pub cuda_graph: bool,
    /// ort-cuda: compute fp32 matrix products in full fp32 instead of TF32 (ONNX Runtime's default
    /// on GPUs that have it).
    #[serde(default)]
    pub no_tf32: bool,
}

/// Whether a runtime can run on this machine, and what it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Availability {
    pub runtime: RuntimeId,
    pub usable: bool,
    /// Runtime (library) version, when known.
    pub version: Option<String>,
    /// Where it comes from when usable, or why it is not and how to fix that.
    pub detail: String,
}

/// What a loaded session really runs with, recorded per group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Thread settings, in the runtime's own terms.
    pub threads: String,
    /// Execution providers registered, in priority order (ONNX Runtime), or the engine (tract).
    pub providers: Vec<String>,
    /// Library or crate version.
    pub version: String,
    /// Graph nodes per execution provider, as the runtime reported them.
    #[serde(default)]
    pub placement: Vec<(String, usize)>,
    /// How inputs and outputs reach the runtime, when not the runtime's own default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io: Option<String>,
}

/// One output, copied to host memory as f32.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub name: String,
    pub data: ArrayD<f32>,
}

/// A model loaded in a runtime.
pub trait Session {
    /// Untimed per-cell preparation for the shapes of `feed` (tract concretizes and optimizes here).
    fn prepare(&mut self, _feed: &Feed) -> Result<()> {
        Ok(())
    }
    /// One inference: what the timer covers. End to end: host tensors in, outputs in host memory
    /// (kept in the runtime's own form); device-resident: outputs left on the device.
    fn run(&mut self, feed: &Feed) -> Result<()>;
    /// The outputs of the last run for `feed` as f32 arrays, converted outside the timer (a
    /// device-resident session runs once more with host outputs).
    fn outputs(&mut self, feed: &Feed) -> Result<Vec<Output>>;
    /// What this session's timer covers.
    fn timing(&self) -> Timing {
        Timing::EndToEnd
    }
    /// The timer as recorded per cell: the timing mode, and how inputs and outputs moved when the
    /// runtime was told to move them its own way.
    fn timer_label(&self) -> String {
        self.timing().as_str().to_string()
    }
    fn info(&self) -> SessionInfo;
}

/// Checks whether `id` can run here.
pub fn check(id: RuntimeId, opts: &RuntimeOptions) -> Availability {
    match id {
        RuntimeId::TractCpu => tract_rt::check(),
        _ if id.is_fake() => fake::check(id),
        _ => ort_rt::check(id, opts),
    }
}

/// Loads `model` in runtime `id`. Fails (never falls back) when the runtime or provider cannot be used.
pub fn load(id: RuntimeId, model: &ModelSpec, opts: &RuntimeOptions) -> Result<Box<dyn Session>> {
    match id {
        RuntimeId::TractCpu => Ok(Box::new(tract_rt::TractSession::load(model, opts)?)),
        _ if id.is_fake() => Ok(Box::new(fake::FakeSession::new(id))),
        _ => Ok(Box::new(ort_rt::OrtSession::load(id, model, opts)?)),
    }
}

/// The tract version compiled in (from Cargo.lock).
pub const TRACT_VERSION: &str = env!("XBENCH_TRACT_VERSION");
