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
    for entry in std::fs::read_dir("scenarios").unwrap() {
        let path = entry.unwrap().path();
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
