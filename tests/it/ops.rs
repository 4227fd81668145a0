//! The operation benchmark: built graphs checked against outputs computed by hand (run in tract
//! on tiny shapes), bad shapes and bad `ops:` entries rejected with the case, key and fix, and a
//! small operation scenario end to end through the binary on both CPU runtimes.


use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;
use xbench::ops::{self, OpCase};
use xbench::results::{read_results, Status};
use xbench::runtimes::RuntimeId;
use xbench::resolve::{resolve, ResolveOptions, ResolvedPlan};
use xbench::scenario::{validate, Overrides, ScenarioFile};

use crate::common;

fn case(text: &str) -> OpCase {
    OpCase::parse(text).unwrap()
}

/// Runs the graph of `text` in tract on the given float inputs; returns its output as f32.
fn run(text: &str, inputs: &[(&[usize], Vec<f32>)]) -> (ModelProto, Vec<f32>) {
    let model = ops::build(&case(text)).unwrap();
    let bytes = xbench::onnx::builder::to_bytes(&model);
    let plan = tract_onnx::onnx().model_for_read(&mut bytes.as_slice()).unwrap().into_optimized().unwrap().into_runnable().unwrap();
    let feed: TVec<TValue> =
        inputs.iter().map(|(shape, data)| Tensor::from_shape(shape, data).unwrap().into()).collect();
    let out = plan.run(feed).unwrap().remove(0);
    let out = out.cast_to::<f32>().unwrap().to_plain_array_view::<f32>().unwrap().iter().copied().collect();
    (model, out)
}

fn init_i64(m: &ModelProto, name: &str) -> Vec<i64> {
    let t = m.graph.as_ref().unwrap().initializer.iter().find(|t| t.name == name).unwrap();
    t.raw_data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()
}

fn init_f32(m: &ModelProto, name: &str) -> Vec<f32> {
    let t = m.graph.as_ref().unwrap().initializer.iter().find(|t| t.name == name).unwrap();
    t.raw_data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

fn close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= 1e-5 + 1e-5 * w.abs(), "{got:?} vs {want:?}");
    }
}

#[test]
fn softmax_sums_and_bce_match_hand_computed_values() {
    let (l2, l3) = (2f32.ln(), 3f32.ln());
    let (_, y) = run("Softmax dim=2x3 axis=-1", &[(&[2, 3], vec![0.0, l2, l3, 1.0, 1.0, 1.0])]);
    close(&y, &[1.0 / 6.0, 1.0 / 3.0, 0.5, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0]);
    let (_, y) = run("Softmax dim=2x3 axis=0", &[(&[2, 3], vec![0.0, 0.0, 0.0, l3, 0.0, l2])]);
    close(&y, &[0.25, 0.5, 1.0 / 3.0, 0.75, 0.5, 2.0 / 3.0]);
    let (_, y) = run("SumAll dim=2x3", &[(&[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])]);
    close(&y, &[21.0]);
    let (_, y) = run("Sum dim=2x3 axis=0", &[(&[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])]);
    close(&y, &[5.0, 7.0, 9.0]);
    // BCE on logits: mean(softplus(x) − x·t); x = [0, 1], t = [1, 0] → (ln 2 + ln(1 + e)) / 2.
    let (_, y) = run("BCE dim=2 dim=2", &[(&[2], vec![0.0, 1.0]), (&[2], vec![1.0, 0.0])]);
    close(&y, &[(2f32.ln() + (1.0 + std::f32::consts::E).ln()) / 2.0]);
    // The same loss as −mean(t·log σ(x) + (1 − t)·log(1 − σ(x))) for a soft target.
    let (x, t) = (0.7f32, 0.25f32);
    let s = 1.0 / (1.0 + (-x).exp());
    let (_, y) = run("BCE dim=1 dim=1", &[(&[1], vec![x]), (&[1], vec![t])]);
    close(&y, &[-(t * s.ln() + (1.0 - t) * (1.0 - s).ln())]);
}

