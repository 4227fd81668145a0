//! Do two runs of the same inputs compute the same thing? Outputs are compared in their own type —
//! floats within a tolerance, integers, booleans and strings exactly — over real (non-padding)
//! token positions only.

use crate::results::{Agreement, OutputDiff, SavedOutputs, SiblingAgreement};
use crate::scenario::{RuntimeId, Tolerance};
use crate::tensor::{Output, Scalar};

/// Compares `got` with `reference`. Outputs shaped [batch, seq_len, …] are compared at real
/// token positions only; padding positions carry no meaning and differ between runtimes.
pub fn compare_outputs(got: &[Output], reference: &[Output], reference_name: &str, batch: usize, seq_len: usize, mask: &[u8], tol: Tolerance) -> Agreement {
    let mut diffs = Vec::new();
    let mut problems = Vec::new();
    for r in reference {
        let Some(g) = got.iter().find(|g| g.name == r.name) else {
            problems.push(format!("output `{}` is missing", r.name));
            continue;
        };
        if g.data.shape() != r.data.shape() {
            problems.push(format!("output `{}` has shape {:?}, the reference {:?}", r.name, g.data.shape(), r.data.shape()));
            continue;
        }
        let (gt, rt) = (g.data.elem_type(), r.data.elem_type());
        if gt != rt && !(gt.is_float() && rt.is_float()) {
            problems.push(format!("output `{}` is {gt}, the reference's is {rt}", r.name));
            continue;
        }
        let shape = r.data.shape();
        let per_position = shape.len() >= 2 && shape[0] == batch && shape[1] == seq_len && mask.len() == batch * seq_len;
        let inner: usize = if per_position { shape[2..].iter().product() } else { 1 };
        let (mut max_abs, mut max_rel, mut compared, mut ok) = (0f64, 0f64, 0usize, true);
        for (i, (a, b)) in g.data.scalars().into_iter().zip(r.data.scalars()).enumerate() {
            if per_position && mask[i / inner] == 0 {
                continue;
            }
            compared += 1;
            let (a, b) = match (a, b) {
                (Scalar::Float(a), Scalar::Float(b)) => (a, b),
                (Scalar::Int(a), Scalar::Int(b)) => {
                    let d = (a - b).unsigned_abs() as f64;
                    max_abs = max_abs.max(d);
                    ok &= d == 0.0;
                    continue;
                }
                (a, b) => {
                    // Booleans and strings: equal or not.
                    if a != b {
                        max_abs = 1.0;
                        ok = false;
                    }
                    continue;
                }
            };
            if a == b || (a.is_nan() && b.is_nan()) {
                continue;
            }
            let d = (a - b).abs();
            if !d.is_finite() {
                ok = false;
                max_abs = f64::INFINITY;
                continue;
            }
            max_abs = max_abs.max(d);
            if b.abs() > tol.abs {
                max_rel = max_rel.max(d / b.abs());
            }
            if d > tol.abs + tol.rel * b.abs() {
                ok = false;
            }
        }
        diffs.push(OutputDiff { name: r.name.clone(), max_abs, max_rel, compared, within_tolerance: (compared > 0).then_some(ok) });
    }
    // Outputs that do not match up disagree; outputs with no element to compare say nothing.
    let within_tolerance = if !problems.is_empty() || diffs.iter().any(|d| d.within_tolerance == Some(false)) {
        Some(false)
    } else if diffs.iter().all(|d| d.compared == 0) {
        None
    } else {
        Some(true)
    };
    Agreement {
        reference: reference_name.to_string(),
        max_abs: diffs.iter().map(|d| d.max_abs).fold(0.0, f64::max),
        max_rel: diffs.iter().map(|d| d.max_rel).fold(0.0, f64::max),
        within_tolerance,
        tolerance: Some(tol),
        precision: None,
        outputs: diffs,
        problems,
    }
}

