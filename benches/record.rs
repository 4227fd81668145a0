//! xbench's own work per cell as the grid grows: grids of 1,000 to 100,000 cells of a runtime
//! that returns at once (`fake-instant`), run in this process through the same path as
//! `xbench scenario --in-process` — the results store, the analysis after each group and
//! report.md's tables rewritten after each group, as the command does — with results.json and
//! results.csv in a temporary folder.
//!
//! Per cell, it prints the whole run's time and the bookkeeping: the run's time less what the
//! cells themselves took in their worker (inputs made, preparation, warm-up, timed runs).
//!
//! `cargo bench --bench record` runs every size; `cargo bench --bench record -- 1000 3000` some;
//! `-- --models 100` makes grids of 100 models (100 groups) instead of 2.

use std::path::Path;
use std::time::Instant;

use xbench::onnx::builder::{self, DataType, Dim, GraphBuilder};
use xbench::resolve::{resolve, ResolveOptions};
use xbench::results::{ResultsStore, RunResults, Spacing};
use xbench::run::{self, Isolation, Observer, RunOptions};
use xbench::runtimes::RuntimeOptions;
use xbench::scenario::{self, Overrides, ScenarioFile};

const SIZES: [usize; 5] = [1_000, 3_000, 10_000, 30_000, 100_000];
/// Batch sizes of a grid of `models` models (at least 10, more where the lengths would pass the
/// 1,000 values an axis may have); the input lengths make up the rest.
fn batches(cells: usize, models: usize) -> usize {
    (cells / models).div_ceil(1000).max(10)
}
/// The models of every grid (one group each): 2 unless `--models N` says.
fn model_names(n: usize) -> Vec<String> {
    (0..n).map(|k| format!("m{k}")).collect()
}

/// A model fed generated values: one float input of shape (batch, sequence), one output.
fn model(dir: &Path) {
    let mut g = GraphBuilder::new("m");
    let x = g.input("x", DataType::Float, &[Dim::Sym("batch".into()), Dim::Sym("sequence".into())]);
    g.node_named("Identity", &[&x], vec![], &["y"]);
    g.output("y", DataType::Float, &[Dim::Sym("batch".into()), Dim::Sym("sequence".into())]);
    std::fs::create_dir_all(dir).unwrap();
    builder::write(&g.finish(17).unwrap(), &dir.join("model.onnx")).unwrap();
}

/// Writes report.md's tables after groups, spaced as `xbench scenario` does.
struct Tables<'a>(&'a Path, Spacing);

impl Observer for Tables<'_> {
    fn group_done(&mut self, r: &RunResults) {
        if self.1.due() {
            let at = Instant::now();
            std::fs::write(self.0, xbench::report::markdown(r)).unwrap();
            self.1.wrote(at);
        }
    }
}

