//! Hostile paths and folders through the real binary, one row per case. The files that come with a
//! model stay inside its folder (links followed, then checked), Hub cache entries inside the
//! cache; paths the user typed in a scenario stay allowed. Python helpers run isolated from the
//! folder xbench is started in, and a library that is not ONNX Runtime is an error, not a panic.
//!
//! Every case checks the exit code, that the message names the thing and carries `fix:`, that
//! nothing panicked or hung (killed after 60 s), that no secret from `outside/` (or /etc/passwd)
//! shows up in what xbench said or wrote, and that no trap's marker file appeared.

use crate::common;
use crate::hostile;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use hostile::*;

/// What a case puts in place on top of [`base`].
#[derive(Clone, Copy)]
enum Given {
    /// `models/m/model.yaml` with these lines (`{root}`: the case's folder).
    Yaml(&'static str),
    /// A link at the first path (in the case's folder) to the second (in the case's folder, or absolute).
    Link(&'static str, &'static str),
    Build(fn(&Path)),
}
use Given::*;

struct Case {
    name: &'static str,
    given: Given,
    args: &'static [&'static str],
    /// Extra environment (`{root}`: the case's folder, `{PATH}`: the test's PATH).
    env: &'static [(&'static str, &'static str)],
    code: i32,
    /// Fragments the output must hold (`{root}` as above); with any, `fix:` too.
    says: &'static [&'static str],
    /// Paths in the case's folder that must be there afterwards.
    present: &'static [&'static str],
    /// Paths in the case's folder that must not.
    absent: &'static [&'static str],
    /// Files in the case's folder that must be byte-identical afterwards.
    kept: &'static [&'static str],
}

const fn case(name: &'static str, given: Given, args: &'static [&'static str], code: i32, says: &'static [&'static str]) -> Case {
    Case { name, given, args, env: &[], code, says, present: &[], absent: &[], kept: &[] }
}

impl Case {
    const fn env(self, env: &'static [(&'static str, &'static str)]) -> Case {
        Case { env, ..self }
    }
    const fn present(self, present: &'static [&'static str]) -> Case {
        Case { present, ..self }
    }
    const fn absent(self, absent: &'static [&'static str]) -> Case {
        Case { absent, ..self }
    }
    const fn kept(self, kept: &'static [&'static str]) -> Case {
        Case { kept, ..self }
    }
}

const SCEN: &[&str] = &["scenario", "s.yaml", "--no-setup", "--out", "out"];
const SCEN_I: &[&str] = &["scenario", "s.yaml", "--no-setup", "--ignore-failures", "--out", "out"];
const FETCH: &[&str] = &["fetch", "acme/tiny"];
const OK_RUN: &[&str] = &["out/results.json"];
const TRAPPED: &[(&str, &str)] = &[("PYTHONPATH", "."), ("PATH", ".:{PATH}"), ("PIP_NO_INDEX", "1"), ("PIP_FIND_LINKS", "{root}/wheels"), ("XBENCH_HOME", "{root}/home")];

