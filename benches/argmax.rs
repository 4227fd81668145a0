//! The host's share of a generation step at a large vocabulary: picking each row's next id from
//! logits `[16, 151936]` (Qwen2.5's vocabulary, batch 16) with xbench's argmax (the largest of each
//! block of 512, then the first index in that block holding the row's largest), beside a plain
//! scan (`Iterator::fold` keeping the first largest), interleaved repetitions.
//!
//! `cargo bench --bench argmax` prints both times per step and their ratio.

use std::time::Instant;

use ndarray::Array2;

const ROWS: usize = 16;
const VOCAB: usize = 151_936;
const N: usize = 50;
const REPEATS: usize = 7;

fn plain(logits: &Array2<f32>) -> Vec<i64> {
    logits.rows().into_iter().map(|r| r.iter().enumerate().fold((0usize, f32::NEG_INFINITY), |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) }).0 as i64).collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut seed = 1u64;
    let logits = Array2::from_shape_fn((ROWS, VOCAB), |_| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((seed >> 40) as f32 / (1u64 << 24) as f32) * 20.0 - 10.0
    });
    assert_eq!(xbench::generate::argmax(logits.view()), plain(&logits), "both pick the same ids");
    let (mut ours, mut scan) = (Vec::new(), Vec::new());
    for _ in 0..REPEATS {
        let t = Instant::now();
        for _ in 0..N {
            std::hint::black_box(xbench::generate::argmax(std::hint::black_box(logits.view())));
        }
        ours.push(t.elapsed().as_secs_f64() * 1e3 / N as f64);
        let t = Instant::now();
        for _ in 0..N {
            std::hint::black_box(plain(std::hint::black_box(&logits)));
        }
        scan.push(t.elapsed().as_secs_f64() * 1e3 / N as f64);
    }
    let (o, s) = (median(ours), median(scan));
    println!("next ids of logits [{ROWS}, {VOCAB}] f32 ({:.1} MB), {N} steps, median of {REPEATS}:", (ROWS * VOCAB * 4) as f64 / 1e6);
    println!("  xbench argmax (block maxima)        {o:8.3} ms/step");
    println!("  plain scan (first largest)           {s:8.3} ms/step");
    println!("  plain / xbench                       {:8.2}", s / o);
}
