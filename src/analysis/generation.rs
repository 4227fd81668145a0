//! Generation cells against the reference runtime's: the ids generated, step by step, and the
//! logits of the steps whose inputs were the same (a row's steps up to the one where its ids part;
//! after it the two runtimes are fed different tokens, so their logits say nothing).

use crate::results::{Agreement, IdsAgreement, OutputDiff, Parted, SavedOutputs};
use crate::scenario::{Precision, RuntimeId, Tolerance};
use crate::tensor::{Output, Tensor};

fn ids(o: &[Output]) -> Option<ndarray::ArrayView2<'_, i64>> {
    match &o.iter().find(|o| o.name == "ids")?.data {
        Tensor::I64(a) => a.view().into_dimensionality().ok(),
        _ => None,
    }
}

fn logits(o: &[Output]) -> Option<ndarray::ArrayView3<'_, f32>> {
    match &o.iter().find(|o| o.name == "logits")?.data {
        Tensor::F32(a) => a.view().into_dimensionality().ok(),
        _ => None,
    }
}

/// The largest logit minus the second largest, and the largest.
fn margin(row: ndarray::ArrayView1<f32>) -> Option<(f64, f64)> {
    let (mut a, mut b) = (f32::NEG_INFINITY, f32::NEG_INFINITY);
    for &v in row {
        if v > a {
            (a, b) = (v, a);
        } else if v > b {
            b = v;
        }
    }
    b.is_finite().then_some(((a - b) as f64, a as f64))
}

/// Compares `got` with `want` (the reference runtime's saved ids and logits); `Err` says why they
/// cannot be compared.
pub fn compare(got: &SavedOutputs, want: &SavedOutputs, reference: RuntimeId, precision: Precision, tol: Tolerance) -> Result<(IdsAgreement, Agreement), String> {
    let (Some(gi), Some(wi)) = (ids(&got.outputs), ids(&want.outputs)) else { return Err("a saved generation has no ids".into()) };
    if gi.dim() != wi.dim() {
        return Err(format!("ids of shape {:?} against the reference's {:?}", gi.dim(), wi.dim()));
    }
    let (rows, steps) = gi.dim();
    // The first step where each row's ids part (steps when they never do).
    let parts: Vec<usize> = (0..rows).map(|r| (0..steps).find(|&s| gi[[r, s]] != wi[[r, s]]).unwrap_or(steps)).collect();
    let (gl, wl) = (logits(&got.outputs), logits(&want.outputs));
    let logit_rows = match (&gl, &wl) {
        (Some(g), Some(w)) if g.dim() == w.dim() && g.dim().0 == steps => g.dim().1,
        _ => 0,
    };
    let (mut max_abs, mut max_rel, mut compared, mut within) = (0f64, 0f64, 0usize, true);
    if let (Some(g), Some(w)) = (&gl, &wl) {
        for (r, &part) in parts.iter().enumerate().take(logit_rows) {
            // Up to and including the step where the ids part: its inputs were still the same.
            for s in 0..steps.min(part + 1) {
                for (a, b) in g.slice(ndarray::s![s, r, ..]).iter().zip(w.slice(ndarray::s![s, r, ..])) {
                    let d = (*a as f64 - *b as f64).abs();
                    if !d.is_finite() {
                        within = false;
                        continue;
                    }
                    max_abs = max_abs.max(d);
                    if (*b as f64).abs() > tol.abs {
                        max_rel = max_rel.max(d / (*b as f64).abs());
                    }
                    within &= d <= tol.abs + tol.rel * (*b as f64).abs();
                    compared += 1;
                }
            }
        }
    }
    let first = parts.iter().enumerate().filter(|(_, &p)| p < steps).min_by_key(|(_, &p)| p);
    let parted = first.map(|(r, &s)| {
        let at = |l: &Option<ndarray::ArrayView3<f32>>| l.as_ref().filter(|_| r < logit_rows).map(|l| l.slice(ndarray::s![s, r, ..]).to_owned());
        let (g_row, w_row) = (at(&gl), at(&wl));
        let top = w_row.as_ref().and_then(|w| margin(w.view()));
        Parted {
            step: s + 1,
            row: r,
            id: gi[[r, s]],
            reference_id: wi[[r, s]],
            reference_margin: top.map(|(m, _)| m),
            logit_diff: g_row.zip(w_row).map(|(g, w)| g.iter().zip(&w).map(|(a, b)| (*a as f64 - *b as f64).abs()).fold(0.0, f64::max)),
            near_tie: top.map(|(m, t)| m <= 2.0 * (tol.abs + tol.rel * t.abs())),
        }
    });
    let identical = parted.is_none();
    let ids_agree = IdsAgreement { reference, identical, steps, parted, max_abs_logit_diff: max_abs, logit_rows, precision, within: within && compared > 0 };
    let mut problems = Vec::new();
    if let Some(p) = &ids_agree.parted {
        problems.push(parted_words(p, reference));
    }
    if logit_rows == 0 {
        problems.push("no logits were saved to compare".into());
    }
    let verdict = if compared == 0 { None } else { Some(identical && within) };
    let agreement = Agreement {
        reference: reference.as_str().to_string(),
        max_abs,
        max_rel,
        within_tolerance: verdict,
        tolerance: Some(tol),
        precision: Some(precision),
        outputs: vec![OutputDiff { name: "logits".into(), max_abs, max_rel, compared, within_tolerance: (compared > 0).then_some(within) }],
        problems,
    };
    Ok((ids_agree, agreement))
}

