//! The paper's own framework as a runtime: MLX through mlx-transformers (`scripts/runtimes/mlx_hf.py`)
//! on the CPU beside ort-cpu, on the same token ids, with weights from the ONNX file's
//! initializers and from a checkpoint folder; its environment made by `xbench setup runtime mlx`;
//! no network asked; generation with the same greedy ids as ort-cpu; and a framework that is not set
//! up failing its cells with the set-up command.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use xbench::results::{read_results, HostMemory, RunResults, Status, Timing};
use xbench::runtimes::RuntimeId;

use crate::common::{repo, xbench_in};

/// The project's MLX environment, made (once; later calls find it set up) as a user makes it.
fn mlx_python() -> PathBuf {
    static PY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PY.get_or_init(|| {
        let out = xbench_in(&repo("")).args(["setup", "runtime", "mlx"]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("mlx 0.32.4") && stdout.contains("mlx-transformers 0.3.0"), "the pinned versions: {stdout}");
        PathBuf::from(stdout.lines().last().unwrap().trim())
    })
    .clone()
}

/// A models folder with tiny-bert and `tiny-bert-ckpt`: the same ONNX file beside a checkpoint
/// (config.json + model.safetensors) written from its initializers.
fn models_with_checkpoint(dir: &Path) -> PathBuf {
    let models = dir.join("models");
    let tiny = models.join("tiny-bert");
    std::fs::create_dir_all(&tiny).unwrap();
    for f in ["model.onnx", "model.yaml", "tokenizer.json", "config.json"] {
        std::fs::copy(repo("models/tiny-bert").join(f), tiny.join(f)).unwrap();
    }
    let out = Command::new(mlx_python())
        .arg(repo("scripts/make_checkpoint.py"))
        .arg(&tiny)
        .arg(models.join("tiny-bert-ckpt"))
        .arg("--model-files")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(models.join("tiny-bert-ckpt/model.safetensors").is_file());
    models
}

fn scenario(dir: &Path, models: &[&str], runtimes: &str) {
    let yaml = format!("name: mlx\nmodels: [{}]\nruntimes: {runtimes}\ninput_chars: [50, 200]\nbatch_sizes: [1, 3]\niterations: 3\nwarmup: 1\n", models.join(", "));
    std::fs::write(dir.join("s.yaml"), yaml).unwrap();
}

fn run(dir: &Path, models: &Path, env: &[(&str, &Path)]) -> (Output, String) {
    let mut c = xbench_in(dir);
    c.args(["scenario", "s.yaml", "--out", "out", "--models-dir"]).arg(models);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stderr)
}

fn cells<'a>(r: &'a RunResults, rt: &str) -> Vec<&'a xbench::results::CellRecord> {
    r.cells.iter().filter(|c| c.runtime == RuntimeId::new(rt)).collect()
}

