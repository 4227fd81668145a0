//! Output folders that are not a new run's, files that are not files, and sizes that would take
//! the machine down, through the real binary: each is refused with the exit code, the thing and
//! the fix named, no panic, no hang, and whatever was in the folders before left byte-identical.

use crate::common::{self, Ran};
use crate::hostile;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use xbench::results::{read_results, Status};

/// Longest any command may take before the case fails as a hang.
const LIMIT: Duration = Duration::from_secs(60);

const S: &str = "name: s\nmodels: [tiny-bert]\nruntimes: [tract-cpu]\ninput_chars: [50]\nbatch_sizes: [1]\niterations: 2\nwarmup: 0\n";

fn xbench(root: &Path, args: &[&str]) -> Ran {
    common::run_for(common::xbench().args(args).current_dir(root), LIMIT)
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A link at `at` (replacing a file there) to `target`.
fn link(target: &Path, at: &Path) {
    let _ = std::fs::remove_file(at);
    std::os::unix::fs::symlink(target, at).unwrap();
}

fn fifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo(3) with a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// Every file under `dir` (links as their targets' names), with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let (p, t) = (e.path(), e.file_type().unwrap());
        if t.is_symlink() {
            out.push((p.clone(), std::fs::read_link(&p).unwrap().into_os_string().into_encoded_bytes()));
        } else if t.is_dir() {
            out.extend(snapshot(&p));
        } else if t.is_file() {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

/// A case folder: the committed tiny model under `models/`, `s.yaml`, a finished run `done/`, a
/// file `outside/keep.txt` that links point at, and `mine/` (the user's own folder).
fn base(root: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(root.join("models/tiny-bert")).unwrap();
    for f in ["model.onnx", "tokenizer.json", "model.yaml"] {
        std::fs::copy(repo.join("models/tiny-bert").join(f), root.join("models/tiny-bert").join(f)).unwrap();
    }
    write(&root.join("s.yaml"), S);
    write(&root.join("outside/keep.txt"), "the user's own file\n");
    write(&root.join("mine/notes.txt"), "the user's notes\n");
    let ran = xbench(root, &["scenario", "s.yaml", "--no-setup", "--quiet", "--out", "done"]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
}

struct Case {
    name: &'static str,
    given: fn(&Path),
    args: &'static [&'static str],
    code: i32,
    says: &'static [&'static str],
}

const fn case(name: &'static str, given: fn(&Path), args: &'static [&'static str], code: i32, says: &'static [&'static str]) -> Case {
    Case { name, given, args, code, says }
}

fn nothing(_: &Path) {}

macro_rules! scen {
    ($file:literal $(, $extra:literal)*) => {
        &["scenario", $file, "--no-setup", "--quiet", "--out", "new" $(, $extra)*]
    };
}

fn yaml(root: &Path, text: &str) {
    write(&root.join("x.yaml"), text);
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    // Output folders: a new run takes only a new or empty folder.
    case("--out at a finished run", nothing, &["scenario", "s.yaml", "--no-setup", "--quiet", "--out", "done"], 1, &["done holds an earlier run", "--resume done"]),
    case("--out at the user's folder", nothing, &["scenario", "s.yaml", "--no-setup", "--quiet", "--out", "mine"], 1, &["mine is not empty", "`notes.txt`", "did not write", "new or empty folder"]),
    case("--out at a folder holding the user's index.html", |r| write(&r.join("site/index.html"), "<p>mine</p>"), &["scenario", "s.yaml", "--no-setup", "--quiet", "--out", "site"], 1, &["site is not empty", "`index.html`"]),
    case("--out at a folder holding the user's report.md", |r| write(&r.join("docs/report.md"), "# mine"), &["scenario", "s.yaml", "--no-setup", "--quiet", "--out", "docs"], 1, &["docs is not empty", "`report.md`"]),
    case("--out at a folder holding someone's .outputs", |r| write(&r.join("o/.outputs/x"), "x"), &["scenario", "s.yaml", "--no-setup", "--quiet", "--out", "o"], 1, &["o is not empty", "`.outputs`"]),
    case("--out at a file", nothing, &["scenario", "s.yaml", "--no-setup", "--quiet", "--out", "outside/keep.txt"], 1, &["outside/keep.txt` is a file", "new or empty folder"]),
    case("--out where results.json links to the user's file", |r| { std::fs::create_dir(r.join("l")).unwrap(); link(&r.join("outside/keep.txt"), &r.join("l/results.json")) }, &["scenario", "s.yaml", "--no-setup", "--quiet", "--out", "l"], 1, &["l holds an earlier run", "choose a new folder"]),
    case("--resume where report.md links out", |r| link(&r.join("outside/keep.txt"), &r.join("done/report.md")), &["scenario", "s.yaml", "--no-setup", "--quiet", "--resume", "done", "--retry-failed"], 1, &["done/report.md is a symbolic link", "remove the link"]),
    case("--resume where results.csv links out", |r| link(&r.join("outside/keep.txt"), &r.join("done/results.csv")), &["scenario", "s.yaml", "--no-setup", "--quiet", "--resume", "done", "--retry-failed"], 1, &["results.csv is a symbolic link"]),
    case("--resume where .outputs links out", |r| link(&r.join("outside"), &r.join("done/.outputs")), &["scenario", "s.yaml", "--no-setup", "--quiet", "--resume", "done", "--retry-failed"], 1, &[".outputs is a symbolic link"]),
    case("--resume where the lock file links out", |r| link(&r.join("outside/keep.txt"), &r.join("done/.xbench-lock")), &["scenario", "s.yaml", "--no-setup", "--quiet", "--resume", "done", "--retry-failed"], 1, &["cannot open the lock file", "no link named .xbench-lock"]),
    case("report --out at the user's folder", nothing, &["report", "done/results.json", "--out", "mine"], 1, &["mine holds `notes.txt`", "did not write"]),
    case("report --out where index.html links out", |r| { std::fs::create_dir(r.join("rep")).unwrap(); link(&r.join("outside/keep.txt"), &r.join("rep/index.html")) }, &["report", "done/results.json", "--out", "rep"], 1, &["rep/index.html is a symbolic link"]),
    case("report --out at a file", nothing, &["report", "done/results.json", "--out", "outside/keep.txt"], 1, &["outside/keep.txt is a file"]),
    // Scenario files that are not files, or not sizes a scenario has.
    case("a scenario that is a named pipe", |r| fifo(&r.join("x.yaml")), scen!("x.yaml"), 1, &["scenario file x.yaml is not a regular file (it is a named pipe)", "fix:"]),
    case("a scenario that is /dev/zero", nothing, scen!("/dev/zero"), 1, &["/dev/zero is not a regular file (it is a device)"]),
    case("a scenario that is a folder", nothing, scen!("models"), 1, &["scenario file models is not a regular file (it is a folder)"]),
    case("a scenario of 2 MiB", |r| yaml(r, &format!("{S}# {}\n", "x".repeat(2 << 20))), scen!("x.yaml"), 1, &["x.yaml", "more than the 1048576 bytes"]),
    case("200 000 nested brackets", |r| yaml(r, &format!("name: x\nruntimes: {}{}\n", "[".repeat(200_000), "]".repeat(200_000))), scen!("x.yaml"), 1, &["x.yaml: line 2 nests 65 levels", "write the values out flat"]),
    case("200 nested block items", |r| yaml(r, &format!("name: x\nruntimes:\n{}tract-cpu\n", "- ".repeat(200))), scen!("x.yaml"), 1, &["x.yaml: line 3 nests 200 levels"]),
    case("20 000 input lengths", |r| yaml(r, &S.replace("input_chars: [50]", &format!("input_chars: [{}]", (1..=20_000).map(|i| i.to_string()).collect::<Vec<_>>().join(", ")))), scen!("x.yaml"), 1, &["`input_chars` lists 20000 values, more than the 1000"]),
    case("4 096 batch sizes", |r| yaml(r, &S.replace("batch_sizes: [1]", &format!("batch_sizes: [{}]", (1..=4096).map(|i| i.to_string()).collect::<Vec<_>>().join(", ")))), scen!("x.yaml"), 1, &["`batch_sizes` lists 4096 values"]),
    case("a grid of a million cells", |r| yaml(r, &S.replace("input_chars: [50]", &format!("input_chars: [{}]", (1..=1000).map(|i| i.to_string()).collect::<Vec<_>>().join(", "))).replace("batch_sizes: [1]", &format!("batch_sizes: [{}]", (1..=1000).map(|i| i.to_string()).collect::<Vec<_>>().join(", ")))), scen!("x.yaml"), 1, &["1 models × 1 runtimes × 1000 input lengths × 1000 batch sizes make more than 100000 cells", "split the grid"]),
    case("memory_budget_gib: 0", |r| yaml(r, &format!("{S}memory_budget_gib: 0\n")), scen!("x.yaml"), 1, &["`memory_budget_gib`", "is 0", "memory_budget_gib: 16"]),
    case("memory_budget_gib: -8", |r| yaml(r, &format!("{S}memory_budget_gib: -8\n")), scen!("x.yaml"), 1, &["`memory_budget_gib`", "is -8"]),
    case("memory_budget_gib: .nan", |r| yaml(r, &format!("{S}memory_budget_gib: .nan\n")), scen!("x.yaml"), 1, &["`memory_budget_gib`", "is NaN"]),
    case("memory_budget_gib: 1e9", |r| yaml(r, &format!("{S}memory_budget_gib: 1e9\n")), scen!("x.yaml"), 1, &["`memory_budget_gib`", "is 1000000000: more than 1000000 GiB, which no machine has", "memory_budget_gib: 16"]),
    case("a scenario name with a line break", |r| yaml(r, &S.replace("name: s", "name: \"s\\nINJECTED: 0 failed\"")), scen!("x.yaml"), 1, &["`name`", "holds a control character ('\\n'", "write the name on one line"]),
    case("cell_timeout_s: 0", |r| yaml(r, &format!("{S}cell_timeout_s: 0\n")), scen!("x.yaml"), 1, &["`cell_timeout_s`", "is 0", "cell_timeout_s: 600"]),
    case("cell_timeout_s: .inf", |r| yaml(r, &format!("{S}cell_timeout_s: .inf\n")), scen!("x.yaml"), 1, &["`cell_timeout_s`", "is inf"]),
    case("a text file that is a named pipe", |r| { fifo(&r.join("prose.txt")); yaml(r, &format!("{S}text_file: prose.txt\n")) }, scen!("x.yaml"), 1, &["prose.txt is not a regular file (it is a named pipe)"]),
    case("a text file that is /dev/zero", |r| yaml(r, &format!("{S}text_file: /dev/zero\n")), scen!("x.yaml"), 1, &["/dev/zero is not a regular file (it is a device)"]),
    case("a text file of 65 MiB", |r| { std::fs::File::create(r.join("big.txt")).unwrap().set_len(65 << 20).unwrap(); yaml(r, &format!("{S}text_file: big.txt\n")) }, scen!("x.yaml"), 1, &["big.txt is 68157440 bytes, more than the 67108864"]),
];

fn check(c: &Case, root: &Path) -> Result<(), String> {
    let before = snapshot(root);
    let ran = xbench(root, c.args);
    let Some(code) = ran.code else { return Err(format!("still running after {LIMIT:?}; killed")) };
    hostile::refused_as(&ran.stderr, code, c.code, c.says)?;
    // Nothing that was there changed, and nothing was left behind.
    let after: Vec<_> = snapshot(root).into_iter().filter(|(p, _)| !p.ends_with(".stderr")).collect();
    let before: Vec<_> = before.into_iter().filter(|(p, _)| !p.ends_with(".stderr")).collect();
    if after != before {
        let changed: Vec<_> = after.iter().map(|(p, _)| p).chain(before.iter().map(|(p, _)| p)).filter(|p| after.iter().find(|x| &&x.0 == p) != before.iter().find(|x| &&x.0 == p)).collect();
        return Err(format!("files changed or left behind: {changed:?}"));
    }
    if root.join("new").exists() {
        return Err("the refused run left its folder `new` behind".into());
    }
    Ok(())
}

/// One finished run, copied for each case.
fn template() -> &'static Path {
    static T: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostile-bounds-template");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        base(&root);
        root
    })
}

