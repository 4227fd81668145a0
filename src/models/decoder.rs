//! A decoder's key/value cache layout, read from its inputs and outputs by name.

use anyhow::Result;

use super::{Dim, ModelIo};
use crate::tensor::ElemType;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CachePair {
    pub layer: usize,
    pub past_key: String,
    pub past_value: String,
    pub present_key: String,
    pub present_value: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DecoderLayout {
    pub input_ids: String,
    pub attention_mask: Option<String>,
    pub position_ids: Option<String>,
    pub use_cache_branch: Option<String>,
    pub logits: String,
    pub cache: Vec<CachePair>,
    pub kv_heads: Option<usize>,
    pub head_size: Option<usize>,
    pub cache_type: ElemType,
    pub vocab: Option<usize>,
    pub max_positions: Option<usize>,
}

impl DecoderLayout {
    pub fn read(io: &ModelIo, _roles: Option<&()>, config: Option<&serde_json::Value>) -> Result<Option<DecoderLayout>> {
        let has = |n: &str| io.inputs.iter().any(|i| i.name == n);
        let mut cache = Vec::new();
        while has(&format!("past_key_values.{}.key", cache.len())) {
            let i = cache.len();
            cache.push(CachePair {
                layer: i,
                past_key: format!("past_key_values.{i}.key"),
                past_value: format!("past_key_values.{i}.value"),
                present_key: format!("present.{i}.key"),
                present_value: format!("present.{i}.value"),
            });
        }
        if cache.is_empty() {
            return Ok(None);
        }
        let past = io.inputs.iter().find(|i| i.name == cache[0].past_key).expect("found above");
        let fixed = |k: usize| match past.dims.as_ref().and_then(|d| d.get(k)) {
            Some(Dim::Fixed(n)) => Some(*n as usize),
            _ => None,
        };
        let vocab = io.outputs.iter().find(|o| o.name == "logits").and_then(|o| o.dims.as_ref()?.last().cloned()).and_then(|d| if let Dim::Fixed(n) = d { Some(n as usize) } else { None });
        Ok(Some(DecoderLayout {
            input_ids: "input_ids".into(),
            attention_mask: has("attention_mask").then(|| "attention_mask".into()),
            position_ids: has("position_ids").then(|| "position_ids".into()),
            use_cache_branch: has("use_cache_branch").then(|| "use_cache_branch".into()),
            logits: "logits".into(),
            kv_heads: fixed(1),
            head_size: fixed(3),
            cache_type: past.elem().unwrap_or(ElemType::Float32),
            vocab,
            max_positions: config.and_then(|c| c.get("max_position_embeddings")?.as_u64()).map(|n| n as usize),
            cache,
        }))
    }

    pub fn cache_bytes(&self, batch: usize, positions: usize) -> Option<u64> {
        Some((self.cache.len() * 2 * batch * self.kv_heads? * positions * self.head_size? * self.cache_type.size()?) as u64)
    }
}
