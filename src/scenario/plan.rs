//! Validation of a scenario file into a `Plan`: the fixed, ordered grid of cells to measure.
//!
//! Order: model → runtime → input length → batch size, each in the order the file lists them.
//! Cells of one (model, runtime) pair are contiguous and form a `Group`, the unit a runtime
//! process loads once.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::ScenarioFile;
use crate::models::{self, ModelSpec};
use crate::results::{Tolerance, Tolerances};
use crate::runtimes::RuntimeId;

/// Largest values accepted; beyond them a value is taken for a typo.
const MAX_CHARS: i64 = 100_000;
const MAX_BATCH: i64 = 4_096;
const MAX_ITERATIONS: i64 = 1_000_000;
const MAX_WARMUP: i64 = 100_000;
const MAX_THREADS: i64 = 1_024;

/// Where a scenario's input text comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextSource {
    /// Prose shipped inside xbench, by name.
    Builtin(String),
    /// A UTF-8 text file.
    File(PathBuf),
}

/// Things a plan needs besides the file itself.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// Folder holding one folder (or `.onnx` file) per model.
    pub models_root: PathBuf,
    /// Folder of the scenario file; relative paths in it are taken from here.
    pub scenario_dir: PathBuf,
    /// Runtimes chosen on the command line, replacing the file's list.
    pub runtimes_override: Option<Vec<String>>,
}

/// One measured point: a model on a runtime at one input length and batch size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub index: usize,
    pub group: usize,
    pub model: String,
    pub runtime: RuntimeId,
    pub chars: usize,
    pub batch: usize,
}

/// The cells of one (model, runtime) pair, run with one loaded session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub index: usize,
    pub model: usize,
    pub runtime: RuntimeId,
    /// Indices into `Plan::cells`.
    pub first_cell: usize,
    pub cell_count: usize,
}

/// A validated scenario, expanded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub name: String,
    pub models: Vec<ModelSpec>,
    pub runtimes: Vec<RuntimeId>,
    pub input_chars: Vec<usize>,
    pub batch_sizes: Vec<usize>,
    pub iterations: usize,
    pub warmup: usize,
    pub text: TextSource,
    pub threads: Option<usize>,
    /// The runtime the others are compared with.
    pub reference: RuntimeId,
    pub tolerances: Tolerances,
    /// Minimum measuring time per cell, in seconds.
    pub min_time_s: Option<f64>,
    /// Warn when the 95% interval of the mean is wider than this share of the mean.
    pub ci_warn_share: f64,
    /// Values of named symbolic dims for generated (non-text) inputs.
    pub dims: std::collections::BTreeMap<String, usize>,
    pub groups: Vec<Group>,
    pub cells: Vec<Cell>,
}

