//! Python, as xbench's own helpers run it (finding installed packages, pip, unpacking wheels,
//! asking for its version): `python3 -I` in a fresh, empty working folder. `-I` keeps the current
//! folder and the script's folder off the module path and ignores every `PYTHON*` variable
//! (`PYTHONPATH`, `PYTHONHOME`, `PYTHONSTARTUP`, …) and the user's site folder, so that nothing in
//! the folder xbench was started from (an `onnxruntime.py`, a `pip.py`, a `sitecustomize.py`, a
//! `.python-version` that a version manager would read) takes part. `python3` itself is looked up
//! on `PATH` from the empty folder, so a relative `PATH` entry finds nothing there.
//!
//! External runtimes are the user's own programs and run with the user's environment
//! (`runtimes::external`), in a fresh folder of their own too.

use std::process::Command;

use anyhow::{Context, Result};

/// A fresh, empty working folder for a helper process; removed when dropped.
pub(crate) fn scratch_folder(prefix: &str) -> Result<tempfile::TempDir> {
    tempfile::Builder::new().prefix(prefix).tempdir().context("cannot create a working folder for a helper process\n  fix: make the temporary folder writable (TMPDIR)")
}

/// `python3 -I` in an empty working folder; keep the folder until the command has run.
pub(crate) fn isolated() -> Result<(Command, tempfile::TempDir)> {
    let cwd = scratch_folder("xbench-python-")?;
    let mut cmd = Command::new("python3");
    cmd.arg("-I").current_dir(cwd.path());
    Ok((cmd, cwd))
}
