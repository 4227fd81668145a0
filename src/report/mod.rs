//! Reports drawn from results alone, for one machine or several: Markdown tables laid out like the
//! paper's appendices C–F, figures like its figs. 1–4, and one self-contained HTML page.

pub mod data;
mod doc;
pub mod generation;
mod ops;
pub mod figures;
mod meta;
pub mod paper;
mod shards;
mod siblings;
mod tables;
mod write;

pub use tables::speedup;
pub use write::{machine_labels, markdown_report, merge, write, write_all, ReportFiles, ReportOptions};

use crate::results::RunResults;

/// The text and tables of one run's report, without figures (the Markdown of earlier versions).
pub fn markdown(r: &RunResults) -> String {
    let m = data::Merged::new(vec![data::Source { label: r.machine.name.clone(), results: r }]);
    let mut blocks = meta::header_blocks(&m);
    blocks.extend(ops_blocks(&m));
    blocks.extend(tables::latency_blocks(&m));
    doc::to_markdown(&blocks)
}

/// The operation tables (paper appendices A and B) of each source that has operation cells.
fn ops_blocks(m: &data::Merged) -> Vec<doc::Block> {
    m.sources.iter().flat_map(|s| ops::blocks(s.results)).collect()
}