/// Runs a grid of `cells` cells; returns (run ms, ms the cells took in their worker, what a
/// group's end costs part by part).
fn grid(root: &Path, cells: usize, models: usize) -> (f64, f64, Vec<(&'static str, f64)>) {
    let batches = batches(cells, models);
    let lengths = cells / batches / models;
    let list = |n: usize| (1..=n).map(|v| v.to_string()).collect::<Vec<_>>().join(", ");
    let yaml = format!(
        "name: grid\nmodels: [{}]\nruntimes: [fake-instant]\ninput_chars: [{}]\nbatch_sizes: [{}]\nwarmup: 0\niterations: 1\n",
        model_names(models).join(", "),
        list(lengths),
        list(batches)
    );
    let file = ScenarioFile::parse(&yaml, "grid.yaml").unwrap();
    let plan = scenario::validate(&file, "grid.yaml", root, &Overrides::default()).unwrap();
    let out = root.join(format!("run-{cells}"));
    std::fs::create_dir_all(&out).unwrap();
    let plan = resolve(plan, &ResolveOptions { models_root: root.join("models"), ops_dir: None }).unwrap();
    assert_eq!(plan.plan.cells.len(), lengths * batches * models);
    let opts = RunOptions { runtime: RuntimeOptions::default(), isolation: Isolation::InProcess, auto_setup: false, parallel_loads: false, keep_outputs: None };

    let clock = Instant::now();
    let availability = run::check_runtimes(&plan, &opts);
    let record = run::record::fresh(&plan, &file, availability, None, &opts, run::conditions::digests(&plan));
    let mut store = ResultsStore::create(record, &out).unwrap();
    let end = run::run(&plan, &opts, &mut store, &out.join(".outputs"), &mut Tables(&out.join("report.md"), Spacing::default()), &run::Stop::new(), clock).unwrap();
    assert!(!end.stopped);
    let r = store.into_results();
    let total = clock.elapsed().as_secs_f64() * 1e3;
    assert!(r.complete && r.cells.iter().all(|c| c.status == xbench::results::Status::Ok), "every cell measured");
    let in_cells: f64 = r.cells.iter().filter_map(|c| c.wall_ms).sum();
    let parts = parts(&r, &out);
    let _ = std::fs::remove_dir_all(&out);
    (total, in_cells, parts)
}

/// What one group's end costs on the whole record, in ms, part by part: the parts of the
/// bookkeeping that read the whole record rather than one cell.
fn parts(r: &RunResults, out: &Path) -> Vec<(&'static str, f64)> {
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64() * 1e3
    };
    let mut r2 = r.clone();
    vec![
        ("clone", time(&mut || drop(std::hint::black_box(r.clone())))),
        ("index", time(&mut || drop(std::hint::black_box(xbench::results::CellIndex::of(r))))),
        ("analysis", time(&mut || xbench::analysis::analyze_group(&mut r2, &xbench::results::CellIndex::of(r), Some(&out.join(".outputs")), 0))),
        ("json", time(&mut || xbench::results::write_json(&out.join("parts.json"), r).unwrap())),
        ("csv", time(&mut || xbench::results::write_csv(&out.join("parts.csv"), r).unwrap())),
        ("report.md", time(&mut || drop(std::hint::black_box(xbench::report::markdown(r))))),
    ]
}

fn main() {
    // SAFETY: set before any thread is started.
    std::env::set_var(xbench::runtimes::fake::ENABLE_VAR, "1");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let models = args.iter().position(|a| a == "--models").and_then(|k| args.get(k + 1)?.parse().ok()).unwrap_or(2);
    let sizes: Vec<usize> = args.iter().enumerate().filter(|(k, _)| *k == 0 || args[k - 1] != "--models").filter_map(|(_, a)| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { SIZES.to_vec() } else { sizes };
    let root = std::env::temp_dir().join(format!("xbench-record-{}", std::process::id()));
    for m in model_names(models) {
        model(&root.join("models").join(m));
    }
    println!("grids of fake-instant ({} models × batch sizes 1..B × input lengths 1..L), 1 iteration, no warm-up, in this process:", models);
    println!("{:>8}  {:>4}  {:>10}  {:>12}  {:>20}", "cells", "B", "run s", "run ms/cell", "bookkeeping ms/cell");
    let mut costs = Vec::new();
    for n in sizes {
        let (total, in_cells, parts) = grid(&root, n, models);
        println!("{n:>8}  {:>4}  {:>10.2}  {:>12.3}  {:>20.3}", batches(n, models), total / 1e3, total / n as f64, (total - in_cells) / n as f64);
        costs.push((n, parts));
    }
    println!("\none group's end on the whole record, ms (done once per group; also once at the end):");
    print!("{:>8}", "cells");
    for (name, _) in &costs[0].1 {
        print!("  {name:>10}");
    }
    println!();
    for (n, parts) in costs {
        print!("{n:>8}");
        for (_, ms) in parts {
            print!("  {ms:>10.1}");
        }
        println!();
    }
    let _ = std::fs::remove_dir_all(root);
}
