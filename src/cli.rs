//! Command-line arguments (clap derive types only).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "xbench", version, about = "How fast does this ONNX transformer model run here, in each runtime — and do the runtimes compute the same thing?")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

impl Cmd {
    /// Whether the command was asked to print nothing but errors and its results.
    pub fn quiet(&self) -> bool {
        matches!(self, Cmd::Scenario { quiet: true, .. } | Cmd::Fetch { quiet: true, .. })
    }
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run a scenario's grid and write results and a report under reports/.
    Scenario {
        /// Scenario YAML file; without one, the built-in quick scenario (scenarios/quick.yaml) runs.
        file: Option<PathBuf>,
        /// Runtimes to use instead of the scenario's, comma-separated (e.g. tract-cpu,ort-cpu).
        #[arg(long, value_delimiter = ',')]
        runtimes: Option<Vec<String>>,
        /// Output folder (default: reports/<scenario name>-<UTC time>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Folder holding the models (default: models).
        #[arg(long, value_name = "MODELS_DIR")]
        models_dir: Option<PathBuf>,
        /// ONNX Runtime shared library to load.
        #[arg(long)]
        ort_lib: Option<PathBuf>,
        /// A plugin execution provider's library, e.g. `openvino=/path/libonnxruntime_providers_openvino_plugin.so` (repeatable).
        #[arg(long = "ep-lib", value_name = "NAME=PATH", value_parser = parse_ep_lib)]
        ep_lib: Vec<(String, PathBuf)>,
        /// Run every group in this process instead of one child process per (model, runtime).
        #[arg(long)]
        in_process: bool,
        /// Never fetch ONNX Runtime from PyPI, even when it is missing.
        #[arg(long)]
        no_setup: bool,
        /// Print nothing but errors and the final paths.
        #[arg(long, short)]
        quiet: bool,
        /// What the timer covers: end-to-end (host tensors in and out; the default) or device-resident (ONNX Runtime IO binding).
        #[arg(long, value_enum)]
        timing: Option<TimingArg>,
        /// GPU index for ort-cuda (default: 0).
        #[arg(long)]
        device: Option<u32>,
        /// ONNX Runtime: bind a buffer of xbench's own per input and output and copy the data in and
        /// out itself; on ort-cuda the buffers are on the GPU and outputs go to page-locked host
        /// memory by cudaMemcpy (end to end, the copies stay inside the timer).
        #[arg(long)]
        pinned_io: bool,
        /// ort-cuda: capture each shape's run in a CUDA graph and replay it (uses --pinned-io's buffers).
        #[arg(long)]
        cuda_graph: bool,
        /// ort-cuda: fp32 matrix products in full fp32, not TF32 (ONNX Runtime's default on GPUs
        /// that have it, which rounds their inputs to 10 mantissa bits).
        #[arg(long)]
        no_tf32: bool,
        /// Start every group's worker at once so that model loads overlap; timed runs still go one
        /// group at a time, after all loads (memory for all models is held at once).
        #[arg(long, conflicts_with = "in_process")]
        parallel_loads: bool,
        /// Continue the interrupted run in DIR (its results.json): finished cells are kept, the rest
        /// run, under the options the run recorded (no flag needs repeating). Refused when the
        /// scenario, the runtimes, the timing and I/O flags, the threads, the machine, xbench, a
        /// runtime's version or a model's files differ from what the finished cells were run with.
        #[arg(long, value_name = "DIR", conflicts_with = "out")]
        resume: Option<PathBuf>,
        /// With --resume: run the failed cells of the run again (skipped ones stay skipped).
        #[arg(long)]
        retry_failed: bool,
        /// Run shard I of N of the scenario's (model, runtime) groups, split by their work (e.g. 2/4);
        /// `xbench report` of every shard's results.json merges them into one result set.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        /// Exit 0 even when cells failed or their outputs disagree (for grids where some are
        /// expected to); without it such a run exits with status 2.
        #[arg(long, short = 'i')]
        ignore_failures: bool,
    },
    /// List the runtimes, whether each can run here, and why not.
    Runtimes {
        #[arg(long)]
        ort_lib: Option<PathBuf>,
        /// A plugin execution provider's library (repeatable).
        #[arg(long = "ep-lib", value_name = "NAME=PATH", value_parser = parse_ep_lib)]
        ep_lib: Vec<(String, PathBuf)>,
    },
    /// List the models under the models folder with their inputs, outputs and tokenizer.
    Models {
        #[arg(long, default_value = "models")]
        models_dir: PathBuf,
    },
    /// Download a model from the Hugging Face Hub into models/<name>/: its ONNX file with any
    /// external data files, tokenizer.json and config.json, and a model.yaml recording the
    /// repository and the commit fetched.
    #[command(after_help = FETCH_HELP)]
    Fetch {
        /// Hub repository, `owner/name` (as in the model's Hub address); `owner/name@REV` also works.
        repo: String,
        /// Branch, tag or commit to fetch (default: the default branch, main); the commit it names is recorded.
        #[arg(long, value_name = "REV")]
        revision: Option<String>,
        /// The ONNX file to take, as a path in the repository (default: model.onnx or onnx/model.onnx,
        /// or the only .onnx file).
        #[arg(long, value_name = "PATH_IN_REPO")]
        file: Option<String>,
        /// Folder name under the models folder (default: the repository's name without its owner).
        #[arg(long)]
        name: Option<String>,
        /// Folder holding the models.
        #[arg(long, default_value = "models")]
        models_dir: PathBuf,
        /// Print nothing but errors and the files placed.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Write the exact inputs a scenario feeds (token ids and masks per model, length and batch) as
    /// JSON, so that other tools can be timed on the same inputs.
    Feeds {
        file: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "models")]
        models_dir: PathBuf,
    },
    /// Fetch a runtime's libraries (`xbench setup ort [--gpu]`).
    Setup {
        #[command(subcommand)]
        what: SetupCmd,
    },
    /// Redraw a report (report.md, index.html, figures) from results files without running anything;
    /// several files make one report with a series per machine and runtime.
    Report {
        /// Results files (results.json), one per machine.
        #[arg(required = true, value_name = "RESULTS")]
        results: Vec<PathBuf>,
        /// Report folder (default: the results file's folder; needed with several files).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Name a machine in the report instead of its host name; once per results file, in order.
        #[arg(long = "name-as", value_name = "LABEL")]
        name_as: Vec<String>,
        /// Draw the paper's published numbers beside ours, where model, input length and batch size match.
        #[arg(long)]
        paper: bool,
    },
    /// Compare two runs cell by cell: ratio of means with its confidence interval, and a verdict.
    Compare {
        /// The baseline run (results.json).
        a: PathBuf,
        /// The run compared with it.
        b: PathBuf,
        /// Confidence level of the intervals.
        #[arg(long, default_value_t = 0.95)]
        level: f64,
        /// Exit with an error when a cell is slower than in A by more than this many percent (for CI).
        #[arg(long, value_name = "PERCENT")]
        fail_above: Option<f64>,
    },
    /// Write the small BERT-architecture test model (random weights, fixed seed) to a folder.
    MakeTinyBert {
        #[arg(long, default_value = "models/tiny-bert")]
        out: PathBuf,
        /// Store the weights as float16 (read through casts to float: fp32 arithmetic).
        #[arg(long)]
        fp16: bool,
        /// Seed of the weights (42 gives the committed model).
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Write the small Llama-style test decoder (random weights, fixed seed, key/value cache) to a folder.
    MakeTinyDecoder {
        #[arg(long, default_value = "models/tiny-llama")]
        out: PathBuf,
        /// Store the weights, the cache and the logits as float16 (fp32 arithmetic).
        #[arg(long)]
        fp16: bool,
        /// Seed of the weights (42 gives the committed model).
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Internal: run one group of a scenario, its job read from standard input (started by `xbench scenario`).
    #[command(hide = true)]
    Worker,
    /// Internal: register a plugin library with ONNX Runtime in a process of its own, before
    /// xbench loads it (started by xbench).
    #[command(hide = true)]
    ProbeEp {
        name: String,
        library: PathBuf,
        #[arg(long)]
        ort_lib: PathBuf,
    },
}

const FETCH_HELP: &str = "\
Environment:
  HF_ENDPOINT     the Hub's address (default https://huggingface.co), e.g. a mirror
  HF_HOME         where the Hub cache lives: $HF_HOME/hub (default ~/.cache/huggingface/hub)
  HF_HUB_OFFLINE  1: make no request; take the files from the Hub cache, or fail saying so
  HF_TOKEN        a token for private or gated repositories (else $HF_HOME/token, if present)

Files are downloaded into the Hub cache once and hard-linked (or copied) into the model's folder.
A folder that already holds the same repository is replaced; one that holds another model is
left alone (choose another --name). A scenario can name `hf:owner/name` or `hf:owner/name@REV`
in `models:` instead; it is fetched into models/<name>/ the first time it is used.

Examples:
  xbench fetch Xenova/bert-base-uncased
  xbench fetch Xenova/bert-base-uncased --file onnx/model_quantized.onnx --name bert-base-q8
  HF_HUB_OFFLINE=1 xbench fetch Xenova/bert-base-uncased --revision main";

#[derive(Debug, Subcommand)]
pub enum SetupCmd {
    /// Download ONNX Runtime's shared library from PyPI (pinned version) into .xbench/.
    Ort {
        /// The CUDA build (onnxruntime-gpu) instead of the CPU one.
        #[arg(long)]
        gpu: bool,
    },
    /// Download a plugin execution provider's wheel from PyPI (pinned version) into .xbench/:
    /// openvino, webgpu, mlx, tensorrt-rtx.
    Ep { name: String },
    /// Make a Python environment with a framework for external runtimes, pinned versions from
    /// PyPI, under .xbench/runtimes/NAME: mlx, torch, onnxruntime.
    Runtime {
        name: String,
        /// The CUDA build (mlx[cuda13], onnxruntime-gpu; PyPI's torch for Linux has CUDA already).
        #[arg(long)]
        gpu: bool,
    },
}

/// `NAME=PATH` of `--ep-lib`.
fn parse_ep_lib(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, path)) if !name.trim().is_empty() && !path.trim().is_empty() => Ok((name.trim().to_string(), PathBuf::from(path.trim()))),
        _ => Err(format!("`{s}` is not NAME=PATH (e.g. openvino=/opt/ov/libonnxruntime_providers_openvino_plugin.so)")),
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TimingArg {
    EndToEnd,
    DeviceResident,
}