/// How the inputs of two saved cells differ, if they do.
pub fn feed_difference(a: &SavedOutputs, b: &SavedOutputs) -> Option<String> {
    if (a.batch, a.seq_len) != (b.batch, b.seq_len) {
        return Some(format!("{}×{} tokens against the sibling's {}×{}", a.batch, a.seq_len, b.batch, b.seq_len));
    }
    if a.mask != b.mask {
        let real = |m: &[u8]| m.iter().filter(|&&v| v != 0).count();
        return Some(format!("the real-token masks differ ({} against {} real tokens)", real(&a.mask), real(&b.mask)));
    }
    let differing: Vec<String> = a
        .inputs
        .iter()
        .filter(|(name, d)| b.inputs.iter().any(|(n, e)| n == name && e != d))
        .map(|(name, _)| format!("`{name}`"))
        .collect();
    if !differing.is_empty() {
        return Some(format!("input {} holds other values", differing.join(", ")));
    }
    None
}

/// Compares `got` with the sibling's `want`, after checking that both were fed the same inputs.
pub fn compare_siblings(got: &SavedOutputs, want: &SavedOutputs, sibling: &str, runtime: RuntimeId, fallback: Option<String>, tol: Tolerance) -> SiblingAgreement {
    let mut s = SiblingAgreement::not_compared(sibling, runtime, tol, Vec::new());
    s.fallback = fallback;
    if let Some(why) = feed_difference(got, want) {
        s.problems.push(format!("not compared: the inputs differ ({why})"));
        return s;
    }
    let a = compare_outputs(&got.outputs, &want.outputs, runtime.as_str(), got.batch, got.seq_len, &got.mask, tol);
    s.max_abs = Some(a.max_abs).filter(|v| v.is_finite() && a.within_tolerance.is_some());
    s.max_rel = Some(a.max_rel).filter(|v| v.is_finite() && a.within_tolerance.is_some());
    s.within_tolerance = a.within_tolerance;
    s.outputs = a.outputs;
    s.problems = a.problems;
    s
}

#[cfg(test)]
mod tests {
    use ndarray::{ArrayD, IxDyn};

    use super::*;
    use crate::tensor::Tensor;

    fn out(name: &str, shape: &[usize], data: Vec<f32>) -> Output {
        Output { name: name.into(), data: Tensor::F32(ArrayD::from_shape_vec(IxDyn(shape), data).unwrap()) }
    }

    #[test]
    fn padding_positions_are_ignored() {
        // batch 1, seq 2, hidden 2; second position is padding and differs wildly.
        let r = [out("h", &[1, 2, 2], vec![1.0, 2.0, 3.0, 4.0])];
        let g = [out("h", &[1, 2, 2], vec![1.00001, 2.0, 99.0, -99.0])];
        let a = compare_outputs(&g, &r, "ort-cpu", 1, 2, &[1, 0], Tolerance::default());
        assert!(a.agrees(), "{a:?}");
        assert_eq!(a.outputs[0].compared, 2);
        let a = compare_outputs(&g, &r, "ort-cpu", 1, 2, &[1, 1], Tolerance::default());
        assert!(a.disagrees());
        assert!((a.max_abs - 103.0).abs() < 1e-9);
    }

    #[test]
    fn wrong_shape_or_missing_output_is_a_problem() {
        let r = [out("h", &[2], vec![1.0, 2.0]), out("p", &[1], vec![0.0])];
        let g = [out("h", &[1, 2], vec![1.0, 2.0])];
        let a = compare_outputs(&g, &r, "ort-cpu", 1, 1, &[1], Tolerance::default());
        assert!(a.disagrees());
        assert_eq!(a.problems.len(), 2);
    }