impl Plan {
    /// Validates `file` (read from `origin`) into a plan; every error names the key, the value and the fix.
    pub fn new(file: &ScenarioFile, origin: &str, opts: &PlanOptions) -> Result<Plan> {
        let err = |key: &str, msg: String| anyhow::anyhow!("{origin}: `{key}` {msg}");
        if file.name.trim().is_empty() {
            return Err(err("name", "is empty\n  fix: give the scenario a short name, e.g. `name: quick`".into()));
        }
        // Operation cases (`ops:`) replace models, input lengths and batch sizes: one cell each per runtime.
        let op_specs = crate::ops::scenario_specs(file, origin)?;
        let (input_chars, batch_sizes) = match &op_specs {
            Some(_) => (vec![0], vec![1]),
            None => (
                sizes(&file.input_chars, "input_chars", 1, MAX_CHARS, "[50, 100, 200, 500]").map_err(|(k, m)| err(&k, m))?,
                sizes(&file.batch_sizes, "batch_sizes", 1, MAX_BATCH, "[1, 16, 32]").map_err(|(k, m)| err(&k, m))?,
            ),
        };
        let iterations = one_size(file.iterations, 1, MAX_ITERATIONS, "`iterations: 10`").map_err(|m| err("iterations", m))?;
        let warmup = one_size(file.warmup, 0, MAX_WARMUP, "`warmup: 3`").map_err(|m| err("warmup", m))?;
        let threads = match file.threads {
            None => None,
            Some(t) => Some(one_size(t, 1, MAX_THREADS, "`threads: 4`").map_err(|m| err("threads", m))?),
        };

        let runtime_names: Vec<String> = match &opts.runtimes_override {
            Some(list) => list.clone(),
            None => file.runtimes.clone(),
        };
        let runtime_key = if opts.runtimes_override.is_some() { "--runtimes" } else { "runtimes" };
        if runtime_names.is_empty() {
            return Err(err(runtime_key, format!("is empty\n  fix: list at least one of: {}", RuntimeId::names())));
        }
        let mut runtimes = Vec::new();
        for (i, name) in runtime_names.iter().enumerate() {
            let id: RuntimeId = name.parse().map_err(|m: String| err(&format!("{runtime_key}[{i}]"), m))?;
            if runtimes.contains(&id) {
                return Err(err(&format!("{runtime_key}[{i}]"), format!("lists `{name}` twice\n  fix: list each runtime once")));
            }
            runtimes.push(id);
        }

        if file.models.is_empty() && op_specs.is_none() {
            return Err(err("models", "is empty\n  fix: list at least one model; `xbench models` shows those found (or list operation cases under `ops:`)".into()));
        }
        let mut model_specs: Vec<ModelSpec> = op_specs.unwrap_or_default();
        for (i, name) in file.models.iter().enumerate() {
            let at = || format!("{origin}: `models[{i}]` = `{name}`");
            let twice = |specs: &[ModelSpec], model: &str| specs.iter().any(|m| m.name == model);
            let spec = match crate::hub::HubRef::from_entry(name) {
                None => models::resolve(name, &opts.models_root, &opts.scenario_dir).with_context(at)?,
                // `hf:owner/name[@revision]`: the folder models/<name>/, fetched on first use. A fetch
                // that fails fails this model's cells only; the other models still run.
                Some(hub) => {
                    let hub = hub.with_context(at)?;
                    if twice(&model_specs, hub.default_name()) {
                        return Err(err(&format!("models[{i}]"), format!("lists `{name}`, whose folder `{}` is already listed\n  fix: list each model once", hub.default_name())));
                    }
                    match crate::hub::ensure(&hub, &opts.models_root, &opts.scenario_dir).with_context(at)? {
                        Ok(spec) => spec,
                        Err(why) => {
                            eprintln!("xbench: warning: the cells of `{name}` will fail, the other models run: {why}");
                            model_specs.push(crate::hub::unavailable(&hub, &opts.models_root, why));
                            continue;
                        }
                    }
                }
            };
            // An unreadable ONNX file fails every cell of the model: refuse it before anything runs.
            models::read_io(&spec.onnx).with_context(at)?;
            if twice(&model_specs, &spec.name) {
                return Err(err(&format!("models[{i}]"), format!("lists `{name}` twice\n  fix: list each model once")));
            }
            model_specs.push(spec);
        }

        let reference = match &file.reference {
            None => runtimes[0],
            Some(name) => {
                let id: RuntimeId = name.parse().map_err(|m: String| err("reference", m))?;
                if !runtimes.contains(&id) {
                    return Err(err(
                        "reference",
                        format!("= `{name}` is not among the runtimes run\n  fix: name one of: {}", runtimes.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")),
                    ));
                }
                id
            }
        };
        let mut tolerances = Tolerances::default();
        if let Some(t) = &file.tolerance {
            for (key, given, slot) in [("tolerance.fp32", &t.fp32, &mut tolerances.fp32), ("tolerance.fp16", &t.fp16, &mut tolerances.fp16)] {
                if let Some(g) = given {
                    if !(g.abs.is_finite() && g.abs >= 0.0 && g.rel.is_finite() && g.rel >= 0.0) {
                        return Err(err(key, format!("= {{abs: {}, rel: {}}} must be finite and not negative\n  fix: e.g. `{{abs: 1e-4, rel: 1e-3}}`", g.abs, g.rel)));
                    }
                    *slot = Tolerance { abs: g.abs, rel: g.rel };
                }
            }
        }
        let min_time_s = match file.min_time_s {
            None => None,
            Some(t) if t.is_finite() && t > 0.0 && t <= 3600.0 => Some(t),
            Some(t) => return Err(err("min_time_s", format!("is {t}: it must be more than 0 and at most 3600 seconds\n  fix: e.g. `min_time_s: 1.0`"))),
        };
        let ci_warn_share = match file.ci_warn_share {
            None => 0.10,
            Some(s) if s.is_finite() && s > 0.0 => s,
            Some(s) => return Err(err("ci_warn_share", format!("is {s}: it must be a positive share of the mean\n  fix: e.g. `ci_warn_share: 0.1` (10%)"))),
        };

        let mut dims = std::collections::BTreeMap::new();
        for (name, &v) in &file.dims {
            dims.insert(name.clone(), one_size(v, 1, 1 << 24, &format!("`dims: {{{name}: 224}}`")).map_err(|m| err(&format!("dims.{name}"), m))?);
        }

        let text = match (&file.text, &file.text_file) {
            (Some(_), Some(_)) => {
                return Err(err("text_file", "is given together with `text`\n  fix: keep one of the two".into()))
            }
            (_, Some(path)) => {
                let p = opts.scenario_dir.join(path);
                if !p.is_file() {
                    return Err(err(
                        "text_file",
                        format!("= `{path}`: no such file ({})\n  fix: give a UTF-8 text file's path, relative to the scenario file", p.display()),
                    ));
                }
                // An empty or non-UTF-8 file fails every cell: refuse it before anything runs.
                let source = TextSource::File(p);
                crate::inputs::load_text(&source).with_context(|| format!("{origin}: `text_file` = `{path}`"))?;
                source
            }
            (Some(name), None) => {
                if !crate::inputs::BUILTIN_TEXTS.iter().any(|(n, _)| n == name) {
                    let known: Vec<&str> = crate::inputs::BUILTIN_TEXTS.iter().map(|(n, _)| *n).collect();
                    return Err(err(
                        "text",
                        format!("= `{name}` is not a built-in text\n  fix: use one of: {}, or `text_file: path/to/prose.txt`", known.join(", ")),
                    ));
                }
                TextSource::Builtin(name.clone())
            }
            (None, None) => TextSource::Builtin(crate::inputs::BUILTIN_TEXTS[0].0.to_string()),
        };

        let mut groups = Vec::new();
        let mut cells = Vec::new();
        for (m, spec) in model_specs.iter().enumerate() {
            for &runtime in &runtimes {
                let group = groups.len();
                let first_cell = cells.len();
                for &chars in &input_chars {
                    for &batch in &batch_sizes {
                        cells.push(Cell { index: cells.len(), group, model: spec.name.clone(), runtime, chars, batch });
                    }
                }
                groups.push(Group { index: group, model: m, runtime, first_cell, cell_count: cells.len() - first_cell });
            }
        }

        Ok(Plan {
            name: file.name.clone(),
            models: model_specs,
            runtimes,
            input_chars,
            batch_sizes,
            iterations,
            warmup,
            text,
            threads,
            reference,
            tolerances,
            min_time_s,
            ci_warn_share,
            dims,
            groups,
            cells,
        })
    }

    /// Reads, parses and validates a scenario file.
    pub fn from_path(path: &Path, models_root: &Path, runtimes_override: Option<Vec<String>>) -> Result<(ScenarioFile, Plan)> {
        let origin = path.display().to_string();
        let bytes = std::fs::read(path).with_context(|| {
            format!("cannot read scenario file {origin}\n  fix: check the path; `xbench scenario` with no file runs the built-in quick scenario")
        })?;
        let text = String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{origin}: not UTF-8 text\n  fix: save the scenario as UTF-8"))?;
        let file = ScenarioFile::parse(&text, &origin)?;
        let scenario_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let plan = Plan::new(&file, &origin, &PlanOptions { models_root: models_root.to_path_buf(), scenario_dir, runtimes_override })?;
        Ok((file, plan))
    }

    /// The cells of group `g`.
    pub fn group_cells(&self, g: &Group) -> &[Cell] {
        &self.cells[g.first_cell..g.first_cell + g.cell_count]
    }

    /// The model that model `m` is compared with (its `compare_with`), when this plan runs it.
    pub fn sibling_of(&self, m: usize) -> Option<usize> {
        let name = self.models[m].sibling()?;
        self.models.iter().position(|x| x.name == name)
    }

    /// Whether the outputs of model `m`'s cells are saved: another runtime, or a sibling model's
    /// cells, will be compared with them.
    pub fn keeps_outputs(&self, m: usize) -> bool {
        self.runtimes.len() > 1 || self.sibling_of(m).is_some() || (0..self.models.len()).any(|d| self.sibling_of(d) == Some(m))
    }
}

fn one_size(v: i64, min: i64, max: i64, example: &str) -> std::result::Result<usize, String> {
    if v < min {
        let what = if v < 0 { "negative" } else if v == 0 { "zero" } else { "too small" };
        return Err(format!("is {v}: {what}; it must be at least {min}\n  fix: e.g. {example}"));
    }
    if v > max {
        return Err(format!("is {v}: larger than the limit of {max}\n  fix: e.g. {example}"));
    }
    Ok(v as usize)
}

/// Validates a list of sizes; an error carries the key (with the index) and the message.
fn sizes(list: &[i64], key: &str, min: i64, max: i64, example: &str) -> std::result::Result<Vec<usize>, (String, String)> {
    if list.is_empty() {
        return Err((key.into(), format!("is empty\n  fix: list at least one value, e.g. `{key}: {example}`")));
    }
    let mut out = Vec::new();
    for (i, &v) in list.iter().enumerate() {
        let s = one_size(v, min, max, &format!("`{key}: {example}`")).map_err(|m| (format!("{key}[{i}]"), m))?;
        if out.contains(&s) {
            return Err((format!("{key}[{i}]"), format!("lists {v} twice\n  fix: list each value once")));
        }
        out.push(s);
    }
    Ok(out)
}
