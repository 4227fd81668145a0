//! Models: finding them under the models root (`local`), fetching them from the Hub (`hub`),
//! reading what their ONNX graph takes and gives (`onnx_meta`), and a model as a resolved plan
//! holds it (`resolved`): ready to load, with its inputs and outputs read once.

pub mod decoder;
pub mod hub;
pub(crate) mod inside;
mod local;
mod onnx_meta;
mod resolved;
mod structure;
mod tensor_files;
mod weights;
pub mod test_data;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use decoder::{CacheNames, CachePair, DecoderLayout, DecoderRoles};
pub use local::{discover, find};
pub use onnx_meta::{parse_io, read_io, read_io_without_data, Dim, ExternalFile, IoInfo, ModelIo};
pub use resolved::{ModelSource, ResolvedModel};
pub use tensor_files::{read_npy, read_tensor_file, read_tensor_proto};

use crate::scenario::{model_name, InputSpec};

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
    /// What its inputs are fed, by input name: a token role (`{ids: {role: token_ids}}`) or values
    /// (`sr: 16000`, `{file: state.npy}` — files inside the model's folder). A scenario's
    /// `inputs:` overrides these.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub inputs: std::collections::BTreeMap<String, serde_yaml::Value>,
    /// The roles of a decoder's inputs and outputs (token ids, mask, positions, logits, the
    /// key/value cache) where they are not named as optimum names them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoder: Option<DecoderRoles>,
}

/// A model resolved on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// The name used in scenarios, results and reports.
    pub name: String,
    /// The ONNX file.
    pub onnx: PathBuf,
    /// The tokenizer.json for text models.
    pub tokenizer: Option<PathBuf>,
    pub meta: ModelMeta,
    /// Its model.yaml's `inputs:`, parsed (file paths inside the model's folder).
    pub inputs: std::collections::BTreeMap<String, InputSpec>,
    /// Its own test data sets (`test_data_set_N/` folders beside the ONNX file), in order of N.
    pub test_data: Vec<PathBuf>,
    /// The model's folder (`None` for a loose `.onnx` file).
    pub dir: Option<PathBuf>,
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

    /// Its decoder layout (see [`DecoderLayout::read`]), with model.yaml's `decoder:` roles and
    /// the `config.json` beside it when there is one. `None`: the model takes no key/value cache.
    pub fn decoder_layout(&self, io: &ModelIo) -> anyhow::Result<Option<DecoderLayout>> {
        let config = self.dir.as_ref().map(|d| d.join("config.json")).filter(|p| p.is_file());
        let config = match config {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                Some(serde_json::from_str::<serde_json::Value>(&text).map_err(|e| anyhow::anyhow!("{}: {e}\n  fix: give the model's own config.json, or remove it", path.display()))?)
            }
            None => None,
        };
        DecoderLayout::read(io, self.meta.decoder.as_ref(), config.as_ref()).map_err(|e| anyhow::anyhow!("model `{}`: {e:#}", self.name))
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

