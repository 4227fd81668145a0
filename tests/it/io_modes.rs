//! The ways inputs and outputs can reach ONNX Runtime (`--pinned-io`, `--cuda-graph`) and the
//! parallel loading of sessions (`--parallel-loads`), through the real binary on the CPU. The
//! CUDA side of `--pinned-io` and `--cuda-graph` needs a GPU; here the same code path runs with
//! host buffers, and its outputs must still agree with tract's.

use std::path::PathBuf;

use xbench::results::{read_results, RunResults, Status};
use xbench::runtimes::RuntimeId;

use crate::common;

/// A fresh folder, removed when the guard is dropped; `out` inside it does not exist yet.
fn temp_dir(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::Builder::new().prefix(&format!("xbench-io-{name}-")).tempdir().unwrap();
    let out = tmp.path().join("out");
    (tmp, out)
}

fn run(name: &str, args: &[&str]) -> (RunResults, String) {
    let (_tmp, out) = temp_dir(name);
    let r = common::xbench().args(["scenario", "--quiet", "--out"]).arg(&out).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr).into_owned();
    assert!(r.status.success(), "xbench {args:?} failed: {stderr}");
    let results = read_results(&out.join("results.json")).unwrap();
    (results, stderr)
}

#[test]
fn bound_buffers_with_copies_in_the_timer_agree_with_tract() {
    for (timing, label) in [("end-to-end", "end-to-end (bound-buffer copies)"), ("device-resident", "device-resident (bound buffers)")] {
        let (r, _) = run(&format!("pinned-{timing}"), &["--pinned-io", "--timing", timing]);
        assert!(r.complete);
        let ort: Vec<_> = r.cells.iter().filter(|c| c.runtime == RuntimeId::ORT_CPU).collect();
        assert_eq!(ort.len(), 12);
        for c in ort {
            assert_eq!(c.status, Status::Ok, "{c:?}");
            assert_eq!(c.timer, label);
            // ort-cpu is the reference: tract's cells are compared with it.
            let t = r.cell(&c.model, RuntimeId::TRACT_CPU, c.chars, c.batch).unwrap();
            let a = t.agreement.as_ref().expect("tract compared with ort-cpu");
            assert!(a.agrees() && a.max_abs < 1e-4, "{a:?}");
        }
        // tract has no such mode: its cells keep the plain timer.
        assert!(r.cells.iter().filter(|c| c.runtime == RuntimeId::TRACT_CPU).all(|c| c.timer == "end-to-end"));
        let g = r.groups.iter().find(|g| g.runtime == RuntimeId::ORT_CPU).unwrap();
        let io = g.session.as_ref().unwrap().io.as_deref().unwrap();
        assert!(io.contains("bound to host buffers"), "{io}");
        assert!(r.timer.contains("buffer") && r.timer.contains("of their own") || r.timer.contains("its own buffer"), "{}", r.timer);
    }
}

#[test]
fn cuda_graphs_without_ort_cuda_are_refused_before_anything_runs() {
    let (_tmp, out) = temp_dir("graph-cpu");
    let r = common::xbench()
        .args(["scenario", "--quiet", "--cuda-graph", "--runtimes", "tract-cpu,ort-cpu", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success());
    assert!(stderr.contains("--cuda-graph applies to ort-cuda") && stderr.contains("tract-cpu, ort-cpu") && stderr.contains("fix:"), "{stderr}");
    assert!(!out.join("results.json").exists(), "nothing ran");
}

#[test]
fn parallel_loads_load_every_session_before_any_cell_and_lose_nothing() {
    let (r, stderr) = run("parallel", &["--parallel-loads"]);
    assert!(r.complete);
    assert!(r.cells.iter().all(|c| c.status == Status::Ok), "{:?}", r.cells.iter().map(|c| &c.error).collect::<Vec<_>>());
    assert!(stderr.is_empty() || !stderr.contains("error"), "{stderr}");
    let wall = r.wall.as_ref().expect("wall time is recorded");
    assert!(wall.parallel_loads);
    let loads = wall.loads_ms.expect("the loading phase is timed");
    for g in &r.groups {
        let ready = g.ready_ms.expect("each group's ready time is recorded");
        // Each group ran its first cell once while the others loaded, and said so.
        let first = g.first_run_ms.expect("each group's first run is recorded");
        assert!(first > 0.0 && ready >= g.load_ms.unwrap() + first && ready <= loads + 1.0, "{g:?} vs {loads}");
    }
    assert!(wall.total_ms >= wall.setup_ms + loads + wall.groups_ms + wall.report_ms - 1.0, "{wall:?}");
    // Agreement still runs across the workers.
    assert!(r.cells.iter().filter(|c| c.runtime == RuntimeId::TRACT_CPU).all(|c| c.agreement.as_ref().is_some_and(|a| a.agrees())));
}

#[test]
fn without_parallel_loads_the_wall_time_is_still_accounted() {
    let (r, _) = run("serial", &[]);
    let wall = r.wall.as_ref().unwrap();
    assert!(!wall.parallel_loads && wall.loads_ms.is_none());
    assert!(r.groups.iter().all(|g| g.first_run_ms.is_none()), "a group loaded in its turn makes no extra run");
    assert!(wall.groups_ms > 0.0 && wall.total_ms >= wall.groups_ms);
    for c in r.cells.iter().filter(|c| c.status == Status::Ok) {
        let (wall_ms, warm) = (c.wall_ms.unwrap(), c.warmup_ms.unwrap());
        assert!(wall_ms >= warm + c.samples_ms.iter().sum::<f64>(), "{c:?}");
    }
}
