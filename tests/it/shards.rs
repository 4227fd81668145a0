//! Shards through the real binary: `--shard I/N` runs each (model, runtime) group of the plan on
//! exactly one shard; `xbench report` of every shard makes the one result set an unsharded run
//! gives (cells compared across shards included); missing, doubled or foreign shards and bad
//! `--shard` values are refused with the fix; a shard's folder resumes as that shard.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use xbench::results::{read_results, RunResults, Status};
use xbench::runtimes::RuntimeId;

use crate::common::xbench;

fn folder(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("xbench-shards-{name}-")).tempdir().unwrap()
}

fn ok(out: &Output) -> String {
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "xbench failed: {text}");
    text
}

/// stderr of a run that must fail with exit code 1.
fn refused(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "refused with status 1: {stderr}");
    assert!(stderr.contains("\n  fix: "), "the error says how to fix it: {stderr}");
    stderr
}

/// Runs `scenario` (a file) as shard `shard` (or whole) into `out`, with `extra` arguments.
fn run(scenario: &Path, shard: Option<&str>, out: &Path, extra: &[&str]) -> Output {
    let mut c = xbench();
    c.arg("scenario").arg(scenario).args(["--quiet", "--out"]).arg(out).args(extra);
    if let Some(s) = shard {
        c.args(["--shard", s]);
    }
    c.output().unwrap()
}

fn report(files: &[PathBuf], out: &Path, extra: &[&str]) -> Output {
    xbench().arg("report").args(files).arg("--out").arg(out).args(extra).output().unwrap()
}

/// Each cell's place in the grid and its status.
fn cells(r: &RunResults) -> Vec<(usize, String, RuntimeId, usize, usize, Status)> {
    r.cells.iter().map(|c| (c.index, c.model.clone(), c.runtime, c.chars, c.batch, c.status)).collect()
}

/// Two groups (tiny-bert on tract-cpu and on ort-cpu), two cells each: fast.
fn small(dir: &Path, name: &str, iterations: usize) -> PathBuf {
    let p = dir.join(format!("{name}.yaml"));
    let yaml = format!("name: {name}\nmodels: [tiny-bert]\nruntimes: [tract-cpu, ort-cpu]\ninput_chars: [50, 100]\nbatch_sizes: [2]\niterations: {iterations}\nwarmup: 1\n");
    std::fs::write(&p, yaml).unwrap();
    p
}

fn headings(md: &str) -> Vec<&str> {
    md.lines().filter(|l| l.starts_with("## ") && *l != "## Shards").collect()
}

