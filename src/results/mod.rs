//! The serializable record of a run — what ran, on what, with which inputs and outputs, and how it
//! was judged — kept by the store (`store`): each event appended to the run's log as it happens
//! (`log`), the JSON and CSV files (`files`) written at group ends; the outputs saved for
//! comparisons (`outputs`), typed flags (`flags`) and cell keys (`key`). Reports, comparisons and
//! resumed runs read nothing else.

mod agreement;
mod check;
mod compat;
mod conditions;
mod config;
mod files;
mod flags;
mod generation;
mod key;
mod log;
mod machine;
mod outputs;
mod outputs_dir;
mod runtime;
mod shard;
mod store;

use serde::{Deserialize, Serialize};

pub use agreement::{missing_sibling_note, Agreement, OutputDiff, SiblingAgreement, EXPECTED};
pub use check::inconsistency;
pub use conditions::{differences, Conditions, Difference, FileDigest, Scope};
pub use config::RunConfig;
pub use files::{parse_results, read_results, replace, write_atomic, write_csv, write_json};
pub use flags::{Flag, FlagKind};
pub use generation::{Generation, IdsAgreement, Parted};
pub use key::{CellIndex, CellKey, Point};
pub use log::LOG_FILE;
pub use machine::{GpuInfo, Machine};
pub use outputs::{read_tensors, tensors_from_bytes, write_tensors, SavedOutputs};
pub use outputs_dir::OutputsDir;
pub use runtime::{Availability, DeviceClass, Engine, HostMemory, SessionInfo, TimerClass, Timing};
pub use shard::{ShardInfo, ShardPart, ShardSet};
pub use store::{ResultsStore, RunEvent, Spacing};

pub use crate::scenario::{Tolerance, Tolerances};
use crate::scenario::{Precision, RuntimeId, ScenarioFile};
use crate::stats::Summary;

/// Version of the results format written; version 1 files are read too (their flags are typed on reading).
pub const FORMAT_VERSION: u32 = 2;

/// Token counts of one batch, as recorded in results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TextBatch {
    /// Real (non-padding) tokens of each row, special tokens included.
    pub tokens_per_row: Vec<usize>,
    /// Sequence length after padding to the longest row.
    pub padded_len: usize,
    /// Rows cut at the model's maximum positions.
    pub truncated_rows: usize,
    /// Time spent tokenizing (never inside a timed region).
    pub tokenize_ms: f64,
}

/// What one input of a cell was fed, when it was not tokenized text: values generated, given by
/// the user, or read from the model's test data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FedInput {
    pub name: String,
    pub elem_type: crate::tensor::AnyElemType,
    pub shape: Vec<usize>,
    /// Where the values came from, e.g. `uniform [-1, 1)`, `16000 (inputs.sr)`, `test_data_set_0/input_1.pb`.
    pub source: String,
    /// Which setting gave the values: `model` (the model's own table in the scenario's `models:`),
    /// `scenario` (the scenario-wide `inputs:`), `model.yaml`, `test_data`, or `default` (generated).
    #[serde(default)]
    pub values_by: crate::scenario::SetBy,
    /// Which setting gave each axis of `shape`, in order: `model` or `scenario` (a `dims:` value or
    /// a `shape:` of that setting), `model.yaml` (its `shape:`), `file`, `fixed` (in the graph),
    /// `batch` or `length` (the cell's). Empty for test data.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shape_by: Vec<crate::scenario::SetBy>,
}

impl FedInput {
    /// Who set the values and each axis, in words: `values: scenario; shape: batch, fixed, model`.
    pub fn settings(&self) -> String {
        let axes: Vec<&str> = self.shape_by.iter().map(|b| b.name()).collect();
        if axes.is_empty() {
            format!("values: {}", self.values_by.name())
        } else {
            format!("values: {}; shape: {}", self.values_by.name(), axes.join(", "))
        }
    }
}

