//! Starting the xbench binary and reading what it did (`xbench`, `run_for`, `scenario`), and
//! comparing report text with its committed snapshot (`assert_snapshot`).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use xbench::results::{read_results, RunResults};

/// The project folder's `rel`.
pub fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The xbench binary of this build, in the test's folder (the project) with the test's
/// environment; the caller adds arguments, folder and variables.
pub fn xbench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_xbench"))
}

/// xbench run in `dir` with the project's `.xbench/` as its home: ONNX Runtime and the runtimes'
/// environments are fetched there once for all tests, as a user's set-up keeps them.
pub fn xbench_in(dir: &Path) -> Command {
    let mut c = xbench();
    c.current_dir(dir).env("XBENCH_HOME", repo(".xbench"));
    c
}

/// xbench with the test doubles (`fake-exact`, `fake-wrong`, …) accepted.
pub fn xbench_with_fakes() -> Command {
    let mut c = xbench();
    c.env("XBENCH_FAKE_RUNTIMES", "1");
    c
}

/// What a finished command said, for an assertion's message.
pub fn text(o: &Output) -> String {
    format!("exit {:?}\n--- stdout\n{}--- stderr\n{}", o.status.code(), String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A command run by `run_for`: its exit code (-1 when a signal ended it, `None` when it ran past
/// its time limit and was killed), standard output and standard error.
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to its end, or kills it once it has run for `limit`: its exit code (-1 when a
/// signal ended it), `None` when it had to be killed (a hang).
pub fn run_limited(cmd: &mut Command, limit: Duration) -> Option<i32> {
    let mut child = cmd.spawn().expect("xbench starts");
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status.code().unwrap_or(-1));
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `cmd` with no input for at most `limit` (as `run_limited`), its output kept in unnamed
/// temporary files: nothing is written to its folder, and a process it leaves behind holding the
/// output open cannot hold the test up.
pub fn run_for(cmd: &mut Command, limit: Duration) -> Ran {
    let (out, err) = (tempfile::tempfile().unwrap(), tempfile::tempfile().unwrap());
    cmd.stdin(Stdio::null()).stdout(out.try_clone().unwrap()).stderr(err.try_clone().unwrap());
    let code = run_limited(cmd, limit);
    let read = |mut f: std::fs::File| {
        let mut bytes = Vec::new();
        f.seek(SeekFrom::Start(0)).and_then(|_| f.read_to_end(&mut bytes)).unwrap();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Ran { code, stdout: read(out), stderr: read(err) }
}

/// A scenario run through the binary: its results, its report.md and what it printed.
pub struct ScenarioRun {
    pub results: RunResults,
    pub report: String,
    pub stdout: String,
    pub stderr: String,
}

/// Writes `yaml` to `dir/s.yaml` and runs `cmd scenario s.yaml --out out ARGS` in `dir` (a
/// previous `dir/out` removed first). The exit code must be `code`, and nothing panicked.
pub fn scenario(cmd: &mut Command, dir: &Path, yaml: &str, args: &[&str], code: i32) -> ScenarioRun {
    std::fs::write(dir.join("s.yaml"), yaml).unwrap();
    let _ = std::fs::remove_dir_all(dir.join("out"));
    let out = cmd.current_dir(dir).args(["scenario", "s.yaml", "--out", "out"]).args(args).output().unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(code), "xbench scenario {args:?}:\n{said}");
    assert!(!said.contains("panicked"), "{said}");
    ScenarioRun {
        results: read_results(&dir.join("out/results.json")).unwrap_or_else(|e| panic!("{e:#}\n{said}")),
        report: std::fs::read_to_string(dir.join("out/report.md")).unwrap_or_default(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Compares `actual` with the committed snapshot `tests/snapshots/NAME`; `XBENCH_UPDATE_SNAPSHOTS=1`
/// writes it instead (then review the change with git diff).
pub fn assert_snapshot(name: &str, actual: &str) {
    let path = repo("tests/snapshots").join(name);
    if std::env::var_os("XBENCH_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("snapshot {}: {e} (XBENCH_UPDATE_SNAPSHOTS=1 writes it)", path.display()));
    if expected != actual {
        let line = expected.lines().zip(actual.lines()).position(|(a, b)| a != b).unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!("{name} differs from its snapshot from line {} on (XBENCH_UPDATE_SNAPSHOTS=1 rewrites it):\n--- expected\n{expected}\n--- actual\n{actual}", line + 1);
    }
}