#[test]
fn mlx_on_the_cpu_agrees_with_ort_cpu_with_weights_from_the_onnx_file_and_from_a_checkpoint_and_asks_no_network() {
    let dir = tempfile::tempdir().unwrap();
    let models = models_with_checkpoint(dir.path());
    let adapter = repo("scripts/runtimes/mlx_hf.py").display().to_string();
    scenario(
        dir.path(),
        &["tiny-bert", "tiny-bert-ckpt"],
        &format!(
            "[ort-cpu, {{name: mlx-cpu, external: {adapter}, options: {{device: cpu}}}}, {{name: mlx-fp16, external: {adapter}, options: {{dtype: fp16, weights: onnx}}}}, {{name: mlx-resident, external: {adapter}, options: {{timing: device-resident}}}}]"
        ),
    );
    // Every socket the programs open is written down by an audit hook that Python loads at start.
    let guard = dir.path().join("guard");
    std::fs::create_dir_all(&guard).unwrap();
    std::fs::write(
        guard.join("sitecustomize.py"),
        "import os, sys\nlog = os.environ['XBENCH_TEST_SOCKETS']\nopen(log + '.loaded', 'a').write(f'{os.getpid()}\\n')\n\
         def hook(event, args):\n    if event.startswith('socket.') and event != 'socket.__new__':\n        open(log, 'a').write(f'{event} {args!r}\\n')\nsys.addaudithook(hook)\n",
    )
    .unwrap();
    let sockets = dir.path().join("sockets.txt");
    let (out, stderr) = run(dir.path(), &models, &[("PYTHONPATH", &guard), ("XBENCH_TEST_SOCKETS", &sockets)]);
    assert_eq!(out.status.code(), Some(0), "every cell ran and agreed:\n{stderr}");
    let loaded = std::fs::read_to_string(dir.path().join("sockets.txt.loaded")).unwrap_or_default();
    assert!(loaded.lines().count() >= 3, "the audit hook ran in each MLX program: {loaded:?}");
    assert!(!sockets.exists(), "no program opened a socket: {}", std::fs::read_to_string(&sockets).unwrap_or_default());

    let r = read_results(&dir.path().join("out/results.json")).unwrap();
    assert_eq!(r.cells.len(), 2 * 4 * 4);
    for c in &r.cells {
        assert_eq!(c.status, Status::Ok, "{c:?}");
        if c.runtime == RuntimeId::ORT_CPU {
            continue;
        }
        let a = c.agreement.as_ref().expect("compared with ort-cpu");
        assert!(a.agrees() && a.outputs.iter().all(|o| o.compared > 0), "{} {}: {a:?}", c.model, c.runtime);
        if c.runtime != RuntimeId::new("mlx-fp16") {
            // The same arithmetic as ONNX Runtime's on the CPU (7.2e-7 was seen), from the ONNX file's
            // weights and from the checkpoint folder alike.
            assert!(a.max_abs < 1e-5, "{} {}: {a:?}", c.model, c.runtime);
        }
        let twin = r.cell(&c.model, RuntimeId::ORT_CPU, c.chars, c.batch).unwrap();
        assert_eq!(c.tokens.as_ref().unwrap().tokens_per_row, twin.tokens.as_ref().unwrap().tokens_per_row, "the same token ids");
    }
    let session = |model: &str, rt: &str| r.groups.iter().find(|g| g.model == model && g.runtime == RuntimeId::new(rt)).and_then(|g| g.session.clone()).unwrap();
    let s = session("tiny-bert", "mlx-cpu");
    assert!(s.version.contains("0.32.4") && s.version.contains("mlx-transformers 0.3.0"), "{s:?}");
    assert_eq!(s.precision.map(|p| p.as_str()), Some("fp32"));
    let class = s.timer_class.expect("the program says what its timer covers");
    assert_eq!((class.timing, class.host_memory), (Timing::EndToEnd, Some(HostMemory::NoCopies)));
    let resident = session("tiny-bert", "mlx-resident").timer_class.unwrap();
    assert_eq!((resident.timing, resident.host_memory), (Timing::DeviceResident, None));
    assert_eq!(session("tiny-bert", "mlx-fp16").precision.map(|p| p.as_str()), Some("fp16"), "judged by the fp16 tolerance");
    // Which weights each group used is the program's to say, and it is recorded.
    let notes = |model: &str| session(model, "mlx-cpu").notes.unwrap_or_default();
    assert!(notes("tiny-bert-ckpt").contains("checkpoint"), "{}", notes("tiny-bert-ckpt"));
    assert!(notes("tiny-bert").contains("initializers"), "{}", notes("tiny-bert"));
    let ort = session("tiny-bert", "ort-cpu").timer_class.unwrap();
    assert_eq!((ort.timing, ort.host_memory), (Timing::EndToEnd, Some(HostMemory::NoCopies)), "xbench's own series speak the same vocabulary");
    assert_eq!(cells(&r, "mlx-cpu").len(), 8);
    let avail = r.runtimes.iter().find(|a| a.runtime == RuntimeId::new("mlx-cpu")).unwrap();
    assert!(avail.version.as_deref().is_some_and(|v| v.contains("mlx 0.32.4")), "the framework's versions are recorded: {avail:?}");
    let report = std::fs::read_to_string(dir.path().join("out/report.md")).unwrap();
    assert!(report.contains("| mlx-resident | device-resident |"), "the timers table:\n{report}");
    assert!(report.contains("mlx-resident vs ort-cpu (timers differ)"), "a ratio across timers says so:\n{report}");
    assert!(report.contains("mlx-cpu vs ort-cpu |"), "the same timer needs no mark:\n{report}");
}

#[test]
fn a_framework_that_is_not_set_up_fails_its_cells_with_the_setup_command_and_the_rest_runs() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("empty-home");
    std::fs::create_dir_all(&home).unwrap();
    let adapter = repo("scripts/runtimes/mlx_hf.py").display().to_string();
    scenario(dir.path(), &["tiny-bert"], &format!("[tract-cpu, {{name: mlx-cpu, external: {adapter}}}]"));
    let out = xbench_in(dir.path()).env("XBENCH_HOME", &home).args(["scenario", "s.yaml", "--out", "out", "--models-dir"]).arg(repo("models")).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "failed cells, a finished run:\n{stderr}");
    let r = read_results(&dir.path().join("out/results.json")).unwrap();
    assert!(cells(&r, "tract-cpu").iter().all(|c| c.status == Status::Ok));
    let mlx = cells(&r, "mlx-cpu");
    assert_eq!(mlx.len(), 4);
    for c in mlx {
        let e = c.error.as_deref().unwrap_or_default();
        assert_eq!(c.status, Status::Failed, "{e}");
        assert!(e.contains("xbench setup runtime mlx") && e.contains("mlx_transformers"), "names what is missing and the set-up command: {e}");
    }
    // `python:` naming an interpreter that does not run makes the runtime unusable, with the fix.
    scenario(dir.path(), &["tiny-bert"], &format!("[tract-cpu, {{name: mlx-cpu, external: {adapter}, python: ./no/python3}}]"));
    let out = xbench_in(dir.path()).env("XBENCH_HOME", &home).args(["scenario", "s.yaml", "--out", "out2", "-i", "--models-dir"]).arg(repo("models")).output().unwrap();
    let r = read_results(&dir.path().join("out2/results.json")).unwrap();
    let e = cells(&r, "mlx-cpu")[0].error.clone().unwrap_or_default();
    assert!(out.status.success() && e.contains("no/python3") && e.contains("cannot be run here") && e.contains("fix:"), "{e}");
}