/// What the timer of every cell covers.
pub const TIMER_END_TO_END: &str =
    "end-to-end: host tensors handed to the runtime, inference, outputs in host memory as the runtime returns them (converted to f32 after the timer); tokenization and shape preparation excluded";
/// The same for device-resident timing.
pub const TIMER_DEVICE_RESIDENT: &str =
    "device-resident (ONNX Runtime): inputs bound on the device once before timing (IO binding), outputs left on the device, the timer stops after the device has finished; tract cells stay end-to-end (see each cell's `timer`)";
/// Added for ort-cuda with `--pinned-io` or `--cuda-graph`, end to end.
pub const TIMER_STAGED_END_TO_END: &str =
    ". ONNX Runtime cells: every input and output has its own buffer (on the GPU for ort-cuda), bound before timing; the timer covers copying the inputs in from the host arrays, the inference, and copying the outputs out to host memory (page-locked, by cudaMemcpy, for ort-cuda)";
/// The same, device-resident.
pub const TIMER_STAGED_DEVICE: &str = ". ONNX Runtime cells: outputs go to buffers of their own, bound before timing";
/// Added with `--cuda-graph`.
pub const TIMER_CUDA_GRAPH: &str =
    "; each shape's run is captured once in a CUDA graph before timing (ONNX Runtime's enable_cuda_graph, one graph id per shape) and every timed run replays it";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not run yet (a partial results file).
    Pending,
    Ok,
    Failed,
    /// Not run because the runtime cannot run here.
    Skipped,
}

/// What a model's cells were fed, which decides what their grid's axes mean.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelInput {
    /// Tokenized prose: `chars` is an input length in characters.
    #[default]
    Text,
    /// Values given or generated: `chars` is the length of dims named like a sequence (0: no
    /// input took one).
    Generated,
    /// Its own test data sets: `chars` is the data set's number.
    TestData,
}

/// A model as it was measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    pub name: String,
    pub onnx: String,
    pub onnx_bytes: u64,
    pub tokenizer: Option<String>,
    /// `random`, `trained` or `unknown`.
    pub weights: String,
    /// The precision the model computes in: `int8` (quantized), `bf16`, `fp16` (by its weights or
    /// outputs), else `fp32`.
    #[serde(default)]
    pub precision: Precision,
    /// What its cells were fed.
    #[serde(default)]
    pub input: ModelInput,
    /// For a model not fed from text: the grid axes that reached none of its inputs, run once at
    /// the size they were fed instead of over the scenario's sizes, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<String>,
    /// Multiply-add work of the weight matrix products per token (2·K·N summed), a lower bound on
    /// the model's FLOPs per token; `null` where its graph lets xbench count none (unknown, not 0).
    #[serde(default)]
    pub flops_per_token: Option<u64>,
    pub max_positions: Option<usize>,
    /// The model this one is compared with (`compare_with` in its model.yaml), e.g. an fp16 copy's fp32 model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare_with: Option<String>,
    /// The Hub repository the model was fetched from, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub_id: Option<String>,
    /// The Hub commit it was fetched at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

fn default_timer() -> String {
    "end-to-end".into()
}

/// One (model, runtime) pair: one loaded session in one process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub model: String,
    pub runtime: RuntimeId,
    pub status: Status,
    pub error: Option<String>,
    /// Session creation / model load time.
    pub load_ms: Option<f64>,
    /// From starting the group's worker to its session being loaded, as xbench saw it (process
    /// start, runtime library, session creation, and the first run when there was one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_ms: Option<f64>,
    /// One untimed run of the group's first cell, made right after the load while other groups
    /// were still loading (`--parallel-loads`): a runtime's one-time start-up work (kernels loaded,
    /// libraries' handles made) then overlaps the other loads instead of a cell's warm-ups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_run_ms: Option<f64>,
    /// Peak resident memory of the process that ran this group.
    pub peak_rss_mib: Option<f64>,
    pub session: Option<SessionInfo>,
}

