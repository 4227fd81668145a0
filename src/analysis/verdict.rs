//! Sanity verdicts across a (model, runtime) grid: latency must grow with work, and no cell may
//! run faster than the device could possibly compute it. A cell that breaks either rule is
//! flagged suspicious with the reason; nothing is dropped.

use crate::results::{CellRecord, Flag, FlagKind, RunResults, Status};
use crate::scenario::RuntimeId;

/// Work a cell fed: sequences × padded length (tokens processed, padding included); for a model
/// not fed from text, its batch × its length (a cell whose inputs took no length: its batch).
/// A model's own test data sets are not a grid.
fn work(c: &CellRecord) -> Option<f64> {
    match &c.tokens {
        Some(t) => Some((t.tokens_per_row.len() * t.padded_len) as f64),
        None if c.data_set.is_none() && !c.fed.is_empty() => Some((c.batch * c.chars.max(1)) as f64),
        None => None,
    }
    .filter(|w| *w > 0.0)
}

fn describe(c: &CellRecord) -> String {
    match (&c.tokens, c.chars) {
        (Some(_), _) => format!("{} chars × batch {}", c.chars, c.batch),
        (None, 0) => format!("batch {}", c.batch),
        (None, n) => format!("length {n} × batch {}", c.batch),
    }
}

/// Recomputes the suspicious flags of the cells of `model` on `runtime`.
pub fn check_group(r: &mut RunResults, model: &str, runtime: RuntimeId) {
    let all: Vec<usize> = (0..r.cells.len()).collect();
    check_cells(r, &all, model, runtime)
}

/// [`check_group`] over `among`, positions of cells that hold every cell of `model` on `runtime`.
pub(super) fn check_cells(r: &mut RunResults, among: &[usize], model: &str, runtime: RuntimeId) {
    let flops_per_token = r.models.iter().find(|m| m.name == model).and_then(|m| m.flops_per_token).unwrap_or(0) as f64;
    let device = r.runtimes.iter().find(|a| a.runtime == runtime).map_or_else(|| crate::results::DeviceClass::of_builtin(runtime), |a| a.device());
    let limit = device.plausible_flops_per_s(r.machine.cores);
    let idx: Vec<usize> = among.iter().copied().filter(|&i| r.cells[i].model == model && r.cells[i].runtime == runtime).collect();
    for &i in &idx {
        r.cells[i].flags.retain(|f| f.kind != FlagKind::Suspicious);
    }
    let ok: Vec<usize> = idx.iter().copied().filter(|&i| r.cells[i].status == Status::Ok && r.cells[i].summary.is_some() && work(&r.cells[i]).is_some()).collect();
    let mut new_flags: Vec<(usize, String)> = Vec::new();
    let slower = Slower::of(r, &ok);
    for &j in &ok {
        let cj = &r.cells[j];
        let (wj, sj) = (work(cj).unwrap(), cj.summary.as_ref().unwrap());
        // Faster than a cell with at most half the work (the first such cell in the record's
        // order is named; `slower` rules most cells out without looking at each other cell).
        let candidates: &[usize] = if slower.may_exist(wj, sj) { &ok } else { &[] };
        for &i in candidates {
            let ci = &r.cells[i];
            let (wi, si) = (work(ci).unwrap(), ci.summary.as_ref().unwrap());
            // More than 10% faster and beyond both intervals: launch-bound cells of equal time differ by noise.
            if wj >= 2.0 * wi && sj.mean_ci95_ms[1] < si.mean_ci95_ms[0] && sj.mean_ms < 0.9 * si.mean_ms {
                new_flags.push((j, format!(
                    "faster ({:.3} ms) than {} ({:.3} ms), which has {:.1}× less work",
                    sj.mean_ms, describe(ci), si.mean_ms, wj / wi
                )));
                break;
            }
        }
        // Above the device's plausible FLOP rate.
        if flops_per_token > 0.0 {
            let rate = flops_per_token * wj / (sj.min_ms / 1e3);
            if rate > limit {
                new_flags.push((j, format!(
                    "implies {:.1} TFLOP/s ({:.2e} FLOPs in {:.4} ms), above the {:.1} TFLOP/s this device could plausibly reach",
                    rate / 1e12, flops_per_token * wj, sj.min_ms, limit / 1e12
                )));
            }
        }
    }
    // Latency that does not grow at all over a large span of work.
    if let (Some(&small), Some(&large)) = (
        ok.iter().min_by(|&&a, &&b| work(&r.cells[a]).partial_cmp(&work(&r.cells[b])).unwrap()),
        ok.iter().max_by(|&&a, &&b| work(&r.cells[a]).partial_cmp(&work(&r.cells[b])).unwrap()),
    ) {
        let (cs, cl) = (&r.cells[small], &r.cells[large]);
        let ratio = work(cl).unwrap() / work(cs).unwrap();
        let (ss, sl) = (cs.summary.as_ref().unwrap(), cl.summary.as_ref().unwrap());
        if ratio >= 32.0 && sl.mean_ms < 1.1 * ss.mean_ms {
            new_flags.push((large, format!(
                "latency does not grow with work: {:.0}× the work of {} in {:.2}× its time (bound by fixed overhead, or is the work not done?)",
                ratio, describe(cs), sl.mean_ms / ss.mean_ms
            )));
        }
    }
    for (i, f) in new_flags {
        super::add_flag(&mut r.cells[i], Flag::new(FlagKind::Suspicious, f));
    }
}

/// The cells of a grid by work, with the most any cell of at most a given work reaches of the two
/// numbers a faster cell of more work must stay under (the lower bound of the mean's interval,
/// and the mean): where neither bound is passed, no cell with at most half the work is slower.
struct Slower {
    /// Work, ascending, with the running maxima of the interval's lower bound and of the mean.
    rows: Vec<(f64, f64, f64)>,
}

