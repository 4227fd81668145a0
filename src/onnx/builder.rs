//! A small ONNX graph builder: inputs, outputs, initializers, nodes and attributes assembled into
//! a `ModelProto`. Synthetic weights come from the project's deterministic generator (`stats::Rng`).

use std::collections::HashSet;
use std::path::Path;

/// Whether the ONNX file at `path` was written by xbench's own builder (its producer is
/// `xbench`): a test model `make-tiny-bert` may write again. Files over 256 MiB are not read
/// (xbench writes none so large).
pub fn made_by_xbench(path: &Path) -> bool {
    crate::files::read_regular(path, 256 << 20).is_ok_and(|bytes| tract_onnx::pb::ModelProto::decode(&bytes[..]).is_ok_and(|m| m.producer_name == "xbench"))
}

use anyhow::{bail, ensure, Context, Result};
use prost::Message;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_shape_proto::{dimension::Value, Dimension};
use tract_onnx::pb::{
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use tract_onnx::pb::tensor_proto::DataLocation;

pub use tract_onnx::pb::tensor_proto::DataType;

pub use crate::stats::Rng;

/// ONNX IR version written into every model.
pub const IR_VERSION: i64 = 8;

/// One dimension of a graph input or output: a fixed size or a named symbol ("batch").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    /// A known extent.
    Fixed(i64),
    /// A symbolic extent, shared by every dimension carrying the same name.
    Sym(String),
}

impl Dim {
    /// Shorthand for `Dim::Sym(name.to_string())`.
    pub fn sym(name: &str) -> Dim {
        Dim::Sym(name.to_string())
    }
}

impl From<i64> for Dim {
    fn from(v: i64) -> Dim {
        Dim::Fixed(v)
    }
}

/// Accumulates a single ONNX graph; every node output gets a fresh, unique name.
#[derive(Debug, Default)]
pub struct GraphBuilder {
    graph: GraphProto,
    counter: usize,
}

impl GraphBuilder {
    /// Starts an empty graph called `name`.
    pub fn new(name: &str) -> GraphBuilder {
        let mut b = GraphBuilder::default();
        b.graph.name = name.to_string();
        b
    }

    /// Declares a graph input; returns its name for wiring.
    pub fn input(&mut self, name: &str, dtype: DataType, shape: &[Dim]) -> String {
        self.graph.input.push(value_info(name, dtype, shape));
        name.to_string()
    }

    /// Declares a graph output; `name` must be produced by some node (see [`Self::node_named`]).
    pub fn output(&mut self, name: &str, dtype: DataType, shape: &[Dim]) {
        self.graph.output.push(value_info(name, dtype, shape));
    }

    /// Adds a float initializer (stored as little-endian raw data); `dims = &[]` is a scalar.
    pub fn init_f32(&mut self, name: &str, dims: &[i64], data: Vec<f32>) -> Result<String> {
        check_len(name, dims, data.len())?;
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push_init(name, dims, DataType::Float, raw)
    }

    /// Adds an int64 initializer (stored as little-endian raw data); `dims = &[]` is a scalar.
    pub fn init_i64(&mut self, name: &str, dims: &[i64], data: Vec<i64>) -> Result<String> {
        check_len(name, dims, data.len())?;
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push_init(name, dims, DataType::Int64, raw)
    }

    /// Adds an initializer of any element type from its little-endian bytes (e.g. float16 weights).
    pub fn init_raw(&mut self, name: &str, dims: &[i64], dtype: DataType, raw: Vec<u8>) -> Result<String> {
        self.push_init(name, dims, dtype, raw)
    }

    fn push_init(
        &mut self,
        name: &str,
        dims: &[i64],
        dt: DataType,
        raw: Vec<u8>,
    ) -> Result<String> {
        ensure!(
            !self.graph.initializer.iter().any(|t| t.name == name),
            "initializer `{name}` is defined twice"
        );
        self.graph.initializer.push(TensorProto {
            name: name.to_string(),
            dims: dims.to_vec(),
            data_type: dt as i32,
            raw_data: raw,
            ..Default::default()
        });
        Ok(name.to_string())
    }

    /// Adds a single-output node and returns the fresh name of its output.
    pub fn node(&mut self, op_type: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        self.node_multi(op_type, inputs, attrs, 1).remove(0)
    }

    /// Adds a node with `n_outputs` outputs and returns their fresh names in order.
    pub fn node_multi(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
        n_outputs: usize,
    ) -> Vec<String> {
        let id = self.counter;
        let outputs: Vec<String> = (0..n_outputs)
            .map(|k| format!("{op_type}_{id}_out{k}"))
            .collect();
        let refs: Vec<&str> = outputs.iter().map(String::as_str).collect();
        self.node_named(op_type, inputs, attrs, &refs);
        outputs
    }

