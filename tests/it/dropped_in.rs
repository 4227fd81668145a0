//! Models nobody prepared: an image-like model with symbolic dims filled from the scenario, a
//! loose `.onnx` file with fixed dims, and a model with a dim xbench cannot fill — all built here.

use std::path::{Path, PathBuf};

use xbench::onnx::builder::{self, attr_int, DataType, Dim, GraphBuilder};
use xbench::results::Status;
use xbench::runtimes::RuntimeId;

use crate::common::{self, xbench, xbench_in};

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
    common::scenario(&mut xbench_in(root), root, scenario, &["--quiet"], code).results
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
    // `images` takes the batch size but no length; `fixed` takes neither: each such axis runs
    // once, at the size fed, and its cells say so.
    assert_eq!(r.cells.len(), 2 * 2 + 2);
    assert!(r.cells.iter().all(|c| c.chars == 0), "no input took a length");
    assert!(r.cells.iter().filter(|c| c.model == "fixed").all(|c| c.batch == 1 && c.fed[0].shape == [2, 8]));
    let note = |m: &str| r.models.iter().find(|x| x.name == m).unwrap().grid.clone().unwrap_or_default();
    assert!(note("images").contains("no input takes the length (`pixel_values` [batch, 3, height, width]): run once, at no length, not over `input_chars`"), "{}", note("images"));
    assert!(note("fixed").contains("no input takes the batch size (`x` [2, 8]): run once, at batch size 1, not over `batch_sizes`"), "{}", note("fixed"));
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
    for needle in ["model / input / batch", "images / no length / 2", "run once, at no length", "Inputs of models not fed from text", "`pixel_values` float32 [1, 3, 5, 6]"] {
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
    let out = xbench().current_dir(root).args(["scenario", "s.yaml", "--quiet", "--out", "out2"]).output().unwrap();
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
    assert_eq!((ext.flops_per_token, ext.precision().as_str()), (inline.flops_per_token, "fp32"));

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
    assert_eq!((io.weights_precision.as_str(), io.precision().as_str(), io.flops_per_token), ("fp16", "fp16", Some(2 * 64 * 64)));
    let r = run(root, "name: half\nmodels: [half]\nruntimes: [tract-cpu, ort-cpu]\ninput_chars: [4]\nbatch_sizes: [2]\niterations: 2\nwarmup: 1\n");
    assert!(r.cells.iter().all(|c| c.status == Status::Ok), "{:?}", r.cells);
    assert_eq!(r.models[0].precision.as_str(), "fp16");
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
        let out = xbench()
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
    let out = xbench().current_dir(&root).arg("models").output().unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("unreadable") && listing.contains("weights/tiny.bin"), "{listing}");
}

/// A convolution net over `x` [batch, 3, 8, 8].
fn conv_model(path: &Path) {
    let mut g = GraphBuilder::new("conv");
    let x = g.input("x", DataType::Float, &[Dim::sym("batch"), Dim::Fixed(3), Dim::Fixed(8), Dim::Fixed(8)]);
    let w = g.init_f32("w", &[4, 3, 3, 3], (0..108).map(|i| (i % 7) as f32 / 7.0 - 0.5).collect()).unwrap();
    let y = g.node("Conv", &[&x, &w], vec![]);
    let pooled = g.node("GlobalAveragePool", &[&y], vec![]);
    g.node_named("Flatten", &[&pooled], vec![attr_int("axis", 1)], &["scores"]);
    g.output("scores", DataType::Float, &[Dim::sym("batch"), Dim::Fixed(4)]);
    builder::write(&g.finish(17).unwrap(), path).unwrap();
}

