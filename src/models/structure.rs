//! Which graph inputs decide the structure of the computation rather than being computed on: a
//! shape, a size, an index, an axis, a count, a condition. Values made up for such an input would
//! change what the model computes, so xbench asks the user for them (see `inputs::fill`).

use super::onnx_meta::LiteNode;

/// Operator inputs whose values decide the structure of the computation: a shape, a size, an
/// index, an axis, a count, a condition. Slots are input positions; `None` means every input.
const STRUCTURAL: &[(&str, Option<&[usize]>, &str)] = &[
    ("Reshape", Some(&[1]), "the shape"),
    ("Expand", Some(&[1]), "the shape"),
    ("ConstantOfShape", Some(&[0]), "the shape"),
    ("Tile", Some(&[1]), "the repeats"),
    ("Slice", Some(&[1, 2, 3, 4]), "the starts, ends, axes or steps"),
    ("Pad", Some(&[1, 3]), "the pads or axes"),
    ("Resize", Some(&[1, 2, 3]), "the roi, scales or sizes"),
    ("Upsample", Some(&[1]), "the scales"),
    ("Range", None, "the start, limit or delta"),
    ("OneHot", Some(&[0]), "the indices"),
    ("OneHot", Some(&[1]), "the depth"),
    // Comparing values for equality selects (a one-hot made against a range of ids, a mask).
    ("Equal", None, "compared for equality"),
    ("TopK", Some(&[1]), "k"),
    ("Squeeze", Some(&[1]), "the axes"),
    ("Unsqueeze", Some(&[1]), "the axes"),
    ("Split", Some(&[1]), "the split sizes"),
    ("ReduceSum", Some(&[1]), "the axes"),
    ("ReduceMean", Some(&[1]), "the axes"),
    ("ReduceMax", Some(&[1]), "the axes"),
    ("ReduceMin", Some(&[1]), "the axes"),
    ("ReduceProd", Some(&[1]), "the axes"),
    ("ReduceL1", Some(&[1]), "the axes"),
    ("ReduceL2", Some(&[1]), "the axes"),
    ("ReduceLogSum", Some(&[1]), "the axes"),
    ("ReduceLogSumExp", Some(&[1]), "the axes"),
    ("ReduceSumSquare", Some(&[1]), "the axes"),
    ("CumSum", Some(&[1]), "the axis"),
    ("Trilu", Some(&[1]), "k"),
    ("Gather", Some(&[1]), "the indices"),
    ("GatherElements", Some(&[1]), "the indices"),
    ("GatherND", Some(&[1]), "the indices"),
    ("ScatterElements", Some(&[1]), "the indices"),
    ("ScatterND", Some(&[1]), "the indices"),
    ("Scatter", Some(&[1]), "the indices"),
    ("Where", Some(&[0]), "the condition"),
    ("Compress", Some(&[1]), "the condition"),
    ("If", Some(&[0]), "the condition"),
    ("Loop", Some(&[0, 1]), "the trip count or condition"),
    ("NonMaxSuppression", Some(&[2, 3, 4]), "the box count or thresholds"),
    ("CenterCropPad", Some(&[1]), "the shape"),
    ("Col2Im", Some(&[1, 2]), "the image or block shape"),
    ("RandomNormalLike", None, "the shape"),
];

/// Operators that pass values on unchanged in meaning (so a structural use after them counts):
/// their input 0 (every input of a Concat) is moved, repeated or cast, not computed on.
const PASS_THROUGH: &[&str] = &["Cast", "Identity", "Squeeze", "Unsqueeze", "Reshape", "Flatten", "Concat", "CastLike", "Expand", "Tile", "Transpose", "Slice", "Gather", "GatherElements", "Split"];

/// Where the values of graph input `name` first decide the computation's structure, following
/// them through casts and reshapes, into subgraphs too (which read outer values by name).
pub(super) fn structural_use(nodes: &[&LiteNode], name: &str) -> Option<String> {
    let mut values = vec![name.to_string()];
    let mut seen = std::collections::HashSet::new();
    while let Some(v) = values.pop() {
        if !seen.insert(v.clone()) {
            continue;
        }
        for n in nodes {
            for (slot, input) in n.input.iter().enumerate() {
                if *input != v {
                    continue;
                }
                let op = n.op_type.as_str();
                if let Some((_, _, what)) = STRUCTURAL.iter().find(|(o, slots, _)| *o == op && slots.map_or(true, |s| s.contains(&slot))) {
                    let node = if n.name.is_empty() { String::new() } else { format!(" `{}`", n.name) };
                    return Some(format!("{what} (input {slot}) of {op}{node}"));
                }
                if PASS_THROUGH.contains(&op) && (slot == 0 || op == "Concat") {
                    values.extend(n.output.iter().cloned());
                }
            }
        }
    }
    None
}


#[cfg(test)]
mod tests {
    use prost::Message;
    use tract_onnx::pb::{attribute_proto::AttributeType, type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TypeProto, ValueInfoProto};

    fn value(name: &str, elem_type: i32) -> ValueInfoProto {
        let tensor = type_proto::Tensor { elem_type, shape: None };
        ValueInfoProto { name: name.into(), r#type: Some(TypeProto { value: Some(type_proto::Value::TensorType(tensor)), ..Default::default() }), ..Default::default() }
    }

    fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
        NodeProto { op_type: op.into(), name: name.into(), input: inputs.iter().map(|s| s.to_string()).collect(), output: outputs.iter().map(|s| s.to_string()).collect(), ..Default::default() }
    }

    /// Inputs `x` (data), `shape` (cast, then a Reshape's shape), `k` (read inside an If branch by
    /// a TopK), `flag` (the If's condition).
    fn model() -> Vec<u8> {
        let branch = GraphProto { node: vec![node("TopK", "top", &["x", "k"], &["v", "i"])], output: vec![value("v", 1)], ..Default::default() };
        let then = AttributeProto { name: "then_branch".into(), r#type: AttributeType::Graph as i32, g: Some(branch.clone()), ..Default::default() };
        let other = AttributeProto { name: "else_branch".into(), r#type: AttributeType::Graph as i32, g: Some(branch), ..Default::default() };
        let mut r#if = node("If", "choose", &["flag"], &["y"]);
        r#if.attribute = vec![then, other];
        let graph = GraphProto {
            node: vec![node("Cast", "c", &["shape"], &["s64"]), node("Reshape", "r", &["x", "s64"], &["z"]), r#if],
            input: vec![value("x", 1), value("shape", 6), value("k", 7), value("flag", 9)],
            output: vec![value("y", 1), value("z", 1)],
            ..Default::default()
        };
        let m = ModelProto { ir_version: 8, graph: Some(graph), opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 17 }], ..Default::default() };
        m.encode_to_vec()
    }

    #[test]
    fn shapes_indices_and_conditions_are_found_through_casts_and_subgraphs() {
        let io = crate::models::parse_io(&model()).unwrap();
        let uses: Vec<(&str, Option<&str>)> = io.inputs.iter().map(|i| (i.name.as_str(), i.structural_use.as_deref())).collect();
        assert_eq!(
            uses,
            [
                ("x", None),
                ("shape", Some("the shape (input 1) of Reshape `r`")),
                ("k", Some("k (input 1) of TopK `top`")),
                ("flag", Some("the condition (input 0) of If `choose`")),
            ]
        );
    }
}
