//! `resolve`: the second stage. A validated `Plan` becomes a `ResolvedPlan` — each runtime name
//! bound to a registered runtime, each model found under the models root (or fetched from the
//! Hub, or an operation case's graph written), its inputs and outputs read once, the text checked.
//! Nothing is measured here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};

mod keys;

use crate::inputs::{Dims, InputPlan, Located};
use crate::scenario::{InputSpec, Point, SetBy, Settings};

use crate::models::{self, ModelMeta, ModelSource, ResolvedModel};
use crate::runtimes::{self, RuntimeSpec};
use crate::scenario::{ModelEntry, Plan, TextSource};

/// Where models and generated graphs live.
#[derive(Debug, Clone)]
pub struct ResolveOptions {
    /// Folder holding one folder (or `.onnx` file) per model.
    pub models_root: PathBuf,
    /// Folder the graphs of operation cases are written to (the run's `.ops/`); `None` refuses them.
    pub ops_dir: Option<PathBuf>,
}

/// A plan whose runtimes and models are all known: what the executor runs.
#[derive(Debug, Clone)]
pub struct ResolvedPlan {
    pub plan: Plan,
    /// One per `plan.runtimes`, in the same order.
    pub runtimes: Vec<RuntimeSpec>,
    /// One per `plan.models`, in the same order.
    pub models: Vec<ResolvedModel>,
}

impl ResolvedPlan {
    /// The runtime of `id`.
    pub fn runtime(&self, id: crate::scenario::RuntimeId) -> &RuntimeSpec {
        self.runtimes.iter().find(|r| r.id == id).expect("every cell's runtime is one of the plan's")
    }

    /// The model that model `m` is compared with (its `compare_with`), when this plan runs it.
    pub fn sibling_of(&self, m: usize) -> Option<usize> {
        let name = self.models[m].sibling()?;
        self.models.iter().position(|x| x.name == name)
    }

    /// The `dims:` values that reach model `m`: its own and the scenario's.
    pub fn dims_of(&self, m: usize) -> Dims {
        model_dims(&self.plan.settings, &self.models[m].name)
    }

    /// Whether model `m` runs its own test data sets instead of the scenario's grid.
    pub fn runs_test_data(&self, m: usize) -> bool {
        self.plan.settings.test_data && !self.models[m].test_data().is_empty()
    }

    /// Whether the outputs of model `m`'s cells are kept for comparison: another runtime, a
    /// sibling model's cells, or the model's own expected outputs will be compared with them.
    pub fn keeps_outputs(&self, m: usize) -> bool {
        self.plan.runtimes.len() > 1 || self.runs_test_data(m) || self.sibling_of(m).is_some() || (0..self.models.len()).any(|d| self.sibling_of(d) == Some(m))
    }
}