/// A float32 `.npy` file of `shape`.
fn write_npy(path: &Path, shape: &[usize]) {
    let n: usize = shape.iter().product();
    let dims = shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ");
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims},), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend((0..n).flat_map(|i| ((i % 11) as f32 / 11.0).to_le_bytes()));
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_batch_the_inputs_do_not_take_is_run_once_and_labelled_as_fed() {
    let tmp = setup("batch-fed");
    let root = tmp.path();
    std::fs::create_dir_all(root.join("models/conv")).unwrap();
    conv_model(&root.join("models/conv/model.onnx"));
    write_npy(&root.join("x.npy"), &[1, 3, 8, 8]);
    let head = "name: fed\nmodels: [conv]\nruntimes: [tract-cpu, ort-cpu]\ninput_chars: [8, 16]\nbatch_sizes: [1, 4]\niterations: 3\nwarmup: 1\n";
    let items = |c: &xbench::results::CellRecord| {
        let s = c.summary.as_ref().unwrap();
        s.items_per_s * s.mean_ms / 1e3
    };
    // Fed by a file of one row: one cell per runtime, at batch 1, whatever `batch_sizes` says.
    let r = run(root, &format!("{head}inputs: {{x: {{file: x.npy}}}}\n"));
    assert_eq!(r.cells.len(), 2, "{:?}", r.cells.iter().map(|c| (c.chars, c.batch)).collect::<Vec<_>>());
    for c in &r.cells {
        assert_eq!((c.status, c.chars, c.batch, c.fed[0].shape.as_slice()), (Status::Ok, 0, 1, &[1, 3, 8, 8][..]), "{c:?}");
        assert!((items(c) - 1.0).abs() < 1e-9, "items/s counts the one row fed");
    }
    let grid = r.models[0].grid.clone().unwrap();
    assert!(grid.contains("no input takes the batch size (`x` is fed the file x.npy, [1, 3, 8, 8]): run once, at batch size 1, not over `batch_sizes`"), "{grid}");
    // Given a shape of two rows: batch 2, items/s twice the runs/s.
    let r = run(root, &format!("{head}inputs: {{x: {{shape: [2, 3, 8, 8]}}}}\n"));
    assert_eq!(r.cells.iter().map(|c| (c.batch, c.fed[0].shape[0])).collect::<Vec<_>>(), [(2, 2), (2, 2)]);
    assert!(r.cells.iter().all(|c| (items(c) - 2.0).abs() < 1e-9));
    let md = std::fs::read_to_string(root.join("out/report.md")).unwrap();
    assert!(md.contains("conv / no length / 2") && md.contains("run once, at batch size 2"), "{md}");
    // Generated, the batch takes the grid's sizes; the length (no input takes one) runs once.
    let r = run(root, head);
    assert_eq!(r.cells.iter().map(|c| (c.chars, c.batch, c.fed[0].shape[0])).collect::<Vec<_>>(), [(0, 1, 1), (0, 4, 4), (0, 1, 1), (0, 4, 4)]);
    assert!(r.cells.iter().all(|c| (items(c) - c.batch as f64).abs() < 1e-9));
}

/// `y = x · (Cast(w8) · scale − zero)`: int8 weights dequantized by hand, as weight-only
/// quantizers write them.
fn weight_only_int8(path: &Path) {
    let mut g = GraphBuilder::new("w8");
    let x = g.input("x", DataType::Float, &[Dim::sym("batch"), Dim::Fixed(8)]);
    let w = g.init_raw("w8", &[8, 4], DataType::Int8, (0..32).map(|i| (i as i8 * 7 - 100) as u8).collect()).unwrap();
    let scale = g.init_f32("scale", &[], vec![0.02]).unwrap();
    let zero = g.init_f32("zero", &[], vec![0.1]).unwrap();
    let wf = g.node("Cast", &[&w], vec![attr_int("to", 1)]);
    let scaled = g.node("Mul", &[&wf, &scale], vec![]);
    let shifted = g.node("Sub", &[&scaled, &zero], vec![]);
    g.node_named("MatMul", &[&x, &shifted], vec![], &["y"]);
    g.output("y", DataType::Float, &[Dim::sym("batch"), Dim::Fixed(4)]);
    builder::write(&g.finish(17).unwrap(), path).unwrap();
}

