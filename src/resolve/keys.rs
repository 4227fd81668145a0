//! The keys of a scenario's `dims:` and `inputs:` (scenario-wide, and each model's own) checked
//! against the inputs of the models run, before anything runs.

use anyhow::{anyhow, Result};

use crate::models::{self, IoInfo, ResolvedModel};
use crate::scenario::{ModelSettings, Plan};

/// Every key of `dims:` and `inputs:` must mean something for a model it reaches: a typo would
/// otherwise change nothing, silently. A model's own keys must name its own inputs and dims, and a
/// scenario-wide key on an input must not reach models whose inputs of that name differ in rank or
/// element type (one value cannot mean the same for both).
pub(super) fn check_input_keys(plan: &Plan, models: &[ResolvedModel]) -> Result<()> {
    let ios: Vec<&models::ModelIo> = models.iter().filter_map(|m| m.io().ok()).collect();
    if ios.is_empty() {
        return Ok(());
    }
    let all_inputs = || ios.iter().flat_map(|io| &io.inputs);
    let names = || {
        let mut n: Vec<String> = all_inputs().map(|i| format!("`{}`", i.name)).collect();
        n.dedup();
        n.join(", ")
    };
    for key in plan.settings.inputs.keys() {
        if !all_inputs().any(|i| i.name == *key) {
            return Err(anyhow!("{}: `inputs.{key}` names no input of the models run (their inputs: {})\n  fix: use one of those names, or remove it", plan.origin, names()));
        }
    }
    for key in plan.settings.dims.keys() {
        if !names_a_dim(key, all_inputs()) {
            return Err(anyhow!(
                "{}: `dims.{key}` names no dim of the models run (their named dims: {}; or `input.axis` for an input of theirs)\n  fix: use one of those, or remove it",
                plan.origin,
                symbols(all_inputs())
            ));
        }
    }
    for (i, m) in models.iter().enumerate() {
        let (Ok(io), Some(own)) = (m.io(), plan.settings.own.get(&m.name)) else { continue };
        for key in own.dims.keys() {
            if !names_a_dim(key, io.inputs.iter()) {
                return Err(anyhow!(
                    "{}: `models[{i}].dims.{key}` names no dim of model `{}` (its named dims: {}; or `input.axis` for one of its inputs: {})\n  fix: use one of those, or remove it",
                    plan.origin,
                    m.name,
                    symbols(io.inputs.iter()),
                    io.inputs.iter().map(|i| format!("`{}` {}", i.name, i.shape_string())).collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    for key in plan.settings.inputs.keys() {
        same_kind_everywhere(plan, models, &format!("inputs.{key}"), key, |own| own.inputs.contains_key(key))?;
    }
    for key in plan.settings.dims.keys() {
        if let Some((input, _)) = key.rsplit_once('.') {
            same_kind_everywhere(plan, models, &format!("dims.{key}"), input, |own| own.dims.contains_key(key))?;
        }
    }
    Ok(())
}

/// Whether `key` of `dims:` names a dim of `inputs`: by its name, or as `input.axis`.
fn names_a_dim<'a>(key: &str, inputs: impl Iterator<Item = &'a IoInfo> + Clone) -> bool {
    let by_symbol = inputs.clone().any(|i| i.dims.iter().flatten().any(|d| matches!(d, models::Dim::Symbol(s) if s == key)));
    let by_axis = key.rsplit_once('.').is_some_and(|(input, axis)| {
        let axis: usize = axis.parse().unwrap_or(usize::MAX);
        inputs.clone().any(|i| i.name == input && i.dims.as_ref().is_some_and(|d| axis < d.len()))
    });
    by_symbol || by_axis
}

/// The named dims of `inputs`, for messages.
fn symbols<'a>(inputs: impl Iterator<Item = &'a IoInfo>) -> String {
    let mut symbols: Vec<String> = inputs.flat_map(|i| i.dims.iter().flatten()).filter_map(|d| if let models::Dim::Symbol(s) = d { Some(format!("`{s}`")) } else { None }).collect();
    symbols.sort();
    symbols.dedup();
    if symbols.is_empty() {
        "none".to_string()
    } else {
        symbols.join(", ")
    }
}

/// The scenario-wide `key`, on input `input`, reaches every model run on the grid that has an
/// input of that name and does not set the key itself (`own_sets`): their inputs of that name must
/// have one rank and one element type.
fn same_kind_everywhere(plan: &Plan, models: &[ResolvedModel], key: &str, input: &str, own_sets: impl Fn(&ModelSettings) -> bool) -> Result<()> {
    let reached: Vec<(&str, &IoInfo)> = models
        .iter()
        .filter(|m| !(plan.settings.test_data && !m.test_data().is_empty()))
        .filter(|m| !plan.settings.own.get(&m.name).is_some_and(&own_sets))
        .filter_map(|m| Some((m.name.as_str(), m.io().ok()?.inputs.iter().find(|i| i.name == input)?)))
        .collect();
    let rank = |i: &IoInfo| i.dims.as_ref().map(Vec::len);
    for (k, (a, x)) in reached.iter().enumerate() {
        for (b, y) in &reached[k + 1..] {
            let differ = if x.elem_type != y.elem_type {
                format!("element type ({} and {})", x.elem_type, y.elem_type)
            } else {
                match (rank(x), rank(y)) {
                    (Some(r), Some(q)) if r != q => format!("rank ({r} and {q})"),
                    _ => continue,
                }
            };
            let example = match key.split_once('.') {
                Some(("dims", k)) => format!("dims: {{{k}: {}}}", plan.settings.dims[k]),
                _ => format!("inputs: {{{input}: <its value>}}"),
            };
            return Err(anyhow!(
                "{}: the scenario-wide `{key}` reaches model `{a}`, whose input `{input}` is {} {}, and model `{b}`, whose input `{input}` is {} {}: they differ in {differ}, so one value cannot mean the same for both\n  fix: move it under the own entry of the model it is meant for in `models:`, e.g. `- {{name: {a}, {example}}}`, and give `{b}` its own if it needs one",
                plan.origin,
                x.elem_type,
                x.shape_string(),
                y.elem_type,
                y.shape_string()
            ));
        }
    }
    Ok(())
}
