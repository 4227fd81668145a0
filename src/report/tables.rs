//! The report's text and tables, laid out like the paper's appendices C–F, as blocks: one column per
//! series (runtime, or machine · runtime), published series beside them when asked for.

use std::collections::HashMap;

use super::data::{Key, Merged, Value};
use super::doc::Block;
use crate::results::{CellRecord, FlagKind, ModelInput, Status};

/// Mean latency of a measured cell as shown in tables, with its marks.
fn cell_text(c: Option<&CellRecord>) -> String {
    let Some(c) = c else { return "—".into() };
    match (c.status, &c.summary) {
        (Status::Ok, Some(s)) => {
            let mut t = format!("{:.2} [{:.2}, {:.2}]", s.mean_ms, s.mean_ci95_ms[0], s.mean_ci95_ms[1]);
            if c.agreement.as_ref().is_some_and(|a| a.disagrees()) || c.expected.as_ref().is_some_and(|a| a.disagrees()) || c.sibling_agreement.as_ref().is_some_and(|a| a.disagrees()) {
                t.push_str(" ✗");
            }
            if c.has_flag(FlagKind::Suspicious) {
                t.push_str(" ?");
            } else if c.flags.iter().any(|f| !f.kind.is_disagreement()) {
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

fn fmt_opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "—".into())
}

/// Column headings: the row label, extra columns, one per series, then speedups of each further
/// measured series over the first (published series get none: their protocol differs).
fn head(m: &Merged, label: &str, extra: &[&str]) -> Vec<String> {
    let mut cols: Vec<String> = vec![label.to_string()];
    cols.extend(extra.iter().map(|s| s.to_string()));
    cols.extend((0..m.series.len()).map(|s| format!("{} (ms, {})", m.series[s].label, timer_of(m, s))));
    let measured = m.measured();
    cols.extend(measured.iter().skip(1).map(|&i| {
        let base = measured[0];
        // A ratio between series that timed different things says so in its heading.
        let differ = match (m.timer_class(base), m.timer_class(i)) {
            (Some(a), Some(b)) if a == b => "",
            (Some(_), Some(_)) => " (timers differ)",
            _ => " (timer not stated)",
        };
        format!("{} vs {}{differ}", m.series[i].label, m.series[base].label)
    }));
    cols
}

/// What a series' timer covered, for its column header: the timer of its measured cells.
fn timer_of(m: &Merged, s: usize) -> String {
    if m.series[s].is_published() {
        return "published".into();
    }
    m.timer_label(s).unwrap_or("not measured").to_string()
}

fn speedups(m: &Merged, means: &[Option<f64>]) -> Vec<String> {
    let measured = m.measured();
    let Some(&first) = measured.first() else { return vec![] };
    measured
        .iter()
        .skip(1)
        .map(|&i| match (means[first], means[i]) {
            (Some(b), Some(o)) => speedup(b, o),
            _ => "—".into(),
        })
        .collect()
}

fn detailed(m: &Merged) -> Block {
    let mut rows = vec![];
    for model in &m.model_names() {
        // A model run on its own test data has one point per data set; the others the scenario's grid.
        let points: Vec<(usize, usize)> = if m.input_of(model) == ModelInput::TestData {
            m.grid.iter().filter(|(md, _, _)| md == model).map(|(_, ch, b)| (*ch, *b)).collect()
        } else {
            m.chars.iter().flat_map(|&ch| m.batches.iter().map(move |&b| (ch, b))).collect()
        };
        for (ch, b) in points {
            {
                let values: Vec<Option<Value>> = (0..m.series.len()).map(|s| m.value(s, model, ch, b)).collect();
                let tokens = values
                    .iter()
                    .find_map(|v| match v {
                        Some(Value::Measured(c)) => c.tokens.as_ref(),
                        _ => None,
                    })
                    .map(|t| format!("{} ({}×{})", t.tokens_per_row.iter().sum::<usize>(), t.tokens_per_row.len(), t.padded_len))
                    .unwrap_or_else(|| "—".into());
                let mut cols = vec![m.point_label(model, ch, b), tokens];
                cols.extend(values.iter().map(|v| match v {
                    Some(Value::Published(ms)) => format!("{ms:.2}"),
                    Some(Value::Measured(c)) => cell_text(Some(c)),
                    None => cell_text(None),
                }));
                let means: Vec<Option<f64>> = (0..m.series.len()).map(|s| m.estimate(s, model, ch, b).map(|e| e.mean_ms)).collect();
                cols.extend(speedups(m, &means));
                rows.push(cols);
            }
        }
    }
    let label = if m.model_names().iter().all(|x| m.input_of(x) == ModelInput::Text) { "model / chars / batch" } else { "model / input / batch" };
    Block::Table { head: head(m, label, &["tokens (padded)"]), rows }
}

/// What the models not fed from text were fed, from their first measured cell: one line each.
fn fed_blocks(m: &Merged) -> Vec<Block> {
    let mut lines = vec![];
    for model in m.model_names().iter().filter(|x| m.input_of(x) != ModelInput::Text) {
        let first = m.sources.iter().flat_map(|s| s.results.cells.iter()).find(|c| c.model == *model && !c.fed.is_empty());
        let Some(c) = first else { continue };
        let inputs: Vec<String> = c.fed.iter().map(|f| format!("`{}` {} {:?} from {} ({})", f.name, f.elem_type, f.shape, f.source, f.settings())).collect();
        let what = match m.input_of(model) {
            ModelInput::TestData => "its own test data sets, its expected outputs the reference; e.g.",
            _ => "no text, so no tokens; at the first point",
        };
        let grid = m.sources.iter().flat_map(|s| s.results.models.iter()).find(|x| x.name == *model).and_then(|x| x.grid.clone());
        let grid = grid.map(|g| format!(" ({g})")).unwrap_or_default();
        lines.push(format!("{model}: {what} {}{grid}", inputs.join("; ")));
    }
    if lines.is_empty() {
        return vec![];
    }
    vec![Block::Heading("Inputs of models not fed from text".into()), Block::Bullets(lines)]
}

fn averaged(m: &Merged, label: &str, rows: Vec<(String, Vec<&Key>)>) -> Block {
    let rows = rows
        .into_iter()
        .map(|(name, keys)| {
            let means: Vec<Option<f64>> = (0..m.series.len()).map(|s| m.coverage_of(s, &keys).estimate().map(|e| e.mean_ms)).collect();
            let mut cols = vec![name];
            cols.extend(means.iter().map(|v| fmt_opt(*v)));
            cols.extend(speedups(m, &means));
            cols
        })
        .collect();
    Block::Table { head: head(m, label, &[]), rows }
}

/// The grid's points by model and `coord` (one pass over the grid), so that each row of an
/// average reads its own points only.
fn points_by<'m>(m: &'m Merged, coord: impl Fn(&Key) -> usize) -> HashMap<(&'m str, usize), Vec<&'m Key>> {
    let mut by: HashMap<(&str, usize), Vec<&Key>> = HashMap::new();
    for k in &m.grid {
        by.entry((k.0.as_str(), coord(k))).or_default().push(k);
    }
    by
}

/// The latency tables (appendices C–F) and the failures, warnings and skipped runtimes.
pub fn latency_blocks(m: &Merged) -> Vec<Block> {
    let mut out = vec![];
    if !m.model_names().is_empty() {
        out.extend(model_blocks(m));
        out.extend(fed_blocks(m));
    }
    out.extend(super::siblings::blocks(m));
    out.extend(warning_blocks(m));
    out
}

fn model_blocks(m: &Merged) -> Vec<Block> {
    let mut out = vec![Block::Heading("Detailed latency (paper appendix C)".into()), detailed(m)];

    out.push(Block::Heading("Average by input length (paper appendix D)".into()));
    let by_chars = points_by(m, |k| k.1);
    let rows = m
        .grid_models()
        .iter()
        .flat_map(|md| m.chars.iter().map(move |&ch| (md.clone(), ch)))
        .map(|(md, ch)| {
            let label = if m.input_of(&md) == ModelInput::Generated { format!("{md} / {}", super::data::length_label(ch)) } else { format!("{md} / {ch} chars") };
            (label, by_chars.get(&(md.as_str(), ch)).cloned().unwrap_or_default())
        })
        .collect();
    out.push(averaged(m, "model / chars", rows));

    out.push(Block::Heading("Average by batch size (paper appendix E)".into()));
    let by_batch = points_by(m, |k| k.2);
    let rows = m
        .grid_models()
        .iter()
        .flat_map(|md| m.batches.iter().map(move |&b| (md.clone(), b)))
        .map(|(md, b)| (format!("{md} / batch {b}"), by_batch.get(&(md.as_str(), b)).cloned().unwrap_or_default()))
        .collect();
    out.push(averaged(m, "model / batch", rows));

    out.push(Block::Heading("Overall average (paper appendix F)".into()));
    let by_model = points_by(m, |_| 0);
    let rows = m.model_names().into_iter().map(|md| (md.clone(), by_model.get(&(md.as_str(), 0)).cloned().unwrap_or_default())).collect();
    out.push(averaged(m, "model", rows));
    out.push(Block::Para(
        "Averages are means of the cells' means; — where a cell of the average failed, was skipped, or is missing.".into(),
    ));
    out
}

/// Failures, warnings and skipped runtimes, model and operation cells alike.
fn warning_blocks(m: &Merged) -> Vec<Block> {
    let mut out = vec![];
    let mut notes = vec![];
    for s in &m.sources {
        let prefix = if m.multi() { format!("{}: ", s.label) } else { String::new() };
        let r = s.results;
        for g in r.groups.iter().filter(|g| g.status == Status::Skipped && !crate::scenario::ops::is_op(&g.model)) {
            notes.push(format!("{prefix}{} on {}: skipped — {}", g.model, g.runtime, g.error.as_deref().unwrap_or("").replace('\n', " ")));
        }
        // Operation cases skipped on a runtime: one line per runtime, not one per case.
        for av in &r.runtimes {
            let skipped: Vec<_> = r.groups.iter().filter(|g| g.runtime == av.runtime && g.status == Status::Skipped && crate::scenario::ops::is_op(&g.model)).collect();
            if let Some(g) = skipped.first() {
                notes.push(format!("{prefix}{} operation cases on {}: skipped — {}", skipped.len(), g.runtime, g.error.as_deref().unwrap_or("").replace('\n', " ")));
            }
        }
    }
    for s in &m.sources {
        let prefix = if m.multi() { format!("{}: ", s.label) } else { String::new() };
        notes.extend(super::siblings::notes(s.results).into_iter().map(|n| format!("{prefix}{n}")));
    }
    for s in &m.sources {
        let prefix = if m.multi() { format!("{}: ", s.label) } else { String::new() };
        for c in s.results.cells.iter().filter(|c| !c.flags.is_empty() || c.status == Status::Failed) {
            let mut items: Vec<String> = c.flags.iter().map(|f| f.to_string()).collect();
            if let Some(e) = &c.error {
                if c.status == Status::Failed {
                    items.push(format!("failed: {}", e.replace('\n', " ")));
                }
            }
            let at = match (crate::scenario::ops::is_op(&c.model), c.data_set, s.results.models.iter().find(|x| x.name == c.model).map(|x| x.input)) {
                (true, _, _) => String::new(),
                (_, Some(n), _) => format!(" / test_data_set_{n}"),
                (_, _, Some(ModelInput::Generated)) => format!(" / {} / batch {}", super::data::length_label(c.chars), c.batch),
                _ => format!(" / {} chars / batch {}", c.chars, c.batch),
            };
            notes.push(format!("{prefix}{} / {}{at}: {}", c.model, c.runtime, items.join("; ")));
        }
    }
    if !notes.is_empty() {
        out.push(Block::Heading("Warnings, failures and skipped runtimes".into()));
        out.push(Block::Bullets(notes));
    }
    out
}
