//! The signal matrix: a run interrupted every way a user or a machine interrupts one — SIGKILL of
//! xbench, SIGKILL of its worker, Ctrl-C once, Ctrl-C twice, SIGTERM, a worker stopped with
//! SIGSTOP — ends with the exit code that says so, loses no finished cell, records no unrun cell
//! as failed, leaves no worker behind, and after `--resume` (with `--retry-failed` where a cell
//! failed) holds the same finished cells as an uninterrupted run.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use xbench::results::{read_results, RunResults, Status};
use xbench::runtimes::RuntimeId;

use crate::common::xbench_with_fakes as xbench;

/// 24 cells on two runtimes; a cell that sends nothing for 5 s is failed (`cell_timeout_s`).
const SCENARIO: &str = "name: signals\nmodels: [tiny-bert]\nruntimes: [fake-exact, tract-cpu]\ninput_chars: [50, 100, 200, 500]\nbatch_sizes: [1, 16, 32]\niterations: 30\nwarmup: 1\ncell_timeout_s: 5\n";

fn args(file: &Path) -> Vec<String> {
    // fake-exact computes something else than tract: those disagreements are not what is tested here.
    ["scenario", &file.display().to_string(), "--models-dir", "models", "--quiet", "--ignore-failures"].iter().map(|s| s.to_string()).collect()
}

fn start(file: &Path, out: &Path) -> Child {
    xbench().args(args(file)).arg("--out").arg(out).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
}

/// Waits for `child` to end, at most 60 s; its exit code and standard error.
fn finish(mut child: Child) -> (Option<i32>, String) {
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("xbench did not end within 60 s of the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn ok(r: &RunResults) -> usize {
    r.cells.iter().filter(|c| c.status == Status::Ok).count()
}

fn wait_for_cells(results: &Path, n: usize) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(60) {
        if read_results(results).is_ok_and(|r| ok(&r) >= n) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the run did not reach {n} finished cells in 60 s");
}

/// The worker processes of `parent`.
fn workers(parent: u32) -> Vec<i32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        // Fields after the command name (which may hold spaces) end with `)`: state, ppid, ….
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        if rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent) {
            found.push(pid);
        }
    }
    found
}