impl Slower {
    fn of(r: &RunResults, ok: &[usize]) -> Slower {
        let mut cells: Vec<(f64, f64, f64)> = ok.iter().map(|&i| (work(&r.cells[i]).unwrap(), r.cells[i].summary.as_ref().unwrap())).map(|(w, s)| (w, s.mean_ci95_ms[0], s.mean_ms)).collect();
        cells.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (mut lo, mut mean) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
        let rows = cells.into_iter().map(|(w, l, m)| {
            (lo, mean) = (lo.max(l), mean.max(m));
            (w, lo, mean)
        });
        Slower { rows: rows.collect() }
    }

    /// Whether a cell with at most half of `work` may be slower than `s` by the rule's margins.
    fn may_exist(&self, work: f64, s: &crate::stats::Summary) -> bool {
        let n = self.rows.partition_point(|row| work >= 2.0 * row.0);
        n > 0 && s.mean_ci95_ms[1] < self.rows[n - 1].1 && s.mean_ms < 0.9 * self.rows[n - 1].2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::TextBatch;
    use crate::stats::summarize;

    fn results(cells: &[(usize, usize, &[f64])], flops_per_token: u64) -> RunResults {
        let json = include_str!("../../tests/data/minimal-results.json");
        let mut r = crate::results::parse_results(json, "minimal-results.json").unwrap();
        r.models[0].flops_per_token = Some(flops_per_token).filter(|&f| f > 0);
        r.machine.cores = 2;
        r.cells = cells
            .iter()
            .enumerate()
            .map(|(k, (batch, len, samples))| CellRecord {
                stalled_ms: Vec::new(),
                index: k,
                model: "m".into(),
                runtime: RuntimeId::ORT_CPU,
                chars: *len,
                batch: *batch,
                data_set: None,
                new_tokens: None,
                status: Status::Ok,
                error: None,
                fed: vec![],
                tokens: Some(TextBatch { tokens_per_row: vec![*len; *batch], padded_len: *len, truncated_rows: 0, tokenize_ms: 0.0 }),
                warmup: 0,
                iterations: samples.len(),
                prepare_ms: None,
                timer_resolution_ms: None,
                samples_ms: samples.to_vec(),
                summary: Some(summarize(samples, *batch, Some(batch * len))),
                agreement: None,
                expected: None,
                sibling_agreement: None,
                flags: vec![],
                timer: "end-to-end".into(),
                gpu_memory_mib: None,
                energy_mj_per_inference: None,
                warmup_ms: None,
                wall_ms: None,
                generation: None,
            })
            .collect();
        r
    }

    fn suspicious(r: &RunResults) -> Vec<usize> {
        r.cells.iter().filter(|c| c.has_flag(FlagKind::Suspicious)).map(|c| c.index).collect()
    }

    #[test]
    fn growing_latency_is_not_flagged() {
        let mut r = results(&[(1, 10, &[1.0, 1.1, 0.9]), (4, 10, &[3.0, 3.1, 2.9]), (32, 100, &[90.0, 91.0, 92.0])], 1000);
        check_group(&mut r, "m", RuntimeId::ORT_CPU);
        assert!(suspicious(&r).is_empty(), "{:?}", r.cells.iter().map(|c| &c.flags).collect::<Vec<_>>());
    }

    #[test]
    fn more_work_in_less_time_is_flagged() {
        let mut r = results(&[(1, 10, &[5.0, 5.1, 4.9]), (4, 10, &[1.0, 1.1, 0.9])], 0);
        check_group(&mut r, "m", RuntimeId::ORT_CPU);
        assert_eq!(suspicious(&r), vec![1]);
    }

    #[test]
    fn flat_latency_over_a_large_span_is_flagged() {
        let mut r = results(&[(1, 10, &[1.0, 1.02, 0.98]), (32, 100, &[1.01, 0.99, 1.0])], 0);
        check_group(&mut r, "m", RuntimeId::ORT_CPU);
        assert_eq!(suspicious(&r), vec![1]);
        let f = r.cells[1].flags[0].to_string();
        assert!(f.starts_with("suspicious: latency does not grow") && f.contains("320×"), "{f}");
    }

    #[test]
    fn cells_not_fed_text_are_judged_by_the_batch_and_length_fed() {
        let mut r = results(&[(1, 1, &[1.0, 1.02, 0.98]), (32, 1, &[1.01, 0.99, 1.0])], 0);
        for c in &mut r.cells {
            (c.tokens, c.chars) = (None, 0);
            c.fed = vec![crate::results::FedInput { name: "x".into(), elem_type: "float32".into(), shape: vec![c.batch, 3], source: "generated".into(), values_by: Default::default(), shape_by: vec![] }];
        }
        check_group(&mut r, "m", RuntimeId::ORT_CPU);
        assert_eq!(suspicious(&r), vec![1]);
        let f = r.cells[1].flags[0].to_string();
        assert!(f.contains("32× the work of batch 1 in"), "{f}");
    }

    #[test]
    fn impossible_flop_rates_are_flagged() {
        // bert-base-like: 170 MFLOP per token, 32 × 128 tokens in 0.41 ms on a 2-core CPU.
        let mut r = results(&[(32, 128, &[0.41, 0.42, 0.40])], 170_000_000);
        check_group(&mut r, "m", RuntimeId::ORT_CPU);
        assert_eq!(suspicious(&r), vec![0]);
        assert!(r.cells[0].flags[0].detail.contains("TFLOP/s"));
        // The check is recomputed, not appended twice.
        check_group(&mut r, "m", RuntimeId::ORT_CPU);
        assert_eq!(r.cells[0].flags.len(), 1);
    }
}
