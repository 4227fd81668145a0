//! Device-resident: the inputs are bound on the device once per shape (IO binding) and the
//! outputs are left where ONNX Runtime puts them; the timer stops once the device has finished.

use anyhow::Result;
use ort::memory::{AllocatorType, MemoryInfo, MemoryType};
use ort::session::IoBinding;
use ort::value::DynValue;

use super::{convert, Core, IoMode};
use crate::inputs::Feed;
use crate::runtimes::Timing;
use crate::tensor::Output;

/// Fields drop in order: the binding before the inputs it points at.
struct Binding {
    binding: IoBinding,
    shapes: Vec<Vec<usize>>,
    _inputs: Vec<DynValue>,
}

#[derive(Default)]
pub(in crate::runtimes::ort) struct Bound {
    bound: Option<Binding>,
}

impl Bound {
    fn bind(&mut self, core: &mut Core, feed: &Feed) -> Result<&Binding> {
        let shapes: Vec<Vec<usize>> = feed.tensors.iter().map(|(_, t)| t.shape().to_vec()).collect();
        if !self.bound.as_ref().is_some_and(|b| b.shapes == shapes) {
            self.bound = None;
            let mut binding = core.session.create_binding()?;
            let mut inputs = Vec::new();
            for (name, t) in &feed.tensors {
                let v = convert::owned_value(t, &core.device)?;
                binding.bind_input(name.as_str(), &v)?;
                inputs.push(v);
            }
            let mem = MemoryInfo::new(core.device.0.clone(), core.device.1, AllocatorType::Device, MemoryType::Default)?;
            for name in &core.output_names {
                binding.bind_output_to_device(name.as_str(), &mem)?;
            }
            self.bound = Some(Binding { binding, shapes, _inputs: inputs });
        }
        Ok(self.bound.as_ref().expect("bound above"))
    }
}

impl IoMode for Bound {
    fn prepare(&mut self, core: &mut Core, feed: &Feed) -> Result<()> {
        self.bind(core, feed).map(|_| ())
    }

    fn run(&mut self, core: &mut Core, feed: &Feed) -> Result<()> {
        self.bind(core, feed)?;
        let b = self.bound.as_ref().expect("bound above");
        let outputs = core.session.run_binding_with_options(&b.binding, &core.run_options)?;
        // The timer stops only once the device has finished writing the outputs.
        b.binding.synchronize_outputs()?;
        drop(outputs);
        Ok(())
    }

    /// Nothing is left in host memory: one more run with host outputs, untimed.
    fn outputs(&mut self, core: &mut Core, feed: &Feed) -> Result<Vec<Output>> {
        let values = core.run_host(feed)?;
        core.to_outputs(&values)
    }

    fn label(&self) -> String {
        Timing::DeviceResident.as_str().to_string()
    }
}
