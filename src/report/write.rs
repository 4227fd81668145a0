//! A report folder from one or several results: report.md, index.html and the figures as PNG and
//! SVG — everything a run or `xbench report` writes, in one place.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::data::{Merged, Source};
use super::doc::{to_html, to_markdown, Block};
use super::figures::{self, Figure, ALL_STEMS};
use crate::scenario::ops::OP_PREFIX;
use super::{meta, paper, tables};
use crate::results::RunResults;

/// How to draw a report.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// Names for the machines, in the order of the results (`--name-as`); the rest keep `machine.name`.
    pub names: Vec<String>,
    /// Draw the paper's published numbers beside ours where the cells match (`--paper`).
    pub paper: bool,
}

/// Files of a report folder.
#[derive(Debug, Clone)]
pub struct ReportFiles {
    pub markdown: PathBuf,
    pub html: PathBuf,
    /// PNG then SVG of each figure drawn.
    pub figures: Vec<PathBuf>,
}

/// The name of each machine in the report: `--name-as` in order, else the machine name; all distinct.
pub fn machine_labels(results: &[RunResults], names: &[String]) -> Result<Vec<String>> {
    if results.is_empty() {
        bail!("no results to report on\n  fix: give at least one results.json");
    }
    if names.len() > results.len() {
        bail!(
            "--name-as was given {} times for {} results file(s)\n  fix: give at most one --name-as per results file, in the same order",
            names.len(),
            results.len()
        );
    }
    let labels: Vec<String> = results
        .iter()
        .enumerate()
        .map(|(i, r)| names.get(i).cloned().unwrap_or_else(|| r.machine.name.clone()).trim().to_string())
        .collect();
    for (i, l) in labels.iter().enumerate() {
        if l.is_empty() {
            bail!("results file {} has no machine name\n  fix: name it with --name-as LABEL (one per file, in order)", i + 1);
        }
        if let Some(j) = labels[..i].iter().position(|x| x == l) {
            bail!(
                "results files {} and {} would both be shown as `{l}`\n  fix: name each machine with --name-as LABEL, once per results file in the same order",
                j + 1,
                i + 1
            );
        }
    }
    Ok(labels)
}

/// The merged view of `results`, with the published series when asked for.
pub fn merge<'a>(results: &'a [RunResults], opts: &ReportOptions) -> Result<Merged<'a>> {
    let labels = machine_labels(results, &opts.names)?;
    let sources = results.iter().zip(labels).map(|(r, label)| Source { label, results: r }).collect();
    let mut m = Merged::new(sources);
    if opts.paper {
        let published = paper::matching_series(&m.grid);
        m.series.extend(published);
    }
    Ok(m)
}

fn paper_blocks(m: &Merged) -> Vec<Block> {
    let published: Vec<_> = m.series.iter().filter(|s| s.is_published()).collect();
    let mut items = vec![];
    if published.is_empty() {
        items.push(format!(
            "No measured cell matches the paper's grid by model name, input length and batch size ({}), so no published series is drawn.",
            paper::grid_description()
        ));
    } else {
        for s in &published {
            if let super::data::SeriesKind::Published { cells } = &s.kind {
                items.push(format!("{}: {} cell(s) match ours", s.label, cells.len()));
            }
        }
        items.push("Only cells that match a measured one by model name, input length and batch size are shown; averages of a published series cover the same cells as ours, or are left out.".into());
    }
    let mut out = vec![Block::Heading("Published numbers (paper)".into())];
    out.extend(same_backends(m));
    items.push("Source: the paper's appendix C as published (mean only, no spread; 11 runs, mean of the 10 fastest, no GPU synchronisation): a reference for order of magnitude, not ground truth. Data: `src/report/paper/model-latency.tsv`.".into());
    out.push(Block::Bullets(items));
    out
}

