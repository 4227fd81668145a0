//! What a worker receives: its group — one model on one runtime, the cells still to run, and how
//! to measure them — not the whole plan. Serialized as one JSON line on the worker's standard input.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::inputs::InputPlan;
use crate::models::{ModelIo, ResolvedModel};
use crate::resolve::ResolvedPlan;
use crate::results::CellRecord;
use crate::runtimes::RuntimeOptions;
use crate::scenario::{Cell, RuntimeRequest, TextSource};

/// The model as a worker needs it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobModel {
    pub name: String,
    pub onnx: PathBuf,
    pub tokenizer: Option<PathBuf>,
    pub io: ModelIo,
    /// First position id for `position_ids` inputs.
    pub position_offset: i64,
    /// Longest input, special tokens included; longer rows are truncated.
    pub max_positions: Option<usize>,
    /// How its inputs are fed on the scenario's grid (`None` when they cannot be; then only its
    /// test data cells run).
    pub inputs: Option<InputPlan>,
    /// Its own test data sets (`test_data_set_N`), for cells that run one.
    #[serde(default)]
    pub test_data: Vec<PathBuf>,
    /// Its key/value cache layout, for generation cells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoder: Option<crate::models::DecoderLayout>,
}

impl JobModel {
    /// The worker's view of a model that is ready (`None` for one that is not).
    pub fn of(model: &ResolvedModel) -> Option<JobModel> {
        let (onnx, io) = (model.onnx()?, model.io().ok()?);
        let meta = model.meta();
        Some(JobModel {
            name: model.name.clone(),
            onnx: onnx.to_path_buf(),
            tokenizer: model.tokenizer().map(|p| p.to_path_buf()),
            io: io.clone(),
            position_offset: meta.position_offset.unwrap_or_else(|| crate::models::default_position_offset(meta.architecture.as_deref())),
            max_positions: model.max_positions(),
            inputs: model.inputs().ok().cloned(),
            test_data: model.test_data().to_vec(),
            decoder: model.decoder_layout().ok().flatten(),
        })
    }
}

/// How each cell is measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measuring {
    pub warmup: usize,
    pub iterations: usize,
    pub min_time_s: Option<f64>,
    pub text: TextSource,
    /// The `dims:` values that reach the group's model (its own and the scenario's), for generated inputs.
    pub dims: crate::inputs::Dims,
    /// Generation cells' settings (`generate:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate: Option<crate::scenario::GenerateSpec>,
}

/// One group's work.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupJob {
    pub group: usize,
    pub runtime: RuntimeRequest,
    pub model: JobModel,
    /// The group's cells still to run, in order.
    pub cells: Vec<Cell>,
    pub measuring: Measuring,
    pub options: RuntimeOptions,
    /// Where each cell's outputs are saved, when another runtime or a sibling model is compared with them.
    pub outputs_dir: Option<PathBuf>,
    /// Once loaded, wait for a line on standard input before the first cell (parallel loads).
    #[serde(default)]
    pub gated: bool,
}

impl GroupJob {
    /// The job of group `g` of `plan`, for `cells` (its cells still to run); `None` when its model is not ready.
    pub fn new(plan: &ResolvedPlan, g: usize, cells: Vec<Cell>, options: &RuntimeOptions, outputs_dir: &std::path::Path) -> Option<GroupJob> {
        let group = &plan.plan.groups[g];
        let s = &plan.plan.settings;
        let model = JobModel::of(&plan.models[group.model])?;
        let decoder = s.generate.as_ref().and(model.decoder.clone());
        Some(GroupJob {
            group: g,
            runtime: plan.runtime(group.runtime).request.clone(),
            model,
            cells,
            measuring: Measuring { warmup: s.warmup, iterations: s.iterations, min_time_s: s.min_time_s, text: s.text.clone(), dims: plan.dims_of(group.model), generate: s.generate.clone() },
            options: RuntimeOptions { threads: s.threads, generate: decoder, ..options.clone() },
            outputs_dir: plan.keeps_outputs(group.model).then(|| outputs_dir.to_path_buf()),
            gated: false,
        })
    }

    /// A record of `cell` with nothing measured.
    pub fn empty_record(&self, cell: &Cell, status: crate::results::Status, error: Option<String>) -> CellRecord {
        CellRecord::empty(cell, self.measuring.warmup, self.measuring.iterations, status, error)
    }
}

/// Prefix of a worker's message lines, so that anything a native library prints is told apart.
/// A worker's messages are the events the store applies (`results::RunEvent`), one JSON line each
/// on its standard output; the parent sets a load's `ready_ms` (the worker sends its `load_ms`).
pub const MSG_PREFIX: &str = "XBENCH-MSG ";
