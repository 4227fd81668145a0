//! Runtimes outside xbench's process: a program speaking the external runtime protocol
//! (docs/runtime-protocol.md) — PyTorch, Python onnxruntime, … — loads the model and times its
//! own iterations; xbench feeds the same inputs as every runtime, checks every answer, and keeps
//! the statistics, agreement, results and reports.

mod peer;
mod session;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::{Availability, DeviceClass, Engine, Runtime, RuntimeId, RuntimeOptions, Session};

pub use peer::end_all;

/// The protocol version xbench speaks.
pub const PROTOCOL: u64 = 1;

/// How the scratch folders made by process `pid` are named in the temporary folder (followed by
/// random characters): a killed worker's are found and removed by the process that killed it.
pub fn scratch_prefix(pid: u32) -> String {
    format!("xbench-external-{pid}-")
}

/// Removes the scratch folders process `pid` left in the temporary folder (it was killed before
/// it could).
pub fn remove_scratch(pid: u32) {
    let prefix = scratch_prefix(pid);
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for e in entries.flatten().filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(&prefix))) {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// An external program, the name the scenario gives it, and its options.
pub struct External {
    id: RuntimeId,
    program: PathBuf,
    options: BTreeMap<String, String>,
}

impl External {
    pub fn new(id: RuntimeId, program: &Path, options: &BTreeMap<String, String>) -> External {
        External { id, program: program.to_path_buf(), options: options.clone() }
    }
}

impl Runtime for External {
    fn check(&self, id: RuntimeId, _opts: &RuntimeOptions) -> Availability {
        let p = &self.program;
        let python = p.extension().and_then(|e| e.to_str()) == Some("py");
        let problem = if !p.is_file() {
            Some(format!("no program at {}\n  fix: give `external:` the path of a program speaking docs/runtime-protocol.md, relative to the scenario file", p.display()))
        } else if let Some(Err(why)) = python.then(python_runs) {
            Some(format!("{} is a Python program, and {why}", p.display()))
        } else if python && python_runs() != Ok(true) {
            Some(format!("{} is a Python program, and python3 (3.11 or later: it is run with `-P`) cannot be run here\n  fix: install Python 3.11 or later as python3", p.display()))
        } else if !python && !is_executable(p) {
            Some(format!("{} cannot be executed\n  fix: make it executable (chmod +x), or give a .py program", p.display()))
        } else {
            None
        };
        match problem {
            Some(detail) => Availability { runtime: id, usable: false, version: None, detail, device: None, engine: None },
            None => Availability { runtime: id, usable: true, version: None, detail: format!("external program {} (protocol {PROTOCOL})", p.display()), device: None, engine: None },
        }
    }

    fn load(&self, onnx: &Path, opts: &RuntimeOptions) -> Result<Box<dyn Session>> {
        Ok(Box::new(session::ExternalSession::start(self.id, &self.program, &self.options, onnx, opts)?))
    }

    /// What the options say it computes on: `device: cuda` or `provider: cuda` is the GPU.
    fn device(&self) -> DeviceClass {
        let on = |k: &str| self.options.get(k).is_some_and(|v| v.eq_ignore_ascii_case("cuda"));
        if on("device") || on("provider") {
            DeviceClass::CudaGpu
        } else {
            DeviceClass::Cpu
        }
    }

    fn engine(&self) -> Engine {
        Engine::External
    }
}

/// Whether `python3` runs and is 3.11 or later (programs are started with `-P`, which older
/// versions refuse), asked as xbench's helpers ask (isolated, from an empty folder).
/// `Err` when the check itself cannot be made (no empty folder for it in the temporary folder),
/// which is no fault of Python's.
fn python_runs() -> Result<bool, String> {
    let (mut cmd, _cwd) = crate::runtimes::python::isolated().map_err(|e| {
        format!(
            "python3 is run from an empty folder made in the temporary folder {}, where none can be made ({e:#})\n  fix: point TMPDIR at a folder that exists and is writable, or unset it",
            std::env::temp_dir().display()
        )
    })?;
    Ok(cmd.args(["-c", "import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)"]).output().is_ok_and(|o| o.status.success()))
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file()
}
