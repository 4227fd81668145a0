//! xbench: latency benchmarks of transformer models exported to ONNX, across runtimes,
//! with every number saying what ran, on what inputs, and how far it can be trusted.
//!
//! The data path of `xbench scenario`, one stage a folder, each importing only earlier ones:
//!
//! 1. `scenario` — the YAML file, parsed (`ScenarioFile`) and validated into a typed `Plan`:
//!    models, runtimes and the ordered grid of cells. Pure: no file system, no network.
//! 2. `resolve` — the plan made real (`ResolvedPlan`): runtime names bound in the `runtimes`
//!    registry, models found under `models/` or fetched from the Hub (`models`), operation
//!    graphs written (`ops`), each model's inputs and outputs read once.
//! 3. `run` — an executor runs each (model, runtime) group in a worker process (or in-process):
//!    `inputs` builds each cell's tensors outside the timer, `measure` times warm-ups and
//!    iterations on a `runtimes::Session`. Workers send `results::RunEvent`s, the events
//!    that the `results::ResultsStore` applies and writes after every cell.
//! 4. `analysis` — one pass over the stored record: agreement across runtimes and with sibling
//!    models (from saved outputs), scaling and FLOP verdicts, noise warnings; typed flags.
//! 5. `report` — tables and figures drawn from results alone (`stats` summarises samples;
//!    `compare` weighs two runs).
//!
//! `runner` holds the whole of `xbench scenario` above the stages: its options validated once into
//! a `results::RunConfig` (recorded, so that `--resume` needs no flag repeated), then stages 1–5
//! in order, stopped through a `run::Stop` token.
//!
//! `shard` splits a resolved plan into parts that run anywhere (`--shard I/N`, between stages 2
//! and 3) and merges their results back into one record before stage 4.
//!
//! Shared vocabulary below the stages: `tensor` (host tensors of every ONNX type), `stats` (pure
//! math and the project's RNG), `paper` (the paper's published tables), `results` (the record),
//! `child` (the child processes xbench starts — workers, external programs — and their ending).

pub mod analysis;
pub mod child;
pub mod compare;
pub mod digest;
pub mod files;
pub mod generate;
pub mod gpu;
pub mod inputs;
pub mod machine;
pub mod measure;
pub mod models;
pub mod onnx;
pub mod ops;
pub mod paper;
pub mod report;
pub mod resolve;
pub mod results;
pub mod run;
pub mod runner;
pub mod runtimes;
pub mod scenario;
pub mod shard;
pub mod stats;
pub mod tensor;

/// The version of xbench recorded in every results file.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit xbench was built from ("unknown" outside a git checkout).
pub const GIT_COMMIT: &str = env!("XBENCH_GIT_COMMIT");