/// One measured cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellRecord {
    pub index: usize,
    pub model: String,
    pub runtime: RuntimeId,
    pub chars: usize,
    pub batch: usize,
    /// Generation cells: tokens generated after the prompt (`chars` is then the prompt's length,
    /// in tokens or characters as the scenario gives it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_tokens: Option<usize>,
    /// The model's own test data set this cell ran on (`test_data_set_N`); `chars` and `batch`
    /// then carry N and 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_set: Option<usize>,
    pub status: Status,
    pub error: Option<String>,
    /// Tokens actually fed (text models only).
    pub tokens: Option<TextBatch>,
    /// What each input was fed, for models not fed from text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fed: Vec<FedInput>,
    pub warmup: usize,
    pub iterations: usize,
    /// Untimed shape preparation before the warm-up.
    pub prepare_ms: Option<f64>,
    pub timer_resolution_ms: Option<f64>,
    /// Every timed iteration, in order, less those a stall spoiled (`stalled_ms`).
    pub samples_ms: Vec<f64>,
    /// Timed iterations dropped because a stall spoiled them: each took over a second and over
    /// 100× the median (the process was stopped or starved), so it timed the stall, not the model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stalled_ms: Vec<f64>,
    pub summary: Option<Summary>,
    /// Outputs compared with the reference runtime's on the same inputs.
    pub agreement: Option<Agreement>,
    /// Outputs compared with the model's own expected outputs (its test data set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<Agreement>,
    /// Outputs compared with the same cell of the model's sibling (`compare_with`): fp16 against fp32.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sibling_agreement: Option<SiblingAgreement>,
    /// Warnings about this cell (too short for the timer, disagreement, …), typed.
    pub flags: Vec<Flag>,
    /// What the timer covered: `end-to-end` or `device-resident`.
    #[serde(default = "default_timer")]
    pub timer: String,
    /// GPU memory held by the process after this cell (ONNX Runtime's arena only grows: the peak so far).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_memory_mib: Option<f64>,
    /// GPU energy over the timed runs divided by their number, in millijoules (NVML's total-energy counter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_mj_per_inference: Option<f64>,
    /// The untimed warm-up runs, all together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_ms: Option<f64>,
    /// The whole cell in its worker: inputs, preparation, warm-ups, timed runs, outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_ms: Option<f64>,
    /// A generation cell's measurements (its `samples_ms` are whole generations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<Box<Generation>>,
}

