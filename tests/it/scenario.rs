//! Scenario files: every bad case gets an error naming the key, the value and the fix; the
//! plan's cell order is fixed.

use xbench::resolve::{resolve, ResolveOptions, ResolvedPlan};
use xbench::runtimes::{self, RuntimeId};
use xbench::scenario::{validate, Overrides, ScenarioFile};

const GOOD: &str = "
name: t
models: [tiny-bert]
runtimes: [tract-cpu, ort-cpu]
input_chars: [50, 200]
batch_sizes: [1, 4, 2]
iterations: 5
warmup: 1
";

/// Validates and resolves `f` (from `origin`), with the runtimes replaced when `runtimes` is given.
fn resolved(f: &ScenarioFile, origin: &str, runtimes: Option<Vec<String>>) -> anyhow::Result<ResolvedPlan> {
    let p = validate(f, origin, ".".as_ref(), &Overrides { runtimes })?;
    resolve(p, &ResolveOptions { models_root: "models".into(), ops_dir: None })
}

fn plan(yaml: &str) -> anyhow::Result<ResolvedPlan> {
    resolved(&ScenarioFile::parse(yaml, "test.yaml")?, "test.yaml", None)
}

/// The error for `yaml`, as printed (`{:#}` joins the context chain).
fn error(yaml: &str) -> String {
    format!("{:#}", plan(yaml).expect_err("should be rejected"))
}

fn with(key: &str, value: &str) -> String {
    GOOD.lines().map(|l| if l.starts_with(&format!("{key}:")) { format!("{key}: {value}") } else { l.to_string() }).collect::<Vec<_>>().join("\n")
}

#[test]
fn grid_order_is_model_runtime_chars_batch_as_listed() {
    let p = plan(GOOD).unwrap().plan;
    let order: Vec<(RuntimeId, usize, usize)> = p.cells.iter().map(|c| (c.runtime, c.chars, c.batch)).collect();
    let (tract, ort) = (RuntimeId::TRACT_CPU, RuntimeId::ORT_CPU);
    assert_eq!(
        order,
        vec![
            (tract, 50, 1), (tract, 50, 4), (tract, 50, 2),
            (tract, 200, 1), (tract, 200, 4), (tract, 200, 2),
            (ort, 50, 1), (ort, 50, 4), (ort, 50, 2),
            (ort, 200, 1), (ort, 200, 4), (ort, 200, 2),
        ]
    );
    assert!(p.cells.iter().enumerate().all(|(i, c)| c.index == i));
    assert_eq!(p.groups.len(), 2);
    assert_eq!((p.groups[1].first_cell, p.groups[1].cell_count), (6, 6));
    assert!(p.cells[6..].iter().all(|c| c.group == 1));
}

#[test]
fn runtimes_from_the_command_line_replace_the_files() {
    let f = ScenarioFile::parse(GOOD, "t").unwrap();
    let p = resolved(&f, "t", Some(vec!["ort-cpu".into()])).unwrap();
    assert_eq!(p.plan.runtime_ids(), vec![RuntimeId::ORT_CPU]);
    let e = format!("{:#}", resolved(&f, "t", Some(vec!["onnx".into()])).unwrap_err());
    assert!(e.contains("`--runtimes[0]`") && e.contains("`onnx`") && e.contains("tract-cpu"), "{e}");
}

#[test]
fn unknown_key_names_the_key_and_lists_the_right_ones() {
    let e = error(&format!("{GOOD}batchsize: [3]\n"));
    assert!(e.contains("test.yaml") && e.contains("unknown field `batchsize`"), "{e}");
    assert!(e.contains("fix:") && e.contains("batch_sizes"), "{e}");
}

#[test]
fn wrong_types_are_rejected_with_the_key() {
    let e = error(&with("batch_sizes", "sixteen"));
    assert!(e.contains("batch_sizes") && e.contains("invalid type"), "{e}");
    let e = error(&with("iterations", "[1, 2]"));
    assert!(e.contains("iterations") && e.contains("fix:"), "{e}");
}