    /// Adds a node whose outputs carry the given names (e.g. a graph output such as `logits`).
    pub fn node_named(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
        outputs: &[&str],
    ) {
        let id = self.counter;
        self.counter += 1;
        self.graph.node.push(NodeProto {
            name: format!("{op_type}_{id}"),
            op_type: op_type.to_string(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            attribute: attrs,
            ..Default::default()
        });
    }

    /// Checks the wiring and wraps the graph in a model importing the default domain at `opset`.
    ///
    /// Fails, naming the value, if a name is produced twice, if a node reads a value that
    /// nothing defines, or if a graph output is never produced.
    pub fn finish(self, opset: i64) -> Result<ModelProto> {
        let g = &self.graph;
        // An input may share its name with an initializer (the initializer is its default).
        let mut defined: HashSet<&str> = g.input.iter().map(|v| v.name.as_str()).collect();
        defined.extend(g.initializer.iter().map(|t| t.name.as_str()));
        for node in &g.node {
            for i in node.input.iter().filter(|i| !i.is_empty()) {
                ensure!(
                    defined.contains(i.as_str()),
                    "node `{}` reads `{i}`, which no input, initializer or earlier node defines",
                    node.name
                );
            }
            for o in node.output.iter().filter(|o| !o.is_empty()) {
                if !defined.insert(o.as_str()) {
                    bail!(
                        "value `{o}` (output of node `{}`) is defined twice",
                        node.name
                    );
                }
            }
        }
        for o in &g.output {
            ensure!(
                defined.contains(o.name.as_str()),
                "graph output `{}` is never produced",
                o.name
            );
        }
        Ok(ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: opset,
            }],
            producer_name: "xbench".to_string(),
            producer_version: env!("CARGO_PKG_VERSION").to_string(),
            graph: Some(self.graph),
            ..Default::default()
        })
    }
}

fn check_len(name: &str, dims: &[i64], len: usize) -> Result<()> {
    ensure!(
        dims.iter().all(|&d| d >= 0),
        "initializer `{name}` has a negative dimension in {dims:?}"
    );
    let expected: i64 = dims.iter().product();
    ensure!(
        expected as usize == len,
        "initializer `{name}`: shape {dims:?} holds {expected} elements but {len} were given"
    );
    Ok(())
}

fn value_info(name: &str, dtype: DataType, shape: &[Dim]) -> ValueInfoProto {
    let dim = shape
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Fixed(v) => Value::DimValue(*v),
                Dim::Sym(s) => Value::DimParam(s.clone()),
            }),
            ..Default::default()
        })
        .collect();
    let tensor = type_proto::Tensor {
        elem_type: dtype as i32,
        shape: Some(TensorShapeProto { dim }),
    };
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(tensor)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn attr(name: &str, ty: AttributeType) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: ty as i32,
        ..Default::default()
    }
}

/// An integer attribute.
pub fn attr_int(name: &str, v: i64) -> AttributeProto {
    let mut a = attr(name, AttributeType::Int);
    a.i = v;
    a
}

/// An integer-list attribute (e.g. `perm`, `axes`).
pub fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    let mut a = attr(name, AttributeType::Ints);
    a.ints = v.to_vec();
    a
}

/// A float attribute (e.g. `epsilon`).
pub fn attr_float(name: &str, v: f32) -> AttributeProto {
    let mut a = attr(name, AttributeType::Float);
    a.f = v;
    a
}

/// A string attribute (e.g. `mode`).
pub fn attr_string(name: &str, v: &str) -> AttributeProto {
    let mut a = attr(name, AttributeType::String);
    a.s = v.as_bytes().to_vec();
    a
}

/// Serializes a model to ONNX protobuf bytes.
pub fn to_bytes(model: &ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}

/// Writes a model to `path` as an `.onnx` file.
pub fn write(model: &ModelProto, path: &Path) -> Result<()> {
    std::fs::write(path, to_bytes(model))
        .with_context(|| format!("cannot write ONNX model to {}", path.display()))
}

/// Writes a model to `path` with the payloads of its large initializers (`min_bytes` or more of
/// raw data) moved into `data_file`, a file beside it: each such tensor keeps its name, type and
/// dims, and says where its bytes are (`data_location` EXTERNAL, `location`, `offset`, `length`).
/// This is how exporters store models over protobuf's 2 GB limit. Returns the data file's path.
pub fn write_external(model: &ModelProto, path: &Path, data_file: &str, min_bytes: usize) -> Result<std::path::PathBuf> {
    let location = Path::new(data_file);
    ensure!(
        location.components().count() > 0 && location.components().all(|c| matches!(c, std::path::Component::Normal(_))),
        "external data file `{data_file}` must be a relative path inside the model's folder"
    );
    let mut model = model.clone();
    let mut data = Vec::new();
    if let Some(graph) = model.graph.as_mut() {
        for t in graph.initializer.iter_mut().filter(|t| !t.raw_data.is_empty() && t.raw_data.len() >= min_bytes) {
            // Each payload starts on a 64-byte boundary, as ONNX's own writer aligns them.
            data.resize(data.len().next_multiple_of(64), 0);
            let offset = data.len();
            data.append(&mut t.raw_data);
            let entry = |key: &str, value: String| StringStringEntryProto { key: key.to_string(), value };
            t.external_data = vec![
                entry("location", data_file.to_string()),
                entry("offset", offset.to_string()),
                entry("length", (data.len() - offset).to_string()),
            ];
            t.data_location = Some(DataLocation::External as i32);
        }
    }
    let data_path = path.parent().unwrap_or(Path::new("")).join(location);
    if let Some(dir) = data_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&data_path, &data).with_context(|| format!("cannot write external data to {}", data_path.display()))?;
    write(&model, path)?;
    Ok(data_path)
}

