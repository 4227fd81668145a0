//! Models nobody prepared: an image-like model with symbolic dims filled from the scenario, a
//! loose `.onnx` file with fixed dims, and a model with a dim xbench cannot fill — all built here.

use std::path::{Path, PathBuf};

use xbench::onnx::builder::{self, attr_int, DataType, Dim, GraphBuilder};
use xbench::results::{read_results, Status};
use xbench::runtimes::RuntimeId;

fn image_model(path: &Path) {
    let mut g = GraphBuilder::new("images");
    let dims = [Dim::sym("batch"), Dim::Fixed(3), Dim::sym("height"), Dim::sym("width")];
    let x = g.input("pixel_values", DataType::Float, &dims);
    let pooled = g.node("GlobalAveragePool", &[&x], vec![]);
    let flat = g.node("Flatten", &[&pooled], vec![attr_int("axis", 1)]);
    g.node_named("Relu", &[&flat], vec![], &["features"]);
    g.output("features", DataType::Float, &[Dim::sym("batch"), Dim::Fixed(3)]);
    builder::write(&g.finish(17).unwrap(), path).unwrap();
}

fn fixed_model(path: &Path) {
    let mut g = GraphBuilder::new("fixed");
    let x = g.input("x", DataType::Float, &[Dim::Fixed(2), Dim::Fixed(8)]);
    let w = g.init_f32("w", &[8, 4], (0..32).map(|i| (i as f32 - 16.0) / 16.0).collect()).unwrap();
    g.node_named("MatMul", &[&x, &w], vec![], &["y"]);
    g.output("y", DataType::Float, &[Dim::Fixed(2), Dim::Fixed(4)]);
    builder::write(&g.finish(17).unwrap(), path).unwrap();
}

fn setup(name: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("xbench-dropped-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("models/images")).unwrap();
    image_model(&root.join("models/images/model.onnx"));
    fixed_model(&root.join("models/fixed.onnx"));
    root
}

fn run(root: &Path, scenario: &str) -> xbench::results::RunResults {
    std::fs::write(root.join("s.yaml"), scenario).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xbench"))
        .current_dir(root)
        .args(["scenario", "s.yaml", "--quiet", "--out", "out"])
        .env("XBENCH_HOME", std::env::current_dir().unwrap().join(".xbench"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    read_results(&root.join("out/results.json")).unwrap()
}

#[test]
fn non_text_and_fixed_dim_models_run_on_both_runtimes_and_agree() {
    let root = setup("ok");
    let r = run(
        &root,
        "name: dropped\nmodels: [images, fixed.onnx]\nruntimes: [tract-cpu, ort-cpu]\ninput_chars: [4]\nbatch_sizes: [1, 2]\niterations: 3\nwarmup: 1\ndims: {height: 5, width: 6}\n",
    );
    assert_eq!(r.cells.len(), 2 * 2 * 2);
    for c in &r.cells {
        assert_eq!(c.status, Status::Ok, "{c:?}");
        if c.runtime == RuntimeId::OrtCpu {
            let a = c.agreement.as_ref().unwrap();
            assert!(a.within_tolerance && a.outputs[0].compared > 0, "{a:?}");
        }
    }
    assert!(r.models.iter().any(|m| m.name == "fixed" && m.tokenizer.is_none()));
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_dim_xbench_cannot_fill_fails_the_cells_naming_input_and_dim() {
    let root = setup("nodim");
    let r = run(&root, "name: nodim\nmodels: [images]\nruntimes: [tract-cpu]\ninput_chars: [4]\nbatch_sizes: [1]\niterations: 2\n");
    let c = &r.cells[0];
    assert_eq!(c.status, Status::Failed);
    let e = c.error.as_deref().unwrap();
    assert!(e.contains("`pixel_values`") && e.contains("`height`") && e.contains("dims:"), "{e}");
    std::fs::remove_dir_all(root).unwrap();
}
