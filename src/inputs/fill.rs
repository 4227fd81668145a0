//! How each input of a model is fed, decided once when the plan is resolved: from the tokenizer
//! by its role, from values the user gave, or generated — and generated only where made-up values
//! cannot change what the model computes. An input whose values decide the computation's
//! structure (a shape, an index, a condition, a count) or that is a single value is never made
//! up: the error names the input and the key to set.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::models::IoInfo;
use crate::scenario::{InputSpec, Role, Scalar, SetBy, Values};
use crate::tensor::ElemType;

/// Where one input's values come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fill {
    /// From the tokenizer, as the role says.
    Token(Role),
    /// Values the user gave; `at` says where (`the scenario's inputs.sr`), `by` which setting.
    Given {
        values: Values,
        at: String,
        #[serde(default)]
        by: SetBy,
    },
    /// Made up: floats uniform in [-1, 1), integers 0 or 1, booleans either.
    Generated,
}

/// One graph input and how it is fed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputFill {
    pub input: IoInfo,
    pub fill: Fill,
    /// The shape the user gave over the declared one (`shape:`), or the shape of the file it is fed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<Vec<usize>>,
    /// Which setting gave `shape` (`file` for a file's).
    #[serde(default)]
    pub shape_by: SetBy,
}

/// How every input of a model is fed, in the graph's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputPlan {
    pub model: String,
    pub fills: Vec<InputFill>,
}

/// A spec for an input, with where it was written: `at` in words, for messages, and which
/// setting gave its values (or role) and its shape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Located {
    pub spec: InputSpec,
    pub at: String,
    pub values_by: SetBy,
    pub shape_by: SetBy,
}

impl Located {
    pub fn new(spec: InputSpec, at: impl Into<String>, by: SetBy) -> Located {
        Located { spec, at: at.into(), values_by: by, shape_by: by }
    }

    /// `self` with whatever `over` sets replacing it, each part keeping who set it.
    pub fn overridden_by(&self, over: &Located) -> Located {
        let gives_values = over.spec.values.is_some() || over.spec.role.is_some();
        Located {
            spec: self.spec.overridden_by(&over.spec),
            at: if gives_values || !(self.spec.values.is_some() || self.spec.role.is_some()) { over.at.clone() } else { self.at.clone() },
            values_by: if gives_values { over.values_by } else { self.values_by },
            shape_by: if over.spec.shape.is_some() { over.shape_by } else { self.shape_by },
        }
    }
}

impl InputPlan {
    /// Whether the model is fed from text (an input takes token ids).
    pub fn takes_text(&self) -> bool {
        self.fills.iter().any(|f| f.fill == Fill::Token(Role::TokenIds))
    }

    /// The plan of a model as its inputs are named, nothing given: the conventional token input
    /// names take their roles when `tokenizer` is there, everything else is generated.
    pub fn by_name(model: &str, inputs: &[IoInfo], tokenizer: bool) -> Result<InputPlan, String> {
        InputPlan::new(model, inputs, tokenizer, &BTreeMap::new())
    }

