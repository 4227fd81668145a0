//! Which files of a repository to take: its ONNX file, and what its `config.json` says.

use std::path::Path;

use anyhow::{bail, Result};

use crate::scenario::HubRef;

/// The ONNX file to take: the one asked for, else `model.onnx` at the root or in `onnx/`, else the
/// repository's only `.onnx` file.
pub(super) fn pick_onnx(hub: &HubRef, files: &[String], asked: Option<&str>) -> Result<String> {
    let onnx: Vec<&String> = files.iter().filter(|f| f.ends_with(".onnx")).collect();
    let listed = || onnx.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ");
    if let Some(want) = asked {
        let want = want.trim_start_matches("./");
        if files.iter().any(|f| f == want) {
            if !want.ends_with(".onnx") {
                bail!("--file {want} is not an .onnx file\n  fix: name one of the repository's ONNX files: {}", listed());
            }
            return Ok(want.to_string());
        }
        bail!(
            "{} (revision {}) has no file `{want}`\n  fix: name one of its ONNX files with --file: {}",
            hub.repo,
            hub.revision_or_main(),
            if onnx.is_empty() { "it has none".to_string() } else { listed() }
        );
    }
    for preferred in ["model.onnx", "onnx/model.onnx"] {
        if files.iter().any(|f| f == preferred) {
            return Ok(preferred.to_string());
        }
    }
    match onnx.as_slice() {
        [one] => Ok(one.to_string()),
        [] => bail!(
            "{} (revision {}) holds no .onnx file ({} files: {})\n  fix: fetch a repository that holds an ONNX export, or export this one (scripts/export_models.py --checkpoint) and drop it into models/",
            hub.repo,
            hub.revision_or_main(),
            files.len(),
            files.iter().take(12).cloned().collect::<Vec<_>>().join(", ")
        ),
        _ => bail!(
            "{} holds several ONNX files and no model.onnx: {}\n  fix: choose one with `xbench fetch {} --file PATH_IN_REPO`",
            hub.repo,
            listed(),
            hub
        ),
    }
}

/// `dir/name` inside the repository, as the Hub spells paths.
pub(super) fn repo_join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Architecture and maximum positions from a Hub `config.json`.
pub(super) fn from_config(path: &Path) -> (Option<String>, Option<usize>) {
    let Ok(v) = std::fs::read(path).map_err(|_| ()).and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).map_err(|_| ())) else {
        return (None, None);
    };
    let arch = v.get("model_type").and_then(|t| t.as_str()).map(str::to_string);
    let max = v.get("max_position_embeddings").and_then(|m| m.as_u64()).map(|m| {
        // RoBERTa-style models number positions from 2 (padding_idx + 1), so two rows are never used.
        (m as usize).saturating_sub(crate::models::default_position_offset(arch.as_deref()).max(0) as usize)
    });
    (arch, max.filter(|&m| m > 0))
}

