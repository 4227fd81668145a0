//! A resume that trusts nothing, through the real binary. A `--resume` under other conditions
//! than its finished cells were run under (timer and I/O flags, threads, isolation, machine,
//! xbench, a runtime's version, the bytes of a model's files or the scenario's text), a results
//! file that does not hold together, and values that would switch a check off are refused: exit
//! status 1, the thing and the fix named, no panic, no hang, and the finished run's files
//! byte-identical afterwards. `--retry-failed` runs failed cells again, and nothing else.

use crate::common::{self, Ran};
use crate::hostile;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use xbench::results::{read_results, write_json, CellRecord, RunResults, Status};

/// Longest any command may take before the case fails as a hang.
const LIMIT: Duration = Duration::from_secs(60);

const S: &str = "name: s\nmodels: [tiny-bert]\nruntimes: [tract-cpu]\ninput_chars: [50]\nbatch_sizes: [1, 2]\niterations: 2\nwarmup: 0\n";

/// Runs xbench in `root` with the test doubles enabled; kills it after `LIMIT` (`code` is then `None`).
fn xbench(root: &Path, args: &[&str]) -> Ran {
    common::run_for(common::xbench_with_fakes().args(args).current_dir(root), LIMIT)
}

fn must(root: &Path, args: &[&str], code: i32) -> Ran {
    let ran = xbench(root, args);
    assert_eq!(ran.code, Some(code), "xbench {}:\n{}\n{}", args.join(" "), ran.stdout, ran.stderr);
    assert!(!ran.stderr.contains("panicked"), "{}", ran.stderr);
    ran
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// A run cut short after its first `keep` cells: the rest pending, as a killed run leaves it.
fn cut(run: &Path, keep: usize) {
    let path = run.join("results.json");
    let mut r = read_results(&path).unwrap();
    for c in r.cells.iter_mut().skip(keep) {
        *c = CellRecord { status: Status::Pending, summary: None, samples_ms: Vec::new(), agreement: None, flags: Vec::new(), error: None, ..c.clone() };
    }
    r.complete = false;
    r.finished_at = None;
    write_json(&path, &r).unwrap();
}

/// The folder every case starts from, made once: models, scenarios, finished and cut runs.
///
/// - `models/`: `tiny-bert` (the committed model) and `ext` (the same architecture with its
///   weights in the external data file `weights.bin`); `other/model.onnx`: other weights.
/// - `s.yaml` (tiny-bert on tract-cpu, 2 cells), `two.yaml` (on tract-cpu and fake-instant),
///   `crash.yaml` (on tract-cpu and fake-crash), `prose.yaml` (`text_file: prose.txt`), `ext.yaml`.
/// - Runs: `done` (s.yaml, finished), `cut` (its first cell kept), `cut-two`, `cut-prose`,
///   `cut-ext`, and `crashed` (crash.yaml, finished with fake-crash's 2 cells failed).
fn template() -> &'static Path {
    static T: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        // One folder, made again by each run of this file.
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostile-resume-template");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        copy_dir(&repo.join("models/tiny-bert"), &root.join("models/tiny-bert"));
        let cfg = xbench::onnx::tiny_bert::TinyBertConfig::default();
        xbench::onnx::tiny_bert::write_external(&cfg, &root.join("models/ext"), "weights.bin").unwrap();
        std::fs::copy(repo.join("models/tiny-bert/tokenizer.json"), root.join("models/ext/tokenizer.json")).unwrap();
        xbench::onnx::tiny_bert::write(&xbench::onnx::tiny_bert::TinyBertConfig { seed: 7, ..cfg }, &root.join("other")).unwrap();
        let prose = "The cat sat by the window and watched the rain fall on the quiet street below. ".repeat(40);
        std::fs::write(root.join("prose.txt"), prose).unwrap();
        for (file, yaml) in [
            ("s.yaml", S.to_string()),
            ("two.yaml", S.replace("[tract-cpu]", "[tract-cpu, fake-instant]")),
            ("crash.yaml", S.replace("[tract-cpu]", "[tract-cpu, fake-crash]")),
            ("prose.yaml", format!("{S}text_file: prose.txt\n")),
            ("ext.yaml", S.replace("[tiny-bert]", "[ext]")),
        ] {
            std::fs::write(root.join(file), yaml).unwrap();
        }
        let run = |yaml: &str, out: &str| must(&root, &["scenario", yaml, "--models-dir", "models", "--no-setup", "--quiet", "-i", "--out", out], 0);
        run("s.yaml", "done");
        run("two.yaml", "two");
        run("crash.yaml", "crashed");
        run("prose.yaml", "prose");
        run("ext.yaml", "ext");
        copy_dir(&root.join("done"), &root.join("cut"));
        cut(&root.join("cut"), 1);
        for (from, to, keep) in [("two", "cut-two", 3), ("prose", "cut-prose", 1), ("ext", "cut-ext", 1)] {
            std::fs::rename(root.join(from), root.join(to)).unwrap();
            cut(&root.join(to), keep);
        }
        let crashed = read_results(&root.join("crashed/results.json")).unwrap();
        assert_eq!(crashed.cells.iter().map(|c| c.status).collect::<Vec<_>>(), [Status::Ok, Status::Ok, Status::Failed, Status::Failed]);
        root
    })
}