    /// Decides how each of `inputs` is fed. `specs` are the user's, merged (the scenario's over
    /// model.yaml's) with where each was written; `tokenizer` says whether the model has one.
    pub fn new(model: &str, inputs: &[IoInfo], tokenizer: bool, specs: &BTreeMap<String, Located>) -> Result<InputPlan, String> {
        let role_of = |i: &IoInfo| -> Option<Role> {
            match specs.get(&i.name).map(|l| &l.spec) {
                Some(s) if s.role.is_some() => s.role,
                Some(s) if s.values.is_some() => None,
                _ => Role::ALL.into_iter().find(|r| r.conventional_name() == i.name),
            }
        };
        let has_token_input = inputs.iter().any(|i| role_of(i) == Some(Role::TokenIds));
        let list = || inputs.iter().map(|i| format!("`{}` ({} {})", i.name, i.elem_type, i.shape_string())).collect::<Vec<_>>().join(", ");
        if tokenizer && !has_token_input {
            let example = inputs.iter().find(|i| i.elem().is_some_and(ElemType::is_signed_int)).map_or("ids", |i| i.name.as_str());
            return Err(format!(
                "model `{model}` has a tokenizer but none of its inputs takes token ids (its inputs: {})\n  fix: name the token input's role in its model.yaml, e.g. `inputs: {{{example}: {{role: token_ids}}}}`",
                list()
            ));
        }
        let mut fills = Vec::new();
        for input in inputs {
            let Located { spec, at, values_by, mut shape_by } = specs.get(&input.name).cloned().unwrap_or_default();
            let mut shape = spec.shape.clone();
            let fill = match (role_of(input), &spec.values) {
                (Some(role), _) if tokenizer => {
                    if !matches!(input.elem(), Some(ElemType::Int64 | ElemType::Int32)) {
                        return Err(format!("model `{model}`: input `{}` carries {} but is {}; token inputs must be int64 or int32\n  fix: export the model with integer token inputs", input.name, role.name(), input.elem_type));
                    }
                    Fill::Token(role)
                }
                (Some(role), None) if spec.role.is_some() => {
                    return Err(format!("model `{model}`: input `{}` is given the role {} (in {at}), but the model has no tokenizer.json\n  fix: copy the model's tokenizer.json into its folder", input.name, role.name()))
                }
                (Some(Role::TokenIds), None) => {
                    return Err(format!(
                        "model `{model}` takes token ids (input `{}`) but has no tokenizer.json beside its ONNX file\n  fix: copy the model's tokenizer.json into its folder, or give the ids' values, e.g. `inputs: {{{}: {{integers: [0, <vocabulary size>]}}}}`",
                        input.name, input.name
                    ))
                }
                (_, Some(values)) => {
                    if let Some(file_shape) = check_values(model, input, values, &at)? {
                        shape = Some(file_shape);
                        shape_by = SetBy::File;
                    }
                    Fill::Given { values: values.clone(), at, by: values_by }
                }
                (_, None) => {
                    check_generated(model, input)?;
                    Fill::Generated
                }
            };
            if let Some(shape) = &spec.shape {
                check_shape(model, input, shape)?;
            }
            if shape.is_none() {
                shape_by = SetBy::Default;
            }
            fills.push(InputFill { input: input.clone(), fill, shape, shape_by });
        }
        Ok(InputPlan { model: model.to_string(), fills })
    }
}

/// The fix that lets a user give an input's values: placeholders, never a value xbench made up
/// (copied as written, a made-up value would run whatever it selects).
fn give_values(input: &str) -> String {
    format!("give its values under `inputs:` in the scenario or the model's model.yaml, e.g. `inputs: {{{input}: <value>}}` (one value), `{{integers: [<lo>, <hi>]}}` or `{{file: {input}.npy}}`")
}

/// Generated values must not decide the computation's structure.
fn check_generated(model: &str, input: &IoInfo) -> Result<(), String> {
    let what = format!("model `{model}`: input `{}` ({} {})", input.name, input.elem_type, input.shape_string());
    if let Some(usage) = &input.structural_use {
        return Err(format!("{what} is {usage}: made-up values there would change what the model computes, so xbench does not make them up\n  fix: {}", give_values(&input.name)));
    }
    if input.dims.as_ref().is_some_and(|d| d.is_empty()) {
        return Err(format!("{what} is a single value, which xbench does not make up (a rate, a threshold, a count: its meaning decides the computation)\n  fix: {}", give_values(&input.name)));
    }
    match input.elem() {
        Some(ElemType::String) => Err(format!(
            "{what} takes strings, which xbench cannot make up\n  fix: give them under `inputs:`, e.g. `inputs: {{{}: <text>}}`, or `{{file: {}.pb}}` (an ONNX TensorProto file)",
            input.name, input.name
        )),
        Some(t) if t.packed_bits().is_some() => Err(format!(
            "{what} is of a type xbench does not make up values of\n  fix: give them under `inputs:` as an ONNX TensorProto file, e.g. `inputs: {{{}: {{file: {}.pb}}}}`",
            input.name, input.name
        )),
        Some(_) => Ok(()),
        None => Err(format!("{what} has an element type xbench cannot feed\n  fix: export the model with inputs of a standard ONNX type (float, integer or bool)")),
    }
}