fn case_root() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("bounds-").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let status = Command::new("cp").arg("-a").arg(format!("{}/.", template().display())).arg(dir.path()).status().unwrap();
    assert!(status.success());
    dir
}

#[test]
fn hostile_folders_files_and_sizes_are_refused_and_nothing_is_touched() {
    let mut names = std::collections::HashSet::new();
    assert!(CASES.iter().all(|c| names.insert(c.name)), "case names are distinct");
    let mut failures = Vec::new();
    for c in CASES {
        let root = case_root();
        (c.given)(root.path());
        if let Err(why) = check(c, root.path()) {
            failures.push(format!("`{}`: {why}\n  (folder kept: {})", c.name, root.keep().display()));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), CASES.len(), failures.join("\n"));
}

#[test]
fn a_folder_another_run_writes_to_is_refused_naming_that_run() {
    let root = case_root();
    let r = root.path();
    // A run in progress holds the lock of its folder; its process id is in the lock file.
    use std::io::Write;
    use std::os::fd::AsRawFd;
    for (folder, args) in [("done", &["scenario", "s.yaml", "--no-setup", "--quiet", "--resume", "done", "--retry-failed"][..]), ("busy", &["scenario", "s.yaml", "--no-setup", "--quiet", "--out", "busy"][..])] {
        std::fs::create_dir_all(r.join(folder)).unwrap();
        let mut held = std::fs::OpenOptions::new().create(true).truncate(true).write(true).open(r.join(folder).join(".xbench-lock")).unwrap();
        write!(held, "4242").unwrap();
        // SAFETY: flock on a descriptor this test owns.
        assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }, 0);
        let before = snapshot(&r.join(folder));
        let ran = xbench(r, args);
        assert_eq!(ran.code, Some(1), "{}", ran.stderr);
        assert!(ran.stderr.contains(&format!("another xbench run (process 4242) is writing to {folder}")) && ran.stderr.contains("fix: wait for it"), "{}", ran.stderr);
        assert_eq!(snapshot(&r.join(folder)), before);
    }
}

