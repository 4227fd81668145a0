//! The folder a run writes into, claimed for that run alone: a new run takes only an empty (or
//! new) folder, a resumed run only its own; a lock keeps a second run out while one writes; names
//! xbench writes must not be links planted to send its writes elsewhere. Nothing xbench did not
//! create is ever overwritten.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The lock file in a run's folder (held with `flock` while the run writes; released when the
/// process ends, however it ends).
pub const LOCK: &str = ".xbench-lock";

/// Names xbench writes into a run's folder (the run's log `results.jsonl` among them), besides figures (`fig*.png`, `fig*.svg`); `outputs`
/// holds a shard's outputs kept for other shards' cells.
const OWN: &[&str] = &["results.json", crate::results::LOG_FILE, "results.csv", "results-merged.json", "report.md", "index.html", ".outputs", "outputs", ".ops", LOCK];

fn is_own(name: &str) -> bool {
    OWN.contains(&name) || (name.starts_with("fig") && (name.ends_with(".png") || name.ends_with(".svg")))
}

/// A claimed folder; the claim ends when this is dropped.
pub struct OutDir {
    pub path: PathBuf,
    _lock: File,
    /// Whether this run made the folder: one left empty (a run refused before it wrote) goes too.
    made: bool,
}

impl Drop for OutDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.path.join(LOCK));
        if self.made {
            // Fails, as it should, unless the folder is empty.
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

/// What a folder holds, the lock file aside.
fn entries(dir: &Path) -> Result<Vec<(String, std::fs::FileType)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name != LOCK {
            out.push((name, e.file_type()?));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Refuses links among the names xbench writes: a write would follow them out of the folder.
fn refuse_links(dir: &Path, found: &[(String, std::fs::FileType)]) -> Result<()> {
    if let Some((name, _)) = found.iter().find(|(n, t)| t.is_symlink() && is_own(n)) {
        bail!(
            "{} is a symbolic link, but xbench writes `{name}` itself there; following it would write elsewhere\n  fix: remove the link, or choose another folder with --out",
            dir.join(name).display()
        );
    }
    Ok(())
}

fn list(names: &[&str]) -> String {
    let shown: Vec<String> = names.iter().take(5).map(|n| format!("`{n}`")).collect();
    let more = if names.len() > 5 { format!(" and {} more", names.len() - 5) } else { String::new() };
    format!("{}{more}", shown.join(", "))
}

/// Takes the lock of `dir`, or says which run holds it.
fn lock(dir: &Path) -> Result<File> {
    use std::io::{Read, Seek, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(LOCK);
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}\n  fix: choose a writable folder with --out (and no link named {LOCK} in it)", path.display()))?;
    // SAFETY: flock on a descriptor this process owns.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let mut pid = String::new();
        let _ = f.read_to_string(&mut pid);
        bail!(
            "another xbench run (process {}) is writing to {}\n  fix: wait for it to finish, or choose another folder with --out",
            pid.trim(),
            dir.display()
        );
    }
    f.set_len(0)?;
    f.rewind()?;
    write!(f, "{}", std::process::id())?;
    Ok(f)
}

/// Claims `dir` for a new run: it must be new or empty (a folder of an earlier run is pointed to
/// `--resume`; anything else is someone's files).
pub fn claim_new(dir: &Path) -> Result<OutDir> {
    if dir.exists() && !dir.is_dir() {
        bail!("--out `{}` is a file; it takes the folder where results and the report go\n  fix: name a new or empty folder", dir.display());
    }
    let made = !dir.exists();
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the output folder {}\n  fix: choose a writable folder with --out", dir.display()))?;
    // Once the lock is this run's, a refusal below drops the claim and so removes the lock file.
    let claim = OutDir { path: dir.to_path_buf(), _lock: lock(dir)?, made };
    let found = entries(dir)?;
    if found.iter().any(|(n, _)| n == "results.json") {
        bail!(
            "{} holds an earlier run (its results.json); a new run would replace its results\n  fix: continue that run with `--resume {}`, or choose a new folder with --out",
            dir.display(),
            dir.display()
        );
    }
    if !found.is_empty() {
        let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
        bail!("{} is not empty: it holds {}, which xbench did not write there\n  fix: choose a new or empty folder with --out", dir.display(), list(&names));
    }
    Ok(claim)
}

/// Claims the folder of the run being resumed: its own files are rewritten (none may be a link),
/// anything else in it is left alone.
pub fn claim_resumed(dir: &Path) -> Result<OutDir> {
    let claim = OutDir { path: dir.to_path_buf(), _lock: lock(dir)?, made: false };
    refuse_links(dir, &entries(dir)?)?;
    Ok(claim)
}

/// Claims `dir` for `xbench report` of `inputs` (results files), as [`check_report_dir`] allows,
/// holding its lock while the report is written: a folder a running scenario writes to is refused.
pub fn claim_report(dir: &Path, inputs: &[PathBuf]) -> Result<OutDir> {
    check_report_dir(dir, inputs)?;
    let made = !dir.exists();
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the report folder {}\n  fix: choose a writable folder with --out", dir.display()))?;
    let claim = OutDir { path: dir.to_path_buf(), _lock: lock(dir)?, made };
    // Checked again under the lock: a run may have started writing there in between.
    check_report_dir(dir, inputs)?;
    Ok(claim)
}

/// Checks that `xbench report` of `inputs` may write into `dir`: a new or empty folder, or one
/// holding only what xbench writes, none of them a link; and where a run's results.json is there,
/// only when it is one of `inputs` (redrawing that run's own report) or a merged set a report
/// wrote: another run's report and results are that run's.
pub fn check_report_dir(dir: &Path, inputs: &[PathBuf]) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    if !dir.is_dir() {
        bail!("--out {} is a file; it takes the folder where report.md, index.html and the figures go\n  fix: name a new or empty folder", dir.display());
    }
    let found = entries(dir)?;
    refuse_links(dir, &found)?;
    let results = dir.join("results.json");
    if results.is_file() {
        let same = |p: &PathBuf| std::fs::canonicalize(p).ok() == std::fs::canonicalize(&results).ok();
        let merged_here = crate::results::read_results(&results).is_ok_and(|r| r.shards.is_some());
        if !inputs.iter().any(same) && !merged_here {
            bail!(
                "{} holds an earlier run (its results.json), which is not among the results given: its report and results would be replaced\n  fix: choose a new or empty folder with --out (or give {} among the results, to redraw that run's report)",
                dir.display(),
                results.display()
            );
        }
    }
    // Results files of other runs may lie beside a report (`report a.json b.json --out .`).
    let foreign: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).filter(|n| !is_own(n) && !n.ends_with(".json") && !n.ends_with(".csv")).collect();
    if !foreign.is_empty() {
        bail!(
            "{} holds {}, which xbench did not write; the report would sit among them and replace report.md, index.html and figures there\n  fix: choose a new or empty folder with --out",
            dir.display(),
            list(&foreign)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_run_takes_only_an_empty_folder_and_one_run_at_a_time() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out");
        let held = claim_new(&dir).unwrap();
        let e = claim_resumed(&dir).err().unwrap().to_string();
        assert!(e.contains("another xbench run") && e.contains(&std::process::id().to_string()), "{e}");
        drop(held);
        assert!(!dir.exists(), "a folder the claim made and nothing wrote into goes with it");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("results.json"), "{}").unwrap();
        let e = claim_new(&dir).err().unwrap().to_string();
        assert!(e.contains("holds an earlier run") && e.contains("--resume"), "{e}");
        assert!(claim_resumed(&dir).is_ok());
        let mine = tmp.path().join("mine");
        std::fs::create_dir(&mine).unwrap();
        std::fs::write(mine.join("notes.txt"), "mine").unwrap();
        let e = claim_new(&mine).err().unwrap().to_string();
        assert!(e.contains("`notes.txt`") && e.contains("did not write"), "{e}");
        assert!(!mine.join(LOCK).exists(), "a refused claim leaves no lock file behind");
        assert!(check_report_dir(&mine, &[]).is_err());
        // A link planted where xbench writes.
        std::os::unix::fs::symlink(tmp.path().join("elsewhere"), dir.join("report.md")).unwrap();
        let e = claim_resumed(&dir).err().unwrap().to_string();
        assert!(e.contains("report.md") && e.contains("symbolic link"), "{e}");
        assert!(check_report_dir(&dir, &[]).is_err());
    }
}
