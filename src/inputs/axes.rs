//! Which of the scenario's grid axes (batch size, input length) reach the inputs of a model not
//! fed from text, and so what its cells are really fed. An axis that reaches no input (every input
//! given by a file, by `shape:`, by `dims:` or fixed in the graph) is run once, at the size the
//! inputs are fed, and its cells are labelled with that size, never with the grid's.


use super::fill::{Fill, InputPlan};
use super::shape::{dim_sources, is_batch_dim, is_sequence_dim, DimSource, Dims};
use crate::models::Dim;
use crate::scenario::Values;

/// The grid a model not fed from text runs on.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelGrid {
    /// Input lengths its cells are fed (0: no input takes a length).
    pub lengths: Vec<usize>,
    /// Batch sizes its cells are fed.
    pub batches: Vec<usize>,
    /// What was run once instead of over the scenario's sizes, and why, in words.
    pub note: Option<String>,
}

/// Sizes an input's axis was fed, besides the grid.
struct Axis {
    /// The grid takes this axis (the cell's batch size or length fills it).
    from_grid: bool,
    /// Sizes given otherwise on dims named like this axis, each with the input it was given to.
    given: Vec<(usize, String)>,
    /// Why each input does not take the axis, in words.
    why_not: Vec<String>,
}

/// The grid model `plan` runs on, from the scenario's `lengths` and `batches`: each axis that
/// reaches an input keeps the scenario's sizes; one that reaches none runs once, at the size its
/// inputs are fed on a dim named like it (or batch 1, one run of the inputs as given; length 0,
/// none). Two inputs fed different sizes on such dims are an error naming both.
pub fn model_grid(plan: &InputPlan, dims: &Dims, lengths: &[usize], batches: &[usize]) -> Result<ModelGrid, String> {
    let batch = axis(plan, dims, is_batch_dim, DimSource::Batch);
    let length = axis(plan, dims, is_sequence_dim, DimSource::Sequence);
    let mut notes = Vec::new();
    let mut pick = |a: Axis, grid: &[usize], none: usize, what: &str, key: &str| -> Result<Vec<usize>, String> {
        if a.from_grid {
            return Ok(grid.to_vec());
        }
        let fed = match a.given.split_first() {
            None => none,
            Some(((n, first), rest)) => {
                if let Some((m, other)) = rest.iter().find(|(m, _)| m != n) {
                    return Err(format!(
                        "model `{}`: inputs `{first}` and `{other}` are fed {n} and {m} on their {what} dims, and no input takes the scenario's `{key}`\n  fix: give both the same {what}",
                        plan.model
                    ));
                }
                *n
            }
        };
        if grid != [fed] {
            let shown = if fed == 0 { format!("no {what}") } else { format!("{what} {fed}") };
            notes.push(format!("no input takes the {what} ({}): run once, at {shown}, not over `{key}`", a.why_not.join("; ")));
        }
        Ok(vec![fed])
    };
    let batches = pick(batch, batches, 1, "batch size", "batch_sizes")?;
    let lengths = pick(length, lengths, 0, "length", "input_chars")?;
    Ok(ModelGrid { lengths, batches, note: (!notes.is_empty()).then(|| notes.join("; ")) })
}

