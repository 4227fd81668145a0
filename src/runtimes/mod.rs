//! Runtimes: what a loaded model is (`Session`: prepare a shape, run, read outputs), and the
//! registry of runtimes xbench knows (`registry`): each says whether it can run here and why not,
//! and loads a model. tract on CPU (`tract`), ONNX Runtime with one execution provider per runtime
//! (`ort`), and test doubles (`fake`, registered only with `XBENCH_FAKE_RUNTIMES=1`).

pub mod decode;
pub(crate) mod external;
pub mod frameworks;
pub mod fake;
pub mod loading;
pub mod ort;
mod python;
mod registry;
mod tract;

use std::path::PathBuf;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::inputs::Feed;
pub use crate::results::{Availability, DeviceClass, Engine, HostMemory, SessionInfo, TimerClass, Timing};
pub use crate::scenario::RuntimeId;
pub use crate::tensor::Output;
pub use registry::{all, check, load, lookup, names, Runtime, RuntimeSpec};

pub use ort::{find_ort_library, setup_ort, OrtLibrary, ORT_VERSION};

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
    /// Longest a cell may take, in seconds (external runtimes wait this long for an answer).
    #[serde(default)]
    pub cell_timeout_s: Option<f64>,
    /// Plugin execution provider libraries given on the command line (`--ep-lib NAME=PATH`).
    #[serde(default)]
    pub ep_libs: std::collections::BTreeMap<String, PathBuf>,
    /// In a generation scenario, the model's decoder layout (an external program is told it is
    /// asked to generate, and what xbench read of the decoder).
    #[serde(default)]
    pub generate: Option<crate::models::DecoderLayout>,
}

/// Threads used when the scenario sets none: the cores the process may use.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// What a runtime that times itself (an external program) measured for one cell.
#[derive(Debug, Clone)]
pub struct SelfTimed {
    /// Each timed iteration, in milliseconds, as the runtime's own clock read it.
    pub latency_ms: Vec<f64>,
    /// Outputs of the last timed iteration.
    pub outputs: Vec<Output>,
    /// Untimed preparation for the cell's shapes.
    pub prepare_ms: f64,
    /// The untimed warm-up runs, all together.
    pub warmup_ms: f64,
}

/// A model loaded in a runtime.
pub trait Session {
    /// For runtimes that run their own timed loop (external programs): warms up and times one
    /// cell by the protocol's rules. `None` (the default) lets xbench time `run` itself.
    fn times_itself(&mut self, _feed: &Feed, _warmup: usize, _iterations: usize, _min_time_s: Option<f64>) -> Option<Result<SelfTimed>> {
        None
    }
    /// Untimed per-cell preparation for the shapes of `feed` (tract concretizes and optimizes here).
    fn prepare(&mut self, _feed: &Feed) -> Result<()> {
        Ok(())
    }
    /// One inference: what the timer covers. End to end: host tensors in, outputs in host memory
    /// (kept in the runtime's own form); device-resident: outputs left on the device.
    fn run(&mut self, feed: &Feed) -> Result<()>;
    /// The outputs of the last run for `feed`, converted outside the timer (a device-resident
    /// session runs once more with host outputs).
    fn outputs(&mut self, feed: &Feed) -> Result<Vec<Output>>;
    /// The timer as recorded per cell: the timing mode, and how inputs and outputs moved when the
    /// runtime was told to move them its own way.
    fn timer_label(&self) -> String {
        Timing::EndToEnd.as_str().to_string()
    }
    fn info(&self) -> SessionInfo;
    /// A decoder for generation, its key/value cache kept by the runtime between steps; a runtime
    /// that cannot keep one says so (the default).
    fn decoder(&mut self, _layout: &crate::models::DecoderLayout, _io: &crate::models::ModelIo) -> Result<Box<dyn decode::Decoder + '_>> {
        Err(decode::cannot_keep_cache())
    }
    /// What measures a generation cell: xbench's loop on `decoder` unless the runtime runs the
    /// loop itself (an external program).
    fn generator(&mut self, layout: &crate::models::DecoderLayout, io: &crate::models::ModelIo) -> Result<Box<dyn decode::Generator + '_>> {
        Ok(Box::new(decode::Looped(self.decoder(layout, io)?)))
    }
    /// Ends the session's work (an external program is told to stop and waited for).
    fn close(&mut self) {}
}

/// The tract version compiled in (from Cargo.lock).
pub const TRACT_VERSION: &str = env!("XBENCH_TRACT_VERSION");