#[rustfmt::skip]
const MODEL_FOLDER: &[Case] = &[
    case("tokenizer: ../ up to /etc/passwd", Yaml("tokenizer: ../../../../../../../../etc/passwd"), SCEN, 1, &["model `m`", "model.yaml", "`tokenizer: ../../../../../../../../etc/passwd` is not a path inside the model's folder", "no `..`"]),
    case("tokenizer: /etc/passwd", Yaml("tokenizer: /etc/passwd"), SCEN, 1, &["model `m`", "`tokenizer: /etc/passwd` is not a path inside"]),
    case("tokenizer: /etc/shadow", Yaml("tokenizer: /etc/shadow"), SCEN, 1, &["model `m`", "`tokenizer: /etc/shadow` is not a path inside"]),
    case("tokenizer: /dev/zero, which never ends", Yaml("tokenizer: /dev/zero"), SCEN, 1, &["`tokenizer: /dev/zero` is not a path inside"]),
    case("tokenizer: a real tokenizer outside the models root", Yaml("tokenizer: ../../outside/tokenizer.json"), SCEN, 1, &["`tokenizer: ../../outside/tokenizer.json` is not a path inside"]),
    case("tokenizer: another model's", Yaml("tokenizer: ../other/tokenizer.json"), SCEN, 1, &["`tokenizer: ../other/tokenizer.json` is not a path inside"]),
    case("tokenizer: down and back up out of the folder", Yaml("tokenizer: sub/../../other/tokenizer.json"), SCEN, 1, &["`tokenizer: sub/../../other/tokenizer.json`"]),
    case("tokenizer: the absolute path of a real tokenizer", Yaml("tokenizer: {root}/outside/tokenizer.json"), SCEN, 1, &["`tokenizer: {root}/outside/tokenizer.json` is not a path inside"]),
    case("tokenizer.json linked outside, named in model.yaml", Link("models/m/tokenizer.json", "outside/tokenizer.json"), SCEN, 1, &["model `m`: tokenizer", "models/m/tokenizer.json leads outside", "outside/tokenizer.json", "instead of linking"]),
    case("tokenizer.json linked outside, found by its name", Build(default_tokenizer_linked_out), SCEN, 1, &["model `m`: tokenizer", "leads outside"]),
    case("tokenizer.json linked to another model's", Link("models/m/tokenizer.json", "models/other/tokenizer.json"), SCEN, 1, &["model `m`: tokenizer", "leads outside", "models/other/tokenizer.json"]),
    case("tokenizer.json linked to /dev/zero", Link("models/m/tokenizer.json", "/dev/zero"), SCEN, 1, &["model `m`: tokenizer", "leads outside", "/dev/zero"]),
    case("tokenizer.json linked to a secret", Link("models/m/tokenizer.json", "outside/secret.txt"), SCEN, 1, &["model `m`: tokenizer", "leads outside"]),
    case("onnx: another model's", Yaml("onnx: ../other/model.onnx\ntokenizer: tokenizer.json"), SCEN, 1, &["model `m`", "`onnx: ../other/model.onnx` is not a path inside"]),
    case("onnx: outside the models root", Yaml("onnx: ../../outside/model.onnx"), SCEN, 1, &["`onnx: ../../outside/model.onnx` is not a path inside"]),
    case("onnx: an absolute path", Yaml("onnx: {root}/outside/model.onnx"), SCEN, 1, &["`onnx: {root}/outside/model.onnx` is not a path inside"]),
    case("model.onnx linked to another model's", Link("models/m/model.onnx", "models/other/model.onnx"), SCEN, 1, &["model `m`: ONNX file", "leads outside", "models/other/model.onnx"]),
    case("model.onnx linked out of the models root", Link("models/m/model.onnx", "outside/model.onnx"), SCEN, 1, &["models/m/model.onnx points outside the models root", "copy the model"]),
    case("model.yaml linked to a secret", Link("models/m/model.yaml", "outside/secret.yaml"), SCEN, 1, &["model `m`: model.yaml", "leads outside"]),
    case("model.yaml linked to /etc/passwd", Link("models/m/model.yaml", "/etc/passwd"), SCEN, 1, &["model `m`: model.yaml", "leads outside", "/etc/passwd"]),
    case("external data file linked outside", Build(weights_linked_out), SCEN, 1, &["models/m/model.onnx: its external data file", "weights.bin leads outside", "copy `weights.bin` beside model.onnx"]),
    case("external data file linked to /dev/zero", Build(weights_linked_to_zero), SCEN, 1, &["its external data file", "leads outside", "/dev/zero"]),
    case("external data location ../", Build(|r| { external_data(r); relocate_weights(r, "../outs.bin") }), SCEN, 1, &["`../outs.bin`", "outside the ONNX file's folder", "re-export"]),
    case("external data location /etc/passwd", Build(|r| { external_data(r); relocate_weights(r, "/etc/passwd") }), SCEN, 1, &["`/etc/passwd`", "outside the ONNX file's folder"]),
    case("test data file linked to a secret", Link("models/m/test_data_set_0/input_0.pb", "outside/secret.txt"), SCEN, 1, &["model `m`: its test data file", "input_0.pb leads outside", "copy the test data"]),
    case("test data folder linked outside", Build(test_set_linked_out), SCEN, 1, &["model `m`: its test data folder", "test_data_set_0 leads outside"]),
    case("test data file linked to /dev/zero", Link("models/m/test_data_set_0/output_0.pb", "/dev/zero"), SCEN, 1, &["its test data file", "output_0.pb leads outside"]),
    case("test data file that is a named pipe", Build(|r| fifo(&r.join("models/m/test_data_set_0/input_0.pb"))), SCEN, 1, &["its test data file", "input_0.pb is not a regular file"]),
    case("inputs: a value file up and out", Yaml("tokenizer: tokenizer.json\ninputs: {token_type_ids: {file: ../../outside/x.npy}}"), SCEN, 1, &["model `m`", "`inputs.token_type_ids.file`", "lies outside the model's folder"]),
    case("inputs: a value file by absolute path", Yaml("tokenizer: tokenizer.json\ninputs: {token_type_ids: {file: /etc/passwd}}"), SCEN, 1, &["`inputs.token_type_ids.file` = /etc/passwd lies outside"]),
    case("inputs: a value file linked to a secret", Build(value_file_linked_out), SCEN, 1, &["`inputs.token_type_ids.file`", "tt.npy lies outside"]),
    case("inputs: a value file that is a named pipe", Build(|r| { model_yaml(r, "tokenizer: tokenizer.json\ninputs: {token_type_ids: {file: tt.npy}}"); fifo(&r.join("models/m/tt.npy")) }), SCEN, 1, &["`inputs.token_type_ids.file`", "is not a regular file"]),
    case("a models entry that climbs out", Build(|r| write(&r.join("s.yaml"), "name: h\nmodels: [m/../../outside]\nruntimes: [tract-cpu]\ninput_chars: [50]\nbatch_sizes: [1]\nwarmup: 1\niterations: 2\n")), SCEN, 1, &["`models[0]` = `m/../../outside`", "leaves the models root"]),
    case("xbench models lists a linked-out tokenizer without reading it", Link("models/m/tokenizer.json", "outside/secret.txt"), &["models"], 0, &["model `m`", "leads outside", "other"]),
    // What stays allowed.
    case("tokenizer.json linked inside its own folder", Build(tokenizer_linked_inside), SCEN, 0, &[]).present(OK_RUN),
    case("a model folder reached through a link inside the models root", Build(|r| { link(Path::new("m"), &r.join("models/alias")); write(&r.join("s.yaml"), "name: h\nmodels: [alias]\nruntimes: [tract-cpu]\ninput_chars: [50]\nbatch_sizes: [1]\nwarmup: 1\niterations: 2\n") }), SCEN, 0, &[]).present(OK_RUN),
    case("the scenario's own value file outside the models root", Build(scenario_value_file), &["scenario", "scen/s.yaml", "--no-setup", "--out", "out"], 0, &[]).present(OK_RUN),
    case("the scenario's own text file outside its folder", Build(scenario_text_file), &["scenario", "scen/s.yaml", "--no-setup", "--out", "out"], 0, &[]).present(OK_RUN),
];

