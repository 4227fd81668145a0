//! Plugin execution providers: ONNX Runtime (1.23 and later) loads them from libraries of their
//! own, registered once per process; each then offers the devices of this machine it supports.
//! The ones a user can install from PyPI are catalogued here with the files their wheels carry;
//! a library is found by `--ep-lib NAME=PATH`, the project copy (`xbench setup ep NAME`), or an
//! installed Python package's folder (looked up, never imported).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};

use super::library::{pip_download, python_package_dir, unzip, xbench_home};
use crate::results::DeviceClass;

/// A plugin execution provider published on PyPI.
#[derive(Debug)]
pub struct Plugin {
    /// Its name in xbench (`xbench setup ep NAME`, `--ep-lib NAME=PATH`).
    pub name: &'static str,
    /// The runtime registered for it.
    pub runtime: &'static str,
    pub package: &'static str,
    pub version: &'static str,
    /// The Python package's module folder inside the wheel.
    pub module: &'static str,
    /// The plugin library, per platform (Linux, macOS, Windows names).
    pub libraries: &'static [&'static str],
    /// Files that must sit beside the library for it to work.
    pub beside: &'static [&'static str],
    /// Libraries of the wheel to load first, by file name prefix (bundled dependencies the plugin
    /// does not find by itself).
    pub preload: &'static [&'static str],
    /// The execution provider's name as ONNX Runtime reports it.
    pub ep: &'static str,
    /// The platforms its wheel exists for, in words, and whether this is one.
    pub platforms: &'static str,
    pub supported_here: fn() -> bool,
    /// The hardware it offers devices for, in words.
    pub hardware: &'static str,
    pub device: DeviceClass,
    /// Extra arguments for `pip download` (a wheel for another platform than the one running).
    pub pip_platform: &'static [&'static str],
}

fn linux_or_windows_x86_64() -> bool {
    cfg!(all(any(target_os = "linux", target_os = "windows"), target_arch = "x86_64"))
}

fn macos_arm64() -> bool {
    cfg!(all(target_os = "macos", target_arch = "aarch64"))
}

pub static PLUGINS: &[Plugin] = &[
    Plugin {
        name: "openvino",
        runtime: "ort-openvino",
        package: "onnxruntime-ep-openvino",
        version: "1.8.1",
        module: "onnxruntime_ep_openvino",
        libraries: &["libonnxruntime_providers_openvino_plugin.so", "libonnxruntime_providers_openvino_plugin.dylib", "onnxruntime_providers_openvino_plugin.dll"],
        beside: &[],
        preload: &[],
        ep: "OpenVINOExecutionProvider",
        platforms: "Linux x86-64 and Windows x86-64",
        supported_here: linux_or_windows_x86_64,
        hardware: "Intel CPUs, GPUs and NPUs only",
        device: DeviceClass::Cpu,
        pip_platform: &[],
    },
    Plugin {
        name: "webgpu",
        runtime: "ort-webgpu",
        package: "onnxruntime-ep-webgpu",
        version: "0.4.0",
        module: "onnxruntime_ep_webgpu",
        libraries: &["libonnxruntime_providers_webgpu.so", "libonnxruntime_providers_webgpu.dylib", "onnxruntime_providers_webgpu.dll"],
        beside: &[],
        preload: &[],
        ep: "WebGpuExecutionProvider",
        platforms: "Linux x86-64, macOS and Windows",
        supported_here: || true,
        hardware: "GPUs through WebGPU (Dawn): on Linux a Vulkan driver and the Vulkan loader (libvulkan.so.1)",
        device: DeviceClass::Gpu,
        pip_platform: &[],
    },
    Plugin {
        name: "mlx",
        runtime: "ort-mlx",
        package: "onnxruntime-ep-mlx",
        version: "0.31.0",
        module: "onnxruntime_ep_mlx",
        libraries: &["libonnxruntime_mlx_ep.dylib"],
        beside: &["libmlx.dylib", "mlx.metallib"],
        preload: &[],
        ep: "MLXExecutionProvider",
        platforms: "macOS 14 or later on Apple silicon (arm64)",
        supported_here: macos_arm64,
        hardware: "the GPU of Apple silicon, through MLX and Metal",
        device: DeviceClass::Apple,
        pip_platform: &["--platform", "macosx_14_0_arm64", "--python-version", "3.11"],
    },
    Plugin {
        name: "tensorrt-rtx",
        runtime: "ort-tensorrt-rtx",
        package: "onnxruntime-ep-nv-tensorrt-rtx-cu13",
        version: "0.5.0",
        module: "onnxruntime_ep_nv_tensorrt_rtx",
        libraries: &["libonnxruntime_providers_nv_tensorrt_rtx.so", "onnxruntime_providers_nv_tensorrt_rtx.dll"],
        beside: &[],
        preload: &["libcudart.so.13", "libtensorrt_rtx.so", "libtensorrt_onnxparser_rtx.so"],
        ep: "NvTensorRTRTXExecutionProvider",
        platforms: "Linux x86-64 and Windows x86-64, with CUDA 13",
        supported_here: linux_or_windows_x86_64,
        hardware: "NVIDIA RTX GPUs of compute capability 8.6, 8.9 or 12.0 and later (not A100, H100 or H200)",
        device: DeviceClass::CudaGpu,
        pip_platform: &[],
    },
];

