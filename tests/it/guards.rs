//! Every guard catches its failure: wrong outputs, latency that does not grow with work, and
//! execution providers that cannot register (CUDA and CoreML on this CPU-only machine).

use std::path::PathBuf;

use xbench::results::{RunResults, Status};
use xbench::runtimes::{self, RuntimeId, RuntimeOptions};
use xbench::scenario::RuntimeRequest;

use crate::common::{self, xbench_in};

fn run(name: &str, yaml: &str) -> (RunResults, String) {
    run_with(name, yaml, &["--ignore-failures"], 0)
}

/// Runs `yaml` with `args`; the exit code must be `code`.
fn run_with(name: &str, yaml: &str, args: &[&str], code: i32) -> (RunResults, String) {
    let tmp = tempfile::Builder::new().prefix(&format!("xbench-guards-{name}-")).tempdir().unwrap();
    let models = common::repo("models");
    let args = [&["--models-dir", models.to_str().unwrap()], args].concat();
    let run = common::scenario(xbench_in(tmp.path()).env("XBENCH_FAKE_RUNTIMES", "1"), tmp.path(), yaml, &args, code);
    (run.results, run.report + &run.stdout + &run.stderr)
}

#[test]
fn a_runtime_computing_something_else_is_flagged_in_results_tables_and_summary() {
    let (r, text) = run(
        "wrong",
        "name: w\nmodels: [tiny-bert]\nruntimes: [fake-exact, fake-wrong]\ninput_chars: [50, 200]\nbatch_sizes: [1, 4]\niterations: 3\nwarmup: 1\n",
    );
    for c in r.cells.iter().filter(|c| c.runtime == RuntimeId::new("fake-wrong")) {
        let a = c.agreement.as_ref().unwrap();
        assert!(a.disagrees() && (a.max_abs - 0.5).abs() < 1e-6, "{a:?}");
        assert!(c.flags.iter().any(|f| f.to_string().contains("outputs differ from fake-exact")));
    }
    for c in r.cells.iter().filter(|c| c.runtime == RuntimeId::new("fake-exact")) {
        assert!(c.agreement.is_none() && !c.flags.iter().any(|f| f.to_string().contains("outputs differ")), "{c:?}");
    }
    assert!(text.contains(" ✗"), "the table marks disagreeing cells");
    assert!(text.contains("4 of 4 compared disagree with fake-exact"), "the terminal summary counts them:\n{text}");
    // Without --ignore-failures, a run whose outputs disagree exits 2, as hyperfine does for a
    // failing command; its results are all there.
    let (r, text) = run_with("wrong-exit", "name: w\nmodels: [tiny-bert]\nruntimes: [fake-exact, fake-wrong]\ninput_chars: [50]\nbatch_sizes: [1]\niterations: 2\nwarmup: 0\n", &[], 2);
    assert!(r.complete && r.cells.iter().all(|c| c.status == Status::Ok), "{text}");
    let (_, text) = run_with("exact-exit", "name: w\nmodels: [tiny-bert]\nruntimes: [fake-exact]\ninput_chars: [50]\nbatch_sizes: [1]\niterations: 2\nwarmup: 0\n", &[], 0);
    assert!(text.contains("1 cells: 1 ok"), "{text}");
}

#[test]
fn the_reference_runtime_can_be_chosen() {
    let (r, _) = run(
        "reference",
        "name: r\nmodels: [tiny-bert]\nruntimes: [fake-exact, fake-wrong]\nreference: fake-wrong\ninput_chars: [50]\nbatch_sizes: [1]\niterations: 2\nwarmup: 0\n",
    );
    assert_eq!(r.reference_runtime, RuntimeId::new("fake-wrong"));
    let exact = r.cells.iter().find(|c| c.runtime == RuntimeId::new("fake-exact")).unwrap();
    assert_eq!(exact.agreement.as_ref().unwrap().reference, "fake-wrong");
}

