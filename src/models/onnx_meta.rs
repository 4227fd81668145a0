//! Reads what an ONNX file takes and gives (input/output names, element types, dims) without
//! loading its weights: a protobuf decode that skips tensor payloads.

use std::path::Path;

use super::weights::elements;
use crate::scenario::Precision;
use crate::tensor::{AnyElemType, ElemType};

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
    /// The element type, written as ONNX names it, e.g. `int64`, `float32`, `float16`.
    pub elem_type: AnyElemType,
    /// `None` when the graph declares no shape.
    pub dims: Option<Vec<Dim>>,
    /// For an input: the first place its values decide the computation's structure rather than
    /// being computed on (a shape, an index, a condition, a count), e.g. "the shape (input 1) of
    /// Reshape `r`". Values xbench would generate there could change what the model computes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structural_use: Option<String>,
}

impl IoInfo {
    /// The element type, when it is one xbench knows.
    pub fn elem(&self) -> Option<ElemType> {
        self.elem_type.known()
    }

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
    /// The external data files beside the graph that hold initializers, in the order the
    /// initializers first name them (none when every weight is inside the ONNX file).
    #[serde(default)]
    pub external_files: Vec<ExternalFile>,
    /// `fp16` or `bf16` when most floating-point weights are of that type (whatever the outputs), else `fp32`.
    pub weights_precision: Precision,
    /// The low precision its weights are stored or computed in, in the main graph or a subgraph:
    /// `int8` (quantize/dequantize pairs, MatMulInteger, ConvInteger, QLinear* operators, or int8
    /// weights dequantized into a MatMul, Gemm or Conv), `int4` (MatMulNBits, int4 weights) or
    /// `fp8` (8-bit float weights).
    #[serde(default)]
    pub quantized: Option<Precision>,
    /// 2·K·N summed over matrix products with a weight matrix [K, N] (MatMul, Gemm, MatMulNBits):
    /// the FLOPs every token costs at least (attention's token-by-token products come on top);
    /// `None` where the graph holds no product xbench can count (unknown, not 0).
    pub flops_per_token: Option<u64>,
}

impl ModelIo {
    /// Whether initializers live in external data files beside the graph.
    pub fn external_data(&self) -> bool {
        !self.external_files.is_empty()
    }

    /// The precision the model computes in: `int8`, `int4` or `fp8` when it is quantized, `bf16` or
    /// `fp16` when its weights or an output are of that type, else `fp32`.
    pub fn precision(&self) -> Precision {
        let output = |ty: ElemType| self.outputs.iter().any(|o| o.elem() == Some(ty));
        if let Some(q) = self.quantized {
            q
        } else if self.weights_precision == Precision::Bf16 || output(ElemType::Bfloat16) {
            Precision::Bf16
        } else if self.weights_precision == Precision::Fp16 || output(ElemType::Float16) {
            Precision::Fp16
        } else {
            Precision::Fp32
        }
    }
}

/// An external data file a graph's initializers are stored in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalFile {
    /// The path the graph gives, relative to the ONNX file's folder.
    pub location: String,
    /// The least size the file must have: the end of the furthest payload stored in it.
    pub min_bytes: u64,
    /// The first initializer stored in it, to name in errors.
    pub initializer: String,
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
pub(super) struct LiteNode {
    #[prost(string, repeated, tag = "1")]
    pub(super) input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub(super) output: Vec<String>,
    #[prost(string, tag = "3")]
    pub(super) name: String,
    #[prost(string, tag = "4")]
    pub(super) op_type: String,
    #[prost(message, repeated, tag = "5")]
    attribute: Vec<LiteAttribute>,
}

impl LiteNode {
    /// The value of integer attribute `name`, when the node has it.
    pub(super) fn int_attribute(&self, name: &str) -> Option<i64> {
        self.attribute.iter().find(|a| a.name == name).and_then(|a| a.i)
    }
}

/// A node attribute, read for its name, an integer value, and the subgraphs it holds (If
/// branches, Loop and Scan bodies).
#[derive(Clone, PartialEq, prost::Message)]
struct LiteAttribute {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(int64, optional, tag = "3")]
    i: Option<i64>,
    #[prost(message, optional, boxed, tag = "6")]
    g: Option<Box<LiteGraph>>,
    #[prost(message, repeated, tag = "11")]
    graphs: Vec<LiteGraph>,
}

