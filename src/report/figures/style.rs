//! What every figure shares: the embedded font, colours and markers, the value axis (linear or
//! log, with its ticks and labels), and the legend drawn in a band of its own below the plot.

use std::sync::Once;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;
use plotters::style::register_font;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Size of every figure, in pixels.
pub const SIZE: (u32, u32) = (900, 560);
pub const FONT: &str = "sans-serif";
pub const TITLE_PX: u32 = 22;
pub const DESC_PX: u32 = 16;
pub const LABEL_PX: u32 = 14;
/// Values spanning more than this ratio get a log axis.
pub const LOG_RATIO: f64 = 20.0;

static DEJAVU_SANS: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// Registers the embedded DejaVu Sans as "sans-serif", once per process: no system font is used.
pub fn ensure_font() {
    REGISTER.call_once(|| {
        if register_font(FONT, FontStyle::Normal, DEJAVU_SANS).is_err() {
            panic!("the embedded DejaVuSans.ttf is not a font plotters can read");
        }
    });
}

/// Tableau 10: distinct, and readable by most colour-blind readers in the first few entries.
const PALETTE: [(u8, u8, u8); 10] = [
    (78, 121, 167),
    (242, 142, 43),
    (89, 161, 79),
    (225, 87, 89),
    (118, 183, 178),
    (237, 201, 72),
    (176, 122, 161),
    (255, 157, 167),
    (156, 117, 95),
    (186, 176, 172),
];

pub fn color(i: usize) -> RGBColor {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    RGBColor(r, g, b)
}

pub const INK: RGBColor = RGBColor(40, 40, 40);
pub const GRID_BOLD: RGBColor = RGBColor(200, 200, 200);
pub const GRID_LIGHT: RGBColor = RGBColor(235, 235, 235);

pub fn font(px: u32) -> TextStyle<'static> {
    (FONT, px).into_font().color(&INK)
}

/// Draws marker `shape` (circle, triangle, square, diamond, cycling) centred on `at`.
pub fn marker<DB: DrawingBackend, CT: CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    shape: usize,
    at: CT::From,
    style: ShapeStyle,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let base = EmptyElement::at(at);
    match shape % 4 {
        0 => area.draw(&(base + Circle::new((0, 0), 4, style))),
        1 => area.draw(&(base + Polygon::new(vec![(0, -5), (5, 4), (-5, 4)], style))),
        2 => area.draw(&(base + Rectangle::new([(-4, -4), (4, 4)], style))),
        _ => area.draw(&(base + Polygon::new(vec![(0, -5), (5, 0), (0, 5), (-5, 0)], style))),
    }
}

/// A linear f64 axis whose ticks (labelled) and grid lines (unlabelled) are given, not computed.
pub struct Axis {
    inner: RangedCoordf64,
    bold: Vec<f64>,
    light: Vec<f64>,
}

impl Axis {
    pub fn new(range: std::ops::Range<f64>, bold: Vec<f64>, light: Vec<f64>) -> Axis {
        Axis { inner: range.into(), bold, light }
    }
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.light.clone()
        } else {
            self.bold.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

/// The value axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YScale {
    pub log: bool,
    pub lo: f64,
    pub hi: f64,
}

impl YScale {
    /// Fits the values (means and CI bounds): from 0 when linear; log, between 1, 2 or 5 times powers
    /// of ten, when the values span more than [`LOG_RATIO`] (or always when `force_log`).
    pub fn fit(values: &[f64], force_log: bool) -> YScale {
        let pos: Vec<f64> = values.iter().copied().filter(|v| v.is_finite() && *v > 0.0).collect();
        if pos.is_empty() {
            return YScale { log: false, lo: 0.0, hi: 1.0 };
        }
        let min = pos.iter().copied().fold(f64::INFINITY, f64::min);
        let max = pos.iter().copied().fold(0.0, f64::max);
        if force_log || max / min > LOG_RATIO {
            let (lo, mut hi) = (one_two_five(min, false), one_two_five(max, true));
            if hi <= lo {
                hi = one_two_five(lo * 1.5, true);
            }
            YScale { log: true, lo, hi }
        } else {
            let step = nice_step(max * 1.08 / 6.0);
            YScale { log: false, lo: 0.0, hi: (max * 1.08 / step).ceil() * step }
        }
    }