#[test]
fn sort_argmax_and_activations_match_hand_computed_values() {
    let (_, y) = run("Sort dim=2x3 axis=1", &[(&[2, 3], vec![3.0, 1.0, 2.0, 0.0, -1.0, 5.0])]);
    close(&y, &[1.0, 2.0, 3.0, -1.0, 0.0, 5.0]);
    let (_, y) = run("Sort dim=2x3 axis=0", &[(&[2, 3], vec![3.0, 1.0, 2.0, 0.0, -1.0, 5.0])]);
    close(&y, &[0.0, -1.0, 2.0, 3.0, 1.0, 5.0]);
    // Ties go to the first index.
    let (_, y) = run("Argmax dim=2x3 axis=1", &[(&[2, 3], vec![1.0, 3.0, 3.0, 5.0, 0.0, 5.0])]);
    close(&y, &[1.0, 0.0]);
    let (_, y) = run("LeakyReLU dim=3", &[(&[3], vec![-1.0, 0.0, 2.0])]);
    close(&y, &[-0.01, 0.0, 2.0]);
    let (alpha, scale) = (1.673_263_2f32, 1.050_701f32);
    let (_, y) = run("SeLU dim=2", &[(&[2], vec![1.0, -1.0])]);
    close(&y, &[scale, scale * alpha * ((-1f32).exp() - 1.0)]);
    let (m, y) = run("PReLU dim=4 dim=1", &[(&[4], vec![-2.0, -1.0, 0.0, 3.0])]);
    let s = init_f32(&m, "slope")[0];
    close(&y, &[-2.0 * s, -s, 0.0, 3.0]);
}

#[test]
fn scatter_gather_linear_and_conv_match_loops_over_their_initializers() {
    let ones = vec![1.0f32; 6];
    let updates: Vec<f32> = (1..=8).map(|v| v as f32).collect();
    for (family, start) in [("ScatterSum", 1.0f32), ("ScatterMax", 1.0), ("Scatter", 1.0)] {
        let rows_written = if family == "Scatter" { 3 } else { 4 };
        let text = format!("{family} dim=3x2 dim={rows_written}");
        let upd = &updates[..rows_written * 2];
        let (m, y) = run(&text, &[(&[3, 2], ones.clone()), (&[rows_written, 2], upd.to_vec())]);
        let idx = init_i64(&m, "indices");
        assert_eq!(idx.len(), rows_written);
        let mut want = vec![start; 6];
        for (i, &row) in idx.iter().enumerate() {
            for j in 0..2 {
                let (w, u) = (&mut want[row as usize * 2 + j], upd[i * 2 + j]);
                *w = match family {
                    "ScatterSum" => *w + u,
                    "ScatterMax" => w.max(u),
                    _ => u,
                };
            }
        }
        close(&y, &want);
        if family == "Scatter" {
            let mut distinct = idx.clone();
            distinct.sort();
            distinct.dedup();
            assert_eq!(distinct.len(), idx.len(), "rows written once each: {idx:?}");
        }
    }
    let data: Vec<f32> = (0..6).map(|v| v as f32).collect();
    let (m, y) = run("Gather dim=3x2 dim=5", &[(&[3, 2], data.clone())]);
    let want: Vec<f32> = init_i64(&m, "indices").iter().flat_map(|&r| data[r as usize * 2..r as usize * 2 + 2].to_vec()).collect();
    close(&y, &want);

    let x = [1.0f32, 2.0, 3.0, -1.0, 0.5, 4.0];
    let (m, y) = run("Linear dim=1x2x3 dim=3x2 dim=2", &[(&[1, 2, 3], x.to_vec())]);
    let (w, b) = (init_f32(&m, "weight"), init_f32(&m, "bias"));
    let mut want = Vec::new();
    for r in 0..2 {
        for o in 0..2 {
            want.push((0..3).map(|k| x[r * 3 + k] * w[k * 2 + o]).sum::<f32>() + b[o]);
        }
    }
    close(&y, &want);

    // Channels last as written (N×L×C = 1×4×1): the graph takes [1, 1, 4].
    let (m, y) = run("Conv1d dim=1x4x1 dim=1x2x1", &[(&[1, 1, 4], vec![1.0, 2.0, 3.0, 4.0])]);
    let w = init_f32(&m, "weight");
    close(&y, &[w[0] + 2.0 * w[1], 2.0 * w[0] + 3.0 * w[1], 3.0 * w[0] + 4.0 * w[1]]);
}

