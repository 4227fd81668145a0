//! Line charts (figs. 3 and 4): latency against input length or batch size, one line per model
//! per series — colour for the series, marker for the model — with 95% CI error bars.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::style::{color, Axis, FONT, draw_legend, fmt_value, font, frame, marker, LegendEntry, Swatch, YScale, DESC_PX, GRID_BOLD, GRID_LIGHT, INK, LABEL_PX};
use super::{is_published, unique, LinePoint};

/// What a line chart shows.
pub struct LineChart<'a> {
    pub title: &'a str,
    pub x_desc: &'a str,
    pub points: &'a [LinePoint],
    /// What the y axis shows, when not mean latency in ms.
    pub y_desc: Option<&'a str>,
}

pub fn draw_lines<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, spec: &LineChart) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let series = unique(spec.points.iter().map(|p| p.series.clone()));
    let models = unique(spec.points.iter().map(|p| p.model.clone()));
    let mut legend: Vec<LegendEntry> = series
        .iter()
        .enumerate()
        .map(|(i, s)| LegendEntry { swatch: Swatch::Line { color: i, published: is_published(s) }, label: s.clone() })
        .collect();
    legend.extend(models.iter().enumerate().map(|(j, m)| LegendEntry { swatch: Swatch::Marker { shape: j }, label: m.clone() }));
    let (plot, band, at) = frame(root, spec.title, &legend)?;
    draw_legend(&band, &legend, &at)?;

    let mut values = vec![];
    for p in spec.points {
        values.extend(p.mean_ms);
        values.extend(p.ci95_ms.iter().flatten());
    }
    let y = YScale::fit(&values, false);
    let (bold, light) = y.ticks();

    let mut xs: Vec<f64> = unique(spec.points.iter().map(|p| p.x));
    xs.sort_by(f64::total_cmp);
    let (xmin, xmax) = (xs.first().copied().unwrap_or(0.0), xs.last().copied().unwrap_or(1.0));
    let span = if xmax > xmin { xmax - xmin } else { 1.0 };
    let x_range = (xmin - span * 0.06)..(xmax + span * 0.06);

    let mut chart = ChartBuilder::on(&plot)
        .margin_top(6)
        .margin_right(24)
        .margin_left(6)
        .x_label_area_size(54)
        .y_label_area_size(84)
        .build_cartesian_2d(Axis::new(x_range, xs.clone(), vec![]), Axis::new(y.range(), bold.clone(), light))?;
    let x_label = |v: &f64| fmt_value(*v);
    let y_label = |v: &f64| y.label(*v);
    chart
        .configure_mesh()
        .bold_line_style(GRID_BOLD)
        .light_line_style(GRID_LIGHT)
        .x_labels(xs.len())
        .y_labels(bold.len())
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .label_style(font(LABEL_PX))
        .x_desc(spec.x_desc)
        .y_desc(spec.y_desc.unwrap_or(y.desc()))
        .axis_desc_style(font(DESC_PX))
        .axis_style(INK)
        .draw()?;

    // Measured series are nudged apart along x so that their error bars do not hide each other;
    // published ones have no error bars and stay in place.
    let measured: Vec<&String> = series.iter().filter(|s| !is_published(s)).collect();
    let nm = measured.len() as f64;
    let cap = span * 0.007;
    for (k, s) in series.iter().enumerate() {
        let published = is_published(s);
        let dx = match measured.iter().position(|m| *m == s) {
            Some(i) => span * 0.008 * (i as f64 - (nm - 1.0) / 2.0),
            None => 0.0,
        };
        let line_style = color(k).stroke_width(2);
        for (j, model) in models.iter().enumerate() {
            let mut pts: Vec<&LinePoint> = spec.points.iter().filter(|p| p.series == *s && p.model == *model).collect();
            pts.sort_by(|a, b| a.x.total_cmp(&b.x));
            // A point not drawn breaks the line: no segment bridges a missing average.
            for run in pts.split(|p| p.mean_ms.is_none()) {
                let coords: Vec<(f64, f64)> = run.iter().map(|p| (p.x + dx, y.pos(p.mean_ms.unwrap_or(y.lo)))).collect();
                if published {
                    chart.draw_series(DashedLineSeries::new(coords.clone(), 7, 5, line_style))?;
                } else {
                    chart.draw_series(LineSeries::new(coords.clone(), line_style))?;
                }
            }
            for p in &pts {
                let x = p.x + dx;
                let Some(mean) = p.mean_ms else {
                    let style = (FONT, 22).into_font().color(&color(k)).pos(Pos::new(HPos::Center, VPos::Bottom));
                    chart.plotting_area().draw(&(EmptyElement::at((x, y.pos(y.lo))) + Text::new("×", (0, -4), style)))?;
                    continue;
                };
                if let Some([lo, hi]) = p.ci95_ms {
                    let (lo, hi) = (y.pos(lo), y.pos(hi));
                    let st = color(k).stroke_width(1);
                    chart.plotting_area().draw(&PathElement::new(vec![(x, lo), (x, hi)], st))?;
                    chart.plotting_area().draw(&PathElement::new(vec![(x - cap, lo), (x + cap, lo)], st))?;
                    chart.plotting_area().draw(&PathElement::new(vec![(x - cap, hi), (x + cap, hi)], st))?;
                }
                let style = if published { WHITE.filled() } else { color(k).filled() };
                marker(chart.plotting_area(), j, (x, y.pos(mean)), style)?;
                if published {
                    marker(chart.plotting_area(), j, (x, y.pos(mean)), color(k).stroke_width(2))?;
                }
            }
        }
    }
    Ok(())
}
