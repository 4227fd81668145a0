//! Models against their sibling: when a run holds a model and the model its `compare_with` names
//! (an fp16 copy and the fp32 model it was made from), each cell of the first is compared with the
//! sibling's cell of the same runtime, input length and batch size, once both models have run,
//! whichever is listed first.

use std::path::Path;

use super::{add_flag, agreement};
use crate::results::{CellIndex, Flag, FlagKind, OutputsDir, RunResults, SavedOutputs, SiblingAgreement, Status};
use crate::scenario::RuntimeId;

/// (model, sibling) pairs of the run, by name, where the run holds both.
pub fn pairs(r: &RunResults) -> Vec<(String, String)> {
    r.models
        .iter()
        .filter_map(|m| m.compare_with.as_ref().filter(|s| r.models.iter().any(|x| &x.name == *s)).map(|s| (m.name.clone(), s.clone())))
        .collect()
}

/// Notes for the models whose sibling the run does not hold.
pub fn missing_notes(r: &RunResults) -> Vec<String> {
    r.models
        .iter()
        .filter_map(|m| m.compare_with.as_ref().filter(|s| !r.models.iter().any(|x| &x.name == *s)).map(|s| crate::results::missing_sibling_note(&m.name, s)))
        .collect()
}

/// Compares each of `models` with its sibling where both have run and the saved outputs are there.
pub(super) fn compare(r: &mut RunResults, ix: &CellIndex, models: &[String], outputs_dir: &Path) {
    for (m, s) in pairs(r).into_iter().filter(|(m, _)| models.contains(m)) {
        if ix.done(r, &m) && ix.done(r, &s) && !super::deferred(r, &m) && !super::deferred(r, &s) {
            compare_model(r, ix, &m, &s, outputs_dir);
        }
    }
}

/// The sibling's cell to compare a cell on `runtime` with: the one on the same runtime, else the
/// one on the reference runtime (with why). `Err` says why neither can be used.
fn sibling_cell(r: &RunResults, ix: &CellIndex, outputs_dir: &Path, sibling: &str, runtime: RuntimeId, point: crate::results::Point) -> Result<(SavedOutputs, RuntimeId, Option<String>), String> {
    let reference = r.reference_runtime;
    let usable = |rt| -> Result<SavedOutputs, String> {
        let Some(c) = ix.get(crate::results::CellKey { model: sibling, runtime: rt, point }).map(|k| &r.cells[k]) else { return Err(format!("the sibling has no {rt} cell")) };
        match c.status {
            Status::Ok => OutputsDir::at(outputs_dir).read(c.index).map_err(|_| format!("the sibling's {rt} cell has no saved outputs")),
            Status::Failed => Err(format!("the sibling's {rt} cell failed")),
            Status::Skipped => Err(format!("the sibling's {rt} cell was skipped")),
            Status::Pending => Err(format!("the sibling's {rt} cell did not run")),
        }
    };
    match usable(runtime) {
        Ok(saved) => Ok((saved, runtime, None)),
        Err(why) if runtime != reference => match usable(reference) {
            Ok(saved) => Ok((saved, reference, Some(format!("{why}; compared with its {reference} cell (the reference runtime)")))),
            Err(why_ref) => Err(format!("{why}, and its {}", why_ref.trim_start_matches("the sibling's "))),
        },
        Err(why) => Err(why),
    }
}

