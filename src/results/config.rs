//! The options a run was started with (`xbench scenario`'s flags, validated), recorded in its
//! results so that `--resume` continues it under the same ones without the flags being repeated.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Timing;

/// A run's options, as recorded in `results.json` (`run`). Paths are as given, relative to the
/// folder xbench was started in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// The scenario file (absent: the built-in quick scenario).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<PathBuf>,
    /// `--runtimes`: the runtimes used instead of the scenario's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtimes: Option<Vec<String>>,
    /// `--models-dir`.
    pub models_dir: PathBuf,
    /// `--ort-lib`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ort_lib: Option<PathBuf>,
    /// `--ep-lib NAME=PATH`, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ep_libs: BTreeMap<String, PathBuf>,
    /// `--timing`.
    pub timing: Timing,
    /// `--device`: the GPU index for ort-cuda.
    pub device: u32,
    pub pinned_io: bool,
    pub cuda_graph: bool,
    pub no_tf32: bool,
    /// `--in-process`: every group in xbench's own process.
    pub in_process: bool,
    pub parallel_loads: bool,
}

impl Default for RunConfig {
    fn default() -> RunConfig {
        RunConfig {
            scenario: None,
            runtimes: None,
            models_dir: PathBuf::from("models"),
            ort_lib: None,
            ep_libs: BTreeMap::new(),
            timing: Timing::EndToEnd,
            device: 0,
            pinned_io: false,
            cuda_graph: false,
            no_tf32: false,
            in_process: false,
            parallel_loads: false,
        }
    }
}