#[rustfmt::skip]
const HUB_CACHE: &[Case] = &[
    case("a cache whose snapshot links lead into its blobs", Build(|r| { hub_cache(r); }), FETCH, 0, &[]).present(&["models/tiny/model.onnx", "models/tiny/tokenizer.json"]),
    case("a cache whose snapshot holds a link loop", Build(|r| link(Path::new("."), &hub_cache(r).join("loop"))), FETCH, 0, &[]).present(&["models/tiny/model.onnx"]),
    case("snapshot tokenizer.json linked out of the cache", Build(|r| relink(&hub_cache(r), "tokenizer.json", &r.join("outside/tokenizer.json"))), FETCH, 1, &["tokenizer.json of acme/tiny in the Hub cache", "leads outside", "models--acme--tiny", "fetch the model again"]).absent(&["models/tiny"]),
    case("snapshot model.onnx linked out of the cache", Build(|r| relink(&hub_cache(r), "model.onnx", &r.join("outside/model.onnx"))), FETCH, 1, &["model.onnx of acme/tiny in the Hub cache", "leads outside"]).absent(&["models/tiny"]),
    case("snapshot config.json linked to a secret", Build(|r| relink(&hub_cache(r), "config.json", &r.join("outside/secret.txt"))), FETCH, 1, &["config.json of acme/tiny", "leads outside"]).absent(&["models/tiny"]),
    case("snapshot tokenizer.json linked to /etc/passwd", Build(|r| relink(&hub_cache(r), "tokenizer.json", Path::new("/etc/passwd"))), FETCH, 1, &["tokenizer.json of acme/tiny", "leads outside", "/etc/passwd"]).absent(&["models/tiny"]),
    case("snapshot external data linked out of the cache", Build(hub_weights_linked_out), FETCH, 1, &["weights.bin of acme/tiny", "leads outside"]).absent(&["models/tiny"]),
    case("a ref that climbs out of the cache", Build(|r| { hub_cache(r); write(&r.join("hf/hub/models--acme--tiny/refs/main"), "../../../../outside") }), FETCH, 1, &["the ref `main`", "does not hold a commit id", "fetch the model again"]),
    case("a ref linked to a secret", Build(|r| { hub_cache(r); let p = r.join("hf/hub/models--acme--tiny/refs/main"); std::fs::remove_file(&p).unwrap(); link(&r.join("outside/secret.txt"), &p) }), FETCH, 1, &["the ref `main`", "leads outside"]),
    case("a snapshot folder linked out of the cache", Build(hub_snapshot_linked_out), FETCH, 1, &["the snapshot folder of acme/tiny", "leads outside"]).absent(&["models/tiny"]),
    case("a scenario's hf: entry whose cache leads outside fails its cells", Build(|r| { relink(&hub_cache(r), "tokenizer.json", &r.join("outside/tokenizer.json")); write(&r.join("s.yaml"), "name: h\nmodels: [hf:acme/tiny, m]\nruntimes: [tract-cpu]\ninput_chars: [50]\nbatch_sizes: [1]\nwarmup: 1\niterations: 2\n") }), SCEN_I, 0, &["hf:acme/tiny", "leads outside"]).present(OK_RUN).absent(&["models/tiny"]),
];

