//! The committed tiny decoder (models/tiny-llama): its key/value cache gives the logits of a run
//! without it, left padding leaves a row's logits as they are alone, ONNX Runtime and tract agree,
//! and `xbench make-tiny-decoder` writes the committed files again.

use std::path::{Path, PathBuf};

use half::f16;
use ndarray::{ArrayD, IxDyn};
use xbench::inputs::Feed;
use xbench::onnx::builder;
use xbench::onnx::tiny_decoder::{self, TinyDecoderConfig};
use xbench::runtimes::{self, RuntimeId, RuntimeOptions, Session};
use xbench::scenario::RuntimeRequest;
use xbench::tensor::Tensor;

use crate::common::{repo, text, xbench};

const LAYERS: usize = 2;
const KV_HEADS: usize = 2;
const HEAD: usize = 16;
const VOCAB: usize = 259;
const TOL: f32 = 1e-4;

fn model() -> PathBuf {
    repo("models/tiny-llama/model.onnx")
}

fn load(runtime: RuntimeId, onnx: &Path) -> Box<dyn Session> {
    if runtime == RuntimeId::ORT_CPU {
        // The project copy of the CPU build of ONNX Runtime (fetched by the end-to-end tests if missing).
        let _ = runtimes::setup_ort(false);
    }
    let opts = RuntimeOptions { threads: Some(1), ..Default::default() };
    runtimes::load(&RuntimeRequest::named(runtime), onnx, &opts).unwrap_or_else(|e| panic!("{runtime} cannot load {}: {e:#}", onnx.display()))
}

/// One call of the decoder: `ids` and `positions` `[batch, sequence]`, `mask` `[batch, past +
/// sequence]`, and the cache (`2 × layers` tensors `[batch, kv_heads, past, head]`, float32 or
/// float16 as the model takes).
struct Call {
    batch: usize,
    ids: Vec<i64>,
    mask: Vec<i64>,
    positions: Vec<i64>,
    past: Vec<Tensor>,
}

impl Call {
    /// A prompt with no cache: every token real, positions from 0.
    fn prefill(batch: usize, ids: Vec<i64>, fp16: bool) -> Call {
        let seq = ids.len() / batch;
        let positions = (0..batch * seq).map(|k| (k % seq) as i64).collect();
        Call { batch, mask: vec![1; ids.len()], ids, positions, past: empty_cache(batch, fp16) }
    }

    fn feed(&self) -> Feed {
        let seq = self.ids.len() / self.batch;
        let int = |v: &[i64], cols: usize| Tensor::I64(ArrayD::from_shape_vec(IxDyn(&[self.batch, cols]), v.to_vec()).unwrap());
        let mut tensors = vec![
            ("input_ids".to_string(), int(&self.ids, seq)),
            ("attention_mask".to_string(), int(&self.mask, self.mask.len() / self.batch)),
            ("position_ids".to_string(), int(&self.positions, seq)),
        ];
        for (k, t) in self.past.iter().enumerate() {
            let kind = if k % 2 == 0 { "key" } else { "value" };
            tensors.push((format!("past_key_values.{}.{kind}", k / 2), t.clone()));
        }
        Feed { batch: self.batch, seq_len: seq, tensors, mask: vec![1; self.batch * seq], text: None, fed: Vec::new() }
    }
}

fn empty_cache(batch: usize, fp16: bool) -> Vec<Tensor> {
    let shape = IxDyn(&[batch, KV_HEADS, 0, HEAD]);
    (0..2 * LAYERS).map(|_| if fp16 { Tensor::F16(ArrayD::zeros(shape.clone())) } else { Tensor::F32(ArrayD::zeros(shape.clone())) }).collect()
}

fn floats(t: &Tensor) -> ArrayD<f32> {
    match t {
        Tensor::F32(a) => a.clone(),
        Tensor::F16(a) => a.mapv(f16::to_f32),
        other => panic!("float output expected, got {:?}", other.elem_type()),
    }
}

