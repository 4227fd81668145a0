//! Property tests standing in for a fuzzer: the scenario parser and validator, the ONNX metadata
//! reader and generated inputs, fed arbitrary and mutated inputs, never panic and always answer
//! with a value or an error that says how to fix it.
//!
//! `cargo test` runs proptest's default number of cases; a long session:
//! `PROPTEST_CASES=200000 cargo test --release --test it fuzz::`.

use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_yaml::{Mapping, Value};

use xbench::inputs::Feed;
use xbench::models::{parse_io, Dim, IoInfo};
use xbench::resolve::{resolve, ResolveOptions};
use xbench::scenario::{validate, Overrides, ScenarioFile};

const ORIGIN: &str = "fuzz.yaml";

/// Parses and validates `yaml`; an error must name the file and carry a `fix:` line.
fn check_scenario(yaml: &str) -> Result<(), TestCaseError> {
    let opts = ResolveOptions { models_root: "models".into(), ops_dir: None };
    let result = ScenarioFile::parse(yaml, ORIGIN).and_then(|f| validate(&f, ORIGIN, ".".as_ref(), &Overrides::default())).and_then(|p| resolve(p, &opts));
    match result {
        Ok(p) => {
            let p = p.plan;
            let n = p.models.len() * p.runtimes.len() * p.input_chars.len() * p.batch_sizes.len();
            prop_assert_eq!(p.cells.len(), n);
            prop_assert!(n > 0 && p.settings.iterations > 0);
        }
        Err(e) => {
            let msg = format!("{e:#}");
            prop_assert!(msg.contains(ORIGIN) && msg.contains("\n  fix: "), "error without file or fix for {yaml:?}:\n{msg}");
        }
    }
    Ok(())
}

// ---- Scenario YAML ----

/// The scenario's keys, then keys of its nested maps (`tolerance`, `dims`).
const KEYS: &[&str] = &[
    "name", "models", "runtimes", "input_chars", "batch_sizes", "iterations", "warmup", "text", "text_file", "threads",
    "reference", "tolerance", "min_time_s", "dims", "ci_warn_share", "fp32", "fp16", "abs", "rel", "height",
];
const TOP_KEYS: usize = 15;

const WORDS: &[&str] = &[
    "tiny-bert", "tiny-bert/", "./tiny-bert", "tiny-bert/model.onnx", "tiny-bert/tokenizer.json", "tiny-bert/model.yaml",
    "../tiny-bert", "/etc", ".", "", "nope", "tract-cpu", "ort-cpu", "ort-cuda", "ort-coreml", "TRACT-CPU", "botchan",
    "Cargo.toml", "README.md", "src", "no-such.txt", "/etc/hostname", "fp32", "quick", " ", "\t", "~", "null",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![4 => prop::sample::select(KEYS).prop_map(String::from), 1 => "[a-z_]{1,12}"]
}

fn top_key() -> impl Strategy<Value = String> {
    prop_oneof![8 => prop::sample::select(&KEYS[..TOP_KEYS]).prop_map(String::from), 1 => key()]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![Just(0i64), Just(1), Just(-1), 1..600i64, Just(4096), Just(4097), Just(100_001), Just(1 << 24), Just(i64::MAX), Just(i64::MIN)]
            .prop_map(|v| Value::Number(v.into())),
        any::<i64>().prop_map(|v| Value::Number(v.into())),
        any::<u64>().prop_map(|v| Value::Number(v.into())),
        any_float().prop_map(|v| Value::Number(v.into())),
        prop::sample::select(WORDS).prop_map(|s| Value::String(s.into())),
        "\\PC{0,16}".prop_map(Value::String),
    ]
}

fn size() -> impl Strategy<Value = Value> {
    prop_oneof![3 => 1..300i64, 1 => -2..2i64, 1 => Just(4097i64), 1 => Just(100_001i64)].prop_map(|v| Value::Number(v.into()))
}

/// Values of the shapes a scenario takes (lists of sizes or names, maps of sizes) or any other.
fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        2 => prop::collection::vec(size(), 0..4).prop_map(Value::Sequence),
        2 => prop::collection::vec(prop::sample::select(WORDS).prop_map(|s| Value::String(s.into())), 0..4).prop_map(Value::Sequence),
        1 => prop::collection::vec((key(), size()), 0..3)
            .prop_map(|kv| Value::Mapping(kv.into_iter().map(|(k, v)| (Value::String(k), v)).collect())),
        1 => (prop::sample::select(&["fp32", "fp16", "fp8"][..]), any_float(), any_float()).prop_map(|(p, abs, rel)| tolerance(p, abs, rel)),
        4 => any_value(),
    ]
}

/// `{p: {abs: …, rel: …}}`.
fn tolerance(precision: &str, abs: f64, rel: f64) -> Value {
    let inner: Mapping = [(Value::from("abs"), Value::from(abs)), (Value::from("rel"), Value::from(rel))].into_iter().collect();
    Value::Mapping([(Value::from(precision), Value::Mapping(inner))].into_iter().collect())
}

