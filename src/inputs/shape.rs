//! The concrete shape of an input for one cell: fixed dims as declared, the others from the
//! model's own `dims:` or the scenario's (by input and axis, or by the dim's name), or from the
//! cell's batch size and sequence length for dims whose names say they are those.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::models::{Dim, IoInfo};
use crate::scenario::SetBy;

/// The `dims:` values that reach one model: its own (its table in the scenario's `models:`) and
/// the scenario-wide ones. For each axis the model's own win, by `input.axis` then by name, over
/// the scenario's, likewise.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dims {
    #[serde(default)]
    pub model: BTreeMap<String, usize>,
    #[serde(default)]
    pub scenario: BTreeMap<String, usize>,
}

impl Dims {
    /// Scenario-wide values only.
    pub fn scenario(dims: &BTreeMap<String, usize>) -> Dims {
        Dims { model: BTreeMap::new(), scenario: dims.clone() }
    }

    /// The value for `key` (`input.axis` or a dim's name) and who set it, the model's own first.
    fn get(&self, key: &str) -> Option<(usize, SetBy)> {
        self.model.get(key).map(|&v| (v, SetBy::Model)).or_else(|| self.scenario.get(key).map(|&v| (v, SetBy::Scenario)))
    }

    /// The value of dim `axis` of `input` (named `symbol`, if it has a name) and who set it.
    fn of(&self, input: &str, axis: usize, symbol: Option<&str>) -> Option<(usize, SetBy)> {
        let by_axis = format!("{input}.{axis}");
        [(&self.model, SetBy::Model), (&self.scenario, SetBy::Scenario)]
            .into_iter()
            .find_map(|(map, by)| map.get(&by_axis).or_else(|| symbol.and_then(|s| map.get(s))).map(|&v| (v, by)))
    }
}

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
    /// A `dims:` value (by `input.axis` or by the dim's name): the model's own, or the scenario's.
    Set(usize, SetBy),
    /// The cell's batch size (a batch-like name).
    Batch,
    /// The cell's input length (a sequence-like name).
    Sequence,
}

impl DimSource {
    /// Who set this axis, as a cell records it.
    pub fn set_by(self) -> SetBy {
        match self {
            DimSource::Fixed(_) => SetBy::Fixed,
            DimSource::Set(_, by) => by,
            DimSource::Batch => SetBy::Batch,
            DimSource::Sequence => SetBy::Length,
        }
    }
}

/// The concrete shape of `input` in a cell of `batch` rows and `sequence` positions. For each
/// axis, in order: a fixed size (0 included) as declared (a `dims:` value by `input.axis` that
/// differs is an error); `dims`, the model's own before the scenario's, by `input.axis` then by
/// the dim's name; a batch-like or sequence-like name. Anything else is an error whose fix names
/// the key.
pub fn concrete_shape(model: &str, input: &IoInfo, batch: usize, sequence: usize, dims: &Dims) -> Result<Vec<usize>> {
    Ok(dim_sources(model, input, dims)?
        .into_iter()
        .map(|s| match s {
            DimSource::Fixed(n) | DimSource::Set(n, _) => n,
            DimSource::Batch => batch,
            DimSource::Sequence => sequence,
        })
        .collect())
}

/// Where each axis of `input` takes its size from, as [`concrete_shape`] fills it.
pub fn dim_sources(model: &str, input: &IoInfo, dims: &Dims) -> Result<Vec<DimSource>> {
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
            let by_axis = dims.get(&format!("{}.{axis}", input.name));
            let symbol = match d {
                Dim::Symbol(s) if !s.is_empty() => Some(s.as_str()),
                _ => None,
            };
            match d {
                Dim::Fixed(n) if !(0..=MAX_DIM.max(i64::from(u32::MAX))).contains(n) => bail!(
                    "model `{model}`: input `{}` {} declares dim {axis} as {n}, which is no size\n  fix: re-export the model with a valid shape",
                    input.name,
                    input.shape_string()
                ),
                Dim::Fixed(n) => match by_axis {
                    Some((v, by)) if v as i64 != *n => bail!(
                        "model `{model}`: `dims: {{{}.{axis}: {v}}}` ({}) asks for {v}, but input `{}` {} is fixed at {n} there\n  fix: remove that entry from `dims`",
                        input.name,
                        if by == SetBy::Model { "the model's own entry in `models:`" } else { "the scenario's" },
                        input.name,
                        input.shape_string()
                    ),
                    _ => Ok(DimSource::Fixed(*n as usize)),
                },
                _ if dims.of(&input.name, axis, symbol).is_some() => {
                    let (v, by) = dims.of(&input.name, axis, symbol).expect("checked");
                    Ok(DimSource::Set(v, by))
                }
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
    fn follow(e: &anyhow::Error) -> Dims {
        #[derive(serde::Deserialize)]
        struct Fix {
            dims: BTreeMap<String, usize>,
        }
        Dims::scenario(&serde_yaml::from_str::<Fix>(&fix_of(e)).expect("the fix is YAML a scenario takes").dims)
    }

    #[test]
    fn named_unnamed_and_zero_dims_are_filled_and_each_fix_works() {
        let i = input("pixel_values", vec![Dim::Symbol("batch".into()), Dim::Fixed(3), Dim::Symbol("height".into()), Dim::Unknown, Dim::Fixed(0)]);
        let e = concrete_shape("m", &i, 2, 7, &Dims::default()).unwrap_err();
        assert!(e.to_string().contains("dim 2 (`height`)"), "{e}");
        let mut dims = follow(&e);
        let e = concrete_shape("m", &i, 2, 7, &dims).unwrap_err();
        assert!(e.to_string().contains("dim 3 has no size"), "{e}");
        dims.scenario.extend(follow(&e).scenario);
        assert_eq!(concrete_shape("m", &i, 2, 7, &dims).unwrap(), vec![2, 3, 224, 224, 0], "a size-0 dim is taken as given");
        // By input and axis over the name.
        dims.scenario.insert("pixel_values.2".into(), 8);
        assert_eq!(concrete_shape("m", &i, 2, 7, &dims).unwrap()[2], 8);
        // The model's own value wins, by name over the scenario's by input and axis too.
        dims.model.insert("height".into(), 16);
        assert_eq!(dim_sources("m", &i, &dims).unwrap()[2], DimSource::Set(16, SetBy::Model));
        assert_eq!(dim_sources("m", &i, &dims).unwrap()[3], DimSource::Set(224, SetBy::Scenario));
        dims.scenario.insert("pixel_values.1".into(), 4);
        let e = concrete_shape("m", &i, 2, 7, &dims).unwrap_err().to_string();
        assert!(e.contains("fixed at 3") && e.contains("remove that entry"), "{e}");
        let none = IoInfo { dims: None, ..i.clone() };
        assert!(concrete_shape("m", &none, 1, 1, &Dims::default()).unwrap_err().to_string().contains("shape: [1, 16]"));
        let negative = input("x", vec![Dim::Fixed(-1)]);
        assert!(concrete_shape("m", &negative, 1, 1, &Dims::default()).is_err());
    }
}
