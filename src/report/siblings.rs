//! Models against their sibling (`compare_with`: an fp16 copy against its fp32 model): a column of
//! the Models table, a table of every compared cell, and a note for siblings a scenario left out.

use super::data::Merged;
use super::doc::Block;
use crate::results::{CellRecord, RunResults, SiblingAgreement};
use crate::scenario::RuntimeId;

/// Whether any of the runs has a model with a sibling.
pub fn any(m: &Merged) -> bool {
    m.sources.iter().any(|s| s.results.models.iter().any(|x| x.compare_with.is_some()))
}

/// Whether the run measured the model named by `compare_with`.
fn runs(r: &RunResults, model: &str) -> bool {
    r.models.iter().any(|m| m.name == model)
}

fn fmt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2e}")).unwrap_or_else(|| "—".into())
}

/// The verdict of one comparison, as a table cell.
fn verdict(a: &SiblingAgreement) -> String {
    match a.within_tolerance {
        Some(true) => "agree".into(),
        Some(false) => "✗ differ".into(),
        None => "not compared".into(),
    }
}

/// The Models table's cell for `model` on `runtime`: the largest difference from the sibling over
/// the group's cells and how many were within the tolerance.
pub fn group_cell(r: &RunResults, model: &str, runtime: RuntimeId) -> String {
    let Some(sibling) = r.models.iter().find(|m| m.name == model).and_then(|m| m.compare_with.clone()) else {
        return "—".into();
    };
    if !runs(r, &sibling) {
        return format!("`{sibling}` not run");
    }
    let compared: Vec<&SiblingAgreement> =
        r.cells.iter().filter(|c| c.model == model && c.runtime == runtime).filter_map(|c| c.sibling_agreement.as_ref()).collect();
    let judged: Vec<bool> = compared.iter().filter_map(|a| a.within_tolerance).collect();
    if judged.is_empty() {
        return format!("vs {} `{sibling}`: not compared", r.precision(&sibling));
    }
    let max = compared.iter().filter_map(|a| a.max_abs).fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    let within = judged.iter().filter(|ok| **ok).count();
    let mark = if within < judged.len() { " ✗" } else { "" };
    format!("vs {} `{sibling}`: max \\|diff\\| {}, {within}/{} within{mark}", r.precision(&sibling), fmt(max), judged.len())
}

/// A row of the section's table: one compared cell.
fn row(prefix: &[String], c: &CellRecord, a: &SiblingAgreement) -> Vec<String> {
    let mut row = prefix.to_vec();
    let used = match &a.fallback {
        None => a.runtime.to_string(),
        Some(_) => format!("{} (fallback)", a.runtime),
    };
    row.extend([
        format!("{} / {} / {} / {}", c.model, c.runtime, c.chars, c.batch),
        format!("`{}` on {used}", a.sibling),
        fmt(a.max_abs),
        fmt(a.max_rel),
        format!("{:e} + {:e}·\\|r\\|", a.tolerance.abs, a.tolerance.rel),
        verdict(a),
    ]);
    row
}

/// The section of every cell compared with its sibling, with how to read it; nothing when no model
/// has a sibling.
pub fn blocks(m: &Merged) -> Vec<Block> {
    if !any(m) {
        return vec![];
    }
    let mut head: Vec<String> = if m.multi() { vec!["machine".into()] } else { vec![] };
    head.extend(["model / runtime / chars / batch", "vs sibling (its cell's runtime)", "max \\|diff\\|", "max rel diff", "tolerance", "verdict"].map(String::from));
    let mut rows = vec![];
    for s in &m.sources {
        let prefix: Vec<String> = if m.multi() { vec![s.label.clone()] } else { vec![] };
        for c in &s.results.cells {
            if let Some(a) = &c.sibling_agreement {
                rows.push(row(&prefix, c, a));
            }
        }
    }
    let mut out = vec![
        Block::Heading("Agreement with sibling models (fp16 vs fp32)".into()),
        Block::Para(
            "A model whose model.yaml names a sibling (`compare_with`, e.g. an fp16 copy naming its fp32 model) is compared cell by cell with that sibling when both run: same runtime, input length and batch size, hence the same token ids (checked), over real token positions, with the fp16 tolerance when either model is fp16. When the sibling's cell on the same runtime did not run, its reference-runtime cell is used (marked fallback). ✗ marks a cell that differs, in this table and in the latency tables.".into(),
        ),
    ];
    if rows.is_empty() {
        out.push(Block::Para("No cell was compared: no model ran together with its sibling.".into()));
    } else {
        out.push(Block::Table { head, rows });
    }
    out
}

/// One note per model whose sibling the run did not measure.
pub fn notes(r: &RunResults) -> Vec<String> {
    r.models
        .iter()
        .filter_map(|m| m.compare_with.as_ref().filter(|s| !runs(r, s)).map(|s| crate::results::missing_sibling_note(&m.name, s)))
        .collect()
}
