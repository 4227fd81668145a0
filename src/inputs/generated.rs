//! Inputs for models that do not take token ids (images, audio features, plain tensors):
//! tensors generated from the graph's declared element types and shapes, with a fixed seed.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use ndarray::{ArrayD, IxDyn};

use super::Feed;
use crate::results::TextBatch;
use crate::tensor::Tensor;
use crate::models::{Dim, IoInfo};
use crate::stats::Rng;

/// Names of symbolic dims taken to mean the batch size or the sequence length.
const BATCH_NAMES: &[&str] = &["batch", "batch_size", "batchsize", "n", "b", "N"];
const SEQUENCE_NAMES: &[&str] = &["sequence", "sequence_length", "seq", "seq_len", "seqlen", "length", "L"];

/// Whether a symbolic dim's name means the batch size.
pub fn is_batch_dim(name: &str) -> bool {
    BATCH_NAMES.contains(&name)
}

/// Whether a symbolic dim's name means the sequence length.
pub fn is_sequence_dim(name: &str) -> bool {
    SEQUENCE_NAMES.contains(&name)
}

/// True when xbench fills this model from text (it has a token-id input).
pub fn takes_tokens(inputs: &[IoInfo]) -> bool {
    inputs.iter().any(|i| i.name == "input_ids")
}

/// The concrete shape of `input`: fixed dims as declared, symbolic ones from `dims` (by name),
/// then batch-like names → `batch`, sequence-like names → `sequence`.
pub fn concrete_shape(model: &str, input: &IoInfo, batch: usize, sequence: usize, dims: &BTreeMap<String, usize>) -> Result<Vec<usize>> {
    let Some(declared) = &input.dims else {
        bail!(
            "model `{model}`: input `{}` declares no shape, so xbench cannot make a tensor for it\n  fix: export the model with input shapes",
            input.name
        );
    };
    declared
        .iter()
        .enumerate()
        .map(|(axis, d)| match d {
            Dim::Fixed(n) if *n > 0 => Ok(*n as usize),
            Dim::Symbol(s) if dims.contains_key(s) => Ok(dims[s]),
            Dim::Symbol(s) if BATCH_NAMES.contains(&s.as_str()) => Ok(batch),
            Dim::Symbol(s) if SEQUENCE_NAMES.contains(&s.as_str()) => Ok(sequence),
            other => {
                let name = match other {
                    Dim::Symbol(s) => s.clone(),
                    _ => format!("{other}"),
                };
                bail!(
                    "model `{model}`: input `{}` {}: dim {axis} (`{name}`) cannot be filled from the batch size or the sequence length\n  fix: give its value in the scenario, e.g. `dims: {{{name}: 224}}`",
                    input.name,
                    input.shape_string()
                )
            }
        })
        .collect()
}

impl Feed {
    /// Generated inputs for one cell: floats uniform in [-1, 1), integers 0 or 1 (valid as
    /// indices and masks), with a seed fixed per input so that every runtime gets the same tensors.
    pub fn generated(model: &str, inputs: &[IoInfo], batch: usize, sequence: usize, dims: &BTreeMap<String, usize>) -> Result<Feed> {
        let mut tensors = Vec::new();
        for (k, input) in inputs.iter().enumerate() {
            let shape = concrete_shape(model, input, batch, sequence, dims)?;
            // Checked: named dims of up to 2^24 each overflow a plain product (and wrap in release builds).
            let Some(n) = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).filter(|&n| n <= 1 << 31) else {
                bail!("model `{model}`: input `{}` of shape {shape:?} has more than 2^31 elements\n  fix: use smaller dims", input.name);
            };
            let mut g = Rng::new(0x5EED_0000 + k as u64);
            let ix = IxDyn(&shape);
            let t = match input.elem_type.as_str() {
                "float32" => Tensor::F32(ArrayD::from_shape_vec(ix, (0..n).map(|_| g.next_f32_uniform() * 2.0 - 1.0).collect())?),
                "int64" => Tensor::I64(ArrayD::from_shape_vec(ix, (0..n).map(|_| (g.next_u64() & 1) as i64).collect())?),
                "int32" => Tensor::I32(ArrayD::from_shape_vec(ix, (0..n).map(|_| (g.next_u64() & 1) as i32).collect())?),
                other => bail!(
                    "model `{model}`: input `{}` has element type {other}, which xbench cannot generate yet (float32, int64, int32)\n  fix: export the model with inputs of those types (cast inside the graph where needed)",
                    input.name
                ),
            };
            tensors.push((input.name.clone(), t));
        }
        Ok(Feed {
            batch,
            seq_len: sequence,
            tensors,
            mask: vec![1; batch * sequence],
            text: TextBatch { tokens_per_row: vec![sequence; batch], padded_len: sequence, truncated_rows: 0, tokenize_ms: 0.0 },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str, ty: &str, dims: Vec<Dim>) -> IoInfo {
        IoInfo { name: name.into(), elem_type: ty.into(), dims: Some(dims) }
    }

    #[test]
    fn symbolic_dims_come_from_the_scenario_batch_and_sequence() {
        let i = input("pixel_values", "float32", vec![Dim::Symbol("batch".into()), Dim::Fixed(3), Dim::Symbol("height".into()), Dim::Symbol("width".into())]);
        let dims = BTreeMap::from([("height".to_string(), 8), ("width".to_string(), 4)]);
        assert_eq!(concrete_shape("m", &i, 2, 7, &dims).unwrap(), vec![2, 3, 8, 4]);
        let e = concrete_shape("m", &i, 2, 7, &BTreeMap::new()).unwrap_err().to_string();
        assert!(e.contains("`pixel_values`") && e.contains("dim 2 (`height`)") && e.contains("dims: {height: 224}"), "{e}");
        let unknown = input("x", "float32", vec![Dim::Unknown]);
        assert!(concrete_shape("m", &unknown, 1, 1, &BTreeMap::new()).is_err());
    }

    #[test]
    fn generated_tensors_are_deterministic_and_typed() {
        let ins = [input("a", "float32", vec![Dim::Symbol("batch".into()), Dim::Symbol("sequence".into())]), input("b", "int64", vec![Dim::Fixed(5)])];
        let f1 = Feed::generated("m", &ins, 2, 3, &BTreeMap::new()).unwrap();
        let f2 = Feed::generated("m", &ins, 2, 3, &BTreeMap::new()).unwrap();
        assert_eq!(f1.tensors, f2.tensors);
        assert_eq!(f1.tensors[0].1.shape(), &[2, 3]);
        match &f1.tensors[1].1 {
            Tensor::I64(a) => assert!(a.iter().all(|&v| v == 0 || v == 1)),
            _ => panic!("int64 expected"),
        }
        match &f1.tensors[0].1 {
            Tensor::F32(a) => assert!(a.iter().all(|v| (-1.0..1.0).contains(v))),
            _ => panic!("float32 expected"),
        }
        let bad = [input("s", "string", vec![Dim::Fixed(1)])];
        assert!(Feed::generated("m", &bad, 1, 1, &BTreeMap::new()).unwrap_err().to_string().contains("string"));
    }
}