#[rustfmt::skip]
const ORT_LIBRARY: &[Case] = &[
    case("--ort-lib whose OrtGetApiBase returns NULL", Build(fake_libs), &["runtimes", "--ort-lib", "lib/libnullbase.so"], 0, &["{root}/lib/libnullbase.so (found by --ort-lib)", "`OrtGetApiBase()` returned NULL", "xbench setup ort"]),
    case("--ort-lib whose GetApi returns NULL", Build(fake_libs), &["runtimes", "--ort-lib", "lib/libnullapi.so"], 0, &["lib/libnullapi.so", "`GetApi(31)` returned NULL"]),
    case("--ort-lib without OrtGetApiBase", Build(fake_libs), &["runtimes", "--ort-lib", "lib/libnosymbol.so"], 0, &["lib/libnosymbol.so", "is not ONNX Runtime", "no `OrtGetApiBase`"]),
    case("--ort-lib whose GetVersionString returns NULL", Build(fake_libs), &["runtimes", "--ort-lib", "lib/libnullversion.so"], 0, &["lib/libnullversion.so", "`GetVersionString()` returned NULL"]),
    case("--ort-lib of an ONNX Runtime too old", Build(fake_libs), &["runtimes", "--ort-lib", "lib/liboldversion.so"], 0, &["lib/liboldversion.so", "ONNX Runtime 1.16.3", "needs ONNX Runtime 1.31 or newer"]),
    case("--ort-lib that is a text file", Build(fake_libs), &["runtimes", "--ort-lib", "lib/libtext.so"], 0, &["cannot load ONNX Runtime from", "lib/libtext.so"]),
    case("ORT_DYLIB_PATH whose OrtGetApiBase returns NULL", Build(fake_libs), &["runtimes"], 0, &["lib/libnullbase.so (found by ORT_DYLIB_PATH)", "returned NULL"]).env(&[("ORT_DYLIB_PATH", "{root}/lib/libnullbase.so")]),
    case("xbench scenario --ort-lib whose GetApi returns NULL", Build(ort_scenario), &["scenario", "s.yaml", "--no-setup", "--ort-lib", "lib/libnullapi.so", "--out", "out"], 0, &["ort-cpu", "not usable", "`GetApi(31)` returned NULL"]).present(OK_RUN),
    // Plugin libraries are probed in a process of their own: one that crashes is named, never loaded, and the rest runs.
    case("a plugin library that crashes as it registers", Build(|r| plugin_scenario(r, "crashep")), PLUGIN_SCEN, 0, &["crashy", "lib/libcrashep.so crashed a probe process with signal 11 (SIGSEGV)", "ONNX Runtime 1.31.1", "xbench setup ep"]).present(OK_RUN),
    case("a plugin library that crashes as it registers, --in-process", Build(|r| plugin_scenario(r, "crashep")), &["scenario", "s.yaml", "--no-setup", "--in-process", "--ort-lib", "ort/libonnxruntime.so.1.31.1", "--out", "out"], 0, &["lib/libcrashep.so crashed a probe process with signal 11 (SIGSEGV)"]).present(OK_RUN),
    case("a plugin library that hands back a garbage factory", Build(|r| plugin_scenario(r, "garbageep")), PLUGIN_SCEN, 0, &["lib/libgarbageep.so crashed a probe process with signal"]).present(OK_RUN),
    case("xbench runtimes with --ep-lib of a plugin library that aborts", Build(plugin_libs), &["runtimes", "--ort-lib", "ort/libonnxruntime.so.1.31.1", "--ep-lib", "openvino=lib/libabortep.so"], 0, &["ort-openvino", "lib/libabortep.so crashed a probe process with signal 6 (SIGABRT)"]),
    case("--ep-lib with a name xbench does not know", Build(|_| {}), &["runtimes", "--ep-lib", "openvnio=lib/libcrashep.so"], 1, &["`--ep-lib openvnio=lib/libcrashep.so`", "`openvnio` is not a plugin execution provider xbench knows", "openvino, webgpu, mlx, tensorrt-rtx"]),
    case("xbench scenario --in-process --ort-lib whose OrtGetApiBase returns NULL", Build(ort_scenario), &["scenario", "s.yaml", "--no-setup", "--in-process", "--ort-lib", "lib/libnullbase.so", "--out", "out"], 0, &["ort-cpu", "`OrtGetApiBase()` returned NULL"]).present(OK_RUN),
];

#[rustfmt::skip]
const HELPERS_ISOLATED: &[Case] = &[
    case("xbench runtimes in a folder of Python traps", Build(python_trap), &["runtimes"], 0, &[]).env(TRAPPED),
    case("xbench setup ort in a folder of Python traps", Build(|r| { python_trap(r); fake_wheel(r) }), &["setup", "ort"], 0, &[]).env(TRAPPED).present(&["home/onnxruntime-1.31.1/libonnxruntime.so.1.31.1"]),
    case("xbench scenario in a folder of Python traps, fetching ONNX Runtime, with a Python runtime beside it", Build(trapped_scenario), &["scenario", "s.yaml", "--ignore-failures", "--out", "out"], 0, &[]).env(TRAPPED).present(&["out/results.json", "home/onnxruntime-1.31.1/libonnxruntime.so.1.31.1", "ran-prog-py"]),
    case("an external runtime named by a bare name runs the scenario's file, not one on PATH", Build(bare_external), SCEN_I, 0, &[]).env(&[("PATH", "{root}/bin:{PATH}")]).present(&["out/results.json", "ran-prog"]),
];

