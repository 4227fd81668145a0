//! What the meaning of a run's cells depends on besides the scenario: the xbench that measured
//! them, the machine, what the timer covers and how inputs and outputs move, threads, process
//! isolation, the runtimes' library versions, and the bytes of every file a model or the scenario
//! reads (digests). A resumed run must find all of it as it was, wherever finished cells depend on it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The conditions of a run, recorded in its results file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conditions {
    /// xbench's version and the commit it was built from, e.g. `0.1.0 (76a4e69c1b2d)`.
    pub xbench: String,
    /// The CPU, the cores the process may use, the OS and architecture.
    pub machine: String,
    /// `end-to-end` or `device-resident` (`--timing`).
    pub timing: String,
    pub pinned_io: bool,
    pub cuda_graph: bool,
    pub no_tf32: bool,
    /// GPU index (`--device`).
    pub device: u32,
    /// Intra-op threads every runtime was given (the scenario's `threads`, else the cores available).
    pub threads: usize,
    /// `process` (a child process per group) or `in-process` (`--in-process`).
    pub isolation: String,
    /// The GPU used, when a CUDA runtime ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<String>,
    /// Library version of each runtime usable here, by runtime name.
    #[serde(default)]
    pub runtimes: BTreeMap<String, String>,
    /// Every file the models and the scenario read, with its size and digest.
    #[serde(default)]
    pub files: Vec<FileDigest>,
}

/// One file a run reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    /// The model whose file it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The runtime whose file it is (an external program, a plugin library); with neither, a file
    /// of the scenario (its text, input values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// The file, relative to the model's folder (or as the scenario names it).
    pub file: String,
    pub bytes: u64,
    /// XXH64 of its bytes, 16 hexadecimal digits.
    pub xxh64: String,
}

impl FileDigest {
    fn describe(&self) -> String {
        format!("{} bytes, xxh64 {}", self.bytes, self.xxh64)
    }
}

/// Which cells a condition concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Model(String),
    Runtime(String),
}

/// One condition that differs between two runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub scope: Scope,
    /// What differs, e.g. `--timing` or `model `tiny-bert`: tokenizer.json`.
    pub what: String,
    pub old: String,
    pub new: String,
    /// How to give the old value again.
    pub fix: String,
}

fn flag(name: &str, on: bool) -> String {
    if on {
        format!("pass {name}")
    } else {
        format!("leave {name} out")
    }
}

/// Every condition of `new` that differs from `old`. Runtime versions and the GPU differ only
/// where both runs know them (a runtime not usable now skips its cells); a file present in one
/// run and not the other differs.
pub fn differences(old: &Conditions, new: &Conditions) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut add = |scope: Scope, what: &str, o: String, n: String, fix: String| {
        if o != n {
            out.push(Difference { scope, what: what.to_string(), old: o, new: n, fix });
        }
    };
    add(Scope::All, "xbench", old.xbench.clone(), new.xbench.clone(), format!("resume with the xbench that started the run ({})", old.xbench));
    add(Scope::All, "machine", old.machine.clone(), new.machine.clone(), "resume on the machine that started the run, with the same cores available".into());
    add(Scope::All, "--timing", old.timing.clone(), new.timing.clone(), format!("pass --timing {}", old.timing));
    add(Scope::All, "--pinned-io", old.pinned_io.to_string(), new.pinned_io.to_string(), flag("--pinned-io", old.pinned_io));
    add(Scope::All, "--cuda-graph", old.cuda_graph.to_string(), new.cuda_graph.to_string(), flag("--cuda-graph", old.cuda_graph));
    add(Scope::All, "--no-tf32", old.no_tf32.to_string(), new.no_tf32.to_string(), flag("--no-tf32", old.no_tf32));
    add(Scope::All, "--device", old.device.to_string(), new.device.to_string(), format!("pass --device {}", old.device));
    add(Scope::All, "threads", old.threads.to_string(), new.threads.to_string(), format!("resume where {} threads are given (the cores available, or the scenario's `threads`)", old.threads));
    add(Scope::All, "isolation", old.isolation.clone(), new.isolation.clone(), flag("--in-process", old.isolation == "in-process"));
    if let (Some(o), Some(n)) = (&old.gpu, &new.gpu) {
        add(Scope::All, "GPU", o.clone(), n.clone(), "resume on the GPU that started the run (--device)".into());
    }
    for (runtime, o) in &old.runtimes {
        if let Some(n) = new.runtimes.get(runtime) {
            let fix = format!("resume with {runtime} {o} (`xbench runtimes` shows the library found; --ort-lib or --ep-lib names one)");
            add(Scope::Runtime(runtime.clone()), &format!("{runtime} version"), o.clone(), n.clone(), fix);
        }
    }
    let key = |f: &FileDigest| (f.model.clone(), f.runtime.clone(), f.file.clone());
    let mut keys: Vec<(Option<String>, Option<String>, String)> = old.files.iter().chain(&new.files).map(key).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let find = |list: &[FileDigest]| list.iter().find(|f| key(f) == k).map(FileDigest::describe).unwrap_or_else(|| "absent".into());
        let (scope, what) = match (&k.0, &k.1) {
            (Some(m), _) => (Scope::Model(m.clone()), format!("model `{m}`: {}", k.2)),
            (None, Some(rt)) => (Scope::Runtime(rt.clone()), format!("runtime `{rt}`: {}", k.2)),
            (None, None) => (Scope::All, format!("scenario file {}", k.2)),
        };
        add(scope, &what, find(&old.files), find(&new.files), format!("put back the {} the run started with", k.2));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Conditions {
        Conditions {
            xbench: "0.1.0 (abc)".into(),
            machine: "cpu, 2 cores".into(),
            timing: "end-to-end".into(),
            threads: 2,
            isolation: "process".into(),
            runtimes: [("ort-cpu".to_string(), "1.31.1".to_string())].into(),
            files: vec![FileDigest { model: Some("m".into()), runtime: None, file: "model.onnx".into(), bytes: 10, xxh64: "00".into() }],
            ..Default::default()
        }
    }

    #[test]
    fn each_change_is_named_with_its_scope_and_unknown_versions_do_not_count() {
        assert!(differences(&base(), &base()).is_empty());
        let mut new = base();
        new.timing = "device-resident".into();
        new.pinned_io = true;
        new.runtimes.insert("ort-cpu".into(), "1.22.0".into());
        new.files[0].xxh64 = "01".into();
        new.files.push(FileDigest { model: Some("m".into()), runtime: None, file: "model.yaml".into(), bytes: 3, xxh64: "02".into() });
        let d = differences(&base(), &new);
        let seen: Vec<(&str, &str, &str, &Scope)> = d.iter().map(|d| (d.what.as_str(), d.old.as_str(), d.new.as_str(), &d.scope)).collect();
        assert_eq!(
            seen,
            [
                ("--timing", "end-to-end", "device-resident", &Scope::All),
                ("--pinned-io", "false", "true", &Scope::All),
                ("ort-cpu version", "1.31.1", "1.22.0", &Scope::Runtime("ort-cpu".into())),
                ("model `m`: model.onnx", "10 bytes, xxh64 00", "10 bytes, xxh64 01", &Scope::Model("m".into())),
                ("model `m`: model.yaml", "absent", "3 bytes, xxh64 02", &Scope::Model("m".into())),
            ]
        );
        assert_eq!(d[1].fix, "leave --pinned-io out");
        let mut gone = base();
        gone.runtimes.clear();
        assert!(differences(&base(), &gone).is_empty(), "a runtime not usable now says nothing of its version");
    }
}
