//! What each figure plots, taken from the merged results: averages over the grid that refuse
//! partial data (a failed, skipped or missing cell leaves its point undrawn, marked as such).

use super::{Bar, LinePoint};
use crate::report::data::{Coverage, Merged};
use crate::scenario::ops::{case_text, is_op};


fn model_names<'m>(m: &'m Merged) -> Vec<&'m String> {
    m.models.iter().filter(|x| !is_op(x)).collect()
}

/// Models on the grid of lengths and batch sizes (not run on their own test data).
fn grid_models(m: &Merged) -> Vec<String> {
    m.grid_models()
}

/// The bar of series `s` over a selection, or nothing when the series has no cell there.
fn bar(m: &Merged, s: usize, group: &str, select: impl Fn(&str, usize, usize) -> bool) -> Option<Bar> {
    let (mean_ms, ci95_ms) = match m.coverage(s, select) {
        Coverage::Absent => return None,
        Coverage::Partial => (None, None),
        Coverage::Full(e) => (Some(e.mean_ms), e.ci95_ms),
    };
    Some(Bar { group: group.to_string(), series: m.series[s].label.clone(), mean_ms, ci95_ms })
}

/// Fig. 2: for every model and series, the mean of the model's cell means.
pub fn model_bars(m: &Merged) -> Vec<Bar> {
    let mut out = vec![];
    for model in model_names(m) {
        for s in 0..m.series.len() {
            out.extend(bar(m, s, model, |x, _, _| x == model));
        }
    }
    out
}

/// Fig. 1: every `op:` model is one operation case, the mean over its cells.
pub fn operation_bars(m: &Merged) -> Vec<Bar> {
    let mut out = vec![];
    for model in &m.models {
        let Some(label) = case_text(model).map(str::trim) else { continue };
        for s in 0..m.series.len() {
            out.extend(bar(m, s, label, |x, _, _| x == model));
        }
    }
    out
}

fn points(m: &Merged, xs: &[usize], pick: impl Fn(usize, usize, usize) -> bool) -> Vec<LinePoint> {
    let mut sorted = xs.to_vec();
    sorted.sort_unstable();
    let mut out = vec![];
    for model in &grid_models(m) {
        for s in 0..m.series.len() {
            for &x in &sorted {
                if let Some(b) = bar(m, s, model, |md, ch, bt| md == model && pick(x, ch, bt)) {
                    out.push(LinePoint { model: model.clone(), series: b.series, x: x as f64, mean_ms: b.mean_ms, ci95_ms: b.ci95_ms });
                }
            }
        }
    }
    out
}

/// Fig. 3: per model and series, the mean over batch sizes at each input length.
pub fn length_points(m: &Merged) -> Vec<LinePoint> {
    points(m, &m.chars, |x, ch, _| ch == x)
}

/// Fig. 4: per model and series, the mean over input lengths at each batch size.
pub fn batch_points(m: &Merged) -> Vec<LinePoint> {
    points(m, &m.batches, |x, _, b| b == x)
}