#[test]
fn bad_shapes_are_rejected_naming_the_case_and_the_fix() {
    for (text, needle) in [
        ("MatMul dim=2x3 dim=4x5", "inner dims differ"),
        ("MatMul dim=3 dim=3x4", "at least 2 dims"),
        ("Conv2d dim=1x2x2x3 dim=8x3x3x3", "kernel (3) exceeds the input (2)"),
        ("Conv1d dim=1x10x3 dim=8x3x4", "3 channels but the weight expects 4"),
        ("ReLU dim=0x3", "dim 0 of the input shape is 0 (zero)"),
        ("ReLU dim=4x-2", "dim 1 of the input shape is -2 (negative)"),
        ("Concat dim=2x3 dim=4x5 axis=0", "differ in dim 1"),
        ("Softmax dim=2x3 axis=2", "axis 2 is outside"),
        ("Sum dim=2x3", "needs an axis"),
        ("ReLU dim=2 axis=0", "takes no axis"),
        ("Softmax dim=2 dim=3", "takes 1 shape"),
        ("Linear dim=4x3 dim=2x5 dim=5", "not the weight's in-features"),
        ("Gather dim=4x3 dim=2x2", "one dim"),
        ("SumAll dim=100000x100000", "more than 2^31"),
    ] {
        let e = format!("{:#}", ops::build(&case(text)).expect_err(text));
        assert!(e.contains(needle), "{text}: {e}");
        assert!(e.contains(&format!("operation case `{}`", case(text).name())), "the error names the case: {e}");
        assert!(e.contains("fix:"), "{e}");
    }
}

/// The plan of `file` (from `origin`, in `dir`), resolved with its graphs written to a temporary folder.
fn resolved(f: &ScenarioFile, origin: &str, dir: &str) -> anyhow::Result<ResolvedPlan> {
    let ops = tempfile::tempdir()?;
    let p = validate(f, origin, dir.as_ref(), &Overrides::default())?;
    resolve(p, &ResolveOptions { models_root: "models".into(), ops_dir: Some(ops.path().to_path_buf()) })
}

fn plan(yaml: &str) -> anyhow::Result<ResolvedPlan> {
    resolved(&ScenarioFile::parse(yaml, "ops.yaml")?, "ops.yaml", ".")
}

const HEAD: &str = "name: o\nruntimes: [tract-cpu, ort-cpu]\niterations: 2\n";

#[test]
fn ops_scenarios_expand_to_one_cell_per_case_and_runtime() {
    let p = plan(&format!("{HEAD}ops: paper\n")).unwrap();
    assert_eq!(p.models.len(), 85);
    assert_eq!(p.plan.cells.len(), 170);
    assert!(p.plan.cells.iter().all(|c| c.chars == 0 && c.batch == 1 && ops::is_op(&c.model)));
    let names: Vec<String> = ops::paper_cases().iter().map(|c| c.case.name()).collect();
    assert_eq!(p.models.iter().map(|m| m.name.clone()).collect::<Vec<_>>(), names);
    assert!(p.models.iter().all(|m| m.tokenizer().is_none() && m.meta().description.is_some()));

    let p = plan(&format!("{HEAD}ops:\n  - paper: MatMul\n  - {{op: softmax, dims: [64, 1000], axis: 1}}\n  - \"Sort dim=8x4\"\n  - {{op: Gather, dims: [[64, 256], [10]]}}\n")).unwrap();
    let names: Vec<&str> = p.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names.len(), 6 + 3);
    assert_eq!(names[6..], ["op:Softmax dim=64x1000 axis=1", "op:Sort dim=8x4 axis=-1", "op:Gather dim=64x256 dim=10"]);

    let f = ScenarioFile::parse(&std::fs::read_to_string("scenarios/ops.yaml").unwrap(), "scenarios/ops.yaml").unwrap();
    let p = resolved(&f, "scenarios/ops.yaml", "scenarios").unwrap();
    assert_eq!((p.models.len(), p.runtimes.len(), p.plan.settings.iterations), (85, 4, 5));
}

