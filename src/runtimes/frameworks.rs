//! The Python frameworks that external runtime programs run on (MLX, PyTorch, Python
//! onnxruntime): a virtual environment per framework under `.xbench/runtimes/`, made by `xbench
//! setup runtime NAME [--gpu]` with pinned versions, and the interpreter each program runs with.
//!
//! A program says which framework it needs with a line `# xbench-framework: NAME` near its top.
//! Its interpreter is the runtime entry's `python:`, else the framework's environment under
//! `.xbench/runtimes/`, else `python3` on `PATH` where that has the framework's modules. A program
//! that names a framework found nowhere fails its cells naming the set-up command.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::ort::xbench_home;

/// A framework an external program can need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framework {
    pub name: &'static str,
    /// Modules that must be importable.
    pub modules: &'static [&'static str],
    /// The distributions whose versions are recorded and shown.
    pub shown: &'static [&'static str],
}

/// Packages every adapter needs besides its framework.
const COMMON: &[&str] = &["numpy==2.4.6", "safetensors==0.8.0", "onnx==1.23.2", "PyYAML==6.0.3"];

pub const FRAMEWORKS: &[Framework] = &[
    Framework { name: "mlx", modules: &["mlx", "mlx_transformers", "transformers"], shown: &["mlx", "mlx-cpu", "mlx-cuda-13", "mlx-metal", "mlx-transformers", "transformers"] },
    Framework { name: "torch", modules: &["torch", "transformers"], shown: &["torch", "transformers"] },
    Framework { name: "onnxruntime", modules: &["onnxruntime"], shown: &["onnxruntime", "onnxruntime-gpu"] },
];

impl Framework {
    pub fn by_name(name: &str) -> Option<&'static Framework> {
        FRAMEWORKS.iter().find(|f| f.name == name)
    }

    /// The packages `xbench setup runtime NAME` installs, pinned.
    pub fn packages(&self, gpu: bool) -> Vec<&'static str> {
        let mac = cfg!(target_os = "macos");
        let own: &[&str] = match (self.name, gpu, mac) {
            ("mlx", _, true) => &["mlx==0.32.4", "mlx-transformers==0.3.0", "transformers==5.17.0"],
            ("mlx", false, false) => &["mlx[cpu]==0.32.4", "mlx-transformers==0.3.0", "transformers==5.17.0"],
            ("mlx", true, false) => &["mlx[cuda13]==0.32.4", "mlx-transformers==0.3.0", "transformers==5.17.0"],
            ("torch", _, _) => &["torch==2.11.0", "transformers==5.17.0"],
            ("onnxruntime", false, _) => &["onnxruntime==1.31.1"],
            ("onnxruntime", true, _) => &["onnxruntime-gpu==1.31.1"],
            _ => &[],
        };
        own.iter().chain(COMMON).copied().collect()
    }

    /// The environment `xbench setup runtime` makes for this framework.
    pub fn env_dir(&self) -> PathBuf {
        xbench_home().join("runtimes").join(self.name)
    }

    /// The set-up command, as messages give it.
    pub fn setup_command(&self) -> String {
        let gpu = match self.name {
            "mlx" if !cfg!(target_os = "macos") => " (add --gpu for CUDA)",
            "onnxruntime" => " (add --gpu for CUDA)",
            _ => "",
        };
        format!("xbench setup runtime {}{gpu}", self.name)
    }
}

/// The interpreter of a virtual environment.
fn env_python(dir: &Path) -> PathBuf {
    if cfg!(windows) {
        dir.join("Scripts").join("python.exe")
    } else {
        dir.join("bin").join("python3")
    }
}

