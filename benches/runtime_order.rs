//! Does the order of runtimes change the numbers? Runs the quick scenario with the runtimes in
//! both orders, each group in its own process (xbench's default) and all in one process, and
//! prints each runtime's mean latency per configuration with the ratio between orders.
//!
//! `cargo bench --bench runtime_order` (takes well under a minute).

use std::process::Command;

use xbench::results::{read_results, Status};
use xbench::runtimes::RuntimeId;

fn run(order: &str, in_process: bool) -> Vec<(RuntimeId, f64)> {
    let out = std::env::temp_dir().join(format!("xbench-order-{}-{order}-{in_process}", std::process::id()));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xbench"));
    cmd.args(["scenario", "scenarios/quick.yaml", "--quiet", "--runtimes", order, "--out"]).arg(&out);
    if in_process {
        cmd.arg("--in-process");
    }
    let status = cmd.status().expect("cannot start xbench");
    assert!(status.success(), "xbench failed");
    let r = read_results(&out.join("results.json")).expect("results");
    let _ = std::fs::remove_dir_all(&out);
    [RuntimeId::TRACT_CPU, RuntimeId::ORT_CPU]
        .iter()
        .map(|&rt| {
            let means: Vec<f64> = r
                .cells
                .iter()
                .filter(|c| c.runtime == rt && c.status == Status::Ok)
                .map(|c| c.summary.as_ref().unwrap().mean_ms)
                .collect();
            (rt, means.iter().sum::<f64>() / means.len() as f64)
        })
        .collect()
}

fn main() {
    println!("mean over the quick grid's cell means (ms); ratio = (ort first) / (tract first)");
    println!("{:<22} {:>10} {:>14} {:>14} {:>8}", "isolation", "runtime", "tract first", "ort first", "ratio");
    for in_process in [false, true] {
        let a = run("tract-cpu,ort-cpu", in_process);
        let b = run("ort-cpu,tract-cpu", in_process);
        for ((rt, x), (_, y)) in a.iter().zip(b.iter()) {
            println!(
                "{:<22} {:>10} {:>14.4} {:>14.4} {:>8.3}",
                if in_process { "one process" } else { "process per group" },
                rt.as_str(),
                x,
                y,
                y / x
            );
        }
    }
}
