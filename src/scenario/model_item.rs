//! An entry of a scenario's `models:`: a model's name, or a table that gives the model settings of
//! its own, which apply to it alone and win over the scenario-wide `dims:` and `inputs:`:
//!
//! ```yaml
//! models:
//!   - ocr-cls                                      # the scenario-wide settings only
//!   - {name: ocr-rec, dims: {x.3: 320}, inputs: {x: {uniform: [0, 1]}}}
//! ```

use std::collections::BTreeMap;

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_yaml::Value;

/// The keys a model's table takes.
pub const MODEL_KEYS: &str = "name, dims, inputs";

/// One entry of `models:`, as written.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ModelItem {
    /// A folder or `.onnx` file under the models root, or a Hub repository (`hf:owner/name`).
    Name(String),
    /// The same, with settings of its own.
    Table(ModelTable),
}

/// A model with settings of its own: `dims:` and `inputs:` as the scenario-wide keys take them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelTable {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dims: BTreeMap<String, i64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, Value>,
}

impl ModelItem {
    /// The model as written: its folder, `.onnx` file or Hub repository.
    pub fn name(&self) -> &str {
        match self {
            ModelItem::Name(n) => n,
            ModelItem::Table(t) => &t.name,
        }
    }

    /// Its own `dims:` (none for a plain name).
    pub fn dims(&self) -> BTreeMap<String, i64> {
        match self {
            ModelItem::Name(_) => BTreeMap::new(),
            ModelItem::Table(t) => t.dims.clone(),
        }
    }

    /// Its own `inputs:` (none for a plain name).
    pub fn inputs(&self) -> BTreeMap<String, Value> {
        match self {
            ModelItem::Name(_) => BTreeMap::new(),
            ModelItem::Table(t) => t.inputs.clone(),
        }
    }
}

impl From<&str> for ModelItem {
    fn from(name: &str) -> ModelItem {
        ModelItem::Name(name.to_string())
    }
}

/// Read by hand, so that a table's unknown key is named with the keys a model's table takes, at
/// the entry's place (`models[1]: unknown field …`); an untagged enum would only say that nothing matched.
impl<'de> Deserialize<'de> for ModelItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ModelItem, D::Error> {
        struct Entry;
        impl<'de> Visitor<'de> for Entry {
            type Value = ModelItem;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "a model entry: a name or a table with the keys {MODEL_KEYS}")
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ModelItem, E> {
                Ok(ModelItem::Name(s.to_string()))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ModelItem, A::Error> {
                ModelTable::deserialize(MapAccessDeserializer::new(map)).map(ModelItem::Table)
            }
        }
        d.deserialize_any(Entry)
    }
}
