//! Bad inputs through the real binary, one row per case: each gives an error that names the file,
//! the key or cell, the problem and the fix — and never a panic.
//!
//! Two outcomes. A configuration error found before anything runs is *refused*: exit code ≠ 0,
//! nothing written, the reason on stderr. A failure inside a cell (a tokenizer that does not
//! load, an input xbench cannot fill, a text too short for the length asked) is *recorded*: the
//! run goes on, exits 0, its summary line counts the failed cells, and each cell's `error` in
//! results.json says what went wrong and how to fix it.

use std::path::{Path, PathBuf};

use xbench::onnx::builder::{self, DataType, Dim, GraphBuilder};
use xbench::onnx::tiny_bert::{self, TinyBertConfig};
use xbench::results::{read_results, Status, FORMAT_VERSION};

use crate::common::{self, repo};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    /// Exit code ≠ 0 before anything runs; stderr names file, key, problem and fix.
    Refused,
    /// Exit code 0; every cell is recorded as failed, its `error` naming the problem and the fix.
    CellsFail,
}
use Outcome::*;

/// How xbench is started in the case's folder.
#[derive(Clone, Copy, Debug)]
enum Run {
    /// `xbench scenario FILE --no-setup --quiet --out out`.
    Scenario(&'static str),
    /// Any other command line.
    Args(&'static [&'static str]),
}
use Run::*;

struct Case {
    name: &'static str,
    /// Puts the bad input in place. The case's folder already holds `models/tiny-bert`, every
    /// file of tests/data/bad/, and tests/data/minimal-results.json.
    given: fn(&Path),
    run: Run,
    outcome: Outcome,
    /// Fragments the error must contain (besides `fix:`, which every error must have).
    says: &'static [&'static str],
}

