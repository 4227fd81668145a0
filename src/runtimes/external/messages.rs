//! The messages of the external runtime protocol (docs/runtime-protocol.md), typed: what xbench
//! sends ([`ToProgram`]) and what a program answers ([`FromProgram`]). A field a program may get
//! wrong is read as [`Sent`]: its value when it has the protocol's type, else the JSON it holds,
//! so that the check that refuses it can show what was sent. Unknown fields are ignored.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::models::{Dim, IoInfo};
use crate::runtimes::RuntimeId;

/// A message xbench sends.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToProgram<'a> {
    Hello {
        protocol: u64,
        runtime: HelloRuntime<'a>,
        model: HelloModel,
        threads: Option<usize>,
        device: u32,
        /// `"generate"` in a generation scenario, with `decoder`; absent otherwise.
        #[serde(skip_serializing_if = "Option::is_none")]
        task: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        decoder: Option<HelloDecoder>,
    },
    Cell {
        index: usize,
        warmup: usize,
        iterations: usize,
        min_time_s: Option<f64>,
        inputs: &'a std::path::Path,
        outputs: &'a std::path::Path,
    },
    /// A generation cell, sent instead of `cell`.
    Generate {
        index: usize,
        warmup: usize,
        iterations: usize,
        new_tokens: usize,
        keep_logits: usize,
        prompt: &'a std::path::Path,
        outputs: &'a std::path::Path,
    },
    Bye,
}

/// What xbench read of a decoder's key/value cache from its graph (`models::DecoderLayout`), as
/// `hello` tells a program asked to generate.
#[derive(Debug, Serialize)]
pub struct HelloDecoder {
    pub layers: usize,
    pub kv_heads: Option<usize>,
    pub head_dim: Option<usize>,
    pub vocab: Option<usize>,
    pub cache_type: String,
    pub max_positions: Option<usize>,
}

impl HelloDecoder {
    pub fn of(layout: &crate::models::DecoderLayout) -> HelloDecoder {
        HelloDecoder {
            layers: layout.cache.len(),
            kv_heads: layout.kv_heads,
            head_dim: layout.head_size,
            vocab: layout.vocab,
            cache_type: layout.cache_type.to_string(),
            max_positions: layout.max_positions,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct HelloRuntime<'a> {
    pub name: RuntimeId,
    pub options: &'a BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
pub struct HelloModel {
    pub name: String,
    pub dir: PathBuf,
    pub onnx: PathBuf,
    pub inputs: Vec<Declared>,
    pub outputs: Vec<Declared>,
}

/// A graph input or output as `hello` declares it.
#[derive(Debug, Serialize)]
pub struct Declared {
    pub name: String,
    pub elem_type: String,
    /// One entry per axis: a size, a symbolic name, or `null`; `None` for no declared shape.
    pub dims: Option<Vec<DeclaredDim>>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum DeclaredDim {
    Fixed(i64),
    Symbol(String),
    Unknown,
}

impl Declared {
    pub fn all(io: &[IoInfo]) -> Vec<Declared> {
        io.iter()
            .map(|i| Declared {
                name: i.name.clone(),
                elem_type: i.elem_type.to_string(),
                dims: i.dims.as_ref().map(|d| {
                    d.iter()
                        .map(|d| match d {
                            Dim::Fixed(n) => DeclaredDim::Fixed(*n),
                            Dim::Symbol(s) => DeclaredDim::Symbol(s.clone()),
                            Dim::Unknown => DeclaredDim::Unknown,
                        })
                        .collect()
                }),
            })
            .collect()
    }
}

/// A field as a program sent it: of the protocol's type, or not (then the JSON text sent).
#[derive(Debug, Clone, PartialEq)]
pub enum Sent<T> {
    Valid(T),
    Invalid(String),
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Sent<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Ok(match T::deserialize(&v) {
            Ok(t) => Sent::Valid(t),
            Err(_) => Sent::Invalid(v.to_string()),
        })
    }
}

impl<T> Sent<T> {
    pub fn valid(&self) -> Option<&T> {
        match self {
            Sent::Valid(t) => Some(t),
            Sent::Invalid(_) => None,
        }
    }
}

impl<T: std::fmt::Display> Sent<T> {
    /// The value as sent, in JSON (`null` when absent).
    pub fn shown(field: &Option<Sent<T>>) -> String {
        match field {
            None => "null".into(),
            Some(Sent::Valid(t)) => t.to_string(),
            Some(Sent::Invalid(json)) => json.clone(),
        }
    }
}

/// A text field: a string, or nothing (a value of another type counts as absent).
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        _ => None,
    })
}