#[test]
fn weight_only_int8_is_int8_and_judged_as_such() {
    let tmp = setup("w8");
    let root = tmp.path();
    weight_only_int8(&root.join("models/w8.onnx"));
    let io = xbench::models::read_io(&root.join("models/w8.onnx")).unwrap();
    assert_eq!((io.precision().as_str(), io.flops_per_token), ("int8", Some(2 * 8 * 4)), "the weight is followed through Cast → Mul → Sub");
    let r = run(root, "name: w8\nmodels: [w8.onnx]\nruntimes: [tract-cpu, ort-cpu]\ninput_chars: [4]\nbatch_sizes: [2]\niterations: 2\nwarmup: 1\n");
    assert_eq!(r.models[0].precision.as_str(), "int8");
    let a = r.cells.iter().find(|c| c.runtime == RuntimeId::TRACT_CPU).unwrap().agreement.clone().unwrap();
    assert_eq!((a.precision.map(|p| p.as_str()), a.within_tolerance), (Some("int8"), Some(true)), "{a:?}");
    // A convolution net: FLOPs xbench cannot count are unknown, not 0.
    conv_model(&root.join("models/conv.onnx"));
    assert_eq!(xbench::models::read_io(&root.join("models/conv.onnx")).unwrap().flops_per_token, None);
}

#[test]
fn int4_and_fp8_weights_are_read_from_the_graph() {
    let dir = tempfile::tempdir().unwrap();
    // MatMulNBits (ONNX Runtime's 4-bit weights): int4, its FLOPs from K and N.
    let mut g = GraphBuilder::new("q4");
    let x = g.input("x", DataType::Float, &[Dim::sym("batch"), Dim::Fixed(64)]);
    let packed = g.init_raw("packed", &[16, 2, 16], DataType::Uint8, vec![0x88; 512]).unwrap();
    let scales = g.init_f32("scales", &[32], vec![0.01; 32]).unwrap();
    g.node_named("MatMulNBits", &[&x, &packed, &scales], vec![attr_int("K", 64), attr_int("N", 16), attr_int("bits", 4), attr_int("block_size", 32)], &["y"]);
    g.output("y", DataType::Float, &[Dim::sym("batch"), Dim::Fixed(16)]);
    let path = dir.path().join("q4.onnx");
    builder::write(&g.finish(17).unwrap(), &path).unwrap();
    let io = xbench::models::read_io(&path).unwrap();
    assert_eq!((io.precision().as_str(), io.flops_per_token), ("int4", Some(2 * 64 * 16)));
    // An fp8 weight dequantized into a MatMul.
    let mut g = GraphBuilder::new("f8");
    let x = g.input("x", DataType::Float, &[Dim::sym("batch"), Dim::Fixed(4)]);
    let w = g.init_raw("w", &[4, 4], DataType::Float8e4m3fn, vec![0x38; 16]).unwrap();
    let scale = g.init_f32("scale", &[], vec![0.5]).unwrap();
    let wf = g.node("DequantizeLinear", &[&w, &scale], vec![]);
    g.node_named("MatMul", &[&x, &wf], vec![], &["y"]);
    g.output("y", DataType::Float, &[Dim::sym("batch"), Dim::Fixed(4)]);
    let path = dir.path().join("f8.onnx");
    builder::write(&g.finish(19).unwrap(), &path).unwrap();
    let io = xbench::models::read_io(&path).unwrap();
    assert_eq!((io.precision().as_str(), io.flops_per_token), ("fp8", Some(2 * 4 * 4)));
    // A uint8 mask multiplied into the activations is no weight: fp32.
    let mut g = GraphBuilder::new("mask");
    let x = g.input("x", DataType::Float, &[Dim::Fixed(1), Dim::Fixed(4)]);
    let m = g.init_raw("m", &[1, 4], DataType::Uint8, vec![1, 0, 1, 1]).unwrap();
    let w = g.init_f32("w", &[4, 2], vec![0.5; 8]).unwrap();
    let mf = g.node("Cast", &[&m], vec![attr_int("to", 1)]);
    let masked = g.node("Mul", &[&x, &mf], vec![]);
    g.node_named("MatMul", &[&masked, &w], vec![], &["y"]);
    g.output("y", DataType::Float, &[Dim::Fixed(1), Dim::Fixed(2)]);
    let path = dir.path().join("mask.onnx");
    builder::write(&g.finish(17).unwrap(), &path).unwrap();
    assert_eq!(xbench::models::read_io(&path).unwrap().precision().as_str(), "fp32");
}