#[test]
fn two_shards_cover_every_group_once_and_merge_into_the_cells_of_one_run() {
    let tmp = folder("quick");
    let dir = tmp.path();
    let quick = Path::new("scenarios/quick.yaml");
    // Shard i on GPU i, as on a machine with two GPUs: the device is not part of the plan.
    ok(&run(quick, Some("1/2"), &dir.join("s1"), &["--device", "0"]));
    ok(&run(quick, Some("2/2"), &dir.join("s2"), &["--device", "1"]));
    ok(&run(quick, None, &dir.join("whole"), &[]));
    let (s1, s2, whole) = (read_results(&dir.join("s1/results.json")).unwrap(), read_results(&dir.join("s2/results.json")).unwrap(), read_results(&dir.join("whole/results.json")).unwrap());
    assert!(whole.shard.is_none());

    // Every group and cell of the plan on exactly one shard, each shard's cells its own groups'.
    let (i1, i2) = (s1.shard.as_ref().unwrap(), s2.shard.as_ref().unwrap());
    assert_eq!((i1.index, i1.count, i2.index, i2.count), (1, 2, 2, 2));
    assert_eq!(i1.plan_id, i2.plan_id);
    assert_eq!((i1.plan_groups, i1.plan_cells), (whole.groups.len(), whole.cells.len()));
    let groups: Vec<usize> = i1.groups.iter().chain(&i2.groups).copied().collect();
    assert_eq!(groups.iter().copied().collect::<BTreeSet<_>>(), (0..whole.groups.len()).collect(), "every group once: {groups:?}");
    assert_eq!(groups.len(), whole.groups.len());
    assert!(!i1.groups.is_empty() && !i2.groups.is_empty(), "two groups, two shards: one each");
    let all_cells: Vec<usize> = i1.cells.iter().chain(&i2.cells).copied().collect();
    assert_eq!(all_cells.iter().copied().collect::<BTreeSet<_>>(), (0..whole.cells.len()).collect());
    assert_eq!(all_cells.len(), whole.cells.len());
    for (r, info) in [(&s1, i1), (&s2, i2)] {
        assert!(r.complete && r.cells.iter().all(|c| c.status == Status::Ok));
        for (k, c) in r.cells.iter().enumerate() {
            let w = &whole.cells[info.cells[k]];
            assert_eq!((&c.model, c.runtime, c.chars, c.batch), (&w.model, w.runtime, w.chars, w.batch), "cell {k} of shard {}", info.index);
        }
        for (k, g) in r.groups.iter().enumerate() {
            assert_eq!((&g.model, g.runtime), (&whole.groups[info.groups[k]].model, whole.groups[info.groups[k]].runtime));
        }
        // The runtimes of tiny-bert ran on different shards: each keeps its outputs to be compared.
        assert_eq!(info.kept_outputs.len(), r.cells.len());
        assert!(info.kept_outputs.iter().all(|&k| dir.join(format!("s{}/outputs/cell-{k}.safetensors", info.index)).is_file()));
        assert!(!dir.join(format!("s{}/.outputs", info.index)).exists());
    }

    // One result set, the unsharded run's cells in the same order, compared across the shards.
    let merged_dir = dir.join("merged");
    let text = ok(&report(&[dir.join("s2/results.json"), dir.join("s1/results.json")], &merged_dir, &[]));
    assert!(text.contains("merged:  2 shards of scenario `quick`"), "{text}");
    let m = read_results(&merged_dir.join("results.json")).unwrap();
    assert_eq!(cells(&m), cells(&whole));
    assert_eq!(m.groups.iter().map(|g| (&g.model, g.runtime)).collect::<Vec<_>>(), whole.groups.iter().map(|g| (&g.model, g.runtime)).collect::<Vec<_>>());
    assert!(m.complete && m.shard.is_none());
    for c in &m.cells {
        match c.runtime {
            RuntimeId::TRACT_CPU => {
                let a = c.agreement.as_ref().unwrap_or_else(|| panic!("tract cell {} is compared with ort-cpu, which ran on the other shard", c.index));
                assert!(a.reference == "ort-cpu" && a.agrees() && a.max_abs < 1e-4, "{a:?}");
            }
            _ => assert!(c.agreement.is_none()),
        }
    }
    let set = m.shards.as_ref().unwrap();
    assert_eq!((set.count, set.plan_id.as_str()), (2, i1.plan_id.as_str()));
    assert_eq!(set.parts.iter().map(|p| p.index).collect::<Vec<_>>(), [1, 2], "in shard order, whatever the order given");
    for (p, r) in set.parts.iter().zip([&s1, &s2]) {
        assert_eq!(p.machine.name, r.machine.name, "each shard's host is recorded");
        assert_eq!(p.cells, r.cells.len());
    }
    let md = std::fs::read_to_string(merged_dir.join("report.md")).unwrap();
    let whole_md = std::fs::read_to_string(dir.join("whole/report.md")).unwrap();
    assert_eq!(headings(&md), headings(&whole_md), "the same tables as one run");
    assert!(md.contains("## Shards") && md.contains(&format!("| 1/2 | `{}` |", s1.machine.name)), "{md}");
    for needle in ["tiny-bert / 500 / 32", "ort-cpu vs tract-cpu"] {
        assert!(md.contains(needle), "{needle}");
    }
    assert!(!md.contains(" · tract-cpu"), "one series per runtime, not one per shard");
    let figures = |d: &Path| {
        let mut f: Vec<String> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).filter(|n| n.ends_with(".svg")).collect();
        f.sort();
        f
    };
    assert_eq!(figures(&merged_dir), figures(&dir.join("whole")), "the same figures as one run");

    // Beside an unsharded run, the merged set is one source: two series per runtime, not three.
    let both = dir.join("both");
    ok(&report(&[dir.join("whole/results.json"), dir.join("s1/results.json"), dir.join("s2/results.json")], &both, &["--name-as", "whole", "--name-as", "sharded"]));
    let md = std::fs::read_to_string(both.join("report.md")).unwrap();
    assert!(md.contains("whole · tract-cpu") && md.contains("sharded · ort-cpu"), "{md}");
    assert!(both.join("results-merged.json").is_file());
}