#[test]
fn cells_over_the_memory_budget_fail_before_anything_runs_and_the_rest_run() {
    let root = case_root();
    let r = root.path();
    // 20 000 characters × 4096 rows would take ~3.7 GiB just to tokenize; the other cells are small.
    yaml(r, &(S.replace("input_chars: [50]", "input_chars: [50, 20000]").replace("batch_sizes: [1]", "batch_sizes: [1, 4096]").replace("iterations: 2", "iterations: 1") + "memory_budget_gib: 2\n"));
    let t = Instant::now();
    let ran = xbench(r, &["scenario", "x.yaml", "--no-setup", "--out", "new"]);
    assert_eq!(ran.code, Some(2), "failed cells give exit code 2: {}", ran.stderr);
    assert!(t.elapsed() < Duration::from_secs(50));
    let res = read_results(&r.join("new/results.json")).unwrap();
    for c in &res.cells {
        let big = c.chars * c.batch > 1_000_000;
        if big {
            assert_eq!(c.status, Status::Failed, "{c:?}");
            let why = c.error.as_deref().unwrap();
            assert!(why.contains("over the memory budget of 2.0 GiB") && why.contains("raise `memory_budget_gib`"), "{why}");
        } else {
            assert_eq!(c.status, Status::Ok, "{c:?}");
        }
    }
    assert!(res.cells.iter().any(|c| c.status == Status::Ok));
}

