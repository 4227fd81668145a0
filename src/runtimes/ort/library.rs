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
    library_in(&python_package_dir("onnxruntime")?.join("capi"))
}

/// `python3 -I` in an empty working folder (see `runtimes::python`).
fn python() -> Result<(Command, tempfile::TempDir)> {
    crate::runtimes::python::isolated()
}

/// The folder of an installed Python package (site-packages, or the user's own), found without
/// importing it.
pub fn python_package_dir(module: &str) -> Option<PathBuf> {
    let code = format!(
        "import importlib.util, site, sys\nsys.path.append(site.getusersitepackages())\ns = importlib.util.find_spec('{module}')\nprint(s.submodule_search_locations[0] if s and s.submodule_search_locations else '')"
    );
    let (mut cmd, _cwd) = python().ok()?;
    let out = cmd.args(["-c", &code]).output().ok()?;
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !dir.is_empty()).then(|| PathBuf::from(dir))
}

/// `pip download` of one pinned wheel (no dependencies) into `into`; `extra` adds arguments such as
/// another platform's tags. Returns the wheel's path.
pub fn pip_download(spec: &str, extra: &[&str], into: &Path) -> Result<PathBuf> {
    tracing::info!("fetching {spec} from PyPI with pip");
    let (mut cmd, _cwd) = python()?;
    let status = cmd
        .args(["-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"])
        .args(extra)
        .arg("-d")
        .arg(into)
        .arg(spec)
        .status()
        .context("cannot run `python3 -m pip`\n  fix: install Python 3 with pip, or download the library yourself and give its path")?;
    if !status.success() {
        bail!("`pip download {spec}` failed ({status})\n  fix: check that PyPI is reachable and that {spec} exists for this platform");
    }
    std::fs::read_dir(into)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|f| f.extension().and_then(|e| e.to_str()) == Some("whl"))
        .max()
        .with_context(|| format!("pip reported success but left no wheel of {spec} in {}", into.display()))
}

/// Unpacks the files of a wheel (a zip) whose path starts with `prefix` into `dest`, without the
/// prefix; `only` keeps just the files whose name it accepts. Entries that would land outside
/// `dest` are refused.
pub fn unzip(wheel: &Path, prefix: &str, dest: &Path, only: &str) -> Result<()> {
    // Python (already needed for pip) unpacks the zip.
    let script = r#"
import os, sys, zipfile
wheel, prefix, dest, only = sys.argv[1:5]
root = os.path.realpath(dest)
with zipfile.ZipFile(wheel) as z:
    for n in z.namelist():
        if n.endswith('/') or not n.startswith(prefix):
            continue
        rel = n[len(prefix):]
        base = os.path.basename(rel)
        if only and not (base.startswith(only) or base == only):
            continue
        to = os.path.realpath(os.path.join(dest, rel))
        if not to.startswith(root + os.sep):
            sys.exit('entry outside the folder: ' + n)
        os.makedirs(os.path.dirname(to), exist_ok=True)
        with open(to, 'wb') as f:
            f.write(z.read(n))
"#;
    let (mut cmd, _cwd) = python()?;
    let status = cmd.arg("-c").arg(script).arg(wheel).arg(prefix).arg(dest).arg(only).status()?;
    if !status.success() {
        bail!("could not unpack {}", wheel.display());
    }
    Ok(())
}

/// Downloads the pinned `onnxruntime` (or `onnxruntime-gpu`) wheel with pip and unpacks its
/// shared libraries into the project-local folder. Returns the main library's path.
pub fn setup_ort(gpu: bool) -> Result<PathBuf> {
    let dest = project_dir(gpu);
    if let Some(p) = library_in(&dest) {
        return Ok(p);
    }
    let package = if gpu { "onnxruntime-gpu" } else { "onnxruntime" };
    let download = tempfile::Builder::new().prefix("xbench-ort-").tempdir().context("cannot create a download folder")?;
    let wheel = pip_download(&format!("{package}=={ORT_VERSION}"), &[], download.path())?;
    std::fs::create_dir_all(xbench_home()).with_context(|| format!("cannot create {}", xbench_home().display()))?;
    let staging = tempfile::Builder::new().prefix(".partial-").tempdir_in(xbench_home())?;
    unzip(&wheel, "onnxruntime/capi/", staging.path(), "libonnxruntime")?;
    unzip(&wheel, "onnxruntime/capi/", staging.path(), "onnxruntime.dll")?;
    if library_in(staging.path()).is_none() {
        bail!("{} holds no ONNX Runtime library for this platform", wheel.display());
    }
    let staged = staging.keep();
    // Another process may have set up the same copy meanwhile: either copy will do.
    if std::fs::rename(&staged, &dest).is_err() {
        let _ = std::fs::remove_dir_all(&staged);
    }
    let lib = library_in(&dest).context("the unpacked library vanished")?;
    let lib = lib.canonicalize().unwrap_or(lib);
    tracing::info!("ONNX Runtime {ORT_VERSION} is at {}", lib.display());
    Ok(lib)
}
