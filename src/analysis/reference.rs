//! Outputs against references: each runtime's cell against the reference runtime's on the same
//! inputs, and against the model's own expected outputs (its test data); and, where three or more
//! results of the same inputs are there, which one departs from the others.

use std::path::Path;

use super::{add_flag, compare_outputs};
use crate::results::{Agreement, CellIndex, Flag, FlagKind, OutputsDir, RunResults, SavedOutputs, Status, EXPECTED};
use crate::scenario::RuntimeId;

/// How a cell whose reference cell did not run is flagged.
const NOT_RUN: &str = "did not run this cell";

/// What a verdict says, for a flag.
fn why(a: &Agreement, against: &str) -> String {
    let mut why = format!("outputs differ from {against}: max abs diff {:.3e} ({} tolerance)", a.max_abs, a.precision.unwrap_or_default());
    for p in &a.problems {
        why.push_str("; ");
        why.push_str(p);
    }
    why
}

/// Compares each runtime's cells with the reference runtime's, for every model whose cells have
/// all run. A cell is compared once; saved outputs that cannot be read, and outputs with no
/// element to compare, leave a flag saying so.
pub(super) fn compare_runtimes(r: &mut RunResults, ix: &CellIndex, models: &[String], dir: &Path) {
    let reference = r.reference_runtime;
    let of = |m: &String| ix.of_model(m).iter().copied();
    // A reference cell that did not run before may have run since (`--retry-failed`): compare again.
    for i in models.iter().flat_map(of) {
        let c = &r.cells[i];
        if c.has_flag(FlagKind::NotCompared) && ix.at(&c.model, reference, c).is_some_and(|k| r.cells[k].status == Status::Ok) {
            r.cells[i].flags.retain(|f| !(f.kind == FlagKind::NotCompared && f.detail.contains(NOT_RUN)));
        }
    }
    let todo: Vec<usize> = models
        .iter()
        .filter(|m| ix.done(r, m))
        .flat_map(of)
        .filter(|&i| {
            let c = &r.cells[i];
            c.runtime != reference && c.status == Status::Ok && c.agreement.is_none() && !c.has_flag(FlagKind::NotCompared)
        })
        .collect();
    for i in todo {
        let c = &r.cells[i];
        let Some(ref_cell) = ix.at(&c.model, reference, c).map(|k| &r.cells[k]) else { continue };
        // Nothing to compare with is not agreement: the cell says so.
        if matches!(ref_cell.status, Status::Skipped | Status::Failed) {
            let why = ref_cell.error.as_deref().and_then(|e| e.lines().next()).unwrap_or("no reason recorded");
            let detail = format!("outputs not compared with {reference}: {reference} {NOT_RUN} ({}: {why})", if ref_cell.status == Status::Skipped { "skipped" } else { "failed" });
            add_flag(&mut r.cells[i], Flag::new(FlagKind::NotCompared, detail));
            continue;
        }
        if ref_cell.status != Status::Ok {
            continue;
        }
        let (precision, tol) = r.judged_by(&c.model, &[c.runtime, reference]);
        let read = OutputsDir::at(dir).read(i).and_then(|got| Ok((got, OutputsDir::at(dir).read(ref_cell.index)?)));
        let cell = &mut r.cells[i];
        if cell.generation.is_some() {
            match read.map_err(|e| format!("{e:#}")).and_then(|(got, want)| super::generation::compare(&got, &want, reference, precision, tol)) {
                Ok((ids, a)) => {
                    if let Some(p) = &ids.parted {
                        add_flag(cell, Flag::new(FlagKind::Disagrees, super::generation::parted_words(p, reference)));
                    } else if a.disagrees() {
                        add_flag(cell, Flag::new(FlagKind::Disagrees, why(&a, reference.as_str())));
                    } else if a.within_tolerance.is_none() {
                        add_flag(cell, Flag::new(FlagKind::NotCompared, format!("logits not compared with {reference}: none were saved")));
                    }
                    if let Some(g) = cell.generation.as_mut() {
                        g.agreement = Some(ids);
                    }
                    cell.agreement = Some(a);
                }
                Err(e) => add_flag(cell, Flag::new(FlagKind::NotCompared, format!("generated ids not compared with {reference}: {e}"))),
            }
            continue;
        }
        match read {
            Ok((got, want)) => {
                let mut a = compare_outputs(&got.outputs, &want.outputs, reference.as_str(), got.batch, got.seq_len, &got.mask, tol);
                a.precision = Some(precision);
                match a.within_tolerance {
                    Some(false) => add_flag(cell, Flag::new(FlagKind::Disagrees, why(&a, reference.as_str()))),
                    None => add_flag(cell, Flag::new(FlagKind::NotCompared, format!("outputs not compared with {reference}: they hold no element"))),
                    Some(true) => {}
                }
                cell.agreement = Some(a);
            }
            Err(e) => add_flag(cell, Flag::new(FlagKind::NotCompared, format!("outputs not compared with {reference}: {e:#}"))),
        }
    }
}

