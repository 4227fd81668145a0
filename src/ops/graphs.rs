//! One single-operation ONNX graph per case. Float data tensors are graph inputs with fixed dims
//! (xbench's generated-input path feeds them, the same on every runtime); weights and indices are
//! initializers drawn with a seed fixed per case, so indices are always valid.

use anyhow::{Context, Result};
use tract_onnx::pb::ModelProto;

use crate::scenario::ops::{Family, OpCase};
use crate::onnx::builder::{attr_float, attr_int, attr_ints, attr_string, DataType, Dim, GraphBuilder, Rng};

/// The opset every operation graph imports (ScatterND's `max` reduction needs 18).
pub const OPSET: i64 = 18;

/// The name of the output every graph gives (Sort's sorted values included).
pub const OUTPUT: &str = "y";

/// Builds the graph of `case`, after checking its shapes.
pub fn build(case: &OpCase) -> Result<ModelProto> {
    let out_shape = case.check()?;
    let mut g = GraphBuilder::new(&case.name());
    let mut rng = Rng::new(seed(case));
    let s = &case.shapes;
    let fixed = |shape: &[i64]| shape.iter().map(|&d| Dim::Fixed(d)).collect::<Vec<_>>();
    let float_in = |g: &mut GraphBuilder, name: &str, shape: &[i64]| g.input(name, DataType::Float, &fixed(shape));
    let axis = case.axis.unwrap_or(0);
    let mut out_type = DataType::Float;
    use Family::*;
    match case.family {
        Relu | Sigmoid | Softplus | Selu => {
            let x = float_in(&mut g, "x", &s[0]);
            let op = match case.family {
                Relu => "Relu",
                Sigmoid => "Sigmoid",
                Softplus => "Softplus",
                _ => "Selu",
            };
            g.node_named(op, &[&x], vec![], &[OUTPUT]);
        }
        LeakyRelu => {
            let x = float_in(&mut g, "x", &s[0]);
            g.node_named("LeakyRelu", &[&x], vec![attr_float("alpha", 0.01)], &[OUTPUT]);
        }
        PRelu => {
            let x = float_in(&mut g, "x", &s[0]);
            let slope = g.init_f32("slope", &s[1], (0..count(&s[1])).map(|_| 0.5 * rng.next_f32_uniform()).collect())?;
            g.node_named("PRelu", &[&x, &slope], vec![], &[OUTPUT]);
        }
        Softmax => {
            let x = float_in(&mut g, "x", &s[0]);
            g.node_named("Softmax", &[&x], vec![attr_int("axis", axis)], &[OUTPUT]);
        }
        Argmax => {
            let x = float_in(&mut g, "x", &s[0]);
            let attrs = vec![attr_int("axis", axis), attr_int("keepdims", 0), attr_int("select_last_index", 0)];
            g.node_named("ArgMax", &[&x], attrs, &[OUTPUT]);
            out_type = DataType::Int64;
        }
        Sort => {
            let x = float_in(&mut g, "x", &s[0]);
            let k = g.init_i64("k", &[1], vec![s[0][case.axis_index(s[0].len()).unwrap_or(0)]])?;
            let attrs = vec![attr_int("axis", axis), attr_int("largest", 0), attr_int("sorted", 1)];
            g.node_named("TopK", &[&x, &k], attrs, &[OUTPUT, "indices"]);
        }
        Sum => {
            let x = float_in(&mut g, "x", &s[0]);
            let axes = g.init_i64("axes", &[1], vec![axis])?;
            g.node_named("ReduceSum", &[&x, &axes], vec![attr_int("keepdims", 0)], &[OUTPUT]);
        }
        SumAll => {
            let x = float_in(&mut g, "x", &s[0]);
            g.node_named("ReduceSum", &[&x], vec![attr_int("keepdims", 0)], &[OUTPUT]);
        }
        Bce => {
            let x = float_in(&mut g, "logits", &s[0]);
            let t = float_in(&mut g, "targets", &s[1]);
            let soft = g.node("Softplus", &[&x], vec![]);
            let xt = g.node("Mul", &[&x, &t], vec![]);
            let per_element = g.node("Sub", &[&soft, &xt], vec![]);
            g.node_named("ReduceMean", &[&per_element], vec![attr_int("keepdims", 0)], &[OUTPUT]);
        }
        Concat => {
            let a = float_in(&mut g, "a", &s[0]);
            let b = float_in(&mut g, "b", &s[1]);
            g.node_named("Concat", &[&a, &b], vec![attr_int("axis", axis)], &[OUTPUT]);
        }
        MatMul => {
            let a = float_in(&mut g, "a", &s[0]);
            let b = float_in(&mut g, "b", &s[1]);
            g.node_named("MatMul", &[&a, &b], vec![], &[OUTPUT]);
        }
        Linear => {
            let x = float_in(&mut g, "x", &s[0]);
            let (fan_in, out) = (s[1][0], s[1][1]);
            let std = 1.0 / (fan_in as f32).sqrt();
            let w = g.init_f32("weight", &s[1], (0..fan_in * out).map(|_| rng.normal(0.0, std)).collect())?;
            let b = g.init_f32("bias", &s[2], (0..out).map(|_| rng.normal(0.0, std)).collect())?;
            let xw = g.node("MatMul", &[&x, &w], vec![]);
            g.node_named("Add", &[&xw, &b], vec![], &[OUTPUT]);
        }
        Conv1d | Conv2d => {
            // Channels last as written → ONNX's channels first.
            let (x, w) = (&s[0], &s[1]);
            let r = x.len();
            let mut xin = vec![x[0], x[r - 1]];
            xin.extend_from_slice(&x[1..r - 1]);
            let kernel = w[1..r - 1].to_vec();
            let mut wshape = vec![w[0], w[r - 1]];
            wshape.extend_from_slice(&kernel);
            let input = float_in(&mut g, "x", &xin);
            let std = 1.0 / ((w[r - 1] * kernel.iter().product::<i64>()) as f32).sqrt();
            let weight = g.init_f32("weight", &wshape, (0..count(&wshape)).map(|_| rng.normal(0.0, std)).collect())?;
            let attrs = vec![
                attr_ints("kernel_shape", &kernel),
                attr_ints("strides", &vec![1; kernel.len()]),
                attr_ints("pads", &vec![0; 2 * kernel.len()]),
            ];
            g.node_named("Conv", &[&input, &weight], attrs, &[OUTPUT]);
        }
        Gather => {
            let data = float_in(&mut g, "data", &s[0]);
            let indices = g.init_i64("indices", &s[1], row_indices(&mut rng, s[0][0], s[1][0], false))?;
            g.node_named("Gather", &[&data, &indices], vec![attr_int("axis", 0)], &[OUTPUT]);
        }
        Scatter | ScatterSum | ScatterMax => {
            let (rows, written) = (s[0][0], s[1][0]);
            let data = float_in(&mut g, "data", &s[0]);
            let mut update_shape = vec![written];
            update_shape.extend_from_slice(&s[0][1..]);
            let updates = float_in(&mut g, "updates", &update_shape);
            let distinct = case.family == Scatter;
            let indices = g.init_i64("indices", &[written, 1], row_indices(&mut rng, rows, written, distinct))?;
            let reduction = match case.family {
                ScatterSum => "add",
                ScatterMax => "max",
                _ => "none",
            };
            g.node_named("ScatterND", &[&data, &indices, &updates], vec![attr_string("reduction", reduction)], &[OUTPUT]);
        }
    }
    g.output(OUTPUT, out_type, &fixed(&out_shape));
    g.finish(OPSET).with_context(|| format!("operation case `{}`", case.name()))
}