    /// Position of a value on the drawn axis (log10 of it on a log axis).
    pub fn pos(&self, v: f64) -> f64 {
        if self.log {
            v.max(self.lo).log10()
        } else {
            v
        }
    }

    pub fn range(&self) -> std::ops::Range<f64> {
        self.pos(self.lo)..self.pos(self.hi)
    }

    /// Labelled ticks and unlabelled grid lines, in axis positions.
    pub fn ticks(&self) -> (Vec<f64>, Vec<f64>) {
        if self.log {
            // Decades are labelled; on an axis of two decades or less, 2 and 5 times them too.
            let few = self.hi / self.lo <= 100.0 * 1.001;
            let (mut bold, mut light) = (vec![], vec![]);
            for d in self.lo.log10().floor() as i32..=self.hi.log10().ceil() as i32 {
                for k in 1..10 {
                    let v = k as f64 * 10f64.powi(d);
                    if v < self.lo * 0.999 || v > self.hi * 1.001 {
                        continue;
                    }
                    if k == 1 || (few && (k == 2 || k == 5)) {
                        bold.push(v.log10());
                    } else {
                        light.push(v.log10());
                    }
                }
            }
            (bold, light)
        } else {
            let step = nice_step(self.hi / 6.0);
            let n = (self.hi / step).round() as usize;
            ((0..=n).map(|i| i as f64 * step).collect(), vec![])
        }
    }

    /// Tick label of an axis position.
    pub fn label(&self, pos: f64) -> String {
        fmt_value(if self.log { 10f64.powf(pos) } else { pos })
    }

    pub fn desc(&self) -> &'static str {
        if self.log {
            "mean latency (ms, log scale)"
        } else {
            "mean latency (ms)"
        }
    }
}

/// The nearest 1, 2 or 5 times a power of ten at or below `v` (at or above when `up`).
fn one_two_five(v: f64, up: bool) -> f64 {
    let mag = 10f64.powf(v.log10().floor());
    let steps = [1.0, 2.0, 5.0, 10.0].map(|k| k * mag);
    if up {
        steps.into_iter().find(|s| *s >= v * 0.999_999).unwrap_or(10.0 * mag)
    } else {
        steps.into_iter().rev().find(|s| *s <= v * 1.000_001).unwrap_or(mag)
    }
}

/// 1, 2, 2.5 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|k| k * mag).find(|s| *s >= raw * 0.999).unwrap_or(10.0 * mag)
}

/// A value with about three significant digits and no trailing zeros.
pub fn fmt_value(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let decimals = (2 - v.abs().log10().floor() as i32).clamp(0, 8) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// What a legend entry shows before its label.
#[derive(Debug, Clone, PartialEq)]
pub enum Swatch {
    /// A bar of a series' colour; published series are drawn lighter, with an outline.
    Bar { color: usize, published: bool },
    /// A line of a series' colour; published series are dashed.
    Line { color: usize, published: bool },
    /// A model's marker, in grey.
    Marker { shape: usize },
}

#[derive(Debug, Clone, PartialEq)]
pub struct LegendEntry {
    pub swatch: Swatch,
    pub label: String,
}

const ROW_H: i32 = 22;
const SWATCH_W: i32 = 22;

/// Entries flowed left to right in rows across the figure's width; returns positions and band height.
pub fn legend_layout<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, entries: &[LegendEntry]) -> (Vec<(i32, i32)>, u32) {
    let width = root.dim_in_pixel().0 as i32;
    let (mut x, mut y) = (16, 6);
    let mut at = vec![];
    for e in entries {
        let text_w = root.estimate_text_size(&e.label, &font(LABEL_PX)).map(|(w, _)| w as i32).unwrap_or(8 * e.label.len() as i32);
        let w = SWATCH_W + 6 + text_w + 22;
        if x > 16 && x + w > width - 8 {
            x = 16;
            y += ROW_H;
        }
        at.push((x, y));
        x += w;
    }
    let height = if entries.is_empty() { 0 } else { (y + ROW_H + 10) as u32 };
    (at, height)
}