#[test]
fn runtimes_lists_each_framework_and_whether_it_is_set_up() {
    let home = tempfile::tempdir().unwrap();
    let out = xbench_in(home.path()).env("XBENCH_HOME", home.path()).arg("runtimes").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    for fw in ["mlx", "torch", "onnxruntime"] {
        let line = stdout.lines().find(|l| l.starts_with(&format!("{fw} "))).unwrap_or_else(|| panic!("{fw} listed:\n{stdout}"));
        assert!(line.contains(" no "), "{line}");
    }
    assert!(stdout.contains("fix: xbench setup runtime mlx"), "{stdout}");
    let out = xbench_in(home.path()).args(["setup", "runtime", "jax"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("`jax` is not a framework") && stderr.contains("mlx, torch, onnxruntime"), "{stderr}");
}

#[test]
fn the_python_side_passes_its_own_tests_protocol_and_weight_matching() {
    for file in ["scripts/runtimes/test_protocol.py", "scripts/runtimes/test_onnx_weights.py"] {
        let cwd = tempfile::tempdir().unwrap();
        let out = Command::new(mlx_python()).arg(repo(file)).current_dir(cwd.path()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{file}: {stderr}");
        assert!(stderr.contains("Ran ") && stderr.trim_end().ends_with("OK"), "{file}: {stderr}");
    }
}

#[test]
fn mlx_generates_the_same_greedy_ids_as_ort_cpu_on_tiny_llama() {
    let dir = tempfile::tempdir().unwrap();
    mlx_python(); // the framework set up, as a user sets it up
    let adapter = repo("scripts/runtimes/mlx_hf.py").display().to_string();
    let yaml = format!(
        "name: mlx-generate\nmodels: [tiny-llama]\nruntimes: [ort-cpu, {{name: mlx-cpu, external: {adapter}}}]\n\
         generate:\n  prompt_tokens: [8, 16]\n  new_tokens: [32]\nbatch_sizes: [1, 2]\nwarmup: 1\niterations: 2\n"
    );
    std::fs::write(dir.path().join("s.yaml"), yaml).unwrap();
    let (out, stderr) = run(dir.path(), &repo("models"), &[]);
    assert_eq!(out.status.code(), Some(0), "every cell ran and agreed:\n{stderr}");
    let r = read_results(&dir.path().join("out/results.json")).unwrap();
    assert_eq!(r.cells.len(), 2 * 2 * 2, "2 runtimes × 2 prompt lengths × 2 batch sizes");
    for c in cells(&r, "mlx-cpu") {
        assert_eq!(c.status, Status::Ok, "{c:?}");
        let g = c.generation.as_ref().expect("a generation cell records its generation");
        let twin = r.cells.iter().find(|o| o.runtime == RuntimeId::ORT_CPU && o.chars == c.chars && o.batch == c.batch).unwrap();
        assert_eq!(g.ids, twin.generation.as_ref().unwrap().ids, "the same greedy ids as ort-cpu");
        let a = g.agreement.as_ref().expect("compared with ort-cpu");
        assert!(a.identical && a.within && a.parted.is_none() && a.steps == 32, "{a:?}");
        assert!(a.max_abs_logit_diff < 1e-4, "{a:?}");
        assert!(g.repeatable);
        // keys and values of 2 layers, 2 heads of 16 float32, over the prompt and every new id but the last
        assert_eq!(g.cache_bytes, (2 * 2 * c.batch * 2 * (c.chars + 31) * 16 * 4) as u64);
        assert_eq!((g.prefill.n, g.decode.as_ref().unwrap().n), (2, 2 * 31), "the program's own prefill and step times");
        assert!(g.timer.contains("mx.argmax") && g.timer.contains("DynamicCache"), "the program's generate_timer: {}", g.timer);
    }
}

#[test]
fn the_mlx_decoding_passes_its_own_tests_against_onnx_runtime() {
    let cwd = tempfile::tempdir().unwrap();
    let file = "scripts/runtimes/test_mlx_generate.py";
    let out = Command::new(mlx_python()).arg(repo(file)).env("PYTHONPATH", crate::common::python_env()).current_dir(cwd.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{file}: {stderr}");
    assert!(stderr.contains("Ran ") && stderr.trim_end().ends_with("OK"), "{file}: {stderr}");
}