/// Compares each measured cell of model `name` with its sibling's, once.
fn compare_model(r: &mut RunResults, ix: &CellIndex, name: &str, sibling: &str, outputs_dir: &Path) {
    let (pm, ps) = (r.precision(name), r.precision(sibling));
    let (_, tol) = r.tolerances.loosest([pm, ps]);
    let todo: Vec<usize> = ix.of_model(name).iter().copied().filter(|&i| r.cells[i].status == Status::Ok && r.cells[i].sibling_agreement.is_none()).collect();
    for i in todo {
        let (runtime, point) = (r.cells[i].runtime, r.cells[i].point());
        let got = match OutputsDir::at(outputs_dir).read(i) {
            Ok(got) => got,
            Err(e) => {
                add_flag(&mut r.cells[i], Flag::new(FlagKind::NotCompared, format!("not compared with its sibling `{sibling}`: {e:#}")));
                r.cells[i].sibling_agreement = Some(SiblingAgreement::not_compared(sibling, runtime, tol, vec![format!("not compared: {e:#}")]));
                continue;
            }
        };
        let (agreement, fed_differently) = match sibling_cell(r, ix, outputs_dir, sibling, runtime, point) {
            Ok((want, rt, fallback)) => match agreement::feed_difference(&got, &want) {
                Some(why) => {
                    let mut a = SiblingAgreement::not_compared(sibling, rt, tol, vec![format!("not compared: the inputs differ ({why})")]);
                    a.fallback = fallback;
                    (a, Some(format!("the inputs differ ({why})")))
                }
                None => (agreement::compare_siblings(&got, &want, sibling, rt, fallback, tol), None),
            },
            Err(why) => (SiblingAgreement::not_compared(sibling, runtime, tol, vec![format!("not compared: {why}")]), None),
        };
        let cell = &mut r.cells[i];
        let what = format!("the {ps} sibling `{sibling}` ({pm} vs {ps}, {} cell)", agreement.runtime);
        if agreement.disagrees() {
            let mut why = format!(
                "outputs differ from {what}: max abs diff {}, tolerance {:e} + {:e}·|r|",
                agreement.max_abs.map(|v| format!("{v:.3e}")).unwrap_or_else(|| "not finite".into()),
                tol.abs,
                tol.rel
            );
            for p in &agreement.problems {
                why.push_str("; ");
                why.push_str(p);
            }
            add_flag(cell, Flag::new(FlagKind::SiblingDisagrees, why));
        } else if let Some(why) = fed_differently {
            // Cells fed differently cannot be judged: a warning, not a verdict.
            add_flag(cell, Flag::new(FlagKind::SiblingNotCompared, format!("not compared with {what}: {why}")));
        }
        cell.sibling_agreement = Some(agreement);
    }
}

