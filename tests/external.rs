//! Runtimes outside xbench's process, through the external runtime protocol: Python onnxruntime
//! (`scripts/runtimes/ort_python.py`) beside ort-cpu on the same token ids, outputs agreeing; and
//! programs that crash, hang, speak garbage, lie or refuse, each failing its own cells with the
//! reason while the run goes on.

mod common;

use std::path::Path;
use std::process::Command;

use xbench::results::{read_results, RunResults, Status};
use xbench::runtimes::RuntimeId;

fn repo(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel).display().to_string()
}

/// Runs `runtimes` on tiny-bert (two cells) with the test Python environment; the run must end
/// well. Returns the results, xbench's stderr and its report.md.
fn run(runtimes: &str, extra: &str) -> (RunResults, String, String) {
    let python = common::python_env();
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!("name: ext\nmodels: [tiny-bert]\nruntimes: {runtimes}\ninput_chars: [50, 100]\nbatch_sizes: [2]\niterations: 3\nwarmup: 1\n{extra}");
    std::fs::write(dir.path().join("s.yaml"), yaml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xbench"))
        .current_dir(dir.path())
        .env("PYTHONPATH", &python)
        .env("XBENCH_HOME", repo(".xbench"))
        .args(["scenario", "s.yaml", "--ignore-failures", "--out", "out", "--models-dir"])
        .arg(repo("models"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let report = std::fs::read_to_string(dir.path().join("out/report.md")).unwrap();
    (read_results(&dir.path().join("out/results.json")).unwrap(), stderr, report)
}

#[test]
fn python_onnxruntime_through_the_protocol_agrees_with_ort_cpu_on_the_same_token_ids() {
    let adapter = repo("scripts/runtimes/ort_python.py");
    let (r, _, _) = run(&format!("[ort-cpu, {{name: ort-python, external: {adapter}, options: {{provider: cpu}}}}, {{name: ort-python-binding, external: {adapter}, options: {{io: binding}}}}]"), "");
    for c in &r.cells {
        assert_eq!(c.status, Status::Ok, "{c:?}");
        assert_eq!(c.samples_ms.len(), 3);
        if c.runtime != RuntimeId::ORT_CPU {
            let a = c.agreement.as_ref().expect("compared with ort-cpu");
            assert!(a.agrees() && a.max_abs < 1e-5 && a.outputs.len() == 2 && a.outputs.iter().all(|o| o.compared > 0), "{a:?}");
            let twin = r.cell(&c.model, RuntimeId::ORT_CPU, c.chars, c.batch).unwrap();
            let (mine, theirs) = (c.tokens.as_ref().unwrap(), twin.tokens.as_ref().unwrap());
            assert_eq!((&mine.tokens_per_row, mine.padded_len), (&theirs.tokens_per_row, theirs.padded_len), "the same inputs as the runtime it is compared with");
            let label = if c.runtime == RuntimeId::new("ort-python") { "end-to-end" } else { "IO binding" };
            assert_eq!(c.timer, label, "the program's own timer label");
        }
    }
    let g = r.groups.iter().find(|g| g.runtime == RuntimeId::new("ort-python")).unwrap();
    let s = g.session.as_ref().unwrap();
    assert!(s.io.as_deref().is_some_and(|t| t.contains("ort_python.py")), "the timer, in the program's words: {s:?}");
    assert!(s.version.starts_with("1.31"), "{s:?}");
    assert_eq!(s.settings.get("provider").map(String::as_str), Some("cpu"));
    assert!(g.peak_rss_mib.unwrap() > 20.0, "the program's own memory counts: {g:?}");
    let avail = r.runtimes.iter().find(|a| a.runtime == RuntimeId::new("ort-python")).unwrap();
    assert_eq!(avail.engine, Some(xbench::results::Engine::External));
}

#[test]
fn programs_that_crash_hang_babble_lie_or_refuse_fail_their_own_cells_and_the_run_goes_on() {
    let t = |name: &str| repo(&format!("tests/data/external/{name}.py"));
    let runtimes = format!(
        "[tract-cpu, {{name: crash, external: {}}}, {{name: hang, external: {}}}, {{name: garbage, external: {}}}, {{name: liar, external: {}, options: {{bend: lie}}}}, {{name: refuse, external: {}}}, {{name: missing, external: {}}}]",
        t("crash"),
        t("hang"),
        t("garbage"),
        t("bent"),
        t("refuse"),
        t("no-such-program")
    );
    let started = std::time::Instant::now();
    let (r, stderr, _) = run(&runtimes, "cell_timeout_s: 3\n");
    assert!(started.elapsed().as_secs() < 60, "a hanging program is stopped at the cell time limit");
    let why = |rt: &str| -> Vec<(Status, String)> {
        r.cells.iter().filter(|c| c.runtime == RuntimeId::new(rt)).map(|c| (c.status, c.error.clone().unwrap_or_default())).collect()
    };
    assert!(why("tract-cpu").iter().all(|(s, _)| *s == Status::Ok));
    for (rt, says) in [
        ("crash", "exited (exit status: 3) without answering"),
        ("hang", "did not answer within 3 s"),
        ("garbage", "sent a line that is not a protocol message"),
        ("liar", "samples where at least 3 timed iterations were asked"),
        ("refuse", "this adapter refuses to load: test"),
        ("missing", "no program at"),
    ] {
        let cells = why(rt);
        assert_eq!(cells.len(), 2, "{rt}");
        for (status, error) in &cells {
            assert!(matches!(status, Status::Failed | Status::Skipped), "{rt}: {status:?} {error}");
            assert!(error.contains(says), "{rt}: {error}\n{stderr}");
        }
    }
    // After a crash, hang or garbage the program is not asked again: its second cell says why at once.
    assert!(why("hang")[1].1.contains("can no longer be asked"), "{:?}", why("hang"));
}

#[test]
fn answers_that_bend_a_rule_fail_their_cells_with_the_rule_named() {
    let bent = repo("tests/data/external/bent.py");
    let entry = |bend: &str| format!("{{name: bent-{bend}, external: {bent}, options: {{bend: {bend}}}}}");
    let (r, stderr, report) = run(&format!("[tract-cpu, {}, {}, {}, {{name: fine, external: {bent}}}]", entry("placement"), entry("samples"), entry("empty")), "");
    let cells = |rt: &str| -> Vec<(Status, String)> {
        r.cells.iter().filter(|c| c.runtime == RuntimeId::new(rt)).map(|c| (c.status, c.error.clone().unwrap_or_default())).collect()
    };
    for (rt, says) in [
        ("bent-placement", r#"sent a `placement` entry ["cpu","many"], which is not a [name, count] pair"#),
        ("bent-samples", r#"sent "fast" as sample 1 of `samples_ms`"#),
        ("bent-empty", "wrote an outputs file with no tensor in it"),
    ] {
        let cells = cells(rt);
        assert_eq!(cells.len(), 2, "{rt}");
        for (status, error) in &cells {
            assert_eq!(*status, Status::Failed, "{rt}: {error}");
            assert!(error.contains(says), "{rt}: {error}\n{stderr}");
        }
    }
    // The same program answering by the rules runs; its zeros then disagree with tract, as they should.
    assert!(cells("fine").iter().all(|(s, e)| *s == Status::Ok && e.is_empty()), "{:?}", cells("fine"));
    assert!(r.cells.iter().filter(|c| c.runtime == RuntimeId::new("fine")).all(|c| c.agreement.as_ref().is_some_and(|a| !a.agrees())));
    // The report's runtimes table gives the version the program said it is.
    assert!(report.lines().any(|l| l.starts_with("| fine | yes | 0 (as its sessions said) |")), "{report}");
}

#[test]
fn a_session_table_on_an_external_entry_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let bent = repo("tests/data/external/bent.py");
    std::fs::write(dir.path().join("s.yaml"), format!("name: ext\nmodels: [tiny-bert]\nruntimes: [{{name: b, external: {bent}, session: {{graph_optimization: basic}}}}]\ninput_chars: [50]\nbatch_sizes: [1]\niterations: 3\nwarmup: 1\n")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xbench"))
        .current_dir(dir.path())
        .args(["scenario", "s.yaml", "--out", "out", "--models-dir"])
        .arg(repo("models"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("runtimes[0].session") && stderr.contains("external program does not have") && stderr.contains("fix:"), "{stderr}");
    assert!(!dir.path().join("out").exists(), "nothing ran");
}