/// Resolves `plan`. Errors name the scenario, the key and the fix; a Hub model that cannot be
/// fetched is not an error: its cells fail with the reason, and the other models run.
pub fn resolve(plan: Plan, opts: &ResolveOptions) -> Result<ResolvedPlan> {
    let origin = plan.origin.clone();
    let mut runtimes = Vec::new();
    for (i, request) in plan.runtimes.iter().enumerate() {
        let spec = runtimes::lookup(request).map_err(|m| anyhow!("{origin}: `{}[{i}]` {m}", plan.runtimes_key))?;
        runtimes.push(spec);
    }
    if let TextSource::File(path) = &plan.settings.text {
        let written = path.strip_prefix(&plan.scenario_dir).unwrap_or(path).display().to_string();
        if std::fs::metadata(path).is_err() {
            return Err(anyhow!(
                "{origin}: `text_file` = `{written}`: no such file ({})\n  fix: give a UTF-8 text file's path, relative to the scenario file",
                path.display()
            ));
        }
        // An empty or non-UTF-8 file fails every cell: refuse it before anything runs.
        crate::inputs::load_text(&plan.settings.text).with_context(|| format!("{origin}: `text_file` = `{written}`"))?;
    }
    let mut models = Vec::new();
    for (i, entry) in plan.models.iter().enumerate() {
        let at = || match entry {
            ModelEntry::Local(path) => format!("{origin}: `models[{i}]` = `{path}`"),
            ModelEntry::Hub(hub) => format!("{origin}: `models[{i}]` = `{}{hub}`", crate::scenario::ENTRY_PREFIX),
            ModelEntry::Op(case) => format!("{origin}: operation case `{}`", case.name()),
        };
        let own = plan.settings.own_of(&entry.name()).inputs;
        let source = match entry {
            ModelEntry::Local(path) => {
                let spec = models::find(path, &opts.models_root).with_context(at)?;
                onnx_source(spec, &plan.settings.inputs, &own, i).with_context(at)?
            }
            // A fetch that fails fails this model's cells only; the other models still run.
            ModelEntry::Hub(hub) => match models::hub::ensure(hub, &opts.models_root).with_context(at)? {
                Ok(spec) => onnx_source(spec, &plan.settings.inputs, &own, i).with_context(at)?,
                Err(why) => {
                    tracing::warn!("the cells of `{}{hub}` will fail, the other models run: {why}", crate::scenario::ENTRY_PREFIX);
                    ModelSource::Unavailable { why, hub: Some(hub.clone()) }
                }
            },
            ModelEntry::Op(case) => {
                let dir = opts.ops_dir.as_deref().ok_or_else(|| anyhow!("{}: operation cases are measured by `xbench scenario` only\n  fix: run the scenario with `xbench scenario`", at()))?;
                let onnx = crate::ops::write_into(case, dir).with_context(at)?;
                let io = models::read_io(&onnx).with_context(at)?;
                let meta = ModelMeta { weights: Some("random".into()), description: Some(crate::scenario::ops::description(case)), ..Default::default() };
                let inputs = InputPlan::by_name(&entry.name(), &io.inputs, false).map_err(|e| anyhow!("{}: {e}", at()))?;
                ModelSource::Op { case: case.clone(), onnx, io, meta, inputs }
            }
        };
        // One ONNX file named two ways (`m` and `m/model.onnx`) would run twice.
        let real = |m: &ResolvedModel| m.op().is_none().then(|| m.onnx().and_then(|p| p.canonicalize().ok())).flatten();
        let model = ResolvedModel { name: entry.name(), source };
        if let Some(k) = real(&model).and_then(|p| models.iter().position(|m| real(m).as_ref() == Some(&p))) {
            return Err(anyhow!(
                "{}: its ONNX file {} is the one of `models[{k}]` (model `{}`), so the model would run twice\n  fix: list each model once",
                at(),
                model.onnx().map(|p| p.display().to_string()).unwrap_or_default(),
                models[k].name
            ));
        }
        models.push(model);
    }
    keys::check_input_keys(&plan, &models)?;
    let mut plan = plan;
    let (grid, use_test_data) = (plan.grid_points(), plan.settings.test_data);
    let mut points = Vec::new();
    for m in &models {
        points.push(if plan.settings.generate.is_some() {
            grid.clone()
        } else if use_test_data && !m.test_data().is_empty() {
            (0..m.test_data().len()).map(Point::data_set).collect()
        } else {
            match model_grid(&plan, m).map_err(|e| anyhow!("{origin}: {e}"))? {
                Some(g) => {
                    if let Some(note) = &g.note {
                        tracing::warn!("model `{}`: {note}", m.name);
                    }
                    g.lengths.iter().flat_map(|&chars| g.batches.iter().map(move |&batch| Point { chars, batch, data_set: None, new_tokens: None })).collect()
                }
                None => grid.clone(),
            }
        });
    }
    if let Some(m) = models.iter().zip(&points).find(|(_, p)| p.is_empty()).map(|(m, _)| m) {
        return Err(anyhow!(
            "{origin}: model `{}` has no test data of its own (test_data_set_N folders), so it runs on the scenario's grid, but `input_chars` and `batch_sizes` list no sizes\n  fix: list them, e.g. `input_chars: [50]` and `batch_sizes: [1]`",
            m.name
        ));
    }
    plan.regrid(|m| points[m].clone());
    // Test data whose files match no graph input or output fails the model's cells, naming the
    // file, before anything runs; the other models run.
    for m in models.iter_mut().filter(|m| use_test_data && !m.test_data().is_empty()) {
        if let Err(why) = check_test_data(m) {
            tracing::warn!("the cells of `{}` will fail, the other models run: {why}", m.name);
            m.source = ModelSource::Unavailable { why, hub: None };
        }
    }
    if plan.settings.generate.is_some() {
        // Generation runs decoders with a key/value cache; any other model's cells fail saying so.
        for m in models.iter_mut() {
            if let Err(why) = decoder_of(m) {
                tracing::warn!("the cells of `{}` will fail, the other models run: {why}", m.name);
                m.source = ModelSource::Unavailable { why, hub: None };
            }
        }
        return Ok(ResolvedPlan { plan, runtimes, models });
    }
    for m in &models {
        let own_data = use_test_data && !m.test_data().is_empty();
        match m.inputs() {
            Err(why) if m.io().is_ok() && !own_data => tracing::warn!("the cells of `{}` will fail, the other models run: {why}", m.name),
            Ok(p) if own_data => {
                let own = plan.settings.own_of(&m.name).inputs;
                if let Some(k) = p.fills.iter().map(|f| &f.input.name).find(|n| plan.settings.inputs.contains_key(*n) || own.contains_key(*n)) {
                    tracing::warn!("model `{}` runs on its own test data, so `inputs.{k}` does not apply to it (set `test_data: false` to feed it)", m.name);
                }
            }
            _ => {}
        }
    }
    Ok(ResolvedPlan { plan, runtimes, models })
}

