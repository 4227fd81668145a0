//! Models: finding them under the models root, their optional `model.yaml` description, and
//! what their ONNX graph takes and gives (`onnx_meta`).

mod onnx_meta;

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

pub use onnx_meta::{parse_io, read_io, read_io_without_data, Dim, ExternalFile, IoInfo, ModelIo};

/// The optional `model.yaml` beside a model's ONNX file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelMeta {
    /// Where the weights come from on the Hub, e.g. `bert-base-uncased`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub_id: Option<String>,
    /// The Hub commit the files were fetched at (`xbench fetch` writes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Architecture family: `bert`, `roberta`, `xlm-roberta`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// ONNX file name inside the folder (default: the folder's only `.onnx` file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onnx: Option<String>,
    /// Tokenizer file name inside the folder (default: `tokenizer.json` when present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<String>,
    /// Longest sequence the model takes, special tokens included; longer inputs are truncated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_positions: Option<usize>,
    /// First position id, for models that take `position_ids` (RoBERTa-style models start at 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_offset: Option<i64>,
    /// `random` when the weights are random (latency does not depend on their values) or `trained`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<String>,
    /// Free text shown by `xbench models`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The model this one was made from (an fp16 copy names its fp32 model): when a scenario runs
    /// both, each cell's outputs are compared with the sibling's on the same inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare_with: Option<String>,
}

/// A model resolved on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// The name used in scenarios, results and reports.
    pub name: String,
    /// The ONNX file.
    pub onnx: PathBuf,
    /// The tokenizer.json for text models.
    pub tokenizer: Option<PathBuf>,
    pub meta: ModelMeta,
    /// Why the model is not there to run (a Hub fetch that failed): its cells fail with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

impl ModelSpec {
    /// Longest input the model takes, special tokens included: `max_positions` from model.yaml,
    /// else the rows of the graph's position table less the position offset.
    pub fn max_positions(&self, io: Option<&ModelIo>) -> Option<usize> {
        self.meta.max_positions.or_else(|| {
            io.and_then(|io| io.position_table_rows).map(|rows| rows.saturating_sub(self.position_offset().max(0) as usize))
        })
    }

    /// The name of the model `compare_with` names, as scenarios and results name models.
    pub fn sibling(&self) -> Option<String> {
        self.meta.compare_with.as_deref().map(model_name)
    }

    /// First position id for `position_ids` inputs.
    pub fn position_offset(&self) -> i64 {
        self.meta.position_offset.unwrap_or(default_position_offset(self.meta.architecture.as_deref()))
    }
}

/// First position id of an architecture: 2 for RoBERTa-style models (padding_idx + 1), else 0.
pub fn default_position_offset(architecture: Option<&str>) -> i64 {
    match architecture {
        Some("roberta") | Some("xlm-roberta") => 2,
        _ => 0,
    }
}

/// Resolves a scenario's model entry: a folder or `.onnx` file under `root`.
/// Paths that leave the models root are refused.
pub fn resolve(entry: &str, root: &Path, _scenario_dir: &Path) -> Result<ModelSpec> {
    let rel = Path::new(entry);
    if rel.is_absolute() || rel.components().any(|c| matches!(c, Component::ParentDir | Component::Prefix(_))) {
        bail!(
            "the model path leaves the models root {}\n  fix: put the model under {} and name it by its folder",
            root.display(),
            root.display()
        );
    }
    if !root.is_dir() {
        bail!(
            "the models folder {} does not exist (looked from {})\n  fix: run xbench in the folder that holds models/, or name the folder with --models-dir",
            root.display(),
            std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_else(|_| "?".into())
        );
    }
    let path = root.join(rel);
    if !path.exists() {
        let known = discover(root).into_iter().filter_map(|m| m.ok()).map(|m| m.name).collect::<Vec<_>>();
        bail!(
            "no model `{entry}` under {} (looked for {})\n  fix: use one of [{}], or put a folder with an ONNX file and its tokenizer.json at {}",
            root.display(),
            path.display(),
            known.join(", "),
            path.display()
        );
    }
    check_inside(&path, root)?;
    let name = model_name(entry);
    if path.is_dir() {
        from_dir(&name, &path, root)
    } else {
        if path.extension().and_then(|e| e.to_str()) != Some("onnx") {
            bail!("{} is not an .onnx file\n  fix: name a model folder or an .onnx file", path.display());
        }
        Ok(ModelSpec { name, onnx: path, tokenizer: None, meta: ModelMeta::default(), unavailable: None })
    }
}

/// The name a model entry (`bert-base-uncased`, `bert-base-uncased/`, `fixed.onnx`) goes by.
fn model_name(entry: &str) -> String {
    entry.trim_end_matches('/').trim_end_matches(".onnx").to_string()
}

