//! Plugin libraries are probed in a child process before this one loads them. ONNX Runtime calls
//! into a library as it registers it, and one built for another ONNX Runtime, or broken, can crash
//! the process that does: a library whose probe does not survive is never loaded here. Its runtime
//! is not usable, with the library, the signal and the fix named, and the other runtimes run.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::anyhow;

use crate::runtimes::RuntimeOptions;

/// The xbench executable that probes (`xbench probe-ep`); unset, libraries are loaded unprobed
/// (a worker, already a process of its own, or a program using the library directly).
static EXE: OnceLock<PathBuf> = OnceLock::new();

/// How long a probe may take: loading ONNX Runtime and registering one library.
const LIMIT: Duration = Duration::from_secs(120);

/// Has every plugin library probed by `exe probe-ep` before this process loads it.
pub fn probe_with(exe: PathBuf) {
    let _ = EXE.set(exe);
}

/// Registers the library at `path` (provider `name`) with the ONNX Runtime at `ort_lib` in a child
/// process; `Err` says how that went wrong.
pub(super) fn probe(name: &str, path: &Path, ort_lib: &Path) -> Result<(), String> {
    let Some(exe) = EXE.get() else { return Ok(()) };
    let mut child = Command::new(exe)
        .args(["probe-ep", name])
        .arg(path)
        .arg("--ort-lib")
        .arg(ort_lib)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start a process to probe the plugin library {} ({e})", path.display()))?;
    let mut stderr = child.stderr.take().expect("piped");
    let reading = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("registering the plugin library {} did not finish within {} s in a probe process (it was not loaded into xbench)\n  fix: use a build of it made for ONNX Runtime {}, or leave this runtime out", path.display(), LIMIT.as_secs(), super::ORT_VERSION));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("cannot wait for the probe of {} ({e})", path.display())),
        }
    };
    let said = reading.join().unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            let what = match sig {
                4 => " (SIGILL)",
                6 => " (SIGABRT)",
                7 => " (SIGBUS)",
                8 => " (SIGFPE)",
                11 => " (SIGSEGV)",
                _ => "",
            };
            return Err(format!(
                "the plugin library {} crashed a probe process with signal {sig}{what} as ONNX Runtime {} registered it; it was not loaded into xbench\n  fix: use a build of the plugin made for ONNX Runtime {} (`xbench setup ep NAME` fetches the ones xbench knows), or leave this runtime out",
                path.display(),
                super::env::loaded_version().unwrap_or_else(|| "?".into()),
                super::ORT_VERSION
            ));
        }
    }
    // The probe's own error, as `xbench probe-ep` printed it.
    let line = said.lines().rev().find(|l| l.starts_with("error: ")).map(|l| l.trim_start_matches("error: ").to_string());
    Err(line.unwrap_or_else(|| format!("the probe of the plugin library {} ended with {status}", path.display())))
}

/// `xbench probe-ep NAME LIBRARY --ort-lib PATH`: loads ONNX Runtime, registers the library as
/// provider `name` (its bundled libraries loaded first, as xbench does) and asks for its devices.
pub fn probe_main(name: &str, library: &Path, ort_lib: &Path) -> anyhow::Result<()> {
    let opts = RuntimeOptions { ort_lib: Some(ort_lib.to_path_buf()), ..Default::default() };
    let env = super::env::environment(&opts)?;
    if let Some(p) = super::plugins::PLUGINS.iter().find(|p| p.ep == name) {
        p.preload(library);
    }
    env.register_ep_library("xbench-probe", library).map_err(|e| anyhow!("ONNX Runtime cannot register {}: {e}", library.display()))?;
    let _ = super::ep::devices(env, name).len();
    Ok(())
}
