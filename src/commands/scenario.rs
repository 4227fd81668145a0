//! `xbench scenario`: the flags made a request, the library's run of it, and what is printed:
//! progress, the summary, where the files are, and the exit.

use std::path::Path;

use anyhow::Result;
use xbench::resolve::{resolve, ResolveOptions, ResolvedPlan};
use xbench::results::{self, FlagKind, RunResults, Status};
use xbench::run::{Observer, Progress, Stop};
use xbench::runner::{self, Given};
use xbench::scenario::{self, Overrides, ScenarioFile};

use super::{CellsFailed, Interrupted};
use crate::output::{self, Display};

/// The progress display.
struct Watch(Display);

impl Observer for Watch {
    fn start(&mut self, total: usize, done: usize) {
        self.0.start(total, done)
    }
    fn finished(&mut self) {
        output::finish()
    }
    fn note(&mut self, text: &str) {
        self.0.note(text)
    }
    fn runtimes(&mut self, a: &[results::Availability]) {
        self.0.runtimes(a)
    }
    fn cell(&mut self, r: &results::CellRecord, p: Progress) {
        self.0.cell(r, p)
    }
    fn group_failed(&mut self, model: &str, runtime: &str, why: &str) {
        self.0.group_failed(model, runtime, why)
    }
}

pub fn run(given: Given, quiet: bool, ignore_failures: bool, stop: &Stop) -> Result<()> {
    let req = given.validate()?;
    let mut watch = Watch(Display::new(quiet));
    let end = runner::execute(&req, stop, &mut watch);
    output::finish();
    let end = end?;
    let (dir, r) = (&end.dir, end.store.results());
    if end.abandoned {
        return Err(Interrupted(format!("stopped at once while the report was being written; every result is saved in {}\n  draw the report with: xbench report {}", end.store.json_path().display(), end.store.json_path().display())).into());
    }
    tracing::info!("{}", super::summary::wall_line(&end.wall, r));
    super::summary::summary(r);
    println!("report:  {} and {}", dir.join("report.md").display(), dir.join("index.html").display());
    println!("results: {} and {}", end.store.json_path().display(), end.store.csv_path().display());
    if let Some(info) = &end.shard {
        if !info.kept_outputs.is_empty() {
            println!("outputs: {} (compared with other shards' cells when the shards are merged: keep them beside results.json)", dir.join("outputs").display());
        }
        println!("shard {}: merge every shard with `xbench report {} <the other shards' results.json> --out DIR`", info.label(), end.store.json_path().display());
    }
    if end.stopped {
        return Err(Interrupted(format!("stopped before the grid was finished; the finished cells are saved\n  resume with: {}", resume_command(dir, false))).into());
    }
    match failures(r, dir) {
        Some(why) if !ignore_failures => Err(CellsFailed(why).into()),
        _ => Ok(()),
    }
}

/// The command that continues the run in `dir` (its results record the options it runs under).
fn resume_command(dir: &Path, retry_failed: bool) -> String {
    let dir = dir.display().to_string();
    let dir = if dir.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:=,@".contains(c)) { dir } else { format!("'{}'", dir.replace('\'', "'\\''")) };
    format!("xbench scenario --resume {dir}{}", if retry_failed { " --retry-failed" } else { "" })
}

/// Why a finished run is a failure: cells that failed, whose outputs disagree with the
/// reference runtime, the expected outputs or the sibling model, or were not compared when they
/// should have been; or no cell measured at all (`None` when there are none).
fn failures(r: &RunResults, dir: &Path) -> Option<String> {
    let count = |s| r.cells.iter().filter(|c| c.status == s).count();
    let (failed, skipped) = (count(Status::Failed), count(Status::Skipped));
    let disagree = r.cells.iter().filter(|c| c.flags.iter().any(|f| f.kind.is_disagreement())).count();
    let not_compared = r.cells.iter().filter(|c| c.has_flag(FlagKind::NotCompared)).count();
    let retry = if failed > 0 {
        format!("; once their cause is fixed, run them again with: {}", resume_command(dir, true))
    } else {
        String::new()
    };
    if count(Status::Ok) == 0 && !r.cells.is_empty() {
        let first = r.cells.iter().find_map(|c| c.error.as_deref()).and_then(|e| e.lines().next()).unwrap_or("no reason recorded");
        return Some(format!("no cell was measured: {skipped} skipped and {failed} failed (the first: {first}); pass --ignore-failures to exit 0 all the same{retry}"));
    }
    if failed + disagree + not_compared == 0 {
        return None;
    }
    let not_compared = if not_compared > 0 { format!(", {not_compared} were not compared (a reference that did not run, outputs that could not be read)") } else { String::new() };
    Some(format!("{failed} cells failed and {disagree} disagree{not_compared} (the report lists them); pass --ignore-failures to exit 0 all the same{retry}"))
}

/// Resolves a scenario file for commands that only read it (`xbench feeds`).
pub fn resolve_file(path: &Path, models_dir: &Path) -> Result<(ScenarioFile, ResolvedPlan)> {
    let file = ScenarioFile::read(path)?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let plan = scenario::validate(&file, &path.display().to_string(), &dir, &Overrides::default())?;
    Ok((file, resolve(plan, &ResolveOptions { models_root: models_dir.to_path_buf(), ops_dir: None })?))
}