/// A scenario running `m` on ort-cpu whose graph ONNX Runtime optimizes is saved at `path`.
fn optimized_at(root: &Path, path: &str) {
    write(&root.join("s.yaml"), &format!("name: o\nmodels: [m]\nruntimes: [{{name: o, runtime: ort-cpu, session: {{optimized_model: {path}}}}}]\ninput_chars: [50]\nbatch_sizes: [1]\nwarmup: 1\niterations: 2\n"));
}

/// A finished run in `old/` (results, report) and one in `new/`.
fn two_runs(root: &Path) {
    for out in ["old", "new"] {
        let ran = common::xbench().current_dir(root).args(["scenario", "s.yaml", "--no-setup", "--quiet", "--out", out]).output().unwrap();
        assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    }
}

/// `busy/`, its lock held by this test process (as a running scenario holds it), and a results file.
fn busy(root: &Path) {
    std::fs::copy(repo("tests/data/machine-a.json"), root.join("a.json")).unwrap();
    std::fs::create_dir_all(root.join("busy")).unwrap();
    let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(root.join("busy/.xbench-lock")).unwrap();
    std::fs::write(root.join("busy/.xbench-lock"), "4242").unwrap();
    // SAFETY: flock(2) on a descriptor this test owns; kept open (and locked) until the test process ends.
    assert_eq!(unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX | libc::LOCK_NB) }, 0);
    std::mem::forget(lock);
}

#[rustfmt::skip]
const FILES_WRITTEN: &[Case] = &[
    case("optimized_model: the model's own file", Build(|r| optimized_at(r, "models/m/model.onnx")), SCEN, 1, &["runtime `o`", "models/m/model.onnx is a file of the run being measured", "would destroy it"]).kept(&["models/m/model.onnx"]).absent(&["out"]),
    case("optimized_model: the scenario", Build(|r| optimized_at(r, "s.yaml")), SCEN, 1, &["s.yaml is a file of the run being measured"]).kept(&["s.yaml"]),
    case("optimized_model: a file of the user's", Build(|r| { write(&r.join("mine.onnx"), "mine"); optimized_at(r, "mine.onnx") }), SCEN, 1, &["mine.onnx exists, and xbench did not make it as the optimized graph"]).kept(&["mine.onnx"]),
    case("optimized_model: a link to a file outside", Build(|r| { link(&r.join("outside/secret.txt"), &r.join("opt.onnx")); optimized_at(r, "opt.onnx") }), SCEN, 1, &["opt.onnx is a symbolic link"]).kept(&["outside/secret.txt"]),
    case("optimized_model in a folder that does not exist", Build(|r| optimized_at(r, "nowhere/opt.onnx")), SCEN, 1, &["runtime `o`", "`session.optimized_model` is nowhere/opt.onnx, in a folder nowhere that does not exist", "create the folder"]).absent(&["out", "nowhere"]),
    case("feeds --out the scenario itself", Build(|_| {}), &["feeds", "s.yaml", "--out", "s.yaml"], 1, &["s.yaml is a file of the run being measured"]).kept(&["s.yaml"]),
    case("feeds --out a model's tokenizer", Build(|_| {}), &["feeds", "s.yaml", "--out", "models/m/tokenizer.json"], 1, &["models/m/tokenizer.json is a file of the run being measured"]).kept(&["models/m/tokenizer.json"]),
    case("feeds --out a file of the user's", Build(|_| {}), &["feeds", "s.yaml", "--out", "outside/secret.txt"], 1, &["outside/secret.txt exists, and xbench did not make it as feeds"]).kept(&["outside/secret.txt"]),
    case("feeds --out a new file, then over it again", Build(|r| { let ran = common::xbench().current_dir(r).args(["feeds", "s.yaml", "--out", "f.json"]).output().unwrap(); assert!(ran.status.success()) }), &["feeds", "s.yaml", "--out", "f.json"], 0, &[]).present(&["f.json"]),
    case("make-tiny-bert --out a user's model", Build(|r| { std::fs::create_dir_all(r.join("models/user")).unwrap(); std::fs::copy(repo("tests/data/models/tiny-bert-int8/model.onnx"), r.join("models/user/model.onnx")).unwrap(); }), &["make-tiny-bert", "--out", "models/user"], 1, &["models/user/model.onnx exists, and xbench did not make it as the tiny test model"]).kept(&["models/user/model.onnx"]).absent(&["models/user/config.json"]),
    case("make-tiny-bert --out a model xbench made", Build(|_| {}), &["make-tiny-bert", "--out", "models/m"], 0, &[]),
    case("report --out an earlier run's folder", Build(two_runs), &["report", "new/results.json", "--out", "old"], 1, &["old holds an earlier run (its results.json), which is not among the results given", "choose a new or empty folder"]).kept(&["old/results.json", "old/report.md", "old/results.csv", "new/results.json"]),
    case("report of a run into its own folder", Build(two_runs), &["report", "old/results.json", "--out", "old"], 0, &[]).kept(&["old/results.json"]),
    case("report --out a folder a running scenario holds", Build(busy), &["report", "a.json", "--out", "busy"], 1, &["another xbench run (process 4242) is writing to busy"]).absent(&["busy/report.md"]),
];

