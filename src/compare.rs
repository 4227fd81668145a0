//! `xbench compare A B`: two runs cell by cell — the ratio of means with its bootstrap
//! confidence interval and a verdict, matched by model, runtime, input length and batch size.

use std::fmt::Write;

use serde::Serialize;

use crate::results::{RunResults, Status};
use crate::scenario::RuntimeId;
use crate::stats::{bootstrap_ratio_ci, mean};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// B is faster than A: the whole interval of mean(B)/mean(A) lies below 1.
    Faster,
    /// B is slower than A: the whole interval lies above 1.
    Slower,
    /// The interval contains 1.
    NoDifference,
    /// A run has fewer than [`MIN_SAMPLES`] samples of the cell: an interval of one sample is
    /// that sample, not a measure of how much the time varies, so no verdict is given.
    NotEnoughSamples,
}

/// The fewest samples of a cell, in each run, that a verdict is drawn from.
pub const MIN_SAMPLES: usize = 2;

#[derive(Debug, Clone, Serialize)]
pub struct CellComparison {
    pub model: String,
    pub runtime: RuntimeId,
    pub chars: usize,
    pub batch: usize,
    /// Where the cell lies in its model's grid, in words (`50 chars / batch 1`, `test_data_set_0`).
    pub point: String,
    pub mean_a_ms: f64,
    pub mean_b_ms: f64,
    /// mean(B) / mean(A).
    pub ratio: f64,
    pub ratio_ci: [f64; 2],
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub level: f64,
    pub cells: Vec<CellComparison>,
    /// Cells measured in only one of the runs (or failed in one), described.
    pub unmatched: Vec<String>,
}

fn key(r: &RunResults, c: &crate::results::CellRecord) -> String {
    format!("{} / {} / {}", c.model, c.runtime, r.point_label(c))
}

/// Compares every cell measured in both runs, at confidence `level` (e.g. 0.95).
pub fn compare(a: &RunResults, b: &RunResults, level: f64) -> Comparison {
    let ok = |r: &RunResults| -> Vec<usize> { (0..r.cells.len()).filter(|&i| r.cells[i].status == Status::Ok && !r.cells[i].samples_ms.is_empty()).collect() };
    let (ia, ib) = (ok(a), ok(b));
    let mut cells = Vec::new();
    let mut unmatched = Vec::new();
    for &i in &ia {
        let ca = &a.cells[i];
        match ib.iter().map(|&j| &b.cells[j]).find(|cb| cb.model == ca.model && cb.runtime == ca.runtime && cb.chars == ca.chars && cb.batch == ca.batch) {
            None => unmatched.push(format!("only in A: {}", key(a, ca))),
            Some(cb) => {
                let ratio = mean(&cb.samples_ms) / mean(&ca.samples_ms);
                let ci = bootstrap_ratio_ci(&ca.samples_ms, &cb.samples_ms, level, 4000, 0xC0FFEE + i as u64);
                let verdict = if ca.samples_ms.len().min(cb.samples_ms.len()) < MIN_SAMPLES {
                    Verdict::NotEnoughSamples
                } else if ci[0] > 1.0 {
                    Verdict::Slower
                } else if ci[1] < 1.0 {
                    Verdict::Faster
                } else {
                    Verdict::NoDifference
                };
                cells.push(CellComparison {
                    model: ca.model.clone(),
                    runtime: ca.runtime,
                    chars: ca.chars,
                    batch: ca.batch,
                    point: a.point_label(ca),
                    mean_a_ms: mean(&ca.samples_ms),
                    mean_b_ms: mean(&cb.samples_ms),
                    ratio,
                    ratio_ci: ci,
                    verdict,
                });
            }
        }
    }
    for &j in &ib {
        let cb = &b.cells[j];
        if !cells.iter().any(|c| c.model == cb.model && c.runtime == cb.runtime && c.chars == cb.chars && c.batch == cb.batch) {
            unmatched.push(format!("only in B: {}", key(b, cb)));
        }
    }
    Comparison { level, cells, unmatched }
}

impl Comparison {
    /// Cells slower beyond `threshold` (0.05 = 5%): verdict slower and ratio above 1 + threshold.
    pub fn regressions(&self, threshold: f64) -> Vec<&CellComparison> {
        self.cells.iter().filter(|c| c.verdict == Verdict::Slower && c.ratio > 1.0 + threshold).collect()
    }

    /// What keeps B from passing `--fail-above PERCENT` (`a`, `b`: the runs' files as named):
    /// a cell slower beyond it, a cell of A that B did not measure, or a cell whose samples are
    /// too few for a verdict. A check that could not look at a cell is not a pass.
    pub fn gate(&self, percent: f64, a: &str, b: &str) -> std::result::Result<(), String> {
        let reg = self.regressions(percent / 100.0);
        if !reg.is_empty() {
            return Err(format!("{} cells are slower than in {a} by more than {percent}%\n  fix: find what made them slower (the table above lists them), or raise --fail-above if the change is expected", reg.len()));
        }
        let lacking: Vec<&str> = self.unmatched.iter().filter_map(|u| u.strip_prefix("only in A: ")).collect();
        if !lacking.is_empty() {
            let more = if lacking.len() > 5 { format!(", and {} more", lacking.len() - 5) } else { String::new() };
            return Err(format!(
                "{b} lacks {} of the {} cells measured in {a}, so they were not checked: {}{more}\n  fix: compare a run of B that measured every cell of A (resume it, or run the same scenario), or compare with a run A of the same cells",
                lacking.len(),
                lacking.len() + self.cells.len(),
                lacking[..lacking.len().min(5)].join("; ")
            ));
        }
        let thin: Vec<String> = self.cells.iter().filter(|c| c.verdict == Verdict::NotEnoughSamples).map(|c| format!("{} / {} / {}", c.model, c.runtime, c.point)).collect();
        if !thin.is_empty() {
            return Err(format!(
                "{} cells have fewer than {MIN_SAMPLES} samples in {a} or {b}, too few for a verdict (the first: {})\n  fix: measure with `iterations: {MIN_SAMPLES}` or more (10 or more for a verdict worth trusting)",
                thin.len(),
                thin[0]
            ));
        }
        Ok(())
    }

    /// A plain-text table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "ratio = mean(B) / mean(A); interval: {:.0}% bootstrap; verdict from the interval (faster / slower / no difference; not enough samples under {MIN_SAMPLES} in a run)",
            self.level * 100.0
        );
        let _ = writeln!(out, "{:<48} {:>10} {:>10} {:>7} {:>17}  verdict", "cell", "A (ms)", "B (ms)", "ratio", "interval");
        for c in &self.cells {
            let verdict = match c.verdict {
                Verdict::Faster => "faster",
                Verdict::Slower => "slower",
                Verdict::NoDifference => "no difference",
                Verdict::NotEnoughSamples => "not enough samples",
            };
            let _ = writeln!(
                out,
                "{:<48} {:>10.4} {:>10.4} {:>7.3} [{:>6.3}, {:>6.3}]  {verdict}",
                format!("{} / {} / {}", c.model, c.runtime, c.point),
                c.mean_a_ms,
                c.mean_b_ms,
                c.ratio,
                c.ratio_ci[0],
                c.ratio_ci[1]
            );
        }
        if !self.unmatched.is_empty() {
            let _ = writeln!(out, "\nunmatched cells (measured in one run only):");
            for u in &self.unmatched {
                let _ = writeln!(out, "  {u}");
            }
        }
        out
    }
}