fn any_float() -> impl Strategy<Value = f64> {
    prop_oneof![any::<f64>(), Just(f64::NAN), Just(f64::INFINITY), Just(-0.0), Just(1e-300), 0.0..5000.0f64]
}

fn any_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Sequence),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Mapping(kv.into_iter().map(|(k, v)| (Value::String(k), v)).collect())),
        ]
    })
}

fn good() -> Mapping {
    serde_yaml::from_str(
        "name: f\nmodels: [tiny-bert]\nruntimes: [tract-cpu, ort-cpu]\ninput_chars: [50, 100]\nbatch_sizes: [1, 4]\niterations: 5\nwarmup: 1\n",
    )
    .unwrap()
}

#[derive(Debug, Clone)]
enum Edit {
    Set(String, Value),
    Remove(String),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![3 => (top_key(), value()).prop_map(|(k, v)| Edit::Set(k, v)), 1 => top_key().prop_map(Edit::Remove)]
}

/// An edit of one key to a value of about the shape it takes, to get past the YAML types into
/// the plan's checks.
fn typed_edit() -> impl Strategy<Value = Edit> {
    let word = || prop::sample::select(WORDS).prop_map(|s| Value::String(s.into()));
    let words = || prop::collection::vec(word(), 0..4).prop_map(Value::Sequence);
    let sizes = || prop::collection::vec(size(), 0..4).prop_map(Value::Sequence);
    let float = || any_float().prop_map(|v| Value::Number(v.into()));
    let set = |k: &'static str| move |v: Value| Edit::Set(k.into(), v);
    prop_oneof![
        words().prop_map(set("models")),
        words().prop_map(set("runtimes")),
        sizes().prop_map(set("input_chars")),
        sizes().prop_map(set("batch_sizes")),
        size().prop_map(set("iterations")),
        size().prop_map(set("warmup")),
        size().prop_map(set("threads")),
        word().prop_map(set("name")),
        word().prop_map(set("text")),
        word().prop_map(set("text_file")),
        word().prop_map(set("reference")),
        float().prop_map(set("min_time_s")),
        float().prop_map(set("ci_warn_share")),
        prop::collection::btree_map("[a-z]{0,3}", size(), 0..3)
            .prop_map(|m| Value::Mapping(m.into_iter().map(|(k, v)| (Value::String(k), v)).collect()))
            .prop_map(set("dims")),
        (prop::sample::select(&["fp32", "fp16"][..]), any_float(), any_float())
            .prop_map(|(p, abs, rel)| tolerance(p, abs, rel))
            .prop_map(set("tolerance")),
    ]
}

/// YAML fragments that reach the parser's corners: flow and block collections, anchors and aliases,
/// tags, merges, directives, quotes, comments, indentation.
const TOKENS: &[&str] = &[
    "name:", "models:", "runtimes:", "input_chars:", "batch_sizes:", "iterations:", "dims:", "tolerance:", " ", "\n", "  ",
    "- ", "[", "]", "{", "}", ",", ":", "? ", "&a ", "*a", "&b ", "*b", "<<: ", "!!str ", "!!int ", "!!binary ", "!custom ",
    "|", ">", "'", "\"", "#", "---", "...", "%YAML 1.2", "%TAG ! tag:x,2000:", "tiny-bert", "tract-cpu", "1", "-1", "0x1F",
    "1e400", ".nan", "~", "\t", "\\u0000", "\u{feff}", "é",
];

/// Cases as proptest counts them (`PROPTEST_CASES`), failures kept in proptest-regressions/.
fn config() -> ProptestConfig {
    ProptestConfig { failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/fuzz.txt"))), ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn scenario_from_any_string(s in any::<String>()) {
        check_scenario(&s)?;
    }

    #[test]
    fn scenario_from_yaml_tokens(tokens in prop::collection::vec(prop::sample::select(TOKENS), 0..60)) {
        check_scenario(&tokens.concat())?;
    }

    #[test]
    fn scenario_from_random_keys_and_values(entries in prop::collection::vec((top_key(), value()), 0..12)) {
        let map: Mapping = entries.into_iter().map(|(k, v)| (Value::String(k), v)).collect();
        check_scenario(&serde_yaml::to_string(&map).unwrap())?;
    }

    #[test]
    fn scenario_from_a_good_one_with_edits(edits in prop::collection::vec(prop_oneof![3 => typed_edit(), 1 => edit()], 1..4)) {
        let mut map = good();
        for e in edits {
            match e {
                Edit::Set(k, v) => { map.insert(Value::String(k), v); }
                Edit::Remove(k) => { map.remove(k.as_str()); }
            }
        }
        check_scenario(&serde_yaml::to_string(&map).unwrap())?;
    }
}

// ---- ONNX metadata ----

fn tiny_bert() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| std::fs::read("models/tiny-bert/model.onnx").unwrap())
}

