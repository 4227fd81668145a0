//! What a model's inputs are fed when xbench does not tokenize text for them: values a user gives
//! per input (a constant, a range, a distribution, a file), the role of a token input, a shape —
//! written under `inputs:` in a scenario or in a model's model.yaml.
//!
//! ```yaml
//! inputs:
//!   sr: 16000                          # a constant, whatever the input's shape
//!   x: {uniform: [-1, 1]}              # floats, uniform in [lo, hi)
//!   noise: {normal: [0, 0.5]}          # floats, normal (mean, std)
//!   k: {integers: [0, 100]}            # integers, uniform in [lo, hi)
//!   h: {file: state.npy}               # a .npy or ONNX TensorProto .pb file
//!   ids: {role: token_ids}             # this input takes the tokenizer's token ids
//!   pixels: {shape: [1, 3, 224, 224]}  # the shape to generate
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_yaml::Value;

/// One value, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scalar {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
}

/// Where an input's values come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Values {
    /// Every element this value.
    Constant(Scalar),
    /// Floats uniform in [lo, hi).
    Uniform(f64, f64),
    /// Floats from a normal distribution (mean, standard deviation).
    Normal(f64, f64),
    /// Integers uniform in [lo, hi).
    Integers(i64, i64),
    /// A .npy or ONNX TensorProto (.pb) file: the tensor as it is.
    File(PathBuf),
}

/// What a token input carries, filled from the tokenizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    TokenIds,
    AttentionMask,
    TokenTypeIds,
    PositionIds,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::TokenIds, Role::AttentionMask, Role::TokenTypeIds, Role::PositionIds];

    pub fn name(self) -> &'static str {
        match self {
            Role::TokenIds => "token_ids",
            Role::AttentionMask => "attention_mask",
            Role::TokenTypeIds => "token_type_ids",
            Role::PositionIds => "position_ids",
        }
    }

    /// The input name exporters give this role.
    pub fn conventional_name(self) -> &'static str {
        match self {
            Role::TokenIds => "input_ids",
            r => r.name(),
        }
    }
}

/// Which setting decided a part of what an input was fed (its values, or one axis of its shape),
/// as each cell records it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SetBy {
    /// The model's own entry in the scenario's `models:` (`{name: m, dims: …, inputs: …}`).
    Model,
    /// The scenario-wide `dims:` or `inputs:`.
    Scenario,
    /// The model's model.yaml.
    #[serde(rename = "model.yaml")]
    ModelYaml,
    /// Nothing: values generated, or tokenized text.
    #[default]
    Default,
    /// A size fixed in the graph.
    Fixed,
    /// The cell's batch size.
    Batch,
    /// The cell's input length.
    Length,
    /// The shape of the file the values come from.
    File,
    /// The model's own test data set.
    TestData,
}

impl SetBy {
    pub fn name(self) -> &'static str {
        match self {
            SetBy::Model => "model",
            SetBy::Scenario => "scenario",
            SetBy::ModelYaml => "model.yaml",
            SetBy::Default => "default",
            SetBy::Fixed => "fixed",
            SetBy::Batch => "batch",
            SetBy::Length => "length",
            SetBy::File => "file",
            SetBy::TestData => "test_data",
        }
    }
}

/// What one input is fed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Values>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<Vec<usize>>,
}

impl InputSpec {
    /// `self` with whatever `over` sets replacing it (a scenario's spec over a model.yaml's).
    pub fn overridden_by(&self, over: &InputSpec) -> InputSpec {
        InputSpec { values: over.values.clone().or_else(|| self.values.clone()), role: over.role.or(self.role), shape: over.shape.clone().or_else(|| self.shape.clone()) }
    }
}

const FORMS: &str = "a value (`sr: 16000`), or `{uniform: [lo, hi]}`, `{normal: [mean, std]}`, `{integers: [lo, hi]}`, `{file: values.npy}`, `{role: token_ids}` or `{shape: [1, 3, 224, 224]}`";

fn scalar(v: &Value) -> Option<Scalar> {
    match v {
        Value::Bool(b) => Some(Scalar::Bool(*b)),
        Value::Number(n) => n.as_i64().map(Scalar::Int).or_else(|| n.as_f64().map(Scalar::Float)),
        Value::String(s) => Some(Scalar::Text(s.clone())),
        _ => None,
    }
}

fn show(v: &Value) -> String {
    serde_yaml::to_string(v).map(|s| s.trim().replace('\n', " ")).unwrap_or_else(|_| "?".into())
}

fn pair(v: &Value) -> Option<(f64, f64)> {
    match v {
        Value::Sequence(s) if s.len() == 2 => Some((s[0].as_f64()?, s[1].as_f64()?)),
        _ => None,
    }
}