/// A message a program sends.
#[derive(Debug)]
pub enum FromProgram {
    Ready(Box<Ready>),
    Result(CellResult),
    Generated(Box<Generated>),
    CellError(CellError),
    Done,
    /// The program gives up: its message.
    Error(Option<String>),
}

impl FromProgram {
    /// Reads one line: `Err` says why it is not a protocol message of a known `type`
    /// (`Ok(Err(type))`: a JSON value whose `type` xbench does not know, `""` when none).
    pub fn parse(line: &str) -> Result<Result<FromProgram, String>, serde_json::Error> {
        let msg: Value = serde_json::from_str(line)?;
        let ty = msg.get("type").and_then(Value::as_str).unwrap_or("").to_string();
        let typed = |m: Value| -> Result<FromProgram, String> {
            // Every field is optional or [`Sent`], so an object always reads.
            let read = |r: Result<FromProgram, serde_json::Error>| r.map_err(|_| ty.clone());
            read(match ty.as_str() {
                "ready" => serde_json::from_value(m).map(|r| FromProgram::Ready(Box::new(r))),
                "result" => serde_json::from_value(m).map(FromProgram::Result),
                "generated" => serde_json::from_value(m).map(|g| FromProgram::Generated(Box::new(g))),
                "cell_error" => serde_json::from_value(m).map(FromProgram::CellError),
                "done" => Ok(FromProgram::Done),
                "error" => serde_json::from_value::<ErrorMsg>(m).map(|e| FromProgram::Error(e.message)),
                _ => return Err(ty.clone()),
            })
        };
        Ok(typed(msg))
    }

    /// The message's `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            FromProgram::Ready(_) => "ready",
            FromProgram::Result(_) => "result",
            FromProgram::Generated(_) => "generated",
            FromProgram::CellError(_) => "cell_error",
            FromProgram::Done => "done",
            FromProgram::Error(_) => "error",
        }
    }
}

#[derive(Debug, Deserialize)]
struct ErrorMsg {
    #[serde(default, deserialize_with = "text")]
    message: Option<String>,
}

/// `ready`: the program has loaded the model. Checked by the session (protocol, placement,
/// timing, host memory, precision).
#[derive(Debug, Deserialize)]
pub struct Ready {
    pub protocol: Option<Sent<u64>>,
    #[serde(default, deserialize_with = "text")]
    pub engine: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub version: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub device: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub precision: Option<String>,
    /// `[name, count]` pairs.
    pub placement: Option<Sent<Vec<Sent<(String, u64)>>>>,
    #[serde(default, deserialize_with = "text")]
    pub threads: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub timer: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub timer_label: Option<String>,
    pub timing: Option<Sent<String>>,
    pub host_memory: Option<Sent<String>>,
    #[serde(default, deserialize_with = "text")]
    pub notes: Option<String>,
    /// `true` when the program answers `generate` messages.
    pub generate: Option<Sent<bool>>,
    /// What a timed prefill and a timed step cover, in words.
    #[serde(default, deserialize_with = "text")]
    pub generate_timer: Option<String>,
}

/// `result`: a cell's samples (its outputs are in the outputs file). Checked by the session
/// against the protocol's bounds.
#[derive(Debug, Deserialize)]
pub struct CellResult {
    pub index: Option<Sent<u64>>,
    pub samples_ms: Option<Sent<Vec<Sent<f64>>>>,
    pub prepare_ms: Option<Sent<f64>>,
    pub warmup_ms: Option<Sent<f64>>,
}

/// `generated`: a generation cell's times (its ids and logits are in the outputs file). Checked
/// by the session against the protocol's rules.
#[derive(Debug, Deserialize)]
pub struct Generated {
    pub index: Option<Sent<u64>>,
    /// One per timed generation.
    pub prefill_ms: Option<Sent<Vec<Sent<f64>>>>,
    /// One list per timed generation.
    pub step_ms: Option<Sent<Vec<Sent<Vec<Sent<f64>>>>>>,
    pub prepare_ms: Option<Sent<f64>>,
    pub warmup_ms: Option<Sent<f64>>,
    pub cache_bytes: Option<Sent<u64>>,
    pub repeatable: Option<Sent<bool>>,
}