#[test]
fn a_tokenizer_that_yields_no_tokens_fails_its_cells_with_the_fix_not_a_panic() {
    let root = case_root();
    let r = root.path();
    // A normalizer that deletes every character, and no special tokens: every text becomes nothing.
    let path = r.join("models/tiny-bert/tokenizer.json");
    let mut tok: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    tok["normalizer"] = serde_json::json!({"type": "Replace", "pattern": {"Regex": "[\\s\\S]"}, "content": ""});
    tok["post_processor"] = serde_json::Value::Null;
    std::fs::write(&path, serde_json::to_vec(&tok).unwrap()).unwrap();
    yaml(r, &S.replace("[tract-cpu]", "[tract-cpu, ort-cpu]"));
    let ran = xbench(r, &["scenario", "x.yaml", "--out", "new"]);
    assert_eq!(ran.code, Some(2), "{}", ran.stderr);
    assert!(!ran.stderr.contains("panicked"), "{}", ran.stderr);
    let res = read_results(&r.join("new/results.json")).unwrap();
    assert!(res.cells.iter().any(|c| c.status == Status::Failed && c.runtime.as_str() == "tract-cpu"), "tract's cell ran to the check");
    for c in &res.cells {
        let why = c.error.as_deref().unwrap_or_default();
        assert!(c.status == Status::Failed || c.status == Status::Skipped, "{c:?}");
        if c.status == Status::Failed {
            assert!(why.contains("turned the text into no tokens at all") && why.contains("fix: use the tokenizer.json the model was exported with"), "{why}");
        }
    }
}