#[test]
fn files_xbench_writes_are_new_or_its_own_never_the_run_s() {
    run_all("files-written", FILES_WRITTEN);
}

#[test]
fn a_report_md_replaced_by_a_link_during_a_run_is_not_written_through() {
    let tmp = tempfile::Builder::new().prefix("hostile-report-link-").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let root = tmp.path();
    base(root);
    // A group that stalls 3 s on its cell, then tract's: report.md's tables are written after the
    // first (group-end writes are at least 2 s apart), and again at the end, through the link
    // planted in between unless xbench refuses it.
    write(&root.join("s.yaml"), "name: l\nmodels: [m]\nruntimes: [fake-hang, tract-cpu]\ninput_chars: [50]\nbatch_sizes: [1]\nwarmup: 0\niterations: 2\ncell_timeout_s: 3\n");
    let secret = std::fs::read(root.join("outside/secret.txt")).unwrap();
    let child = common::xbench_with_fakes().current_dir(root).args(["scenario", "s.yaml", "--no-setup", "--ignore-failures", "--out", "out"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let report = root.join("out/report.md");
    let started = std::time::Instant::now();
    while !report.is_file() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::remove_file(&report).unwrap();
    link(&root.join("outside/secret.txt"), &report);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("out/report.md is a symbolic link") && stderr.contains("fix: remove the link"), "{stderr}");
    assert_eq!(std::fs::read(root.join("outside/secret.txt")).unwrap(), secret, "nothing written through the link");
    assert!(read_results_ok(&root.join("out/results.json")), "the results are kept");
}

fn read_results_ok(p: &Path) -> bool {
    xbench::results::read_results(p).is_ok_and(|r| r.complete)
}

#[test]
fn files_of_a_model_stay_inside_its_folder() {
    run_all("model-folder", MODEL_FOLDER);
}

#[test]
fn hub_cache_entries_stay_inside_the_cache() {
    run_all("hub-cache", HUB_CACHE);
}

#[test]
fn a_library_that_is_not_onnx_runtime_is_an_error_not_a_panic() {
    run_all("ort-library", ORT_LIBRARY);
}

#[test]
fn helpers_run_isolated_from_the_working_folder() {
    run_all("isolated", HELPERS_ISOLATED);
}

#[test]
fn the_battery_is_large_enough() {
    let n = MODEL_FOLDER.len() + HUB_CACHE.len() + ORT_LIBRARY.len() + HELPERS_ISOLATED.len() + FILES_WRITTEN.len();
    assert!(n >= 30, "{n} cases");
    let mut names = std::collections::HashSet::new();
    assert!([MODEL_FOLDER, HUB_CACHE, ORT_LIBRARY, HELPERS_ISOLATED, FILES_WRITTEN].iter().flat_map(|c| c.iter()).all(|c| names.insert(c.name)), "case names are distinct");
}

fn run_all(group: &str, cases: &[Case]) {
    let parent = tempfile::Builder::new().prefix(&format!("hostile-{group}-")).tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let root = parent.path().join(format!("case-{i:02}"));
        std::fs::create_dir_all(&root).unwrap();
        base(&root);
        match c.given {
            Yaml(lines) => model_yaml(&root, lines),
            Link(at, to) => {
                let at = root.join(at);
                let _ = std::fs::remove_file(&at);
                link(&if to.starts_with('/') { to.into() } else { root.join(to) }, &at);
            }
            Build(f) => f(&root),
        }
        if let Err(why) = check(c, &root, &parent.path().join(format!("case-{i:02}"))) {
            failures.push(format!("case {i} `{}`: {why}", c.name));
        }
    }
    if !failures.is_empty() {
        let kept = parent.keep();
        panic!("{} of {} cases failed (their folders are in {}):\n\n{}", failures.len(), cases.len(), kept.display(), failures.join("\n\n"));
    }
}