/// Where the ids part, in words, for flags and reports.
pub fn parted_words(p: &Parted, reference: RuntimeId) -> String {
    let mut s = format!("generated ids part from {reference}'s at step {} (row {}: {} vs {})", p.step, p.row, p.id, p.reference_id);
    if let Some(m) = p.reference_margin {
        s.push_str(&format!("; {reference}'s top-2 margin there {m:.3e}"));
    }
    if let Some(d) = p.logit_diff {
        s.push_str(&format!(", logits differ by {d:.3e}"));
    }
    match p.near_tie {
        Some(true) => s.push_str(": a near-tie (margin within twice the tolerance), which rounding in a correct runtime can tip"),
        Some(false) => s.push_str(": not a near-tie (margin beyond twice the tolerance): the runtimes compute different things"),
        None => {}
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(ids: &[[i64; 3]], logits: Vec<f32>) -> SavedOutputs {
        let rows = ids.len();
        let ids = ndarray::Array2::from_shape_vec((rows, 3), ids.iter().flatten().copied().collect()).unwrap();
        let logits = ndarray::Array3::from_shape_vec((3, rows, logits.len() / (3 * rows)), logits).unwrap();
        SavedOutputs {
            outputs: vec![Output { name: "ids".into(), data: Tensor::I64(ids.into_dyn()) }, Output { name: "logits".into(), data: Tensor::F32(logits.into_dyn()) }],
            batch: rows,
            seq_len: 1,
            mask: vec![1; rows],
            inputs: vec![],
        }
    }

    #[test]
    fn identical_ids_and_close_logits_agree() {
        let l = vec![0.0, 1.0, 0.5, 2.0, 0.1, 0.2];
        let near: Vec<f32> = l.iter().map(|v| v + 1e-6).collect();
        let (ids, a) = compare(&saved(&[[1, 0, 1]], near), &saved(&[[1, 0, 1]], l), RuntimeId::ORT_CPU, Precision::Fp32, Tolerance::FP32).unwrap();
        assert!(ids.identical && ids.within && ids.parted.is_none(), "{ids:?}");
        assert_eq!((ids.steps, ids.logit_rows), (3, 1));
        assert_eq!(a.within_tolerance, Some(true));
        assert_eq!(a.outputs[0].compared, 6);
    }

    #[test]
    fn parting_ids_name_the_step_and_tell_a_near_tie_from_a_bug() {
        // Step 2 (index 1): the reference picks 0 (logits 1.0 vs 0.9995: margin 5e-4, within
        // twice fp32's tolerance at 1.0), the cell 1, its logits 1e-3 away.
        let want = saved(&[[1, 0, 1]], vec![0.0, 1.0, 1.0, 0.9995, 0.0, 1.0]);
        let got = saved(&[[1, 1, 0]], vec![0.0, 1.0, 0.999, 0.9998, 5.0, 5.0]);
        let (ids, a) = compare(&got, &want, RuntimeId::ORT_CPU, Precision::Fp32, Tolerance::FP32).unwrap();
        let p = ids.parted.as_ref().unwrap();
        assert_eq!((p.step, p.row, p.id, p.reference_id, p.near_tie), (2, 0, 1, 0, Some(true)));
        assert!((p.reference_margin.unwrap() - 5e-4).abs() < 1e-6 && (p.logit_diff.unwrap() - 1e-3).abs() < 1e-6, "{p:?}");
        assert!(parted_words(p, RuntimeId::ORT_CPU).contains("a near-tie"));
        // Step 3's logits are not compared: its inputs differed.
        assert!((ids.max_abs_logit_diff - 1e-3).abs() < 1e-6, "{ids:?}");
        assert_eq!(a.within_tolerance, Some(false));
        assert!(a.problems[0].contains("step 2"));
        // A wide margin is not a near-tie.
        let want = saved(&[[1, 0, 1]], vec![0.0, 1.0, 9.0, 0.0, 0.0, 1.0]);
        let got = saved(&[[1, 1, 1]], vec![0.0, 1.0, 0.0, 9.5, 0.0, 1.0]);
        let (ids, _) = compare(&got, &want, RuntimeId::ORT_CPU, Precision::Fp32, Tolerance::FP32).unwrap();
        assert_eq!(ids.parted.as_ref().unwrap().near_tie, Some(false));
        assert!(parted_words(ids.parted.as_ref().unwrap(), RuntimeId::ORT_CPU).contains("not a near-tie"));
    }

    #[test]
    fn ids_of_other_shapes_are_not_compared() {
        let got = saved(&[[1, 0, 1], [1, 0, 1]], vec![0.0; 12]);
        let want = saved(&[[1, 0, 1]], vec![0.0; 6]);
        assert!(compare(&got, &want, RuntimeId::ORT_CPU, Precision::Fp32, Tolerance::FP32).unwrap_err().contains("shape"));
    }
}
