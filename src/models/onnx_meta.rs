//! Reads what an ONNX file takes and gives (input/output names, element types, dims) without
//! loading its weights: a protobuf decode that skips tensor payloads.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tract_onnx::pb::{self, type_proto, tensor_shape_proto::dimension::Value as DimValue};

/// One dimension of a declared shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dim {
    Fixed(i64),
    Symbol(String),
    Unknown,
}

impl std::fmt::Display for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Symbol(s) => write!(f, "{s}"),
            Dim::Unknown => write!(f, "?"),
        }
    }
}

/// A graph input or output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IoInfo {
    pub name: String,
    /// ONNX element type name, e.g. `int64`, `float32`, `float16`.
    pub elem_type: String,
    /// `None` when the graph declares no shape.
    pub dims: Option<Vec<Dim>>,
}

impl IoInfo {
    pub fn shape_string(&self) -> String {
        match &self.dims {
            None => "[?]".into(),
            Some(d) => format!("[{}]", d.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
        }
    }
}

/// What a model's graph declares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelIo {
    pub inputs: Vec<IoInfo>,
    pub outputs: Vec<IoInfo>,
    pub opsets: Vec<(String, i64)>,
    /// Rows of a `*position_embeddings*` table, when the graph holds one (the longest input).
    pub position_table_rows: Option<usize>,
    /// Rows of a `*word_embeddings*` table, when the graph holds one (token ids must stay below it).
    #[serde(default)]
    pub word_embedding_rows: Option<usize>,
    /// Whether initializers live in external data files beside the graph.
    pub external_data: bool,
    /// `fp16` when most floating-point weights are float16 (whatever the outputs), else `fp32`.
    pub weights_precision: String,
    /// 2·K·N summed over matrix products with a weight matrix [K, N] (MatMul, Gemm): the FLOPs
    /// every token costs at least (attention's token-by-token products come on top).
    pub flops_per_token: u64,
}

impl ModelIo {
    /// `fp16` when its weights or an output are float16, else `fp32`.
    pub fn precision(&self) -> &'static str {
        if self.weights_precision == "fp16" || self.outputs.iter().any(|o| o.elem_type == "float16") {
            "fp16"
        } else {
            "fp32"
        }
    }
}