    #[test]
    fn integers_booleans_and_strings_compare_exactly_and_infinities_equal_themselves() {
        let ints = |v: Vec<i64>| Output { name: "i".into(), data: Tensor::I64(ArrayD::from_shape_vec(IxDyn(&[v.len()]), v).unwrap()) };
        let loose = Tolerance { abs: 10.0, rel: 10.0 };
        assert!(compare_outputs(&[ints(vec![1, 2])], &[ints(vec![1, 2])], "ort-cpu", 1, 1, &[1], loose).agrees());
        let a = compare_outputs(&[ints(vec![1, 3])], &[ints(vec![1, 2])], "ort-cpu", 1, 1, &[1], loose);
        assert!(a.disagrees() && a.max_abs == 1.0, "exact, whatever the tolerance: {a:?}");
        let strs = |v: Vec<&str>| Output { name: "s".into(), data: Tensor::Str(ArrayD::from_shape_vec(IxDyn(&[v.len()]), v.into_iter().map(String::from).collect()).unwrap()) };
        assert!(compare_outputs(&[strs(vec!["a", "b"])], &[strs(vec!["a", "c"])], "ort-cpu", 1, 1, &[1], loose).disagrees());
        let a = compare_outputs(&[out("f", &[2], vec![f32::INFINITY, f32::NAN])], &[out("f", &[2], vec![f32::INFINITY, f32::NAN])], "ort-cpu", 1, 1, &[1], Tolerance::default());
        assert!(a.agrees() && a.max_abs == 0.0, "{a:?}");
        let a = compare_outputs(&[ints(vec![1, 2])], &[out("i", &[2], vec![1.0, 2.0])], "ort-cpu", 1, 1, &[1], loose);
        assert!(a.disagrees() && a.problems[0].contains("int64") && a.problems[0].contains("float32"), "{a:?}");
    }

    #[test]
    fn empty_outputs_are_not_compared_never_agreement() {
        // TopK with k = 0: both outputs empty.
        let empty = [out("values", &[3, 0], vec![]), out("indices", &[3, 0], vec![])];
        let a = compare_outputs(&empty, &empty, "ort-cpu", 1, 1, &[1], Tolerance::default());
        assert_eq!((a.within_tolerance, a.outputs[0].compared, a.outputs[0].within_tolerance), (None, 0, None), "{a:?}");
        assert!(!a.agrees() && !a.disagrees());
        // One empty output beside a compared one: the compared one decides.
        let mixed = [out("values", &[3, 0], vec![]), out("h", &[1], vec![1.0])];
        assert!(compare_outputs(&mixed, &mixed, "ort-cpu", 1, 1, &[1], Tolerance::default()).agrees());
    }

    fn saved(ids: Tensor, mask: Vec<u8>) -> SavedOutputs {
        let (batch, seq_len) = (ids.shape()[0], ids.shape()[1]);
        SavedOutputs { outputs: vec![out("h", &[1, 3, 1], vec![1.0, 2.0, 3.0])], batch, seq_len, mask, inputs: vec![("input_ids".into(), ids.digest())] }
    }

    #[test]
    fn saved_inputs_tell_feeds_apart() {
        let ids = |v: Vec<i64>| Tensor::I64(ArrayD::from_shape_vec(IxDyn(&[1, 3]), v).unwrap());
        let a = saved(ids(vec![101, 7, 0]), vec![1, 1, 0]);
        // The same ids as int32 are the same feed.
        let ids32 = Tensor::I32(ArrayD::from_shape_vec(IxDyn(&[1, 3]), vec![101, 7, 0]).unwrap());
        assert_eq!(feed_difference(&a, &saved(ids32, vec![1, 1, 0])), None);
        let d = feed_difference(&a, &saved(ids(vec![101, 8, 0]), vec![1, 1, 0])).unwrap();
        assert!(d.contains("`input_ids`"), "{d}");
        let d = feed_difference(&a, &saved(ids(vec![101, 7, 0]), vec![1, 0, 0])).unwrap();
        assert!(d.contains("masks differ (2 against 1 real tokens)"), "{d}");
    }

    #[test]
    fn a_non_finite_difference_survives_a_json_round_trip() {
        let r = [out("h", &[1, 1, 2], vec![1.0, 2.0])];
        let g = [out("h", &[1, 1, 2], vec![f32::NAN, 2.0])];
        let a = compare_outputs(&g, &r, "ort-cpu", 1, 1, &[1], Tolerance::default());
        assert!(a.disagrees() && a.max_abs.is_infinite());
        let back: Agreement = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert!(back.max_abs.is_infinite() && back.disagrees());
        assert!(back.outputs[0].max_abs.is_infinite());
    }
}
