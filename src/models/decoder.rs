//! A decoder's layout: which graph inputs and outputs carry the token ids, the mask, the positions,
//! the logits and the key/value cache, layer by layer. Found by name in the layout optimum and
//! onnxruntime-genai export (`past_key_values.{i}.key` / `.value` in, `present.{i}.key` / `.value`
//! out, `use_cache_branch` for merged decoders), or mapped by model.yaml's `decoder:` table.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::onnx_meta::{Dim, IoInfo, ModelIo};
use crate::tensor::ElemType;

/// model.yaml's `decoder:` table: the roles of a decoder's inputs and outputs where their names are
/// not optimum's. A role left out is found by its usual name. The cache is given either as name
/// templates (`{i}` or genai's `%d` stands for the layer number) or as explicit pairs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecoderRoles {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_ids: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_mask: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_ids: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_cache_branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logits: Option<String>,
    /// Template of the past keys' input names, e.g. `cache.{i}.k_in`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub past_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub past_value: Option<String>,
    /// Template of the present keys' output names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub present_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub present_value: Option<String>,
    /// The cache's names layer by layer, instead of templates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cache: Vec<CacheNames>,
}

/// One layer's cache names in model.yaml's `decoder: {cache: [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheNames {
    pub past_key: String,
    pub past_value: String,
    pub present_key: String,
    pub present_value: String,
}

/// One layer's cache: the inputs it is passed in and the outputs it comes back from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachePair {
    pub layer: usize,
    pub past_key: String,
    pub past_value: String,
    pub present_key: String,
    pub present_value: String,
}

impl CachePair {
    fn names(&self) -> [(&str, bool); 4] {
        [(&self.past_key, true), (&self.past_value, true), (&self.present_key, false), (&self.present_value, false)]
    }
}

/// What a decoder with a key/value cache takes and gives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecoderLayout {
    pub input_ids: String,
    pub attention_mask: Option<String>,
    pub position_ids: Option<String>,
    /// Merged decoders (one graph for the first step and the next): a bool `[1]` input.
    pub use_cache_branch: Option<String>,
    pub logits: String,
    /// By layer, from 0.
    pub cache: Vec<CachePair>,
    /// From the cache's fixed dims, when every cache tensor gives the same.
    pub kv_heads: Option<usize>,
    pub head_size: Option<usize>,
    /// The past inputs' element type.
    pub cache_type: ElemType,
    /// The logits' last dim, when fixed.
    pub vocab: Option<usize>,
    /// config.json's `max_position_embeddings`, when given.
    pub max_positions: Option<usize>,
}

/// The cache names optimum and onnxruntime-genai export: past keys, past values, present keys,
/// present values.
const KNOWN: [&str; 4] = ["past_key_values.{i}.key", "past_key_values.{i}.value", "present.{i}.key", "present.{i}.value"];

const FIX: &str = "fix: map the roles in the model's model.yaml with a `decoder:` table: the cache as name \
templates (`past_key`, `past_value`, `present_key`, `present_value`, `{i}` for the layer) or as `cache:` pairs, \
and `input_ids`, `attention_mask`, `position_ids`, `logits` where their names differ";

