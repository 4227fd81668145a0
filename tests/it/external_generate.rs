//! Generation through the external runtime protocol: a test program (tests/data/external/
//! generator.py: tiny-llama on Python onnxruntime, its loop `protocol.time_generations`) beside
//! ort-cpu picks the same ids with the same logits, and its cells are recorded from its own times;
//! ids that part are marked where they part; answers that break a rule fail their own cells.

use std::path::Path;

use xbench::results::{CellRecord, RunResults, Status};
use xbench::runtimes::RuntimeId;

use crate::common::{self, repo, scenario, xbench_in, ScenarioRun};

/// tiny-llama with ort-cpu and the test program under each name in `bends` (`name: bend`),
/// one cell each (2 rows of 8 prompt tokens, 8 new tokens, 2 timed generations after 1 warm-up);
/// the run must exit with `code`.
fn run(dir: &Path, bends: &[(&str, &str)], code: i32) -> ScenarioRun {
    let program = repo("tests/data/external/generator.py");
    let entries: Vec<String> = bends.iter().map(|(name, bend)| format!("{{name: {name}, external: {}, options: {{bend: \"{bend}\"}}}}", program.display())).collect();
    let yaml = format!(
        "name: g\nmodels: [tiny-llama]\nruntimes: [ort-cpu, {}]\nbatch_sizes: [2]\niterations: 2\nwarmup: 1\ngenerate: {{prompt_tokens: [8], new_tokens: [8]}}\n",
        entries.join(", ")
    );
    let models = repo("models");
    let mut cmd = xbench_in(dir);
    cmd.env("PYTHONPATH", common::python_env()).env("XBENCH_HOME", repo(".xbench"));
    scenario(&mut cmd, dir, &yaml, &["--quiet", "--models-dir", models.to_str().unwrap()], code)
}

fn cell<'a>(r: &'a RunResults, runtime: &str) -> &'a CellRecord {
    r.cells.iter().find(|c| c.runtime == RuntimeId::new(runtime)).unwrap_or_else(|| panic!("no cell of {runtime}"))
}

#[test]
fn a_program_that_generates_agrees_with_ort_cpu_and_is_recorded_from_its_own_times() {
    let tmp = tempfile::tempdir().unwrap();
    let run = run(tmp.path(), &[("ort-python", "")], 0);
    let (reference, c) = (cell(&run.results, "ort-cpu"), cell(&run.results, "ort-python"));
    assert_eq!(c.status, Status::Ok, "{c:?}\n{}", run.stderr);
    let (g, want) = (c.generation.as_ref().unwrap(), reference.generation.as_ref().unwrap());
    assert_eq!(g.ids, want.ids, "greedy ids as ort-cpu picks them");
    let a = g.agreement.as_ref().expect("compared with ort-cpu");
    assert!(a.identical && a.within && a.parted.is_none(), "{a:?}");
    assert_eq!((a.reference, a.steps, a.logit_rows), (RuntimeId::ORT_CPU, 8, 2));
    assert!(a.max_abs_logit_diff < 1e-4, "{a:?}");
    assert!(c.agreement.as_ref().unwrap().agrees());
    // Its own times: one prefill per timed generation, 7 steps each, whole generations as samples.
    assert_eq!((g.prefill.n, g.decode.as_ref().unwrap().n, c.samples_ms.len()), (2, 2 * 7, 2));
    assert!(c.summary.as_ref().unwrap().min_ms > g.prefill.min_ms && g.decode_tokens_per_s.unwrap() > 0.0);
    assert_eq!(g.prompt_tokens, [8, 8]);
    assert!(g.repeatable);
    // Its cache: 2 layers × (key, value) × 2 rows × 2 heads × 15 positions × 16 floats.
    assert_eq!(g.cache_bytes, (2 * 2 * 2 * 2 * 15 * 16 * 4) as u64);
    assert!(c.prepare_ms.is_some() && c.warmup_ms.unwrap() > 0.0);
    // The timer recorded is the program's `generate_timer`, named by its path.
    assert!(g.timer.contains("generator.py: a prefill or step: numpy int64 ids") && c.timer.contains("session.run"), "{}", g.timer);
}

#[test]
fn ids_that_part_are_marked_and_answers_that_break_a_rule_fail_their_cells() {
    let tmp = tempfile::tempdir().unwrap();
    let bends = [("part", "part"), ("steps", "steps"), ("ids", "ids"), ("range", "range"), ("mute", "no-generate")];
    let run = run(tmp.path(), &bends, 2);
    assert_eq!(cell(&run.results, "ort-cpu").status, Status::Ok);
    let part = cell(&run.results, "part");
    assert_eq!(part.status, Status::Ok, "{part:?}");
    let a = part.generation.as_ref().unwrap().agreement.as_ref().unwrap();
    let p = a.parted.as_ref().expect("the ids part");
    assert_eq!((p.step, p.row, a.identical), (5, 0, false), "{a:?}");
    assert!(!part.agreement.as_ref().unwrap().agrees());
    for (runtime, says) in [
        ("steps", "sent 6 step times for generation 1 where 8 new tokens take 7 steps after the prefill"),
        ("ids", "wrote `ids` of shape [2, 7] where [2, 8] (batch, new tokens) was asked"),
        ("range", "ids must be in [0, 259), the vocabulary"),
        ("mute", "does not generate (its `ready` has no `\"generate\": true`)"),
    ] {
        let c = cell(&run.results, runtime);
        let e = c.error.as_deref().unwrap_or("");
        assert!(c.status == Status::Failed && e.contains("generator.py") && e.contains(says), "{runtime}: {c:?}");
    }
    let e = cell(&run.results, "range").error.clone().unwrap();
    assert!(e.contains("wrote id 259 for row 0 at new token 0"), "{e}");
    assert!(cell(&run.results, "mute").error.as_deref().unwrap().contains("fix:"));
}
