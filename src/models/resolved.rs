//! A model as a resolved plan holds it: an ONNX file on disk (a model folder, a loose file, a
//! fetched Hub model) or an operation case's graph written for the run, each with what its graph
//! takes and gives, read once; or the reason it could not be made ready.

use std::path::{Path, PathBuf};

use super::{ModelIo, ModelMeta, ModelSpec};
use crate::inputs::InputPlan;
use crate::scenario::ops::OpCase;
use crate::scenario::HubRef;

#[derive(Debug, Clone)]
pub struct ResolvedModel {
    /// The name cells, results and reports give it.
    pub name: String,
    pub source: ModelSource,
}

#[derive(Debug, Clone)]
pub enum ModelSource {
    /// An ONNX file found under the models root, with how its inputs are fed (or why they cannot
    /// be: then only its test data can run).
    Onnx { spec: ModelSpec, io: ModelIo, inputs: Result<InputPlan, String> },
    /// An operation case, its single-operation graph written at `onnx`.
    Op { case: OpCase, onnx: PathBuf, io: ModelIo, meta: ModelMeta, inputs: InputPlan },
    /// A model that could not be made ready (a Hub fetch that failed): its cells fail with `why`.
    Unavailable { why: String, hub: Option<HubRef> },
}

impl ResolvedModel {
    /// The ONNX file, when the model is ready.
    pub fn onnx(&self) -> Option<&Path> {
        match &self.source {
            ModelSource::Onnx { spec, .. } => Some(&spec.onnx),
            ModelSource::Op { onnx, .. } => Some(onnx),
            ModelSource::Unavailable { .. } => None,
        }
    }

    /// What the graph takes and gives, or why the model is not there.
    pub fn io(&self) -> Result<&ModelIo, &str> {
        match &self.source {
            ModelSource::Onnx { io, .. } | ModelSource::Op { io, .. } => Ok(io),
            ModelSource::Unavailable { why, .. } => Err(why),
        }
    }

    /// How its inputs are fed in the scenario's grid, or why they cannot be.
    pub fn inputs(&self) -> Result<&InputPlan, &str> {
        match &self.source {
            ModelSource::Onnx { inputs, .. } => inputs.as_ref().map_err(|e| e.as_str()),
            ModelSource::Op { inputs, .. } => Ok(inputs),
            ModelSource::Unavailable { why, .. } => Err(why),
        }
    }

    /// Its own test data sets, when it has them.
    pub fn test_data(&self) -> &[PathBuf] {
        match &self.source {
            ModelSource::Onnx { spec, .. } => &spec.test_data,
            _ => &[],
        }
    }

    pub fn tokenizer(&self) -> Option<&Path> {
        match &self.source {
            ModelSource::Onnx { spec, .. } => spec.tokenizer.as_deref(),
            _ => None,
        }
    }

    /// Its model.yaml (or what xbench knows of an operation case, or of a Hub model not fetched).
    pub fn meta(&self) -> ModelMeta {
        match &self.source {
            ModelSource::Onnx { spec, .. } => spec.meta.clone(),
            ModelSource::Op { meta, .. } => meta.clone(),
            ModelSource::Unavailable { hub, .. } => ModelMeta {
                hub_id: hub.as_ref().map(|h| h.repo.clone()),
                revision: hub.as_ref().and_then(|h| h.revision.clone()),
                ..Default::default()
            },
        }
    }

    pub fn op(&self) -> Option<&OpCase> {
        match &self.source {
            ModelSource::Op { case, .. } => Some(case),
            _ => None,
        }
    }

    /// Its decoder layout (see [`ModelSpec::decoder_layout`]); `None` for a model that takes no
    /// key/value cache or is not ready.
    pub fn decoder_layout(&self) -> anyhow::Result<Option<super::DecoderLayout>> {
        match &self.source {
            ModelSource::Onnx { spec, io, .. } => spec.decoder_layout(io),
            _ => Ok(None),
        }
    }

    /// The model its `compare_with` names.
    pub fn sibling(&self) -> Option<String> {
        match &self.source {
            ModelSource::Onnx { spec, .. } => spec.sibling(),
            _ => None,
        }
    }

    /// Longest input the model takes, special tokens included (see [`ModelSpec::max_positions`]).
    pub fn max_positions(&self) -> Option<usize> {
        match &self.source {
            ModelSource::Onnx { spec, io, .. } => spec.max_positions(Some(io)),
            _ => self.meta().max_positions,
        }
    }
}
