//! What a runtime was, as recorded in results: whether it could run, and what a loaded session
//! really ran with.

use serde::{Deserialize, Serialize};

use crate::scenario::RuntimeId;

/// What kind of device a runtime computes on: it bounds the FLOP rate a cell may plausibly reach.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceClass {
    /// The host CPU.
    #[default]
    Cpu,
    /// An NVIDIA GPU.
    CudaGpu,
    /// Another GPU (WebGPU, OpenVINO's GPU plugin).
    Gpu,
    /// Apple silicon's GPU and Neural Engine.
    Apple,
}

impl DeviceClass {
    /// An upper bound on the FLOP rate this device can reach, for `cores` CPU cores.
    pub fn plausible_flops_per_s(self, cores: usize) -> f64 {
        match self {
            // Two 512-bit FMA units at 4 GHz: 256 GFLOP/s per core, above any current CPU core's fp32 peak.
            DeviceClass::Cpu => cores.max(1) as f64 * 256e9,
            // Above the fp16 tensor-core peak (with sparsity) of the fastest current data-centre GPUs.
            DeviceClass::CudaGpu | DeviceClass::Gpu => 4e15,
            // Above the Neural Engine and GPU peaks of current Apple chips.
            DeviceClass::Apple => 100e12,
        }
    }

    /// The class of the runtimes of results written before the class was recorded.
    pub fn of_builtin(runtime: RuntimeId) -> DeviceClass {
        match runtime.as_str() {
            "ort-cuda" => DeviceClass::CudaGpu,
            "ort-coreml" => DeviceClass::Apple,
            _ => DeviceClass::Cpu,
        }
    }
}

/// The engine behind a runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    Tract,
    OnnxRuntime,
    /// A program outside xbench's process (docs/runtime-protocol.md).
    External,
    /// A test double.
    Test,
}

impl Engine {
    /// The engine of the runtimes of results written before the engine was recorded.
    pub fn of_builtin(runtime: RuntimeId) -> Engine {
        match runtime.as_str() {
            "tract-cpu" => Engine::Tract,
            name if name.starts_with("fake-") => Engine::Test,
            _ => Engine::OnnxRuntime,
        }
    }
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
    /// What it computes on (absent in version 1 results: taken from the runtime's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceClass>,
    /// The engine behind it (absent in version 1 results: taken from the runtime's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<Engine>,
}

impl Availability {
    pub fn device(&self) -> DeviceClass {
        self.device.unwrap_or_else(|| DeviceClass::of_builtin(self.runtime))
    }

    pub fn engine(&self) -> Engine {
        self.engine.unwrap_or_else(|| Engine::of_builtin(self.runtime))
    }
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
    /// The arithmetic the runtime says it computed in (`fp32`, `tf32`, `fp16`, `bf16`, `int8`),
    /// when it says; agreement then uses that precision's tolerance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    /// The options the runtime was given (an execution provider's own, `session.*` settings).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub settings: std::collections::BTreeMap<String, String>,
}