/// A fresh copy of the template for one case.
fn case_root(name: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix(&format!("{name}-")).tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    copy_dir(template(), dir.path());
    dir
}

/// Changes `run/results.json` as text, as an editor or another program might.
fn edit(root: &Path, run: &str, change: impl FnOnce(&mut Value)) {
    let p = root.join(run).join("results.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    change(&mut v);
    std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

fn append(path: &Path, text: &str) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes.extend_from_slice(text.as_bytes());
    std::fs::write(path, bytes).unwrap();
}

/// The files of a finished run that a refused command must leave as they were.
fn snapshot(run: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    ["results.json", "results.csv", "report.md"].iter().map(|f| (f.to_string(), std::fs::read(run.join(f)).ok())).collect()
}

struct Case {
    name: &'static str,
    given: fn(&Path),
    args: &'static [&'static str],
    /// Fragments the error must contain (besides `fix:`).
    says: &'static [&'static str],
    /// Runs whose files must be byte-identical afterwards.
    kept: &'static [&'static str],
    /// Paths that must not exist afterwards (nothing was started).
    absent: &'static [&'static str],
}

const fn case(name: &'static str, given: fn(&Path), args: &'static [&'static str], says: &'static [&'static str], kept: &'static [&'static str], absent: &'static [&'static str]) -> Case {
    Case { name, given, args, says, kept, absent }
}

fn nothing(_: &Path) {}

macro_rules! resume {
    ($yaml:literal, $dir:literal $(, $extra:literal)*) => {
        &["scenario", $yaml, "--models-dir", "models", "--no-setup", "--quiet", "--resume", $dir $(, $extra)*]
    };
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    // Options the cells' timer and I/O depend on.
    case("another --timing", nothing, resume!("s.yaml", "cut", "--timing", "device-resident"), &["cut cannot be resumed", "--timing: end-to-end → device-resident", "fix: pass --timing end-to-end"], &["cut"], &[]),
    case("--pinned-io added", nothing, resume!("s.yaml", "cut", "--pinned-io"), &["--pinned-io: false → true", "leave --pinned-io out"], &["cut"], &[]),
    case("--cuda-graph left out", |r| edit(r, "cut", |v| v["conditions"]["cuda_graph"] = true.into()), resume!("s.yaml", "cut"), &["--cuda-graph: true → false", "pass --cuda-graph"], &["cut"], &[]),
    case("--no-tf32 added", nothing, resume!("s.yaml", "cut", "--no-tf32"), &["--no-tf32: false → true", "leave --no-tf32 out"], &["cut"], &[]),
    case("--in-process added", nothing, resume!("s.yaml", "cut", "--in-process"), &["isolation: process → in-process", "leave --in-process out"], &["cut"], &[]),
    case("--in-process left out", |r| edit(r, "cut", |v| v["conditions"]["isolation"] = "in-process".into()), resume!("s.yaml", "cut"), &["isolation: in-process → process", "pass --in-process"], &["cut"], &[]),
    case("another --device", nothing, resume!("s.yaml", "cut", "--device", "1"), &["--device: 0 → 1", "pass --device 0"], &["cut"], &[]),
    case("other threads", |r| edit(r, "cut", |v| v["conditions"]["threads"] = 64.into()), resume!("s.yaml", "cut"), &["threads: 64 → ", "where 64 threads are given"], &["cut"], &[]),
    case("other --runtimes than the run's", nothing, resume!("s.yaml", "cut", "--runtimes", "tract-cpu,fake-exact"), &["--runtimes tract-cpu,fake-exact contradicts the run in cut", "was run with the scenario's runtimes", "fix: leave --runtimes out"], &["cut"], &[]),
    case("several changes at once", |r| append(&r.join("models/tiny-bert/tokenizer.json"), "\n"), resume!("s.yaml", "cut", "--timing", "device-resident", "--pinned-io"), &["--timing: end-to-end → device-resident", "--pinned-io: false → true", "model `tiny-bert`: tokenizer.json", "pass --timing end-to-end; leave --pinned-io out; put back the tokenizer.json"], &["cut"], &[]),
    // The bytes of the files the cells read.
    case("model.onnx replaced", |r| { std::fs::copy(r.join("other/model.onnx"), r.join("models/tiny-bert/model.onnx")).unwrap(); }, resume!("s.yaml", "cut"), &["model `tiny-bert`: model.onnx: 4088530 bytes, xxh64 ", "put back the model.onnx"], &["cut"], &[]),
    case("tokenizer.json changed", |r| append(&r.join("models/tiny-bert/tokenizer.json"), "\n"), resume!("s.yaml", "cut"), &["model `tiny-bert`: tokenizer.json: 711396 bytes", "→ 711397 bytes"], &["cut"], &[]),
    case("model.yaml changed", |r| append(&r.join("models/tiny-bert/model.yaml"), "# edited\n"), resume!("s.yaml", "cut"), &["model `tiny-bert`: model.yaml"], &["cut"], &[]),
    case("model.yaml removed", |r| std::fs::remove_file(r.join("models/tiny-bert/model.yaml")).unwrap(), resume!("s.yaml", "cut"), &["model `tiny-bert`: model.yaml", "→ absent"], &["cut"], &[]),
    case("external data file changed", flip_weight_byte, resume!("ext.yaml", "cut-ext"), &["model `ext`: weights.bin", "put back the weights.bin"], &["cut-ext"], &[]),
    case("text file changed", |r| append(&r.join("prose.txt"), "And then the sun came out."), resume!("prose.yaml", "cut-prose"), &["scenario file prose.txt"], &["cut-prose"], &[]),
    // Versions and the machine.
    case("another xbench", |r| edit(r, "cut", |v| v["conditions"]["xbench"] = "0.0.1 (000000000000)".into()), resume!("s.yaml", "cut"), &["xbench: 0.0.1 (000000000000) → 0.1.0", "resume with the xbench that started the run (0.0.1"], &["cut"], &[]),
    case("another tract version", |r| edit(r, "cut", |v| v["conditions"]["runtimes"]["tract-cpu"] = "0.20.0".into()), resume!("s.yaml", "cut"), &["tract-cpu version: 0.20.0 → 0.23", "resume with tract-cpu 0.20.0"], &["cut"], &[]),
    case("another machine", |r| edit(r, "cut", |v| v["conditions"]["machine"] = "Other CPU, 96 cores, aarch64".into()), resume!("s.yaml", "cut"), &["machine: Other CPU, 96 cores, aarch64 → ", "on the machine that started the run"], &["cut"], &[]),
    case("no conditions recorded", |r| edit(r, "cut", |v| { v.as_object_mut().unwrap().remove("conditions"); }), resume!("s.yaml", "cut"), &["does not record the conditions", "older xbench", "start a new run"], &["cut"], &[]),
    // Results files that do not hold together.
    case("groups: [] on resume", |r| edit(r, "cut", |v| v["groups"] = Value::Array(vec![])), resume!("s.yaml", "cut"), &["cut/results.json does not hold together", "cells[0]", "belongs to no group"], &["cut"], &[]),
    case("groups: [] on report", |r| edit(r, "done", |v| v["groups"] = Value::Array(vec![])), &["report", "done/results.json", "--out", "rep"], &["done/results.json does not hold together", "belongs to no group"], &["done"], &["rep"]),
    case("groups: [] on compare", |r| edit(r, "done", |v| v["groups"] = Value::Array(vec![])), &["compare", "done/results.json", "done/results.json"], &["done/results.json does not hold together"], &["done"], &[]),
    case("a cell of a model not there", |r| edit(r, "cut", |v| v["cells"][0]["model"] = "ghost".into()), resume!("s.yaml", "cut"), &["cells[0]", "model `ghost`", "not among its models (tiny-bert)"], &["cut"], &[]),
    case("a cell of a runtime not there", |r| edit(r, "done", |v| v["cells"][1]["runtime"] = "ort-cuda".into()), &["report", "done/results.json", "--out", "rep"], &["cells[1]", "on ort-cuda", "not among its runtimes (tract-cpu)"], &["done"], &["rep"]),
    case("cells out of order", |r| edit(r, "cut", |v| v["cells"].as_array_mut().unwrap().swap(0, 1)), resume!("s.yaml", "cut"), &["cells[0]", "gives index 1", "its position"], &["cut"], &[]),
    case("a cell twice", |r| edit(r, "done", |v| { let mut c = v["cells"][0].clone(); c["index"] = 1.into(); v["cells"][1] = c; }), &["compare", "done/results.json", "done/results.json"], &["cells[1]", "is there twice"], &["done"], &[]),
    case("no cells", |r| edit(r, "done", |v| v["cells"] = Value::Array(vec![])), &["report", "done/results.json", "--out", "rep"], &["holds no cells"], &["done"], &["rep"]),
    case("a reference runtime not there", |r| edit(r, "done", |v| v["reference_runtime"] = "ort-cpu".into()), &["report", "done/results.json", "--out", "rep"], &["reference runtime `ort-cpu` is not among its runtimes (tract-cpu)"], &["done"], &["rep"]),
    case("an ok cell without samples", |r| edit(r, "done", |v| v["cells"][0]["samples_ms"] = Value::Array(vec![])), &["compare", "done/results.json", "done/results.json"], &["cells[0]", "is `ok` but holds no samples"], &["done"], &[]),
    case("a group without cells", |r| edit(r, "cut", |v| { let mut a = v["runtimes"][0].clone(); a["runtime"] = "fake-exact".into(); v["runtimes"].as_array_mut().unwrap().push(a); let mut g = v["groups"][0].clone(); g["runtime"] = "fake-exact".into(); v["groups"].as_array_mut().unwrap().push(g); }), resume!("s.yaml", "cut"), &["groups[1] (model `tiny-bert` on fake-exact) has no cell"], &["cut"], &[]),
    case("groups in another order than the scenario's", |r| edit(r, "cut-two", |v| v["groups"].as_array_mut().unwrap().reverse()), resume!("two.yaml", "cut-two"), &["cut-two holds other (model, runtime) groups"], &["cut-two"], &[]),
    case("an empty results.json", |r| std::fs::write(r.join("cut/results.json"), "").unwrap(), resume!("s.yaml", "cut"), &["cut/results.json is not a JSON results file"], &[], &[]),
    case("a results.json cut in half", |r| { let p = r.join("cut/results.json"); let b = std::fs::read(&p).unwrap(); std::fs::write(&p, &b[..b.len() / 2]).unwrap(); }, resume!("s.yaml", "cut"), &["cut/results.json is not a JSON results file"], &[], &[]),
    case("a folder without results.json", nothing, resume!("s.yaml", "models"), &["--resume models", "holds no results.json"], &[], &["models/results.json"]),
    case("a folder that does not exist", nothing, resume!("s.yaml", "nowhere"), &["--resume nowhere", "no such folder"], &[], &["nowhere"]),
    // Failed cells.
    case("a finished run with failed cells, no --retry-failed", nothing, resume!("crash.yaml", "crashed", "-i"), &["crashed: every cell of this run is already finished, 2 of them failed", "add --retry-failed"], &["crashed"], &[]),
    case("--retry-failed without --resume", nothing, &["scenario", "s.yaml", "--models-dir", "models", "--no-setup", "--quiet", "--retry-failed", "--out", "new"], &["--retry-failed", "--resume DIR"], &[], &["new"]),
    case("--retry-failed with no failed cell", nothing, resume!("s.yaml", "done", "--retry-failed"), &["done: no cell of this run failed", "nothing to retry"], &["done"], &[]),
    case("--retry-failed under another timing", nothing, resume!("crash.yaml", "crashed", "--retry-failed", "-i", "--timing", "device-resident"), &["crashed cannot be resumed", "--timing: end-to-end → device-resident"], &["crashed"], &[]),
    case("--retry-failed after the kept cells' model changed", |r| append(&r.join("models/tiny-bert/tokenizer.json"), "\n"), resume!("crash.yaml", "crashed", "--retry-failed", "-i"), &["model `tiny-bert`: tokenizer.json"], &["crashed"], &[]),
    // Values that would switch something off.
    case("max_positions: 0", |r| std::fs::write(r.join("models/tiny-bert/model.yaml"), "max_positions: 0\n").unwrap(), &["scenario", "s.yaml", "--models-dir", "models", "--no-setup", "--quiet", "--out", "new"], &["model `tiny-bert`", "model.yaml", "`max_positions: 0`", "e.g. `max_positions: 512`"], &[], &["new"]),
    case("--fail-above NaN", nothing, &["compare", "done/results.json", "done/results.json", "--fail-above", "NaN"], &["--fail-above NaN", "every regression pass", "e.g. --fail-above 10"], &["done"], &[]),
    case("--fail-above inf", nothing, &["compare", "done/results.json", "done/results.json", "--fail-above", "inf"], &["--fail-above inf", "finite"], &["done"], &[]),
    case("--fail-above -5", nothing, &["compare", "done/results.json", "done/results.json", "--fail-above=-5"], &["--fail-above -5", "0 or more"], &["done"], &[]),
    // Comparisons that checked nothing do not pass.
    case("--fail-above where B lacks cells of A", nothing, &["compare", "done/results.json", "cut/results.json", "--fail-above", "10"], &["cut/results.json lacks 1 of the 2 cells measured in done/results.json", "tiny-bert / tract-cpu / 50 chars / batch 2", "compare a run of B that measured every cell of A"], &["done", "cut"], &[]),
    case("--fail-above on single samples", single_samples, &["compare", "done/results.json", "done/results.json", "--fail-above", "10"], &["2 cells have fewer than 2 samples", "too few for a verdict", "`iterations: 2` or more"], &["done"], &[]),
    case("--level NaN", nothing, &["compare", "done/results.json", "done/results.json", "--level", "NaN"], &["--level NaN", "strictly between 0 and 1", "--level 0.95"], &["done"], &[]),
    case("--level 1", nothing, &["compare", "done/results.json", "done/results.json", "--level", "1"], &["--level 1 ", "strictly between 0 and 1"], &["done"], &[]),
    // One model named several ways runs once: the scenario is refused before anything runs.
    case("one model listed three ways", |r| std::fs::write(r.join("dup.yaml"), S.replace("[tiny-bert]", "[tiny-bert, ./tiny-bert, tiny-bert/.]")).unwrap(), &["scenario", "dup.yaml", "--models-dir", "models", "--no-setup", "--quiet", "--out", "new"], &["dup.yaml", "`models[1]` = `./tiny-bert` is model `tiny-bert` again, already listed as `tiny-bert`", "list each model once"], &[], &["new"]),
    case("one ONNX file named two ways", |r| std::fs::write(r.join("dup.yaml"), S.replace("[tiny-bert]", "[tiny-bert, tiny-bert/model.onnx]")).unwrap(), &["scenario", "dup.yaml", "--models-dir", "models", "--no-setup", "--quiet", "--out", "new"], &["`models[1]` = `tiny-bert/model.onnx`", "the one of `models[0]` (model `tiny-bert`)", "run twice"], &[], &["new"]),
];

/// `done` with one sample per cell, as a run of `iterations: 1` records it.
fn single_samples(root: &Path) {
    edit(root, "done", |v| {
        for c in v["cells"].as_array_mut().unwrap() {
            let first = c["samples_ms"][0].clone();
            c["samples_ms"] = Value::Array(vec![first]);
        }
    });
}

/// Flips one byte of `ext`'s external weights (the file keeps its size, so the model still loads).
fn flip_weight_byte(root: &Path) {
    let p = root.join("models/ext/weights.bin");
    let mut b = std::fs::read(&p).unwrap();
    let i = b.len() / 2;
    b[i] ^= 0x40;
    std::fs::write(&p, b).unwrap();
}

fn check(c: &Case, root: &Path) -> Result<(), String> {
    let before: Vec<_> = c.kept.iter().map(|run| snapshot(&root.join(run))).collect();
    for (run, files) in c.kept.iter().zip(&before) {
        if files[0].1.is_none() {
            return Err(format!("{run}/results.json is missing before the command"));
        }
    }
    let ran = xbench(root, c.args);
    let Some(code) = ran.code else { return Err(format!("still running after {LIMIT:?}; killed")) };
    hostile::refused_as(&ran.stderr, code, 1, c.says).map_err(|why| format!("{why}\nstdout:\n{}", ran.stdout))?;
    for (run, files) in c.kept.iter().zip(before) {
        if snapshot(&root.join(run)) != files {
            return Err(format!("the files of {run} changed"));
        }
    }
    if let Some(p) = c.absent.iter().find(|p| root.join(p).exists()) {
        return Err(format!("{p} exists: something was started"));
    }
    Ok(())
}

#[test]
fn hostile_resumes_and_inputs_are_refused_with_the_difference_and_the_fix() {
    let mut names = std::collections::HashSet::new();
    assert!(CASES.iter().all(|c| names.insert(c.name)), "case names are distinct");
    let mut failures = Vec::new();
    for c in CASES {
        let root = case_root("case");
        (c.given)(root.path());
        if let Err(why) = check(c, root.path()) {
            failures.push(format!("`{}`: {why}\n  (folder kept: {})", c.name, root.keep().display()));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n\n{}", failures.len(), CASES.len(), failures.join("\n\n"));
}

fn results(root: &Path, run: &str) -> RunResults {
    read_results(&root.join(run).join("results.json")).unwrap()
}

#[test]
fn a_resume_under_the_same_conditions_runs_only_the_pending_cells() {
    let root = case_root("same");
    let r = root.path();
    let before = results(r, "cut");
    must(r, resume!("s.yaml", "cut"), 0);
    let after = results(r, "cut");
    assert!(after.complete && after.resumed_at.len() == 1);
    assert_eq!(after.cells[0], before.cells[0], "the finished cell is kept as it was");
    assert_eq!(after.cells[1].status, Status::Ok);
    assert_eq!(after.conditions, before.conditions, "the conditions are the ones recorded");
}

#[test]
fn a_model_none_of_whose_cells_finished_may_change_before_the_resume() {
    let root = case_root("pending-model");
    let r = root.path();
    copy_dir(&r.join("models/tiny-bert"), &r.join("models/tb2"));
    std::fs::write(r.join("m2.yaml"), S.replace("[tiny-bert]", "[tiny-bert, tb2]")).unwrap();
    must(r, &["scenario", "m2.yaml", "--models-dir", "models", "--no-setup", "--quiet", "--out", "m2"], 0);
    cut(&r.join("m2"), 2); // tiny-bert's two cells kept, tb2's pending
    append(&r.join("models/tb2/model.yaml"), "# edited\n");
    must(r, resume!("m2.yaml", "m2"), 0);
    let after = results(r, "m2");
    assert!(after.complete && after.cells.iter().all(|c| c.status == Status::Ok));
    let yaml = after.conditions.unwrap().files.into_iter().find(|f| f.model.as_deref() == Some("tb2") && f.file == "model.yaml").unwrap();
    assert_eq!(yaml.bytes, std::fs::metadata(r.join("models/tb2/model.yaml")).unwrap().len(), "the record holds the file the new cells read");
    // The model whose cells were kept is guarded all the same.
    cut(&r.join("m2"), 2);
    append(&r.join("models/tiny-bert/model.yaml"), "# edited\n");
    let refused = must(r, resume!("m2.yaml", "m2"), 1);
    assert!(refused.stderr.contains("model `tiny-bert`: model.yaml") && !refused.stderr.contains("tb2"), "{}", refused.stderr);
}

#[test]
fn retry_failed_runs_the_failed_cells_again_and_nothing_else() {
    let root = case_root("retry");
    let r = root.path();
    let before = results(r, "crashed");
    let ran = must(r, resume!("crash.yaml", "crashed", "--retry-failed"), 2);
    assert!(ran.stderr.contains("2 cells failed") && ran.stderr.contains("--resume crashed --retry-failed"), "{}", ran.stderr);
    let after = results(r, "crashed");
    assert!(after.complete && after.resumed_at.len() == 1);
    for (a, b) in after.cells.iter().zip(&before.cells) {
        if b.status == Status::Ok {
            assert_eq!(a, b, "a measured cell is not run again");
        } else {
            assert_eq!(a.status, Status::Failed);
            assert!(a.error.as_deref().unwrap_or("").contains("SIGABRT"), "{:?}", a.error);
        }
    }
    assert_eq!(after.groups[1].status, Status::Failed);
}

#[test]
fn a_run_whose_every_cell_failed_is_retried_once_the_cause_is_fixed() {
    let root = case_root("all-failed");
    let r = root.path();
    let tok = r.join("models/tiny-bert/tokenizer.json");
    let good = std::fs::read(&tok).unwrap();
    std::fs::write(&tok, &good[..good.len() / 3]).unwrap();
    let args = ["scenario", "s.yaml", "--models-dir", "models", "--no-setup", "--quiet", "--out", "bad", "--timing", "device-resident"];
    let ran = must(r, &args, 2);
    assert!(ran.stderr.contains("run them again with: xbench scenario --resume bad --retry-failed") && !ran.stderr.contains("--timing"), "the way to retry names the run's folder alone (its options are recorded): {}", ran.stderr);
    assert!(results(r, "bad").cells.iter().all(|c| c.status == Status::Failed));
    let refused = must(r, resume!("s.yaml", "bad", "--timing", "device-resident"), 1);
    assert!(refused.stderr.contains("2 of them failed") && refused.stderr.contains("--retry-failed"), "{}", refused.stderr);
    std::fs::write(&tok, &good).unwrap();
    // The command printed, as printed: the run's recorded options (its scenario, models folder and timing) apply.
    must(r, &["scenario", "--resume", "bad", "--retry-failed", "--no-setup", "--quiet"], 0);
    let after = results(r, "bad");
    assert_eq!(after.conditions.as_ref().unwrap().timing, "device-resident");
    assert!(after.complete && after.cells.iter().all(|c| c.status == Status::Ok && c.error.is_none()), "{:?}", after.cells);
    assert_eq!(after.groups[0].status, Status::Ok);
}

#[test]
fn a_byte_order_mark_is_not_part_of_a_scenario_or_a_model_yaml() {
    let root = case_root("bom");
    let r = root.path();
    std::fs::write(r.join("bom.yaml"), format!("\u{feff}{}", S.replace("[50]", "[200]"))).unwrap();
    let yaml = std::fs::read_to_string(r.join("models/tiny-bert/model.yaml")).unwrap().replace("max_positions: 512", "max_positions: 8");
    std::fs::write(r.join("models/tiny-bert/model.yaml"), format!("\u{feff}{yaml}")).unwrap();
    must(r, &["scenario", "bom.yaml", "--models-dir", "models", "--no-setup", "--quiet", "--out", "bom"], 0);
    let done = results(r, "bom");
    assert_eq!(done.scenario.runtimes.len(), 1);
    for c in &done.cells {
        let t = c.tokens.as_ref().unwrap();
        assert_eq!((c.status, t.padded_len, t.truncated_rows), (Status::Ok, 8, c.batch), "model.yaml's max_positions is read through the mark");
    }
}

#[test]
fn a_resume_takes_the_recorded_options_and_an_older_file_the_flags_given() {
    let root = case_root("recorded");
    let r = root.path();
    must(r, &["scenario", "s.yaml", "--models-dir", "models", "--no-setup", "--quiet", "-i", "--timing", "device-resident", "--out", "dr"], 0);
    cut(&r.join("dr"), 1);
    let before = results(r, "dr");
    let run = before.run.clone().expect("the options are recorded");
    assert_eq!((run.scenario.as_deref(), run.models_dir.as_path(), run.timing), (Some(Path::new("s.yaml")), Path::new("models"), xbench::results::Timing::DeviceResident));
    // No flag repeated: the recorded scenario, models folder and timing.
    must(r, &["scenario", "--resume", "dr", "--no-setup", "--quiet", "-i"], 0);
    let after = results(r, "dr");
    assert!(after.complete && after.resumed_at.len() == 1);
    assert_eq!(after.cells[0], before.cells[0], "the finished cell is kept");
    assert_eq!(after.conditions.as_ref().unwrap().timing, "device-resident");
    assert_eq!(after.run, before.run);

    // A results file from before the options were recorded resumes as it did: with the flags given.
    edit(r, "cut", |v| {
        v.as_object_mut().unwrap().remove("run");
    });
    let refused = must(r, &["scenario", "--resume", "cut", "--no-setup", "--quiet"], 1);
    assert!(refused.stderr.contains("cut was made by a different scenario than this one"), "without the file, the built-in scenario is not the run's: {}", refused.stderr);
    must(r, resume!("s.yaml", "cut"), 0);
    let after = results(r, "cut");
    assert!(after.complete);
    assert_eq!(after.run.as_ref().and_then(|c| c.scenario.as_deref()), Some(Path::new("s.yaml")), "the options it went on under are recorded");
}
