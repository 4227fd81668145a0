//! Records the git commit the binary is built from, for the results metadata.
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    let value = if dirty && commit != "unknown" { format!("{commit}-dirty") } else { commit };
    println!("cargo:rustc-env=XBENCH_GIT_COMMIT={value}");
    // Versions of the runtimes compiled in, as resolved in Cargo.lock.
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    for (krate, var) in [("tract-onnx", "XBENCH_TRACT_VERSION"), ("ort", "XBENCH_ORT_CRATE_VERSION")] {
        let version = lock
            .split("[[package]]")
            .find(|p| p.contains(&format!("name = \"{krate}\"\n")))
            .and_then(|p| p.lines().find(|l| l.starts_with("version = ")))
            .map(|l| l.trim_start_matches("version = ").trim_matches('"').to_string())
            .unwrap_or_else(|| "unknown".into());
        println!("cargo:rustc-env={var}={version}");
    }
    println!("cargo:rerun-if-changed=Cargo.lock");
    // A commit or a change of branch runs this again. The repository's own HEAD and index, where
    // git keeps them: in a worktree `.git` is a file, and a path that does not exist would make
    // cargo run this, and rebuild xbench, on every command.
    let git_dir = Command::new("git")
        .args(["rev-parse", "--absolute-git-dir"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    for file in git_dir.iter().flat_map(|d| [d.join("HEAD"), d.join("index")]).filter(|p| p.is_file()) {
        println!("cargo:rerun-if-changed={}", file.display());
    }
}