#[test]
fn a_dim_declared_minus_one_is_an_unnamed_dynamic_dim() {
    let tmp = setup("minus-one");
    let root = tmp.path();
    let mut g = GraphBuilder::new("m1");
    let x = g.input("x", DataType::Float, &[Dim::Fixed(-1), Dim::Fixed(4)]);
    g.node_named("Relu", &[&x], vec![], &["y"]);
    g.output("y", DataType::Float, &[Dim::Fixed(-1), Dim::Fixed(4)]);
    builder::write(&g.finish(17).unwrap(), &root.join("models/m1.onnx")).unwrap();
    let io = xbench::models::read_io(&root.join("models/m1.onnx")).unwrap();
    assert_eq!(io.inputs[0].shape_string(), "[?, 4]");
    let head = "name: m1\nmodels: [m1.onnx]\nruntimes: [tract-cpu]\ninput_chars: [4]\nbatch_sizes: [1]\niterations: 2\n";
    // Set by input and axis, as the error's fix says, or by a shape or a file of that rank.
    let r = run_exiting(root, head, 2);
    let e = r.cells[0].error.clone().unwrap();
    assert!(e.contains("dim 0 has no size and no name") && e.contains("dims: {x.0: 224}"), "{e}");
    let r = run(root, &format!("{head}dims: {{x.0: 3}}\n"));
    assert_eq!(r.cells[0].fed[0].shape, [3, 4]);
    let r = run(root, &format!("{head}inputs: {{x: {{shape: [5, 4]}}}}\n"));
    assert_eq!(r.cells[0].fed[0].shape, [5, 4]);
    write_npy(&root.join("x.npy"), &[2, 4]);
    let r = run(root, &format!("{head}inputs: {{x: {{file: x.npy}}}}\n"));
    assert_eq!((r.cells[0].status, r.cells[0].fed[0].shape.as_slice()), (Status::Ok, &[2, 4][..]));
}

#[test]
fn a_model_not_fed_text_is_shown_and_written_as_it_is_fed() {
    let tmp = setup("shown");
    let root = tmp.path();
    std::fs::create_dir_all(root.join("models/conv")).unwrap();
    conv_model(&root.join("models/conv/model.onnx"));
    write_npy(&root.join("x.npy"), &[1, 3, 8, 8]);
    std::fs::write(root.join("s.yaml"), "name: shown\nmodels: [conv]\nruntimes: [tract-cpu]\ninput_chars: [8]\nbatch_sizes: [1, 4]\niterations: 2\ninputs: {x: {file: x.npy}}\n").unwrap();
    let xbench = |args: &[&str]| xbench_in(root).args(args).output().unwrap();
    // The progress line names what the cell was fed, no tokens.
    let out = xbench(&["scenario", "s.yaml", "--out", "out"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("conv · tract-cpu · batch 1: mean") && stderr.contains("(x [1, 3, 8, 8])"), "{stderr}");
    assert!(!stderr.contains("tokens padded") && !stderr.contains("-0.0 s"), "{stderr}");
    // `xbench feeds` writes what it is fed, whatever it is.
    let out = xbench(&["feeds", "s.yaml", "--out", "feeds.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let feeds: serde_json::Value = serde_json::from_slice(&std::fs::read(root.join("feeds.json")).unwrap()).unwrap();
    let feeds = feeds.as_array().unwrap();
    assert_eq!(feeds.len(), 1, "{feeds:?}");
    let x = &feeds[0]["inputs"][0];
    assert_eq!((x["name"].as_str(), x["shape"].clone(), feeds[0]["batch"].as_u64()), (Some("x"), serde_json::json!([1, 3, 8, 8]), Some(1)));
    assert!(x["source"].as_str().unwrap().contains("x.npy") && x["data"].as_array().unwrap().len() == 192, "{x}");
    assert!(feeds[0]["tokens_per_row"].is_null());
}
