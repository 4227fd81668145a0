//! The results of a run in progress. Each event from the executor is appended to the run's log
//! (`results.jsonl`, one line, handed to the operating system at once) and applied to the record
//! in memory, so that a crash of xbench loses at most the cell in progress; the log is synced to
//! the disk when a group ends. results.json (replaced atomically) and results.csv are written
//! from the record at the run's end and at the ends of groups, synced: a power cut may lose the
//! cells of the group in progress, never an earlier file. No write between cells grows with the
//! record; writes at group ends are spaced ([`Spacing`]) so that many small groups do not rewrite a
//! large record after each of them: the log has every finished cell meanwhile.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::files::{csv_bytes, json_bytes, replace};
use super::log::Log;
use super::{CellRecord, RunResults, SessionInfo, Status};

/// What the executor reports, in the order things happen; one line of the run's log each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

/// A run's record, its log and the files it is written to.
pub struct ResultsStore {
    results: RunResults,
    log: Log,
    json: PathBuf,
    csv: PathBuf,
    spacing: Spacing,
    /// The record changed since results.json was last written.
    unsaved: bool,
}

/// When whole-record files (results.json and results.csv, report.md's tables) are rewritten at a
/// group's end: at least `gap` after the last write, and at least `FACTOR` times as long as that
/// write took, so that rewriting takes at most about 1/`FACTOR` of a run whatever its size.
#[derive(Debug, Clone)]
pub struct Spacing {
    gap: Duration,
    /// When the last write started, and how long it took.
    last: (Instant, Duration),
}

impl Spacing {
    /// The gap of a run's writes at group ends.
    pub const GAP: Duration = Duration::from_secs(2);
    const FACTOR: u32 = 10;

    /// Spacing whose first write is due `gap` after now.
    pub fn new(gap: Duration) -> Spacing {
        Spacing { gap, last: (Instant::now(), Duration::ZERO) }
    }

    /// Whether a write is due now.
    pub fn due(&self) -> bool {
        let (at, took) = self.last;
        at.elapsed() >= self.gap.max(took * Self::FACTOR)
    }

    /// Records a write that started at `at` and has just ended.
    pub fn wrote(&mut self, at: Instant) {
        self.last = (at, at.elapsed());
    }
}

impl Default for Spacing {
    fn default() -> Spacing {
        Spacing::new(Spacing::GAP)
    }
}

impl ResultsStore {
    /// A store writing `results` to `results.json` and `results.csv` in `dir` (written at once)
    /// and its events to the log there: a new one, or for a resumed record, the log it was read with.
    pub fn create(results: RunResults, dir: &Path) -> Result<ResultsStore> {
        let log = Log::open(dir, results.log_lines)?;
        let mut store = ResultsStore { results, log, json: dir.join("results.json"), csv: dir.join("results.csv"), spacing: Spacing::default(), unsaved: true };
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

    /// Changes the record (the run's end, what must not wait) and writes it.
    pub fn update(&mut self, change: impl FnOnce(&mut RunResults)) -> Result<()> {
        change(&mut self.results);
        self.save()
    }

    /// Changes the record at a group's end (its analysis) and writes it when a write is due
    /// ([`Spacing`]); whether it was written. What is not written yet is in the log, and is
    /// written by the next write ([`ResultsStore::update`], [`ResultsStore::flush`]).
    pub fn group_end(&mut self, change: impl FnOnce(&mut RunResults)) -> Result<bool> {
        change(&mut self.results);
        self.unsaved = true;
        if !self.spacing.due() {
            return Ok(false);
        }
        self.save()?;
        Ok(true)
    }

    /// Writes the record if it changed since it was last written (a run's stop).
    pub fn flush(&mut self) -> Result<()> {
        if self.unsaved {
            self.save()?;
        }
        Ok(())
    }

    pub fn into_results(self) -> RunResults {
        self.results
    }

    /// Writes the record, synced to the disk.
    pub fn save(&mut self) -> Result<()> {
        let at = Instant::now();
        replace(&self.json, &json_bytes(&self.results)?, true)?;
        replace(&self.csv, &csv_bytes(&self.results)?, true)?;
        self.unsaved = false;
        self.spacing.wrote(at);
        Ok(())
    }

    /// Appends `event` to the log (synced when a group ends) and applies it to the record.
    pub fn apply(&mut self, event: RunEvent) -> Result<()> {
        let ends_group = !matches!(event, RunEvent::Cell(_) | RunEvent::Loaded { .. } | RunEvent::FirstRun { .. });
        let seq = self.results.log_lines + 1;
        self.log.append(seq, &event)?;
        if ends_group {
            self.log.sync()?;
        }
        apply(&mut self.results, event);
        self.results.log_lines = seq;
        self.unsaved = true;
        Ok(())
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

    fn measured(r: &RunResults, i: usize) -> RunEvent {
        let samples = vec![1.0 + i as f64];
        let summary = Some(crate::stats::summarize(&samples, r.cells[i].batch, None));
        RunEvent::Cell(Box::new(CellRecord { status: Status::Ok, samples_ms: samples, summary, ..r.cells[i].clone() }))
    }

    fn statuses(r: &RunResults) -> Vec<Status> {
        r.cells.iter().map(|c| c.status).collect()
    }

    #[test]
    fn events_reach_the_log_at_once_and_results_json_when_the_record_is_saved() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("results.json");
        let mut store = ResultsStore::create(results(), dir.path()).unwrap();
        assert_eq!(super::super::read_results(&json).unwrap(), results(), "a folder whose log is empty reads as its results.json");
        store.apply(measured(store.results(), 1)).unwrap();
        store.apply(RunEvent::GroupDone { group: 1, peak_rss_mib: Some(4.0) }).unwrap();
        let on_disk = super::super::parse_results(&std::fs::read_to_string(&json).unwrap(), "results.json").unwrap();
        assert_eq!(statuses(&on_disk), [Status::Pending; 4], "results.json is not rewritten per event");
        let log = std::fs::read_to_string(dir.path().join(super::super::LOG_FILE)).unwrap();
        assert_eq!(log.lines().count(), 2);
        let back = super::super::read_results(&json).unwrap();
        assert_eq!(&back, store.results(), "results.json and its log read back as the record in memory");

        // Once saved, results.json holds the log's lines, and they are not applied a second time.
        store.update(|r| r.cells[1].error = Some("judged".into())).unwrap();
        let back = super::super::read_results(&json).unwrap();
        assert_eq!((back.log_lines, back.cells[1].error.as_deref()), (2, Some("judged")));
        assert!(std::fs::read_to_string(store.csv_path()).unwrap().lines().count() > 1);
    }

    #[test]
    fn writes_at_group_ends_wait_for_their_gap_and_a_flush_writes_the_whole_record() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("results.json");
        let raw = || super::super::parse_results(&std::fs::read_to_string(&json).unwrap(), "results.json").unwrap();
        let mut store = ResultsStore::create(results(), dir.path()).unwrap();
        store.spacing.gap = Duration::from_secs(3600);
        store.apply(measured(store.results(), 0)).unwrap();
        store.apply(RunEvent::GroupDone { group: 0, peak_rss_mib: None }).unwrap();
        assert!(!store.group_end(|r| r.cells[0].error = Some("judged".into())).unwrap(), "a write within the gap waits");
        assert_eq!(statuses(&raw()), [Status::Pending; 4]);
        // Meanwhile the log has every finished cell: a folder read then is whole but for the analysis.
        let back = super::super::read_results(&json).unwrap();
        assert_eq!((statuses(&back)[0], back.cells[0].error.as_deref()), (Status::Ok, None));

        store.flush().unwrap();
        assert_eq!(&raw(), store.results(), "a flush writes what waited");
        #[cfg(unix)]
        {
            // results.json is replaced by a new file at each write.
            use std::os::unix::fs::MetadataExt;
            let written = std::fs::metadata(&json).unwrap().ino();
            store.flush().unwrap();
            assert_eq!(std::fs::metadata(&json).unwrap().ino(), written, "nothing changed, nothing written");
        }

        store.spacing = Spacing::new(Duration::ZERO);
        assert!(store.group_end(|r| r.cells[1].error = Some("judged".into())).unwrap(), "a write past its gap is made");
        assert_eq!(raw().cells[1].error.as_deref(), Some("judged"));
    }