/// The key/value cache layout of decoder `m`, for generation (a model that is not ready is left
/// to fail as it would).
pub fn decoder_of(m: &ResolvedModel) -> Result<Option<models::DecoderLayout>, String> {
    if m.io().is_err() {
        return Ok(None);
    }
    match m.decoder_layout() {
        Ok(Some(layout)) => Ok(Some(layout)),
        Ok(None) => Err(format!(
            "model `{}` has no key/value cache inputs (such as `past_key_values.0.key`), so it cannot generate token by token\n  fix: run it as a plain model (a scenario without `generate:`), or export it with its cache (scripts/export_models.py --decoder)",
            m.name
        )),
        Err(e) => Err(format!("{e:#}")),
    }
}

/// The grid of model `m` when it is fed generated or given values (not text, not its own test
/// data): each grid axis that reaches none of its inputs runs once, at the size it is fed.
pub fn model_grid(plan: &Plan, m: &ResolvedModel) -> Result<Option<crate::inputs::ModelGrid>, String> {
    match m.inputs() {
        Ok(p) if !p.takes_text() && m.op().is_none() => crate::inputs::model_grid(p, &model_dims(&plan.settings, &m.name), &plan.input_chars, &plan.batch_sizes).map(Some),
        _ => Ok(None),
    }
}

/// The `dims:` values that reach model `name`: its own (its table in `models:`) and the scenario's.
pub fn model_dims(settings: &Settings, name: &str) -> Dims {
    Dims { model: settings.own_of(name).dims, scenario: settings.dims.clone() }
}

/// Checks every test data set of `m`: each file must give a graph input or output, by its name
/// (by position only when unnamed), and every input and output must be given.
fn check_test_data(m: &ResolvedModel) -> Result<(), String> {
    let Ok(io) = m.io() else { return Ok(()) };
    for set in m.test_data() {
        models::test_data::check_names(set, &io.inputs, &io.outputs).map_err(|e| format!("model `{}`: its test data: {e:#}", m.name))?;
    }
    Ok(())
}

/// A model found on disk, with its graph's inputs and outputs and how they are fed; an unreadable
/// ONNX file fails every cell of the model, so it is refused before anything runs. Inputs that
/// cannot be fed fail the model's grid cells with the reason (its own test data still runs).
/// What each input is fed: its model.yaml's `inputs:`, the scenario-wide `inputs:` over them, and
/// the model's own (`models[i]` in the scenario) over both.
fn onnx_source(spec: models::ModelSpec, scenario_inputs: &BTreeMap<String, InputSpec>, own_inputs: &BTreeMap<String, InputSpec>, i: usize) -> Result<ModelSource> {
    let io = models::read_io(&spec.onnx)?;
    let meta_yaml = spec.onnx.parent().map(|d| d.join("model.yaml").display().to_string()).unwrap_or_default();
    let their_inputs = || io.inputs.iter().map(|i| format!("`{}`", i.name)).collect::<Vec<_>>().join(", ");
    // model.yaml and the model's own entry may only name the model's own inputs.
    if let Some(k) = spec.inputs.keys().find(|k| !io.inputs.iter().any(|i| i.name == **k)) {
        anyhow::bail!("{meta_yaml}: `inputs.{k}` names no input of model `{}` (its inputs: {})\n  fix: use one of those names", spec.name, their_inputs());
    }
    if let Some(k) = own_inputs.keys().find(|k| !io.inputs.iter().any(|i| i.name == **k)) {
        anyhow::bail!("its own `inputs.{k}` names no input of model `{}` (its inputs: {})\n  fix: use one of those names under `models[{i}].inputs`, or remove it", spec.name, their_inputs());
    }
    let mut specs: BTreeMap<String, Located> = spec.inputs.iter().map(|(k, v)| (k.clone(), Located::new(v.clone(), format!("{meta_yaml}: `inputs.{k}`"), SetBy::ModelYaml))).collect();
    let layers = [(scenario_inputs, SetBy::Scenario), (own_inputs, SetBy::Model)];
    for (table, by) in layers {
        // A model's own `inputs.<name>` takes the place of the scenario-wide one.
        for (k, v) in table.iter().filter(|(k, _)| by == SetBy::Model || !own_inputs.contains_key(*k)) {
            let at = if by == SetBy::Model { format!("the scenario's `models[{i}].inputs.{k}`") } else { format!("the scenario's `inputs.{k}`") };
            let given = Located::new(v.clone(), at, by);
            let merged = specs.get(k).map_or_else(|| given.clone(), |mine| mine.overridden_by(&given));
            specs.insert(k.clone(), merged);
        }
    }
    let inputs = InputPlan::new(&spec.name, &io.inputs, spec.tokenizer.is_some(), &specs);
    Ok(ModelSource::Onnx { spec, io, inputs })
}