/// Our series that run one of the paper's backends (a runtime named as the paper names it:
/// `mlx-gpu`, `mlx-cpu`, `torch-cuda`, `torch-cpu`) beside the paper's devices for that backend:
/// per model, the mean of the cell means over the cells both have.
fn same_backends(m: &Merged) -> Vec<Block> {
    let rows_all = paper::rows();
    let mut devices: Vec<String> = vec![];
    for r in &rows_all {
        if !devices.contains(&r.device) {
            devices.push(r.device.clone());
        }
    }
    let mut rows = vec![];
    for i in m.measured() {
        let super::data::SeriesKind::Measured { runtime, .. } = &m.series[i].kind else { continue };
        let backend = runtime.as_str();
        let published: Vec<&paper::PublishedRow> = rows_all.iter().filter(|r| r.backend == backend).collect();
        if published.is_empty() {
            continue;
        }
        for model in m.model_names() {
            // Our cells of this model that the paper also has for this backend.
            let ours: Vec<(usize, usize, f64)> = published
                .iter()
                .filter(|r| r.cell.model == model)
                .filter_map(|r| match m.value(i, &model, r.cell.chars, r.cell.batch) {
                    Some(super::data::Value::Measured(c)) if c.status == crate::results::Status::Ok => c.summary.as_ref().map(|s| (r.cell.chars, r.cell.batch, s.mean_ms)),
                    _ => None,
                })
                .fold(vec![], |mut v, x| {
                    if !v.iter().any(|(c, b, _)| (*c, *b) == (x.0, x.1)) {
                        v.push(x);
                    }
                    v
                });
            if ours.is_empty() {
                continue;
            }
            let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
            let mut cols = vec![backend.to_string(), model.clone(), format!("{} ({} cells)", m.series[i].label, ours.len()), format!("{:.2}", mean(&ours.iter().map(|x| x.2).collect::<Vec<_>>()))];
            for d in &devices {
                let theirs: Vec<f64> = ours
                    .iter()
                    .filter_map(|(ch, b, _)| published.iter().find(|r| r.device == *d && r.cell.model == model && r.cell.chars == *ch && r.cell.batch == *b).map(|r| r.cell.mean_ms))
                    .collect();
                cols.push(if theirs.len() == ours.len() { format!("{:.2}", mean(&theirs)) } else { "—".into() });
            }
            rows.push(cols);
        }
    }
    if rows.is_empty() {
        return vec![];
    }
    let mut head: Vec<String> = ["backend", "model", "our series", "ours (ms)"].iter().map(|s| s.to_string()).collect();
    head.extend(devices.iter().map(|d| format!("paper {d} (ms)")));
    vec![
        Block::Para("The paper's backends beside ours: each of our runtimes named as the paper names a backend, per model the mean of its cell means over the cells the paper also has for that backend, and the paper's mean over the same cells on each of its devices (— where a device lacks one of them). The paper's timers differ from ours (its GPU runs were not synchronised): an order of magnitude, not a ratio to quote.".into()),
        Block::Table { head, rows },
    ]
}

fn caption(fig: &Figure, published: bool) -> String {
    let ci = "error bars: the mean of the cells' 95% CI bounds (a summary of the cells' uncertainty, not a confidence interval of the average)";
    let mut c = match fig.number {
        1 => format!("Fig. 1: mean latency of each operation case (cells of models named `{OP_PREFIX}…`), log scale; {ci}."),
        2 => format!("Fig. 2: each bar is the mean of the model's cell means over all input lengths and batch sizes; {ci}."),
        3 => format!("Fig. 3: each point is the mean over batch sizes of the cells at that input length; {ci}."),
        4 => format!("Fig. 4: each point is the mean over input lengths of the cells at that batch size; {ci}."),
        5 => "Fig. 5: decode throughput of each generation cell (tokens of all rows per second of decode steps), one line per runtime, model, batch size and new tokens.".to_string(),
        _ => "Fig. 6: mean time to first token of each generation cell (the prompt with an empty cache, up to the first token picked), with its 95% CI.".to_string(),
    };
    if published {
        let look = if fig.number <= 2 { "lighter bars with an outline" } else { "dashed lines, hollow markers" };
        c.push_str(&format!(" Published series ({look}) are the paper's means over the same cells; it gives no spread, so they have no error bars."));
    }
    if !fig.omitted.is_empty() {
        c.push_str(&format!(
            " × marks an average not drawn because one of its cells failed, was skipped or is missing: {}.",
            fig.omitted.join("; ")
        ));
    }
    c
}