/// Runs one case in `root`, its output kept beside it (`log`.out, `log`.err); `Err` says what was wrong.
fn check(c: &Case, root: &Path, log: &Path) -> Result<(), String> {
    let fill = |s: &str| s.replace("{root}", &root.display().to_string()).replace("{PATH}", &std::env::var("PATH").unwrap_or_default());
    let (out_path, err_path) = (log.with_extension("out"), log.with_extension("err"));
    let mut cmd = common::xbench();
    cmd.current_dir(root).args(c.args).stdout(std::fs::File::create(&out_path).unwrap()).stderr(std::fs::File::create(&err_path).unwrap());
    for var in ["PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "ORT_DYLIB_PATH", "HF_TOKEN", "RUST_LOG"] {
        cmd.env_remove(var);
    }
    cmd.env("XBENCH_HOME", root.join(".xbench-none")).env("HF_HOME", root.join("hf")).env("HF_HUB_OFFLINE", "1").env("HF_ENDPOINT", "http://127.0.0.1:9");
    for (k, v) in c.env {
        cmd.env(k, fill(v));
    }
    let before: Vec<Option<Vec<u8>>> = c.kept.iter().map(|p| std::fs::read(root.join(p)).ok()).collect();
    if let Some(p) = c.kept.iter().zip(&before).find_map(|(p, b)| b.is_none().then_some(p)) {
        return Err(format!("{p} is not there before the command"));
    }
    let Some(code) = run_limited(&mut cmd, Duration::from_secs(60)) else {
        return Err("xbench did not finish within 60 s, and was killed".into());
    };
    let text = format!("{}{}", std::fs::read_to_string(&out_path).unwrap_or_default(), std::fs::read_to_string(&err_path).unwrap_or_default());
    let shown = format!("exit {code}\n{text}");
    println!("[{}] {shown}", c.name);
    if text.contains("panicked") {
        return Err(format!("xbench panicked\n{shown}"));
    }
    if code != c.code {
        return Err(format!("expected exit code {}\n{shown}", c.code));
    }
    let missing: Vec<String> = c.says.iter().map(|s| fill(s)).chain((!c.says.is_empty()).then(|| "fix:".to_string())).filter(|s| !text.contains(s.as_str())).collect();
    if !missing.is_empty() {
        return Err(format!("the output lacks {missing:?}\n{shown}"));
    }
    if text.contains(SECRET) || text.contains("root:x:0:0") {
        return Err(format!("a file outside the model's folder was read and shown\n{shown}"));
    }
    if let Some(p) = leaked(root, root) {
        return Err(format!("{} was written or left: a file outside was read, or a trap ran\n{shown}", p.display()));
    }
    if c.args[0] == "scenario" && c.code == 1 && root.join("out/results.json").exists() {
        return Err(format!("a refused scenario wrote results\n{shown}"));
    }
    for (p, b) in c.kept.iter().zip(before) {
        if std::fs::read(root.join(p)).ok() != b {
            return Err(format!("{p} changed\n{shown}"));
        }
    }
    for p in c.present {
        if !root.join(p).exists() {
            return Err(format!("{p} is missing\n{shown}"));
        }
    }
    for p in c.absent {
        if root.join(p).symlink_metadata().is_ok() {
            return Err(format!("{p} should not be there\n{shown}"));
        }
    }
    Ok(())
}

/// A file under `dir` (links not followed, `outside/` left out) that is a trap's marker or holds
/// the secret.
fn leaked(root: &Path, dir: &Path) -> Option<std::path::PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.filter_map(|e| e.ok()) {
        let (p, t) = (e.path(), e.file_type().ok()?);
        if p == root.join("outside") {
            continue;
        }
        if e.file_name().to_string_lossy().starts_with("MARKER-") {
            return Some(p);
        }
        if t.is_dir() {
            if let Some(found) = leaked(root, &p) {
                return Some(found);
            }
        } else if t.is_file() && std::fs::read(&p).is_ok_and(|b| b.windows(SECRET.len()).any(|w| w == SECRET.as_bytes())) {
            return Some(p);
        }
    }
    None
}

// ---- What some cases put in place ----

fn default_tokenizer_linked_out(r: &Path) {
    model_yaml(r, "onnx: model.onnx");
    std::fs::remove_file(r.join("models/m/tokenizer.json")).unwrap();
    link(&r.join("outside/tokenizer.json"), &r.join("models/m/tokenizer.json"));
}

fn tokenizer_linked_inside(r: &Path) {
    let m = r.join("models/m");
    std::fs::create_dir_all(m.join("tok")).unwrap();
    std::fs::rename(m.join("tokenizer.json"), m.join("tok/real.json")).unwrap();
    link(Path::new("tok/real.json"), &m.join("tokenizer.json"));
}

fn weights_linked_out(r: &Path) {
    let m = external_data(r);
    std::fs::rename(m.join("weights.bin"), r.join("outside/weights.bin")).unwrap();
    link(&r.join("outside/weights.bin"), &m.join("weights.bin"));
}

