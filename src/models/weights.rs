//! What a graph's weights say about the arithmetic it computes in: quantized to 8 or 4 bits or
//! stored as 8-bit floats — by quantized operators, or weight-only (integer initializers turned
//! into floats by `Cast` → `Mul` [→ `Sub`] or `DequantizeLinear` before a `MatMul`, `Gemm` or
//! `Conv`) — and the FLOPs per token of its weight matrix products, where it lets xbench count them.

use std::collections::{HashMap, HashSet};

use super::onnx_meta::{LiteNode, LiteTensor};
use crate::scenario::Precision;

/// Operators that compute in 8-bit integers (besides every `QLinear*`).
const QUANTIZED_OPS: &[&str] = &["QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger"];

/// Operators whose output is still the weight they are given (in another type, scale or layout).
const WEIGHT_PATH: &[&str] = &["Cast", "CastLike", "Mul", "Sub", "Add", "Div", "DequantizeLinear", "Transpose", "Reshape", "Identity", "Unsqueeze", "Squeeze"];

/// Operators that compute with a weight.
const WEIGHT_USERS: &[&str] = &["MatMul", "Gemm", "Conv", "ConvTranspose"];

/// ONNX element types: INT8, UINT8, UINT4, INT4, and the four FLOAT8 types.
const INT8_TYPES: &[i32] = &[2, 3];
const INT4_TYPES: &[i32] = &[21, 22];
const FP8_TYPES: &[i32] = &[17, 18, 19, 20];

/// The low precision a graph's weights are stored or computed in: `int4` (`MatMulNBits`, int4
/// initializers), `fp8` (8-bit float initializers), `int8` (quantized operators, or int8
/// initializers dequantized into a `MatMul`, `Gemm` or `Conv`), else `None`.
pub(super) fn low_precision(nodes: &[&LiteNode], initializers: &[LiteTensor]) -> Option<Precision> {
    let of_type = |types: &[i32]| initializers.iter().any(|t| types.contains(&t.data_type));
    if nodes.iter().any(|n| n.op_type == "MatMulNBits") || of_type(INT4_TYPES) {
        return Some(Precision::Int4);
    }
    if of_type(FP8_TYPES) {
        return Some(Precision::Fp8);
    }
    let quantized_op = nodes.iter().any(|n| QUANTIZED_OPS.contains(&n.op_type.as_str()) || n.op_type.starts_with("QLinear"));
    let int8_weights: Vec<&str> = initializers.iter().filter(|t| INT8_TYPES.contains(&t.data_type)).map(|t| t.name.as_str()).collect();
    let constant = constants(nodes, initializers);
    (quantized_op || int8_weights.iter().any(|w| reaches_weight_user(nodes, &constant, w))).then_some(Precision::Int8)
}

/// Whether initializer `name` flows, through ops of constants alone that keep it a weight (a
/// cast, a scale, a zero point), into an operator that computes with it.
fn reaches_weight_user(nodes: &[&LiteNode], constant: &HashSet<&str>, name: &str) -> bool {
    let mut values = vec![name.to_string()];
    let mut seen = HashSet::new();
    while let Some(v) = values.pop() {
        if !seen.insert(v.clone()) {
            continue;
        }
        for n in nodes.iter().filter(|n| n.input.contains(&v)) {
            if WEIGHT_USERS.contains(&n.op_type.as_str()) {
                return true;
            }
            if WEIGHT_PATH.contains(&n.op_type.as_str()) && all_constant(n, constant) {
                values.extend(n.output.iter().cloned());
            }
        }
    }
    false
}

fn all_constant(n: &LiteNode, constant: &HashSet<&str>) -> bool {
    !n.input.is_empty() && n.input.iter().all(|i| i.is_empty() || constant.contains(i.as_str()))
}

/// Initializers, and what ops that keep a weight make of constants alone, in graph order.
fn constants<'a>(nodes: &[&'a LiteNode], initializers: &'a [LiteTensor]) -> HashSet<&'a str> {
    let mut constant: HashSet<&str> = initializers.iter().map(|t| t.name.as_str()).collect();
    for n in nodes {
        if n.op_type == "Constant" || (WEIGHT_PATH.contains(&n.op_type.as_str()) && all_constant(n, &constant)) {
            constant.extend(n.output.iter().map(|o| o.as_str()));
        }
    }
    constant
}

/// 2·K·N summed over matrix products with a weight matrix [K, N] (`MatMul`, `Gemm`, and
/// `MatMulNBits` by its K and N): the FLOPs every token costs at least. `None` where the graph
/// holds none xbench can count (convolutions, recurrent layers, products of activations): unknown,
/// not 0.
pub(super) fn flops_per_token(nodes: &[&LiteNode], initializers: &[LiteTensor]) -> Option<u64> {
    // Weight matrices, followed through what ops of constants alone make of them (a cast, a
    // transpose, a dequantized weight).
    let constant = constants(nodes, initializers);
    let mut weights: HashMap<&str, u64> = initializers.iter().filter(|t| t.dims.len() == 2).map(|t| (t.name.as_str(), elements(&t.dims))).collect();
    for n in nodes.iter().filter(|n| WEIGHT_PATH.contains(&n.op_type.as_str()) && all_constant(n, &constant)) {
        if let Some(size) = n.input.iter().find_map(|i| weights.get(i.as_str()).copied()) {
            weights.extend(n.output.iter().map(|o| (o.as_str(), size)));
        }
    }
    let mut total = 0u64;
    for n in nodes {
        let size = match n.op_type.as_str() {
            "MatMul" | "Gemm" => n.input.get(1).and_then(|w| weights.get(w.as_str())).copied(),
            "MatMulNBits" => match (n.int_attribute("K"), n.int_attribute("N")) {
                (Some(k), Some(m)) if k > 0 && m > 0 => Some((k as u64).saturating_mul(m as u64)),
                _ => None,
            },
            _ => None,
        };
        if let Some(size) = size {
            total = total.saturating_add(size.saturating_mul(2));
        }
    }
    (total > 0).then_some(total)
}

/// Elements of a tensor of `dims`, kept at `u64::MAX` when a file claims more than `u64` holds.
pub(super) fn elements(dims: &[i64]) -> u64 {
    dims.iter().fold(1u64, |n, &d| n.saturating_mul(d.max(0) as u64))
}