/// The framework a program names in a line `# xbench-framework: NAME` among its first 60 lines;
/// `Err` for a name xbench does not know.
pub fn declared(program: &Path) -> Result<Option<&'static Framework>, String> {
    let Ok(text) = std::fs::read(program) else { return Ok(None) };
    let head = String::from_utf8_lossy(&text[..text.len().min(16 * 1024)]).into_owned();
    for line in head.lines().take(60) {
        if let Some(name) = line.trim().strip_prefix("# xbench-framework:") {
            let name = name.trim();
            return Framework::by_name(name).map(Some).ok_or_else(|| {
                let known: Vec<&str> = FRAMEWORKS.iter().map(|f| f.name).collect();
                format!("{} declares `xbench-framework: {name}`, a framework xbench cannot set up\n  fix: declare one of {}, or remove the line and give the entry `python:`", program.display(), known.join(", "))
            });
        }
    }
    Ok(None)
}

/// Which interpreter runs a Python program, and why.
#[derive(Debug, Clone)]
pub struct Interpreter {
    pub python: PathBuf,
    /// Where it came from, in words (recorded with the runtime's availability).
    pub source: String,
    /// The framework the program declares, whose versions are recorded.
    pub framework: Option<&'static Framework>,
}

/// The interpreter for `program`: the entry's `python:` when given, else its framework's
/// environment, else `python3` on `PATH` (checked to have the framework's modules). `Err` says
/// what is missing and the set-up command.
pub fn interpreter(program: &Path, given: Option<&Path>) -> Result<Interpreter, String> {
    if let Some(p) = given {
        // A path (not a bare command) is made absolute here: the program runs in a folder of its own.
        let python = if p.components().count() > 1 { std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()) } else { p.to_path_buf() };
        return Ok(Interpreter { python, source: format!("python: {}", p.display()), framework: declared(program).ok().flatten() });
    }
    let path_python = Interpreter { python: PathBuf::from("python3"), source: "python3 on PATH".into(), framework: None };
    let Some(fw) = declared(program)? else { return Ok(path_python) };
    let env = env_python(&fw.env_dir());
    if env.is_file() {
        let env = std::path::absolute(&env).unwrap_or(env);
        return Ok(Interpreter { python: env, source: format!("{} environment {}", fw.name, fw.env_dir().display()), framework: Some(fw) });
    }
    let missing = missing_modules(Path::new("python3"), fw.modules);
    if missing.is_empty() {
        return Ok(Interpreter { source: format!("python3 on PATH (has {})", fw.modules.join(", ")), framework: Some(fw), ..path_python });
    }
    Err(format!(
        "{} runs on {}, which is not set up here: no environment at {} and python3 on PATH lacks {}\n  fix: run `{}`, or give the runtime entry `python: PATH` of an interpreter that has it",
        program.display(),
        fw.name,
        fw.env_dir().display(),
        missing.join(", "),
        fw.setup_command()
    ))
}