const fn case(name: &'static str, given: fn(&Path), run: Run, outcome: Outcome, says: &'static [&'static str]) -> Case {
    Case { name, given, run, outcome, says }
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    // The scenario file itself.
    case("scenario file does not exist", nothing, Scenario("no-such-scenario.yaml"), Refused, &["no-such-scenario.yaml", "No such file"]),
    case("scenario file is empty", nothing, Scenario("empty.yaml"), Refused, &["empty.yaml", "the scenario file is empty", "`name`"]),
    case("scenario file is not UTF-8", nothing, Scenario("not-utf8.yaml"), Refused, &["not-utf8.yaml", "not UTF-8"]),
    case("malformed YAML", nothing, Scenario("malformed.yaml"), Refused, &["malformed.yaml", "line 3", "flow sequence", "YAML syntax"]),
    case("YAML that is not a mapping", nothing, Scenario("not-a-mapping.yaml"), Refused, &["not-a-mapping.yaml", "invalid type: sequence", "a mapping of keys"]),
    case("unknown key", nothing, Scenario("unknown-key.yaml"), Refused, &["unknown-key.yaml", "unknown field `batchsize`", "batch_sizes"]),
    case("wrong type", nothing, Scenario("wrong-type.yaml"), Refused, &["wrong-type.yaml", "iterations", "\"many\"", "whole numbers"]),
    case("alias bomb (billion laughs)", nothing, Scenario("alias-bomb.yaml"), Refused, &["alias-bomb.yaml", "models[0]", "invalid type"]),
    // The grid.
    case("empty grid", nothing, Scenario("empty-grid.yaml"), Refused, &["empty-grid.yaml", "`batch_sizes` is empty"]),
    case("no models", nothing, Scenario("no-models.yaml"), Refused, &["no-models.yaml", "`models` is empty", "xbench models"]),
    case("batch size 0", nothing, Scenario("batch-zero.yaml"), Refused, &["batch-zero.yaml", "`batch_sizes[1]` is 0", "at least 1"]),
    case("batch size 10^9", nothing, Scenario("batch-huge.yaml"), Refused, &["batch-huge.yaml", "`batch_sizes[0]` is 1000000000", "limit of 4096"]),
    case("negative batch size", nothing, Scenario("batch-negative.yaml"), Refused, &["batch-negative.yaml", "`batch_sizes[0]` is -8: negative"]),
    case("input of 0 characters", nothing, Scenario("chars-zero.yaml"), Refused, &["chars-zero.yaml", "`input_chars[0]` is 0"]),
    case("input of 10^7 characters", nothing, Scenario("chars-huge.yaml"), Refused, &["chars-huge.yaml", "`input_chars[1]` is 10000000", "limit of 100000"]),
    case("negative iterations", nothing, Scenario("iterations-negative.yaml"), Refused, &["iterations-negative.yaml", "`iterations` is -5", "`iterations: 10`"]),
    case("unknown runtime", nothing, Scenario("unknown-runtime.yaml"), Refused, &["unknown-runtime.yaml", "`runtimes[1]` = `tensorrt`", "ort-cpu"]),
    case("runtime listed twice", nothing, Scenario("runtime-twice.yaml"), Refused, &["runtime-twice.yaml", "`runtimes[1]`", "twice"]),
    case("unknown runtime on the command line", nothing, Args(&["scenario", "fine.yaml", "--no-setup", "--runtimes", "tract-cpu,onnx", "--out", "out"]), Refused, &["fine.yaml", "`--runtimes[1]` = `onnx`", "tract-cpu"]),
    case("reference runtime not run", nothing, Scenario("reference-not-run.yaml"), Refused, &["reference-not-run.yaml", "`reference` = `ort-cpu`", "tract-cpu"]),
    case("negative tolerance", nothing, Scenario("tolerance-negative.yaml"), Refused, &["tolerance-negative.yaml", "`tolerance.fp32`", "not negative"]),
    // Models: names and paths.
    case("unknown model", nothing, Scenario("unknown-model.yaml"), Refused, &["unknown-model.yaml", "`models[0]` = `bert-huge`", "no model `bert-huge`", "tiny-bert"]),
    case("models folder that does not exist", nothing, Args(&["scenario", "fine.yaml", "--no-setup", "--models-dir", "no-such-models", "--out", "out"]), Refused, &["fine.yaml", "`models[0]` = `tiny-bert`", "no-such-models", "does not exist", "--models-dir"]),
    case("model path with ../", nothing, Scenario("model-dotdot.yaml"), Refused, &["model-dotdot.yaml", "`models[0]` = `../secrets`", "leaves the models root"]),
    case("absolute model path", nothing, Scenario("model-absolute.yaml"), Refused, &["model-absolute.yaml", "`models[0]` = `/etc`", "leaves the models root"]),
    case("model folder symlinked out of the root", linked_folder, Scenario("model-symlink.yaml"), Refused, &["model-symlink.yaml", "`models[0]` = `linked`", "points outside the models root", "copy the model"]),
    case("ONNX file symlinked out of the root", linked_onnx, Scenario("broken-model.yaml"), Refused, &["broken-model.yaml", "`models[0]` = `broken`", "points outside the models root"]),
    // Models: files.
    case("model folder without an ONNX file", no_onnx, Scenario("broken-model.yaml"), Refused, &["broken-model.yaml", "`models[0]` = `broken`", "no .onnx file"]),
    case("model.yaml names a missing ONNX file", missing_onnx, Scenario("broken-model.yaml"), Refused, &["broken-model.yaml", "`broken`", "weights.onnx is missing", "model.yaml"]),
    case("zero-byte ONNX file", zero_byte_onnx, Scenario("broken-model.yaml"), Refused, &["broken-model.yaml", "`models[0]` = `broken`", "model.onnx", "empty (0 bytes)", "re-export"]),
    case("truncated ONNX file", truncated_onnx, Scenario("broken-model.yaml"), Refused, &["broken-model.yaml", "`models[0]` = `broken`", "model.onnx", "truncated or not ONNX"]),
    case("ONNX file that is not ONNX", text_as_onnx, Scenario("broken-model.yaml"), Refused, &["broken-model.yaml", "`models[0]` = `broken`", "model.onnx", "truncated or not ONNX"]),
    case("model.yaml with an unknown key", model_yaml_unknown_key, Scenario("broken-model.yaml"), Refused, &["broken-model.yaml", "model.yaml", "unknown field `colour`", "hub_id"]),
    case("model.yaml compare_with names no model", compare_with_missing, Scenario("broken-model.yaml"), Refused, &["broken-model.yaml", "`broken`", "model.yaml", "`compare_with: bert-huge` names no model", "one of [tiny-bert]", "remove `compare_with`"]),
    case("model.yaml compare_with names the model itself", compare_with_itself, Scenario("broken-model.yaml"), Refused, &["broken-model.yaml", "`compare_with: broken` names the model itself"]),
    case("model.yaml compare_with leaves the models root", compare_with_outside, Scenario("broken-model.yaml"), Refused, &["broken-model.yaml", "`compare_with: ../tiny-bert` is not a model name"]),
    case("model.yaml names a missing tokenizer", tokenizer_named_missing, Scenario("broken-model.yaml"), Refused, &["broken-model.yaml", "`broken`", "vocab.json is missing", "tokenizer:"]),
    // Models: what a cell cannot feed (recorded per cell; the run goes on).
    case("text model with an input that is a condition", unfillable_text_input, Scenario("broken-model.yaml"), CellsFail, &["model `broken`", "input `keep`", "the condition (input 0) of Where", "`inputs: {keep: <value>}`"]),
    case("generated input of a type xbench cannot make", unfillable_string_input, Scenario("broken-model.yaml"), CellsFail, &["model `broken`", "input `words`", "takes strings", "`inputs: {words: <text>}`"]),
    case("integer input one-hot encoded against a range", one_hot_bytes, Scenario("broken-model.yaml"), CellsFail, &["model `broken`", "input `bytes` (int32 [batch, 8])", "compared for equality (input 0) of Equal", "`inputs: {bytes: <value>}`", "{integers: [<lo>, <hi>]}"]),
    case("integer input into an embedding lookup", embedding_ids, Scenario("broken-model.yaml"), CellsFail, &["model `broken`", "input `ids` (int32 [batch, 8])", "the indices (input 1) of Gather", "`inputs: {ids: <value>}`"]),
    case("named dims whose product overflows", cube_input, Scenario("dims-overflow.yaml"), CellsFail, &["model `broken`", "input `voxels`", "[16777216, 16777216, 16777216]", "more than 2^31 elements", "smaller dims"]),
    case("text model without tokenizer.json", no_tokenizer, Scenario("broken-model.yaml"), CellsFail, &["model `broken`", "no tokenizer.json", "copy the model's tokenizer.json"]),
    case("corrupt tokenizer.json", corrupt_tokenizer, Scenario("broken-model.yaml"), CellsFail, &["cannot load tokenizer", "broken/tokenizer.json", "model's own tokenizer.json"]),
    case("tokenizer larger than the embedding", small_embedding, Scenario("broken-model.yaml"), CellsFail, &["model `broken`", "30522", "1000 rows", "word_embeddings", "tokenizer the model was exported with"]),
    case("tokenizer larger than the embedding, in one process", small_embedding, Args(&["scenario", "broken-model.yaml", "--no-setup", "--quiet", "--in-process", "--out", "out"]), CellsFail, &["model `broken`", "30522", "1000 rows"]),
    case("max_positions below the tokenizer's special tokens", one_position, Scenario("broken-model.yaml"), CellsFail, &["model `broken`", "rows of 4 tokens, more than its 1 positions", "`max_positions`", "model.yaml"]),
    // Text.
    case("text file missing", nothing, Scenario("text-missing.yaml"), Refused, &["text-missing.yaml", "`text_file` = `no-such-prose.txt`", "no such file"]),
    case("text file empty", nothing, Scenario("text-empty.yaml"), Refused, &["text-empty.yaml", "`text_file` = `empty.txt`", "is empty", "prose"]),
    case("text file not UTF-8", nothing, Scenario("text-latin1.yaml"), Refused, &["text-latin1.yaml", "`text_file` = `latin1.txt`", "not UTF-8", "offset 3", "iconv"]),
    case("text shorter than the input length", nothing, Scenario("text-short.yaml"), CellsFail, &["10 characters, fewer than the 50", "longer text"]),
    // Results files and output folders.
    case("newer results format given to report", nothing, Args(&["report", "results-v99.json", "--out", "rep"]), Refused, &["results-v99.json", "format version 99", "newer than this xbench reads ({FORMAT_VERSION})", "newer xbench"]),
    case("newer results format given to compare", nothing, Args(&["compare", "minimal-results.json", "results-v99.json"]), Refused, &["results-v99.json", "format version 99", "newer xbench"]),
    case("results file that is not JSON", nothing, Args(&["report", "short.txt", "--out", "rep"]), Refused, &["short.txt", "not a JSON results file", "results.json"]),
    case("results file that does not exist", nothing, Args(&["compare", "minimal-results.json", "no-such-results.json"]), Refused, &["no-such-results.json", "No such file"]),
    case("--out under a regular file", regular_file, Args(&["scenario", "fine.yaml", "--no-setup", "--quiet", "--out", "taken/out"]), Refused, &["taken/out", "cannot create the output folder", "Not a directory", "writable folder"]),
    case("--out that is a regular file", regular_file, Args(&["scenario", "fine.yaml", "--no-setup", "--quiet", "--out", "taken"]), Refused, &["--out `taken` is a file", "new or empty folder"]),
    case("report --out under a regular file", regular_file, Args(&["report", "minimal-results.json", "--out", "taken/rep"]), Refused, &["taken/rep", "Not a directory", "writable folder"]),
];

#[test]
fn every_bad_input_gets_a_clear_error_and_no_panic() {
    let mut names = std::collections::HashSet::new();
    assert!(CASES.iter().all(|c| names.insert(c.name)), "case names are distinct");
    let mut failures = Vec::new();
    let parent = tempfile::Builder::new().prefix("bad-inputs-").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    for (i, c) in CASES.iter().enumerate() {
        let root = case_dir(parent.path(), i);
        (c.given)(&root);
        let started = std::time::Instant::now();
        if let Err(why) = check(c, &root) {
            failures.push(format!("case {i} `{}`: {why}", c.name));
        } else if started.elapsed().as_secs() > 60 {
            failures.push(format!("case {i} `{}`: took {:?}", c.name, started.elapsed()));
        }
    }
    if !failures.is_empty() {
        // The failing cases' folders stay for a look.
        let kept = parent.keep();
        panic!("{} of {} cases failed (their folders are in {}):\n\n{}", failures.len(), CASES.len(), kept.display(), failures.join("\n\n"));
    }
}

/// Runs one case in `root` and checks what xbench said; `Err` explains what was wrong.
fn check(c: &Case, root: &Path) -> Result<(), String> {
    let mut cmd = common::xbench();
    cmd.current_dir(root).env("XBENCH_HOME", root.join(".xbench-none"));
    match c.run {
        Scenario(file) => cmd.args(["scenario", file, "--no-setup", "--quiet", "--out", "out"]),
        Args(args) => cmd.args(args),
    };
    let out = cmd.output().map_err(|e| format!("cannot start xbench: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let shown = format!("exit {:?}\n--- stdout\n{stdout}--- stderr\n{stderr}", out.status.code());
    if stderr.contains("panicked") || stdout.contains("panicked") {
        return Err(format!("xbench panicked\n{shown}"));
    }
    // `{FORMAT_VERSION}` in a fragment stands for the results format this xbench writes.
    let missing = |text: &str| -> Vec<&str> {
        c.says.iter().chain(&["fix:"]).copied().filter(|f| !text.contains(&f.replace("{FORMAT_VERSION}", &FORMAT_VERSION.to_string()))).collect()
    };
    match c.outcome {
        Refused => {
            if out.status.success() || out.status.code().is_none() {
                return Err(format!("expected a non-zero exit code\n{shown}"));
            }
            println!("[{}] exit {:?}\n{stderr}", c.name, out.status.code());
            let m = missing(&stderr);
            if !m.is_empty() {
                return Err(format!("stderr lacks {m:?}\n{shown}"));
            }
            if !stderr.starts_with("error: ") {
                return Err(format!("stderr should start with `error: `\n{shown}"));
            }
            // The problem first, then the fix: no cause may trail after a fix line.
            let after_fix = &stderr[stderr.find("\n  fix: ").unwrap_or(0)..];
            if after_fix.lines().skip(1).any(|l| !l.starts_with("  fix: ")) || after_fix.contains("os error") {
                return Err(format!("the fix lines should come last, after every cause\n{shown}"));
            }
            if !stdout.is_empty() || (matches!(c.run, Scenario(_)) && root.join("out/results.json").exists()) {
                return Err(format!("a refused command printed results or wrote them\n{shown}"));
            }
        }
        CellsFail => {
            // Like hyperfine: a finished run whose cells failed exits non-zero, and says how not to.
            if out.status.code() != Some(2) || !stderr.contains("--ignore-failures") {
                return Err(format!("expected exit code 2, the failure recorded and --ignore-failures named\n{shown}"));
            }
            let r = read_results(&root.join("out/results.json")).map_err(|e| format!("{e:#}\n{shown}"))?;
            let n = r.cells.len();
            let summary = format!("{n} cells: 0 ok, {n} failed, 0 skipped");
            if !r.complete || n == 0 || !stdout.contains(&summary) {
                return Err(format!("expected a complete run and the summary `{summary}`\n{shown}"));
            }
            println!("[{}] exit 0, {summary}; cell 0: {}\n", c.name, r.cells[0].error.as_deref().unwrap_or(""));
            for cell in &r.cells {
                let e = cell.error.as_deref().unwrap_or("");
                let m = missing(e);
                if cell.status != Status::Failed || !m.is_empty() {
                    return Err(format!("cell {} ({:?}) error lacks {m:?}: {e}\n{shown}", cell.index, cell.status));
                }
            }
        }
    }
    Ok(())
}

/// A fresh folder for case `i`, holding the committed tiny model and the bad-input data files.
fn case_dir(parent: &Path, i: usize) -> PathBuf {
    let root = parent.join(format!("case-{i:02}"));
    copy_dir(&repo("models/tiny-bert"), &root.join("models/tiny-bert"));
    copy_dir(&repo("tests/data/bad"), &root);
    std::fs::copy(repo("tests/data/minimal-results.json"), root.join("minimal-results.json")).unwrap();
    root
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

// ---- What each case puts in place ----

fn nothing(_: &Path) {}

/// `models/broken`: a copy of the tiny model (ONNX, tokenizer.json, model.yaml) to break.
fn broken(root: &Path) -> PathBuf {
    let dir = root.join("models/broken");
    copy_dir(&root.join("models/tiny-bert"), &dir);
    dir
}

/// A model folder for a model that takes no text: no tokenizer, no model.yaml naming one.
fn broken_without_text(root: &Path) -> PathBuf {
    let dir = broken(root);
    std::fs::remove_file(dir.join("tokenizer.json")).unwrap();
    std::fs::remove_file(dir.join("model.yaml")).unwrap();
    dir
}

fn linked_folder(root: &Path) {
    copy_dir(&root.join("models/tiny-bert"), &root.join("elsewhere/model"));
    std::os::unix::fs::symlink(root.join("elsewhere/model"), root.join("models/linked")).unwrap();
}

fn linked_onnx(root: &Path) {
    let dir = broken(root);
    std::fs::rename(dir.join("model.onnx"), root.join("outside.onnx")).unwrap();
    std::os::unix::fs::symlink(root.join("outside.onnx"), dir.join("model.onnx")).unwrap();
}

fn no_onnx(root: &Path) {
    let dir = broken(root);
    std::fs::remove_file(dir.join("model.onnx")).unwrap();
    std::fs::remove_file(dir.join("model.yaml")).unwrap();
}

fn missing_onnx(root: &Path) {
    let dir = broken(root);
    std::fs::write(dir.join("model.yaml"), "onnx: weights.onnx\n").unwrap();
}

fn zero_byte_onnx(root: &Path) {
    std::fs::write(broken(root).join("model.onnx"), b"").unwrap();
}

fn truncated_onnx(root: &Path) {
    let path = broken(root).join("model.onnx");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
}

fn text_as_onnx(root: &Path) {
    std::fs::write(broken(root).join("model.onnx"), "This is the README, saved under the wrong name.\n").unwrap();
}

fn model_yaml_unknown_key(root: &Path) {
    std::fs::copy(root.join("model-yaml-unknown-key.yaml"), broken(root).join("model.yaml")).unwrap();
}

fn compare_with_missing(root: &Path) {
    std::fs::write(broken(root).join("model.yaml"), "architecture: bert\ncompare_with: bert-huge\n").unwrap();
}

fn compare_with_itself(root: &Path) {
    std::fs::write(broken(root).join("model.yaml"), "compare_with: broken\n").unwrap();
}

fn compare_with_outside(root: &Path) {
    std::fs::write(broken(root).join("model.yaml"), "compare_with: ../tiny-bert\n").unwrap();
}

fn tokenizer_named_missing(root: &Path) {
    std::fs::write(broken(root).join("model.yaml"), "architecture: bert\ntokenizer: vocab.json\n").unwrap();
}

fn no_tokenizer(root: &Path) {
    let dir = broken(root);
    std::fs::remove_file(dir.join("tokenizer.json")).unwrap();
    std::fs::remove_file(dir.join("model.yaml")).unwrap();
}

fn corrupt_tokenizer(root: &Path) {
    std::fs::copy(root.join("tokenizer-truncated.json"), broken(root).join("tokenizer.json")).unwrap();
}

/// The tiny BERT with a 1000-row word embedding, beside bert-base-uncased's 30522-token tokenizer.
fn small_embedding(root: &Path) {
    let dir = broken(root);
    tiny_bert::write(&TinyBertConfig { vocab_size: 1000, ..TinyBertConfig::default() }, &dir).unwrap();
}

/// The tiny model's model.yaml saying it has 1 position: fewer than the special tokens its
/// tokenizer adds to every row, so no row can be truncated to it.
fn one_position(root: &Path) {
    let dir = broken(root);
    let yaml = std::fs::read_to_string(dir.join("model.yaml")).unwrap();
    std::fs::write(dir.join("model.yaml"), yaml.replace("max_positions: 512", "max_positions: 1")).unwrap();
}

/// A text model (it takes `input_ids`) with a second input that text cannot fill.
fn unfillable_text_input(root: &Path) {
    let dir = broken(root);
    let bs = [Dim::sym("batch"), Dim::sym("sequence")];
    let mut g = GraphBuilder::new("extra_input");
    let ids = g.input("input_ids", DataType::Int64, &bs);
    let keep = g.input("keep", DataType::Bool, &bs);
    let ids = g.node("Cast", &[&ids], vec![builder::attr_int("to", DataType::Float as i64)]);
    g.node_named("Where", &[&keep, &ids, &ids], vec![], &["y"]);
    g.output("y", DataType::Float, &bs);
    builder::write(&g.finish(17).unwrap(), &dir.join("model.onnx")).unwrap();
}

/// A model that does not take text, with a string input xbench cannot make up.
fn unfillable_string_input(root: &Path) {
    let dir = broken_without_text(root);
    let shape = [Dim::sym("batch"), Dim::Fixed(4)];
    let mut g = GraphBuilder::new("string_input");
    let words = g.input("words", DataType::String, &shape);
    g.node_named("Identity", &[&words], vec![], &["y"]);
    g.output("y", DataType::String, &shape);
    builder::write(&g.finish(17).unwrap(), &dir.join("model.onnx")).unwrap();
}

/// A byte classifier's first layer: int32 bytes, broadcast and compared against a range of 256
/// (a one-hot), cast and multiplied into a weight. Bytes of 0 or 1 would leave 254 rows unused.
fn one_hot_bytes(root: &Path) {
    let dir = broken_without_text(root);
    let mut g = GraphBuilder::new("one_hot");
    let bytes = g.input("bytes", DataType::Int32, &[Dim::sym("batch"), Dim::Fixed(8)]);
    let shape = g.init_i64("shape", &[3], vec![1, 8, 256]).unwrap();
    let range = g.init_raw("range", &[256], DataType::Int32, (0..256i32).flat_map(|i| i.to_le_bytes()).collect()).unwrap();
    let w = g.init_f32("w", &[256, 4], vec![0.25; 1024]).unwrap();
    let axes = g.init_i64("axes", &[1], vec![2]).unwrap();
    let column = g.node("Unsqueeze", &[&bytes, &axes], vec![]);
    let wide = g.node("Expand", &[&column, &shape], vec![]);
    let hot = g.node("Equal", &[&wide, &range], vec![]);
    let hot = g.node("Cast", &[&hot], vec![builder::attr_int("to", DataType::Float as i64)]);
    g.node_named("MatMul", &[&hot, &w], vec![], &["y"]);
    g.output("y", DataType::Float, &[Dim::sym("batch"), Dim::Fixed(8), Dim::Fixed(4)]);
    builder::write(&g.finish(17).unwrap(), &dir.join("model.onnx")).unwrap();
}

/// An embedding table looked up by int32 ids.
fn embedding_ids(root: &Path) {
    let dir = broken_without_text(root);
    let mut g = GraphBuilder::new("embedding");
    let ids = g.input("ids", DataType::Int32, &[Dim::sym("batch"), Dim::Fixed(8)]);
    let table = g.init_f32("table", &[100, 4], (0..400).map(|i| i as f32).collect()).unwrap();
    g.node_named("Gather", &[&table, &ids], vec![], &["y"]);
    g.output("y", DataType::Float, &[Dim::sym("batch"), Dim::Fixed(8), Dim::Fixed(4)]);
    builder::write(&g.finish(17).unwrap(), &dir.join("model.onnx")).unwrap();
}

/// A model that does not take text, with an input of three `height` dims.
fn cube_input(root: &Path) {
    let dir = broken_without_text(root);
    let shape = [Dim::sym("height"), Dim::sym("height"), Dim::sym("height")];
    let mut g = GraphBuilder::new("cube_input");
    let x = g.input("voxels", DataType::Float, &shape);
    g.node_named("Relu", &[&x], vec![], &["y"]);
    g.output("y", DataType::Float, &shape);
    builder::write(&g.finish(17).unwrap(), &dir.join("model.onnx")).unwrap();
}

fn regular_file(root: &Path) {
    std::fs::write(root.join("taken"), "a regular file where a folder is expected\n").unwrap();
}
