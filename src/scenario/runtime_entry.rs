//! A scenario's runtimes as written — a registered name (`ort-cpu`), or a table that names a
//! runtime of the user's own: a registered runtime with options, any ONNX Runtime execution
//! provider (built in, or from a plugin library), or an external program — checked into
//! `RuntimeRequest`s. Which runtime a request stands for is the registry's business (`runtimes`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use super::RuntimeId;

/// One entry of `runtimes:` as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RuntimeEntry {
    /// A registered runtime by name, with its defaults.
    Name(String),
    /// `{name: …, runtime: …|ep: …|external: …, options: {…}, session: {…}}`.
    Table(BTreeMap<String, Value>),
}

/// What a runtime request stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeKind {
    /// A registered runtime (`ort-openvino`), by its name.
    Registered(String),
    /// An ONNX Runtime execution provider by ONNX Runtime's name (`OpenVINOExecutionProvider`),
    /// built into the library or registered from a plugin library.
    Ep { provider: String, library: Option<PathBuf> },
    /// A program speaking xbench's external runtime protocol (docs/runtime-protocol.md), and the
    /// Python interpreter the entry gives it (`python:`; else its framework's environment).
    External {
        program: PathBuf,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        python: Option<PathBuf>,
    },
}

/// A runtime of a plan: its name, what it is, and its options as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeRequest {
    pub id: RuntimeId,
    pub kind: RuntimeKind,
    /// The runtime's own options (an execution provider's, an external program's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    /// ONNX Runtime session options (`graph_optimization`, `optimized_model`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub session: BTreeMap<String, String>,
}

impl RuntimeRequest {
    /// A registered runtime with its defaults.
    pub fn named(id: RuntimeId) -> RuntimeRequest {
        RuntimeRequest { id, kind: RuntimeKind::Registered(id.as_str().to_string()), options: BTreeMap::new(), session: BTreeMap::new() }
    }
}

impl RuntimeEntry {
    /// The name the entry gives its runtime.
    pub fn name(&self) -> Option<&str> {
        match self {
            RuntimeEntry::Name(n) => Some(n.trim()),
            RuntimeEntry::Table(t) => t.get("name").and_then(Value::as_str),
        }
    }

    /// Checks the entry (at `key`, e.g. `runtimes[2]`) into a request; relative paths are taken
    /// from `scenario_dir`. An error is the text after the key: what is wrong and the fix.
    pub fn request(&self, scenario_dir: &Path) -> Result<RuntimeRequest, (String, String)> {
        let table = match self {
            RuntimeEntry::Name(name) => {
                let name = name.trim();
                RuntimeId::check_name(name).map_err(|m| (String::new(), format!("= `{name}`: {m}\n  fix: use a runtime `xbench runtimes` lists")))?;
                return Ok(RuntimeRequest::named(RuntimeId::new(name)));
            }
            RuntimeEntry::Table(t) => t,
        };
        const KEYS: &str = "name, runtime, ep, ep_library, external, python, options, session";
        for k in table.keys() {
            if !KEYS.split(", ").any(|x| x == k) {
                return Err((format!(".{k}"), format!("is not a key a runtime entry takes\n  fix: use {KEYS}")));
            }
        }
        let text = |k: &str| -> Result<Option<String>, (String, String)> {
            match table.get(k) {
                None => Ok(None),
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
                Some(v) => Err((format!(".{k}"), format!("= {} is not a name or path\n  fix: write it as text, e.g. `{k}: …`", show(v)))),
            }
        };
        let name = text("name")?.ok_or_else(|| (String::new(), "has no `name`\n  fix: name the runtime as its column should read, e.g. `{name: ort-openvino-fp32, runtime: ort-openvino, options: {precision: FP32}}`".to_string()))?;
        RuntimeId::check_name(&name).map_err(|m| (".name".to_string(), format!("= `{name}`: {m}\n  fix: choose another name")))?;
        let (runtime, ep, library, external) = (text("runtime")?, text("ep")?, text("ep_library")?, text("external")?);
        let python = text("python")?;
        let kind = match (runtime, ep, external) {
            (Some(r), None, None) => RuntimeKind::Registered(r),
            (None, Some(provider), None) => RuntimeKind::Ep { provider, library: library.clone().map(|l| scenario_dir.join(l)) },
            (None, None, Some(program)) => RuntimeKind::External { program: scenario_dir.join(program), python: python.clone().map(|p| interpreter_path(scenario_dir, &p)) },
            (None, None, None) => {
                return Err((String::new(), format!("= `{name}` does not say what it runs\n  fix: add `runtime: ort-openvino` (a registered runtime with options), `ep: SomeExecutionProvider` (any ONNX Runtime execution provider) or `external: path/to/program` (docs/runtime-protocol.md)")))
            }
            _ => return Err((String::new(), format!("= `{name}` gives more than one of `runtime`, `ep` and `external`\n  fix: keep one of them"))),
        };
        if library.is_some() && !matches!(kind, RuntimeKind::Ep { .. }) {
            return Err((".ep_library".into(), "goes with `ep:` only\n  fix: name the execution provider with `ep:`, or remove `ep_library`".into()));
        }
        if python.is_some() && !matches!(kind, RuntimeKind::External { .. }) {
            return Err((".python".into(), "goes with `external:` only (the interpreter a Python program runs with)\n  fix: remove `python`, or name the program with `external:`".into()));
        }
        if table.contains_key("session") && matches!(kind, RuntimeKind::External { .. }) {
            return Err((".session".into(), "sets ONNX Runtime's session, which an external program does not have\n  fix: pass the program's own settings under `options:` (it receives them in `hello`)".into()));
        }
        let mut session = scalars(table, "session")?;
        // A path among the session options is the scenario's, like every path in it.
        for key in ["optimized_model", "optimized_cache"] {
            if let Some(p) = session.get_mut(key) {
                *p = scenario_dir.join(&*p).to_string_lossy().into_owned();
            }
        }
        Ok(RuntimeRequest { id: RuntimeId::new(&name), kind, options: scalars(table, "options")?, session })
    }
}