impl LiteGraph {
    /// Every node of the graph and of its subgraphs, outer nodes first.
    fn all_nodes(&self) -> Vec<&LiteNode> {
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(g) = stack.pop() {
            for n in &g.node {
                out.push(n);
                for a in &n.attribute {
                    stack.extend(a.g.as_deref());
                    stack.extend(a.graphs.iter());
                }
            }
        }
        out
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct LiteTensor {
    #[prost(int64, repeated, tag = "1")]
    pub(super) dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    pub(super) data_type: i32,
    #[prost(string, tag = "8")]
    pub(super) name: String,
    #[prost(message, repeated, tag = "13")]
    external_data: Vec<LiteEntry>,
    #[prost(int32, optional, tag = "14")]
    data_location: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct LiteEntry {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(string, tag = "2")]
    value: String,
}

/// Reads the declared inputs and outputs of the ONNX file at `path`, and checks that the external
/// data files it names are there beside it.
pub fn read_io(path: &Path) -> Result<ModelIo> {
    let io = read_io_without_data(path)?;
    check_external_files(path, &io.external_files)?;
    Ok(io)
}

/// Like [`read_io`], without looking for the external data files (e.g. before they are downloaded).
pub fn read_io_without_data(path: &Path) -> Result<ModelIo> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    // Mapped, not read: the decode skips the weights, so they are never paged in.
    // SAFETY: the file is only read; a concurrent writer could change what is parsed, not memory safety of xbench's own data.
    let map = unsafe { memmap2::Mmap::map(&file) }.with_context(|| format!("cannot read {}", path.display()))?;
    parse_io(&map).with_context(|| format!("{} is not a readable ONNX model", path.display()))
}

/// Checks that the external data files a graph names lie beside it and are long enough.
fn check_external_files(onnx: &Path, files: &[ExternalFile]) -> Result<()> {
    let dir = onnx.parent().unwrap_or(Path::new(""));
    let name = onnx.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    for f in files {
        let data = dir.join(&f.location);
        if data.symlink_metadata().is_ok() {
            if let Err(why) = super::inside::real_inside(&data, dir) {
                anyhow::bail!(
                    "{}: its external data file {} {why}; the files of a model stay inside its folder\n  fix: copy `{}` beside {name} instead of linking to it",
                    onnx.display(),
                    data.display(),
                    f.location
                );
            }
        }
        let len = match std::fs::metadata(&data) {
            Ok(md) if md.is_file() => md.len(),
            _ => anyhow::bail!(
                "{} keeps its weights in the external data file `{}` (first used by initializer `{}`), which is missing: no file {}\n  fix: put `{}` beside {name}, as it was exported (an ONNX file with external data is several files; copy or fetch them all)",
                onnx.display(),
                f.location,
                f.initializer,
                data.display(),
                f.location
            ),
        };
        if len < f.min_bytes {
            anyhow::bail!(
                "{}: its external data file {} holds {len} bytes, but its initializers need {} (the file is truncated or from another export)\n  fix: copy `{}` again from the export or the Hub, together with {name}",
                onnx.display(),
                data.display(),
                f.min_bytes,
                f.location
            );
        }
    }
    Ok(())
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
    let external_files = external_files(&graph)?;
    let flops_per_token = super::weights::flops_per_token(&graph.node.iter().collect::<Vec<_>>(), &graph.initializer);
    let float_elems = |ty: i32| -> u64 {
        graph.initializer.iter().filter(|t| t.data_type == ty).fold(0u64, |sum, t| sum.saturating_add(elements(&t.dims)))
    };
    let weights_precision = if float_elems(10) > float_elems(1).max(float_elems(16)) {
        Precision::Fp16
    } else if float_elems(16) > float_elems(1) {
        Precision::Bf16
    } else {
        Precision::Fp32
    };
    let nodes = graph.all_nodes();
    let quantized = super::weights::low_precision(&nodes, &graph.initializer);
    // Older exports list initializers among the inputs too; those are not fed.
    let mut inputs: Vec<IoInfo> = graph.input.iter().filter(|v| !initializers.contains(v.name.as_str())).map(io_info).collect();
    for input in &mut inputs {
        input.structural_use = super::structure::structural_use(&nodes, &input.name);
    }
    Ok(ModelIo {
        inputs,
        outputs: graph.output.iter().map(io_info).collect(),
        opsets: model.opset_import.iter().map(|o| (if o.domain.is_empty() { "ai.onnx".into() } else { o.domain.clone() }, o.version)).collect(),
        position_table_rows,
        word_embedding_rows,
        external_files,
        weights_precision,
        quantized,
        flops_per_token,
    })
}

/// The external data files the initializers name, each with the end of its furthest payload.
fn external_files(graph: &LiteGraph) -> Result<Vec<ExternalFile>> {
    let mut files: Vec<ExternalFile> = Vec::new();
    for t in graph.initializer.iter().filter(|t| t.data_location == Some(1)) {
        let get = |key: &str| t.external_data.iter().find(|e| e.key == key).map(|e| e.value.as_str());
        let fix = "re-export the model (its external data entries are damaged)";
        let Some(location) = get("location").filter(|l| !l.is_empty()) else {
            anyhow::bail!("initializer `{}` is stored externally but names no file (no `location`)\n  fix: {fix}", t.name);
        };
        let rel = Path::new(location);
        if rel.components().any(|c| !matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir)) {
            anyhow::bail!(
                "initializer `{}` is stored in `{location}`, outside the ONNX file's folder; runtimes only read external data beside the model\n  fix: {fix}",
                t.name
            );
        }
        let number = |key: &str| -> Result<u64> {
            get(key).map_or(Ok(0), |v| {
                v.trim().parse::<u64>().map_err(|_| anyhow::anyhow!("initializer `{}`: external data `{key}` = `{v}` is not a byte count\n  fix: {fix}", t.name))
            })
        };
        let end = number("offset")?.checked_add(number("length")?).ok_or_else(|| anyhow::anyhow!("initializer `{}`: external data offset + length overflow\n  fix: {fix}", t.name))?;
        match files.iter_mut().find(|f| f.location == location) {
            Some(f) => f.min_bytes = f.min_bytes.max(end),
            None => files.push(ExternalFile { location: location.to_string(), min_bytes: end, initializer: t.name.clone() }),
        }
    }
    Ok(files)
}

fn io_info(v: &pb::ValueInfoProto) -> IoInfo {
    let (elem_type, dims) = match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => (
            AnyElemType::from_onnx_code(t.elem_type),
            t.shape.as_ref().map(|s| {
                s.dim
                    .iter()
                    .map(|d| match &d.value {
                        // Some exporters write -1 for a dynamic dim.
                        Some(DimValue::DimValue(-1)) => Dim::Unknown,
                        Some(DimValue::DimValue(n)) => Dim::Fixed(*n),
                        Some(DimValue::DimParam(p)) if !p.is_empty() => Dim::Symbol(p.clone()),
                        _ => Dim::Unknown,
                    })
                    .collect()
            }),
        ),
        None => (AnyElemType::Other("unknown".into()), None),
    };
    IoInfo { name: v.name.clone(), elem_type, dims, structural_use: None }
}
