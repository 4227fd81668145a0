//! The quick scenario end to end through the real binary, on tract and ONNX Runtime CPU
//! (ONNX Runtime is fetched from PyPI on first use when it is not found).

use std::path::PathBuf;

use xbench::results::{read_results, Status};
use xbench::runtimes::RuntimeId;

use crate::common::xbench;

/// A fresh folder, removed when the guard is dropped; `out` inside it does not exist yet.
fn temp_dir(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::Builder::new().prefix(&format!("xbench-test-{name}-")).tempdir().unwrap();
    let out = tmp.path().join("out");
    (tmp, out)
}

#[test]
fn quick_scenario_runs_on_both_cpu_runtimes_and_they_agree() {
    let (_tmp, out) = temp_dir("quick");
    let run = xbench().args(["scenario", "scenarios/quick.yaml", "--quiet", "--out"]).arg(&out).output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "xbench failed: {stderr}");
    let r = read_results(&out.join("results.json")).unwrap();

    assert!(r.complete && r.finished_at.is_some());
    assert_eq!(r.format_version, xbench::results::FORMAT_VERSION);
    assert_eq!(r.cells.len(), 1 * 2 * 4 * 3, "every cell of the grid is in the results");
    assert!(r.runtimes.iter().all(|a| a.usable), "{:?}", r.runtimes);
    assert!(r.runtimes.iter().any(|a| a.runtime == RuntimeId::ORT_CPU && a.version.as_deref() == Some(xbench::runtimes::ORT_VERSION)));
    assert!(r.machine.cores >= 1 && !r.machine.cpu.is_empty());
    for g in &r.groups {
        assert_eq!(g.status, Status::Ok, "{g:?}");
        assert!(g.load_ms.unwrap() > 0.0);
        assert!(g.peak_rss_mib.unwrap() > 1.0);
        assert!(!g.session.as_ref().unwrap().threads.is_empty());
    }
    for c in &r.cells {
        assert_eq!(c.status, Status::Ok, "{c:?}");
        assert_eq!(c.samples_ms.len(), r.scenario.iterations as usize);
        let s = c.summary.as_ref().unwrap();
        assert!(s.min_ms > 0.0 && s.min_ms <= s.median_ms && s.median_ms <= s.max_ms);
        assert!(s.mean_ci95_ms[0] <= s.mean_ms && s.mean_ms <= s.mean_ci95_ms[1]);
        let t = c.tokens.as_ref().unwrap();
        assert_eq!(t.tokens_per_row.len(), c.batch);
        assert_eq!(t.padded_len, *t.tokens_per_row.iter().max().unwrap());
        // Tokenizing takes time, and it happens inside the cell but outside the timed runs.
        assert!(t.tokenize_ms > 0.0 && t.tokenize_ms < c.wall_ms.unwrap() - c.samples_ms.iter().sum::<f64>(), "{t:?}");
        // Every passage of N characters yields at least [CLS] + one token + [SEP].
        assert!(t.tokens_per_row.iter().all(|&n| n >= 3));
        // ONNX Runtime on the CPU is the reference when it runs, whatever the order listed.
        if c.runtime == RuntimeId::TRACT_CPU {
            let a = c.agreement.as_ref().expect("tract cells are compared with ort-cpu");
            assert_eq!(a.reference, "ort-cpu");
            assert!(a.agrees() && a.max_abs < 1e-4, "tract and ONNX Runtime disagree: {a:?}");
            assert_eq!(a.outputs.len(), 2);
        } else {
            assert!(c.agreement.is_none());
        }
    }
    // Same inputs on both runtimes: identical token counts cell by cell.
    for c in r.cells.iter().filter(|c| c.runtime == RuntimeId::ORT_CPU) {
        let t = r.cell(&c.model, RuntimeId::TRACT_CPU, c.chars, c.batch).unwrap();
        assert_eq!(c.tokens.as_ref().unwrap().tokens_per_row, t.tokens.as_ref().unwrap().tokens_per_row);
    }

    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + r.cells.len());
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for needle in ["## Detailed latency", "## Average by input length", "## Average by batch size", "## Overall average", "tiny-bert / 500 / 32", "ort-cpu vs tract-cpu"] {
        assert!(md.contains(needle), "report.md lacks {needle:?}");
    }
    assert!(!out.join(".outputs").exists(), "scratch outputs are removed at the end");
}

