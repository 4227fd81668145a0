//! Resuming an interrupted run: only when the scenario is the same one, so that finished cells
//! and new ones belong to one grid.

use anyhow::{bail, Result};

use crate::results::{RunResults, Status};
use crate::scenario::{Plan, ScenarioFile};

/// Refuses to resume `prev` with `plan` (from `file`) unless they describe the same grid and settings.
pub fn check_resumable(prev: &RunResults, plan: &Plan, file: &ScenarioFile, dir: &std::path::Path) -> Result<()> {
    let fix = format!("fix: resume with the same scenario file and --runtimes as the first run, or start a new run without --resume (another --out than {})", dir.display());
    // The runtimes may have come from --runtimes; the cells below carry them.
    let same_file = ScenarioFile { runtimes: vec![], ..prev.scenario.clone() } == ScenarioFile { runtimes: vec![], ..file.clone() };
    if !same_file {
        bail!("{} was made by a different scenario than this one (names, sizes, iterations or settings changed)\n  {fix}", dir.display());
    }
    let same_cells = prev.cells.len() == plan.cells.len()
        && prev.cells.iter().zip(&plan.cells).all(|(a, b)| a.model == b.model && a.runtime == b.runtime && a.chars == b.chars && a.batch == b.batch);
    if !same_cells {
        bail!("{} holds a different grid of cells ({} cells) than this scenario gives ({} cells)\n  {fix}", dir.display(), prev.cells.len(), plan.cells.len());
    }
    if prev.format_version != crate::results::FORMAT_VERSION {
        bail!("{} was written in results format {}, this xbench writes {}\n  {fix}", dir.display(), prev.format_version, crate::results::FORMAT_VERSION);
    }
    if prev.cells.iter().all(|c| c.status != Status::Pending) && prev.complete {
        bail!("{}: every cell of this run is already finished; nothing to resume\n  fix: start a new run without --resume", dir.display());
    }
    Ok(())
}