#[test]
fn missing_doubled_and_foreign_shards_are_refused_naming_them() {
    let tmp = folder("refuse");
    let dir = tmp.path();
    let a = small(dir, "a", 2);
    let b = small(dir, "b", 3);
    for i in 1..=3 {
        let out = run(&a, Some(&format!("{i}/3")), &dir.join(format!("a{i}")), &[]);
        ok(&out);
    }
    let a3 = read_results(&dir.join("a3/results.json")).unwrap();
    assert!(a3.cells.is_empty() && a3.shard.as_ref().unwrap().groups.is_empty(), "two groups for three shards: the third has none, and says so");
    ok(&run(&b, Some("2/3"), &dir.join("b2"), &[]));
    ok(&run(&a, Some("2/2"), &dir.join("a2of2"), &[]));
    let f = |name: &str| dir.join(name).join("results.json");
    let out = dir.join("report");

    let e = refused(&report(&[f("a1"), f("a3")], &out, &[]));
    assert!(e.contains("shard 2/3 of scenario `a`") && e.contains("is missing") && e.contains("--shard 2/3"), "{e}");
    let e = refused(&report(&[f("a1"), f("a2"), f("a2"), f("a3")], &out, &[]));
    assert!(e.contains("shard 2/3 is given twice"), "{e}");
    let e = refused(&report(&[f("a1"), f("b2"), f("a3")], &out, &[]));
    assert!(e.contains("shards of different plans") && e.contains("scenario `b`") && e.contains(&f("b2").display().to_string()), "{e}");
    let e = refused(&report(&[f("a1"), f("a2of2"), f("a3")], &out, &[]));
    assert!(e.contains("one of 3 shards") && e.contains("one of 2"), "{e}");
    assert!(!out.join("report.md").exists(), "nothing is drawn from a refused set");

    // A shard's outputs folder lost on the way: the cells it served are flagged, not silently unjudged.
    std::fs::rename(dir.join("a2/outputs"), dir.join("a2/outputs-lost")).unwrap();
    ok(&report(&[f("a1"), f("a2"), f("a3")], &out, &[]));
    let m = read_results(&out.join("results.json")).unwrap();
    let tract: Vec<_> = m.cells.iter().filter(|c| c.runtime == RuntimeId::TRACT_CPU).collect();
    assert_eq!(tract.len(), 2);
    for c in tract {
        assert!(c.agreement.is_none());
        let flag = c.flags.iter().find(|f| f.kind == xbench::results::FlagKind::NotCompared).expect("flagged as not compared");
        assert!(flag.detail.contains("shard 2/3") && flag.detail.contains("outputs"), "{flag:?}");
    }

    // The reference shard's two outputs files swapped: each is tied to its cell by the digest its
    // shard recorded, so neither is compared with the other cell's outputs.
    std::fs::rename(dir.join("a2/outputs-lost"), dir.join("a2/outputs")).unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("a2/outputs")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    let before = read_results(&f("a2")).unwrap();
    assert_eq!(before.shard.as_ref().unwrap().kept_digests.len(), 2, "{:?}", before.shard);
    let tmp_file = dir.join("a2/swap");
    std::fs::rename(&files[0], &tmp_file).unwrap();
    std::fs::rename(&files[1], &files[0]).unwrap();
    std::fs::rename(&tmp_file, &files[1]).unwrap();
    let swapped = dir.join("swapped");
    ok(&report(&[f("a1"), f("a2"), f("a3")], &swapped, &[]));
    let m = read_results(&swapped.join("results.json")).unwrap();
    for c in m.cells.iter().filter(|c| c.runtime == RuntimeId::TRACT_CPU) {
        assert!(c.agreement.is_none(), "{c:?}");
        let flag = c.flags.iter().find(|f| f.kind == xbench::results::FlagKind::NotCompared).expect("flagged as not compared");
        assert!(flag.detail.contains("is not the file shard 2/3 kept for that cell") && flag.detail.contains("swapped or changed"), "{flag:?}");
    }
}

#[test]
fn bad_shard_values_are_refused_with_the_fix() {
    let tmp = folder("bad");
    for (bad, says) in [("0/2", "numbered from 1 to 2"), ("3/2", "numbered from 1 to 2"), ("1/0", "at least 1"), ("2", "is not I/N"), ("a/b", "is not I/N")] {
        let out = tmp.path().join("out");
        let e = refused(&run(Path::new("scenarios/quick.yaml"), Some(bad), &out, &[]));
        assert!(e.contains(&format!("--shard `{bad}`")) && e.contains(says), "{bad}: {e}");
        assert!(!out.exists(), "{bad}: nothing is run");
    }
}

