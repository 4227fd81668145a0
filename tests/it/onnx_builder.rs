//! The ONNX graph builder and the tiny BERT model: deterministic, valid, and runnable in tract.

use std::collections::HashMap;

use xbench::onnx::builder::{self, DataType, Dim, GraphBuilder, Rng};
use xbench::onnx::tiny_bert::{self, TinyBertConfig};
use tract_onnx::prelude::*;


/// Deterministic test inputs: ids < vocab, mask with trailing zeros on row 1, types 0/1.
fn inputs(b: usize, l: usize, seed: u64) -> (Vec<i64>, Vec<i64>, Vec<i64>) {
    let mut rng = Rng::new(seed);
    let ids: Vec<i64> = (0..b * l).map(|_| rng.below(30522) as i64).collect();
    let mask: Vec<i64> = (0..b * l)
        .map(|i| if i / l == 1 && i % l >= l - 3 { 0 } else { 1 })
        .collect();
    let types: Vec<i64> = (0..b * l)
        .map(|i| if i % l >= l / 2 { 1 } else { 0 })
        .collect();
    (ids, mask, types)
}

fn tvals(b: usize, l: usize, seed: u64) -> TVec<TValue> {
    let (ids, mask, types) = inputs(b, l, seed);
    let t = |v: Vec<i64>| tensor1(&v).into_shape(&[b, l]).unwrap().into_tvalue();
    tvec!(t(ids), t(mask), t(types))
}

fn flat(t: &TValue) -> Vec<f32> {
    t.to_plain_array_view::<f32>()
        .unwrap()
        .iter()
        .copied()
        .collect()
}

fn check_outputs(out: &TVec<TValue>, b: usize, l: usize) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].shape(), &[b, l, 32]);
    assert_eq!(out[1].shape(), &[b, 32]);
    let a: Vec<f32> = flat(&out[0]);
    let p: Vec<f32> = flat(&out[1]);
    assert!(a.iter().chain(p.iter()).all(|v| v.is_finite()));
    (a, p)
}


#[test]
fn builds_deterministically_and_runs_in_tract() -> anyhow::Result<()> {
    let cfg = TinyBertConfig::default();
    let bytes = builder::to_bytes(&tiny_bert::build(&cfg)?);
    let again = builder::to_bytes(&tiny_bert::build(&cfg)?);
    assert_eq!(bytes, again, "two builds differ");
    let other = builder::to_bytes(&tiny_bert::build(&TinyBertConfig {
        seed: 7,
        ..cfg.clone()
    })?);
    assert_ne!(bytes, other);
    let dir = tempfile::tempdir()?;
    let path = tiny_bert::write(&cfg, dir.path())?;
    assert_eq!(std::fs::read(&path)?, bytes);
    println!("model size: {} bytes", bytes.len());

    // Symbolic batch/sequence: one optimized plan serves several shapes.
    let t0 = std::time::Instant::now();
    let plan = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])?
        .into_optimized()?
        .into_runnable()?;
    println!("symbolic load+optimize: {:?}", t0.elapsed());
    let (b, l) = (2, 7);
    let out = plan.run(tvals(b, l, 1))?;
    let (hidden, pooled) = check_outputs(&out, b, l);
    for (b2, l2) in [(1, 5), (3, 11), (1, 512)] {
        check_outputs(&plan.run(tvals(b2, l2, 2))?, b2, l2);
    }

    // Concrete input facts on the inference model.
    let mut m = tract_onnx::onnx().model_for_path(&path)?;
    for i in 0..3 {
        m.set_input_fact(i, i64::fact([b, l]).into())?;
    }
    let out2 = m.into_optimized()?.into_runnable()?.run(tvals(b, l, 1))?;
    let (h2, p2) = check_outputs(&out2, b, l);

    // Symbols substituted on the typed model.
    let typed = tract_onnx::onnx()
        .model_for_path(&path)?
        .into_typed()?
        .into_decluttered()?;
    let subs: HashMap<Symbol, TDim> = [
        (typed.sym("batch"), (b as i64).into()),
        (typed.sym("sequence"), (l as i64).into()),
    ]
    .into();
    let out3 = typed
        .set_symbols(&subs)?
        .into_optimized()?
        .into_runnable()?
        .run(tvals(b, l, 1))?;
    let (h3, p3) = check_outputs(&out3, b, l);
    let maxdiff = |x: &[f32], y: &[f32]| {
        x.iter()
            .zip(y)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max)
    };
    println!(
        "sym vs concrete: {} {}",
        maxdiff(&hidden, &h2),
        maxdiff(&pooled, &p2)
    );
    println!(
        "sym vs set_symbols: {} {}",
        maxdiff(&hidden, &h3),
        maxdiff(&pooled, &p3)
    );
    assert!(maxdiff(&hidden, &h2) < 1e-5 && maxdiff(&pooled, &p2) < 1e-5);
    assert!(maxdiff(&hidden, &h3) < 1e-5 && maxdiff(&pooled, &p3) < 1e-5);

    Ok(())
}

