//! An fp16 copy of the tiny BERT beside the fp32 model it was made from (`compare_with` in its
//! model.yaml), through the real binary: each fp16 cell is compared with the fp32 cell of the same
//! runtime, input length and batch size, with the fp16 tolerance, with one runtime or several.

use std::path::Path;

use xbench::results::{read_results, RunResults, Status, Tolerance};
use xbench::runtimes::RuntimeId;

use crate::common::{self, repo, xbench, xbench_in, ScenarioRun};

/// A models folder with `tiny-bert` (the committed fp32 model) and `tiny-bert-fp16`, made by
/// `xbench make-tiny-bert --fp16 --seed SEED` (seed 42: the same weights, rounded to fp16), whose
/// model.yaml names `tiny-bert` and holds `extra_yaml`.
fn setup(name: &str, seed: u64, extra_yaml: &str) -> tempfile::TempDir {
    let tmp = tempfile::Builder::new().prefix(&format!("siblings-{name}-")).tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let root = tmp.path();
    let fp32 = root.join("models/tiny-bert");
    std::fs::create_dir_all(&fp32).unwrap();
    for f in ["model.onnx", "model.yaml", "tokenizer.json"] {
        std::fs::copy(repo("models/tiny-bert").join(f), fp32.join(f)).unwrap();
    }
    let fp16 = root.join("models/tiny-bert-fp16");
    let made = xbench()
        .args(["make-tiny-bert", "--fp16", "--seed", &seed.to_string(), "--out"])
        .arg(&fp16)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    std::fs::copy(fp32.join("tokenizer.json"), fp16.join("tokenizer.json")).unwrap();
    std::fs::write(fp16.join("model.yaml"), format!("architecture: bert\nweights: random\ncompare_with: tiny-bert\n{extra_yaml}")).unwrap();
    tmp
}

fn run(root: &Path, scenario: &str) -> ScenarioRun {
    let run = common::scenario(&mut xbench_in(root), root, scenario, &["--ignore-failures"], 0);
    assert!(!root.join("out/.outputs").exists(), "saved outputs are removed at the end");
    run
}

fn fp16_cells(r: &RunResults) -> Vec<&xbench::results::CellRecord> {
    r.cells.iter().filter(|c| c.model == "tiny-bert-fp16").collect()
}

#[test]
fn an_fp16_copy_agrees_with_its_fp32_model_within_the_fp16_tolerance_on_both_cpu_runtimes() {
    let tmp = setup("agree", 42, "");
    let root = tmp.path();
    // The fp16 model is listed first: its outputs wait for the fp32 model's.
    let run = run(
        &root,
        "name: fp16\nmodels: [tiny-bert-fp16, tiny-bert]\nruntimes: [tract-cpu, ort-cpu]\ninput_chars: [50, 200]\nbatch_sizes: [1, 4]\niterations: 3\nwarmup: 1\n",
    );
    let r = &run.results;
    let half = r.models.iter().find(|m| m.name == "tiny-bert-fp16").unwrap();
    assert_eq!((half.precision.as_str(), half.compare_with.as_deref()), ("fp16", Some("tiny-bert")));
    assert!(r.models.iter().find(|m| m.name == "tiny-bert").unwrap().compare_with.is_none());
    assert_eq!(fp16_cells(r).len(), 8);
    for c in fp16_cells(r) {
        assert_eq!(c.status, Status::Ok, "{c:?}");
        let a = c.sibling_agreement.as_ref().expect("every fp16 cell is compared with its fp32 sibling");
        assert_eq!((a.sibling.as_str(), a.runtime, a.fallback.as_deref()), ("tiny-bert", c.runtime, None));
        assert_eq!(a.tolerance, Tolerance::FP16);
        assert_eq!(a.within_tolerance, Some(true), "{a:?}");
        // fp16 weights do change the outputs, by much less than the tolerance.
        let max = a.max_abs.unwrap();
        assert!(max > 1e-5 && max < 1e-2, "max abs diff {max}");
        assert_eq!(a.outputs.len(), 2);
        let real: usize = c.tokens.as_ref().unwrap().tokens_per_row.iter().sum();
        assert_eq!(a.outputs.iter().find(|o| o.name == "last_hidden_state").unwrap().compared, real * 32, "real token positions only");
        assert!(a.problems.is_empty() && !c.flags.iter().any(|f| f.to_string().contains("sibling")), "{:?}", c.flags);
        // The runtime agreement is kept apart.
        assert_eq!(c.agreement.is_some(), c.runtime == RuntimeId::TRACT_CPU);
    }
    assert!(r.cells.iter().filter(|c| c.model == "tiny-bert").all(|c| c.sibling_agreement.is_none()));
    assert!(run.stdout.contains("0 of 8 compared with their sibling model disagree with it"), "{}", run.stdout);
    for needle in ["## Agreement with sibling models", "| tiny-bert-fp16 / ort-cpu / 200 / 4 | `tiny-bert` on ort-cpu |", "vs fp32 `tiny-bert`: max \\|diff\\|", "4/4 within", "| agree |"] {
        assert!(run.report.contains(needle), "report.md lacks {needle:?}:\n{}", run.report);
    }
    assert!(!run.report.contains("✗ differ"));
    let mut rd = csv::Reader::from_path(root.join("out/results.csv")).unwrap();
    let head = rd.headers().unwrap().clone();
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
    let row = rows.iter().find(|r| &r[0] == "tiny-bert-fp16" && &r[1] == "tract-cpu" && &r[col("chars")] == "50" && &r[col("batch")] == "1").unwrap();
    assert_eq!((&row[col("sibling")], &row[col("sibling_runtime")], &row[col("sibling_agrees")]), ("tiny-bert", "tract-cpu", "true"));
}

