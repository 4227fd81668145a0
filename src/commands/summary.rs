//! The terminal's closing lines of `xbench scenario`: each outcome counted, and where the wall
//! time went.

use xbench::results::{FlagKind, RunResults, Status, WallTime};

/// The terminal summary: each outcome counted.
pub fn summary(r: &RunResults) {
    let count = |s| r.cells.iter().filter(|c| c.status == s).count();
    let disagree = r.cells.iter().filter(|c| c.agreement.as_ref().is_some_and(|a| a.disagrees())).count();
    let expected: Vec<bool> = r.cells.iter().filter_map(|c| c.expected.as_ref()?.within_tolerance).collect();
    let expected = if expected.is_empty() {
        String::new()
    } else {
        format!("{} of {} run on test data match their expected outputs; ", expected.iter().filter(|ok| **ok).count(), expected.len())
    };
    let not_compared = r.cells.iter().filter(|c| c.has_flag(FlagKind::NotCompared)).count();
    let not_compared = if not_compared == 0 { String::new() } else { format!("{not_compared} not compared; ") };
    let departs = departing(r);
    let departs = if departs == 0 { String::new() } else { format!("{departs} depart from results that agree; ") };
    let suspicious = r.cells.iter().filter(|c| c.has_flag(FlagKind::Suspicious)).count();
    let warned = r.cells.iter().filter(|c| !c.flags.is_empty()).count();
    // Models with a sibling (`compare_with`): how many of their compared cells disagree with it.
    let judged: Vec<bool> = r.cells.iter().filter_map(|c| c.sibling_agreement.as_ref()?.within_tolerance).collect();
    let siblings = if judged.is_empty() {
        String::new()
    } else {
        format!("{} of {} compared with their sibling model disagree with it; ", judged.iter().filter(|ok| !**ok).count(), judged.len())
    };
    // A reference that measured nothing compared nothing: "0 disagree" would claim agreement.
    let reference = r.reference_runtime;
    let compared = r.cells.iter().filter(|c| c.agreement.as_ref().is_some_and(|a| a.within_tolerance.is_some() && a.reference == reference.as_str())).count();
    let judged = if compared > 0 {
        format!("{disagree} of {compared} compared disagree with {reference}")
    } else if r.cells.iter().any(|c| c.runtime == reference && c.status == Status::Ok) {
        // No other runtime's cell was compared (one runtime, or none of the others ran): no agreement is claimed.
        format!("none compared with {reference} (no other runtime's cell to compare)")
    } else {
        format!("none compared with {reference}, which ran no cell")
    };
    println!(
        "{} cells: {} ok, {} failed, {} skipped; {judged}; {expected}{not_compared}{departs}{siblings}{} suspicious; {} with warnings (listed in the report)",
        r.cells.len(),
        count(Status::Ok),
        count(Status::Failed),
        count(Status::Skipped),
        suspicious,
        warned
    );
}

/// How many results depart from results that agree: a runtime's cell, or a data set's expected
/// outputs (which flags every cell of that data set, but is one result).
fn departing(r: &RunResults) -> usize {
    let mut results = std::collections::HashSet::new();
    for c in r.cells.iter().filter(|c| c.has_flag(FlagKind::Departs)) {
        let expected = c.flags.iter().any(|f| f.kind == FlagKind::Departs && f.detail.starts_with(xbench::analysis::EXPECTED_DEPART));
        results.insert((c.model.as_str(), c.chars, c.batch, c.data_set, (!expected).then_some(c.runtime)));
    }
    results.len()
}

/// Seconds from milliseconds, one decimal; a time is never shown as -0.0.
fn secs(ms: f64) -> String {
    format!("{:.1}", if ms > 0.0 { ms / 1e3 } else { 0.0 })
}

/// The cells' untimed preparation for their shapes (tract's plan for each new shape), all together
/// and for each runtime that spent a tenth of a second or more on it: its total and median per cell.
fn preparation(r: &RunResults) -> String {
    let ok: Vec<_> = r.cells.iter().filter(|c| c.status == Status::Ok).collect();
    let all: f64 = ok.iter().map(|c| c.prepare_ms.unwrap_or(0.0)).sum();
    let mut runtimes: Vec<_> = ok.iter().map(|c| c.runtime).collect();
    runtimes.sort();
    runtimes.dedup();
    let parts: Vec<String> = runtimes
        .into_iter()
        .filter_map(|rt| {
            let ms: Vec<f64> = ok.iter().filter(|c| c.runtime == rt).map(|c| c.prepare_ms.unwrap_or(0.0)).collect();
            let total: f64 = ms.iter().sum();
            (total >= 100.0).then(|| format!("{rt} {} s, median {:.1} ms a cell", secs(total), xbench::stats::median(&ms)))
        })
        .collect();
    match parts.is_empty() {
        true => format!("cell preparation {} s", secs(all)),
        false => format!("cell preparation {} s ({})", secs(all), parts.join("; ")),
    }
}

/// Where the run's wall time went, one line.
pub fn wall_line(w: &WallTime, r: &RunResults) -> String {
    let ok = r.cells.iter().filter(|c| c.status == Status::Ok);
    let timed = secs(ok.clone().map(|c| c.samples_ms.iter().sum::<f64>()).sum::<f64>());
    let warm = secs(ok.map(|c| c.warmup_ms.unwrap_or(0.0)).sum::<f64>());
    let first_ms: f64 = r.groups.iter().filter_map(|g| g.first_run_ms).sum();
    let (loads, first) = (secs(r.groups.iter().filter_map(|g| g.load_ms).sum::<f64>()), secs(first_ms));
    let loads = match w.loads_ms {
        Some(ms) if first_ms > 0.0 => format!("session loads {loads} s and first runs {first} s, overlapped in {} s", secs(ms)),
        Some(ms) => format!("session loads {loads} s, overlapped in {} s", secs(ms)),
        None => format!("session loads {loads} s"),
    };
    format!(
        "time: {} s in all; set-up {} s, {loads}, {}, warm-ups {warm} s, timed runs {timed} s, report {} s",
        secs(w.total_ms),
        secs(w.setup_ms),
        preparation(r),
        secs(w.report_ms)
    )
}


#[cfg(test)]
mod tests {
    use xbench::results::{parse_results, CellRecord, Status};
    use xbench::scenario::RuntimeId;

    #[test]
    fn preparation_is_told_with_each_runtime_that_spent_a_tenth_of_a_second() {
        let mut r = parse_results(include_str!("../../tests/data/minimal-results.json"), "minimal-results.json").unwrap();
        let cell = r.cells[0].clone();
        let cells = [(RuntimeId::TRACT_CPU, 300.0, Status::Ok), (RuntimeId::TRACT_CPU, 20.0, Status::Ok), (RuntimeId::TRACT_CPU, 10.0, Status::Ok), (RuntimeId::TRACT_CPU, 900.0, Status::Failed), (RuntimeId::ORT_CPU, 0.01, Status::Ok)];
        r.cells = cells.into_iter().map(|(runtime, ms, status)| CellRecord { runtime, status, prepare_ms: Some(ms), ..cell.clone() }).collect();
        assert_eq!(super::preparation(&r), "cell preparation 0.3 s (tract-cpu 0.3 s, median 20.0 ms a cell)");
        r.cells.retain(|c| c.runtime == RuntimeId::ORT_CPU);
        assert_eq!(super::preparation(&r), "cell preparation 0.0 s");
    }
}
