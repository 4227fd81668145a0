//! xbench's own cost per iteration over a bare `ort` run loop, on a trivial model on the CPU:
//! the same session options, the same input, N iterations each, interleaved repetitions.
//!
//! `cargo bench --bench overhead` prints the bare and xbench times per iteration and the difference.

use std::collections::BTreeMap;
use std::time::Instant;

use ort::session::Session;
use ort::value::TensorRef;
use xbench::inputs::Feed;
use xbench::measure::{measure, MeasureSpec};
use xbench::models::{find, read_io};
use xbench::onnx::builder::{self, DataType, Dim, GraphBuilder};
use xbench::runtimes::{self, RuntimeId, RuntimeOptions};
use xbench::tensor::Tensor;

const N: usize = 20_000;
const REPEATS: usize = 7;

fn trivial_model(dir: &std::path::Path) {
    let mut g = GraphBuilder::new("trivial");
    let x = g.input("x", DataType::Float, &[Dim::Fixed(4), Dim::Fixed(16)]);
    let w = g.init_f32("w", &[16, 8], (0..128).map(|i| (i % 7) as f32 * 0.1).collect()).unwrap();
    let y = g.node("MatMul", &[&x, &w], vec![]);
    g.node_named("Softmax", &[&y], vec![builder::attr_int("axis", -1)], &["y"]);
    g.output("y", DataType::Float, &[Dim::Fixed(4), Dim::Fixed(8)]);
    std::fs::create_dir_all(dir).unwrap();
    builder::write(&g.finish(17).unwrap(), &dir.join("model.onnx")).unwrap();
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let root = std::env::temp_dir().join(format!("xbench-overhead-{}", std::process::id()));
    trivial_model(&root.join("trivial"));
    let model = find("trivial", &root).unwrap();
    let io = read_io(&model.onnx).unwrap();
    let opts = RuntimeOptions { threads: Some(1), ..Default::default() };
    let plan = xbench::inputs::InputPlan::by_name("trivial", &io.inputs, false).unwrap();
    let feed = Feed::generated(&plan, 4, 16, &BTreeMap::new()).unwrap();
    let Tensor::F32(x) = &feed.tensors[0].1 else { panic!("float input expected") };

    let env = runtimes::ort::environment(&opts).expect("ONNX Runtime library (run `xbench setup ort`)");
    let mut bare = Session::builder(env).unwrap().with_intra_threads(1).unwrap().commit_from_file(&model.onnx).unwrap();
    let mut session = runtimes::load(&xbench::scenario::RuntimeRequest::named(RuntimeId::ORT_CPU), &model.onnx, &opts).unwrap();

    let (mut bare_us, mut xbench_us) = (Vec::new(), Vec::new());
    for _ in 0..REPEATS {
        let t = Instant::now();
        for _ in 0..N {
            let out = bare.run(ort::inputs!["x" => TensorRef::from_array_view(x.view()).unwrap()]).unwrap();
            std::hint::black_box(&out);
        }
        bare_us.push(t.elapsed().as_secs_f64() * 1e6 / N as f64);

        let t = Instant::now();
        let samples = measure(session.as_mut(), &feed, MeasureSpec { warmup: 0, iterations: N, min_time_s: None }, None).unwrap();
        std::hint::black_box(&samples);
        xbench_us.push(t.elapsed().as_secs_f64() * 1e6 / N as f64);
    }
    let (b, x) = (median(bare_us), median(xbench_us));
    println!("trivial model (MatMul 16→8 + Softmax, batch 4), ONNX Runtime CPU, 1 thread, {N} iterations, median of {REPEATS}:");
    println!("  bare ort loop (run only)                         {b:8.3} µs/iteration");
    println!("  xbench measure() (tensors in, outputs to host, clock) {x:8.3} µs/iteration");
    println!("  xbench overhead                                  {:8.3} µs/iteration", x - b);
    let _ = std::fs::remove_dir_all(root);
}
