//! End to end, ONNX Runtime's own way: host arrays in, outputs returned in host memory (kept as
//! ONNX Runtime returned them and converted after the timer).

use anyhow::Result;
use ort::value::DynValue;

use super::{Core, IoMode};
use crate::inputs::Feed;
use crate::runtimes::Timing;
use crate::tensor::Output;

#[derive(Default)]
pub(in crate::runtimes::ort) struct Host {
    /// Outputs of the last run, in host memory.
    last: Vec<DynValue>,
}

impl IoMode for Host {
    fn run(&mut self, core: &mut Core, feed: &Feed) -> Result<()> {
        self.last = core.run_host(feed)?;
        Ok(())
    }

    fn outputs(&mut self, core: &mut Core, feed: &Feed) -> Result<Vec<Output>> {
        if self.last.is_empty() {
            self.run(core, feed)?;
        }
        core.to_outputs(&self.last)
    }

    fn label(&self) -> String {
        Timing::EndToEnd.as_str().to_string()
    }
}
