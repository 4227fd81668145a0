//! Writing results so that a crash never leaves a half-written file as the only copy:
//! JSON goes to a temporary file that is synced and renamed over the old one.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::{RunResults, Status, FORMAT_VERSION};

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
        f.sync_all().with_context(|| format!("cannot sync {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
}

pub fn write_json(path: &Path, results: &RunResults) -> Result<()> {
    let text = serde_json::to_vec_pretty(results).context("cannot serialize results")?;
    write_atomic(path, &text)
}

/// Reads a results file, refusing formats newer than this xbench understands.
pub fn read_results(path: &Path) -> Result<RunResults> {
    const FIX: &str = "\n  fix: give the results.json that `xbench scenario` wrote";
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read results file {}{FIX}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not a JSON results file{FIX}", path.display()))?;
    let version = value.get("format_version").and_then(|v| v.as_u64()).unwrap_or(0);
    if version > FORMAT_VERSION as u64 {
        bail!(
            "{} has results format version {version}, newer than this xbench reads ({FORMAT_VERSION})\n  fix: use a newer xbench to read it",
            path.display()
        );
    }
    serde_json::from_value(value).with_context(|| format!("{} is not an xbench results file of format {version}{FIX}", path.display()))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One row per cell: its coordinates, status, tokens and summary.
pub fn write_csv(path: &Path, results: &RunResults) -> Result<()> {
    let mut out = String::from(
        "model,runtime,chars,batch,status,padded_len,real_tokens,iterations,mean_ms,mean_ci95_lo_ms,mean_ci95_hi_ms,median_ms,p90_ms,p99_ms,std_ms,min_ms,max_ms,outliers,sequences_per_s,tokens_per_s,max_abs_diff,agrees,flags,error,sibling,sibling_runtime,sibling_max_abs_diff,sibling_agrees\n",
    );
    let f = |v: Option<f64>| v.map(|v| format!("{v:.6}")).unwrap_or_default();
    for c in &results.cells {
        let s = c.summary.as_ref();
        let status = match c.status {
            Status::Pending => "pending",
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        };
        let row = [
            csv_field(&c.model),
            c.runtime.to_string(),
            c.chars.to_string(),
            c.batch.to_string(),
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
            f(s.map(|s| s.sequences_per_s)),
            f(s.map(|s| s.tokens_per_s)),
            f(c.agreement.as_ref().map(|a| a.max_abs)),
            c.agreement.as_ref().map(|a| a.within_tolerance.to_string()).unwrap_or_default(),
            csv_field(&c.flags.join("; ")),
            csv_field(c.error.as_deref().unwrap_or("")),
            csv_field(c.sibling_agreement.as_ref().map(|a| a.sibling.as_str()).unwrap_or("")),
            c.sibling_agreement.as_ref().map(|a| a.runtime.to_string()).unwrap_or_default(),
            f(c.sibling_agreement.as_ref().and_then(|a| a.max_abs)),
            c.sibling_agreement.as_ref().and_then(|a| a.within_tolerance).map(|ok| ok.to_string()).unwrap_or_default(),
        ];
        out.push_str(&row.join(","));
        out.push('\n');
    }
    write_atomic(path, out.as_bytes())
}