#[test]
fn a_shard_folder_resumes_as_its_shard() {
    let tmp = folder("resume");
    let dir = tmp.path();
    let a = small(dir, "a", 2);
    let out = dir.join("s2");
    ok(&run(&a, Some("2/2"), &out, &[]));
    let first = read_results(&out.join("results.json")).unwrap();
    // Cut short after its first cell, as a killed run leaves it.
    let mut cut = first.clone();
    cut.complete = false;
    cut.finished_at = None;
    let last = cut.cells.len() - 1;
    cut.cells[last] = xbench::results::CellRecord { status: Status::Pending, summary: None, samples_ms: vec![], agreement: None, flags: vec![], ..cut.cells[last].clone() };
    xbench::results::write_json(&out.join("results.json"), &cut).unwrap();
    let kept = out.join(format!("outputs/cell-{last}.safetensors"));
    std::fs::remove_file(&kept).unwrap();

    let e = refused(&xbench().arg("scenario").arg(&a).args(["--quiet", "--shard", "1/2", "--resume"]).arg(&out).output().unwrap());
    assert!(e.contains("holds shard 2/2") && e.contains("--shard 2/2"), "{e}");
    ok(&xbench().arg("scenario").arg(&a).args(["--quiet", "--resume"]).arg(&out).output().unwrap());
    let done = read_results(&out.join("results.json")).unwrap();
    assert!(done.complete && done.resumed_at.len() == 1);
    // The cell run again kept new outputs, recorded by their own digest; the rest is the same shard.
    let (mut now, mut then) = (done.shard.clone().unwrap(), first.shard.clone().unwrap());
    assert_eq!(now.kept_digests.keys().collect::<Vec<_>>(), then.kept_digests.keys().collect::<Vec<_>>(), "every kept file recorded");
    let digest = xbench::digest::file(&kept).unwrap().1;
    assert_eq!(now.kept_digests[&last], format!("{digest:016x}"), "the digest of the file the resumed run kept");
    (now.kept_digests, then.kept_digests) = Default::default();
    assert_eq!(now, then, "still shard 2/2 of the same plan");
    assert_eq!(cells(&done), cells(&first));
    assert_eq!(done.cells[0].samples_ms, first.cells[0].samples_ms, "the finished cell is kept");
    assert_ne!(done.cells[last].samples_ms, first.cells[last].samples_ms, "the cut cell ran again");
    assert!(kept.is_file(), "the cut cell's outputs are kept again for the merge");
}

#[test]
fn a_model_and_its_sibling_on_different_shards_are_compared_when_merged() {
    let tmp = folder("siblings");
    let root = tmp.path();
    let fp32 = root.join("models/tiny-bert");
    std::fs::create_dir_all(&fp32).unwrap();
    for f in ["model.onnx", "model.yaml", "tokenizer.json"] {
        std::fs::copy(Path::new("models/tiny-bert").join(f), fp32.join(f)).unwrap();
    }
    let fp16 = root.join("models/tiny-bert-fp16");
    ok(&xbench().args(["make-tiny-bert", "--fp16", "--out"]).arg(&fp16).output().unwrap());
    std::fs::copy(fp32.join("tokenizer.json"), fp16.join("tokenizer.json")).unwrap();
    std::fs::write(fp16.join("model.yaml"), "architecture: bert\nweights: random\ncompare_with: tiny-bert\n").unwrap();
    let scenario = root.join("s.yaml");
    std::fs::write(&scenario, "name: sib\nmodels: [tiny-bert, tiny-bert-fp16]\nruntimes: [tract-cpu]\ninput_chars: [50]\nbatch_sizes: [1, 2]\niterations: 2\nwarmup: 0\n").unwrap();
    let models_dir = root.join("models");
    let models = ["--models-dir", models_dir.to_str().unwrap()];
    for i in 1..=2 {
        ok(&run(&scenario, Some(&format!("{i}/2")), &root.join(format!("s{i}")), &models));
    }
    ok(&run(&scenario, None, &root.join("whole"), &models));
    let s2 = read_results(&root.join("s2/results.json")).unwrap();
    assert!(s2.cells.iter().all(|c| c.model == "tiny-bert-fp16"), "the fp16 model runs on shard 2 alone");
    use xbench::results::FlagKind;
    let judged = |c: &xbench::results::CellRecord| c.sibling_agreement.is_some() || c.flags.iter().any(|f| matches!(f.kind, FlagKind::SiblingNotCompared | FlagKind::NotCompared | FlagKind::SiblingDisagrees));
    assert!(!s2.cells.iter().any(judged), "its comparison waits for the merge: {:?}", s2.cells[0]);

    ok(&report(&[root.join("s1/results.json"), root.join("s2/results.json")], &root.join("merged"), &[]));
    let m = read_results(&root.join("merged/results.json")).unwrap();
    let whole = read_results(&root.join("whole/results.json")).unwrap();
    assert_eq!(cells(&m), cells(&whole));
    for (a, b) in m.cells.iter().zip(&whole.cells).filter(|(a, _)| a.model == "tiny-bert-fp16") {
        let (got, want) = (a.sibling_agreement.as_ref().expect("compared with tiny-bert across shards"), b.sibling_agreement.as_ref().unwrap());
        assert_eq!((got.within_tolerance, got.runtime), (Some(true), want.runtime), "the same verdict as one run");
        let (g, w) = (got.max_abs.unwrap(), want.max_abs.unwrap());
        assert!(g > 0.0 && (g - w).abs() < 1e-5, "the same difference as one run: {g} against {w}");
    }
}
