//! The machine and GPU a run happened on, as recorded in results (detected by `crate::machine`
//! and `crate::gpu`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Host name; reports use it to name the machine unless overridden.
    pub name: String,
    pub cpu: String,
    /// Logical cores the process may use.
    pub cores: usize,
    pub memory_gib: f64,
    pub os: String,
    pub arch: String,
}

/// The GPU a run used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuInfo {
    pub index: u32,
    pub name: String,
    pub driver: String,
    /// CUDA version the driver supports, e.g. "13.0".
    pub cuda_driver_version: String,
    pub memory_total_mib: f64,
}
