//! How a session's inputs and outputs move, one type per way:
//!
//! - `Host` (end to end, ONNX Runtime's default): host arrays in, outputs returned in host memory.
//! - `Bound` (device-resident): inputs bound on the device once per shape (IO binding), outputs
//!   left there; the timer stops once the device has finished.
//! - `Staged` (`--pinned-io`, `--cuda-graph`): every input and output has a buffer of xbench's
//!   own, bound once per shape, and xbench makes the copies (inside the timer, end to end);
//!   optionally each shape's run is captured once in a CUDA graph and replayed.

mod bound;
mod host;
mod staged;

use anyhow::{Context, Result};
use ort::memory::AllocationDevice;
use ort::session::{RunOptions, Session as OrtInner};
use ort::value::DynValue;

pub(super) use bound::Bound;
pub(super) use host::Host;
pub(super) use staged::{Staged, Staging};

use super::convert;
use crate::inputs::Feed;
use crate::tensor::Output;

/// What every way of moving data shares: the session and how it is run.
pub(super) struct Core {
    pub session: OrtInner,
    /// Keeps run-time logging at warnings, whatever the session's level was while it was created.
    pub run_options: RunOptions,
    pub output_names: Vec<String>,
    /// Where bound inputs and outputs live: the GPU for CUDA, host memory otherwise.
    pub device: (AllocationDevice<'static>, i32),
}

impl Core {
    /// One run with host inputs; the outputs, in host memory as ONNX Runtime returned them.
    pub fn run_host(&mut self, feed: &Feed) -> Result<Vec<DynValue>> {
        let mut inputs = Vec::with_capacity(feed.tensors.len());
        for (name, t) in &feed.tensors {
            inputs.push((std::borrow::Cow::Borrowed(name.as_str()), convert::input_value(t)?));
        }
        let mut outputs = self
            .session
            .run_with_options(inputs, &self.run_options)
            .map_err(|e| anyhow::anyhow!("ONNX Runtime's run failed: {e}\n  fix: check the inputs against what the model takes (`xbench models` lists them), or run it on another runtime to compare"))?;
        self.output_names.iter().map(|name| outputs.remove(name.as_str()).with_context(|| format!("ONNX Runtime returned no output `{name}`"))).collect()
    }

    /// Host outputs as host tensors, outside the timer.
    pub fn to_outputs(&self, values: &[DynValue]) -> Result<Vec<Output>> {
        self.output_names.iter().zip(values).map(|(n, v)| Ok(Output { name: n.clone(), data: convert::to_tensor(n, v)? })).collect()
    }
}

/// One way of moving a session's inputs and outputs.
pub(super) trait IoMode {
    /// Untimed work for the shapes of `feed` (binding, allocating, capturing).
    fn prepare(&mut self, _core: &mut Core, _feed: &Feed) -> Result<()> {
        Ok(())
    }
    /// One timed inference.
    fn run(&mut self, core: &mut Core, feed: &Feed) -> Result<()>;
    /// The outputs of the last run, as host tensors (untimed).
    fn outputs(&mut self, core: &mut Core, feed: &Feed) -> Result<Vec<Output>>;
    /// What the timer covers, as each cell records it.
    fn label(&self) -> String;
}
