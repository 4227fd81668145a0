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

/// A folder holding `models/images` and `models/fixed.onnx`, removed when dropped.
fn setup(name: &str) -> tempfile::TempDir {
    let tmp = tempfile::Builder::new().prefix(&format!("xbench-dropped-{name}-")).tempdir().unwrap();
    let root = tmp.path();
    std::fs::create_dir_all(root.join("models/images")).unwrap();
    image_model(&root.join("models/images/model.onnx"));
    fixed_model(&root.join("models/fixed.onnx"));
    tmp
}

/// Runs `scenario` in `root`; its exit code must be `code` (0, or 2 when cells fail).
fn run_exiting(root: &Path, scenario: &str, code: i32) -> xbench::results::RunResults {
    std::fs::write(root.join("s.yaml"), scenario).unwrap();
    let _ = std::fs::remove_dir_all(root.join("out"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xbench"))
        .current_dir(root)
        .args(["scenario", "s.yaml", "--quiet", "--out", "out"])
        .env("XBENCH_HOME", std::env::current_dir().unwrap().join(".xbench"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(code), "{}", String::from_utf8_lossy(&out.stderr));
    read_results(&root.join("out/results.json")).unwrap()
}

fn run(root: &Path, scenario: &str) -> xbench::results::RunResults {
    run_exiting(root, scenario, 0)
}

#[test]
fn non_text_and_fixed_dim_models_run_on_both_runtimes_and_agree() {
    let tmp = setup("ok");
    let root = tmp.path();
    let r = run(
        root,
        "name: dropped\nmodels: [images, fixed.onnx]\nruntimes: [tract-cpu, ort-cpu]\ninput_chars: [4]\nbatch_sizes: [1, 2]\niterations: 3\nwarmup: 1\ndims: {height: 5, width: 6}\n",
    );
    assert_eq!(r.cells.len(), 2 * 2 * 2);
    for c in &r.cells {
        assert_eq!(c.status, Status::Ok, "{c:?}");
        if c.runtime == RuntimeId::TRACT_CPU {
            let a = c.agreement.as_ref().unwrap();
            assert!(a.agrees() && a.outputs[0].compared > 0, "{a:?}");
        }
        // A model that took no text reports what it was fed, and no tokens.
        assert!(c.tokens.is_none() && c.summary.as_ref().unwrap().tokens_per_s.is_none(), "{c:?}");
        assert_eq!(c.fed.len(), 1, "{c:?}");
        assert_eq!(c.fed[0].source, "generated: uniform [-1, 1)");
    }
    let images = r.cells.iter().find(|c| c.model == "images" && c.batch == 2).unwrap();
    assert_eq!((images.fed[0].name.as_str(), images.fed[0].shape.as_slice()), ("pixel_values", &[2, 3, 5, 6][..]));
    assert!(r.models.iter().any(|m| m.name == "fixed" && m.tokenizer.is_none()));
    assert!(r.models.iter().all(|m| m.input == xbench::results::ModelInput::Generated));
    let md = std::fs::read_to_string(root.join("out/report.md")).unwrap();
    for needle in ["model / input / batch", "images / length 4 / 2", "Inputs of models not fed from text", "`pixel_values` float32 [1, 3, 5, 6]"] {
        assert!(md.contains(needle), "report.md lacks {needle:?}:\n{md}");
    }
    assert!(!csv_has_tokens(root), "no tokens/s for models that took no tokens");
}

#[test]
fn a_dim_xbench_cannot_fill_fails_the_cells_naming_input_and_dim() {
    let tmp = setup("nodim");
    let root = tmp.path();
    let r = run_exiting(root, "name: nodim\nmodels: [images]\nruntimes: [tract-cpu]\ninput_chars: [4]\nbatch_sizes: [1]\niterations: 2\n", 2);
    let c = &r.cells[0];
    assert_eq!(c.status, Status::Failed);
    let e = c.error.as_deref().unwrap();
    assert!(e.contains("`pixel_values`") && e.contains("`height`") && e.contains("dims: {height: 224}"), "{e}");
    // Following the fix makes the error go away; a second one (width) is named the same way.
    let r = run_exiting(root, "name: nodim\nmodels: [images]\nruntimes: [tract-cpu]\ninput_chars: [4]\nbatch_sizes: [1]\niterations: 2\ndims: {height: 224}\n", 2);
    let e = r.cells[0].error.as_deref().unwrap();
    assert!(e.contains("`width`") && e.contains("dims: {width: 224}"), "{e}");
    let r = run(root, "name: nodim\nmodels: [images]\nruntimes: [tract-cpu]\ninput_chars: [4]\nbatch_sizes: [1]\niterations: 2\ndims: {height: 224, width: 224}\n");
    assert_eq!(r.cells[0].status, Status::Ok);
    // A dims key that names nothing is refused, naming the dims there are.
    std::fs::write(root.join("s.yaml"), "name: nodim\nmodels: [images]\nruntimes: [tract-cpu]\ninput_chars: [4]\nbatch_sizes: [1]\niterations: 2\ndims: {hieght: 224, width: 224}\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xbench")).current_dir(root).args(["scenario", "s.yaml", "--quiet", "--out", "out2"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code() == Some(1) && stderr.contains("`dims.hieght` names no dim") && stderr.contains("`height`, `width`"), "{stderr}");
}

/// Whether any row of out/results.csv has a tokens/s figure.
fn csv_has_tokens(root: &Path) -> bool {
    let mut rd = csv::Reader::from_path(root.join("out/results.csv")).unwrap();
    let col = rd.headers().unwrap().iter().position(|h| h == "tokens_per_s").unwrap();
    rd.records().any(|r| !r.unwrap()[col].is_empty())
}

/// `models/ext/`: the tiny BERT with its weights in `weights/tiny.bin` beside the graph, and the committed tokenizer.
fn external_model(root: &Path) -> PathBuf {
    let dir = root.join("models/ext");
    xbench::onnx::tiny_bert::write_external(&Default::default(), &dir, "weights/tiny.bin").unwrap();
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tiny-bert/tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    dir
}

#[test]
fn a_model_with_external_data_reads_as_the_same_graph_and_both_runtimes_agree() {
    let tmp = setup("external");
    let root = tmp.path();
    let dir = external_model(root);
    assert!(std::fs::metadata(dir.join("model.onnx")).unwrap().len() < 64 * 1024, "the graph holds no weights");

    // What xbench reads from the graph does not depend on where the weights are stored.
    let inline = xbench::models::read_io(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tiny-bert/model.onnx")).unwrap();
    let ext = xbench::models::read_io(&dir.join("model.onnx")).unwrap();
    assert!(ext.external_data() && !inline.external_data());
    assert_eq!(ext.external_files.len(), 1);
    assert_eq!(ext.external_files[0].location, "weights/tiny.bin");
    assert_eq!(ext.external_files[0].min_bytes, std::fs::metadata(dir.join("weights/tiny.bin")).unwrap().len());
    assert_eq!((ext.word_embedding_rows, ext.position_table_rows), (Some(30522), Some(512)));
    assert_eq!((&ext.inputs, &ext.outputs), (&inline.inputs, &inline.outputs));
    assert_eq!((ext.flops_per_token, ext.precision()), (inline.flops_per_token, "fp32"));

    let r = run(
        root,
        "name: ext\nmodels: [ext]\nruntimes: [tract-cpu, ort-cpu]\ninput_chars: [30, 120]\nbatch_sizes: [1, 3]\niterations: 2\nwarmup: 1\n",
    );
    assert_eq!(r.cells.len(), 8);
    for c in &r.cells {
        assert_eq!(c.status, Status::Ok, "{c:?}");
        if c.runtime == RuntimeId::TRACT_CPU {
            let a = c.agreement.as_ref().unwrap();
            assert!(a.agrees() && a.max_abs < 1e-4 && a.outputs.len() == 2, "{a:?}");
        }
    }
    assert_eq!(r.models[0].max_positions, Some(512));
}

#[test]
fn fp16_weights_in_an_external_data_file_are_read_as_fp16() {
    let tmp = setup("external-fp16");
    let root = tmp.path();
    let mut g = GraphBuilder::new("half");
    let x = g.input("x", DataType::Float, &[Dim::sym("batch"), Dim::Fixed(64)]);
    // 64×64 weights of 1.0 in float16 (0x3c00), stored externally, cast up before the product.
    let w = g.init_raw("w", &[64, 64], DataType::Float16, [0x00u8, 0x3c].repeat(64 * 64)).unwrap();
    let w = g.node("Cast", &[&w], vec![attr_int("to", DataType::Float as i64)]);
    g.node_named("MatMul", &[&x, &w], vec![], &["y"]);
    g.output("y", DataType::Float, &[Dim::sym("batch"), Dim::Fixed(64)]);
    std::fs::create_dir_all(root.join("models/half")).unwrap();
    builder::write_external(&g.finish(17).unwrap(), &root.join("models/half/model.onnx"), "model.onnx.data", 1024).unwrap();
    let io = xbench::models::read_io(&root.join("models/half/model.onnx")).unwrap();
    assert_eq!((io.weights_precision.as_str(), io.precision(), io.flops_per_token), ("fp16", "fp16", 2 * 64 * 64));
    let r = run(root, "name: half\nmodels: [half]\nruntimes: [tract-cpu, ort-cpu]\ninput_chars: [4]\nbatch_sizes: [2]\niterations: 2\nwarmup: 1\n");
    assert!(r.cells.iter().all(|c| c.status == Status::Ok), "{:?}", r.cells);
    assert_eq!(r.models[0].precision, "fp16");
    assert!(r.cells[0].agreement.as_ref().unwrap().agrees(), "tract-cpu against the reference, ort-cpu");
}

#[test]
fn a_missing_or_short_external_data_file_is_named() {
    let tmp = setup("external-missing");
    let root = tmp.path();
    let dir = external_model(root);
    let scenario = "name: ext\nmodels: [ext]\nruntimes: [tract-cpu, ort-cpu]\ninput_chars: [30]\nbatch_sizes: [1]\niterations: 2\n";
    std::fs::write(root.join("s.yaml"), scenario).unwrap();
    let refused = |says: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_xbench"))
            .current_dir(&root)
            .args(["scenario", "s.yaml", "--quiet", "--no-setup", "--out", "out"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && !root.join("out/results.json").exists(), "{stderr}");
        for s in says.iter().chain(&["`models[0]` = `ext`", "\n  fix: "]) {
            assert!(stderr.contains(s), "stderr lacks {s:?}: {stderr}");
        }
    };
    let data = dir.join("weights/tiny.bin");
    let bytes = std::fs::read(&data).unwrap();
    std::fs::write(&data, &bytes[..bytes.len() / 2]).unwrap();
    refused(&["weights/tiny.bin", &format!("holds {} bytes", bytes.len() / 2), &format!("need {}", bytes.len()), "truncated"]);
    std::fs::remove_file(&data).unwrap();
    refused(&["external data file `weights/tiny.bin`", "is missing: no file models/ext/weights/tiny.bin", "beside model.onnx"]);
    // `xbench models` lists the model with the same reason.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xbench")).current_dir(&root).arg("models").output().unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("unreadable") && listing.contains("weights/tiny.bin"), "{listing}");
}