/// A runtime xbench knows that cannot run on this platform with the project's CPU build of ONNX
/// Runtime, and the words of the reason: CoreML off macOS; on macOS, CUDA (not in that build).
fn unusable_here() -> (RuntimeId, &'static str) {
    if cfg!(target_os = "macos") {
        (RuntimeId::ORT_CUDA, "CUDAExecutionProvider provider not in this build of ONNX Runtime")
    } else {
        (RuntimeId::ORT_COREML, "CoreML: macOS only")
    }
}

#[test]
fn an_unusable_runtime_is_skipped_with_its_reason_and_the_rest_runs() {
    let (_tmp, out) = temp_dir("skip");
    let (unusable, why) = unusable_here();
    let run = xbench()
        .args(["scenario", "scenarios/quick.yaml", "--quiet", "--in-process", "--runtimes", &format!("tract-cpu,{unusable}"), "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let r = read_results(&out.join("results.json")).unwrap();
    for c in &r.cells {
        match c.runtime {
            RuntimeId::TRACT_CPU => assert_eq!(c.status, Status::Ok),
            _ => {
                assert_eq!((c.runtime, c.status), (unusable, Status::Skipped));
                assert!(c.error.as_deref().unwrap().contains(why), "{:?}", c.error);
            }
        }
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains(&format!("- tiny-bert on {unusable}: skipped — {unusable} is not usable here: {why}")), "{md}");
}

#[test]
fn runtimes_command_says_what_is_usable_and_why_not() {
    // The project's ONNX Runtime in place first (what `xbench scenario` fetches on first use).
    let setup = xbench().args(["setup", "ort"]).output().unwrap();
    assert!(setup.status.success(), "{}", String::from_utf8_lossy(&setup.stderr));
    let run = xbench().arg("runtimes").output().unwrap();
    assert!(run.status.success());
    let text = String::from_utf8_lossy(&run.stdout);
    // Each runtime's line: its name, `yes` or `no`, then the version and details.
    let line = |name: &str| text.lines().find(|l| l.split_whitespace().next() == Some(name)).unwrap_or_else(|| panic!("{name} is not listed:\n{text}")).to_string();
    let usable = |name: &str| line(name).split_whitespace().nth(1).map(str::to_string);
    assert_eq!(usable("tract-cpu").as_deref(), Some("yes"), "{text}");
    assert_eq!(usable("ort-cpu").as_deref(), Some("yes"), "{text}");
    assert!(line("ort-cpu").contains(xbench::runtimes::ORT_VERSION), "ort-cpu shows the version it loaded:\n{text}");
    let (unusable, why) = unusable_here();
    assert_eq!(usable(unusable.as_str()).as_deref(), Some("no"), "{text}");
    assert!(line(unusable.as_str()).contains(why), "{unusable} says why not:\n{text}");
}

#[test]
fn models_command_lists_inputs_outputs_and_tokenizer() {
    let run = xbench().arg("models").output().unwrap();
    assert!(run.status.success());
    let text = String::from_utf8_lossy(&run.stdout);
    for needle in ["tiny-bert", "tokenizer: models/tiny-bert/tokenizer.json", "input_ids", "[batch, sequence]", "last_hidden_state", "[batch, sequence, 32]"] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn a_missing_ort_library_is_a_clear_message_not_a_panic() {
    let run = xbench().args(["runtimes", "--ort-lib", "/nonexistent/libonnxruntime.so"]).output().unwrap();
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(text.contains("ONNX Runtime library not found at --ort-lib /nonexistent"), "{text}");
    assert!(!String::from_utf8_lossy(&run.stderr).contains("panicked"));
}
