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

/// What the timer covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Timing {
    /// Host tensors in, outputs copied to host (the paper's way).
    #[default]
    EndToEnd,
    /// Inputs on the device before the clock starts (ONNX Runtime: bound there once by IO
    /// binding), outputs left there; the timer stops after the device has finished.
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

/// How host data moves inside an end-to-end timer, in the words every runtime's series shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostMemory {
    /// The computation reads and writes host memory itself: no copies to a device (CPU runtimes).
    #[serde(rename = "none")]
    NoCopies,
    /// Copies between ordinary (pageable) host memory and the device.
    Pageable,
    /// Copies between page-locked (pinned) host buffers and the device.
    Pinned,
    /// Host and device share memory (Apple silicon; CUDA managed memory): no copies.
    Unified,
}

impl HostMemory {
    pub const ALL: [HostMemory; 4] = [HostMemory::NoCopies, HostMemory::Pageable, HostMemory::Pinned, HostMemory::Unified];

    pub fn as_str(self) -> &'static str {
        match self {
            HostMemory::NoCopies => "none",
            HostMemory::Pageable => "pageable",
            HostMemory::Pinned => "pinned",
            HostMemory::Unified => "unified",
        }
    }

    pub fn parse(s: &str) -> Option<HostMemory> {
        HostMemory::ALL.into_iter().find(|h| h.as_str() == s)
    }
}

/// What a series' timer covers, in one vocabulary for every runtime: end to end or
/// device-resident, and how host data moved (`None` where the runtime does not say, and for a
/// device-resident timer, which copies nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerClass {
    pub timing: Timing,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_memory: Option<HostMemory>,
}

impl TimerClass {
    pub fn new(timing: Timing, host_memory: Option<HostMemory>) -> TimerClass {
        TimerClass { timing, host_memory: if timing == Timing::DeviceResident { None } else { host_memory } }
    }

    /// The class of a session recorded before classes were, from what xbench's own runtimes
    /// recorded then: the provider (tract, ONNX Runtime's CPU or CUDA provider) and the cell's
    /// timer label. `None` for anything else (external programs, other providers).
    pub fn of_earlier_record(providers: &[String], label: &str) -> Option<TimerClass> {
        let provider = providers.first().map(String::as_str)?;
        let timing = if label.starts_with("device-resident") {
            Timing::DeviceResident
        } else if label.starts_with("end-to-end") {
            Timing::EndToEnd
        } else {
            return None;
        };
        let host = match provider {
            "tract CPU" | "CPUExecutionProvider" | "CUDAExecutionProvider" if timing == Timing::DeviceResident => return Some(TimerClass::new(timing, None)),
            "tract CPU" | "CPUExecutionProvider" => HostMemory::NoCopies,
            "CUDAExecutionProvider" if label.contains("pinned copies") => HostMemory::Pinned,
            "CUDAExecutionProvider" if label == "end-to-end" => HostMemory::Pageable,
            _ => return None,
        };
        Some(TimerClass::new(timing, Some(host)))
    }
}

impl std::fmt::Display for TimerClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = match self.host_memory {
            None => "",
            Some(HostMemory::NoCopies) => ", on host memory",
            Some(HostMemory::Pageable) => ", pageable copies",
            Some(HostMemory::Pinned) => ", pinned copies",
            Some(HostMemory::Unified) => ", unified memory",
        };
        write!(f, "{}{how}", self.timing.as_str())
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
    pub precision: Option<crate::scenario::Precision>,
    /// The options the runtime was given (an execution provider's own, `session.*` settings).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub settings: std::collections::BTreeMap<String, String>,
    /// What the timer covers, in the vocabulary every runtime shares; `None` where the runtime
    /// did not say (results written before it was recorded, an external program that sends none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timer_class: Option<TimerClass>,
    /// What an external program says about how it built the model (which weights, which
    /// configuration), in its own words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earlier_records_of_xbench_own_runtimes_get_their_timer_class_and_others_none() {
        let of = |p: &str, label: &str| TimerClass::of_earlier_record(&[p.to_string()], label).map(|c| c.to_string());
        assert_eq!(of("tract CPU", "end-to-end").as_deref(), Some("end-to-end, on host memory"));
        assert_eq!(of("CUDAExecutionProvider", "end-to-end").as_deref(), Some("end-to-end, pageable copies"));
        assert_eq!(of("CUDAExecutionProvider", "end-to-end (pinned copies, CUDA graph)").as_deref(), Some("end-to-end, pinned copies"));
        assert_eq!(of("CUDAExecutionProvider", "device-resident (bound buffers, CUDA graph)").as_deref(), Some("device-resident"));
        assert_eq!(of("torch (NVIDIA H200 (cuda:0))", "end-to-end (CUDA graph)"), None, "an external program's is its own to say");
        assert_eq!(of("CoreMLExecutionProvider", "end-to-end"), None);
    }
}
