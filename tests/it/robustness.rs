//! Nothing lost, nothing crashes: a runtime that kills its process fails only its own group;
//! a run killed with SIGKILL leaves readable results and resumes to the same cells as an
//! uninterrupted run; Ctrl-C stops after the current cell, resumably.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use xbench::results::{read_results, RunResults, Status};
use xbench::runtimes::RuntimeId;

use crate::common::xbench_with_fakes as xbench;

const SCENARIO: &str = "name: robust\nmodels: [tiny-bert]\nruntimes: [fake-exact, tract-cpu]\ninput_chars: [50, 100, 200, 500]\nbatch_sizes: [1, 16, 32]\niterations: 30\nwarmup: 1\n";

fn folder(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("xbench-robust-{name}-")).tempdir().unwrap()
}

fn write_scenario(dir: &Path, yaml: &str) -> PathBuf {
    let p = dir.join("scenario.yaml");
    std::fs::write(&p, yaml).unwrap();
    p
}

fn scenario_args(file: &Path) -> Vec<String> {
    // fake-exact computes something else than tract: those disagreements are not what is tested here.
    vec!["scenario".into(), file.display().to_string(), "--models-dir".into(), "models".into(), "--quiet".into(), "--ignore-failures".into()]
}

fn finished(r: &RunResults) -> usize {
    r.cells.iter().filter(|c| c.status == Status::Ok).count()
}

/// Waits until the results file shows at least `n` finished cells.
fn wait_for_cells(path: &Path, n: usize) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(60) {
        if let Ok(r) = read_results(path) {
            if finished(&r) >= n {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the run did not reach {n} finished cells in 60 s");
}

fn cell_set(r: &RunResults) -> Vec<(String, RuntimeId, usize, usize, Status)> {
    r.cells.iter().map(|c| (c.model.clone(), c.runtime, c.chars, c.batch, c.status)).collect()
}

#[test]
fn a_crashing_runtime_fails_its_group_and_the_run_finishes() {
    let tmp = folder("crash");
    let dir = tmp.path();
    let yaml = "name: crash\nmodels: [tiny-bert]\nruntimes: [tract-cpu, fake-crash, fake-instant]\ninput_chars: [50]\nbatch_sizes: [1, 2]\niterations: 3\nwarmup: 1\n";
    let file = write_scenario(dir, yaml);
    let out = xbench().args(scenario_args(&file)).arg("--out").arg(dir.join("out")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = read_results(&dir.join("out/results.json")).unwrap();
    assert!(r.complete);
    for c in &r.cells {
        if c.runtime == RuntimeId::new("fake-crash") {
            assert_eq!(c.status, Status::Failed);
            assert!(c.error.as_deref().unwrap().contains("signal 6 (SIGABRT"), "{:?}", c.error);
        } else {
            assert_eq!(c.status, Status::Ok, "{c:?}");
        }
    }
    let g = r.groups.iter().find(|g| g.runtime == RuntimeId::new("fake-crash")).unwrap();
    assert_eq!(g.status, Status::Failed);
}

#[test]
fn a_run_killed_mid_way_resumes_to_the_cells_of_an_uninterrupted_run() {
    let tmp = folder("kill");
    let dir = tmp.path();
    let file = write_scenario(dir, SCENARIO);

    let whole = xbench().args(scenario_args(&file)).arg("--out").arg(dir.join("whole")).output().unwrap();
    assert!(whole.status.success(), "{}", String::from_utf8_lossy(&whole.stderr));
    let whole = read_results(&dir.join("whole/results.json")).unwrap();

    let mut child = xbench().args(scenario_args(&file)).arg("--out").arg(dir.join("cut")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_for_cells(&dir.join("cut/results.json"), 3);
    child.kill().unwrap(); // SIGKILL: no handler runs.
    child.wait().unwrap();
    let cut = read_results(&dir.join("cut/results.json")).expect("the results file survives SIGKILL whole");
    assert!(!cut.complete);
    let kept = finished(&cut);
    assert!(kept >= 3 && kept < cut.cells.len(), "{kept} cells finished before the kill");

    let resumed = xbench().args(scenario_args(&file)).arg("--resume").arg(dir.join("cut")).output().unwrap();
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    let done = read_results(&dir.join("cut/results.json")).unwrap();
    assert!(done.complete && done.resumed_at.len() == 1);
    assert_eq!(cell_set(&done), cell_set(&whole));
    // Cells finished before the kill are kept as they were, samples included.
    for c in cut.cells.iter().filter(|c| c.status == Status::Ok) {
        assert_eq!(done.cells[c.index].samples_ms, c.samples_ms);
    }
}

#[test]
fn ctrl_c_stops_after_the_current_cell_and_says_how_to_resume() {
    let tmp = folder("sigint");
    let dir = tmp.path();
    let file = write_scenario(dir, SCENARIO);
    let child = xbench().args(scenario_args(&file)).arg("--out").arg(dir.join("out")).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wait_for_cells(&dir.join("out/results.json"), 2);
    // SAFETY: sending SIGINT to the child this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--resume"), "{stderr}");
    let r = read_results(&dir.join("out/results.json")).unwrap();
    assert!(!r.complete);
    assert!(finished(&r) >= 2 && finished(&r) < r.cells.len());
    assert!(r.cells.iter().all(|c| c.status == Status::Ok || c.status == Status::Pending));
    assert!(dir.join("out/report.md").exists());
}

#[test]
fn resume_refuses_a_changed_scenario() {
    let tmp = folder("changed");
    let dir = tmp.path();
    let file = write_scenario(dir, "name: c\nmodels: [tiny-bert]\nruntimes: [fake-instant]\ninput_chars: [50]\nbatch_sizes: [1]\niterations: 2\nwarmup: 0\n");
    assert!(xbench().args(scenario_args(&file)).arg("--out").arg(dir.join("out")).output().unwrap().status.success());
    let mut r = read_results(&dir.join("out/results.json")).unwrap();
    r.complete = false;
    r.cells[0].status = Status::Pending;
    xbench::results::write_json(&dir.join("out/results.json"), &r).unwrap();
    write_scenario(dir, "name: c\nmodels: [tiny-bert]\nruntimes: [fake-instant]\ninput_chars: [50]\nbatch_sizes: [1]\niterations: 3\nwarmup: 0\n");
    let out = xbench().args(scenario_args(&file)).arg("--resume").arg(dir.join("out")).output().unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("different scenario") && e.contains("fix:"), "{e}");
}