fn axis(plan: &InputPlan, dims: &Dims, named: fn(&str) -> bool, grid: DimSource) -> Axis {
    let mut a = Axis { from_grid: false, given: Vec::new(), why_not: Vec::new() };
    for f in &plan.fills {
        let name = &f.input.name;
        let declared = f.input.dims.clone().unwrap_or_default();
        let named_at = |axis: usize| matches!(declared.get(axis), Some(Dim::Symbol(s)) if named(s));
        // A file or a `shape:` fixes every axis; `file` shapes are recorded in the plan.
        if let Some(shape) = &f.shape {
            let how = match &f.fill {
                Fill::Given { values: Values::File(p), .. } => format!("`{name}` is fed the file {}, {shape:?}", p.display()),
                _ => format!("`{name}` is given `shape: {shape:?}`"),
            };
            a.given.extend(shape.iter().enumerate().filter(|(k, _)| named_at(*k)).map(|(_, &n)| (n, name.clone())));
            a.why_not.push(how);
            continue;
        }
        // Dims that cannot be filled fail the cells with their own reason.
        let Ok(sources) = dim_sources(&plan.model, &f.input, dims) else { continue };
        if sources.contains(&grid) {
            a.from_grid = true;
            continue;
        }
        let mut set = Vec::new();
        for (k, s) in sources.iter().enumerate() {
            if let (true, DimSource::Set(n, _)) = (named_at(k), s) {
                a.given.push((*n, name.clone()));
                set.push(format!("{name}.{k}"));
            }
        }
        a.why_not.push(if set.is_empty() { format!("`{name}` {}", f.input.shape_string()) } else { format!("`{name}` is set by `dims:` ({})", set.join(", ")) });
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use crate::models::IoInfo;

    fn plan(inputs: &[(&str, Vec<Dim>)], given: &[(&str, &str)]) -> InputPlan {
        let ios: Vec<IoInfo> = inputs.iter().map(|(n, d)| IoInfo { name: n.to_string(), elem_type: "float32".into(), dims: Some(d.clone()), structural_use: None }).collect();
        let table: BTreeMap<String, serde_yaml::Value> = given.iter().map(|(k, v)| (k.to_string(), serde_yaml::from_str(v).unwrap())).collect();
        let specs = crate::scenario::inputs::parse_inputs(&table, std::path::Path::new(".")).unwrap().into_iter().map(|(k, s)| (k, crate::inputs::Located::new(s, "inputs", crate::scenario::SetBy::Scenario))).collect();
        InputPlan::new("m", &ios, false, &specs).unwrap()
    }

    #[test]
    fn an_axis_no_input_takes_runs_once_at_what_is_fed() {
        let image = vec![Dim::Symbol("batch".into()), Dim::Fixed(3)];
        let p = plan(&[("x", image.clone())], &[]);
        let g = model_grid(&p, &Dims::default(), &[4, 8], &[1, 32]).unwrap();
        assert_eq!((g.lengths, g.batches), (vec![0], vec![1, 32]));
        assert!(g.note.unwrap().contains("no input takes the length (`x` [batch, 3])"));
        // `shape:` fixes the batch: the cells are fed 2 rows, once.
        let p = plan(&[("x", image.clone())], &[("x", "{shape: [2, 3]}")]);
        let g = model_grid(&p, &Dims::default(), &[4], &[1, 32]).unwrap();
        assert_eq!(g.batches, vec![2]);
        assert!(g.note.unwrap().contains("`x` is given `shape: [2, 3]`): run once, at batch size 2, not over `batch_sizes`"));
        // By `dims:`, on the dim's name or by input and axis.
        let dims = Dims::scenario(&[("x.0".to_string(), 5)].into());
        assert_eq!(model_grid(&p, &dims, &[4], &[1]).unwrap().batches, vec![2], "shape: over dims");
        let p = plan(&[("x", image)], &[]);
        let g = model_grid(&p, &dims, &[4], &[5]).unwrap();
        assert_eq!(g.batches, vec![5]);
        assert!(g.note.unwrap().contains("no input takes the length"), "the batch note is left out when the grid was that size");
        // Fixed dims: one run is one batch.
        let p = plan(&[("x", vec![Dim::Fixed(2), Dim::Fixed(8)])], &[]);
        assert_eq!(model_grid(&p, &Dims::default(), &[4], &[1, 2]).unwrap().batches, vec![1]);
        // Two inputs fed different batches.
        let two = vec![Dim::Symbol("batch".into()), Dim::Fixed(3)];
        let p = plan(&[("a", two.clone()), ("b", two)], &[("a", "{shape: [1, 3]}"), ("b", "{shape: [4, 3]}")]);
        let e = model_grid(&p, &Dims::default(), &[4], &[1]).unwrap_err();
        assert!(e.contains("inputs `a` and `b` are fed 1 and 4 on their batch size dims"), "{e}");
    }

    #[test]
    fn a_length_one_input_takes_keeps_the_grid() {
        let p = plan(&[("x", vec![Dim::Symbol("batch".into()), Dim::Symbol("sequence".into())]), ("h", vec![Dim::Fixed(2), Dim::Fixed(4)])], &[]);
        let g = model_grid(&p, &Dims::default(), &[16, 64], &[1, 4]).unwrap();
        assert_eq!((g.lengths, g.batches, g.note), (vec![16, 64], vec![1, 4], None));
    }
}
