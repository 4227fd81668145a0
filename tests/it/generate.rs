//! Generation scenarios through the real binary: the committed tiny decoder on ONNX Runtime and
//! tract generates the same ids with its cache kept by each runtime, every cell records what it
//! measured, and what cannot generate says so with the fix.

use std::path::Path;

use xbench::results::{RunResults, Status};
use xbench::runtimes::RuntimeId;

use crate::common::{repo, scenario, xbench, xbench_in};

/// tiny-llama's cache: 2 layers × (key, value) × 2 heads × 16 floats per position and row.
fn cache_bytes(batch: usize, positions: usize) -> u64 {
    (2 * 2 * batch * 2 * positions * 16 * 4) as u64
}

fn run_quick(out: &Path) -> RunResults {
    let run = xbench().args(["scenario", "scenarios/generate-quick.yaml", "--quiet", "--out"]).arg(out).output().unwrap();
    assert!(run.status.success(), "{}", crate::common::text(&run));
    xbench::results::read_results(&out.join("results.json")).unwrap()
}

#[test]
fn the_quick_generation_scenario_generates_the_same_ids_on_both_cpu_runtimes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let r = run_quick(&out);
    assert_eq!(r.cells.len(), 2 * 2 * 2, "2 runtimes × 2 prompt lengths × 2 batch sizes");
    for c in &r.cells {
        assert_eq!(c.status, Status::Ok, "{c:?}");
        let g = c.generation.as_ref().expect("a generation cell records its generation");
        let new = c.new_tokens.unwrap();
        assert_eq!((new, g.new_tokens), (32, 32));
        assert_eq!(g.prompt_tokens, vec![c.chars; c.batch], "prompts are cut to the tokens asked for");
        assert!(g.prompt.contains("botchan through tokenizer.json"), "{}", g.prompt);
        assert_eq!(g.ids.len(), c.batch);
        assert!(g.ids.iter().all(|row| row.len() == new && row.iter().all(|&i| (0..259).contains(&i))));
        assert!(g.repeatable, "greedy decoding gives the same ids every time");
        // The cache holds the prompt and every new token but the last (it is picked, not fed).
        assert_eq!(g.cache_bytes, cache_bytes(c.batch, c.chars + new - 1));
        assert_eq!(g.prefill.n, r.scenario.iterations as usize);
        assert_eq!(g.decode.as_ref().unwrap().n, r.scenario.iterations as usize * (new - 1));
        assert!(g.prefill.mean_ms > 0.0 && g.decode_tokens_per_s.unwrap() > 0.0);
        assert_eq!(c.samples_ms.len(), r.scenario.iterations as usize);
        // A whole generation takes longer than its prefill.
        assert!(c.summary.as_ref().unwrap().min_ms > g.prefill.min_ms);
        if c.runtime == RuntimeId::TRACT_CPU {
            // The timer says what tract ran: its version, its plan's size and its transformer ops.
            assert!(g.timer.starts_with("tract 0.23.") && g.timer.contains(", plan of ") && g.timer.contains(" nodes; transformer ops: ") && c.timer.contains(&g.timer), "{}", g.timer);
            let a = g.agreement.as_ref().expect("tract's ids are compared with ort-cpu's");
            assert!(a.identical && a.within && a.parted.is_none(), "{a:?}");
            assert_eq!((a.reference, a.steps, a.logit_rows), (RuntimeId::ORT_CPU, 32, c.batch));
            assert!(a.max_abs_logit_diff < 1e-4, "{a:?}");
            let reference = r.cells.iter().find(|o| o.runtime == RuntimeId::ORT_CPU && o.chars == c.chars && o.batch == c.batch).unwrap();
            assert_eq!(reference.generation.as_ref().unwrap().ids, g.ids);
            assert!(c.agreement.as_ref().unwrap().agrees());
        } else {
            assert!(g.agreement.is_none() && c.agreement.is_none(), "the reference is not compared with itself");
        }
    }
    // Prompts of one length give the same first rows at every batch size (the same passages).
    let first = |b: usize| r.cells.iter().find(|c| c.runtime == RuntimeId::ORT_CPU && c.chars == 16 && c.batch == b).unwrap().generation.as_ref().unwrap().ids[0].clone();
    assert_eq!(first(1), first(4));
    // One runtime alone compares nothing, and the summary does not claim agreement.
    let one = tmp.path().join("one");
    let run = xbench().args(["scenario", "scenarios/generate-quick.yaml", "--runtimes", "tract-cpu", "--out"]).arg(&one).output().unwrap();
    let said = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success() && said.contains("none compared with tract-cpu (no other runtime's cell to compare)") && !said.contains("disagree"), "{said}");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for says in ["## Generation", "time to first token", "| tiny-llama | tract-cpu | 4 | pp64 |", "| tg32 |", "same as ort-cpu (32 steps"] {
        assert!(report.contains(says), "report.md lacks {says:?}");
    }
    for fig in ["fig5-decode.png", "fig6-first-token.png"] {
        assert!(std::fs::metadata(out.join(fig)).unwrap().len() > 1000, "{fig}");
    }
    assert!(!out.join("fig2-models.png").exists(), "no forward-pass figures for generation cells");
}