/// The catalogued plugin called `name` (`openvino`, …), or whose runtime or EP it is.
pub fn plugin(name: &str) -> Option<&'static Plugin> {
    PLUGINS.iter().find(|p| p.name == name || p.runtime == name || p.ep == name)
}

/// The names `xbench setup ep` takes.
pub fn names() -> String {
    PLUGINS.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
}

/// A plugin library found, and how.
#[derive(Debug, Clone)]
pub struct Found {
    pub path: PathBuf,
    pub found_by: String,
}

impl Plugin {
    /// The project copy's folder.
    fn project_dir(&self) -> PathBuf {
        xbench_home().join(format!("ep-{}-{}", self.package, self.version))
    }

    /// The plugin's library in `dir`, when the folder holds it (with the files it needs beside
    /// it), as an absolute path (ONNX Runtime takes others as relative to its own folder).
    fn library_in(&self, dir: &Path) -> Option<PathBuf> {
        let lib = self.libraries.iter().map(|l| dir.join(l)).find(|p| p.is_file())?;
        let lib = lib.canonicalize().unwrap_or(lib);
        self.beside.iter().all(|f| dir.join(f).is_file()).then_some(lib)
    }

    /// Finds the library: `explicit` (`--ep-lib`), the project copy, an installed Python package.
    pub fn find(&self, explicit: Option<&Path>) -> std::result::Result<Found, String> {
        if let Some(p) = explicit {
            return if p.is_file() {
                Ok(Found { path: p.canonicalize().unwrap_or_else(|_| p.to_path_buf()), found_by: "--ep-lib".into() })
            } else {
                Err(format!("no plugin library at --ep-lib {}={}\n  fix: give the path of {}", self.name, p.display(), self.libraries[0]))
            };
        }
        if let Some(p) = self.library_in(&self.project_dir()) {
            return Ok(Found { path: p, found_by: "project copy".into() });
        }
        if let Some(dir) = python_package_dir(self.module) {
            if let Some(p) = self.library_in(&dir) {
                return Ok(Found { path: p, found_by: format!("Python package {}", self.package) });
            }
        }
        Err(format!(
            "{} is not installed (looked at --ep-lib, {} and the Python package {})\n  fix: run `xbench setup ep {}` (fetches {}=={} from PyPI), or pass --ep-lib {}=PATH",
            self.ep,
            self.project_dir().display(),
            self.package,
            self.name,
            self.package,
            self.version,
            self.name
        ))
    }

    /// Loads the libraries the wheel bundles for the plugin, where the plugin needs them loaded first.
    pub fn preload(&self, library: &Path) {
        let Some(dir) = library.parent() else { return };
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for prefix in self.preload {
            if let Some(p) = files.iter().find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix))) {
                if let Err(e) = ort::util::preload_dylib(p) {
                    tracing::debug!("could not preload {}: {e}", p.display());
                }
            }
        }
    }
}

/// Downloads the plugin's pinned wheel with pip and unpacks its module folder into the project
/// copy; returns the library's path.
pub fn setup(p: &Plugin) -> Result<PathBuf> {
    let dest = p.project_dir();
    if let Some(lib) = p.library_in(&dest) {
        return Ok(lib);
    }
    let download = tempfile::Builder::new().prefix("xbench-ep-").tempdir()?;
    let wheel = pip_download(&format!("{}=={}", p.package, p.version), p.pip_platform, download.path())?;
    std::fs::create_dir_all(xbench_home()).with_context(|| format!("cannot create {}", xbench_home().display()))?;
    let staging = tempfile::Builder::new().prefix(".ep-partial-").tempdir_in(xbench_home())?;
    unzip(&wheel, &format!("{}/", p.module), staging.path(), "")?;
    if p.library_in(staging.path()).is_none() {
        bail!("the wheel {} holds none of {} (with {}) in {}/", wheel.display(), p.libraries.join(", "), p.beside.join(", "), p.module);
    }
    let staged = staging.keep();
    if std::fs::rename(&staged, &dest).is_err() {
        let _ = std::fs::remove_dir_all(&staged);
    }
    let lib = p.library_in(&dest).context("the unpacked plugin vanished")?;
    tracing::info!("{} {} is at {}", p.package, p.version, lib.display());
    Ok(lib)
}

/// Libraries registered in this process, by path: the outcome of each registration.
static REGISTERED: Mutex<Option<HashMap<PathBuf, std::result::Result<(), String>>>> = Mutex::new(None);

/// Registers the plugin library at `path` with ONNX Runtime's environment, once per process.
pub fn register(env: &ort::environment::Environment, name: &str, path: &Path) -> std::result::Result<(), String> {
    let mut guard = REGISTERED.lock().unwrap_or_else(|p| p.into_inner());
    let done = guard.get_or_insert_with(HashMap::new);
    if let Some(outcome) = done.get(path) {
        return outcome.clone();
    }
    // Loaded here only once a probe process has survived registering it.
    let probed = super::env::loaded_library().map_or(Ok(()), |ort| super::probe::probe(name, path, &ort));
    let outcome = probed.and_then(|()| env.register_ep_library(format!("xbench-{name}-{}", done.len()), path).map_err(|e| format!("ONNX Runtime cannot register {}: {e}", path.display())));
    done.insert(path.to_path_buf(), outcome.clone());
    outcome
}
