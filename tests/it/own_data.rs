//! Models nobody here exported, on inputs that keep their meaning: a fixed sample of ONNX's own
//! backend node cases, each run on its own test data with its expected outputs as the reference;
//! and a small stateful model with control flow (an If on its sample-rate input, an LSTM on its
//! state input) whose scalar input is never made up and, set by the user, decides what it computes.

use crate::common::{self, repo};

use std::path::{Path, PathBuf};
use std::process::Command;

use xbench::results::{read_results, FlagKind, ModelInput, SavedOutputs, Status};
use xbench::runtimes::RuntimeId;

fn python(args: &[&str], pythonpath: &Path) -> String {
    let out = Command::new("python3").arg(repo("scripts/onnx_node_cases.py")).args(args).env("PYTHONPATH", pythonpath).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_sample_of_onnx_node_cases_runs_on_its_own_data_and_matches_its_expected_outputs_on_ort_cpu() {
    let env = common::python_env();
    let tmp = tempfile::tempdir().unwrap();
    let cases = tmp.path().join("cases");
    python(&["write", cases.to_str().unwrap(), "--sample", repo("scripts/onnx-node-sample.txt").to_str().unwrap()], &env);
    std::fs::write(tmp.path().join("cases.yaml"), python(&["scenario", cases.to_str().unwrap()], &env)).unwrap();
    let out = common::xbench()
        .current_dir(tmp.path())
        .args(["scenario", "cases.yaml", "--models-dir", "cases", "--out", "out", "--quiet", "--ignore-failures"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !stderr.contains("panicked"), "{stderr}");
    let r = read_results(&tmp.path().join("out/results.json")).unwrap();
    let n = r.models.len();
    assert!(n >= 150, "{n} cases");
    assert!(r.models.iter().all(|m| m.input == ModelInput::TestData), "every case runs on its own test data");

    // ort-cpu: the sample holds cases Python onnxruntime passes; xbench's ort-cpu must too.
    let (mut matched, mut empty) = (0, 0);
    let mut types = std::collections::BTreeSet::new();
    for c in r.cells.iter().filter(|c| c.runtime == RuntimeId::ORT_CPU) {
        assert_eq!(c.status, Status::Ok, "{}: {:?}", c.model, c.error);
        assert!(c.tokens.is_none() && c.summary.as_ref().unwrap().tokens_per_s.is_none());
        types.extend(c.fed.iter().map(|f| f.elem_type.to_string()));
        let e = c.expected.as_ref().unwrap_or_else(|| panic!("{} is compared with its expected outputs", c.model));
        match e.within_tolerance {
            Some(true) => matched += 1,
            // Outputs with no element (TopK with k = 0, an empty split) are not compared, never agreement.
            None if e.problems.is_empty() && e.outputs.iter().all(|o| o.compared == 0) => {
                assert!(c.has_flag(FlagKind::NotCompared), "{}", c.model);
                empty += 1
            }
            _ => panic!("{} differs from its expected outputs: {e:?}", c.model),
        }
    }
    assert_eq!(matched + empty, n);
    assert!(matched as f64 >= 0.95 * n as f64, "{matched} of {n} compared element by element");
    assert!(types.len() >= 13, "inputs of many element types are fed: {types:?}");

    // tract-cpu: a figure, not a target; whatever it cannot run says so, with a fix.
    let tract: Vec<_> = r.cells.iter().filter(|c| c.runtime == RuntimeId::TRACT_CPU).collect();
    for c in tract.iter().filter(|c| c.status == Status::Failed) {
        let e = c.error.as_deref().unwrap_or("");
        assert!(e.contains(&format!("model `{}`", c.model)) || e.contains("not supported by tract"), "{}: {e}", c.model);
        assert!(e.contains("\n  fix: "), "{}: {e}", c.model);
    }
    for c in tract.iter().filter(|c| c.expected.as_ref().is_some_and(|e| e.disagrees())) {
        assert!(c.has_flag(FlagKind::ExpectedDisagrees), "{}", c.model);
    }
    let tally = python(&["tally", tmp.path().join("out/results.json").to_str().unwrap()], &env);
    println!("{tally}");
    assert!(tally.contains(&format!("ort-cpu: {n} cases: match={matched}")), "{tally}");
}

/// `models/vad`: the committed stateful model with its two test data sets (16 kHz and 8 kHz).
fn vad_folder() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("models/vad");
    std::fs::create_dir_all(&dir).unwrap();
    let src = repo("tests/data/models/stateful-vad");
    for entry in walk(&src) {
        let to = dir.join(entry.strip_prefix(&src).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &to).unwrap();
    }
    tmp
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).unwrap().flat_map(|e| {
        let p = e.unwrap().path();
        if p.is_dir() { walk(&p) } else { vec![p] }
    }).collect()
}