/// The layer a name stands for under `template` (`{i}` or `%d` where the number goes).
fn layer_of(template: &str, name: &str) -> Option<usize> {
    let (pre, post) = template.split_once("{i}").or_else(|| template.split_once("%d"))?;
    let digits = name.strip_prefix(pre)?.strip_suffix(post)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Whether a name looks like part of a key/value cache.
fn cache_like(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("past") || n.contains("present") || (n.contains("cache") && !n.contains("use_cache"))
}

fn listed(items: &[IoInfo]) -> String {
    items.iter().map(|i| format!("`{}`", i.name)).collect::<Vec<_>>().join(", ")
}

/// The cache paired by name templates: `[past key, past value, present key, present value]`.
fn by_templates(io: &ModelIo, t: [&str; 4]) -> Result<Vec<CachePair>> {
    let mut layers: BTreeMap<usize, [Option<String>; 4]> = BTreeMap::new();
    for (slot, template) in t.iter().enumerate() {
        let list = if slot < 2 { &io.inputs } else { &io.outputs };
        for info in list {
            if let Some(layer) = layer_of(template, &info.name) {
                layers.entry(layer).or_default()[slot] = Some(info.name.clone());
            }
        }
    }
    let mut problems = Vec::new();
    let mut pairs = Vec::new();
    let expected = |slot: usize, layer: usize| t[slot].replacen("{i}", &layer.to_string(), 1).replacen("%d", &layer.to_string(), 1);
    for want in 0..layers.keys().next_back().map_or(0, |l| l + 1) {
        let Some(found) = layers.get(&want) else {
            problems.push(format!("layer {want} has no cache (no input `{}`) while later layers have one", expected(0, want)));
            continue;
        };
        let Some(seen) = found.iter().flatten().next() else { continue };
        for (slot, name) in found.iter().enumerate() {
            if name.is_none() {
                let kind = if slot < 2 { "input" } else { "output" };
                problems.push(format!("`{seen}` has no matching {kind} `{}`", expected(slot, want)));
            }
        }
        if let [Some(pk), Some(pv), Some(nk), Some(nv)] = found {
            pairs.push(CachePair { layer: want, past_key: pk.clone(), past_value: pv.clone(), present_key: nk.clone(), present_value: nv.clone() });
        }
    }
    if !problems.is_empty() {
        bail!("the key/value cache does not pair up: {}\n  {FIX}", problems.join("; "));
    }
    Ok(pairs)
}

/// The cache as model.yaml lists it, each name checked against the graph.
fn by_list(io: &ModelIo, list: &[CacheNames]) -> Result<Vec<CachePair>> {
    let mut problems = Vec::new();
    let pairs: Vec<CachePair> = list
        .iter()
        .enumerate()
        .map(|(layer, n)| CachePair { layer, past_key: n.past_key.clone(), past_value: n.past_value.clone(), present_key: n.present_key.clone(), present_value: n.present_value.clone() })
        .collect();
    for p in &pairs {
        for (name, is_input) in p.names() {
            let (list, kind) = if is_input { (&io.inputs, "input") } else { (&io.outputs, "output") };
            if !list.iter().any(|i| i.name == name) {
                problems.push(format!("layer {}'s `{name}` is no {kind} of the graph (its {kind}s: {})", p.layer, listed(list)));
            }
        }
    }
    if !problems.is_empty() {
        bail!("model.yaml's `decoder: cache:` does not match the graph: {}\n  fix: name the graph's own inputs and outputs there", problems.join("; "));
    }
    Ok(pairs)
}

/// A role's name: model.yaml's (checked against the graph) or `usual` when the graph has it.
fn role(given: Option<&String>, usual: &str, list: &[IoInfo], kind: &str) -> Result<Option<String>> {
    match given {
        Some(name) if list.iter().any(|i| &i.name == name) => Ok(Some(name.clone())),
        Some(name) => bail!("model.yaml's `decoder:` names `{name}`, which is no {kind} of the graph (its {kind}s: {})\n  fix: name one of those", listed(list)),
        None => Ok(list.iter().any(|i| i.name == usual).then(|| usual.to_string())),
    }
}

fn info<'a>(io: &'a ModelIo, name: &str, is_input: bool) -> &'a IoInfo {
    let list = if is_input { &io.inputs } else { &io.outputs };
    list.iter().find(|i| i.name == name).expect("paired names come from the graph")
}

