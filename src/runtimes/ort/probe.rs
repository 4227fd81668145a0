//! Plugin libraries are probed in a child process before this one loads them. ONNX Runtime calls
//! into a library as it registers it, and one built for another ONNX Runtime, or broken, can crash
//! the process that does: a library whose probe does not survive is never loaded here. Its runtime
//! is not usable, with the library, the signal and the fix named, and the other runtimes run. The
//! probe is a child of the child-process layer (`crate::child`), as workers are: a process group of
//! its own, dying with xbench, ended by the one kill rule when it outlives its time limit.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::anyhow;

use crate::child::{Child, Framing};
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
    let mut cmd = Command::new(exe);
    cmd.args(["probe-ep", name]).arg(path).arg("--ort-lib").arg(ort_lib);
    run_probe(cmd, path, LIMIT)
}

/// Runs `cmd`, the probe of the library at `path`, as a child that reads nothing, waiting `limit`
/// at most for it to end (then it is killed, with what it started).
fn run_probe(cmd: Command, path: &Path, limit: Duration) -> Result<(), String> {
    let mut child = Child::spawn_keeping_stderr(cmd, Framing::Lossy).map_err(|e| format!("cannot start a process to probe the plugin library {} ({e})", path.display()))?;
    child.close_input();
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait() {
            break status;
        }
        if Instant::now() >= deadline {
            child.kill();
            return Err(format!("registering the plugin library {} did not finish within {} s in a probe process (it was not loaded into xbench)\n  fix: use a build of it made for ONNX Runtime {}, or leave this runtime out", path.display(), limit.as_secs_f64(), super::ORT_VERSION));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let said = child.stderr();
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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    fn gone(pid: u32) -> bool {
        for _ in 0..300 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat.is_empty() || stat[stat.rfind(')').unwrap() + 1..].trim_start().starts_with('Z') {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn a_probe_leads_its_own_process_group_and_is_killed_with_what_it_started_at_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let (me, sleeper) = (dir.path().join("me"), dir.path().join("sleeper"));
        let script = format!("sleep 60 & echo $! > {s}.tmp && mv {s}.tmp {s}; echo $$ > {m}.tmp && mv {m}.tmp {m}; wait", s = sleeper.display(), m = me.display());
        let lib = Path::new("/opt/lib/libhangs.so");
        let probing = std::thread::spawn(move || {
            let started = Instant::now();
            (run_probe(sh(&script), lib, Duration::from_millis(1500)), started.elapsed())
        });
        let read = |p: &Path| -> u32 {
            for _ in 0..1000 {
                if let Ok(t) = std::fs::read_to_string(p) {
                    return t.trim().parse().unwrap();
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            panic!("{} was not written", p.display())
        };
        let (me, sleeper) = (read(&me), read(&sleeper));
        let stat = std::fs::read_to_string(format!("/proc/{me}/stat")).unwrap();
        let group: u32 = stat[stat.rfind(')').unwrap() + 1..].split_whitespace().nth(2).unwrap().parse().unwrap();
        assert_eq!(group, me, "the probe leads a process group of its own");
        let (said, took) = probing.join().unwrap();
        let e = said.unwrap_err();
        assert!(e.contains("/opt/lib/libhangs.so did not finish within 1.5 s") && e.contains("fix:"), "{e}");
        assert!(took < Duration::from_secs(20), "{took:?}");
        assert!(gone(me), "the probe outlived its limit");
        assert!(gone(sleeper), "what the probe started outlived it");
    }

    #[test]
    fn a_crash_names_the_library_and_the_signal_and_a_failed_probe_its_own_error() {
        let lib = Path::new("/opt/lib/libcrash.so");
        let e = run_probe(sh("echo 'registering...' >&2; kill -SEGV $$"), lib, Duration::from_secs(60)).unwrap_err();
        assert!(e.contains("/opt/lib/libcrash.so crashed a probe process with signal 11 (SIGSEGV)") && e.contains("fix: use a build of the plugin"), "{e}");
        let e = run_probe(sh("echo noise >&2; echo 'error: ONNX Runtime cannot register it' >&2; exit 1"), lib, Duration::from_secs(60)).unwrap_err();
        assert_eq!(e, "ONNX Runtime cannot register it");
        let e = run_probe(sh("exit 3"), lib, Duration::from_secs(60)).unwrap_err();
        assert!(e.contains("the probe of the plugin library /opt/lib/libcrash.so ended with exit status: 3"), "{e}");
        assert_eq!(run_probe(sh("echo fine >&2"), lib, Duration::from_secs(60)), Ok(()));
    }
}
