//! Tensors for inputs not filled from text: values the user gave (a constant, a range, a
//! distribution, a file), values generated with a seed fixed per input so that every runtime gets
//! the same tensors, or a model's own test data.

use std::path::Path;

use anyhow::{bail, Result};
use half::{bf16, f16};
use ndarray::{ArrayD, IxDyn};

use super::fill::{Fill, InputFill, InputPlan};
use super::shape::{concrete_shape, dim_sources, element_count, DimSource, Dims};
use super::Feed;
use crate::results::FedInput;
use crate::scenario::{Scalar, SetBy, Values};
use crate::stats::Rng;
use crate::tensor::{ElemType, Tensor};

/// A tensor of `ty` from numbers (floats rounded to the type, integers cast, booleans non-zero).
fn from_numbers(ty: ElemType, shape: &[usize], v: Vec<f64>) -> Result<Tensor> {
    let ix = IxDyn(shape);
    macro_rules! arr {
        ($variant:ident, $f:expr) => {
            Tensor::$variant(ArrayD::from_shape_vec(ix, v.into_iter().map($f).collect())?)
        };
    }
    Ok(match ty {
        ElemType::Float32 => arr!(F32, |x| x as f32),
        ElemType::Float16 => arr!(F16, f16::from_f64),
        ElemType::Bfloat16 => arr!(BF16, bf16::from_f64),
        ElemType::Float64 => arr!(F64, |x| x),
        ElemType::Int8 => arr!(I8, |x| x as i8),
        ElemType::Int16 => arr!(I16, |x| x as i16),
        ElemType::Int32 => arr!(I32, |x| x as i32),
        ElemType::Int64 => arr!(I64, |x| x as i64),
        ElemType::Uint8 => arr!(U8, |x| x as u8),
        ElemType::Uint16 => arr!(U16, |x| x as u16),
        ElemType::Uint32 => arr!(U32, |x| x as u32),
        ElemType::Uint64 => arr!(U64, |x| x as u64),
        ElemType::Bool => arr!(Bool, |x| x != 0.0),
        ElemType::String => bail!("strings are not numbers"),
        other => bail!("xbench does not make up {other} values\n  fix: give them as an ONNX TensorProto file (`{{file: values.pb}}`)"),
    })
}

/// The tensor for one input of a cell, and what it was fed (where its values and its shape came
/// from). `k` (the input's position) seeds its generator.
pub(super) fn make(model: &str, f: &InputFill, k: usize, batch: usize, sequence: usize, dims: &Dims) -> Result<(Tensor, FedInput)> {
    let (t, source, shape_by) = tensor(model, f, k, batch, sequence, dims)?;
    let values_by = match &f.fill {
        Fill::Given { by, .. } => *by,
        _ => SetBy::Default,
    };
    let fed = FedInput { values_by, shape_by, ..fed(&f.input.name, &t, source) };
    Ok((t, fed))
}

