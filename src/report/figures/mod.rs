//! The report's figures, laid out like the paper's figs. 1–4, drawn with plotters on any backend:
//! PNG files through `BitMapBackend`, inline SVG through `SVGBackend`.

mod bars;
mod lines;
mod points;
pub mod style;

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

pub use bars::{draw_bars, BarChart};
pub use lines::{draw_lines, LineChart};
pub use points::{batch_points, length_points, model_bars, operation_bars};
pub use style::SIZE;

use super::data::Merged;
use super::paper::PUBLISHED_PREFIX;

/// One bar: a case or model (`group`), a series, the mean and its 95% CI. `mean_ms: None` marks an
/// average that is not drawn (a cell of it failed, was skipped or is missing).
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub group: String,
    pub series: String,
    pub mean_ms: Option<f64>,
    pub ci95_ms: Option<[f64; 2]>,
}

/// One point of a line: a model, a series, the x value (characters or batch size), the mean and its CI.
#[derive(Debug, Clone, PartialEq)]
pub struct LinePoint {
    pub model: String,
    pub series: String,
    pub x: f64,
    pub mean_ms: Option<f64>,
    pub ci95_ms: Option<[f64; 2]>,
}

fn is_published(series: &str) -> bool {
    series.starts_with(PUBLISHED_PREFIX)
}

fn unique<T: PartialEq>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut out = vec![];
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

pub const FIG1_TITLE: &str = "Fig. 1 — Operation benchmark: mean latency per case";
pub const FIG2_TITLE: &str = "Fig. 2 — Average latency per model";
pub const FIG3_TITLE: &str = "Fig. 3 — Latency vs input length (mean over batch sizes)";
pub const FIG4_TITLE: &str = "Fig. 4 — Latency vs batch size (mean over input lengths)";
pub const FIG5_TITLE: &str = "Fig. 5 — Decode throughput vs prompt length";
pub const FIG6_TITLE: &str = "Fig. 6 — Time to first token vs prompt length";

/// Fig. 1: one bar per operation case and series, always on a log axis.
pub fn operations<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, bars: &[Bar]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    draw_bars(root, &BarChart { title: FIG1_TITLE, x_desc: "operation case", bars, force_log: true })
}

/// Fig. 2: average latency per model, one bar per series.
pub fn models<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, bars: &[Bar]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    draw_bars(root, &BarChart { title: FIG2_TITLE, x_desc: "model", bars, force_log: false })
}

/// Fig. 3: latency against input length (`x_desc` says in what: characters of text, or the
/// length of generated inputs' sequence dims).
pub fn by_length<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, points: &[LinePoint], x_desc: &str) -> Result<()>
where
    DB::ErrorType: 'static,
{
    draw_lines(root, &LineChart { title: FIG3_TITLE, x_desc, points, y_desc: None })
}

/// Fig. 4: latency against batch size.
pub fn by_batch<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, points: &[LinePoint]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    draw_lines(root, &LineChart { title: FIG4_TITLE, x_desc: "batch size", points, y_desc: None })
}

#[derive(Debug, Clone, PartialEq)]
pub enum Chart {
    Operations(Vec<Bar>),
    Models(Vec<Bar>),
    /// Points, and what the x axis measures.
    Length(Vec<LinePoint>, &'static str),
    Batch(Vec<LinePoint>),
    /// Generation: decode tokens per second against prompt tokens.
    Decode(Vec<LinePoint>),
    /// Generation: time to first token against prompt tokens.
    FirstToken(Vec<LinePoint>),
}

/// A figure of a report: its file stem, what it shows, and the averages it leaves out.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub number: u8,
    /// File name without extension: `fig2-models` → fig2-models.png.
    pub stem: &'static str,
    pub chart: Chart,
    /// "series — point" of every average not drawn.
    pub omitted: Vec<String>,
}

