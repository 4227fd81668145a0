//! The concrete shape of an input for one cell: fixed dims as declared, the others from the
//! scenario's `dims:` (by input and axis, or by the dim's name), or from the cell's batch size and
//! sequence length for dims whose names say they are those.

use std::collections::BTreeMap;

use anyhow::{bail, Result};

use crate::models::{Dim, IoInfo};

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

/// Largest dim taken from the scenario (as `dims:` allows).
const MAX_DIM: i64 = 1 << 24;

/// Where the size of one axis of an input comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DimSource {
    /// Declared fixed in the graph.
    Fixed(usize),
    /// The scenario's `dims:` (by `input.axis` or by the dim's name).
    Scenario(usize),
    /// The cell's batch size (a batch-like name).
    Batch,
    /// The cell's input length (a sequence-like name).
    Sequence,
}

/// The concrete shape of `input` in a cell of `batch` rows and `sequence` positions. For each
/// axis, in order: `dims` by `input.axis`; a fixed size (0 included) as declared; `dims` by the
/// dim's name; a batch-like or sequence-like name. Anything else is an error whose fix names the key.
pub fn concrete_shape(model: &str, input: &IoInfo, batch: usize, sequence: usize, dims: &BTreeMap<String, usize>) -> Result<Vec<usize>> {
    Ok(dim_sources(model, input, dims)?
        .into_iter()
        .map(|s| match s {
            DimSource::Fixed(n) | DimSource::Scenario(n) => n,
            DimSource::Batch => batch,
            DimSource::Sequence => sequence,
        })
        .collect())
}

/// Where each axis of `input` takes its size from, as [`concrete_shape`] fills it.
pub fn dim_sources(model: &str, input: &IoInfo, dims: &BTreeMap<String, usize>) -> Result<Vec<DimSource>> {
    let Some(declared) = &input.dims else {
        bail!(
            "model `{model}`: input `{}` declares no shape, so xbench cannot make a tensor for it\n  fix: give its shape in the scenario, e.g. `inputs: {{{}: {{shape: [1, 16]}}}}`, or its values from a file",
            input.name,
            input.name
        );
    };
    declared
        .iter()
        .enumerate()
        .map(|(axis, d)| {
            let by_axis = dims.get(&format!("{}.{axis}", input.name)).copied();
            match d {
                Dim::Fixed(n) if !(0..=MAX_DIM.max(i64::from(u32::MAX))).contains(n) => bail!(
                    "model `{model}`: input `{}` {} declares dim {axis} as {n}, which is no size\n  fix: re-export the model with a valid shape",
                    input.name,
                    input.shape_string()
                ),
                Dim::Fixed(n) => match by_axis {
                    Some(v) if v as i64 != *n => bail!(
                        "model `{model}`: `dims: {{{}.{axis}: {v}}}` asks for {v}, but input `{}` {} is fixed at {n} there\n  fix: remove that entry from `dims`",
                        input.name,
                        input.name,
                        input.shape_string()
                    ),
                    _ => Ok(DimSource::Fixed(*n as usize)),
                },
                _ if by_axis.is_some() => Ok(DimSource::Scenario(by_axis.expect("checked"))),
                Dim::Symbol(s) if dims.contains_key(s) => Ok(DimSource::Scenario(dims[s])),
                Dim::Symbol(s) if is_batch_dim(s) => Ok(DimSource::Batch),
                Dim::Symbol(s) if is_sequence_dim(s) => Ok(DimSource::Sequence),
                Dim::Symbol(s) if !s.is_empty() => bail!(
                    "model `{model}`: input `{}` {}: dim {axis} (`{s}`) cannot be filled from the batch size or the sequence length\n  fix: give its value in the scenario, e.g. `dims: {{{s}: 224}}`",
                    input.name,
                    input.shape_string()
                ),
                _ => bail!(
                    "model `{model}`: input `{}` {}: dim {axis} has no size and no name\n  fix: give its value by input and axis in the scenario, e.g. `dims: {{{}.{axis}: 224}}`",
                    input.name,
                    input.shape_string(),
                    input.name
                ),
            }
        })
        .collect()
}

/// The element count of `shape`, refused beyond 2^31 (named dims of up to 2^24 each would
/// overflow a plain product).
pub fn element_count(model: &str, input: &str, shape: &[usize]) -> Result<usize> {
    match shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).filter(|&n| n <= 1 << 31) {
        Some(n) => Ok(n),
        None => bail!("model `{model}`: input `{input}` of shape {shape:?} has more than 2^31 elements\n  fix: use smaller dims"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str, dims: Vec<Dim>) -> IoInfo {
        IoInfo { name: name.into(), elem_type: "float32".into(), dims: Some(dims), structural_use: None }
    }

    fn fix_of(e: &anyhow::Error) -> String {
        let msg = e.to_string();
        let fix = msg.split("\n  fix: ").nth(1).expect("a fix line").to_string();
        // The YAML between the first pair of backticks.
        fix.split('`').nth(1).expect("a key to set").to_string()
    }

    /// Follows an error's fix: parses the `dims: {…}` it suggests and returns those dims.
    fn follow(e: &anyhow::Error) -> BTreeMap<String, usize> {
        #[derive(serde::Deserialize)]
        struct Fix {
            dims: BTreeMap<String, usize>,
        }
        serde_yaml::from_str::<Fix>(&fix_of(e)).expect("the fix is YAML a scenario takes").dims
    }

    #[test]
    fn named_unnamed_and_zero_dims_are_filled_and_each_fix_works() {
        let i = input("pixel_values", vec![Dim::Symbol("batch".into()), Dim::Fixed(3), Dim::Symbol("height".into()), Dim::Unknown, Dim::Fixed(0)]);
        let e = concrete_shape("m", &i, 2, 7, &BTreeMap::new()).unwrap_err();
        assert!(e.to_string().contains("dim 2 (`height`)"), "{e}");
        let mut dims = follow(&e);
        let e = concrete_shape("m", &i, 2, 7, &dims).unwrap_err();
        assert!(e.to_string().contains("dim 3 has no size"), "{e}");
        dims.extend(follow(&e));
        assert_eq!(concrete_shape("m", &i, 2, 7, &dims).unwrap(), vec![2, 3, 224, 224, 0], "a size-0 dim is taken as given");
        // By input and axis over the name.
        dims.insert("pixel_values.2".into(), 8);
        assert_eq!(concrete_shape("m", &i, 2, 7, &dims).unwrap()[2], 8);
        dims.insert("pixel_values.1".into(), 4);
        let e = concrete_shape("m", &i, 2, 7, &dims).unwrap_err().to_string();
        assert!(e.contains("fixed at 3") && e.contains("remove that entry"), "{e}");
        let none = IoInfo { dims: None, ..i.clone() };
        assert!(concrete_shape("m", &none, 1, 1, &BTreeMap::new()).unwrap_err().to_string().contains("shape: [1, 16]"));
        let negative = input("x", vec![Dim::Fixed(-1)]);
        assert!(concrete_shape("m", &negative, 1, 1, &BTreeMap::new()).is_err());
    }
}
