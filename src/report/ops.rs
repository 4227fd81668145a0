//! Tables of the operation benchmark, laid out like the paper's appendices A (every case) and B
//! (averaged per operation), with the paper's published times beside xbench's; from results alone.

use super::doc::Block;
use super::speedup;
use crate::results::{CellRecord, Engine, RunResults, Status};
use crate::scenario::ops::{self, Family, OpCase, PAPER_COLUMNS};
use crate::scenario::RuntimeId;

/// A latency in ms with precision to match its size (the smallest operations take microseconds).
/// Mean of the cells' means; `None` when any of them failed, was skipped or is missing.
fn mean_of(cells: &[&CellRecord]) -> Option<f64> {
    if cells.is_empty() || cells.iter().any(|c| c.status != Status::Ok || c.summary.is_none()) {
        return None;
    }
    Some(cells.iter().map(|c| c.summary.as_ref().unwrap().mean_ms).sum::<f64>() / cells.len() as f64)
}

fn ms(v: f64) -> String {
    match v {
        v if v >= 100.0 => format!("{v:.1}"),
        v if v >= 0.1 => format!("{v:.2}"),
        v if v >= 0.01 => format!("{v:.3}"),
        v => format!("{v:.4}"),
    }
}

fn cell_text(c: Option<&CellRecord>) -> String {
    let Some(c) = c else { return "—".into() };
    match (c.status, &c.summary) {
        (Status::Ok, Some(s)) => {
            let mut t = format!("{} [{}, {}]", ms(s.mean_ms), ms(s.mean_ci95_ms[0]), ms(s.mean_ci95_ms[1]));
            if c.agreement.as_ref().is_some_and(|a| a.disagrees()) {
                t.push_str(" ✗");
            } else if !c.flags.is_empty() {
                t.push_str(" ⚠");
            }
            t
        }
        (Status::Failed, _) => "failed".into(),
        (Status::Skipped, _) => "skipped".into(),
        _ => "pending".into(),
    }
}

fn mean_ms(c: Option<&CellRecord>) -> Option<f64> {
    c.filter(|c| c.status == Status::Ok).and_then(|c| c.summary.as_ref()).map(|s| s.mean_ms)
}

/// Column headings: the row label, one per runtime, speedups over the first, then `extra`.
fn head(label: &str, rts: &[RuntimeId], extra: &[&str]) -> Vec<String> {
    let mut cols = vec![label.to_string()];
    cols.extend(rts.iter().map(|r| format!("{r} (ms)")));
    cols.extend(rts.iter().skip(1).map(|r| format!("{r} vs {}", rts[0])));
    cols.extend(extra.iter().map(|s| s.to_string()));
    cols
}

fn speedups(means: &[Option<f64>]) -> Vec<String> {
    means.iter().skip(1).map(|m| match (means[0], m) {
        (Some(b), Some(o)) => speedup(b, *o),
        _ => "—".into(),
    }).collect()
}

fn published_text(p: Option<[f64; 4]>) -> String {
    // Two decimals, as the paper publishes them.
    p.map(|v| v.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>().join(" · ")).unwrap_or_else(|| "—".into())
}

