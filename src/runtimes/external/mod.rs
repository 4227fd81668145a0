//! Runtimes outside xbench's process: a program speaking the external runtime protocol
//! (docs/runtime-protocol.md) — PyTorch, Python onnxruntime, … — loads the model and times its
//! own iterations; xbench feeds the same inputs as every runtime, checks every answer, and keeps
//! the statistics, agreement, results and reports.

mod generation;
mod messages;
mod peer;
mod session;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::{frameworks, Availability, DeviceClass, Engine, Runtime, RuntimeId, RuntimeOptions, Session};

/// Ends every program (every child) still running: for a process that exits at once.
pub use crate::child::end_all;

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
    /// The entry's `python:`, when it gives one.
    python: Option<PathBuf>,
    options: BTreeMap<String, String>,
}

impl External {
    pub fn new(id: RuntimeId, program: &Path, python: Option<&Path>, options: &BTreeMap<String, String>) -> External {
        External { id, program: program.to_path_buf(), python: python.map(Path::to_path_buf), options: options.clone() }
    }

    fn is_python(&self) -> bool {
        self.program.extension().and_then(|e| e.to_str()) == Some("py")
    }

    /// The interpreter of a `.py` program (`None` for any other program); `Err` names what is
    /// missing and the set-up command.
    fn interpreter(&self) -> Result<Option<frameworks::Interpreter>, String> {
        if !self.is_python() {
            return Ok(None);
        }
        frameworks::interpreter(&self.program, self.python.as_deref()).map(Some)
    }

    /// The GPU the options ask for, where this machine has none: why not.
    fn missing_gpu(&self) -> Option<String> {
        let asked = |k: &str| self.options.get(k).map(|v| v.to_ascii_lowercase()).filter(|v| v == "cuda" || v == "gpu");
        let what = asked("device").or_else(|| asked("provider"))?;
        if cfg!(target_os = "macos") {
            return (what == "cuda").then(|| "asks for device cuda, and this Mac has no NVIDIA GPU\n  fix: use device gpu (Metal) or cpu".to_string());
        }
        match crate::gpu::Gpu::open(0) {
            Ok(_) => None,
            Err(why) => Some(format!("asks for device {what}, and no NVIDIA GPU can be reached here ({why})\n  fix: run it on a machine with an NVIDIA GPU and its driver, or use device cpu")),
        }
    }
}

impl Runtime for External {
    fn check(&self, id: RuntimeId, _opts: &RuntimeOptions) -> Availability {
        let p = &self.program;
        let python = self.is_python();
        // A framework that is not set up is not a reason to skip: the program's cells fail, naming
        // the set-up command (`load`).
        let interpreter = self.interpreter();
        let problem = if !p.is_file() {
            Some(format!("no program at {}\n  fix: give `external:` the path of a program speaking docs/runtime-protocol.md, relative to the scenario file", p.display()))
        } else if let Some(why) = self.missing_gpu() {
            Some(format!("{} {why}", p.display()))
        } else if let Some(i) = interpreter.as_ref().ok().and_then(Option::as_ref) {
            match python_runs(&i.python) {
                Ok(true) => None,
                Err(why) => Some(format!("{} is a Python program, and {why}", p.display())),
                Ok(false) => {
                    let fix = if self.python.is_some() { "give `python:` the path of a Python 3.11 or later interpreter" } else { "install Python 3.11 or later as python3" };
                    Some(format!("{} is a Python program, and its interpreter ({}, 3.11 or later: it is run with `-P`) cannot be run here\n  fix: {fix}", p.display(), i.source))
                }
            }
        } else if !python && !is_executable(p) {
            Some(format!("{} cannot be executed\n  fix: make it executable (chmod +x), or give a .py program", p.display()))
        } else {
            None
        };
        if let Some(detail) = problem {
            return Availability { runtime: id, usable: false, version: None, detail, device: None, engine: None };
        }
        let (version, how) = match &interpreter {
            Ok(Some(i)) => {
                let v = i.framework.map(|fw| frameworks::versions(&i.python, fw.shown).join(", ")).filter(|v| !v.is_empty());
                (v, format!(", run by {}", i.source))
            }
            Ok(None) => (None, String::new()),
            Err(why) => (None, format!("; its cells fail: {why}")),
        };
        Availability { runtime: id, usable: true, version, detail: format!("external program {} (protocol {PROTOCOL}){how}", p.display()), device: None, engine: None }
    }

    fn load(&self, onnx: &Path, opts: &RuntimeOptions) -> Result<Box<dyn Session>> {
        let python = self.interpreter().map_err(|why| anyhow::anyhow!(why))?;
        Ok(Box::new(session::ExternalSession::start(self.id, &self.program, python.as_ref().map(|i| i.python.as_path()), &self.options, onnx, opts)?))
    }

    /// What the options say it computes on: `device: cuda` (or `gpu` off macOS, where MLX's `gpu`
    /// is CUDA) or `provider: cuda` is an NVIDIA GPU.
    fn device(&self) -> DeviceClass {
        let on = |k: &str| self.options.get(k).is_some_and(|v| v.eq_ignore_ascii_case("cuda") || (!cfg!(target_os = "macos") && v.eq_ignore_ascii_case("gpu")));
        let metal = cfg!(target_os = "macos") && self.options.get("device").is_some_and(|v| v.eq_ignore_ascii_case("gpu"));
        if metal {
            DeviceClass::Apple
        } else if on("device") || on("provider") {
            DeviceClass::CudaGpu
        } else {
            DeviceClass::Cpu
        }
    }

    fn engine(&self) -> Engine {
        Engine::External
    }
}

/// Whether `python` runs and is 3.11 or later (programs are started with `-P`, which older
/// versions refuse), asked as xbench's helpers ask (isolated, from an empty folder).
/// `Err` when the check itself cannot be made (no empty folder for it in the temporary folder),
/// which is no fault of Python's.
fn python_runs(python: &Path) -> Result<bool, String> {
    let cwd = crate::runtimes::python::scratch_folder("xbench-python-").map_err(|e| {
        format!(
            "{} is run from an empty folder made in the temporary folder {}, where none can be made ({e:#})\n  fix: point TMPDIR at a folder that exists and is writable, or unset it",
            python.display(),
            std::env::temp_dir().display()
        )
    })?;
    Ok(std::process::Command::new(python)
        .args(["-I", "-c", "import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)"])
        .current_dir(cwd.path())
        .output()
        .is_ok_and(|o| o.status.success()))
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