/// `cell_error`: one cell failed, the program goes on.
#[derive(Debug, Deserialize)]
pub struct CellError {
    pub index: Option<Sent<u64>>,
    #[serde(default, deserialize_with = "text")]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_the_wrong_type_are_kept_as_sent_and_unknown_types_named() {
        let Ok(Ok(FromProgram::Ready(r))) = FromProgram::parse(r#"{"type":"ready","protocol":1.0,"engine":5,"placement":[["cpu",1],["cpu","many"]],"extra":true}"#) else { panic!() };
        assert_eq!(r.protocol, Some(Sent::Invalid("1.0".into())));
        assert_eq!(r.engine, None);
        assert_eq!(r.placement, Some(Sent::Valid(vec![Sent::Valid(("cpu".into(), 1)), Sent::Invalid(r#"["cpu","many"]"#.into())])));
        let Ok(Ok(FromProgram::Result(c))) = FromProgram::parse(r#"{"type":"result","index":0,"samples_ms":[1,"fast"],"prepare_ms":null}"#) else { panic!() };
        assert_eq!((c.index, c.prepare_ms), (Some(Sent::Valid(0)), None));
        assert_eq!(c.samples_ms, Some(Sent::Valid(vec![Sent::Valid(1.0), Sent::Invalid("\"fast\"".into())])));
        assert_eq!(FromProgram::parse(r#"{"type":"hi"}"#).unwrap().unwrap_err(), "hi");
        assert_eq!(FromProgram::parse("[1]").unwrap().unwrap_err(), "");
        assert!(FromProgram::parse("{").is_err());
    }

    #[test]
    fn messages_to_a_program_are_the_documented_lines() {
        let bye = serde_json::to_string(&ToProgram::Bye).unwrap();
        assert_eq!(bye, r#"{"type":"bye"}"#);
        let p = std::path::Path::new("/x");
        let cell = serde_json::to_string(&ToProgram::Cell { index: 2, warmup: 1, iterations: 3, min_time_s: None, inputs: p, outputs: p }).unwrap();
        assert_eq!(cell, r#"{"type":"cell","index":2,"warmup":1,"iterations":3,"min_time_s":null,"inputs":"/x","outputs":"/x"}"#);
        let generate = serde_json::to_string(&ToProgram::Generate { index: 0, warmup: 1, iterations: 3, new_tokens: 32, keep_logits: 2, prompt: p, outputs: p }).unwrap();
        assert_eq!(generate, r#"{"type":"generate","index":0,"warmup":1,"iterations":3,"new_tokens":32,"keep_logits":2,"prompt":"/x","outputs":"/x"}"#);
    }

    #[test]
    fn hello_says_generate_and_the_decoder_only_in_a_generation_scenario() {
        let options = BTreeMap::new();
        let hello = |decoder: Option<HelloDecoder>| {
            let model = HelloModel { name: "m".into(), dir: "/m".into(), onnx: "/m/model.onnx".into(), inputs: vec![], outputs: vec![] };
            let task = decoder.as_ref().map(|_| "generate");
            serde_json::to_value(ToProgram::Hello { protocol: 1, runtime: HelloRuntime { name: RuntimeId::new("t"), options: &options }, model, threads: None, device: 0, task, decoder }).unwrap()
        };
        let plain = hello(None);
        assert!(plain.get("task").is_none() && plain.get("decoder").is_none(), "{plain}");
        let d = HelloDecoder { layers: 2, kv_heads: Some(4), head_dim: Some(16), vocab: None, cache_type: "float16".into(), max_positions: Some(128) };
        let generating = hello(Some(d));
        assert_eq!(generating["task"], "generate");
        assert_eq!(generating["decoder"], serde_json::json!({"layers": 2, "kv_heads": 4, "head_dim": 16, "vocab": null, "cache_type": "float16", "max_positions": 128}));
    }

    #[test]
    fn a_generated_answer_keeps_what_was_sent() {
        let Ok(Ok(FromProgram::Generated(g))) = FromProgram::parse(r#"{"type":"generated","index":0,"prefill_ms":[1.5],"step_ms":[[1,"x"]],"cache_bytes":-1,"repeatable":true}"#) else { panic!() };
        assert_eq!(g.prefill_ms, Some(Sent::Valid(vec![Sent::Valid(1.5)])));
        assert_eq!(g.step_ms, Some(Sent::Valid(vec![Sent::Valid(vec![Sent::Valid(1.0), Sent::Invalid("\"x\"".into())])])));
        assert_eq!((g.cache_bytes, g.repeatable, g.warmup_ms), (Some(Sent::Invalid("-1".into())), Some(Sent::Valid(true)), None));
    }
}
