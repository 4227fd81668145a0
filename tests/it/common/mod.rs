//! What the test modules share: the harness that starts the binary (harness.rs), and a Python
//! environment with the packages the tests drive (Python onnxruntime, numpy, safetensors, onnx),
//! installed from PyPI with pip on first use into the project's `.xbench/` folder, as a user's
//! set-up would.

#![allow(dead_code)]

mod harness;

pub use harness::*;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The packages, pinned.
pub const PACKAGES: &[&str] = &["onnxruntime==1.31.1", "numpy==2.4.6", "safetensors==0.8.0", "onnx==1.23.2"];

/// The folder holding the packages (for `PYTHONPATH`), installed first if needed (once per test process).
pub fn python_env() -> PathBuf {
    static ENV: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ENV.get_or_init(install).clone()
}

fn install() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(".xbench");
    let dest = root.join("python-test");
    let stamp = dest.join(".xbench-packages");
    let want = PACKAGES.join(" ");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == want) {
        return dest;
    }
    std::fs::create_dir_all(&root).unwrap();
    // Installed beside the destination and moved into place, so that tests running at once never see half a folder.
    let staging = tempfile::Builder::new().prefix(".python-test-").tempdir_in(&root).unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let out = Command::new("python3")
        .args(["-I", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-warn-script-location", "--target"])
        .arg(staging.path())
        .args(PACKAGES)
        .current_dir(cwd.path())
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "pip install {want} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(staging.path().join(".xbench-packages"), &want).unwrap();
    let staged = staging.keep();
    let _ = std::fs::remove_dir_all(&dest);
    if std::fs::rename(&staged, &dest).is_err() {
        let _ = std::fs::remove_dir_all(&staged);
    }
    assert!(stamp.is_file(), "the Python environment is in place at {}", dest.display());
    dest
}
