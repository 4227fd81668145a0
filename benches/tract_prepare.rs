//! tract's untimed preparation of each new shape: a grid of (batch, sequence) shapes fed one after
//! the other to one tract session, each shape new, as a scenario grid of one model feeds them.
//!
//! `cargo bench --bench tract_prepare [-- MODEL_DIR [SHAPES]]` prints the median, quartiles and
//! total of `prepare` per new shape (default: models/tiny-bert, 200 shapes), and the load time.
//! `cargo bench --bench tract_prepare -- make DIR` writes a model of BERT-base's architecture and
//! size (12 layers, hidden 768, random weights, 436 MB) with xbench's tiny-bert builder, to measure
//! at that size without an export.

use std::time::Instant;

use xbench::inputs::Feed;
use xbench::models::{find, read_io};
use xbench::runtimes::{self, RuntimeId, RuntimeOptions};
use xbench::scenario::RuntimeRequest;
use xbench::tensor::Tensor;

/// Token ids, a mask of ones and zeros elsewhere, for a BERT-like model's int64 inputs.
fn token_feed(inputs: &[xbench::models::IoInfo], batch: usize, sequence: usize) -> Feed {
    let tensors = inputs
        .iter()
        .map(|i| {
            let value = |k: usize| if i.name.contains("mask") { 1 } else if i.name == "input_ids" { 100 + (k * 37 % 1000) as i64 } else { 0 };
            let a = ndarray::ArrayD::from_shape_fn(vec![batch, sequence], |ix| value(ix[0] * sequence + ix[1]));
            (i.name.clone(), Tensor::I64(a))
        })
        .collect();
    Feed { batch, seq_len: sequence, tensors, mask: vec![1; batch * sequence], text: None, fed: Vec::new() }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if args.first().map(String::as_str) == Some("make") {
        let dir = std::path::PathBuf::from(args.get(1).expect("make DIR"));
        let cfg = xbench::onnx::tiny_bert::TinyBertConfig { hidden: 768, layers: 12, heads: 12, intermediate: 3072, ..Default::default() };
        let onnx = xbench::onnx::tiny_bert::write(&cfg, &dir).unwrap();
        println!("{} ({} bytes)", onnx.display(), std::fs::metadata(&onnx).unwrap().len());
        return;
    }
    let dir = std::path::PathBuf::from(args.first().map(String::as_str).unwrap_or("models/tiny-bert"));
    let shapes: usize = args.get(1).map(|n| n.parse().expect("SHAPES: a number")).unwrap_or(200);
    let name = dir.file_name().and_then(|n| n.to_str()).expect("a model folder").to_string();
    let model = find(&name, dir.parent().expect("a model folder inside a models folder")).unwrap();
    let io = read_io(&model.onnx).unwrap();
    let opts = RuntimeOptions { threads: Some(1), ..Default::default() };

    let t = Instant::now();
    let mut session = runtimes::load(&RuntimeRequest::named(RuntimeId::TRACT_CPU), &model.onnx, &opts).unwrap();
    let load_ms = t.elapsed().as_secs_f64() * 1e3;

    // Every shape new: batch 1..=8 by sequence 1.., in the order a grid's cells come.
    let mut ms = Vec::with_capacity(shapes);
    for k in 0..shapes {
        let (batch, sequence) = (1 + k % 8, 1 + k / 8);
        let feed = token_feed(&io.inputs, batch, sequence);
        let t = Instant::now();
        session.prepare(&feed).unwrap();
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        session.run(&feed).unwrap();
    }
    let total: f64 = ms.iter().sum();
    ms.sort_by(f64::total_cmp);
    let q = |p: f64| ms[((ms.len() - 1) as f64 * p).round() as usize];
    println!("{name}: {} ({} bytes), tract {}, 1 thread", model.onnx.display(), std::fs::metadata(&model.onnx).unwrap().len(), runtimes::TRACT_VERSION);
    println!("  load                      {load_ms:8.1} ms");
    println!("  prepare per new shape     median {:.2} ms, quartiles {:.2}–{:.2} ms, max {:.2} ms", q(0.5), q(0.25), q(0.75), q(1.0));
    println!("  prepare, all {shapes} shapes   {total:8.1} ms");
}