/// An offset into a file of `len` bytes, most often in its first or last 16 KiB, where the graph's
/// nodes, inputs, outputs and opsets lie (the weights in between are skipped by the reader).
fn offset(len: usize) -> impl Strategy<Value = usize> {
    let edge = 16 * 1024.min(len);
    prop_oneof![2 => 0..edge, 2 => (len - edge)..len, 1 => 0..len]
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    FlipBit(usize, u8),
    SetByte(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let len = tiny_bert().len();
    prop_oneof![
        1 => offset(len).prop_map(Mutation::Truncate),
        4 => (offset(len), 0..8u8).prop_map(|(o, b)| Mutation::FlipBit(o, b)),
        2 => (offset(len), any::<u8>()).prop_map(|(o, v)| Mutation::SetByte(o, v)),
        1 => (offset(len), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(o, v)| Mutation::Insert(o, v)),
        1 => (offset(len), 1..64usize).prop_map(|(o, n)| Mutation::Delete(o, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    match *m {
        Mutation::Truncate(o) => bytes.truncate(o),
        Mutation::FlipBit(o, b) if o < bytes.len() => bytes[o] ^= 1 << b,
        Mutation::SetByte(o, v) if o < bytes.len() => bytes[o] = v,
        Mutation::Insert(o, ref v) => {
            let o = o.min(bytes.len());
            bytes.splice(o..o, v.iter().copied());
        }
        Mutation::Delete(o, n) => {
            let o = o.min(bytes.len());
            bytes.drain(o..(o + n).min(bytes.len()));
        }
        _ => {}
    }
}

/// Reads metadata; an error must carry a fix, a success must be usable by the rest of xbench.
fn check_meta(bytes: &[u8]) -> Result<(), TestCaseError> {
    match parse_io(bytes) {
        Err(e) => {
            let msg = format!("{e:#}");
            prop_assert!(msg.contains("\n  fix: "), "error without a fix: {msg}");
        }
        Ok(io) => {
            let _ = io.precision();
            for i in io.inputs.iter().chain(&io.outputs) {
                let _ = i.shape_string();
            }
            if let Err(e) = xbench::inputs::InputPlan::by_name("m", &io.inputs, true) {
                prop_assert!(e.contains("model `m`") && e.contains("\n  fix: "), "{e}");
            }
            for i in &io.inputs {
                let _ = xbench::inputs::concrete_shape("m", i, 2, 8, &xbench::inputs::Dims::default());
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn onnx_meta_from_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        check_meta(&bytes)?;
    }

    #[test]
    fn onnx_meta_from_a_mutated_model(mutations in prop::collection::vec(mutation(), 1..6)) {
        let mut bytes = tiny_bert().to_vec();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        check_meta(&bytes)?;
    }
}

// ---- Generated inputs from declared shapes ----

fn dim() -> impl Strategy<Value = Dim> {
    prop_oneof![
        4 => (1..6i64).prop_map(Dim::Fixed),
        1 => prop_oneof![Just(0i64), Just(-1), Just(i64::MIN), (1i64 << 31)..i64::MAX].prop_map(Dim::Fixed),
        2 => prop::sample::select(&["batch", "sequence", "height", "width", "channels", ""][..]).prop_map(|s| Dim::Symbol(s.into())),
        1 => Just(Dim::Unknown),
    ]
}

fn io_info() -> impl Strategy<Value = IoInfo> {
    let ty = prop::sample::select(&["float32", "int64", "int32", "float16", "bool", "string", "type#99"][..]);
    (ty, prop::option::weighted(0.9, prop::collection::vec(dim(), 0..5)))
        .prop_map(|(t, dims)| IoInfo { name: "x".into(), elem_type: t.into(), dims, structural_use: None })
}

proptest! {
    #![proptest_config(config())]

    /// Whatever shape a graph declares, generated inputs are a tensor of that shape or an error
    /// with a fix — never a panic, an overflow or an allocation beyond the limit. Named dims come
    /// from the scenario (at most 2^24 each, as the plan allows).
    #[test]
    fn generated_inputs_from_any_declared_shape(
        inputs in prop::collection::vec(io_info(), 1..4),
        named in prop::collection::btree_map(prop::sample::select(&["height", "width", "channels"][..]).prop_map(String::from), prop_oneof![1..4usize, Just(1usize << 24)], 0..3),
        batch in 1..4usize,
        sequence in 1..8usize,
    ) {
        let named = xbench::inputs::Dims::scenario(&named);
        // Shapes within the limit but large would only be slow to fill: leave them out.
        for i in &inputs {
            if let Ok(shape) = xbench::inputs::concrete_shape("m", i, batch, sequence, &named) {
                let n = shape.iter().try_fold(1u128, |a, &d| a.checked_mul(d as u128));
                if matches!(n, Some(n) if n > 1 << 16 && n <= 1 << 31) {
                    return Ok(());
                }
            }
        }
        let plan = match xbench::inputs::InputPlan::by_name("m", &inputs, false) {
            Ok(plan) => plan,
            Err(msg) => {
                prop_assert!(msg.contains("model `m`") && msg.contains("\n  fix: "), "{msg}");
                return Ok(());
            }
        };
        match Feed::generated(&plan, batch, sequence, &named) {
            Ok(feed) => prop_assert_eq!(feed.tensors.len(), inputs.len()),
            Err(e) => {
                let msg = format!("{e:#}");
                prop_assert!(msg.contains("model `m`") && msg.contains("\n  fix: "), "{msg}");
            }
        }
    }
}