    #[test]
    fn a_slow_write_spaces_the_next_by_ten_times_its_length() {
        let now = Instant::now();
        let after = |took_ms: u64, ago_ms: u64| Spacing { gap: Duration::ZERO, last: (now - Duration::from_millis(ago_ms), Duration::from_millis(took_ms)) };
        assert!(!after(100, 500).due());
        assert!(after(100, 1100).due());
        assert!(!Spacing { gap: Duration::from_secs(60), last: (now, Duration::ZERO) }.due());
        assert!(!Spacing::default().due(), "the first write waits its gap too");
        assert!(Spacing::new(Duration::ZERO).due());
    }

    #[test]
    fn a_line_cut_short_by_a_crash_is_left_out_and_a_resume_appends_after_the_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let (json, log) = (dir.path().join("results.json"), dir.path().join(super::super::LOG_FILE));
        let mut store = ResultsStore::create(results(), dir.path()).unwrap();
        store.apply(measured(store.results(), 0)).unwrap();
        store.apply(measured(store.results(), 1)).unwrap();
        drop(store);
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        std::io::Write::write_all(&mut f, b"{\"seq\":3,\"event\":{\"cell\":{\"ind").unwrap();
        let back = super::super::read_results(&json).unwrap();
        assert_eq!(statuses(&back), [Status::Ok, Status::Ok, Status::Pending, Status::Pending]);
        assert_eq!(back.log_lines, 2);

        let mut store = ResultsStore::create(back, dir.path()).unwrap();
        store.apply(measured(store.results(), 2)).unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(text.lines().count(), 3, "the cut line is gone: {text}");
        assert!(text.lines().nth(2).unwrap().starts_with("{\"seq\":3,"));
        let back = super::super::read_results(&json).unwrap();
        assert_eq!(statuses(&back), [Status::Ok, Status::Ok, Status::Ok, Status::Pending]);
        assert_eq!(back.cells[2].samples_ms, [3.0]);
    }

    #[test]
    fn a_log_line_that_is_not_this_runs_is_refused_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("results.json");
        let mut store = ResultsStore::create(results(), dir.path()).unwrap();
        let mut stranger = results().cells[0].clone();
        stranger.model = "another".into();
        store.apply(RunEvent::Cell(Box::new(stranger))).unwrap();
        let e = format!("{:#}", super::super::read_results(&json).unwrap_err());
        assert!(e.contains("results.jsonl line 1 is not an event of the run") && e.contains("another") && e.contains("fix:"), "{e}");

        std::fs::write(dir.path().join(super::super::LOG_FILE), "{\"seq\":2,\"event\":{\"group_done\":{\"group\":0,\"peak_rss_mib\":null}}}\n").unwrap();
        let e = format!("{:#}", super::super::read_results(&json).unwrap_err());
        assert!(e.contains("events are missing"), "{e}");
    }
}