/// The tensor for one input of a cell, where its values came from, and who set each axis.
fn tensor(model: &str, f: &InputFill, k: usize, batch: usize, sequence: usize, dims: &Dims) -> Result<(Tensor, String, Vec<SetBy>)> {
    let input = &f.input;
    let Some(ty) = input.elem() else { bail!("model `{model}`: input `{}` has an element type xbench cannot feed ({})", input.name, input.elem_type) };
    if let Fill::Given { values: Values::File(path), at, .. } = &f.fill {
        let (_, t) = crate::models::read_tensor_file(path)?;
        let by = vec![SetBy::File; t.shape().len()];
        return Ok((t, format!("{} ({at})", path.display()), by));
    }
    let (shape, shape_by) = match &f.shape {
        Some(s) => (s.clone(), vec![f.shape_by; s.len()]),
        None => {
            let sources = dim_sources(model, input, dims)?;
            let shape = concrete_shape(model, input, batch, sequence, dims)?;
            (shape, sources.into_iter().map(DimSource::set_by).collect())
        }
    };
    let n = element_count(model, &input.name, &shape)?;
    let mut g = Rng::new(0x5EED_0000 + k as u64);
    let (numbers, source): (Vec<f64>, String) = match &f.fill {
        Fill::Given { values, at, .. } => match values {
            Values::Constant(Scalar::Text(s)) => return Ok((Tensor::Str(ArrayD::from_elem(IxDyn(&shape), s.clone())), format!("\"{s}\" ({at})"), shape_by)),
            Values::Constant(c) => {
                let v = match c {
                    Scalar::Int(i) => *i as f64,
                    Scalar::Float(x) => *x,
                    Scalar::Bool(b) => *b as u8 as f64,
                    Scalar::Text(_) => unreachable!("handled above"),
                };
                // Integers beyond 2^53 do not survive a trip through f64: build them directly.
                if let (Scalar::Int(i), ElemType::Int64) = (c, ty) {
                    return Ok((Tensor::I64(ArrayD::from_elem(IxDyn(&shape), *i)), format!("{i} ({at})"), shape_by));
                }
                (vec![v; n], format!("{} ({at})", show(c)))
            }
            Values::Uniform(lo, hi) => ((0..n).map(|_| lo + (hi - lo) * g.next_f64()).collect(), format!("uniform [{lo}, {hi}) ({at})")),
            Values::Normal(mean, std) => ((0..n).map(|_| g.normal(*mean as f32, *std as f32) as f64).collect(), format!("normal mean {mean} std {std} ({at})")),
            Values::Integers(lo, hi) => {
                let span = (*hi as i128 - *lo as i128) as u64;
                if ty == ElemType::Int64 || ty == ElemType::Uint64 {
                    let v: Vec<i64> = (0..n).map(|_| (*lo as i128 + g.below(span) as i128) as i64).collect();
                    let t = if ty == ElemType::Int64 { Tensor::I64(ArrayD::from_shape_vec(IxDyn(&shape), v)?) } else { Tensor::U64(ArrayD::from_shape_vec(IxDyn(&shape), v.into_iter().map(|x| x as u64).collect())?) };
                    return Ok((t, format!("integers [{lo}, {hi}) ({at})"), shape_by));
                }
                ((0..n).map(|_| (*lo as i128 + g.below(span) as i128) as f64).collect(), format!("integers [{lo}, {hi}) ({at})"))
            }
            Values::File(_) => unreachable!("handled above"),
        },
        Fill::Generated if ty.is_float() => ((0..n).map(|_| g.next_f32_uniform() as f64 * 2.0 - 1.0).collect(), "generated: uniform [-1, 1)".into()),
        Fill::Generated if ty == ElemType::Bool => ((0..n).map(|_| (g.next_u64() & 1) as f64).collect(), "generated: true or false".into()),
        Fill::Generated if ty == ElemType::String => bail!("model `{model}`: input `{}` takes strings, which xbench cannot make up\n  fix: give them under `inputs:`", input.name),
        Fill::Generated => ((0..n).map(|_| (g.next_u64() & 1) as f64).collect(), "generated: integers 0 or 1".into()),
        Fill::Token(_) => bail!("model `{model}`: input `{}` takes tokens, which come from text", input.name),
    };
    Ok((from_numbers(ty, &shape, numbers)?, source, shape_by))
}

fn show(s: &Scalar) -> String {
    match s {
        Scalar::Int(i) => i.to_string(),
        Scalar::Float(x) => x.to_string(),
        Scalar::Bool(b) => b.to_string(),
        Scalar::Text(t) => format!("\"{t}\""),
    }
}

fn fed(name: &str, t: &Tensor, source: String) -> FedInput {
    FedInput { name: name.to_string(), elem_type: t.elem_type().into(), shape: t.shape().to_vec(), source, values_by: SetBy::Default, shape_by: Vec::new() }
}

impl Feed {
    /// Inputs for one cell of a model that takes no text: `batch` rows, and `sequence` for dims
    /// named like a sequence length.
    pub fn generated(plan: &InputPlan, batch: usize, sequence: usize, dims: &Dims) -> Result<Feed> {
        let mut tensors = Vec::new();
        let mut record = Vec::new();
        for (k, f) in plan.fills.iter().enumerate() {
            let (t, fed) = make(&plan.model, f, k, batch, sequence, dims)?;
            record.push(fed);
            tensors.push((f.input.name.clone(), t));
        }
        Ok(Feed { batch, seq_len: sequence, tensors, mask: vec![1; batch * sequence], text: None, fed: record })
    }

