//! `resolve`: the second stage. A validated `Plan` becomes a `ResolvedPlan` — each runtime name
//! bound to a registered runtime, each model found under the models root (or fetched from the
//! Hub, or an operation case's graph written), its inputs and outputs read once, the text checked.
//! Nothing is measured here.

use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};

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

    /// Whether the outputs of model `m`'s cells are kept for comparison: another runtime, or a
    /// sibling model's cells, will be compared with them.
    pub fn keeps_outputs(&self, m: usize) -> bool {
        self.plan.runtimes.len() > 1 || self.sibling_of(m).is_some() || (0..self.models.len()).any(|d| self.sibling_of(d) == Some(m))
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
        if !path.is_file() {
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
        let source = match entry {
            ModelEntry::Local(path) => {
                let spec = models::find(path, &opts.models_root).with_context(at)?;
                onnx_source(spec).with_context(at)?
            }
            // A fetch that fails fails this model's cells only; the other models still run.
            ModelEntry::Hub(hub) => match models::hub::ensure(hub, &opts.models_root).with_context(at)? {
                Ok(spec) => onnx_source(spec).with_context(at)?,
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
                ModelSource::Op { case: case.clone(), onnx, io, meta }
            }
        };
        models.push(ResolvedModel { name: entry.name(), source });
    }
    Ok(ResolvedPlan { plan, runtimes, models })
}

/// A model found on disk, with its graph's inputs and outputs; an unreadable ONNX file fails
/// every cell of the model, so it is refused before anything runs.
fn onnx_source(spec: models::ModelSpec) -> Result<ModelSource> {
    let io = models::read_io(&spec.onnx)?;
    Ok(ModelSource::Onnx { spec, io })
}
