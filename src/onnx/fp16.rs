//! fp16 copies of models: every float initializer stored as float16 and cast back to float where
//! the graph reads it. The weights are rounded to fp16 (what an fp16 export's weights are), while
//! the arithmetic stays fp32, so every runtime runs the graph whatever kernels it has for float16.

use anyhow::{bail, Context, Result};
use tract_onnx::pb::{ModelProto, NodeProto, TensorProto};
use tract_onnx::prelude::f16;

use super::builder::{attr_int, DataType};

/// Suffix of the float16 initializer that replaces a float one; the original name becomes the
/// output of the Cast that reads it.
pub const SUFFIX: &str = ".fp16";

/// The values of a float initializer, from `raw_data` or `float_data`.
fn floats(t: &TensorProto) -> Result<Vec<f32>> {
    if t.data_location == Some(1) {
        bail!("initializer `{}` lives in an external data file; only models with embedded weights are converted", t.name);
    }
    if !t.raw_data.is_empty() {
        if t.raw_data.len() % 4 != 0 {
            bail!("initializer `{}` holds {} bytes, not a whole number of floats", t.name, t.raw_data.len());
        }
        return Ok(t.raw_data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect());
    }
    Ok(t.float_data.clone())
}

/// A copy of `model` whose float initializers are float16, each read through a Cast to float.
/// Fails on a model without a graph or with weights in external files.
pub fn weights_to_fp16(model: &ModelProto) -> Result<ModelProto> {
    weights_to_fp16_keeping(model, &[])
}

/// Like [`weights_to_fp16`], leaving the initializers named in `keep` float (constants whose
/// rounding would change what the graph computes, such as rotary frequencies).
pub fn weights_to_fp16_keeping(model: &ModelProto, keep: &[&str]) -> Result<ModelProto> {
    let mut out = model.clone();
    let graph = out.graph.as_mut().context("the model holds no graph")?;
    let mut casts = Vec::new();
    for t in graph.initializer.iter_mut().filter(|t| t.data_type == DataType::Float as i32 && !keep.contains(&t.name.as_str())) {
        let values = floats(t)?;
        let name = std::mem::take(&mut t.name);
        t.name = format!("{name}{SUFFIX}");
        t.data_type = DataType::Float16 as i32;
        t.float_data.clear();
        t.raw_data = values.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()).collect();
        casts.push(NodeProto {
            name: format!("Cast_{name}"),
            op_type: "Cast".into(),
            input: vec![t.name.clone()],
            output: vec![name],
            attribute: vec![attr_int("to", DataType::Float as i64)],
            ..Default::default()
        });
    }
    // The casts come first: ONNX wants nodes in an order where every value is defined before use.
    casts.append(&mut graph.node);
    graph.node = casts;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::builder::{self, Dim, GraphBuilder};

    #[test]
    fn float_weights_become_fp16_read_through_a_cast() {
        let mut g = GraphBuilder::new("t");
        let x = g.input("x", DataType::Float, &[Dim::Fixed(1), Dim::Fixed(2)]);
        let w = g.init_f32("w", &[2, 2], vec![1.0, 0.1, -2.5, 65504.0]).unwrap();
        let ids = g.init_i64("ids", &[1], vec![3]).unwrap();
        let y = g.node("MatMul", &[&x, &w], vec![]);
        g.node_named("Gather", &[&y, &ids], vec![attr_int("axis", 1)], &["y"]);
        g.output("y", DataType::Float, &[Dim::Fixed(1), Dim::Fixed(1)]);
        let m = g.finish(17).unwrap();
        let half = weights_to_fp16(&m).unwrap();
        let graph = half.graph.as_ref().unwrap();
        let w16 = graph.initializer.iter().find(|t| t.name == "w.fp16").unwrap();
        assert_eq!(w16.data_type, DataType::Float16 as i32);
        let back: Vec<f32> = w16.raw_data.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()).collect();
        assert_eq!(back[0], 1.0);
        assert!((back[1] - 0.1).abs() < 1e-4 && back[1] != 0.1);
        assert_eq!((back[2], back[3]), (-2.5, 65504.0));
        // Integer initializers stay as they are.
        assert!(graph.initializer.iter().any(|t| t.name == "ids" && t.data_type == DataType::Int64 as i32));
        let first = &graph.node[0];
        assert_eq!((first.op_type.as_str(), first.input[0].as_str(), first.output[0].as_str()), ("Cast", "w.fp16", "w"));
        // The precision xbench reads from the weights.
        let io = crate::models::parse_io(&builder::to_bytes(&half)).unwrap();
        assert_eq!(io.precision().as_str(), "fp16");
        assert_eq!(io.flops_per_token, Some(2 * 4), "the weight is followed through its cast");
    }
}