/// The figures section: each figure with its caption, and a note for fig. 1 when there is nothing to draw.
fn figure_blocks(m: &Merged, figs: &[(Figure, String)]) -> Vec<Block> {
    let published = m.series.iter().any(|s| s.is_published());
    let mut out = vec![Block::Heading("Figures".into())];
    if !figs.iter().any(|(f, _)| f.number == 1) && !super::generation::only_generation(m) {
        out.push(Block::Para(format!(
            "Fig. 1 (operation benchmark) is not drawn: these results have no operation cells (models named `{OP_PREFIX}…`)."
        )));
    }
    for (f, svg) in figs {
        out.push(Block::Figure { png: format!("{}.png", f.stem), alt: f.title().to_string(), svg: svg.clone(), caption: caption(f, published) });
    }
    out
}

/// The whole report as blocks; `figs` are the figures drawn, with their SVG text.
fn document(m: &Merged, figs: &[(Figure, String)], paper: bool) -> Vec<Block> {
    let mut blocks = meta::header_blocks(m);
    if super::generation::only_generation(m) {
        blocks.extend(super::generation::generation_blocks(m));
        return blocks;
    }
    if paper {
        blocks.extend(paper_blocks(m));
    }
    blocks.extend(figure_blocks(m, figs));
    blocks.extend(super::ops_blocks(m));
    blocks.extend(tables::latency_blocks(m));
    blocks.extend(super::generation::generation_blocks(m));
    blocks
}

/// report.md of `results` as `write_all` writes it (figures linked, not drawn).
pub fn markdown_report(results: &[RunResults], opts: &ReportOptions) -> Result<String> {
    let m = merge(results, opts)?;
    let figs: Vec<(Figure, String)> = figures::figures(&m).into_iter().map(|f| (f, String::new())).collect();
    Ok(to_markdown(&document(&m, &figs, opts.paper)))
}

/// Refuses to write through a link at `path` (one planted while a run goes on, or since): the
/// write would land wherever it points.
fn refuse_link(path: &Path) -> Result<()> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        anyhow::bail!(
            "{} is a symbolic link: xbench does not write the report through a link, which would replace the file it points to\n  fix: remove the link, then draw the report again with `xbench report {}`",
            path.display(),
            path.with_file_name("results.json").display()
        );
    }
    Ok(())
}

/// Writes a file of the report: never through a link, and replaced whole (a new file renamed over the old).
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    refuse_link(path)?;
    crate::results::replace(path, bytes, false).with_context(|| format!("cannot write {}\n  fix: choose a writable folder with --out", path.display()))
}

/// Writes report.md, index.html and every figure (PNG and SVG) of `results` into `dir`, removing
/// figure files of an earlier report that this one does not draw.
pub fn write_all(results: &[RunResults], opts: &ReportOptions, dir: &Path) -> Result<ReportFiles> {
    let m = merge(results, opts)?;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the report folder {}\n  fix: choose a writable folder with --out", dir.display()))?;
    let mut figs = vec![];
    let mut files = vec![];
    for f in figures::figures(&m) {
        let png = dir.join(format!("{}.png", f.stem));
        let svg_path = dir.join(format!("{}.svg", f.stem));
        refuse_link(&png)?;
        f.write_png(&png)?;
        let svg = f.svg()?;
        write(&svg_path, svg.as_bytes())?;
        files.extend([png, svg_path]);
        figs.push((f, svg));
    }
    for stem in ALL_STEMS.iter().filter(|s| !figs.iter().any(|(f, _)| f.stem == **s)) {
        for ext in ["png", "svg"] {
            let _ = std::fs::remove_file(dir.join(format!("{stem}.{ext}")));
        }
    }
    let blocks = document(&m, &figs, opts.paper);
    let markdown = dir.join("report.md");
    write(&markdown, to_markdown(&blocks).as_bytes())?;
    let title = match blocks.first() {
        Some(Block::Title(t)) => t.clone(),
        _ => "xbench report".into(),
    };
    let html = dir.join("index.html");
    write(&html, to_html(&title, &blocks).as_bytes())?;
    Ok(ReportFiles { markdown, html, figures: files })
}