#[test]
fn what_cannot_generate_fails_its_cells_naming_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let models = repo("models");
    let models = models.to_str().unwrap();
    let base = "name: g\nruntimes: [ort-cpu, tract-cpu]\nbatch_sizes: [1]\niterations: 1\nwarmup: 0\n";
    // A model without a cache (an encoder): its cells fail; the decoder's run.
    let yaml = format!("{base}models: [tiny-bert, tiny-llama]\ngenerate: {{prompt_tokens: [8], new_tokens: [4]}}\n");
    let run = scenario(&mut xbench_in(tmp.path()), tmp.path(), &yaml, &["--quiet", "--models-dir", models], 2);
    for c in &run.results.cells {
        if c.model == "tiny-bert" {
            assert_eq!(c.status, Status::Failed);
            let e = c.error.as_deref().unwrap();
            assert!(e.contains("has no key/value cache inputs") && e.contains("fix: run it as a plain model"), "{e}");
        } else {
            assert_eq!(c.status, Status::Ok, "{c:?}");
        }
    }
    // A prompt and new tokens past the model's 2048 positions fail; shorter ones run.
    let yaml = format!("{base}models: [tiny-llama]\ngenerate: {{prompt_tokens: [8, 2040], new_tokens: [16]}}\n");
    let run = scenario(&mut xbench_in(tmp.path()), tmp.path(), &yaml, &["--quiet", "--models-dir", models], 2);
    for c in &run.results.cells {
        if c.chars == 2040 {
            let e = c.error.as_deref().unwrap_or("");
            assert!(c.status == Status::Failed && e.contains("2040 prompt tokens and 16 new tokens pass the model's 2048 positions") && e.contains("fix:"), "{c:?}");
        } else {
            assert_eq!(c.status, Status::Ok, "{c:?}");
        }
    }
    // A runtime that cannot keep a cache between steps fails its cells, naming those that can.
    let yaml = "name: g\nruntimes: [ort-cpu, fake-exact]\nbatch_sizes: [1]\niterations: 1\nwarmup: 0\nmodels: [tiny-llama]\ngenerate: {prompt_tokens: [8], new_tokens: [4]}\n";
    let run = scenario(xbench_in(tmp.path()).env("XBENCH_FAKE_RUNTIMES", "1"), tmp.path(), yaml, &["--quiet", "--models-dir", models], 2);
    let fake = run.results.cells.iter().find(|c| c.runtime == RuntimeId::new("fake-exact")).unwrap();
    let e = fake.error.as_deref().unwrap_or("");
    assert!(fake.status == Status::Failed && e.contains("cannot keep a decoder's key/value cache") && e.contains("fix: generate with ort-cpu, ort-cuda or tract-cpu"), "{fake:?}");
    // A device-resident timer would not say what a generation measured: ONNX Runtime's cells fail
    // with the fix; tract, which times end to end only, generates.
    let run = scenario(&mut xbench_in(tmp.path()), tmp.path(), &format!("{base}models: [tiny-llama]\ngenerate: {{prompt_tokens: [8], new_tokens: [4]}}\n"), &["--quiet", "--models-dir", models, "--timing", "device-resident"], 2);
    for c in &run.results.cells {
        let e = c.error.as_deref().unwrap_or("");
        if c.runtime == RuntimeId::new("ort-cpu") {
            assert!(c.status == Status::Failed && e.contains("generation is timed end to end") && e.contains("fix: generate without --timing device-resident"), "{c:?}");
        } else {
            assert_eq!(c.status, Status::Ok, "{c:?}");
        }
    }
    // Bound through buffers of xbench's own (`io: pinned`), a plain run's binding is recorded with
    // its session; a generation's decoder states its copies in its cells' timer instead.
    let mut runs = Vec::new();
    for what in ["models: [tiny-llama]\ngenerate: {prompt_tokens: [8], new_tokens: [4]}\n", "models: [tiny-bert]\ninput_chars: [50]\n"] {
        let yaml = format!("name: g\nruntimes: [{{name: staged, runtime: ort-cpu, session: {{io: pinned}}}}]\nbatch_sizes: [1]\niterations: 1\nwarmup: 0\n{what}");
        let run = scenario(&mut xbench_in(tmp.path()), tmp.path(), &yaml, &["--quiet", "--models-dir", models], 0);
        assert!(run.results.cells.iter().all(|c| c.status == Status::Ok), "{:?}", run.results.cells);
        runs.push(run.results.groups[0].session.as_ref().unwrap().io.clone());
    }
    assert!(runs[0].is_none() && runs[1].as_deref().is_some_and(|io| io.contains("host buffers of their own")), "{runs:?}");
    // `xbench feeds` has no fixed tensors to write for a generation scenario, and says so.
    std::fs::write(tmp.path().join("g.yaml"), yaml).unwrap();
    let o = xbench_in(tmp.path()).env("XBENCH_FAKE_RUNTIMES", "1").args(["feeds", "g.yaml", "--out", "f.json", "--models-dir", models]).output().unwrap();
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && said.contains("make their prompts as they run") && !tmp.path().join("f.json").exists(), "{said}");
    // Keys that do not go together are refused before anything runs.
    for (yaml, says) in [
        (format!("{base}models: [tiny-llama]\ninput_chars: [50]\ngenerate: {{prompt_tokens: [8], new_tokens: [4]}}\n"), "`input_chars` is given together with `generate`"),
        (format!("{base}models: [tiny-llama]\ngenerate: {{new_tokens: [4]}}\n"), "gives no prompt lengths"),
        (format!("{base}models: [tiny-llama]\ngenerate: {{prompt_tokens: [8], prompt_chars: [8], new_tokens: [4]}}\n"), "count prompt lengths one way"),
        (format!("{base}models: [tiny-llama]\ngenerate: {{prompt_tokens: [8], new_tokens: [0]}}\n"), "generate.new_tokens"),
        (format!("{base}models: [tiny-llama]\ngenerate: {{prompt_tokens: [8], new_token: [4]}}\n"), "unknown field `new_token`"),
    ] {
        std::fs::write(tmp.path().join("bad.yaml"), &yaml).unwrap();
        let o = xbench_in(tmp.path()).args(["scenario", "bad.yaml", "--models-dir", models]).output().unwrap();
        let said = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && said.contains(says) && said.contains("fix:"), "{yaml}\n{said}");
    }
}