/// Given values must suit the input's type; a file's shape is returned.
fn check_values(model: &str, input: &IoInfo, values: &Values, at: &str) -> Result<Option<Vec<usize>>, String> {
    let Some(ty) = input.elem() else {
        return Err(format!("model `{model}`: input `{}` has an element type xbench cannot feed ({})\n  fix: export the model with inputs of a standard ONNX type", input.name, input.elem_type));
    };
    let int = !ty.is_float() && !matches!(ty, ElemType::Bool | ElemType::String);
    let wrong = |why: &str, fix: &str| Err(format!("model `{model}`: {at} gives input `{}` ({} {}) {why}\n  fix: {fix}", input.name, input.elem_type, input.shape_string()));
    match values {
        Values::Constant(Scalar::Float(v)) if !ty.is_float() => wrong(&format!("the value {v}, which is not {}", ty), "give a whole number (or true/false for bool)"),
        Values::Constant(Scalar::Int(v)) if int && !fits(ty, *v) => wrong(&format!("the value {v}, outside the range of {ty}"), "give a value the type holds"),
        Values::Constant(Scalar::Int(_)) if ty == ElemType::String => wrong("a number", "give text"),
        Values::Constant(Scalar::Bool(_)) if ty != ElemType::Bool => wrong("true/false", "give a number"),
        Values::Constant(Scalar::Text(_)) if ty != ElemType::String => wrong("text", "give a number"),
        Values::Uniform(..) | Values::Normal(..) if !ty.is_float() => wrong("real numbers", "give `{integers: [lo, hi]}` for an integer input"),
        Values::Integers(lo, hi) if !(int || ty.is_float()) => wrong(&format!("integers [{lo}, {hi})"), "give `true`/`false`, or a file"),
        Values::Integers(lo, hi) if int && !(fits(ty, *lo) && fits(ty, hi - 1)) => wrong(&format!("integers [{lo}, {hi}), outside the range of {ty}"), "give bounds the type holds"),
        Values::File(path) => check_file(model, input, ty, path, at).map(Some),
        _ => Ok(None),
    }
}

fn fits(ty: ElemType, v: i64) -> bool {
    let (lo, hi): (i128, i128) = match ty {
        ElemType::Int8 => (i8::MIN as i128, i8::MAX as i128),
        ElemType::Int16 => (i16::MIN as i128, i16::MAX as i128),
        ElemType::Int32 => (i32::MIN as i128, i32::MAX as i128),
        ElemType::Uint8 => (0, u8::MAX as i128),
        ElemType::Uint16 => (0, u16::MAX as i128),
        ElemType::Uint32 => (0, u32::MAX as i128),
        ElemType::Uint64 => (0, u64::MAX as i128),
        _ => (i64::MIN as i128, i64::MAX as i128),
    };
    (lo..=hi).contains(&(v as i128))
}

/// A value file is read once here: its type must be the input's, its rank and fixed dims too.
fn check_file(model: &str, input: &IoInfo, ty: ElemType, path: &std::path::Path, at: &str) -> Result<Vec<usize>, String> {
    let (_, t) = crate::models::read_tensor_file(path).map_err(|e| format!("model `{model}`: {at}: input `{}`: {e:#}\n  fix: give a .npy or ONNX TensorProto (.pb) file that exists", input.name))?;
    if t.elem_type() != ty {
        return Err(format!("model `{model}`: {at}: {} holds {}, but input `{}` is {ty}\n  fix: save the values as {ty}", path.display(), t.elem_type(), input.name));
    }
    check_shape(model, input, t.shape()).map_err(|e| format!("{e} (the shape of {})", path.display()))?;
    Ok(t.shape().to_vec())
}