/// Parses an `inputs:` table; file paths are taken from `dir`. An error carries the key below
/// `inputs` (`.sr`, `.x.uniform`) and the message with its fix.
pub fn parse_inputs(table: &BTreeMap<String, Value>, dir: &Path) -> Result<BTreeMap<String, InputSpec>, (String, String)> {
    let mut out = BTreeMap::new();
    for (name, v) in table {
        let key = format!(".{name}");
        let err = |sub: &str, msg: String| (format!("{key}{sub}"), msg);
        let spec = match v {
            Value::Mapping(m) => {
                let mut spec = InputSpec::default();
                for (k, x) in m {
                    let k = k.as_str().unwrap_or("");
                    let sub = format!(".{k}");
                    let values = match k {
                        "value" => Some(Values::Constant(scalar(x).ok_or_else(|| err(&sub, format!("= {} is not a single value\n  fix: e.g. `value: 16000`", show(x))))?)),
                        "uniform" | "normal" => {
                            let (a, b) = pair(x).ok_or_else(|| err(&sub, format!("= {} is not two numbers\n  fix: e.g. `{k}: [0, 1]`", show(x))))?;
                            let ok = a.is_finite() && b.is_finite() && if k == "uniform" { a < b } else { b >= 0.0 };
                            if !ok {
                                return Err(err(&sub, format!("= [{a}, {b}] is not a range\n  fix: {}", if k == "uniform" { "give lo < hi, e.g. `uniform: [-1, 1]`" } else { "give a mean and a standard deviation ≥ 0, e.g. `normal: [0, 1]`" })));
                            }
                            Some(if k == "uniform" { Values::Uniform(a, b) } else { Values::Normal(a, b) })
                        }
                        "integers" => {
                            let bounds = match x {
                                Value::Sequence(s) if s.len() == 2 => s[0].as_i64().zip(s[1].as_i64()),
                                _ => None,
                            };
                            match bounds {
                                Some((lo, hi)) if lo < hi => Some(Values::Integers(lo, hi)),
                                _ => return Err(err(&sub, format!("= {} is not two whole numbers lo < hi\n  fix: e.g. `integers: [0, 100]`", show(x)))),
                            }
                        }
                        "file" => match x.as_str().filter(|s| !s.trim().is_empty()) {
                            Some(p) => Some(Values::File(dir.join(p))),
                            None => return Err(err(&sub, format!("= {} is not a path\n  fix: e.g. `file: values.npy`", show(x)))),
                        },
                        "role" => {
                            let r = x.as_str().and_then(|s| Role::ALL.into_iter().find(|r| r.name() == s));
                            let Some(r) = r else {
                                return Err(err(&sub, format!("= {} is not a role\n  fix: use one of {}", show(x), Role::ALL.map(|r| r.name()).join(", "))));
                            };
                            spec.role = Some(r);
                            None
                        }
                        "shape" => {
                            let dims = match x {
                                Value::Sequence(s) => s.iter().map(|d| d.as_u64().map(|d| d as usize)).collect::<Option<Vec<_>>>(),
                                _ => None,
                            };
                            let Some(dims) = dims.filter(|d| d.iter().all(|&n| n <= 1 << 24)) else {
                                return Err(err(&sub, format!("= {} is not a shape\n  fix: give whole numbers, e.g. `shape: [1, 3, 224, 224]`", show(x))));
                            };
                            spec.shape = Some(dims);
                            None
                        }
                        _ => return Err(err(&sub, format!("is not a key an input takes\n  fix: write {FORMS}"))),
                    };
                    if let Some(values) = values {
                        if spec.values.is_some() {
                            return Err(err("", format!("gives more than one source of values\n  fix: keep one of value, uniform, normal, integers and file")));
                        }
                        spec.values = Some(values);
                    }
                }
                if spec.role.is_some() && spec.values.is_some() {
                    return Err(err("", "gives a role and values: a token input is filled from the tokenizer\n  fix: keep one of the two".into()));
                }
                spec
            }
            other => match scalar(other) {
                Some(s) => InputSpec { values: Some(Values::Constant(s)), ..Default::default() },
                None => return Err(err("", format!("= {} is not an input's values\n  fix: write {FORMS}", show(other)))),
            },
        };
        out.insert(name.clone(), spec);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<BTreeMap<String, InputSpec>, (String, String)> {
        parse_inputs(&serde_yaml::from_str(yaml).unwrap(), Path::new("m"))
    }

    #[test]
    fn each_form_parses() {
        let p = parse("{sr: 16000, t: 0.5, on: true, x: {uniform: [-1, 1]}, n: {normal: [0, 2]}, k: {integers: [0, 10]}, h: {file: h.npy}, ids: {role: token_ids}, px: {shape: [1, 3], uniform: [0, 1]}}").unwrap();
        assert_eq!(p["sr"].values, Some(Values::Constant(Scalar::Int(16000))));
        assert_eq!(p["t"].values, Some(Values::Constant(Scalar::Float(0.5))));
        assert_eq!(p["on"].values, Some(Values::Constant(Scalar::Bool(true))));
        assert_eq!(p["x"].values, Some(Values::Uniform(-1.0, 1.0)));
        assert_eq!(p["n"].values, Some(Values::Normal(0.0, 2.0)));
        assert_eq!(p["k"].values, Some(Values::Integers(0, 10)));
        assert_eq!(p["h"].values, Some(Values::File(PathBuf::from("m/h.npy"))));
        assert_eq!(p["ids"].role, Some(Role::TokenIds));
        assert_eq!((p["px"].shape.clone(), p["px"].values.clone()), (Some(vec![1, 3]), Some(Values::Uniform(0.0, 1.0))));
    }

    #[test]
    fn bad_entries_name_the_key_and_the_fix() {
        for (yaml, key, says) in [
            ("{x: [1, 2]}", ".x", "is not an input's values"),
            ("{x: {uniform: [1, 0]}}", ".x.uniform", "is not a range"),
            ("{x: {normal: [0, -1]}}", ".x.normal", "is not a range"),
            ("{x: {integers: [0.5, 2]}}", ".x.integers", "lo < hi"),
            ("{x: {role: tokens}}", ".x.role", "token_ids"),
            ("{x: {colour: red}}", ".x.colour", "not a key"),
            ("{x: {value: 1, uniform: [0, 1]}}", ".x", "more than one source"),
            ("{x: {role: token_ids, value: 1}}", ".x", "a role and values"),
            ("{x: {shape: [-1]}}", ".x.shape", "not a shape"),
        ] {
            let (k, m) = parse(yaml).unwrap_err();
            assert_eq!(k, key, "{yaml}: {m}");
            assert!(m.contains(says) && m.contains("\n  fix: "), "{yaml}: {m}");
        }
    }
}