#[test]
fn missing_keys_and_empty_files_are_rejected() {
    let e = error("name: t\nmodels: [tiny-bert]\n");
    assert!(e.contains("missing field") && e.contains("fix:"), "{e}");
    let e = error("   \n");
    assert!(e.contains("empty"), "{e}");
}

#[test]
fn empty_lists_name_the_key() {
    for key in ["models", "runtimes", "input_chars", "batch_sizes"] {
        let e = error(&with(key, "[]"));
        assert!(e.contains(&format!("`{key}` is empty")), "{key}: {e}");
        assert!(e.contains("fix:"), "{e}");
    }
}

#[test]
fn zero_negative_and_absurd_sizes_name_the_key_and_value() {
    for (key, value, needle) in [
        ("batch_sizes", "[1, 0]", "`batch_sizes[1]` is 0: zero"),
        ("batch_sizes", "[-16]", "`batch_sizes[0]` is -16: negative"),
        ("batch_sizes", "[1000000000]", "`batch_sizes[0]` is 1000000000: larger than the limit"),
        ("input_chars", "[0]", "`input_chars[0]` is 0"),
        ("input_chars", "[50, 50]", "`input_chars[1]` lists 50 twice"),
        ("iterations", "0", "`iterations` is 0"),
        ("iterations", "-3", "`iterations` is -3: negative"),
        ("warmup", "-1", "`warmup` is -1"),
    ] {
        let e = error(&with(key, value));
        assert!(e.contains(needle), "{key}={value}: {e}");
        assert!(e.contains("fix:"), "{e}");
    }
    let e = error(&format!("{GOOD}threads: 0\n"));
    assert!(e.contains("`threads` is 0"), "{e}");
}

#[test]
fn unknown_model_and_runtime_names_are_listed_with_the_alternatives() {
    let e = error(&with("models", "[bert-huge]"));
    assert!(e.contains("`models[0]` = `bert-huge`") && e.contains("no model `bert-huge`"), "{e}");
    assert!(e.contains("tiny-bert"), "the error should list the models found: {e}");
    let e = error(&with("runtimes", "[tract-cpu, tensorrt]"));
    assert!(e.contains("`runtimes[1]`") && e.contains("`tensorrt`") && e.contains("ort-cuda"), "{e}");
    let e = error(&with("runtimes", "[ort-cpu, ort-cpu]"));
    assert!(e.contains("twice"), "{e}");
}

#[test]
fn model_paths_must_stay_inside_the_models_root() {
    let e = error(&with("models", "[../etc/passwd]"));
    assert!(e.contains("leaves the models root"), "{e}");
    let e = error(&with("models", "[/etc/passwd]"));
    assert!(e.contains("leaves the models root"), "{e}");
}

#[test]
fn text_sources_are_checked() {
    let e = error(&format!("{GOOD}text: shakespeare\n"));
    assert!(e.contains("`text` = `shakespeare`") && e.contains("botchan"), "{e}");
    let e = error(&format!("{GOOD}text_file: no/such/file.txt\n"));
    assert!(e.contains("`text_file`") && e.contains("no such file"), "{e}");
    let e = error(&format!("{GOOD}text: botchan\ntext_file: x.txt\n"));
    assert!(e.contains("together"), "{e}");
}