fn scenario(dir: &Path, yaml: &str, code: i32) -> (xbench::results::RunResults, String) {
    std::fs::write(dir.join("s.yaml"), yaml).unwrap();
    let _ = std::fs::remove_dir_all(dir.join("out"));
    let out = common::xbench().current_dir(dir).args(["scenario", "s.yaml", "--quiet", "--out", "out"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    (read_results(&dir.join("out/results.json")).unwrap(), stderr)
}

#[test]
fn a_stateful_model_runs_on_its_test_data_and_its_scalar_input_is_never_made_up() {
    let tmp = vad_folder();
    let dir = tmp.path();
    // Its own test data: both sample rates, both runtimes, each judged against the expected outputs.
    let (r, _) = scenario(dir, "name: vad\nmodels: [vad]\nruntimes: [ort-cpu, tract-cpu]\niterations: 3\nwarmup: 1\n", 0);
    assert_eq!(r.cells.len(), 4);
    for c in &r.cells {
        assert_eq!(c.status, Status::Ok, "{c:?}");
        assert!(c.expected.as_ref().unwrap().agrees(), "{c:?}");
        let sr = c.fed.iter().find(|f| f.name == "sr").unwrap();
        assert_eq!((sr.elem_type.to_string().as_str(), sr.shape.as_slice()), ("int64", &[][..]));
        assert_eq!(sr.source, format!("test_data_set_{}/input_1.pb", c.data_set.unwrap()));
    }

    // On the scenario's grid, its sample rate is a single value xbench does not make up.
    let grid = "name: vad\nmodels: [vad]\nruntimes: [tract-cpu]\ninput_chars: [1]\nbatch_sizes: [2]\niterations: 2\nwarmup: 0\ntest_data: false\n";
    let (r, _) = scenario(dir, grid, 2);
    let e = r.cells[0].error.as_deref().unwrap();
    // It is compared with a rate to choose the If's branch: its value selects what is computed.
    assert!(e.contains("input `sr` (int64 [])") && e.contains("compared for equality (input 0) of Equal") && e.contains("`inputs: {sr: <value>}`"), "{e}");
    // Following the fix runs it.
    let (r, _) = scenario(dir, &format!("{grid}inputs: {{sr: 16000}}\n"), 0);
    let c = &r.cells[0];
    assert_eq!(c.status, Status::Ok, "{c:?}");
    assert_eq!(c.fed.iter().find(|f| f.name == "sr").unwrap().source, "16000 (the scenario's `inputs.sr`)");
}

/// Runs the vad model on tract in this process with `sr` set, the audio and state read from test
/// data set 0's files; returns its outputs.
fn vad_outputs(dir: &Path, sr: i64) -> Vec<xbench::tensor::Output> {
    use xbench::resolve::{resolve, ResolveOptions};
    use xbench::scenario::{validate, Overrides, ScenarioFile};
    let set = "models/vad/test_data_set_0";
    let yaml = format!(
        "name: vad\nmodels: [vad]\nruntimes: [tract-cpu]\ninput_chars: [1]\nbatch_sizes: [2]\niterations: 1\nwarmup: 0\ntest_data: false\ninputs: {{sr: {sr}, x: {{file: {set}/input_0.pb}}, state: {{file: {set}/input_2.pb}}}}\n"
    );
    let file = ScenarioFile::parse(&yaml, "s.yaml").unwrap();
    let plan = resolve(validate(&file, "s.yaml", dir, &Overrides::default()).unwrap(), &ResolveOptions { models_root: dir.join("models"), ops_dir: None }).unwrap();
    let outputs = dir.join(format!("outputs-{sr}"));
    std::fs::create_dir_all(&outputs).unwrap();
    let mut job = xbench::run::GroupJob::new(&plan, 0, plan.plan.cells.clone(), &Default::default(), &outputs).unwrap();
    job.outputs_dir = Some(outputs.clone());
    let mut cells = Vec::new();
    xbench::run::run_group(&job, &mut |m| if let xbench::results::RunEvent::Cell(c) = m { cells.push(c) }, &|| false);
    assert_eq!(cells[0].status, Status::Ok, "{:?}", cells[0].error);
    SavedOutputs::read(&outputs.join("cell-0.safetensors")).unwrap().outputs
}

#[test]
fn the_sample_rate_the_user_sets_decides_which_branch_the_model_computes() {
    let tmp = vad_folder();
    let dir = tmp.path();
    let io = xbench::models::read_io(&dir.join("models/vad/model.onnx")).unwrap();
    let expected = |n: usize| xbench::models::test_data::read_expected(&dir.join(format!("models/vad/test_data_set_{n}")), &io.outputs).unwrap();
    let close = |a: &[xbench::tensor::Output], b: &[xbench::tensor::Output]| {
        xbench::analysis::compare_outputs(a, b, "expected", 1, 1, &[1], Default::default()).agrees()
    };
    let (at16, at8) = (vad_outputs(dir, 16000), vad_outputs(dir, 8000));
    // Set 0 holds these very inputs at 16 kHz, set 1 the same audio and state at 8 kHz.
    assert!(close(&at16, &expected(0)) && !close(&at16, &expected(1)));
    assert!(close(&at8, &expected(1)) && !close(&at8, &expected(0)));
    assert!(!close(&at16, &at8), "another sample rate is another computation");
}

#[test]
fn a_quantized_model_is_recorded_as_int8_and_judged_by_the_int8_tolerance() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("models/tiny-bert-int8");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(repo("tests/data/models/tiny-bert-int8/model.onnx"), dir.join("model.onnx")).unwrap();
    std::fs::copy(repo("models/tiny-bert/tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    let (r, _) = scenario(tmp.path(), "name: q\nmodels: [tiny-bert-int8]\nruntimes: [ort-cpu, tract-cpu]\ninput_chars: [50, 500]\nbatch_sizes: [1, 8]\niterations: 2\nwarmup: 1\n", 0);
    assert_eq!(r.models[0].precision.as_str(), "int8");
    for c in r.cells.iter().filter(|c| c.runtime == RuntimeId::TRACT_CPU) {
        let a = c.agreement.as_ref().unwrap();
        assert_eq!((a.precision.map(|p| p.as_str()), a.tolerance), (Some("int8"), Some(xbench::scenario::Tolerance::INT8)));
        // Integer products are exact; the float steps around them round differently (measured 3.7e-4 at most here).
        assert!(a.agrees() && a.max_abs > 0.0 && a.max_abs < 1e-2, "{a:?}");
    }
}

/// Rewrites the name of the tensor in the ONNX TensorProto file at `path`.
fn rename_tensor(path: &Path, name: &str) {
    use prost::Message;
    let mut t = tract_onnx::pb::TensorProto::decode(std::fs::read(path).unwrap().as_slice()).unwrap();
    t.name = name.to_string();
    std::fs::write(path, t.encode_to_vec()).unwrap();
}

#[test]
fn test_data_is_matched_by_name_and_files_that_match_nothing_are_named() {
    let tmp = vad_folder();
    let dir = tmp.path();
    let set = dir.join("models/vad/test_data_set_1");
    let yaml = "name: vad\nmodels: [vad]\nruntimes: [tract-cpu]\niterations: 2\nwarmup: 0\n";
    // An unnamed tensor goes by its position, and the cell says so.
    rename_tensor(&set.join("input_1.pb"), "");
    let (r, _) = scenario(dir, yaml, 0);
    let sr = r.cells[1].fed.iter().find(|f| f.name == "sr").unwrap();
    assert_eq!(sr.source, "test_data_set_1/input_1.pb (unnamed: taken by position as `sr`)");
    assert!(r.cells[1].expected.as_ref().unwrap().agrees());
    // A named tensor that is no graph input: the model's cells fail, naming the file; exit 2.
    rename_tensor(&set.join("input_1.pb"), "rate");
    let (r, _) = scenario(dir, yaml, 2);
    assert!(r.cells.iter().all(|c| c.status == Status::Failed), "{:?}", r.cells);
    let e = r.cells[0].error.clone().unwrap();
    assert!(e.contains("test_data_set_1/input_1.pb: its tensor is named `rate`, which is no graph input (the graph's inputs: `x`, `sr`, `state`)") && e.contains("fix:"), "{e}");
    // An extra expected-output file is refused the same way, never left uncompared silently.
    rename_tensor(&set.join("input_1.pb"), "sr");
    std::fs::copy(set.join("output_0.pb"), set.join("output_2.pb")).unwrap();
    rename_tensor(&set.join("output_2.pb"), "");
    let (r, _) = scenario(dir, yaml, 2);
    let e = r.cells[0].error.clone().unwrap();
    assert!(e.contains("output_2.pb: its tensor has no name, and position 2 is past the graph's 2 outputs"), "{e}");
}

#[test]
fn expected_outputs_that_depart_count_once_per_data_set() {
    use prost::Message;
    let tmp = vad_folder();
    let dir = tmp.path();
    // Both data sets' first expected output shifted by 1: both runtimes agree, the files depart.
    for n in 0..2 {
        let path = dir.join(format!("models/vad/test_data_set_{n}/output_0.pb"));
        let mut t = tract_onnx::pb::TensorProto::decode(std::fs::read(&path).unwrap().as_slice()).unwrap();
        if t.raw_data.is_empty() {
            t.float_data.iter_mut().for_each(|v| *v += 1.0);
        } else {
            t.raw_data = t.raw_data.chunks(4).flat_map(|b| (f32::from_le_bytes(b.try_into().unwrap()) + 1.0).to_le_bytes()).collect();
        }
        std::fs::write(&path, t.encode_to_vec()).unwrap();
    }
    std::fs::write(dir.join("s.yaml"), "name: vad\nmodels: [vad]\nruntimes: [ort-cpu, tract-cpu]\niterations: 2\nwarmup: 0\n").unwrap();
    let out = common::xbench().current_dir(dir).args(["scenario", "s.yaml", "--out", "out"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let r = read_results(&dir.join("out/results.json")).unwrap();
    assert_eq!(r.cells.iter().filter(|c| c.has_flag(FlagKind::Departs)).count(), 4, "every cell of both sets is flagged");
    assert!(stdout.contains("2 depart from results that agree"), "two results departed, the two sets' expected outputs: {stdout}");
}