impl DecoderLayout {
    /// The layout of a decoder with a key/value cache. `None`: the model has no cache inputs (not
    /// a decoder with a cache). Err: cache-like inputs or outputs that cannot be paired, a missing
    /// `input_ids` or `logits`, a cache not shaped `[batch, heads, positions, head_size]` — named,
    /// with the fix (model.yaml's `decoder:` roles).
    pub fn read(io: &ModelIo, roles: Option<&DecoderRoles>, config: Option<&serde_json::Value>) -> Result<Option<DecoderLayout>> {
        let none = DecoderRoles::default();
        let r = roles.unwrap_or(&none);
        let branch = r.use_cache_branch.as_deref().unwrap_or("use_cache_branch");
        // A model without cache inputs (a plain model, or a decoder exported without its past)
        // is no decoder with a cache, unless model.yaml says it is one.
        if roles.is_none() && !io.inputs.iter().any(|i| cache_like(&i.name) && i.name != branch) {
            return Ok(None);
        }
        let templates = [&r.past_key, &r.past_value, &r.present_key, &r.present_value];
        let cache = if !r.cache.is_empty() {
            if templates.iter().any(|t| t.is_some()) {
                bail!("model.yaml's `decoder:` gives both `cache:` pairs and name templates\n  fix: keep one of the two");
            }
            by_list(io, &r.cache)?
        } else if templates.iter().any(|t| t.is_some()) {
            let given: Vec<&str> = templates.iter().map(|t| t.as_deref().unwrap_or("")).collect();
            for (key, t) in ["past_key", "past_value", "present_key", "present_value"].iter().zip(&given) {
                if t.is_empty() {
                    bail!("model.yaml's `decoder:` gives some cache templates but not `{key}`\n  fix: give all four (past_key, past_value, present_key, present_value), or `cache:` pairs");
                }
                if !t.contains("{i}") && !t.contains("%d") {
                    bail!("model.yaml's `decoder: {key}: {t}` has no `{{i}}` where the layer number goes\n  fix: write e.g. `{key}: {t}.{{i}}`, or list the names in `cache:` pairs");
                }
            }
            by_templates(io, [given[0], given[1], given[2], given[3]])?
        } else {
            by_templates(io, KNOWN)?
        };
        let use_cache_branch = role(r.use_cache_branch.as_ref(), "use_cache_branch", &io.inputs, "input")?;
        let paired = |name: &str| cache.iter().any(|p| p.names().iter().any(|(n, _)| *n == name));
        let stray_in: Vec<&str> = io.inputs.iter().map(|i| i.name.as_str()).filter(|n| cache_like(n) && !paired(n) && Some(*n) != use_cache_branch.as_deref()).collect();
        let stray_out: Vec<&str> = io.outputs.iter().map(|i| i.name.as_str()).filter(|n| cache_like(n) && !paired(n)).collect();
        if cache.is_empty() {
            bail!("no key/value cache found: no input pairs with an output by the names optimum and onnxruntime-genai export (past_key_values.N.key/value -> present.N.key/value){}\n  {FIX}", if stray_in.is_empty() { String::new() } else { format!("; cache-like inputs: `{}`", stray_in.join("`, `")) });
        }
        if !stray_in.is_empty() || !stray_out.is_empty() {
            let mut what = Vec::new();
            if !stray_in.is_empty() {
                what.push(format!("input(s) `{}` pair with no present output", stray_in.join("`, `")));
            }
            if !stray_out.is_empty() {
                what.push(format!("output(s) `{}` pair with no past input", stray_out.join("`, `")));
            }
            bail!("the key/value cache does not pair up: {}\n  {FIX}", what.join("; "));
        }
        let input_ids = role(r.input_ids.as_ref(), "input_ids", &io.inputs, "input")?
            .ok_or_else(|| anyhow::anyhow!("the decoder has no input `input_ids` (its inputs: {})\n  {FIX}", listed(&io.inputs)))?;
        let logits = role(r.logits.as_ref(), "logits", &io.outputs, "output")?
            .ok_or_else(|| anyhow::anyhow!("the decoder has no output `logits` (its outputs: {})\n  {FIX}", listed(&io.outputs)))?;
        if let Some(b) = &use_cache_branch {
            let t = &info(io, b, true).elem_type;
            if *t != crate::tensor::ElemType::Bool {
                bail!("`{b}` is {t}: a merged decoder's `use_cache_branch` is a bool [1]\n  {FIX}");
            }
        }
        let (cache_type, kv_heads, head_size) = cache_shape(io, &cache)?;
        let vocab = info(io, &logits, false).dims.as_ref().and_then(|d| match d.last() {
            Some(Dim::Fixed(n)) if *n > 0 => Some(*n as usize),
            _ => None,
        });
        let max_positions = config.and_then(|c| c.get("max_position_embeddings")).and_then(|v| v.as_u64()).map(|n| n as usize);
        Ok(Some(DecoderLayout {
            input_ids,
            attention_mask: role(r.attention_mask.as_ref(), "attention_mask", &io.inputs, "input")?,
            position_ids: role(r.position_ids.as_ref(), "position_ids", &io.inputs, "input")?,
            use_cache_branch,
            logits,
            cache,
            kv_heads,
            head_size,
            cache_type,
            vocab,
            max_positions,
        }))
    }