pub fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
    at: &[(i32, i32)],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    for (e, &(x, y)) in entries.iter().zip(at) {
        let mid = y + ROW_H / 2 - 2;
        match e.swatch {
            Swatch::Bar { color: c, published } => {
                let rect = [(x + 2, mid - 7), (x + SWATCH_W - 2, mid + 7)];
                let fill = if published { color(c).mix(0.3).filled() } else { color(c).filled() };
                area.draw(&Rectangle::new(rect, fill))?;
                area.draw(&Rectangle::new(rect, color(c).stroke_width(if published { 2 } else { 1 })))?;
            }
            Swatch::Line { color: c, published } => {
                let style = color(c).stroke_width(3);
                if published {
                    for k in 0..3 {
                        area.draw(&PathElement::new(vec![(x + k * 8, mid), (x + k * 8 + 5, mid)], style))?;
                    }
                } else {
                    area.draw(&PathElement::new(vec![(x, mid), (x + SWATCH_W, mid)], style))?;
                }
            }
            Swatch::Marker { shape } => marker(area, shape, (x + SWATCH_W / 2, mid), RGBColor(90, 90, 90).filled())?,
        }
        area.draw(&Text::new(e.label.clone(), (x + SWATCH_W + 6, mid), font(LABEL_PX).pos(Pos::new(HPos::Left, VPos::Center))))?;
    }
    Ok(())
}

/// Fills the figure white, draws the title, and splits off the legend band at the bottom:
/// returns (plot area, legend area).
pub fn frame<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    legend: &[LegendEntry],
) -> Result<(DrawingArea<DB, Shift>, DrawingArea<DB, Shift>, Vec<(i32, i32)>), DrawingAreaErrorKind<DB::ErrorType>> {
    ensure_font();
    root.fill(&WHITE)?;
    let body = root.titled(title, font(TITLE_PX))?;
    let (at, h) = legend_layout(&body, legend);
    let plot_h = body.dim_in_pixel().1.saturating_sub(h);
    let (plot, band) = body.split_vertically(plot_h);
    Ok((plot, band, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_is_linear_from_zero_until_values_span_twenty_times() {
        let s = YScale::fit(&[2.0, 30.0], false);
        assert!(!s.log && s.lo == 0.0 && s.hi >= 30.0 && s.hi <= 40.0, "{s:?}");
        let s = YScale::fit(&[0.09, 32.6], false);
        assert_eq!(s, YScale { log: true, lo: 0.05, hi: 50.0 });
        let s = YScale::fit(&[0.2, 10.0], false);
        assert_eq!(s, YScale { log: true, lo: 0.2, hi: 10.0 });
        assert!(YScale::fit(&[2.0, 3.0], true).log);
    }

    #[test]
    fn ticks_are_readable_numbers() {
        let s = YScale { log: true, lo: 0.01, hi: 100.0 };
        let (bold, light) = s.ticks();
        let labels: Vec<String> = bold.iter().map(|p| s.label(*p)).collect();
        assert_eq!(labels, ["0.01", "0.1", "1", "10", "100"]);
        assert_eq!(light.len(), 4 * 8);
        let s = YScale { log: true, lo: 1.0, hi: 100.0 };
        let labels: Vec<String> = s.ticks().0.iter().map(|p| s.label(*p)).collect();
        assert_eq!(labels, ["1", "2", "5", "10", "20", "50", "100"]);
        let s = YScale { log: true, lo: 0.5, hi: 20.0 };
        let (bold, light) = s.ticks();
        let labels: Vec<String> = bold.iter().map(|p| s.label(*p)).collect();
        assert_eq!(labels, ["0.5", "1", "2", "5", "10", "20"]);
        assert_eq!(light.len(), 4 + 6);
        assert_eq!(fmt_value(2.5), "2.5");
        assert_eq!(fmt_value(0.0001), "0.0001");
        assert_eq!(fmt_value(1250.0), "1250");
    }
}