#[test]
fn the_committed_scenarios_are_valid() {
    let files = ["scenarios", "scenarios/gpu"].iter().flat_map(|d| std::fs::read_dir(d).unwrap()).map(|e| e.unwrap().path());
    for path in files {
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let f = ScenarioFile::parse(&text, &path.display().to_string()).unwrap();
        // Models may not be exported on this machine; the file itself must parse and name known runtimes.
        for r in &f.runtimes {
            let request = r.request(".".as_ref()).unwrap_or_else(|(k, e)| panic!("{}: {k} {e}", path.display()));
            runtimes::lookup(&request).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
    assert_eq!(ScenarioFile::parse(xbench::scenario::EMBEDDED_DEFAULT, "embedded").unwrap().name, "quick");
}

/// Two image-like models whose input is called `x` (an orientation classifier and a text
/// recognizer, as in an OCR pipeline: `x` [batch, 3, height, width]) and a sequence model whose `x`
/// is [batch, width], built under `root/models`.
fn ocr_models(root: &std::path::Path) {
    use xbench::onnx::builder::{self, attr_int, DataType, Dim, GraphBuilder};
    for name in ["ocr-cls", "ocr-rec"] {
        let mut g = GraphBuilder::new(name);
        let x = g.input("x", DataType::Float, &[Dim::sym("batch"), Dim::Fixed(3), Dim::sym("height"), Dim::sym("width")]);
        let pooled = g.node("GlobalAveragePool", &[&x], vec![]);
        g.node_named("Flatten", &[&pooled], vec![attr_int("axis", 1)], &["y"]);
        g.output("y", DataType::Float, &[Dim::sym("batch"), Dim::Fixed(3)]);
        std::fs::create_dir_all(root.join("models").join(name)).unwrap();
        builder::write(&g.finish(17).unwrap(), &root.join("models").join(name).join("model.onnx")).unwrap();
    }
    let mut g = GraphBuilder::new("seq");
    let x = g.input("x", DataType::Float, &[Dim::sym("batch"), Dim::sym("width")]);
    g.node_named("Relu", &[&x], vec![], &["y"]);
    g.output("y", DataType::Float, &[Dim::sym("batch"), Dim::sym("width")]);
    std::fs::create_dir_all(root.join("models/seq")).unwrap();
    builder::write(&g.finish(17).unwrap(), &root.join("models/seq/model.onnx")).unwrap();
}

fn ocr_scenario(rest: &str) -> String {
    format!("name: ocr\nruntimes: [tract-cpu]\ninput_chars: [8]\nbatch_sizes: [2]\niterations: 2\nwarmup: 0\n{rest}\n")
}

fn ocr_plan(root: &std::path::Path, rest: &str) -> anyhow::Result<ResolvedPlan> {
    let file = ScenarioFile::parse(&ocr_scenario(rest), "ocr.yaml")?;
    let p = validate(&file, "ocr.yaml", root, &Overrides::default())?;
    resolve(p, &ResolveOptions { models_root: root.join("models"), ops_dir: None })
}

#[test]
fn a_scenario_wide_key_that_reaches_inputs_of_other_ranks_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    ocr_models(tmp.path());
    for (rest, key) in [
        ("models: [ocr-cls, seq]\ndims: {height: 48, x.1: 192}", "`dims.x.1`"),
        ("models: [ocr-cls, seq]\ndims: {height: 48, width: 16}\ninputs: {x: {shape: [2, 16]}}", "`inputs.x`"),
    ] {
        let e = format!("{:#}", ocr_plan(tmp.path(), rest).expect_err(rest));
        for says in ["ocr.yaml", key, "model `ocr-cls`", "float32 [batch, 3, height, width]", "model `seq`", "float32 [batch, width]", "differ in rank (4 and 2)", "fix: move it under the own entry", "- {name: ocr-cls,"] {
            assert!(e.contains(says), "{rest}: `{says}` missing from: {e}");
        }
    }
    // Under each model's own entry, the same values are fine; so is a key for one model only.
    let p = ocr_plan(tmp.path(), "models: [{name: ocr-cls, dims: {x.3: 192}}, {name: seq, dims: {x.1: 16}}]\ndims: {height: 48}").unwrap();
    assert_eq!(p.dims_of(0).model, [("x.3".to_string(), 192)].into());
    assert_eq!(p.dims_of(1).model, [("x.1".to_string(), 16)].into());
    assert_eq!(p.dims_of(1).scenario, [("height".to_string(), 48)].into());
    assert!(ocr_plan(tmp.path(), "models: [ocr-cls, ocr-rec]\ndims: {height: 48, x.3: 192}").is_ok(), "inputs of one rank and type may share a key");
}

#[test]
fn a_models_own_key_must_name_its_own_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    ocr_models(tmp.path());
    let e = format!("{:#}", ocr_plan(tmp.path(), "models: [seq, {name: ocr-cls, inputs: {pixels: {uniform: [0, 1]}}}]\ndims: {height: 48, width: 8}").unwrap_err());
    for says in ["ocr.yaml", "`models[1]` = `ocr-cls`", "its own `inputs.pixels` names no input of model `ocr-cls` (its inputs: `x`)", "fix: use one of those names under `models[1].inputs`"] {
        assert!(e.contains(says), "`{says}` missing from: {e}");
    }
    let e = format!("{:#}", ocr_plan(tmp.path(), "models: [{name: ocr-cls, dims: {height: 48, width: 8, pixels.3: 8}}]").unwrap_err());
    for says in ["`models[0].dims.pixels.3` names no dim of model `ocr-cls`", "its named dims: `batch`, `height`, `width`", "`x` [batch, 3, height, width]", "fix: "] {
        assert!(e.contains(says), "`{says}` missing from: {e}");
    }
    // A key another model has is still not this model's.
    let e = format!("{:#}", ocr_plan(tmp.path(), "models: [ocr-rec, {name: seq, dims: {width: 8, x.3: 8}}]\ndims: {height: 48, width: 8}").unwrap_err());
    assert!(e.contains("`models[1].dims.x.3` names no dim of model `seq`"), "{e}");
}

