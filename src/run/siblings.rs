//! Models against their sibling: when a scenario runs a model and the model its `compare_with`
//! names (an fp16 copy and the fp32 model it was made from), each cell of the first is compared
//! with the sibling's cell of the same runtime, input length and batch size. The saved outputs of
//! both models are kept until that comparison is made, whichever model is listed first.

use std::path::Path;

use super::worker::outputs_path;
use crate::results::{read_saved, RunResults, SavedOutputs, SiblingAgreement, Status};
use crate::scenario::Plan;

/// (model, sibling) pairs of the plan, by model index.
fn pairs(plan: &Plan) -> Vec<(usize, usize)> {
    (0..plan.models.len()).filter_map(|m| plan.sibling_of(m).map(|s| (m, s))).collect()
}

/// Notes for the models whose sibling this plan does not run.
pub fn missing_notes(plan: &Plan) -> Vec<String> {
    plan.models
        .iter()
        .enumerate()
        .filter(|(m, _)| plan.sibling_of(*m).is_none())
        .filter_map(|(_, spec)| spec.sibling().map(|s| crate::results::missing_sibling_note(&spec.name, &s)))
        .collect()
}

/// Called after the last group of a model (`group` is its index), once its runtimes have been
/// compared: compares every model with its sibling once both have run, then removes the saved
/// outputs of this model and of every model that no comparison still needs.
pub fn compare_and_release(plan: &Plan, group: usize, outputs_dir: &Path, results: &mut RunResults) {
    let model = plan.groups[group].model;
    let pairs = pairs(plan);
    // A model is done when its groups have all come (in plan order) and none of its cells is left to run.
    let done: Vec<bool> = (0..plan.models.len())
        .map(|m| {
            plan.groups.iter().filter(|g| g.model == m).all(|g| g.index <= group && plan.group_cells(g).iter().all(|c| results.cells[c.index].status != Status::Pending))
        })
        .collect();
    for &(m, s) in &pairs {
        if done[m] && done[s] {
            compare_model(plan, m, s, outputs_dir, results);
        }
    }
    for m in 0..plan.models.len() {
        let involved = pairs.iter().filter(|(a, b)| *a == m || *b == m);
        let mut needed = false;
        let mut paired = false;
        for &(a, b) in involved {
            paired = true;
            needed |= !(done[a] && done[b]);
        }
        if (m == model && !paired) || (paired && !needed) {
            for c in plan.cells.iter().filter(|c| c.model == plan.models[m].name) {
                let _ = std::fs::remove_file(outputs_path(outputs_dir, c.index));
            }
        }
    }
}

