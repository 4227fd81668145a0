//! The run's log, `results.jsonl` beside `results.json`: every event that changes the record (a
//! cell finished, a group loaded or ended) appended as one JSON line and handed to the operating
//! system at once, so that a crash of xbench loses at most the cell in progress; synced to the
//! disk at each group's end. results.json is written from the record in memory at group ends and
//! at the end, and says how many lines of the log it holds (`log_lines`); reading it applies the
//! lines after those.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::store::{apply, RunEvent};
use super::RunResults;

/// The log's file name, in the folder of results.json.
pub const LOG_FILE: &str = "results.jsonl";

/// One line of the log: its number (from 1, over the run's whole life, resumes included) and the event.
#[derive(Serialize, Deserialize)]
struct Line {
    seq: u64,
    event: RunEvent,
}

/// The log of a run in progress, open for appending.
pub struct Log {
    file: File,
    path: PathBuf,
}

impl Log {
    /// Opens the log in `dir` for a record that holds its first `lines` lines: a new record
    /// (`lines` 0) starts an empty log; a resumed one keeps the log's whole lines and drops a
    /// last line cut short by a crash.
    pub fn open(dir: &Path, lines: u64) -> Result<Log> {
        let path = dir.join(LOG_FILE);
        let mut file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).with_context(|| format!("cannot open {}", path.display()))?;
        let keep = if lines == 0 {
            0
        } else {
            let mut text = Vec::new();
            file.read_to_end(&mut text).with_context(|| format!("cannot read {}", path.display()))?;
            text.iter().rposition(|&b| b == b'\n').map_or(0, |p| p as u64 + 1)
        };
        file.set_len(keep).with_context(|| format!("cannot write {}", path.display()))?;
        file.seek(SeekFrom::End(0)).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Log { file, path })
    }

    /// Appends `event` as line `seq`, in one write.
    pub fn append(&mut self, seq: u64, event: &RunEvent) -> Result<()> {
        let mut bytes = serde_json::to_vec(&LineRef { seq, event }).context("cannot serialize a result")?;
        bytes.push(b'\n');
        self.file.write_all(&bytes).with_context(|| format!("cannot write {}", self.path.display()))
    }

    /// Puts what was appended on the disk.
    pub fn sync(&self) -> Result<()> {
        self.file.sync_data().with_context(|| format!("cannot sync {}", self.path.display()))
    }
}

/// [`Line`], serialized without copying the event.
#[derive(Serialize)]
struct LineRef<'a> {
    seq: u64,
    event: &'a RunEvent,
}

/// The log beside results file `json`, when it is a run folder's `results.json`.
pub fn log_beside(json: &Path) -> Option<PathBuf> {
    (json.file_name()? == "results.json").then(|| json.with_file_name(LOG_FILE))
}

/// Applies to `r` (read from `json`) the lines of `log` it does not hold yet. A last line cut
/// short (a crash while it was written) is left out; any other line that is not a whole event
/// of this record is refused, naming it.
pub fn fold(r: &mut RunResults, log: &Path, json: &Path) -> Result<()> {
    let text = match std::fs::read(log) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", log.display())),
    };
    let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    let fix = format!(
        "fix: give the folder as `xbench scenario` left it; to read {} alone, without the cells logged after it was written, move {} away",
        json.display(),
        log.display()
    );
    for (k, line) in text[..whole].split(|&b| b == b'\n').enumerate().filter(|(_, l)| !l.is_empty()) {
        let at = || format!("{} line {}", log.display(), k + 1);
        // Lines the record already holds are skipped by their number alone, unparsed.
        if let Some(seq) = leading_seq(line) {
            if seq <= r.log_lines {
                continue;
            }
        }
        let Line { seq, event } = serde_json::from_slice(line).map_err(|e| anyhow::anyhow!("{} is not an event of xbench's log: {e}\n  {fix}", at()))?;
        if seq != r.log_lines + 1 {
            bail!("{} is event {seq}, but {} holds {} events: events are missing between them\n  {fix}", at(), json.display(), r.log_lines);
        }
        if let Some(why) = foreign(r, &event) {
            bail!("{} is not an event of the run in {}: {why}\n  {fix}", at(), json.display());
        }
        apply(r, event);
        r.log_lines = seq;
    }
    Ok(())
}

/// The number a line begins with, as the log writes it (`{"seq":N,`).
fn leading_seq(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"{\"seq\":")?;
    let end = rest.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// Why `event` cannot be an event of `r`'s run, if it cannot.
fn foreign(r: &RunResults, event: &RunEvent) -> Option<String> {
    let group = match event {
        RunEvent::Cell(c) => {
            let Some(mine) = r.cells.get(c.index) else { return Some(format!("it names cell {}, and the record has {} cells", c.index, r.cells.len())) };
            if mine.key() != c.key() {
                return Some(format!("its cell {} is {} on {} at {}, and the record's is {} on {} at {}", c.index, c.model, c.runtime, r.point_label(c), mine.model, mine.runtime, r.point_label(mine)));
            }
            return None;
        }
        RunEvent::Loaded { group, .. } | RunEvent::FirstRun { group, .. } | RunEvent::LoadFailed { group, .. } | RunEvent::GroupDone { group, .. } | RunEvent::GroupEnded { group, .. } => *group,
    };
    (group >= r.groups.len()).then(|| format!("it names group {group}, and the record has {} groups", r.groups.len()))
}