fn worker_of(child: &Child) -> i32 {
    let t = Instant::now();
    loop {
        if let Some(&pid) = workers(child.id()).first() {
            return pid;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "no worker process appeared");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether `pid` has ended (gone, or a zombie nobody reaped yet) within 10 s.
fn ends(pid: i32) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(s) if s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')) => return true,
            Ok(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    false
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) of a process this test started (or its worker).
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

fn cells(r: &RunResults) -> Vec<(String, RuntimeId, usize, usize, Status)> {
    r.cells.iter().map(|c| (c.model.clone(), c.runtime, c.chars, c.batch, c.status)).collect()
}

struct Interrupted {
    code: Option<i32>,
    stderr: String,
    cut: RunResults,
}

/// Starts a run into `out`, waits for two finished cells, interrupts it with `how` (given xbench's
/// process), and returns how it ended and what its results held.
fn interrupt(file: &Path, out: &Path, how: impl FnOnce(&mut Child)) -> Interrupted {
    let mut child = start(file, out);
    wait_for_cells(&out.join("results.json"), 2);
    how(&mut child);
    let (code, stderr) = finish(child);
    let cut = read_results(&out.join("results.json")).expect("the results file stays whole");
    assert!(!stderr.contains("panicked"), "{stderr}");
    Interrupted { code, stderr, cut }
}

/// Resumes `out` (retrying failed cells when any failed) and checks it against `whole`; the cells
/// finished before the interruption keep their samples.
fn resume_matches(file: &Path, out: &Path, cut: &RunResults, whole: &RunResults) {
    let mut cmd = xbench();
    cmd.args(args(file)).arg("--resume").arg(out);
    if cut.cells.iter().any(|c| c.status == Status::Failed) {
        cmd.arg("--retry-failed");
    }
    let done = cmd.output().unwrap();
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    let done = read_results(&out.join("results.json")).unwrap();
    assert!(done.complete);
    assert_eq!(cells(&done), cells(whole), "{}", out.display());
    for c in cut.cells.iter().filter(|c| c.status == Status::Ok) {
        assert_eq!(done.cells[c.index].samples_ms, c.samples_ms, "cell {} was measured again", c.index);
    }
}

#[test]
fn every_interruption_resumes_to_the_cells_of_an_uninterrupted_run() {
    let tmp = tempfile::Builder::new().prefix("xbench-signals-").tempdir().unwrap();
    let dir = tmp.path();
    let file: PathBuf = dir.join("s.yaml");
    std::fs::write(&file, SCENARIO).unwrap();
    let whole = xbench().args(args(&file)).arg("--out").arg(dir.join("whole")).output().unwrap();
    assert!(whole.status.success(), "{}", String::from_utf8_lossy(&whole.stderr));
    let whole = read_results(&dir.join("whole/results.json")).unwrap();
    assert_eq!(ok(&whole), 24);

    // SIGKILL of xbench itself: no handler runs; the worker it leaves ends on its own.
    let out = dir.join("kill-parent");
    let mut orphan = 0;
    let r = interrupt(&file, &out, |c| {
        orphan = worker_of(c);
        c.kill().unwrap();
    });
    assert_eq!(r.code, None, "killed by a signal");
    assert!(ends(orphan), "the worker of a killed run is still running");
    assert!(r.cut.cells.iter().all(|c| c.status != Status::Failed));
    resume_matches(&file, &out, &r.cut, &whole);

    // SIGKILL of the worker: its group's unrun cells fail with what is known, the run goes on.
    let out = dir.join("kill-worker");
    let r = interrupt(&file, &out, |c| signal(worker_of(c), libc::SIGKILL));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let failed: Vec<_> = r.cut.cells.iter().filter(|c| c.status == Status::Failed).collect();
    assert!(!failed.is_empty());
    let why = failed[0].error.as_deref().unwrap();
    assert!(why.contains("SIGKILL") && why.contains("not sent by xbench"), "{why}");
    resume_matches(&file, &out, &r.cut, &whole);

    // Ctrl-C once: the current cell finishes, the rest stay pending.
    let out = dir.join("sigint");
    let r = interrupt(&file, &out, |c| signal(c.id() as i32, libc::SIGINT));
    assert_eq!(r.code, Some(130));
    assert!(r.stderr.contains("--resume"), "{}", r.stderr);
    assert!(r.cut.cells.iter().all(|c| matches!(c.status, Status::Ok | Status::Pending)));
    resume_matches(&file, &out, &r.cut, &whole);

    // Ctrl-C twice: the worker is stopped at once; its cell stays pending, never failed.
    let out = dir.join("sigint-twice");
    let mut worker = 0;
    let r = interrupt(&file, &out, |c| {
        worker = worker_of(c);
        signal(c.id() as i32, libc::SIGINT);
        std::thread::sleep(Duration::from_millis(50));
        signal(c.id() as i32, libc::SIGINT);
    });
    assert_eq!(r.code, Some(130), "{}", r.stderr);
    assert!(r.cut.cells.iter().all(|c| matches!(c.status, Status::Ok | Status::Pending)), "an unrun cell was recorded as failed");
    assert!(ends(worker));
    resume_matches(&file, &out, &r.cut, &whole);

    // SIGTERM (what `timeout` and CI cancellation send): as Ctrl-C twice, exit 143, no worker left.
    let out = dir.join("sigterm");
    let mut worker = 0;
    let r = interrupt(&file, &out, |c| {
        worker = worker_of(c);
        signal(c.id() as i32, libc::SIGTERM);
    });
    assert_eq!(r.code, Some(143), "{}", r.stderr);
    assert!(ends(worker), "SIGTERM left the worker running");
    assert!(r.cut.cells.iter().all(|c| matches!(c.status, Status::Ok | Status::Pending)));
    resume_matches(&file, &out, &r.cut, &whole);

    // A worker stopped with SIGSTOP: its cell fails after `cell_timeout_s`, the rest run in a new worker.
    let out = dir.join("sigstop");
    let mut stopped = 0;
    let t = Instant::now();
    let r = interrupt(&file, &out, |c| {
        stopped = worker_of(c);
        signal(stopped, libc::SIGSTOP);
    });
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(t.elapsed() < Duration::from_secs(50));
    assert!(ends(stopped));
    assert!(r.cut.complete);
    let failed: Vec<_> = r.cut.cells.iter().filter(|c| c.status == Status::Failed).collect();
    assert_eq!(failed.len(), 1, "only the stalled cell fails: {failed:?}");
    assert!(failed[0].error.as_deref().unwrap().contains("cell_timeout_s` (5 s)"), "{:?}", failed[0].error);
    assert_eq!(ok(&r.cut), 23);
    resume_matches(&file, &out, &r.cut, &whole);
}

#[test]
fn a_stop_at_once_while_the_report_is_written_exits_at_once_with_every_result_saved() {
    let tmp = tempfile::Builder::new().prefix("xbench-signals-finishing-").tempdir().unwrap();
    let dir = tmp.path();
    let file: PathBuf = dir.join("s.yaml");
    std::fs::write(&file, SCENARIO).unwrap();
    // Not quiet: the warning that says what happened is part of the behaviour.
    let loud: Vec<String> = args(&file).into_iter().filter(|a| a != "--quiet").collect();
    type How = fn(i32);
    let sigterm: How = |pid| signal(pid, libc::SIGTERM);
    let twice: How = |pid| {
        signal(pid, libc::SIGINT);
        std::thread::sleep(Duration::from_millis(50));
        signal(pid, libc::SIGINT);
    };
    for (name, send, code) in [("sigterm", sigterm, 143), ("sigint-twice", twice, 130)] {
        let out = dir.join(name);
        // The report is held for 30 s once every result is saved, so that the signal lands while it is written.
        let child = xbench().args(&loud).arg("--out").arg(&out).env("XBENCH_TEST_REPORT_DELAY_MS", "30000").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let results = out.join("results.json");
        let t = Instant::now();
        while !read_results(&results).is_ok_and(|r| r.complete) {
            assert!(t.elapsed() < Duration::from_secs(60), "{name}: the run did not save every result in 60 s");
            std::thread::sleep(Duration::from_millis(10));
        }
        let signalled = Instant::now();
        send(child.id() as i32);
        let (got, stderr) = finish(child);
        assert!(signalled.elapsed() < Duration::from_secs(10), "{name}: xbench waited for the report ({:.1} s)", signalled.elapsed().as_secs_f64());
        assert_eq!(got, Some(code), "{name}: {stderr}");
        assert!(stderr.contains("stopped at once while the report was being written") && !stderr.contains("panicked"), "{name}: {stderr}");
        let r = read_results(&results).expect("the results file stays whole");
        assert!(r.complete && r.finished_at.is_some(), "{name}");
        assert_eq!(ok(&r), 24, "{name}: every cell is saved");
        assert!(!out.join("index.html").exists(), "{name}: the report was written, so the stop was not at once");
    }
}
