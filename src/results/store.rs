//! The results of a run in progress: each event from the executor is applied to the record and
//! the record is written at once (JSON replaced atomically, then CSV), so that a crash of xbench
//! loses at most the cell in progress. Those writes are synced to the disk at each change of the
//! record as a whole (a group's end, the analysis, the run's end), not after every cell: a power
//! cut may lose the cells of the group in progress, never an earlier file.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::files::{csv_bytes, json_bytes, replace};
use super::{CellRecord, RunResults, SessionInfo, Status};

/// What the executor reports, in the order things happen.
#[derive(Debug, Clone)]
pub enum RunEvent {
    /// A group's session was loaded; `ready_ms` is from starting its worker to that moment.
    Loaded { group: usize, load_ms: f64, ready_ms: f64, session: SessionInfo },
    /// A group loaded side by side with others ran its first cell once, untimed (`None`: it failed).
    FirstRun { group: usize, ms: Option<f64> },
    /// A group's session could not be loaded: its cells still to run fail with `error`.
    LoadFailed { group: usize, error: String },
    /// A cell finished, measured or failed.
    Cell(Box<CellRecord>),
    /// A group's worker finished its cells.
    GroupDone { group: usize, peak_rss_mib: Option<f64> },
    /// A group ended without running its cells still to run (its runtime cannot run here, its
    /// model is not there, its process died): they get `status`, with `why`.
    GroupEnded { group: usize, status: Status, why: String },
}

/// A run's record and the files it is written to.
pub struct ResultsStore {
    results: RunResults,
    json: PathBuf,
    csv: PathBuf,
}

impl ResultsStore {
    /// A store writing `results` to `results.json` and `results.csv` in `dir` (written at once).
    pub fn create(results: RunResults, dir: &Path) -> Result<ResultsStore> {
        let store = ResultsStore { results, json: dir.join("results.json"), csv: dir.join("results.csv") };
        store.save()?;
        Ok(store)
    }

    pub fn results(&self) -> &RunResults {
        &self.results
    }

    pub fn json_path(&self) -> &Path {
        &self.json
    }

    pub fn csv_path(&self) -> &Path {
        &self.csv
    }

    /// Changes the record (an analysis, the run's end) and writes it.
    pub fn update(&mut self, change: impl FnOnce(&mut RunResults)) -> Result<()> {
        change(&mut self.results);
        self.save()
    }

    pub fn into_results(self) -> RunResults {
        self.results
    }

    /// Writes the record, synced to the disk.
    pub fn save(&self) -> Result<()> {
        self.write(true)
    }

    fn write(&self, sync: bool) -> Result<()> {
        replace(&self.json, &json_bytes(&self.results)?, sync)?;
        replace(&self.csv, &csv_bytes(&self.results)?, sync)
    }

    /// Applies `event` to the record and writes it (synced when a group ends).
    pub fn apply(&mut self, event: RunEvent) -> Result<()> {
        let sync = !matches!(event, RunEvent::Cell(_) | RunEvent::Loaded { .. } | RunEvent::FirstRun { .. });
        apply(&mut self.results, event);
        self.write(sync)
    }
}

/// Applies `event` to `r` (no I/O).
pub fn apply(r: &mut RunResults, event: RunEvent) {
    match event {
        RunEvent::FirstRun { group, ms } => r.groups[group].first_run_ms = ms,
        RunEvent::Loaded { group, load_ms, ready_ms, session } => {
            let g = &mut r.groups[group];
            g.load_ms = Some(load_ms);
            g.ready_ms = Some(ready_ms);
            g.session = Some(session);
        }
        RunEvent::LoadFailed { group, error } => end_group(r, group, Status::Failed, error),
        RunEvent::Cell(record) => {
            let i = record.index;
            r.cells[i] = *record;
        }
        RunEvent::GroupDone { group, peak_rss_mib } => {
            let g = &mut r.groups[group];
            g.peak_rss_mib = peak_rss_mib;
            if g.status == Status::Pending {
                g.status = Status::Ok;
            }
        }
        RunEvent::GroupEnded { group, status, why } => end_group(r, group, status, why),
    }
}

fn end_group(r: &mut RunResults, group: usize, status: Status, why: String) {
    let g = &mut r.groups[group];
    g.status = status;
    g.error = Some(why.clone());
    let (model, runtime) = (g.model.clone(), g.runtime);
    for c in r.cells.iter_mut().filter(|c| c.model == model && c.runtime == runtime && c.status == Status::Pending) {
        c.status = status;
        c.error = Some(why.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two groups (tract-cpu, ort-cpu) of two pending cells each.
    fn results() -> RunResults {
        let mut r: RunResults = crate::results::parse_results(include_str!("../../tests/data/minimal-results.json"), "minimal-results.json").unwrap();
        let (cell, group) = (r.cells[0].clone(), r.groups[0].clone());
        r.groups = vec![group.clone(), super::super::GroupRecord { runtime: crate::scenario::RuntimeId::ORT_CPU, ..group }];
        r.cells = (0..4)
            .map(|i| CellRecord {
                index: i,
                runtime: r.groups[i / 2].runtime,
                batch: 1 + i % 2,
                status: Status::Pending,
                summary: None,
                ..cell.clone()
            })
            .collect();
        r
    }

    #[test]
    fn events_fill_the_record_and_a_dead_group_fails_only_its_unfinished_cells() {
        let mut r = results();
        let g = 0;
        let (model, runtime) = (r.groups[g].model.clone(), r.groups[g].runtime);
        let mine: Vec<usize> = r.cells.iter().filter(|c| c.model == model && c.runtime == runtime).map(|c| c.index).collect();
        assert!(mine.len() >= 2, "the fixture has a group of several cells");
        apply(&mut r, RunEvent::Loaded { group: g, load_ms: 5.0, ready_ms: 7.0, session: SessionInfo::default() });
        let mut first = r.cells[mine[0]].clone();
        first.status = Status::Ok;
        apply(&mut r, RunEvent::Cell(Box::new(first.clone())));
        apply(&mut r, RunEvent::GroupEnded { group: g, status: Status::Failed, why: "signal 9".into() });
        assert_eq!(r.cells[mine[0]], first, "a finished cell is kept");
        for &i in &mine[1..] {
            assert_eq!((r.cells[i].status, r.cells[i].error.as_deref()), (Status::Failed, Some("signal 9")));
        }
        assert_eq!((r.groups[g].status, r.groups[g].load_ms, r.groups[g].ready_ms), (Status::Failed, Some(5.0), Some(7.0)));
        let others = r.cells.iter().filter(|c| !mine.contains(&c.index));
        assert!(others.into_iter().all(|c| c.status == Status::Pending), "other groups are untouched");
    }

    #[test]
    fn a_store_writes_after_every_event() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ResultsStore::create(results(), dir.path()).unwrap();
        apply(&mut store.results, RunEvent::GroupDone { group: 0, peak_rss_mib: Some(3.0) });
        store.apply(RunEvent::GroupDone { group: 1, peak_rss_mib: Some(4.0) }).unwrap();
        let back = super::super::read_results(store.json_path()).unwrap();
        assert_eq!(back.groups[1].peak_rss_mib, Some(4.0));
        assert!(std::fs::read_to_string(store.csv_path()).unwrap().lines().count() > 1);
    }
}