/// A shape must have the declared rank and the declared fixed dims.
fn check_shape(model: &str, input: &IoInfo, shape: &[usize]) -> Result<(), String> {
    let Some(declared) = &input.dims else { return Ok(()) };
    let fixed_ok = declared.iter().zip(shape).all(|(d, &s)| !matches!(d, crate::models::Dim::Fixed(n) if *n != s as i64));
    if declared.len() != shape.len() || !fixed_ok {
        return Err(format!("model `{model}`: input `{}` is declared {}, which {shape:?} does not fit\n  fix: give a shape of that rank with its fixed dims", input.name, input.shape_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Dim;

    fn io(name: &str, ty: &str, dims: Vec<Dim>, structural: Option<&str>) -> IoInfo {
        IoInfo { name: name.into(), elem_type: ty.into(), dims: Some(dims), structural_use: structural.map(String::from) }
    }

    fn given(pairs: &[(&str, &str)]) -> BTreeMap<String, Located> {
        let table: BTreeMap<String, serde_yaml::Value> = pairs.iter().map(|(k, v)| (k.to_string(), serde_yaml::from_str(v).unwrap())).collect();
        crate::scenario::inputs::parse_inputs(&table, std::path::Path::new(".")).unwrap().into_iter().map(|(k, s)| (k, Located::new(s, "the scenario's `inputs`", SetBy::Scenario))).collect()
    }

    /// The YAML value the error's fix suggests for `input`, its placeholders filled in, as a
    /// scenario would take it.
    fn follow(e: &str, input: &str) -> BTreeMap<String, Located> {
        let fix = e.split("\n  fix: ").nth(1).expect("a fix");
        let yaml = fix.split('`').skip(1).step_by(2).find(|q| q.starts_with("inputs: {")).expect("an example to follow");
        assert!(yaml.contains('<'), "a hint shows a placeholder, not a value made up: {yaml}");
        let yaml = yaml.replace("<value>", "1").replace("<text>", "hi");
        let v: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
        let value = v["inputs"][input].clone();
        given(&[(input, &serde_yaml::to_string(&value).unwrap())])
    }

    #[test]
    fn a_scalar_or_structural_input_is_never_made_up_and_the_fix_works() {
        let sr = io("sr", "int64", vec![], None);
        let x = io("x", "float32", vec![Dim::Symbol("batch".into()), Dim::Fixed(64)], None);
        let e = InputPlan::by_name("vad", &[x.clone(), sr.clone()], false).unwrap_err();
        assert!(e.contains("input `sr` (int64 [])") && e.contains("single value"), "{e}");
        let p = InputPlan::new("vad", &[x.clone(), sr], false, &follow(&e, "sr")).unwrap();
        assert_eq!(p.fills[0].fill, Fill::Generated);
        assert!(matches!(&p.fills[1].fill, Fill::Given { values: Values::Constant(Scalar::Int(1)), .. }), "{p:?}");

        let k = io("k", "int64", vec![Dim::Fixed(1)], Some("k (input 1) of TopK `top`"));
        let e = InputPlan::by_name("m", &[k.clone()], false).unwrap_err();
        assert!(e.contains("k (input 1) of TopK `top`"), "{e}");
        assert!(InputPlan::new("m", &[k], false, &follow(&e, "k")).is_ok());
        let c = io("cond", "bool", vec![Dim::Fixed(1)], Some("the condition (input 0) of If"));
        assert!(InputPlan::by_name("m", &[c], false).is_err());
        let s = io("s", "string", vec![Dim::Fixed(2)], None);
        let e = InputPlan::by_name("m", &[s.clone()], false).unwrap_err();
        assert!(InputPlan::new("m", &[s], false, &follow(&e, "s")).is_ok(), "{e}");
    }

    #[test]
    fn token_inputs_go_by_role_and_a_tokenizer_without_one_is_refused() {
        let ids = io("ids", "int64", vec![Dim::Symbol("batch".into()), Dim::Symbol("sequence".into())], Some("the indices (input 1) of Gather"));
        let mask = io("attention_mask", "int64", vec![Dim::Symbol("batch".into()), Dim::Symbol("sequence".into())], None);
        let e = InputPlan::by_name("m", &[ids.clone(), mask.clone()], true).unwrap_err();
        assert!(e.contains("none of its inputs takes token ids") && e.contains("`inputs: {ids: {role: token_ids}}`"), "{e}");
        let fixed = given(&[("ids", "{role: token_ids}")]);
        let p = InputPlan::new("m", &[ids.clone(), mask.clone()], true, &fixed).unwrap();
        assert!(p.takes_text());
        assert_eq!((p.fills[0].fill.clone(), p.fills[1].fill.clone()), (Fill::Token(Role::TokenIds), Fill::Token(Role::AttentionMask)));
        // Without a tokenizer the role cannot be filled; the conventional name asks for one.
        assert!(InputPlan::new("m", &[ids.clone()], false, &fixed).unwrap_err().contains("no tokenizer.json"));
        let input_ids = IoInfo { name: "input_ids".into(), ..ids };
        let e = InputPlan::by_name("m", &[input_ids.clone()], false).unwrap_err();
        assert!(e.contains("no tokenizer.json") && e.contains("integers: [0, <vocabulary size>]"), "{e}");
        let p = InputPlan::new("m", &[input_ids], false, &given(&[("input_ids", "{integers: [0, 1000]}")])).unwrap();
        assert!(!p.takes_text());
    }

    #[test]
    fn given_values_must_suit_the_type() {
        let i8_in = io("q", "int8", vec![Dim::Fixed(4)], None);
        for (v, says) in [("0.5", "not int8"), ("300", "outside the range"), ("{uniform: [0, 1]}", "real numbers"), ("{integers: [0, 1000]}", "outside the range"), ("hello", "text")] {
            let e = InputPlan::new("m", &[i8_in.clone()], false, &given(&[("q", v)])).unwrap_err();
            assert!(e.contains(says) && e.contains("the scenario's `inputs`"), "{v}: {e}");
        }
        assert!(InputPlan::new("m", &[i8_in.clone()], false, &given(&[("q", "{integers: [-128, 128]}")])).is_ok());
        let e = InputPlan::new("m", &[i8_in], false, &given(&[("q", "{shape: [2]}")])).unwrap_err();
        assert!(e.contains("declared [4]"), "{e}");
    }
}