#[test]
fn a_run_that_compared_or_measured_nothing_does_not_pass() {
    use xbench::results::FlagKind;
    let grid = "models: [tiny-bert]\ninput_chars: [50]\nbatch_sizes: [1, 2]\niterations: 2\nwarmup: 0\n";
    let not_compared = |r: &RunResults, says: &str| {
        for c in r.cells.iter().filter(|c| c.runtime == RuntimeId::TRACT_CPU) {
            assert!(c.status == Status::Ok && c.agreement.is_none(), "{c:?}");
            let f = c.flags.iter().find(|f| f.kind == FlagKind::NotCompared).unwrap_or_else(|| panic!("flagged not compared: {:?}", c.flags));
            assert!(f.detail.contains(says), "{f:?}");
        }
    };
    // The named reference crashes: nothing was compared with it, and the run does not pass.
    let (r, text) = run_with("ref-crash", &format!("name: c\nruntimes: [tract-cpu, fake-crash]\nreference: fake-crash\n{grid}"), &[], 2);
    not_compared(&r, "outputs not compared with fake-crash: fake-crash did not run this cell (failed: ");
    assert!(text.contains("none compared with fake-crash, which ran no cell") && !text.contains("disagree with fake-crash"), "{text}");
    assert!(text.contains("2 were not compared (a reference that did not run"), "{text}");
    // The named reference cannot run here (skipped): the same.
    let gone = "{name: gone, external: /nonexistent/gone.py}";
    let (r, text) = run_with("ref-skipped", &format!("name: s\nruntimes: [tract-cpu, {gone}]\nreference: gone\n{grid}"), &[], 2);
    not_compared(&r, "gone did not run this cell (skipped: ");
    assert!(text.contains("none compared with gone"), "{text}");
    // Every runtime skipped: nothing measured is no pass.
    let (r, text) = run_with("all-skipped", &format!("name: n\nruntimes: [{gone}]\n{grid}"), &[], 2);
    assert!(r.cells.iter().all(|c| c.status == Status::Skipped));
    assert!(text.contains("no cell was measured: 2 skipped and 0 failed (the first: gone is not usable here") && text.contains("--ignore-failures"), "{text}");
    // The default reference (ort-cpu) where it cannot run: the first listed runtime that runs.
    let (r, _) = run_with("default-ref", &format!("name: d\nruntimes: [ort-cpu, fake-exact, fake-wrong]\n{grid}"), &["--ort-lib", "/nonexistent/libonnxruntime.so", "--no-setup", "-i"], 0);
    assert_eq!(r.reference_runtime, RuntimeId::new("fake-exact"));
    assert!(r.cells.iter().filter(|c| c.runtime == RuntimeId::new("fake-wrong")).all(|c| c.agreement.as_ref().is_some_and(|a| a.disagrees())));
}

#[test]
fn latency_that_does_not_grow_with_work_is_suspicious() {
    let (r, text) = run(
        "flat",
        "name: f\nmodels: [tiny-bert]\nruntimes: [fake-exact, fake-flat]\ninput_chars: [50, 500]\nbatch_sizes: [1, 32]\niterations: 10\nwarmup: 1\n",
    );
    let flagged = |rt| r.cells.iter().filter(|c| c.runtime == rt && c.has_flag(xbench::results::FlagKind::Suspicious)).count();
    assert!(flagged(RuntimeId::new("fake-flat")) >= 1, "{:?}", r.cells.iter().map(|c| (&c.runtime, &c.flags)).collect::<Vec<_>>());
    assert_eq!(flagged(RuntimeId::new("fake-exact")), 0);
    assert!(text.contains(" ?"));
}

fn tiny_bert() -> PathBuf {
    xbench::models::find("tiny-bert", &PathBuf::from("models")).unwrap().onnx
}