/// `python:` as written: a path (relative to the scenario file) when it holds a `/`, else a
/// command looked up on `PATH` (`python3.12`).
fn interpreter_path(scenario_dir: &Path, given: &str) -> PathBuf {
    if given.contains('/') || given.contains('\\') {
        scenario_dir.join(given)
    } else {
        PathBuf::from(given)
    }
}

/// A table of scalar values as text (`true`, `16`, `FP32`).
fn scalars(table: &BTreeMap<String, Value>, key: &str) -> Result<BTreeMap<String, String>, (String, String)> {
    let Some(v) = table.get(key) else { return Ok(BTreeMap::new()) };
    let Value::Mapping(m) = v else {
        return Err((format!(".{key}"), format!("= {} is not a table\n  fix: write `{key}: {{name: value, …}}`", show(v))));
    };
    let mut out = BTreeMap::new();
    for (k, v) in m {
        let Some(k) = k.as_str() else { return Err((format!(".{key}"), format!("has a key {} that is not a name\n  fix: write keys as names", show(k)))) };
        let v = match v {
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            other => return Err((format!(".{key}.{k}"), format!("= {} is not a single value\n  fix: give a text, number or true/false", show(other)))),
        };
        out.insert(k.to_string(), v);
    }
    Ok(out)
}

fn show(v: &Value) -> String {
    serde_yaml::to_string(v).map(|s| s.trim().replace('\n', " ")).unwrap_or_else(|_| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(yaml: &str) -> RuntimeEntry {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn names_and_tables_become_requests() {
        let dir = Path::new("scen");
        assert_eq!(entry("ort-cpu").request(dir).unwrap(), RuntimeRequest::named(RuntimeId::ORT_CPU));
        let r = entry("{name: ov-fp32, runtime: ort-openvino, options: {precision: FP32, num_streams: 2, cache: true}}").request(dir).unwrap();
        assert_eq!((r.id.as_str(), &r.kind), ("ov-fp32", &RuntimeKind::Registered("ort-openvino".into())));
        assert_eq!(r.options.get("num_streams").map(String::as_str), Some("2"));
        assert_eq!(r.options.get("cache").map(String::as_str), Some("true"));
        let r = entry("{name: my-ep, ep: FooExecutionProvider, ep_library: lib/libfoo.so, session: {graph_optimization: basic}}").request(dir).unwrap();
        assert_eq!(r.kind, RuntimeKind::Ep { provider: "FooExecutionProvider".into(), library: Some(dir.join("lib/libfoo.so")) });
        assert_eq!(r.session.get("graph_optimization").map(String::as_str), Some("basic"));
        let r = entry("{name: torch, external: ../scripts/runtimes/torch_hf.py}").request(dir).unwrap();
        assert_eq!(r.kind, RuntimeKind::External { program: dir.join("../scripts/runtimes/torch_hf.py"), python: None });
        let r = entry("{name: mlx, external: ../scripts/runtimes/mlx_hf.py, python: ../env/bin/python3}").request(dir).unwrap();
        assert_eq!(r.kind, RuntimeKind::External { program: dir.join("../scripts/runtimes/mlx_hf.py"), python: Some(dir.join("../env/bin/python3")) });
        let r = entry("{name: mlx, external: a.py, python: python3.12}").request(dir).unwrap();
        assert_eq!(r.kind, RuntimeKind::External { program: dir.join("a.py"), python: Some(PathBuf::from("python3.12")) });
    }

    #[test]
    fn bad_tables_name_the_key_and_the_fix() {
        for (yaml, key, says) in [
            ("{runtime: ort-cpu}", "", "has no `name`"),
            ("{name: x}", "", "does not say what it runs"),
            ("{name: x, runtime: a, external: b}", "", "more than one"),
            ("{name: x, runtime: a, colour: red}", ".colour", "is not a key"),
            ("{name: X Y, runtime: a}", ".name", "cannot name a runtime"),
            ("{name: x, runtime: a, options: [1]}", ".options", "is not a table"),
            ("{name: x, runtime: a, options: {a: [1, 2]}}", ".options.a", "not a single value"),
            ("{name: x, runtime: a, ep_library: l.so}", ".ep_library", "goes with `ep:` only"),
            ("{name: x, runtime: ort-cpu, python: /usr/bin/python3}", ".python", "goes with `external:` only"),
            ("{name: x, runtime: 3}", ".runtime", "is not a name"),
        ] {
            let (k, m) = entry(yaml).request(Path::new(".")).unwrap_err();
            assert_eq!(k, key, "{yaml}: {m}");
            assert!(m.contains(says) && m.contains("\n  fix: "), "{yaml}: {m}");
        }
    }
}
