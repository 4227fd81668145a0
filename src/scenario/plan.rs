//! A validated scenario: what to measure, fully typed, and the fixed, ordered grid of cells.
//!
//! Order: model → runtime → input length (generation: prompt length → new tokens) → batch size, each in the order the file lists them.
//! Cells of one (model, runtime) pair are contiguous and form a `Group`, the unit a runtime
//! process loads once.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::hub_ref::HubRef;
use super::ops::OpCase;
use super::{InputSpec, RuntimeId, RuntimeRequest, Tolerances};

/// Where a scenario's input text comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextSource {
    /// Prose shipped inside xbench, by name.
    Builtin(String),
    /// A UTF-8 text file (its path as the scenario gives it, joined to the scenario's folder).
    File(PathBuf),
}

/// A model as a scenario names it, before anything is looked up.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelEntry {
    /// A folder or `.onnx` file under the models root, by its path there (normalised: no `./`,
    /// no trailing `/` or `/.`).
    Local(String),
    /// A Hub repository (`hf:owner/name[@revision]`), fetched into the models root on first use.
    Hub(HubRef),
    /// An operation case; its graph is built when the plan is resolved.
    Op(OpCase),
}

impl ModelEntry {
    /// The name cells, results and reports give the model.
    pub fn name(&self) -> String {
        match self {
            ModelEntry::Local(path) => model_name(path),
            ModelEntry::Hub(hub) => hub.default_name().to_string(),
            ModelEntry::Op(case) => case.name(),
        }
    }
}

/// The name a model entry (`bert-base-uncased`, `fixed.onnx`, `sub/m`) goes by.
pub fn model_name(entry: &str) -> String {
    entry.trim_end_matches('/').trim_end_matches(".onnx").to_string()
}

/// How every cell is measured and judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub iterations: usize,
    pub warmup: usize,
    pub text: TextSource,
    /// Intra-op threads for every runtime; `None` lets each runtime use the cores available.
    pub threads: Option<usize>,
    /// The runtime the others are compared with.
    pub reference: RuntimeId,
    pub tolerances: Tolerances,
    /// Minimum measuring time per cell, in seconds.
    pub min_time_s: Option<f64>,
    /// Longest a cell may take, in seconds.
    pub cell_timeout_s: f64,
    /// Memory a cell may need, in GiB (`None`: the machine's memory); larger cells are not run.
    pub memory_budget_gib: Option<f64>,
    /// Warn when the 95% interval of the mean is wider than this share of the mean.
    pub ci_warn_share: f64,
    /// Values of dims for generated (non-text) inputs: by symbol, or by `input.axis`; for every
    /// model that has them (the scenario-wide `dims:`).
    pub dims: BTreeMap<String, usize>,
    /// What inputs are fed, by input name, for every model that has them (the scenario-wide `inputs:`).
    pub inputs: BTreeMap<String, InputSpec>,
    /// Settings of a model's own (its table in `models:`), by model name; they win over `dims`
    /// and `inputs` for that model. A model listed by name alone has none.
    pub own: BTreeMap<String, ModelSettings>,
    /// Whether models' own test data sets are run.
    pub test_data: bool,
    /// Generation cells instead of forward passes (`generate:`).
    pub generate: Option<super::GenerateSpec>,
}

/// A model's own `dims:` and `inputs:`, from its table in `models:`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelSettings {
    pub dims: BTreeMap<String, usize>,
    pub inputs: BTreeMap<String, InputSpec>,
}

impl Settings {
    /// The own settings of model `name` (empty when it has none).
    pub fn own_of(&self, name: &str) -> ModelSettings {
        self.own.get(name).cloned().unwrap_or_default()
    }
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
    /// The model's own test data set the cell runs on (then `chars` is its number and `batch` 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_set: Option<usize>,
    /// Generation cells: tokens generated after a prompt of `chars` (tokens or characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_tokens: Option<usize>,
}

/// Where in a model's grid a cell lies: an input length and a batch size, or a test data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    pub chars: usize,
    pub batch: usize,
    pub data_set: Option<usize>,
    pub new_tokens: Option<usize>,
}

impl Point {
    /// The point of test data set `n`.
    pub fn data_set(n: usize) -> Point {
        Point { chars: n, batch: 1, data_set: Some(n), new_tokens: None }
    }
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
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub name: String,
    /// Where the scenario came from (a path, or the built-in scenario), for messages.
    pub origin: String,
    /// The folder relative paths in the scenario are taken from.
    pub scenario_dir: PathBuf,
    pub models: Vec<ModelEntry>,
    pub runtimes: Vec<RuntimeRequest>,
    /// Where the runtimes came from: `runtimes` in the file, or `--runtimes`.
    pub runtimes_key: &'static str,
    pub input_chars: Vec<usize>,
    pub batch_sizes: Vec<usize>,
    pub settings: Settings,
    pub groups: Vec<Group>,
    pub cells: Vec<Cell>,
}

impl Plan {
    /// The cells of group `g`.
    pub fn group_cells(&self, g: &Group) -> &[Cell] {
        &self.cells[g.first_cell..g.first_cell + g.cell_count]
    }

    /// The runtimes' names, in order.
    pub fn runtime_ids(&self) -> Vec<RuntimeId> {
        self.runtimes.iter().map(|r| r.id).collect()
    }

    /// The scenario's grid: every input length with every batch size.
    pub fn grid_points(&self) -> Vec<Point> {
        if let Some(g) = &self.settings.generate {
            return g
                .prompts
                .iter()
                .flat_map(|&chars| g.new_tokens.iter().flat_map(move |&new| self.batch_sizes.iter().map(move |&batch| Point { chars, batch, data_set: None, new_tokens: Some(new) })))
                .collect();
        }
        self.input_chars.iter().flat_map(|&chars| self.batch_sizes.iter().map(move |&batch| Point { chars, batch, data_set: None, new_tokens: None })).collect()
    }

    /// Lays the cells out again, with model `m`'s points from `points(m)` (a model that runs its
    /// own test data has one point per data set instead of the scenario's grid).
    pub fn regrid(&mut self, points: impl Fn(usize) -> Vec<Point>) {
        let per_model: Vec<Vec<Point>> = (0..self.models.len()).map(points).collect();
        (self.groups, self.cells) = grid(&self.models, &self.runtime_ids(), &per_model);
    }

    /// Whether the plan measures operation cases rather than models.
    pub fn is_ops(&self) -> bool {
        self.models.iter().any(|m| matches!(m, ModelEntry::Op(_)))
    }
}

/// The grid of `models` × `runtimes` × each model's points, in that order.
pub(super) fn grid(models: &[ModelEntry], runtimes: &[RuntimeId], points: &[Vec<Point>]) -> (Vec<Group>, Vec<Cell>) {
    let mut groups = Vec::new();
    let mut cells = Vec::new();
    for (m, entry) in models.iter().enumerate() {
        let model = entry.name();
        for &runtime in runtimes {
            let group = groups.len();
            let first_cell = cells.len();
            for p in &points[m] {
                cells.push(Cell { index: cells.len(), group, model: model.clone(), runtime, chars: p.chars, batch: p.batch, data_set: p.data_set, new_tokens: p.new_tokens });
            }
            groups.push(Group { index: group, model: m, runtime, first_cell, cell_count: cells.len() - first_cell });
        }
    }
    (groups, cells)
}