/// The sibling's cell to compare a cell on `runtime` with: the one on the same runtime, else the
/// one on the reference runtime (with why). `Err` says why neither can be used.
fn sibling_cell(
    results: &RunResults,
    outputs_dir: &Path,
    sibling: &str,
    runtime: crate::runtimes::RuntimeId,
    chars: usize,
    batch: usize,
) -> Result<(SavedOutputs, crate::runtimes::RuntimeId, Option<String>), String> {
    let reference = results.reference_runtime;
    let usable = |rt| -> Result<SavedOutputs, String> {
        let Some(c) = results.cell(sibling, rt, chars, batch) else { return Err(format!("the sibling has no {rt} cell")) };
        match c.status {
            Status::Ok => read_saved(&outputs_path(outputs_dir, c.index)).map_err(|_| format!("the sibling's {rt} cell has no saved outputs")),
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

/// Compares each measured cell of model `m` with its sibling `s`'s, once.
fn compare_model(plan: &Plan, m: usize, s: usize, outputs_dir: &Path, results: &mut RunResults) {
    let (name, sibling) = (&plan.models[m].name, &plan.models[s].name);
    let (pm, ps) = (results.precision(name).to_string(), results.precision(sibling).to_string());
    let tol = if pm == "fp16" || ps == "fp16" { results.tolerances.fp16 } else { results.tolerances.fp32 };
    for c in plan.cells.iter().filter(|c| c.model == *name) {
        if results.cells[c.index].status != Status::Ok || results.cells[c.index].sibling_agreement.is_some() {
            continue;
        }
        let Ok(got) = read_saved(&outputs_path(outputs_dir, c.index)) else { continue };
        let agreement = match sibling_cell(results, outputs_dir, sibling, c.runtime, c.chars, c.batch) {
            Ok((want, runtime, fallback)) => SiblingAgreement::new(&got, &want, sibling, runtime, fallback, tol),
            Err(why) => SiblingAgreement {
                sibling: sibling.clone(),
                runtime: c.runtime,
                fallback: None,
                tolerance: tol,
                max_abs: None,
                max_rel: None,
                within_tolerance: None,
                outputs: Vec::new(),
                problems: vec![format!("not compared: {why}")],
            },
        };
        let cell = &mut results.cells[c.index];
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
            cell.flags.push(why);
        } else if agreement.within_tolerance.is_none() && agreement.problems.iter().any(|p| p.contains("inputs differ")) {
            // Cells fed differently cannot be judged: a warning, not a verdict.
            let why: Vec<&str> = agreement.problems.iter().map(|p| p.trim_start_matches("not compared: ")).collect();
            cell.flags.push(format!("not compared with {what}: {}", why.join("; ")));
        }
        cell.sibling_agreement = Some(agreement);
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use ndarray::{ArrayD, IxDyn};

    use super::*;
    use crate::inputs::{Feed, HostTensor, TextBatch};
    use crate::results::{save_outputs, ModelRecord};
    use crate::run::worker::empty_record;
    use crate::runtimes::{Output, RuntimeId};

    struct Fixture {
        root: PathBuf,
        plan: Plan,
        results: RunResults,
        outputs: PathBuf,
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    /// Models `base` (fp32) and `half` (fp16, `compare_with: base`), both the tiny BERT's file, in
    /// the order given, on tract-cpu (the reference) and ort-cpu, at 50 characters × batch 1 and 2.
    fn fixture(name: &str, models: &[&str]) -> Fixture {
        let root = std::env::temp_dir().join(format!("xbench-siblings-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for m in ["base", "half"] {
            let dir = root.join("models").join(m);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::copy("models/tiny-bert/model.onnx", dir.join("model.onnx")).unwrap();
        }
        std::fs::write(root.join("models/half/model.yaml"), "compare_with: base\n").unwrap();
        let yaml = format!(
            "name: t\nmodels: [{}]\nruntimes: [tract-cpu, ort-cpu]\ninput_chars: [50]\nbatch_sizes: [1, 2]\niterations: 1\nwarmup: 0\n",
            models.join(", ")
        );
        std::fs::write(root.join("s.yaml"), yaml).unwrap();
        let (_, plan) = Plan::from_path(&root.join("s.yaml"), &root.join("models"), None).unwrap();
        let mut results: RunResults = serde_json::from_str(include_str!("../../tests/data/minimal-results.json")).unwrap();
        // An older results file reads with no sibling fields.
        assert!(results.models[0].compare_with.is_none() && results.cells[0].sibling_agreement.is_none());
        results.reference_runtime = RuntimeId::TractCpu;
        results.models = plan
            .models
            .iter()
            .map(|m| ModelRecord {
                name: m.name.clone(),
                onnx: String::new(),
                onnx_bytes: 0,
                tokenizer: None,
                weights: "random".into(),
                precision: if m.name == "half" { "fp16" } else { "fp32" }.into(),
                flops_per_token: 0,
                max_positions: None,
                compare_with: m.sibling(),
                hub_id: None,
                revision: None,
            })
            .collect();
        results.cells = plan.cells.iter().map(|c| empty_record(&plan, c, Status::Ok, None)).collect();
        let outputs = root.join(".outputs");
        std::fs::create_dir_all(&outputs).unwrap();
        Fixture { root, plan, results, outputs }
    }

    impl Fixture {
        fn cells(&self, model: &str) -> Vec<usize> {
            self.plan.cells.iter().filter(|c| c.model == model).map(|c| c.index).collect()
        }

        /// Saves what a cell would have given: one output whose every value is `value`, for ids
        /// 1, 2, 3, … (plus `id_shift`) of which the last position of each row is padding.
        fn save(&self, cell: usize, value: f32, id_shift: i64) {
            let b = self.plan.cells[cell].batch;
            let l = 3;
            let ids = ArrayD::from_shape_vec(IxDyn(&[b, l]), (0..(b * l) as i64).map(|i| i + 1 + id_shift).collect()).unwrap();
            let mask = (0..b * l).map(|i| u8::from(i % l != l - 1)).collect();
            let feed = Feed { batch: b, seq_len: l, tensors: vec![("input_ids".into(), HostTensor::I64(ids))], mask, text: TextBatch::default() };
            let out = Output { name: "h".into(), data: ArrayD::from_elem(IxDyn(&[b, l, 4]), value) };
            save_outputs(&outputs_path(&self.outputs, cell), &[out], &feed).unwrap();
        }

        fn saved(&self, cell: usize) -> bool {
            outputs_path(&self.outputs, cell).exists()
        }

        /// The index of the plan's last group of `model`.
        fn last_group(&self, model: &str) -> usize {
            self.plan.groups.iter().filter(|g| self.plan.models[g.model].name == model).map(|g| g.index).max().unwrap()
        }

        fn release_after(&mut self, model: &str) {
            let g = self.last_group(model);
            compare_and_release(&self.plan, g, &self.outputs, &mut self.results);
        }
    }

    #[test]
    fn compared_once_both_have_run_whichever_is_listed_first_and_outputs_kept_until_then() {
        let mut f = fixture("order", &["half", "base"]);
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
        assert!(f.plan.cells.iter().all(|c| !f.saved(c.index)), "every saved output is removed once compared");
        // Compared once: a second pass changes nothing.
        let before = f.results.cells.clone();
        f.release_after("base");
        assert_eq!(before, f.results.cells);
    }

    #[test]
    fn a_difference_beyond_the_tolerance_is_flagged_as_fp16_against_fp32() {
        let mut f = fixture("differ", &["base", "half"]);
        for c in f.cells("base") {
            f.save(c, 1.0, 0);
        }
        f.release_after("base");
        assert!(f.cells("base").iter().all(|&c| f.saved(c)), "kept for the model listed after it");
        for c in f.cells("half") {
            f.save(c, 1.5, 0);
        }
        f.release_after("half");
        for c in f.cells("half") {
            let cell = &f.results.cells[c];
            let a = cell.sibling_agreement.as_ref().unwrap();
            assert!(a.disagrees() && (a.max_abs.unwrap() - 0.5).abs() < 1e-6, "{a:?}");
            let flag = cell.flags.iter().find(|x| x.starts_with("outputs differ from the fp32 sibling `base` (fp16 vs fp32")).expect("flagged");
            assert!(flag.contains("max abs diff 5.000e-1"), "{flag}");
        }
    }

    #[test]
    fn a_missing_same_runtime_cell_falls_back_to_the_reference_runtime_and_says_so() {
        let mut f = fixture("fallback", &["base", "half"]);
        for c in f.cells("base").into_iter().chain(f.cells("half")) {
            f.save(c, 1.0, 0);
        }
        // The sibling's ort-cpu cells failed; at batch 2 its tract-cpu cell failed as well.
        for c in f.cells("base") {
            let (rt, b) = (f.plan.cells[c].runtime, f.plan.cells[c].batch);
            if rt == RuntimeId::OrtCpu || b == 2 {
                f.results.cells[c].status = Status::Failed;
            }
        }
        f.release_after("half");
        for c in f.cells("half") {
            let cell = &f.results.cells[c];
            let a = cell.sibling_agreement.as_ref().unwrap();
            match (cell.runtime, cell.batch) {
                (RuntimeId::TractCpu, 1) => assert!(a.runtime == RuntimeId::TractCpu && a.fallback.is_none() && a.within_tolerance == Some(true)),
                (RuntimeId::OrtCpu, 1) => {
                    assert_eq!((a.runtime, a.within_tolerance), (RuntimeId::TractCpu, Some(true)), "{a:?}");
                    let why = a.fallback.as_deref().unwrap();
                    assert!(why.contains("ort-cpu cell failed") && why.contains("its tract-cpu cell"), "{why}");
                }
                _ => {
                    // Nothing to compare with: said in the record, no verdict and no flag.
                    assert_eq!(a.within_tolerance, None, "{a:?}");
                    let want = if cell.runtime == RuntimeId::OrtCpu {
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
        let mut f = fixture("feeds", &["base", "half"]);
        for c in f.cells("base") {
            // Other token ids at batch 1; at batch 2 the same ids, and the outputs differ wildly.
            let shift = if f.plan.cells[c].batch == 1 { 100 } else { 0 };
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
                assert!(cell.flags.iter().any(|x| x.starts_with("not compared with the fp32 sibling `base`")), "{:?}", cell.flags);
                assert!(!cell.flags.iter().any(|x| x.starts_with("outputs differ")));
            } else {
                assert!(a.disagrees());
            }
        }
    }

    #[test]
    fn a_model_whose_sibling_is_not_run_gets_a_note_and_its_outputs_go_at_once() {
        let mut f = fixture("alone", &["half"]);
        assert_eq!(f.plan.sibling_of(0), None);
        assert!(f.plan.keeps_outputs(0), "two runtimes compare each other");
        let notes = missing_notes(&f.plan);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("`half`") && notes[0].contains("`base`") && notes[0].contains("add `base` to `models`"), "{notes:?}");
        for c in f.cells("half") {
            f.save(c, 1.0, 0);
        }
        f.release_after("half");
        assert!(f.cells("half").iter().all(|&c| !f.saved(c) && f.results.cells[c].sibling_agreement.is_none()));
    }
}
