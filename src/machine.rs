//! The machine a run happens on (sysinfo: CPU, cores, memory, OS, on Linux and macOS alike) and
//! the peak memory of this process.

use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

use crate::results::Machine;

/// What this machine is.
pub fn detect() -> Machine {
    let sys = System::new_with_specifics(RefreshKind::nothing().with_cpu(CpuRefreshKind::nothing()).with_memory(MemoryRefreshKind::nothing().with_ram())).ok();
    let cpu = sys
        .as_ref()
        .and_then(|s| s.cpus().first().map(|c| c.brand().trim().to_string()))
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let memory_gib = sys.as_ref().map(|s| (s.total_memory() as f64 / (1u64 << 30) as f64 * 10.0).round() / 10.0).unwrap_or(0.0);
    let os = System::long_os_version().unwrap_or_else(|_| std::env::consts::OS.to_string());
    let kernel = System::kernel_version().map(|k| format!(", kernel {k}")).unwrap_or_default();
    Machine {
        name: System::host_name().ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "unknown".into()),
        cpu,
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        memory_gib,
        os: format!("{os}{kernel}"),
        arch: std::env::consts::ARCH.to_string(),
    }
}

/// Peak resident memory of this process, or of the largest of its children that have ended (an
/// external runtime's program), whichever is larger, in MiB (`getrusage`; `None` where it is not
/// available).
pub fn peak_rss_mib() -> Option<f64> {
    #[cfg(unix)]
    {
        let peak = |who| {
            // SAFETY: getrusage fills the struct it is given and touches nothing else.
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            (unsafe { libc::getrusage(who, &mut usage) } == 0).then_some(usage.ru_maxrss as f64)
        };
        let max = peak(libc::RUSAGE_SELF)?.max(peak(libc::RUSAGE_CHILDREN).unwrap_or(0.0));
        // Linux counts kilobytes, macOS bytes.
        Some(if cfg!(target_os = "macos") { max / (1024.0 * 1024.0) } else { max / 1024.0 })
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_machine_is_described_and_this_process_has_a_peak() {
        let m = super::detect();
        assert!(m.cores >= 1 && m.memory_gib > 0.0 && m.cpu != "unknown" && !m.os.is_empty(), "{m:?}");
        let _grow = vec![1u8; 64 << 20];
        assert!(super::peak_rss_mib().unwrap() >= 1.0);
    }
}