#[test]
fn bad_ops_entries_name_the_key_the_value_and_the_fix() {
    for (ops, needle) in [
        ("everything", "`ops` = everything is not an operation list"),
        ("[]", "`ops` is empty"),
        ("\n  - {op: Softmaxx, dims: [2]}", "`ops[0].op` = Softmaxx is not one of the paper's operations"),
        ("\n  - {op: ReLU, dimz: [2]}", "`ops[0].dimz` is not a key"),
        ("\n  - {op: ReLU}", "`ops[0]` gives no `dims`"),
        ("\n  - {op: ReLU, dims: [2, x]}", "`ops[0].dims`"),
        ("\n  - {op: MatMul, dims: [[2, 3], [4, 5]]}", "inner dims differ"),
        ("\n  - {op: Sum, dims: [2, 3], axis: one}", "`ops[0].axis` = one is not a whole number"),
        ("\n  - paper: MatMul\n  - \"MatMul dim=64x1000000 dim=1000000x32\"", "`ops[1]` lists `op:MatMul dim=64x1000000 dim=1000000x32` again"),
        ("\n  - paper: \"MatMul dim=2x3 dim=3x4\"", "is not one of the paper's cases"),
        ("\n  - {paper: MatMul, axis: 1}", "gives `paper` with other keys"),
        ("\n  - \"Relu dim=0\"", "(zero)"),
    ] {
        let e = format!("{:#}", plan(&format!("{HEAD}ops: {ops}\n")).expect_err(ops));
        assert!(e.contains(needle), "{ops}: {e}");
        assert!(e.contains("fix:") && e.contains("ops.yaml"), "{e}");
    }
    let e = format!("{:#}", plan(&format!("{HEAD}ops: paper\nmodels: [tiny-bert]\n")).unwrap_err());
    assert!(e.contains("`models` is given together with `ops`") && e.contains("fix:"), "{e}");
    let e = format!("{:#}", plan(&format!("{HEAD}ops: paper\ninput_chars: [50]\n")).unwrap_err());
    assert!(e.contains("`input_chars`"), "{e}");
}

fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("xbench-ops-{name}-")).tempdir().unwrap()
}

#[test]
fn a_small_ops_scenario_runs_end_to_end_on_both_cpu_runtimes_and_they_agree() {
    let tmp = temp_dir("e2e");
    let dir = tmp.path();
    let yaml = "name: ops-small\nruntimes: [tract-cpu, ort-cpu, ort-coreml]\nwarmup: 1\niterations: 3\nops:\n  - {op: Softmax, dims: [16, 100]}\n  - {op: ScatterSum, dims: [[64, 16], [1000]]}\n  - \"Sort dim=32x64 axis=0\"\n";
    std::fs::write(dir.join("s.yaml"), yaml).unwrap();
    let out = common::xbench()
        .current_dir(dir)
        .args(["scenario", "s.yaml", "--quiet", "--out", "out"])
        .env("XBENCH_HOME", std::env::current_dir().unwrap().join(".xbench"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = read_results(&dir.join("out/results.json")).unwrap();
    assert_eq!(r.cells.len(), 9);
    let coreml_usable = r.runtimes.iter().any(|a| a.runtime == RuntimeId::ORT_COREML && a.usable);
    for c in r.cells.iter().filter(|c| c.runtime == RuntimeId::ORT_COREML && !coreml_usable) {
        assert_eq!(c.status, Status::Skipped, "an unusable runtime's cases are skipped with the reason: {c:?}");
        assert!(c.error.as_deref().is_some_and(|e| e.contains("CoreML")), "{c:?}");
    }
    for c in r.cells.iter().filter(|c| c.runtime != RuntimeId::ORT_COREML) {
        assert_eq!(c.status, Status::Ok, "{c:?}");
        assert!(ops::is_op(&c.model) && c.chars == 0 && c.batch == 1);
        assert_eq!(c.samples_ms.len(), 3);
        if c.runtime == RuntimeId::TRACT_CPU {
            let a = c.agreement.as_ref().expect("tract cells are compared with ort-cpu");
            assert!(a.agrees() && a.outputs[0].compared > 0, "{}: {a:?}", c.model);
        }
    }
    let sort = r.cells.iter().find(|c| c.model.starts_with("op:Sort") && c.runtime == RuntimeId::TRACT_CPU).unwrap();
    assert_eq!(sort.agreement.as_ref().unwrap().outputs.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), ["y"], "Sort compares its values only");
    assert_eq!(std::fs::read_dir(dir.join("out/.ops")).unwrap().count(), 3);
    let md = std::fs::read_to_string(dir.join("out/report.md")).unwrap();
    for needle in ["## Operations, every case (paper appendix A)", "## Operations, averaged per operation (paper appendix B)", "| ScatterSum dim=64x16 dim=1000 |", "ort-cpu vs tract-cpu", "0.01 · 0.03 · 0.04 · 0.02", "## How each operation is built"] {
        assert!(md.contains(needle), "report.md lacks {needle:?}:\n{md}");
    }
    assert!(!md.contains("## Detailed latency"), "no model tables in an operation run");
    if !coreml_usable {
        assert!(md.contains("- 3 operation cases on ort-coreml: skipped — "), "one line per skipped runtime:\n{md}");
    }
}