impl Figure {
    pub fn title(&self) -> &'static str {
        match self.chart {
            Chart::Operations(_) => FIG1_TITLE,
            Chart::Models(_) => FIG2_TITLE,
            Chart::Length(..) => FIG3_TITLE,
            Chart::Batch(_) => FIG4_TITLE,
            Chart::Decode(_) => FIG5_TITLE,
            Chart::FirstToken(_) => FIG6_TITLE,
        }
    }

    pub fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        match &self.chart {
            Chart::Operations(b) => operations(root, b),
            Chart::Models(b) => models(root, b),
            Chart::Length(p, x_desc) => by_length(root, p, x_desc),
            Chart::Batch(p) => by_batch(root, p),
            Chart::Decode(points) => draw_lines(root, &LineChart { title: FIG5_TITLE, x_desc: "prompt tokens (per row)", points, y_desc: Some("decode tokens per second (all rows)") }),
            Chart::FirstToken(points) => draw_lines(root, &LineChart { title: FIG6_TITLE, x_desc: "prompt tokens (per row)", points, y_desc: Some("time to first token (ms)") }),
        }
    }

    /// The figure as SVG text.
    pub fn svg(&self) -> Result<String> {
        let mut text = String::new();
        {
            let root = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
            self.draw(&root)?;
            root.present().map_err(|e| anyhow!("cannot draw fig. {} as SVG: {e}", self.number))?;
        }
        Ok(text)
    }

    /// Writes the figure as a PNG of [`SIZE`] pixels.
    pub fn write_png(&self, path: &Path) -> Result<()> {
        let root = BitMapBackend::new(path, SIZE).into_drawing_area();
        self.draw(&root).with_context(|| format!("cannot draw {}", path.display()))?;
        root.present().map_err(|e| anyhow!("cannot write {}: {e}\n  fix: choose a writable folder with --out", path.display()))
    }
}

/// Every figure the merged results have data for, in the paper's order; figure 1 only when some
/// cell's model is an operation case (`op:` prefix).
pub fn figures(m: &Merged) -> Vec<Figure> {
    let mut out = vec![];
    let omitted_bars = |bars: &[Bar]| bars.iter().filter(|b| b.mean_ms.is_none()).map(|b| format!("{} — {}", b.series, b.group)).collect();
    let omitted_points = |pts: &[LinePoint], at: &dyn Fn(f64) -> String| {
        pts.iter().filter(|p| p.mean_ms.is_none()).map(|p| format!("{} — {}, {}", p.series, p.model, at(p.x))).collect()
    };
    if crate::report::generation::has_generation(m) {
        let (decode, first) = crate::report::generation::points(m);
        let omitted = |pts: &[LinePoint]| pts.iter().filter(|p| p.mean_ms.is_none()).map(|p| format!("{} — {}, prompt {}", p.series, p.model, p.x)).collect();
        if !decode.is_empty() {
            out.push(Figure { number: 5, stem: "fig5-decode", omitted: omitted(&decode), chart: Chart::Decode(decode) });
        }
        if !first.is_empty() {
            out.push(Figure { number: 6, stem: "fig6-first-token", omitted: omitted(&first), chart: Chart::FirstToken(first) });
        }
        if crate::report::generation::only_generation(m) {
            return out;
        }
    }
    let ops = operation_bars(m);
    if !ops.is_empty() {
        out.push(Figure { number: 1, stem: "fig1-operations", omitted: omitted_bars(&ops), chart: Chart::Operations(ops) });
    }
    let bars = model_bars(m);
    if !bars.is_empty() {
        out.push(Figure { number: 2, stem: "fig2-models", omitted: omitted_bars(&bars), chart: Chart::Models(bars) });
    }
    let pts = length_points(m);
    if !pts.is_empty() {
        let generated = |model: &String| m.input_of(model) == crate::results::ModelInput::Generated;
        let (x_desc, unit) = match (pts.iter().all(|p| generated(&p.model)), pts.iter().any(|p| generated(&p.model))) {
            (true, _) => ("sequence length (generated inputs)", "length"),
            (false, true) => ("input length (characters of text; sequence length for generated inputs)", "length"),
            _ => ("input length (characters)", "characters"),
        };
        out.push(Figure { number: 3, stem: "fig3-length", omitted: omitted_points(&pts, &|x| format!("{x} {unit}")), chart: Chart::Length(pts, x_desc) });
    }
    let pts = batch_points(m);
    if !pts.is_empty() {
        out.push(Figure { number: 4, stem: "fig4-batch", omitted: omitted_points(&pts, &|x| format!("batch {x}")), chart: Chart::Batch(pts) });
    }
    out
}

/// File stems of all figures, for removing stale ones.
pub const ALL_STEMS: [&str; 6] = ["fig1-operations", "fig2-models", "fig3-length", "fig4-batch", "fig5-decode", "fig6-first-token"];
