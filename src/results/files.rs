//! results.json and results.csv. Every file is written to a temporary file beside its place,
//! synced, renamed over the old one and the folder synced, so that a crash never leaves a
//! half-written file as the only copy.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::{compat, RunResults, Status, FORMAT_VERSION};

/// Writes `bytes` to `path` atomically and durably.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    replace(path, bytes, true)
}

/// Writes `bytes` to `path` atomically: xbench stopped or killed at any moment leaves the old
/// file or the new one, whole. With `sync` the new file and its folder are also on the disk when
/// this returns, so that a power cut keeps it too (a write made between cells skips that wait,
/// which would otherwise fall inside the next cell's timed runs).
pub fn replace(path: &Path, bytes: &[u8], sync: bool) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()))
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write into {}", dir.display()))?;
    tmp.write_all(bytes).with_context(|| format!("cannot write {}", tmp.path().display()))?;
    if sync {
        tmp.as_file().sync_all().with_context(|| format!("cannot sync {}", tmp.path().display()))?;
    }
    tmp.persist(path).map_err(|e| anyhow::anyhow!("cannot rename {} to {}: {}", e.file.path().display(), path.display(), e.error))?;
    // The rename itself is durable once the folder is synced (where the platform allows opening one).
    if sync {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

pub fn write_json(path: &Path, results: &RunResults) -> Result<()> {
    write_atomic(path, &json_bytes(results)?)
}

pub(super) fn json_bytes(results: &RunResults) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(results).context("cannot serialize results")
}

const FIX: &str = "\n  fix: give the results.json that `xbench scenario` wrote";

/// Reads a results file, refusing formats newer than this xbench understands; version 1 files
/// are brought to the current format as they are read. A run folder's `results.json` comes with
/// the events of its log written after it (`results.jsonl`, where there is one).
pub fn read_results(path: &Path) -> Result<RunResults> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read results file {}{FIX}", path.display()))?;
    let mut results = parse_results(&text, &path.display().to_string())?;
    if let Some(log) = super::log::log_beside(path).filter(|l| l.is_file()) {
        super::log::fold(&mut results, &log, path)?;
        if let Some(why) = super::inconsistency(&results) {
            bail!("{} with the events of {} does not hold together: {why}\n  fix: give the folder as `xbench scenario` left it; or start a new run", path.display(), log.display());
        }
    }
    Ok(results)
}

/// Parses the text of a results file read from `origin`, as [`read_results`] does.
pub fn parse_results(text: &str, origin: &str) -> Result<RunResults> {
    let mut value: serde_json::Value = serde_json::from_str(text).with_context(|| format!("{origin} is not a JSON results file{FIX}"))?;
    let version = value.get("format_version").and_then(|v| v.as_u64()).unwrap_or(0);
    if version > FORMAT_VERSION as u64 {
        bail!("{origin} has results format version {version}, newer than this xbench reads ({FORMAT_VERSION})\n  fix: use a newer xbench to read it");
    }
    if version == 1 {
        compat::upgrade_v1(&mut value);
    }
    let results: RunResults = serde_json::from_value(value).with_context(|| format!("{origin} is not an xbench results file of format {version}{FIX}"))?;
    if let Some(why) = super::inconsistency(&results) {
        bail!("{origin} does not hold together: {why}\n  fix: give the results.json that `xbench scenario` wrote, as it wrote it (this one was edited or cut); or start a new run");
    }
    Ok(results)
}

const CSV_HEAD: [&str; 31] = [
    "model", "runtime", "chars", "batch", "data_set", "status", "padded_len", "real_tokens", "iterations", "mean_ms", "mean_ci95_lo_ms", "mean_ci95_hi_ms", "median_ms", "p90_ms",
    "p99_ms", "std_ms", "min_ms", "max_ms", "outliers", "items_per_s", "tokens_per_s", "max_abs_diff", "agrees", "flags", "error", "sibling", "sibling_runtime",
    "sibling_max_abs_diff", "sibling_agrees", "expected_max_abs_diff", "expected_agrees",
];

/// One row per cell: its coordinates, status, tokens, summary and verdicts.
pub fn write_csv(path: &Path, results: &RunResults) -> Result<()> {
    write_atomic(path, &csv_bytes(results)?)
}