/// Runs one call: the logits as float32, and the presents as the model returned them.
fn run(s: &mut dyn Session, call: &Call) -> (ArrayD<f32>, Vec<Tensor>) {
    let feed = call.feed();
    s.prepare(&feed).unwrap();
    s.run(&feed).unwrap();
    let mut outputs = s.outputs(&feed).unwrap().into_iter();
    let logits = outputs.next().unwrap();
    assert_eq!(logits.name, "logits");
    let presents: Vec<_> = outputs.collect();
    let names: Vec<_> = presents.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["present.0.key", "present.0.value", "present.1.key", "present.1.value"]);
    (floats(&logits.data), presents.into_iter().map(|o| o.data).collect())
}

fn max_diff(a: ndarray::ArrayViewD<f32>, b: ndarray::ArrayViewD<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter().zip(b.iter()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Seven token ids of the tokenizer's byte range.
fn prompt(seed: u64, len: usize) -> Vec<i64> {
    let mut rng = builder::Rng::new(seed);
    (0..len).map(|_| 3 + rng.below(256) as i64).collect()
}

/// What the tests compare across runtimes: the last position's logits of the full run, of the
/// cached run, and of the padded row.
struct Seen {
    full: ArrayD<f32>,
    cached: ArrayD<f32>,
    padded_row: ArrayD<f32>,
}

/// Checks the cache and left padding on one runtime; returns what it computed.
fn check_runtime(runtime: RuntimeId, onnx: &Path, fp16: bool, tol: f32) -> Seen {
    let mut s = load(runtime, onnx);
    let s = s.as_mut();
    let ids = prompt(1, 7);

    // No cache: 7 tokens at once (past length 0).
    let (full, presents) = run(s, &Call::prefill(1, ids.clone(), fp16));
    assert_eq!(full.shape(), &[1, 7, VOCAB]);
    for p in &presents {
        assert_eq!(p.shape(), &[1, KV_HEADS, 7, HEAD], "{runtime}: a present holds past + new positions");
    }
    let full_last = full.slice(ndarray::s![0, 6, ..]).to_owned().into_dyn();

    // Prefill on 6, then one step with the returned presents as the past.
    let (_, past) = run(s, &Call::prefill(1, ids[..6].to_vec(), fp16));
    assert!(past.iter().all(|p| p.shape() == [1, KV_HEADS, 6, HEAD]));
    let step = Call { batch: 1, ids: vec![ids[6]], mask: vec![1; 7], positions: vec![6], past };
    let (cached, after) = run(s, &step);
    assert_eq!(cached.shape(), &[1, 1, VOCAB]);
    let cached = cached.slice(ndarray::s![0, 0, ..]).to_owned().into_dyn();
    let d = max_diff(full_last.view(), cached.view());
    println!("{runtime}: cached step vs full run: {d:e}");
    assert!(d <= tol, "{runtime}: the cached step's logits differ from the full run's by {d}");
    // The step's presents are the full run's, whose first 6 positions came in as the past.
    for (a, b) in after.iter().zip(&presents) {
        let d = max_diff(floats(a).view(), floats(b).view());
        assert!(d <= tol, "{runtime}: a present after the step differs from the full run's by {d}");
    }
    // The cache matters: the same step with a cache of zeros gives other logits.
    let zeros = step.past.iter().map(|p| match p {
        Tensor::F16(a) => Tensor::F16(ArrayD::zeros(a.raw_dim())),
        other => Tensor::F32(ArrayD::zeros(IxDyn(other.shape()))),
    });
    let (wrong, _) = run(s, &Call { past: zeros.collect(), ..step });
    assert!(max_diff(wrong.slice(ndarray::s![0, 0, ..]).into_dyn(), cached.view()) > 0.1, "{runtime}: the past does not change the step");

    // Batch 2, row 2 left-padded by two: its real positions' logits are its own unpadded run's.
    let short = prompt(2, 5);
    let mut ids2 = prompt(3, 7);
    ids2.extend([0, 0].iter().chain(&short));
    let padded = Call {
        batch: 2,
        ids: ids2,
        mask: [vec![1; 7], vec![0, 0], vec![1; 5]].concat(),
        positions: [(0..7).collect(), vec![1, 1], (0..5).collect()].concat(),
        past: empty_cache(2, fp16),
    };
    let (both, _) = run(s, &padded);
    let (alone, _) = run(s, &Call::prefill(1, short, fp16));
    let padded_row = both.slice(ndarray::s![1, 2.., ..]).to_owned().into_dyn();
    let d = max_diff(padded_row.view(), alone.slice(ndarray::s![0, .., ..]).into_dyn());
    println!("{runtime}: left-padded row vs its own run: {d:e}");
    assert!(d <= tol, "{runtime}: the left-padded row differs from its own run by {d}");
    assert!(padded_row.iter().all(|v| v.is_finite()));
    Seen { full: full_last, cached, padded_row }
}

fn agree(a: &Seen, b: &Seen, tol: f32) {
    for (what, x, y) in [("full", &a.full, &b.full), ("cached", &a.cached, &b.cached), ("padded", &a.padded_row, &b.padded_row)] {
        let d = max_diff(x.view(), y.view());
        println!("ort-cpu vs tract-cpu, {what} run: {d:e}");
        assert!(d <= tol, "ort-cpu and tract-cpu differ by {d} on the {what} run");
    }
}

#[test]
fn the_cache_and_left_padding_give_the_logits_of_plain_runs_on_ort_and_tract_alike() {
    let ort = check_runtime(RuntimeId::ORT_CPU, &model(), false, TOL);
    let tract = check_runtime(RuntimeId::TRACT_CPU, &model(), false, TOL);
    agree(&ort, &tract, TOL);
}

/// The fp16 model: float16 cache and logits, the same checks within float16's rounding.
#[test]
fn the_fp16_decoder_keeps_a_float16_cache_on_ort_and_tract() {
    let dir = tempfile::tempdir().unwrap();
    let onnx = tiny_decoder::write(&TinyDecoderConfig::default(), true, dir.path()).unwrap();
    let tol = 2e-2;
    let ort = check_runtime(RuntimeId::ORT_CPU, &onnx, true, tol);
    let tract = check_runtime(RuntimeId::TRACT_CPU, &onnx, true, tol);
    agree(&ort, &tract, tol);
    // Its weights are the fp32 model's, rounded: the logits stay close to the fp32 model's.
    let fp32 = check_runtime(RuntimeId::ORT_CPU, &model(), false, TOL);
    let d = max_diff(ort.full.view(), fp32.full.view());
    assert!(d < 0.1, "fp16 and fp32 logits differ by {d}");
}

#[test]
fn make_tiny_decoder_writes_the_committed_model_and_is_deterministic_per_seed() {
    let cfg = TinyDecoderConfig::default();
    let bytes = builder::to_bytes(&tiny_decoder::build(&cfg, false).unwrap());
    assert_eq!(bytes, builder::to_bytes(&tiny_decoder::build(&cfg, false).unwrap()), "two builds differ");
    assert_ne!(bytes, builder::to_bytes(&tiny_decoder::build(&TinyDecoderConfig { seed: 7, ..cfg.clone() }, false).unwrap()));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny");
    let o = xbench().args(["make-tiny-decoder", "--out"]).arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    for file in ["model.onnx", "config.json", "tokenizer.json"] {
        let committed = std::fs::read(repo("models/tiny-llama").join(file)).unwrap();
        assert!(std::fs::read(out.join(file)).unwrap() == committed, "models/tiny-llama/{file} is not what `xbench make-tiny-decoder` writes");
    }
    assert_eq!(std::fs::read(out.join("model.onnx")).unwrap(), bytes);
    // Another seed writes other weights; a model.onnx that xbench did not write is left alone.
    let o = xbench().args(["make-tiny-decoder", "--seed", "7", "--out"]).arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_ne!(std::fs::read(out.join("model.onnx")).unwrap(), bytes);
    std::fs::write(out.join("model.onnx"), b"someone's own model").unwrap();
    let o = xbench().args(["make-tiny-decoder", "--out"]).arg(&out).output().unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("model.onnx"), "{}", text(&o));
    assert_eq!(std::fs::read(out.join("model.onnx")).unwrap(), b"someone's own model");
}
