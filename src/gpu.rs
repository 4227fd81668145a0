//! NVIDIA GPU facts through NVML (loaded at run time; absent on machines without the driver):
//! the device's name, driver and CUDA versions, a process's GPU memory, and the total-energy counter.

use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::Nvml;

use crate::results::GpuInfo;

pub struct Gpu {
    nvml: Nvml,
    index: u32,
}

impl Gpu {
    /// Opens NVML; `Err` says why not (no driver, no such device).
    pub fn open(index: u32) -> Result<Gpu, String> {
        let nvml = Nvml::init().map_err(|e| format!("NVML unavailable: {e}"))?;
        nvml.device_by_index(index).map_err(|e| format!("no GPU {index}: {e}"))?;
        Ok(Gpu { nvml, index })
    }

    pub fn info(&self) -> Option<GpuInfo> {
        let d = self.nvml.device_by_index(self.index).ok()?;
        let cuda = self.nvml.sys_cuda_driver_version().ok().map(|v| format!("{}.{}", v / 1000, (v % 1000) / 10)).unwrap_or_default();
        Some(GpuInfo {
            index: self.index,
            name: d.name().unwrap_or_default(),
            driver: self.nvml.sys_driver_version().unwrap_or_default(),
            cuda_driver_version: cuda,
            memory_total_mib: d.memory_info().map(|m| m.total as f64 / 1048576.0).unwrap_or(0.0),
        })
    }

    /// The device's total energy counter since the driver loaded, in millijoules (Volta and newer).
    pub fn energy_mj(&self) -> Option<u64> {
        self.nvml.device_by_index(self.index).ok()?.total_energy_consumption().ok()
    }

    /// GPU memory used by process `pid` on this device, in MiB.
    pub fn process_memory_mib(&self, pid: u32) -> Option<f64> {
        let d = self.nvml.device_by_index(self.index).ok()?;
        d.running_compute_processes().ok()?.into_iter().find(|p| p.pid == pid).and_then(|p| match p.used_gpu_memory {
            UsedGpuMemory::Used(bytes) => Some(bytes as f64 / 1048576.0),
            UsedGpuMemory::Unavailable => None,
        })
    }
}