// Light messages: the same field numbers as onnx.proto, with tensor payloads left out so that
// prost skips them instead of copying gigabytes of weights.
#[derive(Clone, PartialEq, prost::Message)]
struct LiteModel {
    #[prost(message, repeated, tag = "8")]
    opset_import: Vec<pb::OperatorSetIdProto>,
    #[prost(message, optional, tag = "7")]
    graph: Option<LiteGraph>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct LiteGraph {
    #[prost(message, repeated, tag = "1")]
    node: Vec<LiteNode>,
    #[prost(message, repeated, tag = "5")]
    initializer: Vec<LiteTensor>,
    #[prost(message, repeated, tag = "11")]
    input: Vec<pb::ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    output: Vec<pb::ValueInfoProto>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct LiteNode {
    #[prost(string, repeated, tag = "1")]
    input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    output: Vec<String>,
    #[prost(string, tag = "4")]
    op_type: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct LiteTensor {
    #[prost(int64, repeated, tag = "1")]
    dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    data_type: i32,
    #[prost(string, tag = "8")]
    name: String,
    #[prost(int32, optional, tag = "14")]
    data_location: Option<i32>,
}

/// Reads the declared inputs and outputs of the ONNX file at `path`.
pub fn read_io(path: &Path) -> Result<ModelIo> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    // Mapped, not read: the decode skips the weights, so they are never paged in.
    // SAFETY: the file is only read; a concurrent writer could change what is parsed, not memory safety of xbench's own data.
    let map = unsafe { memmap2::Mmap::map(&file) }.with_context(|| format!("cannot read {}", path.display()))?;
    parse_io(&map).with_context(|| format!("{} is not a readable ONNX model", path.display()))
}

/// Parses the declared inputs and outputs from ONNX bytes.
pub fn parse_io(bytes: &[u8]) -> Result<ModelIo> {
    use prost::Message;
    if bytes.is_empty() {
        anyhow::bail!("the file is empty (0 bytes)\n  fix: re-export or re-download the model");
    }
    let model = LiteModel::decode(bytes).map_err(|e| {
        anyhow::anyhow!("protobuf decode failed ({e}); the file is truncated or not ONNX\n  fix: re-export or re-download the model")
    })?;
    let graph = model.graph.ok_or_else(|| {
        anyhow::anyhow!("it holds no graph; the file is truncated or not ONNX\n  fix: re-export or re-download the model")
    })?;
    if graph.input.is_empty() && graph.output.is_empty() {
        anyhow::bail!("its graph declares no inputs or outputs; the file is truncated or not ONNX\n  fix: re-export or re-download the model");
    }
    let initializers: std::collections::HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let position_table_rows = graph
        .initializer
        .iter()
        .find(|t| t.name.contains("position_embeddings") && t.dims.len() == 2)
        .map(|t| t.dims[0].max(0) as usize);
    let word_embedding_rows = graph
        .initializer
        .iter()
        .find(|t| t.name.contains("word_embeddings") && t.dims.len() == 2)
        .map(|t| t.dims[0].max(0) as usize);
    let external_data = graph.initializer.iter().any(|t| t.data_location == Some(1));
    let flops_per_token = weight_flops_per_token(&graph);
    let float_elems = |ty: i32| -> u64 {
        graph.initializer.iter().filter(|t| t.data_type == ty).map(|t| t.dims.iter().map(|&d| d.max(0) as u64).product::<u64>()).sum()
    };
    let weights_precision = if float_elems(10) > float_elems(1) { "fp16" } else { "fp32" }.to_string();
    Ok(ModelIo {
        // Older exports list initializers among the inputs too; those are not fed.
        inputs: graph.input.iter().filter(|v| !initializers.contains(v.name.as_str())).map(io_info).collect(),
        outputs: graph.output.iter().map(io_info).collect(),
        opsets: model.opset_import.iter().map(|o| (if o.domain.is_empty() { "ai.onnx".into() } else { o.domain.clone() }, o.version)).collect(),
        position_table_rows,
        word_embedding_rows,
        external_data,
        weights_precision,
        flops_per_token,
    })
}

fn weight_flops_per_token(graph: &LiteGraph) -> u64 {
    // Weight matrices, followed through the casts and transposes exporters put before a MatMul.
    let mut weights: std::collections::HashMap<&str, u64> = graph
        .initializer
        .iter()
        .filter(|t| t.dims.len() == 2)
        .map(|t| (t.name.as_str(), t.dims.iter().map(|&d| d.max(0) as u64).product()))
        .collect();
    for n in &graph.node {
        if matches!(n.op_type.as_str(), "Cast" | "Transpose" | "Identity" | "DequantizeLinear") {
            if let (Some(i), Some(o)) = (n.input.first(), n.output.first()) {
                if let Some(&size) = weights.get(i.as_str()) {
                    weights.insert(o.as_str(), size);
                }
            }
        }
    }
    graph
        .node
        .iter()
        .filter(|n| matches!(n.op_type.as_str(), "MatMul" | "Gemm"))
        .filter_map(|n| n.input.get(1).and_then(|w| weights.get(w.as_str())))
        .map(|size| 2 * size)
        .sum()
}

fn io_info(v: &pb::ValueInfoProto) -> IoInfo {
    let (elem_type, dims) = match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => (
            elem_type_name(t.elem_type),
            t.shape.as_ref().map(|s| {
                s.dim
                    .iter()
                    .map(|d| match &d.value {
                        Some(DimValue::DimValue(n)) => Dim::Fixed(*n),
                        Some(DimValue::DimParam(p)) if !p.is_empty() => Dim::Symbol(p.clone()),
                        _ => Dim::Unknown,
                    })
                    .collect()
            }),
        ),
        None => ("unknown".to_string(), None),
    };
    IoInfo { name: v.name.clone(), elem_type, dims }
}

/// ONNX's element type numbers, by name.
pub fn elem_type_name(t: i32) -> String {
    match t {
        1 => "float32",
        2 => "uint8",
        3 => "int8",
        4 => "uint16",
        5 => "int16",
        6 => "int32",
        7 => "int64",
        8 => "string",
        9 => "bool",
        10 => "float16",
        11 => "float64",
        12 => "uint32",
        13 => "uint64",
        16 => "bfloat16",
        _ => return format!("type#{t}"),
    }
    .to_string()
}
