//! xbench: latency benchmarks of transformer models exported to ONNX, across runtimes,
//! with every number saying what ran, on what inputs, and how far it can be trusted.

pub mod compare;
pub mod gpu;
pub mod hub;
pub mod inputs;
pub mod machine;
pub mod measure;
pub mod models;
pub mod onnx;
pub mod ops;
pub mod report;
pub mod results;
pub mod run;
pub mod runtimes;
pub mod scenario;
pub mod stats;
pub mod verdict;

/// The version of xbench recorded in every results file.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit xbench was built from ("unknown" outside a git checkout).
pub const GIT_COMMIT: &str = env!("XBENCH_GIT_COMMIT");