#[test]
fn each_model_is_fed_its_own_dims_and_the_cell_records_which_setting_set_each_axis() {
    use xbench::scenario::SetBy::{self, *};
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    ocr_models(root);
    // The classifier's width is the scenario's; the recognizer's own 320 wins over it; height 48
    // reaches both from the scenario; the recognizer's values are its own.
    let yaml = ocr_scenario("models: [ocr-cls, {name: ocr-rec, dims: {x.3: 320}, inputs: {x: {uniform: [0, 1]}}}]\ndims: {height: 48, x.3: 192}");
    std::fs::write(root.join("ocr.yaml"), &yaml).unwrap();
    let xbench = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_xbench")).current_dir(root).args(args).env("XBENCH_HOME", std::env::current_dir().unwrap().join(".xbench")).output().unwrap();
        assert!(out.status.success(), "xbench {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    xbench(&["scenario", "ocr.yaml", "--quiet", "--out", "out"]);
    let r = xbench::results::read_results(&root.join("out/results.json")).unwrap();
    let fed = |model: &str| r.cells.iter().find(|c| c.model == model).map(|c| c.fed[0].clone()).unwrap();
    let (cls, rec) = (fed("ocr-cls"), fed("ocr-rec"));
    assert_eq!((cls.shape.as_slice(), rec.shape.as_slice()), (&[2, 3, 48, 192][..], &[2, 3, 48, 320][..]));
    assert_eq!(cls.shape_by, [Batch, Fixed, Scenario, Scenario]);
    assert_eq!(rec.shape_by, [Batch, Fixed, Scenario, SetBy::Model]);
    assert_eq!((cls.values_by, rec.values_by), (Default, SetBy::Model));
    assert!(rec.source.contains("uniform [0, 1)") && rec.source.contains("`models[1].inputs.x`"), "{}", rec.source);
    // The file keeps the scenario as written, each model's own settings included.
    assert_eq!(r.scenario.models[1].dims(), [("x.3".to_string(), 320)].into());
    // The report says it where it lists what was fed.
    xbench(&["report", "out/results.json", "--out", "rep"]);
    let report = std::fs::read_to_string(root.join("rep/report.md")).unwrap();
    assert!(report.contains("`x` float32 [2, 3, 48, 320] from uniform [0, 1) (the scenario's `models[1].inputs.x`) (values: model; shape: batch, fixed, scenario, model)"), "{report}");
    // `xbench feeds` is fed what the cells were.
    xbench(&["feeds", "ocr.yaml", "--out", "feeds.json"]);
    let feeds: serde_json::Value = serde_json::from_slice(&std::fs::read(root.join("feeds.json")).unwrap()).unwrap();
    let shapes: Vec<(String, serde_json::Value)> = feeds.as_array().unwrap().iter().map(|f| (f["model"].as_str().unwrap().to_string(), f["inputs"][0]["shape"].clone())).collect();
    assert_eq!(shapes, [("ocr-cls".to_string(), serde_json::json!([2, 3, 48, 192])), ("ocr-rec".to_string(), serde_json::json!([2, 3, 48, 320]))]);
}
