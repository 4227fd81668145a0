//! Reports drawn from results alone: Markdown tables laid out like the paper's appendices C–F
//! (models) and A–B (operation cases, in `ops`).

mod ops;

use std::fmt::Write;

use crate::results::{CellRecord, RunResults, Status};
use crate::runtimes::RuntimeId;

/// Mean latency of a cell as shown in tables, with its marks.
fn cell_text(c: Option<&CellRecord>) -> String {
    let Some(c) = c else { return "—".into() };
    match (c.status, &c.summary) {
        (Status::Ok, Some(s)) => {
            let mut t = format!("{:.2} [{:.2}, {:.2}]", s.mean_ms, s.mean_ci95_ms[0], s.mean_ci95_ms[1]);
            if c.agreement.as_ref().is_some_and(|a| !a.within_tolerance) {
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

/// Speedup of `other` over `base` in the paper's form: base/other − 1, as a signed percentage.
pub fn speedup(base_ms: f64, other_ms: f64) -> String {
    format!("{:+.0}%", (base_ms / other_ms - 1.0) * 100.0)
}

fn mean_of(cells: &[&CellRecord]) -> Option<f64> {
    if cells.is_empty() || cells.iter().any(|c| c.status != Status::Ok || c.summary.is_none()) {
        return None;
    }
    Some(cells.iter().map(|c| c.summary.as_ref().unwrap().mean_ms).sum::<f64>() / cells.len() as f64)
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "—".into())
}

struct Axes {
    models: Vec<String>,
    runtimes: Vec<RuntimeId>,
    chars: Vec<usize>,
    batches: Vec<usize>,
}

fn axes(r: &RunResults) -> Axes {
    let mut a = Axes { models: vec![], runtimes: vec![], chars: vec![], batches: vec![] };
    for c in r.cells.iter().filter(|c| !crate::ops::is_op(&c.model)) {
        if !a.models.contains(&c.model) {
            a.models.push(c.model.clone());
        }
        if !a.runtimes.contains(&c.runtime) {
            a.runtimes.push(c.runtime);
        }
        if !a.chars.contains(&c.chars) {
            a.chars.push(c.chars);
        }
        if !a.batches.contains(&c.batch) {
            a.batches.push(c.batch);
        }
    }
    a
}

/// Header row and rule for a table whose rows are `label` and whose columns are runtimes, then speedups.
fn header(out: &mut String, label: &str, extra: &[&str], rts: &[RuntimeId]) {
    let mut cols: Vec<String> = vec![label.to_string()];
    cols.extend(extra.iter().map(|s| s.to_string()));
    cols.extend(rts.iter().map(|r| format!("{r} (ms)")));
    cols.extend(rts.iter().skip(1).map(|r| format!("{r} vs {}", rts[0])));
    let _ = writeln!(out, "| {} |", cols.join(" | "));
    let _ = writeln!(out, "|{}|", cols.iter().map(|_| " --- ").collect::<Vec<_>>().join("|"));
}

/// An averaged table: one row per key, the mean over the cells `select` picks for each runtime.
fn averaged_table(out: &mut String, r: &RunResults, a: &Axes, label: &str, rows: &[(String, Box<dyn Fn(&CellRecord) -> bool + '_>)]) {
    header(out, label, &[], &a.runtimes);
    for (name, select) in rows {
        let means: Vec<Option<f64>> = a
            .runtimes
            .iter()
            .map(|rt| mean_of(&r.cells.iter().filter(|c| c.runtime == *rt && select(c)).collect::<Vec<_>>()))
            .collect();
        let mut cols = vec![name.clone()];
        cols.extend(means.iter().map(|m| fmt_opt(*m)));
        for m in means.iter().skip(1) {
            cols.push(match (means[0], m) {
                (Some(b), Some(o)) => speedup(b, *o),
                _ => "—".into(),
            });
        }
        let _ = writeln!(out, "| {} |", cols.join(" | "));
    }
    out.push('\n');
}

/// The whole Markdown report of a run.
pub fn markdown(r: &RunResults) -> String {
    let a = axes(r);
    let mut out = String::new();
    let _ = writeln!(out, "# xbench report: {}\n", r.scenario.name);
    let m = &r.machine;
    let _ = writeln!(out, "- Machine: `{}` — {}, {} cores, {} GiB, {} ({})", m.name, m.cpu, m.cores, m.memory_gib, m.os, m.arch);
    let _ = writeln!(out, "- xbench {} (commit {}), results format {}", r.xbench_version, r.git_commit, r.format_version);
    let _ = writeln!(
        out,
        "- Run: {} → {}{}",
        r.started_at,
        r.finished_at.as_deref().unwrap_or("not finished"),
        if r.complete { "" } else { " (partial results)" }
    );
    let _ = writeln!(out, "- Scenario: `{}`; {} warm-up runs, then {} timed iterations per cell", r.scenario_source, r.scenario.warmup, r.scenario.iterations);
    let _ = writeln!(out, "- Timer: {}", r.timer);
    let _ = writeln!(
        out,
        "- Statistic: mean latency in ms, with its 95% bootstrap confidence interval in brackets. `A vs B` = mean(B) / mean(A) − 1: positive when A is faster (the paper's speedup).",
    );
    let _ = writeln!(
        out,
        "- Agreement: outputs compared with {} on the same inputs (real token positions), tolerance |a − r| ≤ abs + rel·|r| with fp32 {:e} + {:e}, fp16 {:e} + {:e}. Marks: ✗ outputs disagree, ⚠ other warning (listed below).\n",
        r.reference_runtime, r.tolerances.fp32.abs, r.tolerances.fp32.rel, r.tolerances.fp16.abs, r.tolerances.fp16.rel
    );

    let _ = writeln!(out, "## Runtimes\n");
    let _ = writeln!(out, "| runtime | usable | version | threads | detail |\n| --- | --- | --- | --- | --- |");
    for av in &r.runtimes {
        let threads = r.groups.iter().find(|g| g.runtime == av.runtime).and_then(|g| g.session.as_ref()).map(|s| s.threads.clone()).unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            av.runtime,
            if av.usable { "yes" } else { "no" },
            av.version.as_deref().unwrap_or("—"),
            threads,
            av.detail.replace('\n', " ").replace('|', "\\|")
        );
    }
    out.push('\n');
    ops::markdown(r, &mut out);
    if a.models.is_empty() {
        out.push_str(&warnings(r));
        return out;
    }
    let _ = writeln!(out, "## Models\n");
    let _ = writeln!(out, "| model | ONNX size (MB) | weights | max positions | runtime | load (ms) | peak RSS (MiB) |\n| --- | --- | --- | --- | --- | --- | --- |");
    for g in r.groups.iter().filter(|g| !crate::ops::is_op(&g.model)) {
        let mr = r.models.iter().find(|m| m.name == g.model);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            g.model,
            mr.map(|m| format!("{:.1}", m.onnx_bytes as f64 / 1e6)).unwrap_or_default(),
            mr.map(|m| m.weights.clone()).unwrap_or_default(),
            mr.and_then(|m| m.max_positions).map(|p| p.to_string()).unwrap_or_else(|| "—".into()),
            g.runtime,
            fmt_opt(g.load_ms),
            fmt_opt(g.peak_rss_mib)
        );
    }

    let _ = writeln!(out, "\n## Detailed latency (paper appendix C)\n");
    header(&mut out, "model / chars / batch", &["tokens (padded)"], &a.runtimes);
    for model in &a.models {
        for &ch in &a.chars {
            for &b in &a.batches {
                let cells: Vec<Option<&CellRecord>> = a
                    .runtimes
                    .iter()
                    .map(|rt| r.cells.iter().find(|c| &c.model == model && c.runtime == *rt && c.chars == ch && c.batch == b))
                    .collect();
                let tokens = cells
                    .iter()
                    .flatten()
                    .find_map(|c| c.tokens.as_ref())
                    .map(|t| format!("{} ({}×{})", t.tokens_per_row.iter().sum::<usize>(), t.tokens_per_row.len(), t.padded_len))
                    .unwrap_or_else(|| "—".into());
                let mut cols = vec![format!("{model} / {ch} / {b}"), tokens];
                cols.extend(cells.iter().map(|c| cell_text(*c)));
                let base = cells[0].and_then(|c| c.summary.as_ref()).filter(|_| cells[0].unwrap().status == Status::Ok).map(|s| s.mean_ms);
                for c in cells.iter().skip(1) {
                    let other = c.filter(|c| c.status == Status::Ok).and_then(|c| c.summary.as_ref()).map(|s| s.mean_ms);
                    cols.push(match (base, other) {
                        (Some(b), Some(o)) => speedup(b, o),
                        _ => "—".into(),
                    });
                }
                let _ = writeln!(out, "| {} |", cols.join(" | "));
            }
        }
    }
    out.push('\n');

    let _ = writeln!(out, "## Average by input length (paper appendix D)\n");
    let rows: Vec<(String, Box<dyn Fn(&CellRecord) -> bool>)> = a
        .models
        .iter()
        .flat_map(|m| a.chars.iter().map(move |&ch| (m.clone(), ch)))
        .map(|(m, ch)| (format!("{m} / {ch} chars"), Box::new(move |c: &CellRecord| c.model == m && c.chars == ch) as Box<dyn Fn(&CellRecord) -> bool>))
        .collect();
    averaged_table(&mut out, r, &a, "model / chars", &rows);

    let _ = writeln!(out, "## Average by batch size (paper appendix E)\n");
    let rows: Vec<(String, Box<dyn Fn(&CellRecord) -> bool>)> = a
        .models
        .iter()
        .flat_map(|m| a.batches.iter().map(move |&b| (m.clone(), b)))
        .map(|(m, b)| (format!("{m} / batch {b}"), Box::new(move |c: &CellRecord| c.model == m && c.batch == b) as Box<dyn Fn(&CellRecord) -> bool>))
        .collect();
    averaged_table(&mut out, r, &a, "model / batch", &rows);

    let _ = writeln!(out, "## Overall average (paper appendix F)\n");
    let rows: Vec<(String, Box<dyn Fn(&CellRecord) -> bool>)> = a
        .models
        .iter()
        .map(|m| {
            let m2 = m.clone();
            (m.clone(), Box::new(move |c: &CellRecord| c.model == m2) as Box<dyn Fn(&CellRecord) -> bool>)
        })
        .collect();
    averaged_table(&mut out, r, &a, "model", &rows);
    let _ = writeln!(out, "Averages are means of the cells' means; — where a cell of the average failed, was skipped, or is missing.\n");
    out.push_str(&warnings(r));
    out
}

/// The closing list of flagged and failed cells and skipped runtimes (empty when there are none).
fn warnings(r: &RunResults) -> String {
    let mut out = String::new();
    let notes: Vec<String> = r
        .cells
        .iter()
        .filter(|c| !c.flags.is_empty() || c.status == Status::Failed)
        .map(|c| {
            let mut items = c.flags.clone();
            if let Some(e) = &c.error {
                if c.status == Status::Failed {
                    items.push(format!("failed: {}", e.replace('\n', " ")));
                }
            }
            if crate::ops::is_op(&c.model) {
                return format!("- {} / {}: {}", c.model, c.runtime, items.join("; "));
            }
            format!("- {} / {} / {} chars / batch {}: {}", c.model, c.runtime, c.chars, c.batch, items.join("; "))
        })
        .collect();
    let mut skipped: Vec<String> = r
        .groups
        .iter()
        .filter(|g| g.status == Status::Skipped && !crate::ops::is_op(&g.model))
        .map(|g| format!("- {} on {}: skipped — {}", g.model, g.runtime, g.error.as_deref().unwrap_or("").replace('\n', " ")))
        .collect();
    // Operation cases skipped on a runtime are one line per runtime, not one per case.
    for av in &r.runtimes {
        let ops_skipped: Vec<_> = r.groups.iter().filter(|g| g.runtime == av.runtime && g.status == Status::Skipped && crate::ops::is_op(&g.model)).collect();
        if let Some(g) = ops_skipped.first() {
            skipped.push(format!("- {} operation cases on {}: skipped — {}", ops_skipped.len(), g.runtime, g.error.as_deref().unwrap_or("").replace('\n', " ")));
        }
    }
    if !notes.is_empty() || !skipped.is_empty() {
        let _ = writeln!(out, "## Warnings, failures and skipped runtimes\n");
        for n in skipped.iter().chain(notes.iter()) {
            let _ = writeln!(out, "{n}");
        }
        out.push('\n');
    }
    out
}