/// `count` row indices in `[0, rows)`. With `distinct`, no index repeats while `count ≤ rows`
/// (a seeded partial shuffle); beyond that, repeats cannot be avoided and indices are uniform.
pub fn row_indices(rng: &mut Rng, rows: i64, count: i64, distinct: bool) -> Vec<i64> {
    if distinct && count <= rows {
        let mut all: Vec<i64> = (0..rows).collect();
        for i in 0..count as usize {
            let j = i + rng.below((rows as usize - i) as u64) as usize;
            all.swap(i, j);
        }
        all.truncate(count as usize);
        all
    } else {
        (0..count).map(|_| rng.below(rows as u64) as i64).collect()
    }
}

fn count(shape: &[i64]) -> i64 {
    shape.iter().product()
}

/// A seed fixed per case (FNV-1a of its name), so a case's initializers do not depend on the list it is in.
fn seed(case: &OpCase) -> u64 {
    case.name().bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// Writes the graph of `case` to `path`.
pub fn write(case: &OpCase, path: &std::path::Path) -> Result<()> {
    crate::onnx::builder::write(&build(case)?, path)
}

/// Writes the graph of `case` into `dir` under a file name made from the case, and returns its path.
pub fn write_into(case: &OpCase, dir: &std::path::Path) -> Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let slug: String = case.text().chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    let path = dir.join(format!("{slug}.onnx"));
    write(case, &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_indices_never_repeat_and_all_stay_in_range() {
        let mut rng = Rng::new(7);
        let idx = row_indices(&mut rng, 64, 64, true);
        let mut sorted = idx.clone();
        sorted.sort();
        assert_eq!(sorted, (0..64).collect::<Vec<_>>());
        let idx = row_indices(&mut rng, 16, 1000, true);
        assert!(idx.iter().all(|&i| (0..16).contains(&i)));
        assert!(OpCase::parse("Scatter dim=64x16 dim=1000").unwrap().has_undefined_writes());
        assert!(!OpCase::parse("Scatter dim=1024x32 dim=1000").unwrap().has_undefined_writes());
        assert!(!OpCase::parse("ScatterSum dim=64x16 dim=1000").unwrap().has_undefined_writes());
    }

    #[test]
    fn every_paper_case_builds_with_fixed_input_dims() {
        for p in crate::scenario::ops::paper_cases() {
            let m = build(&p.case).unwrap_or_else(|e| panic!("{e:#}"));
            let graph = m.graph.as_ref().unwrap();
            assert_eq!(graph.output.len(), 1, "{}", p.case.name());
            assert!(!graph.input.is_empty());
        }
    }
}