#[test]
fn providers_that_cannot_register_fail_with_a_clear_message_never_falling_back() {
    // The project copy of the CPU build of ONNX Runtime (fetched by the end-to-end tests if missing).
    let _ = runtimes::setup_ort(false);
    let opts = RuntimeOptions::default();
    let cuda = runtimes::check(RuntimeId::ORT_CUDA, &opts);
    assert!(!cuda.usable && cuda.detail.contains("CUDAExecutionProvider"), "{cuda:?}");
    let e = runtimes::load(&RuntimeRequest::named(RuntimeId::ORT_CUDA), &tiny_bert(), &opts).err().expect("CUDA must not load on the CPU build");
    assert!(format!("{e:#}").contains("CUDAExecutionProvider"), "{e:#}");
    if !cfg!(target_os = "macos") {
        let coreml = runtimes::check(RuntimeId::ORT_COREML, &opts);
        assert!(!coreml.usable && coreml.detail.contains("macOS only"), "{coreml:?}");
        let e = runtimes::load(&RuntimeRequest::named(RuntimeId::ORT_COREML), &tiny_bert(), &opts).err().expect("CoreML must not load here");
        assert!(format!("{e:#}").contains("CoreML"), "{e:#}");
    }
    // The CPU provider does register, and the placement shows it took the graph's nodes.
    let s = runtimes::load(&RuntimeRequest::named(RuntimeId::ORT_CPU), &tiny_bert(), &opts).unwrap();
    let info = s.info();
    assert!(info.placement.iter().any(|(ep, n)| ep == "CPUExecutionProvider" && *n > 0), "{info:?}");
}

#[test]
fn scenario_cells_of_unusable_providers_are_skipped_with_the_reason() {
    let (r, _) = run(
        "skip",
        "name: s\nmodels: [tiny-bert]\nruntimes: [tract-cpu, ort-cuda, ort-coreml]\ninput_chars: [50]\nbatch_sizes: [1]\niterations: 2\nwarmup: 0\n",
    );
    for c in &r.cells {
        match c.runtime {
            RuntimeId::TRACT_CPU => assert_eq!(c.status, Status::Ok),
            RuntimeId::ORT_CUDA => assert!(c.status == Status::Skipped && c.error.as_deref().unwrap().contains("CUDA"), "{c:?}"),
            // CoreML can run on macOS: its skip is checked elsewhere.
            _ if cfg!(target_os = "macos") => {}
            _ => assert!(c.status == Status::Skipped && c.error.as_deref().unwrap().contains("CoreML"), "{c:?}"),
        }
    }
}

#[test]
fn a_first_run_that_hangs_while_sessions_load_side_by_side_fails_only_its_cell() {
    // With --parallel-loads each worker runs its first cell once before the run starts; when that
    // run never returns, the cell fails on the time limit and the group's other cells still run.
    let (r, _) = run_with(
        "first-run-hangs",
        "name: h\nmodels: [tiny-bert]\nruntimes: [fake-exact, fake-hang]\ninput_chars: [50]\nbatch_sizes: [1, 2]\niterations: 3\nwarmup: 1\ncell_timeout_s: 1\n",
        &["--parallel-loads", "--ignore-failures"],
        0,
    );
    let cell = |rt: &str, batch: usize| r.cells.iter().find(|c| c.runtime == RuntimeId::new(rt) && c.batch == batch).unwrap();
    let hung = cell("fake-hang", 1);
    assert_eq!(hung.status, Status::Failed);
    assert!(hung.error.as_deref().is_some_and(|e| e.contains("took longer than `cell_timeout_s` (1 s)") && e.contains("fix:")), "{:?}", hung.error);
    for (rt, batch) in [("fake-hang", 2), ("fake-exact", 1), ("fake-exact", 2)] {
        assert_eq!(cell(rt, batch).status, Status::Ok, "{rt} batch {batch}: {:?}", cell(rt, batch).error);
    }
    let group = |rt: &str| r.groups.iter().find(|g| g.runtime == RuntimeId::new(rt)).unwrap();
    assert!(group("fake-exact").first_run_ms.is_some_and(|ms| ms > 0.0));
    assert!(group("fake-hang").first_run_ms.is_none(), "a first run that never ended has no time");
}