fn weights_linked_to_zero(r: &Path) {
    let m = external_data(r);
    std::fs::remove_file(m.join("weights.bin")).unwrap();
    link(Path::new("/dev/zero"), &m.join("weights.bin"));
}

fn test_set_linked_out(r: &Path) {
    std::fs::create_dir_all(r.join("outside/set")).unwrap();
    link(&r.join("outside/secret.txt"), &r.join("outside/set/input_0.pb"));
    link(&r.join("outside/set"), &r.join("models/m/test_data_set_0"));
}

fn value_file_linked_out(r: &Path) {
    model_yaml(r, "tokenizer: tokenizer.json\ninputs: {token_type_ids: {file: tt.npy}}");
    link(&r.join("outside/secret.txt"), &r.join("models/m/tt.npy"));
}

fn scenario_value_file(r: &Path) {
    plain_model(r);
    npy(&r.join("data/x.npy"), &[2, 3], 0.5);
    write(&r.join("scen/s.yaml"), "name: h\nmodels: [plain]\nruntimes: [tract-cpu]\ninput_chars: [50]\nbatch_sizes: [1]\nwarmup: 1\niterations: 2\ninputs: {x: {file: ../data/x.npy}}\n");
}

fn scenario_text_file(r: &Path) {
    let prose = std::fs::read_to_string(repo("src/scenario/corpus/botchan.txt")).unwrap();
    write(&r.join("prose/p.txt"), &prose[..4000]);
    write(&r.join("scen/s.yaml"), "name: h\nmodels: [m]\nruntimes: [tract-cpu]\ninput_chars: [50]\nbatch_sizes: [1]\nwarmup: 1\niterations: 2\ntext_file: ../prose/p.txt\n");
}

fn hub_weights_linked_out(r: &Path) {
    let snap = hub_cache(r);
    let staging = r.join("outside/ext");
    xbench::onnx::tiny_bert::write_external(&Default::default(), &staging, "weights.bin").unwrap();
    relink(&snap, "model.onnx", &r.join("hf/hub/models--acme--tiny/blobs/graph"));
    std::fs::copy(staging.join("model.onnx"), r.join("hf/hub/models--acme--tiny/blobs/graph")).unwrap();
    link(&staging.join("weights.bin"), &snap.join("weights.bin"));
}

fn hub_snapshot_linked_out(r: &Path) {
    let snap = hub_cache(r);
    let away = r.join("outside/snapshot");
    std::fs::create_dir_all(&away).unwrap();
    for f in ["model.onnx", "tokenizer.json", "config.json"] {
        std::fs::copy(snap.join(f), away.join(f)).unwrap();
    }
    std::fs::remove_dir_all(&snap).unwrap();
    link(&away, &snap);
}

const PLUGIN_SCEN: &[&str] = &["scenario", "s.yaml", "--no-setup", "--ort-lib", "ort/libonnxruntime.so.1.31.1", "--out", "out"];

/// `m` on tract-cpu and on a provider from the plugin library `lib/lib<lib>.so`.
fn plugin_scenario(r: &Path, lib: &str) {
    plugin_libs(r);
    write(&r.join("s.yaml"), &format!("name: p\nmodels: [m]\nruntimes: [tract-cpu, {{name: crashy, ep: CrashyExecutionProvider, ep_library: lib/lib{lib}.so}}]\ninput_chars: [50]\nbatch_sizes: [1]\nwarmup: 1\niterations: 2\n"));
}

fn ort_scenario(r: &Path) {
    fake_libs(r);
    write(&r.join("s.yaml"), "name: h\nmodels: [m]\nruntimes: [tract-cpu, ort-cpu]\ninput_chars: [50]\nbatch_sizes: [1]\nwarmup: 1\niterations: 2\n");
}

fn trapped_scenario(r: &Path) {
    python_trap(r);
    fake_wheel(r);
    let ran = format!("open({:?}, 'w').write('ran')\n", r.join("ran-prog-py").display().to_string());
    write(&r.join("prog.py"), &format!("{ran}{REFUSING_PROGRAM}"));
    write(&r.join("s.yaml"), "name: h\nmodels: [m]\nruntimes: [tract-cpu, ort-cpu, {name: ext, external: prog.py}]\ninput_chars: [50]\nbatch_sizes: [1]\nwarmup: 1\niterations: 2\n");
}

fn bare_external(r: &Path) {
    refusing_prog(r);
    let marker = r.join("MARKER-path-prog");
    write(&r.join("bin/prog"), &format!("#!/bin/sh\necho ran > '{}'\nexit 1\n", marker.display()));
    Command::new("chmod").arg("+x").arg(r.join("bin/prog")).stdout(Stdio::null()).status().unwrap();
    write(&r.join("s.yaml"), "name: h\nmodels: [m]\nruntimes: [tract-cpu, {name: ext, external: prog}]\ninput_chars: [50]\nbatch_sizes: [1]\nwarmup: 1\niterations: 2\n");
}