#[test]
fn a_sibling_with_other_weights_is_flagged_in_results_tables_and_summary() {
    // Seed 7: other weights, so the "fp16 copy" computes something else.
    let tmp = setup("differ", 7, "");
    let root = tmp.path();
    let run = run(&root, "name: differ\nmodels: [tiny-bert, tiny-bert-fp16]\nruntimes: [tract-cpu]\ninput_chars: [50]\nbatch_sizes: [1, 2]\niterations: 2\nwarmup: 0\n");
    for c in fp16_cells(&run.results) {
        let a = c.sibling_agreement.as_ref().unwrap();
        assert!(a.disagrees() && a.max_abs.unwrap() > 0.1, "{a:?}");
        let flag = c.flags.iter().map(|f| f.to_string()).find(|f| f.starts_with("outputs differ from the fp32 sibling `tiny-bert` (fp16 vs fp32, tract-cpu cell)")).expect("flagged");
        assert!(flag.contains("tolerance 1e-2 + 1e-2·|r|"), "{flag}");
        // The runtime comparison has nothing to say with one runtime.
        assert!(c.agreement.is_none());
    }
    assert!(run.stdout.contains("2 of 2 compared with their sibling model disagree with it"), "{}", run.stdout);
    let row = run.report.lines().find(|l| l.starts_with("| tiny-bert-fp16 / 50 / 1 | 17 (1×17) | ")).expect("a detailed latency row");
    assert!(row.contains("] ✗"), "the latency table marks the cell: {row}");
    let fp32_row = run.report.lines().find(|l| l.starts_with("| tiny-bert / 50 / 1 | ")).unwrap();
    assert!(!fp32_row.contains('✗'), "{fp32_row}");
    assert!(run.report.contains("| ✗ differ |") && run.report.contains("0/2 within ✗"), "{}", run.report);
    assert!(run.report.contains("outputs differ from the fp32 sibling"), "the warnings list says why");
}

#[test]
fn a_single_runtime_scenario_still_compares_siblings() {
    // As on the GPU machine, where one runtime runs the fp32 and fp16 models.
    let tmp = setup("single", 42, "");
    let root = tmp.path();
    let run = run(&root, "name: single\nmodels: [tiny-bert, tiny-bert-fp16]\nruntimes: [ort-cpu]\ninput_chars: [100]\nbatch_sizes: [1, 3]\niterations: 2\nwarmup: 0\n");
    let cells = fp16_cells(&run.results);
    assert_eq!(cells.len(), 2);
    for c in cells {
        let a = c.sibling_agreement.as_ref().expect("compared although no other runtime ran");
        assert_eq!((a.runtime, a.within_tolerance), (RuntimeId::ORT_CPU, Some(true)), "{a:?}");
    }
    assert!(run.stdout.contains("0 of 2 compared with their sibling model disagree"), "{}", run.stdout);
}