/// The operation tables when the run holds operation cases; nothing otherwise.
pub(super) fn blocks(r: &RunResults) -> Vec<Block> {
    let cells: Vec<&CellRecord> = r.cells.iter().filter(|c| ops::is_op(&c.model)).collect();
    if cells.is_empty() {
        return Vec::new();
    }
    let mut names: Vec<&str> = Vec::new();
    let mut rts: Vec<RuntimeId> = Vec::new();
    for c in &cells {
        if !names.contains(&c.model.as_str()) {
            names.push(&c.model);
        }
        if !rts.contains(&c.runtime) {
            rts.push(c.runtime);
        }
    }
    let cases: Vec<(&str, Option<OpCase>)> = names.iter().map(|n| (*n, OpCase::parse(n).ok())).collect();
    let find = |name: &str, rt: RuntimeId| cells.iter().copied().find(|c| c.model == name && c.runtime == rt);
    let paper_head = format!("paper (ms): {}", PAPER_COLUMNS.join(" · "));
    let mut out = vec![
        Block::Heading("Operations, every case (paper appendix A)".into()),
        Block::Para("Mean latency of one single-operation ONNX graph, end to end, with its 95% confidence interval; `A vs B` = mean(B) / mean(A) − 1. The paper's published times are shown for scale only: other hardware, other frameworks, and timers that did not always wait for the work (see the notes below the tables).".into()),
    ];
    let mut rows = Vec::new();
    for (name, case) in &cases {
        let row: Vec<Option<&CellRecord>> = rts.iter().map(|rt| find(name, *rt)).collect();
        let mut cols = vec![ops::case_text(name).unwrap_or(name).to_string()];
        cols.extend(row.iter().map(|c| cell_text(*c)));
        cols.extend(speedups(&row.iter().map(|c| mean_ms(*c)).collect::<Vec<_>>()));
        cols.push(published_text(case.as_ref().and_then(ops::published)));
        rows.push(cols);
    }
    out.push(Block::Table { head: head("operation / shapes", &rts, &[&paper_head]), rows });

    out.push(Block::Heading("Operations, averaged per operation (paper appendix B)".into()));
    out.push(Block::Para("Means of the case means above; — where a case of the operation failed or was skipped on that runtime. The paper's column averages the same cases.".into()));
    let mut families: Vec<Family> = cases.iter().filter_map(|(_, c)| c.as_ref().map(|c| c.family)).collect();
    families.sort();
    families.dedup();
    let mut rows = Vec::new();
    for f in &families {
        let members: Vec<&(&str, Option<OpCase>)> = cases.iter().filter(|(_, c)| c.as_ref().is_some_and(|c| c.family == *f)).collect();
        let means: Vec<Option<f64>> = rts.iter().map(|rt| mean_of(&members.iter().filter_map(|(n, _)| find(n, *rt)).collect::<Vec<_>>())).collect();
        let published: Vec<[f64; 4]> = members.iter().filter_map(|(_, c)| c.as_ref().and_then(ops::published)).collect();
        let paper_mean = (published.len() == members.len()).then(|| {
            let mut m = [0.0; 4];
            for p in &published {
                for (acc, v) in m.iter_mut().zip(p) {
                    *acc += v / published.len() as f64;
                }
            }
            m
        });
        let mut cols = vec![f.name().to_string()];
        cols.extend(means.iter().map(|m| m.map(ms).unwrap_or_else(|| "—".into())));
        cols.extend(speedups(&means));
        cols.push(members.len().to_string());
        cols.push(published_text(paper_mean));
        rows.push(cols);
    }
    out.push(Block::Table { head: head("operation", &rts, &["cases", &paper_head]), rows });

    out.push(Block::Heading("How each operation is built".into()));
    out.push(Block::Para(format!("Single-operation graphs at opset {}; float data tensors are graph inputs (generated uniform in [−1, 1) with a fixed seed, the same on every runtime, and timed as host inputs); weights and indices are initializers.", crate::ops::OPSET)));
    let rows = families.iter().map(|f| vec![f.name().to_string(), f.graph().to_string(), f.reading().to_string()]).collect();
    out.push(Block::Table { head: vec!["operation".into(), "ONNX graph".into(), "shapes read as".into()], rows });
    let notes: Vec<String> = cases
        .iter()
        .flat_map(|(name, case)| rts.iter().filter_map(move |rt| Some((name, case.as_ref()?, find(name, *rt)?))))
        .filter(|(_, _, c)| c.agreement.as_ref().is_some_and(|a| a.disagrees()))
        .map(|(name, case, c)| {
            let ort = r.runtimes.iter().find(|a| a.runtime == c.runtime).is_some_and(|a| a.engine() == Engine::OnnxRuntime);
            format!("`{}` on {}: {}", ops::case_text(name).unwrap_or(name), c.runtime, why_disagree(case, ort))
        })
        .collect();
    if !notes.is_empty() {
        out.push(Block::Para("Cases marked ✗, and the likely cause:".into()));
        out.push(Block::Bullets(notes));
    }
    out.push(Block::Para("On the published columns: in the benchmark code the paper used (mlx-benchmark), torch waits for the CUDA GPU in some operations only, and for ScatterSum and ScatterMax torch reduced one column while MLX timed an unchanged array (see their rows above).".into()));
    out
}

/// The likely cause of a disagreement, from what the case computes.
fn why_disagree(case: &OpCase, onnx_runtime: bool) -> &'static str {
    let inner = match case.family {
        Family::MatMul => case.shapes[0].last().copied().unwrap_or(0),
        Family::Linear => case.shapes[1][0],
        _ => 0,
    };
    if case.has_undefined_writes() {
        "more rows are written than the data holds, without a reduction, so some row is written twice and ONNX leaves which write wins undefined; a difference says the runtimes picked different writes."
    } else if matches!(case.family, Family::ScatterSum | Family::ScatterMax) && onnx_runtime {
        "rows repeat among the indices, and ONNX Runtime's CPU ScatterND applies updates from several threads without synchronisation, so updates to one row can be lost (onnxruntime issue #18048); with `threads: 1` it computes the defined result."
    } else if inner >= 100_000 {
        "each output sums a very long product in fp32; the runtimes add in different orders, and the rounding difference exceeds the elementwise tolerance on outputs near zero."
    } else {
        "not known; compare the outputs by hand."
    }
}