/// Compares every cell that ran a test data set with the data set's expected outputs.
pub(super) fn compare_expected(r: &mut RunResults, ix: &CellIndex, models: &[String], dir: &Path) {
    // Judged once: a comparison that cannot be made is recorded as such, with its reason.
    let todo: Vec<usize> = models
        .iter()
        .flat_map(|m| ix.of_model(m).iter().copied())
        .filter(|&i| r.cells[i].data_set.is_some() && r.cells[i].status == Status::Ok && r.cells[i].expected.is_none())
        .collect();
    for i in todo {
        let c = &r.cells[i];
        let (Some(m), Some(set)) = (r.models.iter().position(|m| m.name == c.model), c.data_set) else { continue };
        let (precision, tol) = r.judged_by(&c.model, &[c.runtime]);
        let read = OutputsDir::at(dir).read(i).and_then(|got| Ok((got, OutputsDir::at(dir).read_expected(m, set)?)));
        let cell = &mut r.cells[i];
        match read {
            Ok((got, want)) => {
                let mut a = compare_outputs(&got.outputs, &want.outputs, EXPECTED, got.batch, got.seq_len, &got.mask, tol);
                a.precision = Some(precision);
                match a.within_tolerance {
                    Some(false) => add_flag(cell, Flag::new(FlagKind::ExpectedDisagrees, why(&a, &format!("the model's expected outputs (test_data_set_{set})")))),
                    None => add_flag(cell, Flag::new(FlagKind::NotCompared, "outputs not compared with the expected outputs: they hold no element")),
                    Some(true) => {}
                }
                cell.expected = Some(a);
            }
            Err(e) => {
                let why = format!("outputs not compared with the model's expected outputs: {e:#}");
                add_flag(cell, Flag::new(FlagKind::NotCompared, why.clone()));
                cell.expected = Some(Agreement::not_compared(EXPECTED, why));
            }
        }
    }
}

/// One result of a point: a runtime's cell, or the expected outputs.
#[derive(Clone, Copy, PartialEq)]
enum Source {
    Cell(usize),
    Expected,
}

/// Where three or more results of the same inputs are there and some disagree: the one that
/// disagrees with every other while all the others agree among themselves departs, and is
/// flagged. Runs while the saved outputs are still there (before they are released).
pub(super) fn departures(r: &mut RunResults, ix: &CellIndex, models: &[String], dir: &Path) {
    // Models whose cells have all run, judged here rather than per point: that check reads
    // every cell of the model.
    let ready: Vec<&str> = models.iter().filter(|m| ix.done(r, m) && !super::deferred(r, m)).map(String::as_str).collect();
    let mut points: std::collections::BTreeMap<(&str, usize, usize), Vec<usize>> = std::collections::BTreeMap::new();
    for &model in &ready {
        for &i in ix.of_model(model).iter().filter(|&&i| r.cells[i].status == Status::Ok) {
            let c = &r.cells[i];
            points.entry((model, c.chars, c.batch)).or_default().push(i);
        }
    }
    'point: for ((model, _, _), cells) in points {
        let model = model.to_string();
        let disputed = cells.iter().any(|&i| r.cells[i].agreement.as_ref().is_some_and(Agreement::disagrees) || r.cells[i].expected.as_ref().is_some_and(Agreement::disagrees));
        if !disputed || cells.iter().any(|&i| r.cells[i].has_flag(FlagKind::Departs)) {
            continue;
        }
        let m = r.models.iter().position(|x| x.name == model);
        let set = r.cells[cells[0]].data_set;
        let mut sources: Vec<(Source, SavedOutputs)> = Vec::new();
        for &i in &cells {
            let Ok(s) = OutputsDir::at(dir).read(i) else { continue 'point };
            sources.push((Source::Cell(i), s));
        }
        if let (Some(m), Some(set)) = (m, set) {
            if let Ok(s) = OutputsDir::at(dir).read_expected(m, set) {
                sources.push((Source::Expected, s));
            }
        }
        if sources.len() < 3 {
            continue;
        }
        let runtime_of = |s: Source| match s {
            Source::Cell(i) => Some(r.cells[i].runtime),
            Source::Expected => None,
        };
        let agree = |a: usize, b: usize| {
            let rts: Vec<RuntimeId> = [runtime_of(sources[a].0), runtime_of(sources[b].0)].into_iter().flatten().collect();
            let (_, tol) = r.judged_by(&model, &rts);
            let (x, y) = (&sources[a].1, &sources[b].1);
            compare_outputs(&x.outputs, &y.outputs, "", x.batch, x.seq_len, &x.mask, tol).within_tolerance
        };
        let n = sources.len();
        let departing: Vec<usize> = (0..n)
            .filter(|&x| {
                let others: Vec<usize> = (0..n).filter(|&o| o != x).collect();
                others.iter().all(|&o| agree(x, o) == Some(false)) && others.iter().all(|&a| others.iter().filter(|&&b| b > a).all(|&b| agree(a, b) == Some(true)))
            })
            .collect();
        let [x] = departing[..] else { continue };
        let name = |s: Source| match s {
            Source::Cell(i) => r.cells[i].runtime.to_string(),
            Source::Expected => "the expected outputs".to_string(),
        };
        let others: Vec<String> = sources.iter().enumerate().filter(|(k, _)| *k != x).map(|(_, s)| name(s.0)).collect();
        match sources[x].0 {
            Source::Cell(i) => {
                let detail = format!("departs from the others: {} agree with each other, {} differs from them all", others.join(", "), name(sources[x].0));
                add_flag(&mut r.cells[i], Flag::new(FlagKind::Departs, detail));
            }
            Source::Expected => {
                let detail = format!("{}: {} agree with each other, not with them", super::EXPECTED_DEPART, others.join(", "));
                for &i in &cells {
                    add_flag(&mut r.cells[i], Flag::new(FlagKind::Departs, detail.clone()));
                }
            }
        }
    }
}