/// What `code` prints when `python` runs it as the program will run (`-P`: the user's
/// `PYTHONPATH` and site folder count, the working folder does not), from an empty folder; `None`
/// when it does not run.
fn ask(python: &Path, code: &str) -> Option<String> {
    let cwd = super::python::scratch_folder("xbench-python-").ok()?;
    let o = Command::new(python).args(["-P", "-c", code]).current_dir(cwd.path()).output().ok()?;
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// The modules of `modules` that `python` cannot find (without importing them); all of them when
/// the interpreter does not run.
pub fn missing_modules(python: &Path, modules: &[&str]) -> Vec<String> {
    let code = format!("import importlib.util\nfor m in {modules:?}:\n    if importlib.util.find_spec(m) is None: print(m)");
    match ask(python, &code) {
        Some(out) => out.lines().map(str::to_string).collect(),
        None => modules.iter().map(|m| m.to_string()).collect(),
    }
}

/// The installed versions of `dists` in `python`'s environment (those present), as `name version`.
pub fn versions(python: &Path, dists: &[&str]) -> Vec<String> {
    let code = format!("import importlib.metadata as md\nfor d in {dists:?}:\n    try: print(d, md.version(d))\n    except md.PackageNotFoundError: pass");
    ask(python, &code).map(|out| out.lines().map(str::to_string).collect()).unwrap_or_default()
}

/// One line per framework for `xbench runtimes`: set up or not, where, and its versions.
pub fn status_lines() -> Vec<(String, bool, String)> {
    FRAMEWORKS
        .iter()
        .map(|fw| {
            let python = env_python(&fw.env_dir());
            if python.is_file() {
                let v = versions(&python, fw.shown);
                (fw.name.to_string(), true, format!("{} ({})", v.join(", "), fw.env_dir().display()))
            } else {
                (fw.name.to_string(), false, format!("not set up\n  fix: {}", fw.setup_command()))
            }
        })
        .collect()
}

/// Makes (or remakes, when its packages differ) the framework's environment with pinned versions
/// from PyPI. Returns its interpreter.
pub fn setup(fw: &Framework, gpu: bool) -> Result<PathBuf> {
    if gpu && fw.name == "mlx" && cfg!(target_os = "macos") {
        bail!("--gpu: MLX on macOS computes on the GPU through Metal with the plain `mlx` package\n  fix: run `xbench setup runtime mlx` without --gpu");
    }
    let dest = fw.env_dir();
    let packages = fw.packages(gpu);
    let want = packages.join(" ");
    let stamp = dest.join(".xbench-packages");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == want) && env_python(&dest).is_file() {
        return Ok(env_python(&dest));
    }
    let parent = dest.parent().expect("under .xbench/runtimes");
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    // Made beside its place and moved there when complete: a half-made environment is never used.
    let staging = tempfile::Builder::new().prefix(&format!(".{}-partial-", fw.name)).tempdir_in(parent).with_context(|| format!("cannot create a folder in {}", parent.display()))?;
    let (mut venv, _cwd) = super::python::isolated()?;
    let status = venv.args(["-m", "venv"]).arg(staging.path()).status().context("cannot run `python3 -m venv`\n  fix: install Python 3.11 or later with its venv module (Debian: apt-get install python3-venv)")?;
    if !status.success() {
        bail!("`python3 -m venv {}` failed ({status})\n  fix: install Python's venv module (Debian: apt-get install python3-venv)", staging.path().display());
    }
    let python = env_python(staging.path());
    eprintln!("installing {want} into {} (from PyPI)", dest.display());
    let cwd = super::python::scratch_folder("xbench-python-")?;
    let status = Command::new(&python)
        .args(["-I", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-warn-script-location"])
        .args(&packages)
        .current_dir(cwd.path())
        .status()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !status.success() {
        bail!("`pip install {want}` failed ({status})\n  fix: check that PyPI is reachable and that these versions exist for this platform (Python {})", python_version(&python));
    }
    std::fs::write(staging.path().join(".xbench-packages"), &want)?;
    let staged = staging.keep();
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::rename(&staged, &dest).with_context(|| format!("cannot move the environment into {}", dest.display()))?;
    // The venv's own scripts name the staging folder; the interpreter link and site-packages do not.
    let python = env_python(&dest);
    if !python.is_file() {
        bail!("the environment at {} has no interpreter after the move", dest.display());
    }
    Ok(std::path::absolute(&python).unwrap_or(python))
}

fn python_version(python: &Path) -> String {
    Command::new(python).arg("--version").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_else(|_| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_declares_its_framework_in_a_comment_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.py");
        std::fs::write(&p, "#!/usr/bin/env python3\n# xbench-framework: mlx\nprint(1)\n").unwrap();
        assert_eq!(declared(&p).unwrap().map(|f| f.name), Some("mlx"));
        std::fs::write(&p, "print(1)\n").unwrap();
        assert_eq!(declared(&p).unwrap(), None);
        std::fs::write(&p, "# xbench-framework: jax\n").unwrap();
        let err = declared(&p).unwrap_err();
        assert!(err.contains("jax") && err.contains("mlx, torch, onnxruntime"), "{err}");
    }

    #[test]
    fn every_environment_pins_its_packages() {
        for fw in FRAMEWORKS {
            for gpu in [false, true] {
                for p in fw.packages(gpu) {
                    assert!(p.contains("=="), "{} {p} is pinned", fw.name);
                }
            }
        }
    }
}