    /// The inputs of a model's own test data set (`test_data_set_N/input_K.pb`).
    pub fn from_test_data(model: &str, set: &Path, inputs: &[crate::models::IoInfo]) -> Result<Feed> {
        let read = crate::models::test_data::read_inputs(set, inputs).map_err(|e| anyhow::anyhow!("model `{model}`: {e:#}"))?;
        let record = read.iter().map(|(name, t, file)| FedInput { values_by: SetBy::TestData, ..fed(name, t, file.clone()) }).collect();
        Ok(Feed { batch: 1, seq_len: 1, tensors: read.into_iter().map(|(n, t, _)| (n, t)).collect(), mask: vec![1], text: None, fed: record })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use crate::models::{Dim, IoInfo};

    fn plan(inputs: &[(&str, &str, Vec<Dim>)], given: &[(&str, &str)]) -> InputPlan {
        let ios: Vec<IoInfo> = inputs.iter().map(|(n, t, d)| IoInfo { name: n.to_string(), elem_type: (*t).into(), dims: Some(d.clone()), structural_use: None }).collect();
        let table: BTreeMap<String, serde_yaml::Value> = given.iter().map(|(k, v)| (k.to_string(), serde_yaml::from_str(v).unwrap())).collect();
        let specs = crate::scenario::inputs::parse_inputs(&table, Path::new(".")).unwrap().into_iter().map(|(k, s)| (k, crate::inputs::Located::new(s, "inputs", crate::scenario::SetBy::Scenario))).collect();
        InputPlan::new("m", &ios, false, &specs).unwrap()
    }

    #[test]
    fn every_type_is_generated_deterministically_in_its_own_type() {
        let types = ["float32", "float16", "bfloat16", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool"];
        let inputs: Vec<(&str, &str, Vec<Dim>)> = types.iter().map(|t| (*t, *t, vec![Dim::Symbol("batch".into()), Dim::Fixed(3)])).collect();
        let p = plan(&inputs, &[]);
        let a = Feed::generated(&p, 2, 1, &Dims::default()).unwrap();
        assert_eq!(a.tensors, Feed::generated(&p, 2, 1, &Dims::default()).unwrap().tensors);
        for ((name, t), ty) in a.tensors.iter().zip(types) {
            assert_eq!((t.elem_type().name(), t.shape()), (ty, &[2, 3][..]), "{name}");
        }
        let Tensor::F32(x) = &a.tensors[0].1 else { panic!() };
        assert!(x.iter().all(|v| (-1.0..1.0).contains(v)));
        assert_eq!(a.fed[0].source, "generated: uniform [-1, 1)");
        assert!(a.text.is_none());
    }

    #[test]
    fn given_values_are_fed_as_given() {
        let p = plan(
            &[("sr", "int64", vec![]), ("t", "float16", vec![Dim::Fixed(2)]), ("k", "int32", vec![Dim::Fixed(1000)]), ("n", "float64", vec![Dim::Fixed(1000)]), ("s", "string", vec![Dim::Fixed(2)])],
            &[("sr", "16000"), ("t", "0.5"), ("k", "{integers: [5, 8]}"), ("n", "{normal: [10, 1]}"), ("s", "hi")],
        );
        let f = Feed::generated(&p, 1, 1, &Dims::default()).unwrap();
        assert_eq!(f.tensors[0].1, Tensor::I64(ArrayD::from_elem(IxDyn(&[]), 16000)));
        assert_eq!(f.fed[0].source, "16000 (inputs)");
        let Tensor::F16(t) = &f.tensors[1].1 else { panic!() };
        assert!(t.iter().all(|v| v.to_f32() == 0.5));
        let Tensor::I32(k) = &f.tensors[2].1 else { panic!() };
        assert!(k.iter().all(|v| (5..8).contains(v)) && k.iter().any(|&v| v == 7), "upper bound excluded, range covered");
        let Tensor::F64(n) = &f.tensors[3].1 else { panic!() };
        let mean = n.iter().sum::<f64>() / 1000.0;
        assert!((mean - 10.0).abs() < 0.2, "{mean}");
        assert_eq!(f.tensors[4].1.strings().unwrap(), ["hi", "hi"]);
    }
}