/// Refuses paths whose real location (symlinks followed) lies outside the models root.
fn check_inside(path: &Path, root: &Path) -> Result<()> {
    let real_root = root.canonicalize().with_context(|| format!("cannot open the models root {}", root.display()))?;
    let real = path.canonicalize().with_context(|| format!("cannot open {}", path.display()))?;
    if !real.starts_with(&real_root) {
        bail!(
            "{} points outside the models root {} (to {})\n  fix: copy the model into the models root instead of linking to it",
            path.display(),
            root.display(),
            real.display()
        );
    }
    Ok(())
}

fn from_dir(name: &str, dir: &Path, root: &Path) -> Result<ModelSpec> {
    let meta_path = dir.join("model.yaml");
    let meta: ModelMeta = if meta_path.is_file() {
        let text = std::fs::read_to_string(&meta_path).with_context(|| format!("cannot read {}", meta_path.display()))?;
        serde_yaml::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{}: {e}\n  fix: the keys a model.yaml takes are hub_id, revision, architecture, onnx, tokenizer, max_positions, position_offset, weights, description, compare_with",
                meta_path.display()
            )
        })?
    } else {
        ModelMeta::default()
    };
    if let Some(sibling) = &meta.compare_with {
        check_sibling(name, sibling, root, &meta_path)?;
    }
    let onnx = match &meta.onnx {
        Some(file) => dir.join(file),
        None => {
            let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
                .with_context(|| format!("cannot list {}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("onnx"))
                .collect();
            found.sort();
            match found.len() {
                1 => found.remove(0),
                0 => bail!(
                    "model `{name}`: no .onnx file in {}\n  fix: export the model into that folder (scripts/export_models.py) or drop an .onnx file there",
                    dir.display()
                ),
                _ => bail!(
                    "model `{name}`: {} has several .onnx files ({})\n  fix: name the one to use with `onnx: FILE` in {}/model.yaml",
                    dir.display(),
                    found.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect::<Vec<_>>().join(", "),
                    dir.display()
                ),
            }
        }
    };
    if !onnx.is_file() {
        bail!(
            "model `{name}`: ONNX file {} is missing\n  fix: export it (see models/README.md) or correct `onnx:` in model.yaml",
            onnx.display()
        );
    }
    check_inside(&onnx, root)?;
    let tokenizer = match &meta.tokenizer {
        Some(file) => {
            let p = dir.join(file);
            if !p.is_file() {
                bail!("model `{name}`: tokenizer {} is missing\n  fix: copy the model's tokenizer.json there or correct `tokenizer:` in model.yaml", p.display());
            }
            Some(p)
        }
        None => Some(dir.join("tokenizer.json")).filter(|p| p.is_file()),
    };
    Ok(ModelSpec { name: name.to_string(), onnx, tokenizer, meta, unavailable: None })
}

/// A `compare_with` must name another model under the models root, as a scenario would.
fn check_sibling(name: &str, sibling: &str, root: &Path, meta_path: &Path) -> Result<()> {
    let rel = Path::new(sibling);
    let fix = |what: String| {
        let known: Vec<String> = entry_names(root).iter().map(|e| model_name(e)).filter(|n| n != name).collect();
        anyhow::anyhow!(
            "model `{name}`: {}: `compare_with: {sibling}` {what}\n  fix: name the model this one was made from by its folder under {} (one of [{}]), or remove `compare_with`",
            meta_path.display(),
            root.display(),
            known.join(", ")
        )
    };
    if sibling.trim().is_empty() || rel.is_absolute() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(fix("is not a model name".into()));
    }
    if model_name(sibling) == name {
        return Err(fix("names the model itself".into()));
    }
    if !entry_names(root).iter().any(|e| model_name(e) == model_name(sibling)) {
        return Err(fix(format!("names no model under {}", root.display())));
    }
    Ok(())
}

/// Names of the entries under `root` that look like models: folders holding an ONNX file or a
/// model.yaml, and loose `.onnx` files.
fn entry_names(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root) else { return Vec::new() };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                return None;
            }
            if p.is_dir() {
                let has_onnx = std::fs::read_dir(&p)
                    .map(|rd| rd.filter_map(|e| e.ok()).any(|e| e.path().extension().and_then(|x| x.to_str()) == Some("onnx")))
                    .unwrap_or(false);
                (has_onnx || p.join("model.yaml").is_file()).then_some(name)
            } else {
                (p.extension().and_then(|x| x.to_str()) == Some("onnx")).then_some(name)
            }
        })
        .collect();
    names.sort();
    names
}

/// Every model under `root`, sorted by name: folders holding an ONNX file, and loose `.onnx` files.
/// Entries that fail to resolve are returned as errors so that a listing can show why.
pub fn discover(root: &Path) -> Vec<Result<ModelSpec>> {
    entry_names(root).iter().map(|n| resolve(n, root, root).with_context(|| format!("model `{n}`"))).collect()
}