#[test]
fn a_sibling_the_scenario_does_not_run_is_noted_once() {
    let tmp = setup("alone", 42, "");
    let root = tmp.path();
    let run = run(&root, "name: alone\nmodels: [tiny-bert-fp16]\nruntimes: [tract-cpu]\ninput_chars: [50]\nbatch_sizes: [1, 2]\niterations: 2\nwarmup: 0\n");
    let note = "`tiny-bert-fp16` is compared with `tiny-bert` (`compare_with` in its model.yaml), which this scenario does not run";
    assert_eq!(run.stderr.matches(note).count(), 1, "{}", run.stderr);
    assert_eq!(run.report.matches(note).count(), 1, "{}", run.report);
    assert!(run.report.contains("`tiny-bert` not run") && run.report.contains("No cell was compared"), "{}", run.report);
    assert!(fp16_cells(&run.results).iter().all(|c| c.status == Status::Ok && c.sibling_agreement.is_none()));
    assert!(!run.stdout.contains("sibling"), "nothing to count: {}", run.stdout);
}

#[test]
fn cells_fed_other_tokens_are_reported_as_not_compared_rather_than_judged() {
    // The fp16 copy truncates at 20 positions: at 200 characters (52 tokens) it is fed other inputs.
    let tmp = setup("feeds", 42, "max_positions: 20\n");
    let root = tmp.path();
    let run = run(&root, "name: feeds\nmodels: [tiny-bert, tiny-bert-fp16]\nruntimes: [tract-cpu]\ninput_chars: [50, 200]\nbatch_sizes: [1]\niterations: 2\nwarmup: 0\n");
    for c in fp16_cells(&run.results) {
        let a = c.sibling_agreement.as_ref().unwrap();
        if c.chars == 50 {
            assert_eq!(a.within_tolerance, Some(true), "{a:?}");
        } else {
            assert_eq!((a.within_tolerance, a.max_abs), (None, None), "{a:?}");
            assert!(a.problems[0].contains("the inputs differ (1×20 tokens against the sibling's 1×52)"), "{:?}", a.problems);
            assert!(c.flags.iter().any(|f| f.to_string().starts_with("not compared with the fp32 sibling `tiny-bert`")), "{:?}", c.flags);
        }
    }
    assert!(run.stdout.contains("0 of 1 compared with their sibling model disagree"), "{}", run.stdout);
    assert!(run.report.contains("| not compared |") && !run.report.contains("✗ differ"), "{}", run.report);
}

#[test]
fn a_run_stopped_after_the_fp32_model_keeps_its_outputs_and_the_resumed_run_compares_every_cell() {
    let tmp = setup("resume", 42, "");
    let root = tmp.path();
    let yaml = "name: resume\nmodels: [tiny-bert, tiny-bert-fp16]\nruntimes: [tract-cpu]\ninput_chars: [50, 100]\nbatch_sizes: [1, 2]\niterations: 2\nwarmup: 0\nmin_time_s: 0.3\n";
    std::fs::write(root.join("s.yaml"), yaml).unwrap();
    let xbench = || {
        let mut c = xbench_in(root);
        c.args(["scenario", "s.yaml", "--quiet"]);
        c
    };
    let child = xbench().args(["--out", "out"]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    // Wait for the fp32 model's 4 cells and the first fp16 cell, then stop with Ctrl-C.
    let results = root.join("out/results.json");
    let started = std::time::Instant::now();
    let ok = |r: &RunResults| r.cells.iter().filter(|c| c.status == Status::Ok).count();
    while read_results(&results).map(|r| ok(&r)).unwrap_or(0) < 5 {
        assert!(started.elapsed().as_secs() < 60, "the run did not reach 5 cells");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: sending SIGINT to the child this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "stopped, not finished");
    let cut = read_results(&results).unwrap();
    let stopped_after: Vec<usize> = fp16_cells(&cut).iter().filter(|c| c.status == Status::Ok).map(|c| c.index).collect();
    assert!(!stopped_after.is_empty() && stopped_after.len() < 4, "{} fp16 cells ran before the stop", stopped_after.len());
    assert!(fp16_cells(&cut).iter().all(|c| c.sibling_agreement.is_none()), "nothing is compared before the fp16 model has run");
    let saved = std::fs::read_dir(root.join("out/.outputs")).unwrap().count();
    assert_eq!(saved, 4 + stopped_after.len(), "the outputs of both models are kept for the resumed run");

    let resumed = xbench().args(["--resume", "out"]).output().unwrap();
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    let done = read_results(&results).unwrap();
    assert!(done.complete);
    for c in fp16_cells(&done) {
        let a = c.sibling_agreement.as_ref().unwrap_or_else(|| panic!("cell {} is compared", c.index));
        assert_eq!(a.within_tolerance, Some(true), "{a:?}");
    }
    // Cells measured before the stop kept their samples and were compared after the resume.
    for i in stopped_after {
        assert_eq!(done.cells[i].samples_ms, cut.cells[i].samples_ms);
    }
    assert!(!root.join("out/.outputs").exists());
}