/// Removes the saved outputs that no comparison needs any more: those of models that have run and
/// whose siblings (either way) have run too; with `after`, only those the end of that model's
/// group may have freed (its own, and its siblings' either way).
/// `ix` is the record's index (built once for a run: the cells' keys do not change).
pub fn release_outputs(r: &RunResults, ix: &CellIndex, outputs_dir: &Path, after: Option<&str>) {
    let pairs = pairs(r);
    let touched = |m: &str| after.is_none_or(|a| a == m || pairs.iter().any(|(x, y)| (x == a && y == m) || (y == a && x == m)));
    for (k, m) in r.models.iter().enumerate().filter(|(_, m)| touched(&m.name)) {
        let needed = pairs.iter().filter(|(a, b)| *a == m.name || *b == m.name).any(|(a, b)| !(ix.done(r, a) && ix.done(r, b)));
        if ix.done(r, &m.name) && !needed {
            for c in ix.of_model(&m.name).iter().map(|&i| &r.cells[i]) {
                OutputsDir::at(outputs_dir).remove(c.index, c.data_set.map(|set| (k, set)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use ndarray::{ArrayD, IxDyn};

    use super::*;
    use crate::resolve::{resolve, ResolveOptions, ResolvedPlan};
    use crate::results::CellRecord;
    use crate::scenario::{validate, Overrides, Precision, ScenarioFile};
    use crate::tensor::{Output, Tensor};

    struct Fixture {
        _root: tempfile::TempDir,
        plan: ResolvedPlan,
        results: RunResults,
        outputs: PathBuf,
    }

    /// Models `base` (fp32) and `half` (fp16, `compare_with: base`), both the tiny BERT's file, in
    /// the order given, on tract-cpu (the reference) and ort-cpu, at 50 characters × batch 1 and 2.
    fn fixture(models: &[&str]) -> Fixture {
        let root = tempfile::tempdir().unwrap();
        for m in ["base", "half"] {
            let dir = root.path().join("models").join(m);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::copy("models/tiny-bert/model.onnx", dir.join("model.onnx")).unwrap();
        }
        std::fs::write(root.path().join("models/half/model.yaml"), "compare_with: base\n").unwrap();
        let yaml = format!(
            "name: t\nmodels: [{}]\nruntimes: [tract-cpu, ort-cpu]\ninput_chars: [50]\nbatch_sizes: [1, 2]\niterations: 1\nwarmup: 0\n",
            models.join(", ")
        );
        let file = ScenarioFile::parse(&yaml, "s.yaml").unwrap();
        let plan = validate(&file, "s.yaml", root.path(), &Overrides::default()).unwrap();
        let plan = resolve(plan, &ResolveOptions { models_root: root.path().join("models"), ops_dir: None }).unwrap();
        let mut results: RunResults = crate::results::parse_results(include_str!("../../tests/data/minimal-results.json"), "minimal-results.json").unwrap();
        // An older results file reads with no sibling fields.
        assert!(results.models[0].compare_with.is_none() && results.cells[0].sibling_agreement.is_none());
        results.reference_runtime = RuntimeId::TRACT_CPU;
        results.models = crate::run::record::model_records(&plan);
        for m in &mut results.models {
            m.precision = if m.name == "half" { Precision::Fp16 } else { Precision::Fp32 };
        }
        results.cells = plan.plan.cells.iter().map(|c| CellRecord::empty(c, 0, 1, Status::Ok, None)).collect();
        let outputs = root.path().join(".outputs");
        std::fs::create_dir_all(&outputs).unwrap();
        Fixture { _root: root, plan, results, outputs }
    }

    impl Fixture {
        fn cells(&self, model: &str) -> Vec<usize> {
            self.plan.plan.cells.iter().filter(|c| c.model == model).map(|c| c.index).collect()
        }

        /// Saves what a cell would have given: one output whose every value is `value`, for ids
        /// 1, 2, 3, … (plus `id_shift`) of which the last position of each row is padding.
        fn save(&self, cell: usize, value: f32, id_shift: i64) {
            let b = self.plan.plan.cells[cell].batch;
            let l = 3;
            let ids = Tensor::I64(ArrayD::from_shape_vec(IxDyn(&[b, l]), (0..(b * l) as i64).map(|i| i + 1 + id_shift).collect()).unwrap());
            let mask = (0..b * l).map(|i| u8::from(i % l != l - 1)).collect();
            let out = Output { name: "h".into(), data: Tensor::F32(ArrayD::from_elem(IxDyn(&[b, l, 4]), value)) };
            let saved = SavedOutputs { outputs: vec![out], batch: b, seq_len: l, mask, inputs: vec![("input_ids".into(), ids.digest())] };
            OutputsDir::at(&self.outputs).write(cell, &saved).unwrap();
        }

        fn saved(&self, cell: usize) -> bool {
            OutputsDir::at(&self.outputs).cell_file(cell).exists()
        }

        /// What a run does after a group: compare siblings where both have run, then release.
        fn release_after(&mut self, _model: &str) {
            let ix = CellIndex::of(&self.results);
            let models = ix.models().to_vec();
            compare(&mut self.results, &ix, &models, &self.outputs);
            release_outputs(&self.results, &ix, &self.outputs, None);
        }
    }

    #[test]
    fn compared_once_both_have_run_whichever_is_listed_first_and_outputs_kept_until_then() {
        let mut f = fixture(&["half", "base"]);
        for c in f.cells("half") {
            f.save(c, 1.0, 0);
        }
        for c in f.cells("base") {
            f.results.cells[c].status = Status::Pending;
        }
        // `half` ran first: its sibling has not, so nothing is compared and its outputs stay.
        f.release_after("half");
        assert!(f.cells("half").iter().all(|&c| f.results.cells[c].sibling_agreement.is_none() && f.saved(c)));
        for c in f.cells("base") {
            f.results.cells[c].status = Status::Ok;
            f.save(c, 1.004, 0);
        }
        f.release_after("base");
        for c in f.cells("half") {
            let cell = &f.results.cells[c];
            let a = cell.sibling_agreement.as_ref().expect("compared once both ran");
            assert_eq!((a.sibling.as_str(), a.runtime, a.fallback.as_deref()), ("base", cell.runtime, None));
            assert_eq!(a.tolerance, crate::results::Tolerance::FP16, "the fp16 tolerance, as one of the two is fp16");
            assert_eq!(a.within_tolerance, Some(true));
            assert!((a.max_abs.unwrap() - 0.004).abs() < 1e-6, "{a:?}");
            // Only real positions count: 2 of 3 per row, 4 values each.
            assert_eq!(a.outputs[0].compared, cell.batch * 2 * 4);
            assert!(cell.flags.is_empty(), "{:?}", cell.flags);
        }
        assert!(f.cells("base").iter().all(|&c| f.results.cells[c].sibling_agreement.is_none()), "the fp32 model has no sibling");
        assert!(f.plan.plan.cells.iter().all(|c| !f.saved(c.index)), "every saved output is removed once compared");
        // Compared once: a second pass changes nothing.
        let before = f.results.cells.clone();
        f.release_after("base");
        assert_eq!(before, f.results.cells);
    }

    #[test]
    fn a_difference_beyond_the_tolerance_is_flagged_as_fp16_against_fp32() {
        let mut f = fixture(&["base", "half"]);
        for c in f.cells("base") {
            f.save(c, 1.0, 0);
        }
        // `half` is listed after `base`: it has not run yet.
        for c in f.cells("half") {
            f.results.cells[c].status = Status::Pending;
        }
        f.release_after("base");
        assert!(f.cells("base").iter().all(|&c| f.saved(c)), "kept for the model listed after it");
        for c in f.cells("half") {
            f.results.cells[c].status = Status::Ok;
            f.save(c, 1.5, 0);
        }
        f.release_after("half");
        for c in f.cells("half") {
            let cell = &f.results.cells[c];
            let a = cell.sibling_agreement.as_ref().unwrap();
            assert!(a.disagrees() && (a.max_abs.unwrap() - 0.5).abs() < 1e-6, "{a:?}");
            let flag = cell.flags.iter().map(|x| x.to_string()).find(|x| x.starts_with("outputs differ from the fp32 sibling `base` (fp16 vs fp32")).expect("flagged");
            assert!(flag.contains("max abs diff 5.000e-1"), "{flag}");
        }
    }

    #[test]
    fn a_missing_same_runtime_cell_falls_back_to_the_reference_runtime_and_says_so() {
        let mut f = fixture(&["base", "half"]);
        for c in f.cells("base").into_iter().chain(f.cells("half")) {
            f.save(c, 1.0, 0);
        }
        // The sibling's ort-cpu cells failed; at batch 2 its tract-cpu cell failed as well.
        for c in f.cells("base") {
            let (rt, b) = (f.plan.plan.cells[c].runtime, f.plan.plan.cells[c].batch);
            if rt == RuntimeId::ORT_CPU || b == 2 {
                f.results.cells[c].status = Status::Failed;
            }
        }
        f.release_after("half");
        for c in f.cells("half") {
            let cell = &f.results.cells[c];
            let a = cell.sibling_agreement.as_ref().unwrap();
            match (cell.runtime.as_str(), cell.batch) {
                ("tract-cpu", 1) => assert!(a.runtime == RuntimeId::TRACT_CPU && a.fallback.is_none() && a.within_tolerance == Some(true)),
                ("ort-cpu", 1) => {
                    assert_eq!((a.runtime, a.within_tolerance), (RuntimeId::TRACT_CPU, Some(true)), "{a:?}");
                    let why = a.fallback.as_deref().unwrap();
                    assert!(why.contains("ort-cpu cell failed") && why.contains("its tract-cpu cell"), "{why}");
                }
                _ => {
                    // Nothing to compare with: said in the record, no verdict and no flag.
                    assert_eq!(a.within_tolerance, None, "{a:?}");
                    let want = if cell.runtime == RuntimeId::ORT_CPU {
                        "not compared: the sibling's ort-cpu cell failed, and its tract-cpu cell failed"
                    } else {
                        "not compared: the sibling's tract-cpu cell failed"
                    };
                    assert_eq!(a.problems, vec![want.to_string()]);
                    assert!(cell.flags.is_empty());
                }
            }
        }
    }

    #[test]
    fn cells_fed_differently_get_a_problem_not_a_verdict() {
        let mut f = fixture(&["base", "half"]);
        for c in f.cells("base") {
            // Other token ids at batch 1; at batch 2 the same ids, and the outputs differ wildly.
            let shift = if f.plan.plan.cells[c].batch == 1 { 100 } else { 0 };
            f.save(c, 9.0, shift);
        }
        for c in f.cells("half") {
            f.save(c, 1.0, 0);
        }
        f.release_after("half");
        for c in f.cells("half") {
            let cell = &f.results.cells[c];
            let a = cell.sibling_agreement.as_ref().unwrap();
            if cell.batch == 1 {
                assert_eq!((a.within_tolerance, a.max_abs), (None, None), "{a:?}");
                assert!(a.problems[0].contains("inputs differ") && a.problems[0].contains("`input_ids`"), "{:?}", a.problems);
                assert!(cell.flags.iter().any(|x| x.to_string().starts_with("not compared with the fp32 sibling `base`")), "{:?}", cell.flags);
                assert!(!cell.flags.iter().any(|x| x.to_string().starts_with("outputs differ")));
            } else {
                assert!(a.disagrees());
            }
        }
    }

    #[test]
    fn a_model_whose_sibling_is_not_run_gets_a_note_and_its_outputs_go_at_once() {
        let mut f = fixture(&["half"]);
        assert_eq!(f.plan.sibling_of(0), None);
        assert!(f.plan.keeps_outputs(0), "two runtimes compare each other");
        let notes = missing_notes(&f.results);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("`half`") && notes[0].contains("`base`") && notes[0].contains("add `base` to `models`"), "{notes:?}");
        for c in f.cells("half") {
            f.save(c, 1.0, 0);
        }
        f.release_after("half");
        assert!(f.cells("half").iter().all(|&c| !f.saved(c) && f.results.cells[c].sibling_agreement.is_none()));
    }
}