pub(super) fn csv_bytes(results: &RunResults) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEAD)?;
    let f = |v: Option<f64>| v.map(|v| format!("{v:.6}")).unwrap_or_default();
    for c in &results.cells {
        let s = c.summary.as_ref();
        let status = match c.status {
            Status::Pending => "pending",
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        };
        let sib = c.sibling_agreement.as_ref();
        w.write_record([
            c.model.clone(),
            c.runtime.to_string(),
            c.chars.to_string(),
            c.batch.to_string(),
            c.data_set.map(|n| n.to_string()).unwrap_or_default(),
            status.into(),
            c.tokens.as_ref().map(|t| t.padded_len.to_string()).unwrap_or_default(),
            c.tokens.as_ref().map(|t| t.tokens_per_row.iter().sum::<usize>().to_string()).unwrap_or_default(),
            s.map(|s| s.n.to_string()).unwrap_or_default(),
            f(s.map(|s| s.mean_ms)),
            f(s.map(|s| s.mean_ci95_ms[0])),
            f(s.map(|s| s.mean_ci95_ms[1])),
            f(s.map(|s| s.median_ms)),
            f(s.map(|s| s.p90_ms)),
            f(s.map(|s| s.p99_ms)),
            f(s.map(|s| s.std_ms)),
            f(s.map(|s| s.min_ms)),
            f(s.map(|s| s.max_ms)),
            s.map(|s| s.outliers.to_string()).unwrap_or_default(),
            f(s.map(|s| s.items_per_s)),
            f(s.and_then(|s| s.tokens_per_s)),
            f(c.agreement.as_ref().map(|a| a.max_abs)),
            c.agreement.as_ref().and_then(|a| a.within_tolerance).map(|ok| ok.to_string()).unwrap_or_default(),
            c.flags.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("; "),
            c.error.clone().unwrap_or_default(),
            sib.map(|a| a.sibling.clone()).unwrap_or_default(),
            sib.map(|a| a.runtime.to_string()).unwrap_or_default(),
            f(sib.and_then(|a| a.max_abs)),
            sib.and_then(|a| a.within_tolerance).map(|ok| ok.to_string()).unwrap_or_default(),
            f(c.expected.as_ref().map(|a| a.max_abs)),
            c.expected.as_ref().and_then(|a| a.within_tolerance).map(|ok| ok.to_string()).unwrap_or_default(),
        ])?;
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("cannot lay out results.csv: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Precision;

    #[test]
    fn csv_fields_with_separators_quotes_and_line_breaks_read_back_whole() {
        let mut r: RunResults = crate::results::parse_results(include_str!("../../tests/data/minimal-results.json"), "minimal-results.json").unwrap();
        r.cells[0].error = Some("a, \"quoted\"\r\nline".into());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("results.csv");
        write_csv(&p, &r).unwrap();
        let mut rd = csv::Reader::from_path(&p).unwrap();
        assert_eq!(rd.headers().unwrap().len(), CSV_HEAD.len());
        let rows: Vec<csv::StringRecord> = rd.records().map(|x| x.unwrap()).collect();
        assert_eq!(rows.len(), r.cells.len());
        let error = CSV_HEAD.iter().position(|h| *h == "error").unwrap();
        assert_eq!(&rows[0][error], "a, \"quoted\"\r\nline");
    }

    #[test]
    fn precisions_are_written_as_before_and_a_rewritten_file_is_byte_identical() {
        let text = include_str!("../../tests/data/minimal-results.json");
        let r = crate::results::parse_results(text, "minimal-results.json").unwrap();
        assert_eq!(r.models[0].precision, Precision::Fp32);
        assert_eq!(r.groups[0].session.as_ref().unwrap().precision, None, "a session that said none reads as none");
        for p in Precision::ALL {
            let mut r = r.clone();
            r.models[0].precision = p;
            r.groups[0].session.as_mut().unwrap().precision = Some(p);
            let written = String::from_utf8(json_bytes(&r).unwrap()).unwrap();
            assert_eq!(written.matches(&format!("\"precision\": \"{p}\"")).count(), 2, "{written}");
            let again = crate::results::parse_results(&written, "rewritten").unwrap();
            assert_eq!((again.models[0].precision, again.groups[0].session.as_ref().unwrap().precision), (p, Some(p)));
            assert_eq!(String::from_utf8(json_bytes(&again).unwrap()).unwrap(), written, "re-written byte for byte");
        }
        let unknown = text.replacen("\"precision\": \"fp32\"", "\"precision\": \"fp4\"", 1);
        let e = format!("{:#}", crate::results::parse_results(&unknown, "odd.json").unwrap_err());
        assert!(e.contains("fp4"), "{e}");
    }

    #[test]
    fn atomic_writes_leave_no_temporary_file_and_replace_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("results.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
