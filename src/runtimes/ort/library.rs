//! Finding ONNX Runtime's shared library, and fetching the pinned one from PyPI (`xbench setup ort`).
//!
//! Search order: `--ort-lib`, `ORT_DYLIB_PATH`, the project-local copy under `.xbench/`
//! (or `$XBENCH_HOME`), then an installed Python `onnxruntime` package.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The ONNX Runtime release xbench is built and tested against (the `ort` crate needs ≥ 1.31).
pub const ORT_VERSION: &str = "1.31.1";

/// A library found, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct OrtLibrary {
    pub path: PathBuf,
    /// `--ort-lib`, `ORT_DYLIB_PATH`, `project copy` or `python onnxruntime`.
    pub found_by: String,
}

/// Where project-local downloads live.
pub fn xbench_home() -> PathBuf {
    std::env::var_os("XBENCH_HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".xbench"))
}

fn is_main_library(name: &str) -> bool {
    name.starts_with("libonnxruntime") && !name.contains("providers") && (name.contains(".so") || name.ends_with(".dylib"))
        || name == "onnxruntime.dll"
}

/// The main library file inside `dir`, newest name first.
fn library_in(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.file_name().and_then(|n| n.to_str()).is_some_and(is_main_library))
        .collect();
    found.sort();
    found.pop()
}

/// Finds the library, or says where it looked and how to get one.
pub fn find_ort_library(explicit: Option<&Path>) -> std::result::Result<OrtLibrary, String> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(OrtLibrary { path: p.to_path_buf(), found_by: "--ort-lib".into() })
        } else {
            Err(format!("ONNX Runtime library not found at --ort-lib {}\n  fix: give the path of libonnxruntime.so.* (or run `xbench setup ort`)", p.display()))
        };
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(OrtLibrary { path: p, found_by: "ORT_DYLIB_PATH".into() })
        } else {
            Err(format!("ORT_DYLIB_PATH={} is not a file\n  fix: point it at libonnxruntime.so.*, or unset it and run `xbench setup ort`", p.display()))
        };
    }
    let local = project_dir(false);
    if let Some(p) = library_in(&local) {
        return Ok(OrtLibrary { path: p.canonicalize().unwrap_or(p), found_by: "project copy".into() });
    }
    if let Some(p) = python_onnxruntime() {
        return Ok(OrtLibrary { path: p, found_by: "python onnxruntime".into() });
    }
    Err(format!(
        "ONNX Runtime library not found (looked at --ort-lib, ORT_DYLIB_PATH, {}, and a Python onnxruntime package)\n  fix: run `xbench setup ort` (fetches onnxruntime=={ORT_VERSION} from PyPI with pip), or pass --ort-lib PATH",
        local.display()
    ))
}

/// The project-local folder for the CPU (or GPU) build.
fn project_dir(gpu: bool) -> PathBuf {
    xbench_home().join(if gpu { format!("onnxruntime-gpu-{ORT_VERSION}") } else { format!("onnxruntime-{ORT_VERSION}") })
}

fn python_onnxruntime() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args(["-c", "import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("capi");
    library_in(&dir)
}

/// Downloads the pinned `onnxruntime` (or `onnxruntime-gpu`) wheel with pip and unpacks its
/// shared libraries into the project-local folder. Returns the main library's path.
pub fn setup_ort(gpu: bool) -> Result<PathBuf> {
    let dest = project_dir(gpu);
    if let Some(p) = library_in(&dest) {
        return Ok(p);
    }
    let package = if gpu { "onnxruntime-gpu" } else { "onnxruntime" };
    // Per-process folders, so that two xbench processes setting up at once do not collide.
    let download = xbench_home().join(format!("downloads-{}", std::process::id()));
    std::fs::create_dir_all(&download).with_context(|| format!("cannot create {}", download.display()))?;
    tracing::info!("fetching {package}=={ORT_VERSION} from PyPI with pip into {}", download.display());
    let status = Command::new("python3")
        .args(["-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d"])
        .arg(&download)
        .arg(format!("{package}=={ORT_VERSION}"))
        .status()
        .context("cannot run `python3 -m pip`\n  fix: install Python 3 with pip, or download ONNX Runtime yourself and pass --ort-lib PATH")?;
    if !status.success() {
        bail!(
            "`pip download {package}=={ORT_VERSION}` failed ({status})\n  fix: check that PyPI is reachable, or download ONNX Runtime yourself and pass --ort-lib PATH"
        );
    }
    let wheel = std::fs::read_dir(&download)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.starts_with(&format!("{}-{ORT_VERSION}-", package.replace('-', "_"))) && n.ends_with(".whl")
        })
        .max()
        .with_context(|| format!("pip reported success but no {package} {ORT_VERSION} wheel is in {}", download.display()))?;
    let staging = dest.with_file_name(format!(".partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)?;
    let unpacked = unpack(&wheel, &staging);
    let _ = std::fs::remove_dir_all(&download);
    if let Err(e) = unpacked {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    if let Err(e) = std::fs::rename(&staging, &dest) {
        let _ = std::fs::remove_dir_all(&staging);
        if library_in(&dest).is_none() {
            bail!("cannot move the unpacked library to {}: {e}", dest.display());
        }
    }
    let lib = library_in(&dest).context("the unpacked library vanished")?;
    let lib = lib.canonicalize().unwrap_or(lib);
    tracing::info!("ONNX Runtime {ORT_VERSION} is at {}", lib.display());
    Ok(lib)
}

/// Unpacks the ONNX Runtime libraries of a wheel (a zip) into `dest`.
fn unpack(wheel: &Path, dest: &Path) -> Result<()> {
    // The wheel is a zip; Python (already needed for pip) unpacks the libraries.
    let script = r#"
import sys, zipfile, os
z = zipfile.ZipFile(sys.argv[1])
for n in z.namelist():
    b = os.path.basename(n)
    if '/capi/' in n and (b.startswith('libonnxruntime') or b == 'onnxruntime.dll'):
        open(os.path.join(sys.argv[2], b), 'wb').write(z.read(n))
"#;
    let status = Command::new("python3").arg("-c").arg(script).arg(wheel).arg(dest).status()?;
    if !status.success() {
        bail!("could not unpack {}", wheel.display());
    }
    if library_in(dest).is_none() {
        bail!("{} holds no ONNX Runtime library for this platform", wheel.display());
    }
    Ok(())
}