#[test]
fn masked_positions_do_not_influence_others() -> anyhow::Result<()> {
    let bytes = builder::to_bytes(&tiny_bert::build(&TinyBertConfig::default())?);
    let plan = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])?
        .into_optimized()?
        .into_runnable()?;
    let (mut ids, mask, types) = inputs(2, 7, 1);
    let t = |v: &Vec<i64>| tensor1(v).into_shape(&[2, 7]).unwrap().into_tvalue();
    let a = plan.run(tvec!(t(&ids), t(&mask), t(&types)))?;
    ids[13] = (ids[13] + 1) % 30522; // last token of row 1, masked out
    let bb = plan.run(tvec!(t(&ids), t(&mask), t(&types)))?;
    let (ha, _) = check_outputs(&a, 2, 7);
    let (hb, _) = check_outputs(&bb, 2, 7);
    // Unmasked tokens of row 1 (positions 0..4) are unchanged up to the exp(-10000) leak.
    for pos in 0..4 {
        for k in 0..32 {
            let i = (7 + pos) * 32 + k;
            assert!((ha[i] - hb[i]).abs() < 1e-5);
        }
    }
    Ok(())
}

#[test]
fn builder_errors_name_the_culprit() {
    let mut g = GraphBuilder::new("g");
    let err = g
        .init_f32("w.bad", &[2, 3], vec![0.0; 5])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("w.bad") && err.contains("6") && err.contains("5"),
        "{err}"
    );
    g.init_i64("idx", &[], vec![1]).unwrap();
    assert!(g
        .init_i64("idx", &[], vec![1])
        .unwrap_err()
        .to_string()
        .contains("idx"));

    let mut g = GraphBuilder::new("g");
    let x = g.input("x", DataType::Float, &[Dim::sym("n"), 4.into()]);
    let y = g.node("Relu", &[&x], vec![]);
    g.node("Add", &[&y, "nowhere"], vec![]);
    let err = g.finish(17).unwrap_err().to_string();
    assert!(err.contains("nowhere"), "{err}");

    let mut g = GraphBuilder::new("g");
    g.input("x", DataType::Float, &[1.into()]);
    g.output("y", DataType::Float, &[1.into()]);
    assert!(g.finish(17).unwrap_err().to_string().contains("`y`"));

    let err = builder::write(
        &Default::default(),
        std::path::Path::new("/nonexistent-dir/m.onnx"),
    );
    assert!(format!("{:#}", err.unwrap_err()).contains("/nonexistent-dir/m.onnx"));
}

#[test]
fn builder_graph_runs_in_tract() -> anyhow::Result<()> {
    let mut g = GraphBuilder::new("single_op");
    let x = g.input("x", DataType::Float, &[Dim::sym("n"), 3.into()]);
    let w = g.init_f32("w", &[3, 2], vec![1., 2., 3., 4., 5., 6.])?;
    let split = g.init_i64("split", &[2], vec![1, 1])?;
    let y = g.node("MatMul", &[&x, &w], vec![]);
    let outs = g.node_multi(
        "Split",
        &[&y, &split],
        vec![builder::attr_int("axis", 1)],
        2,
    );
    g.output(&outs[0], DataType::Float, &[Dim::sym("n"), 1.into()]);
    g.node_named("Tanh", &[&outs[1]], vec![], &["t"]);
    g.output("t", DataType::Float, &[Dim::sym("n"), 1.into()]);
    let bytes = builder::to_bytes(&g.finish(17)?);
    let plan = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])?
        .into_optimized()?
        .into_runnable()?;
    let x = tensor2(&[[1f32, 0., 0.], [0., 0., 1.]]);
    let out = plan.run(tvec!(x.into_tvalue()))?;
    assert_eq!(flat(&out[0]), vec![1., 5.]);
    let t = flat(&out[1]);
    assert!(
        (t[0] - 2f32.tanh()).abs() < 1e-5 && (t[1] - 6f32.tanh()).abs() < 1e-5,
        "{t:?}"
    );
    Ok(())
}

#[test]
fn rng_is_deterministic_and_sane() {
    let mut a = Rng::new(123);
    let mut b = Rng::new(123);
    let xs: Vec<f32> = (0..100_000).map(|_| a.normal(0.0, 1.0)).collect();
    let ys: Vec<f32> = (0..100_000).map(|_| b.normal(0.0, 1.0)).collect();
    assert_eq!(xs, ys);
    let mean = xs.iter().map(|&v| v as f64).sum::<f64>() / xs.len() as f64;
    let var = xs.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / xs.len() as f64;
    assert!(
        mean.abs() < 0.02 && (var - 1.0).abs() < 0.02,
        "mean {mean} var {var}"
    );
    let mut r = Rng::new(0);
    assert!((0..10_000).all(|_| r.below(7) < 7));
    let u: Vec<f32> = (0..10_000).map(|_| r.next_f32_uniform()).collect();
    assert!(u.iter().all(|&v| (0.0..1.0).contains(&v)));
    // Pin the first values so any change to the generator is noticed.
    let mut r = Rng::new(42);
    println!(
        "first u64 {:#x}, normal {}",
        r.next_u64(),
        r.normal(0.0, 1.0)
    );
}

#[test]
fn committed_tiny_bert_is_what_the_generator_makes() {
    let dir = tempfile::tempdir().unwrap();
    let path = tiny_bert::write(&TinyBertConfig::default(), dir.path()).unwrap();
    let fresh = std::fs::read(&path).unwrap();
    let committed = std::fs::read("models/tiny-bert/model.onnx").unwrap();
    assert!(fresh == committed, "models/tiny-bert/model.onnx differs from `xbench make-tiny-bert` output; regenerate it");
    let config = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    assert_eq!(config, std::fs::read_to_string("models/tiny-bert/config.json").unwrap(), "models/tiny-bert/config.json differs; regenerate it");
    assert!(config.contains("\"num_attention_heads\": 2") && config.contains("\"model_type\": \"bert\""), "{config}");
}