/// Where a run's wall time went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WallTime {
    /// Start of the run to report written.
    pub total_ms: f64,
    /// Checking runtimes, reading models, starting the results file (and, with parallel loads,
    /// everything before the loads).
    pub setup_ms: f64,
    /// With parallel loads: the loading phase, all sessions at once (each with its first run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loads_ms: Option<f64>,
    /// Running the groups one after another (each group's load included unless loaded ahead).
    pub groups_ms: f64,
    /// Drawing the figures and writing the report.
    pub report_ms: f64,
    pub parallel_loads: bool,
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResults {
    pub format_version: u32,
    pub xbench_version: String,
    pub git_commit: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// False while the run goes on, or if it was cut short.
    pub complete: bool,
    pub machine: Machine,
    pub scenario_source: String,
    pub scenario: ScenarioFile,
    pub timer: String,
    /// The runtime all others are compared with.
    pub reference_runtime: RuntimeId,
    #[serde(default)]
    pub tolerances: Tolerances,
    pub runtimes: Vec<Availability>,
    pub models: Vec<ModelRecord>,
    pub groups: Vec<GroupRecord>,
    pub cells: Vec<CellRecord>,
    /// The GPU used, when a CUDA runtime ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuInfo>,
    /// When an interrupted run was resumed (`--resume`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumed_at: Vec<String>,
    /// Where the wall time went (set when the run ends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall: Option<WallTime>,
    /// What the cells' meaning depends on besides the scenario (absent in files written before it
    /// was recorded); `--resume` refuses to change it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Conditions>,
    /// The shard of the plan this run is (`--shard I/N`): its cells are that shard's only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
    /// The shards this result set was merged from (`xbench report` of every shard of a plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<ShardSet>,
    /// The options the run was started with (absent in files written before they were
    /// recorded); `--resume` continues under them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunConfig>,
    /// How many lines of the run's log (`results.jsonl`) this record holds; reading it applies
    /// the lines after those (0 in files written before the log).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub log_lines: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl RunResults {
    /// Where `c` lies in its model's grid, in words: `50 chars / batch 1` for text, `length 16 /
    /// batch 1` (or `batch 1`, no length taken) for values given or generated, `test_data_set_0`.
    pub fn point_label(&self, c: &CellRecord) -> String {
        if let Some(new) = c.new_tokens {
            let unit = self.scenario.generate.as_ref().map_or("tokens", |g| if g.prompt_chars.is_empty() { "tokens" } else { "chars" });
            return format!("prompt {} {unit} → {new} new / batch {}", c.chars, c.batch);
        }
        let input = self.models.iter().find(|m| m.name == c.model).map(|m| m.input);
        match (c.data_set, input) {
            (Some(n), _) => format!("test_data_set_{n}"),
            (None, Some(ModelInput::Generated)) if c.chars == 0 => format!("batch {}", c.batch),
            (None, Some(ModelInput::Generated)) => format!("length {} / batch {}", c.chars, c.batch),
            _ => format!("{} chars / batch {}", c.chars, c.batch),
        }
    }

    pub fn cell(&self, model: &str, runtime: RuntimeId, chars: usize, batch: usize) -> Option<&CellRecord> {
        self.cells.iter().find(|c| c.model == model && c.runtime == runtime && c.chars == chars && c.batch == batch)
    }

    /// The precision recorded for `model` (`fp32` when the run has no record of it).
    pub fn precision(&self, model: &str) -> Precision {
        self.models.iter().find(|m| m.name == model).map_or(Precision::Fp32, |m| m.precision)
    }

    /// The precision `runtime`'s session of `model` said it computed in, when it said.
    pub fn session_precision(&self, model: &str, runtime: RuntimeId) -> Option<Precision> {
        self.groups.iter().find(|g| g.model == model && g.runtime == runtime).and_then(|g| g.session.as_ref()).and_then(|s| s.precision)
    }

    /// The precision and tolerance two cells of `model` are judged by: the loosest of the model's
    /// precision and the sessions' (`runtimes`).
    pub fn judged_by(&self, model: &str, runtimes: &[RuntimeId]) -> (Precision, Tolerance) {
        let ps = std::iter::once(self.precision(model)).chain(runtimes.iter().filter_map(|rt| self.session_precision(model, *rt)));
        self.tolerances.loosest(ps)
    }
}

/// Current UTC time as RFC 3339 (seconds), e.g. `2026-11-28T08:00:00Z`.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

impl CellRecord {
    /// A record of `cell` with nothing measured yet.
    pub fn empty(cell: &crate::scenario::Cell, warmup: usize, iterations: usize, status: Status, error: Option<String>) -> CellRecord {
        CellRecord {
            index: cell.index,
            model: cell.model.clone(),
            runtime: cell.runtime,
            chars: cell.chars,
            batch: cell.batch,
            new_tokens: cell.new_tokens,
            data_set: cell.data_set,
            status,
            error,
            tokens: None,
            fed: Vec::new(),
            warmup,
            iterations,
            prepare_ms: None,
            timer_resolution_ms: None,
            samples_ms: Vec::new(),
            stalled_ms: Vec::new(),
            summary: None,
            agreement: None,
            expected: None,
            sibling_agreement: None,
            flags: Vec::new(),
            timer: "end-to-end".into(),
            gpu_memory_mib: None,
            energy_mj_per_inference: None,
            warmup_ms: None,
            wall_ms: None,
            generation: None,
        }
    }

    /// Whether the cell carries a flag of `kind`.
    pub fn has_flag(&self, kind: FlagKind) -> bool {
        self.flags.iter().any(|f| f.kind == kind)
    }
}
