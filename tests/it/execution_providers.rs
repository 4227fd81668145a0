//! Execution providers beyond ONNX Runtime's CPU one: the real OpenVINO plugin wheel fetched as a
//! user's set-up would, its runtime listed with why it cannot run here and its cells skipped while
//! the rest run; runtimes of the user's own with options and session settings, recorded; the
//! generic form by provider name; the MLX wheel's layout found on a platform it cannot run on.

use std::path::Path;

use xbench::results::{read_results, RunResults, Status};
use xbench::runtimes::RuntimeId;

use crate::common::{self, text, xbench_in as xbench};

/// Runs `yaml` on tiny-bert in a fresh folder; returns the results and the folder.
fn run(yaml: &str) -> (RunResults, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let models = common::repo("models");
    // Cells that fail here (a provider that takes no node) are what some tests look at.
    let run = common::scenario(&mut xbench(dir.path()), dir.path(), yaml, &["--quiet", "--ignore-failures", "--models-dir", models.to_str().unwrap()], 0);
    (run.results, dir)
}

const GRID: &str = "models: [tiny-bert]\ninput_chars: [50]\nbatch_sizes: [1, 2]\niterations: 2\nwarmup: 0\n";

#[test]
fn the_openvino_plugin_is_fetched_and_says_why_it_cannot_run_here_while_the_rest_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let setup = xbench(root).args(["setup", "ep", "openvino"]).output().unwrap();
    assert!(setup.status.success(), "{}", text(&setup));
    let lib = String::from_utf8_lossy(&setup.stdout).trim().to_string();
    assert!(lib.ends_with("libonnxruntime_providers_openvino_plugin.so") && Path::new(&lib).is_file(), "{lib}");

    let listing = xbench(root).arg("runtimes").output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    let line = listing.lines().find(|l| l.starts_with("ort-openvino ")).unwrap_or_else(|| panic!("{listing}"));
    let intel = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default().contains("GenuineIntel");
    if !intel {
        // On this machine's CPU the plugin registers and offers no device: said so, with what it supports.
        assert!(line.contains(" no ") && line.contains("OpenVINOExecutionProvider offers no device on this machine"), "{listing}");
        assert!(listing.contains("Intel CPUs, GPUs and NPUs only"), "{listing}");
    }

    let (r, _dir) = run(&format!(
        "name: ov\nruntimes: [tract-cpu, ort-openvino, {{name: ov-fp32, runtime: ort-openvino, options: {{load_config: '{{\"CPU\": {{\"INFERENCE_PRECISION_HINT\": \"f32\"}}}}'}}}}]\n{GRID}"
    ));
    for c in &r.cells {
        match (c.runtime.as_str(), intel) {
            ("tract-cpu", _) => assert_eq!(c.status, Status::Ok, "{c:?}"),
            (_, false) => {
                assert_eq!(c.status, Status::Skipped, "{c:?}");
                assert!(c.error.as_deref().unwrap().contains("offers no device"), "{c:?}");
            }
            (_, true) => {
                assert_eq!(c.status, Status::Ok, "{c:?}");
                assert!(c.agreement.is_some(), "compared with tract: {c:?}");
            }
        }
    }
    if intel {
        let g = r.groups.iter().find(|g| g.runtime == RuntimeId::new("ov-fp32")).unwrap();
        let s = g.session.as_ref().unwrap();
        assert_eq!((s.precision.map(|p| p.as_str()), s.settings.get("load_config").map(String::as_str)), (Some("fp32"), Some(r#"{"CPU": {"INFERENCE_PRECISION_HINT": "f32"}}"#)), "{s:?}");
    }
}

#[test]
fn runtimes_of_ones_own_carry_their_options_into_the_results() {
    let (r, dir) = run(&format!(
        "name: own\nruntimes: [ort-cpu, {{name: cpu-basic, runtime: ort-cpu, session: {{graph_optimization: basic, optimized_model: opt.onnx}}}}, {{name: cpu-by-name, ep: CPUExecutionProvider}}, {{name: cpu-lean, runtime: ort-cpu, session: {{memory_pattern: false, prepacking: false, cpu_arena: true}}}}]\n{GRID}"
    ));
    assert!(r.cells.iter().all(|c| c.status == Status::Ok), "{:?}", r.cells.iter().map(|c| &c.error).collect::<Vec<_>>());
    assert!(r.cells.iter().filter(|c| c.runtime != RuntimeId::ORT_CPU).all(|c| c.agreement.as_ref().is_some_and(|a| a.agrees())));
    let basic = r.groups.iter().find(|g| g.runtime == RuntimeId::new("cpu-basic")).unwrap().session.clone().unwrap();
    assert_eq!(basic.settings.get("session.graph_optimization").map(String::as_str), Some("Level1"), "{basic:?}");
    assert!(dir.path().join("opt.onnx").is_file(), "the optimized graph is saved where the scenario said");
    let plain = r.groups.iter().find(|g| g.runtime == RuntimeId::ORT_CPU).unwrap().session.clone().unwrap();
    assert!(plain.settings.is_empty());
    let by_name = r.groups.iter().find(|g| g.runtime == RuntimeId::new("cpu-by-name")).unwrap().session.clone().unwrap();
    assert!(by_name.placement.iter().any(|(ep, n)| ep == "CPUExecutionProvider" && *n > 0), "{by_name:?}");
    assert!(r.runtimes.iter().any(|a| a.runtime == RuntimeId::new("cpu-basic") && a.usable));
    let lean = r.groups.iter().find(|g| g.runtime == RuntimeId::new("cpu-lean")).unwrap().session.clone().unwrap();
    for (k, v) in [("session.memory_pattern", "false"), ("session.prepacking", "false"), ("session.cpu_arena", "true")] {
        assert_eq!(lean.settings.get(k).map(String::as_str), Some(v), "{lean:?}");
    }
}

#[test]
fn optimized_graphs_kept_between_runs_are_read_back_and_runtimes_may_choose_their_own_io() {
    let yaml = format!(
        "name: cached\nruntimes: [ort-cpu, {{name: cpu-cached, runtime: ort-cpu, session: {{optimized_cache: opt}}}}, {{name: cpu-bound, runtime: ort-cpu, session: {{io: pinned, timing: device-resident}}}}]\n{GRID}"
    );
    let (first, dir) = run(&yaml);
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let again = xbench(dir.path()).args(["scenario", "s.yaml", "--quiet", "--out", "again", "--models-dir"]).arg(&models).output().unwrap();
    assert!(again.status.success(), "{}", text(&again));
    let second = read_results(&dir.path().join("again/results.json")).unwrap();
    let graph = |r: &RunResults| r.groups.iter().find(|g| g.runtime == RuntimeId::new("cpu-cached")).unwrap().session.clone().unwrap().settings.get("session.optimized_graph").cloned().unwrap_or_default();
    assert!(graph(&first).starts_with("optimized and saved: "), "{}", graph(&first));
    assert!(graph(&second).starts_with("read (graph optimization off): "), "{}", graph(&second));
    let mut kept: Vec<String> = std::fs::read_dir(dir.path().join("opt")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    kept.sort();
    assert!(kept.len() == 2 && kept[1] == format!("{}.source", kept[0]), "one graph and the record of its source, no partial file left: {kept:?}");
    for r in [&first, &second] {
        assert!(r.cells.iter().all(|c| c.status == Status::Ok), "{:?}", r.cells.iter().map(|c| &c.error).collect::<Vec<_>>());
        assert!(r.cells.iter().filter(|c| c.runtime != RuntimeId::ORT_CPU).all(|c| c.agreement.as_ref().is_some_and(|a| a.agrees())));
        let bound: Vec<_> = r.cells.iter().filter(|c| c.runtime == RuntimeId::new("cpu-bound")).map(|c| c.timer.clone()).collect();
        assert!(bound.iter().all(|t| t.starts_with("device-resident (bound buffers")), "{bound:?}");
        assert!(r.cells.iter().filter(|c| c.runtime == RuntimeId::ORT_CPU).all(|c| c.timer == "end-to-end"));
    }
}

#[test]
fn a_provider_by_name_registers_or_says_why_and_one_that_takes_no_node_fails_its_cells() {
    let (r, _dir) = run(&format!(
        "name: named\nruntimes: [tract-cpu, {{name: azure, ep: AzureExecutionProvider}}, {{name: nope, ep: NopeExecutionProvider}}]\n{GRID}"
    ));
    for c in &r.cells {
        match c.runtime.as_str() {
            "tract-cpu" => assert_eq!(c.status, Status::Ok),
            // Built into the library, registers, and takes none of the nodes: never a silent CPU run.
            "azure" => assert!(c.status == Status::Failed && c.error.as_deref().unwrap().contains("AzureExecutionProvider was asked for but took none of the graph's"), "{c:?}"),
            _ => assert!(c.status == Status::Skipped && c.error.as_deref().unwrap().contains("NopeExecutionProvider"), "{c:?}"),
        }
    }
}

#[test]
fn bad_runtime_options_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    for (runtimes, says) in [
        ("[{name: x, runtime: ort-cpu, options: {arena: 1}}]", "`options.arena`"),
        ("[{name: x, runtime: ort-cpu, session: {graph: all}}]", "`session.graph` is not a session option"),
        ("[{name: x, runtime: ort-cpu, session: {graph_optimization: max}}]", "`max` is not a level"),
        ("[{name: x, runtime: ort-cpu, session: {memory_pattern: sometimes}}]", "`session.memory_pattern` = `sometimes` is not true or false"),
        ("[{name: x, runtime: tract-cpu, options: {a: 1}}]", "takes no options"),
        ("[{name: x, runtime: ort-nothing}]", "`ort-nothing` is not a runtime xbench knows"),
    ] {
        std::fs::write(dir.path().join("s.yaml"), format!("name: bad\nruntimes: {runtimes}\n{GRID}")).unwrap();
        let out = xbench(dir.path()).args(["scenario", "s.yaml", "--quiet", "--no-setup", "--out", "out", "--models-dir"]).arg(&models).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains("`runtimes[0]`") && stderr.contains(says) && stderr.contains("fix:"), "{runtimes}: {}", text(&out));
        assert!(!dir.path().join("out/results.json").exists());
    }
}

#[test]
fn the_mlx_wheel_is_found_by_its_layout_and_refused_off_apple_silicon() {
    if cfg!(all(target_os = "macos", target_arch = "aarch64")) {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let setup = xbench(root).args(["setup", "ep", "mlx"]).output().unwrap();
    assert!(setup.status.success(), "{}", text(&setup));
    let lib = Path::new(String::from_utf8_lossy(&setup.stdout).trim()).to_path_buf();
    assert_eq!(lib.file_name().unwrap(), "libonnxruntime_mlx_ep.dylib");
    for beside in ["libmlx.dylib", "mlx.metallib"] {
        assert!(lib.with_file_name(beside).is_file(), "{beside} sits beside the library");
    }
    let listing = xbench(root).arg("runtimes").output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    let line = listing.lines().find(|l| l.starts_with("ort-mlx ")).unwrap();
    assert!(line.contains(" no ") && line.contains("macOS 14 or later on Apple silicon (arm64) only"), "{listing}");
}