    /// Bytes the cache holds for `batch` sequences of `positions` tokens, keys and values of every
    /// layer; `None` when the heads or the head size are not fixed in the graph.
    pub fn cache_bytes(&self, batch: usize, positions: usize) -> Option<u64> {
        let per = self.kv_heads? as u64 * self.head_size? as u64 * self.cache_type.size()? as u64;
        Some(2 * self.cache.len() as u64 * batch as u64 * positions as u64 * per)
    }
}

/// The cache's element type (the past inputs', all the same float type) and its heads and head
/// size where every cache tensor fixes the same; refuses a cache not shaped
/// `[batch, heads, positions, head_size]`.
fn cache_shape(io: &ModelIo, cache: &[CachePair]) -> Result<(ElemType, Option<usize>, Option<usize>)> {
    let mut problems = Vec::new();
    let first = info(io, &cache[0].past_key, true);
    let cache_type = first.elem();
    let (mut heads, mut sizes) = (Vec::new(), Vec::new());
    for p in cache {
        for (name, is_input) in p.names() {
            let i = info(io, name, is_input);
            if i.elem_type != first.elem_type {
                problems.push(format!("`{name}` is {} while `{}` is {}", i.elem_type, first.name, first.elem_type));
            }
            match &i.dims {
                Some(d) if d.len() != 4 => problems.push(format!("`{name}` is {}, not [batch, heads, positions, head_size]", i.shape_string())),
                Some(d) => {
                    heads.push(match d[1] { Dim::Fixed(n) if n > 0 => Some(n as usize), _ => None });
                    sizes.push(match d[3] { Dim::Fixed(n) if n > 0 => Some(n as usize), _ => None });
                }
                None => {
                    heads.push(None);
                    sizes.push(None);
                }
            }
        }
    }
    let cache_type = match cache_type {
        Some(t) if t.is_float() => t,
        _ => {
            problems.push(format!("`{}` is {}: a key/value cache is floating-point", first.name, first.elem_type));
            ElemType::Float32
        }
    };
    // Key and value heads may differ from layer to layer in some models; a fixed size is recorded
    // only where all agree.
    let agreed = |v: &[Option<usize>]| v.first().copied().flatten().filter(|x| v.iter().all(|y| *y == Some(*x)));
    for p in cache {
        let dims = |n: &str, input| info(io, n, input).dims.clone().unwrap_or_default();
        for (past, present) in [(&p.past_key, &p.present_key), (&p.past_value, &p.present_value)] {
            let (a, b) = (dims(past, true), dims(present, false));
            for axis in [1, 3] {
                if let (Some(Dim::Fixed(x)), Some(Dim::Fixed(y))) = (a.get(axis), b.get(axis)) {
                    if x != y {
                        problems.push(format!("`{past}` has {x} at axis {axis} but `{present}` {y}"));
                    }
                }
            }
        }
    }
    if !problems.is_empty() {
        bail!("the key/value cache is not one xbench can carry: {}\n  {FIX}", problems.join("; "));
    }
    Ok((cache_type, agreed(&heads), agreed(&sizes)))
}

#[cfg(test)]
mod tests;
