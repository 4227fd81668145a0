//! Judging a run from its record: one pass, shared by `xbench scenario` (after each group, over
//! the cells that group changed, `analyze_group`), `--resume` and `xbench report` (over all).
//! Cells are joined by their key (`CellIndex`), never by scanning the record. Warnings from the recorded numbers (`warnings`) and
//! sanity verdicts across each grid (`verdict`) are recomputed every time; outputs are compared
//! across runtimes (`agreement`) and against sibling models (`siblings`) once, when the saved
//! outputs of both sides are there. Flags are typed and kept in one order.

mod agreement;
pub mod generation;
mod reference;
pub mod siblings;
mod verdict;
mod warnings;

use std::path::Path;

pub use agreement::{compare_outputs, compare_siblings, feed_difference};
pub use verdict::check_group;

/// How the `departs` flag of a data set's cells begins when its expected outputs are what departs.
pub const EXPECTED_DEPART: &str = "the model's expected outputs depart";

use crate::results::{CellIndex, CellRecord, Flag, FlagKind, RunResults};


/// The order flags are kept in, whatever step added them.
const ORDER: [FlagKind; 12] = [
    FlagKind::Truncated,
    FlagKind::Stalled,
    FlagKind::TimerResolution,
    FlagKind::NoisyInterval,
    FlagKind::Suspicious,
    FlagKind::ExpectedDisagrees,
    FlagKind::Disagrees,
    FlagKind::Departs,
    FlagKind::NotCompared,
    FlagKind::SiblingDisagrees,
    FlagKind::SiblingNotCompared,
    FlagKind::Other,
];

fn rank(k: FlagKind) -> usize {
    ORDER.iter().position(|o| *o == k).unwrap_or(ORDER.len())
}

/// Adds `flag` to `c` in its place among the kinds.
pub(crate) fn add_flag(c: &mut CellRecord, flag: Flag) {
    let at = c.flags.iter().position(|f| rank(f.kind) > rank(flag.kind)).unwrap_or(c.flags.len());
    c.flags.insert(at, flag);
}

/// Whether comparisons that take every result of `model` wait for the shards to be merged: in a
/// shard's record whose cells of `model` are compared with other shards' cells (their outputs
/// are kept for that), the results here are only some of them.
pub(crate) fn deferred(r: &RunResults, model: &str) -> bool {
    r.shard.as_ref().is_some_and(|s| s.kept_outputs.iter().any(|&k| r.cells.get(k).is_some_and(|c| c.model == model)))
}

/// The whole pass. `outputs_dir` holds the saved outputs of the run, when they are still there.
pub fn analyze(r: &mut RunResults, outputs_dir: Option<&Path>) {
    let ix = CellIndex::of(r);
    let models = ix.models().to_vec();
    pass(r, &ix, &models, outputs_dir);
}

/// The pass after group `group` ended: over the cells of its model and of the models compared
/// with it (`compare_with`), the only ones whose verdicts the group can change. `ix` is the
/// record's index, built once for a run (the cells' keys do not change as they run).
pub fn analyze_group(r: &mut RunResults, ix: &CellIndex, outputs_dir: Option<&Path>, group: usize) {
    let Some(model) = r.groups.get(group).map(|g| g.model.clone()) else { return };
    let mut models = vec![model.clone()];
    models.extend(r.models.iter().filter(|m| m.compare_with.as_deref() == Some(model.as_str())).map(|m| m.name.clone()));
    pass(r, ix, &models, outputs_dir);
}

fn pass(r: &mut RunResults, ix: &CellIndex, models: &[String], outputs_dir: Option<&Path>) {
    let share = r.scenario.ci_warn_share.unwrap_or(0.10);
    for model in models {
        let max_positions = r.models.iter().find(|m| m.name == *model).and_then(|m| m.max_positions);
        let mut runtimes: Vec<crate::scenario::RuntimeId> = Vec::new();
        for &i in ix.of_model(model) {
            warnings::check_cell(&mut r.cells[i], max_positions, share);
            if !runtimes.contains(&r.cells[i].runtime) {
                runtimes.push(r.cells[i].runtime);
            }
        }
        for runtime in runtimes {
            verdict::check_cells(r, ix.of_model(model), model, runtime);
        }
    }
    if let Some(dir) = outputs_dir {
        reference::compare_runtimes(r, ix, models, dir);
        reference::compare_expected(r, ix, models, dir);
        reference::departures(r, ix, models, dir);
        siblings::compare(r, ix, models, dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::SavedOutputs;

    /// One model on tract-cpu (the reference) and ort-cpu, one cell each, both measured.
    fn two_runtimes() -> RunResults {
        let mut r = crate::results::parse_results(include_str!("../../tests/data/minimal-results.json"), "minimal-results.json").unwrap();
        let cell = r.cells[0].clone();
        r.reference_runtime = crate::scenario::RuntimeId::TRACT_CPU;
        r.cells = vec![cell.clone(), CellRecord { index: 1, runtime: crate::scenario::RuntimeId::ORT_CPU, ..cell }];
        r
    }

    fn save(dir: &Path, cell: usize, value: f32) {
        let data = crate::tensor::Tensor::F32(ndarray::ArrayD::from_elem(ndarray::IxDyn(&[1, 2, 3]), value));
        let saved = SavedOutputs { outputs: vec![crate::tensor::Output { name: "h".into(), data }], batch: 1, seq_len: 2, mask: vec![1, 1], inputs: vec![] };
        crate::results::OutputsDir::at(dir).write(cell, &saved).unwrap();
    }

    #[test]
    fn runtimes_are_compared_once_and_unreadable_outputs_leave_a_flag_not_silence() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = two_runtimes();
        save(dir.path(), 0, 1.0);
        save(dir.path(), 1, 1.5);
        analyze(&mut r, Some(dir.path()));
        let a = r.cells[1].agreement.as_ref().expect("compared with the reference");
        assert!(a.disagrees() && (a.max_abs - 0.5).abs() < 1e-9, "{a:?}");
        assert_eq!(r.cells[1].flags.iter().filter(|f| f.kind == FlagKind::Disagrees).count(), 1);
        assert!(r.cells[0].agreement.is_none(), "the reference is not compared with itself");
        // A second pass judges nothing twice.
        analyze(&mut r, Some(dir.path()));
        assert_eq!(r.cells[1].flags.iter().filter(|f| f.kind == FlagKind::Disagrees).count(), 1);

        let mut r = two_runtimes();
        std::fs::write(crate::results::OutputsDir::at(dir.path()).cell_file(1), b"half a file").unwrap();
        analyze(&mut r, Some(dir.path()));
        assert!(r.cells[1].agreement.is_none());
        let f = r.cells[1].flags.iter().find(|f| f.kind == FlagKind::NotCompared).expect("a flag says the cell was not compared");
        assert!(f.detail.contains("cell-1.safetensors") && f.detail.contains("tract-cpu"), "{f:?}");
    }

    #[test]
    fn flags_keep_one_order_whatever_adds_them() {
        let r: RunResults = crate::results::parse_results(include_str!("../../tests/data/minimal-results.json"), "minimal-results.json").unwrap();
        let mut c = r.cells[0].clone();
        c.flags.clear();
        for k in [FlagKind::Disagrees, FlagKind::Truncated, FlagKind::Suspicious, FlagKind::NoisyInterval] {
            add_flag(&mut c, Flag::new(k, "x"));
        }
        let kinds: Vec<FlagKind> = c.flags.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, [FlagKind::Truncated, FlagKind::NoisyInterval, FlagKind::Suspicious, FlagKind::Disagrees]);
    }
}
