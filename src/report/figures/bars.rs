//! Grouped bar charts (figs. 1 and 2): one group per case or model, one bar per series,
//! 95% CI as error bars, a × where an average is not drawn.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::style::{color, Axis, FONT, draw_legend, font, frame, LegendEntry, Swatch, YScale, DESC_PX, GRID_BOLD, GRID_LIGHT, INK, LABEL_PX};
use super::{is_published, unique, Bar};

/// Longest turned group label, in pixels; longer ones are shortened with an ellipsis.
const MAX_TURNED_PX: u32 = 200;

/// `text`, cut and ended with "…" if it is wider than `max_px`.
fn shorten<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, text: &str, max_px: u32) -> String {
    let width = |t: &str| area.estimate_text_size(t, &font(LABEL_PX)).map(|s| s.0).unwrap_or(0);
    if width(text) <= max_px {
        return text.to_string();
    }
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() && width(&format!("{}…", chars.iter().collect::<String>())) > max_px {
        chars.pop();
    }
    format!("{}…", chars.iter().collect::<String>())
}

/// What a bar chart shows.
pub struct BarChart<'a> {
    pub title: &'a str,
    pub x_desc: &'a str,
    pub bars: &'a [Bar],
    /// Log axis whatever the spread of the values.
    pub force_log: bool,
}

pub fn draw_bars<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, spec: &BarChart) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let groups = unique(spec.bars.iter().map(|b| b.group.clone()));
    let series = unique(spec.bars.iter().map(|b| b.series.clone()));
    let legend: Vec<LegendEntry> = series
        .iter()
        .enumerate()
        .map(|(i, s)| LegendEntry { swatch: Swatch::Bar { color: i, published: is_published(s) }, label: s.clone() })
        .collect();
    let (plot, band, at) = frame(root, spec.title, &legend)?;
    draw_legend(&band, &legend, &at)?;

    let mut values = vec![];
    for b in spec.bars {
        values.extend(b.mean_ms);
        values.extend(b.ci95_ms.iter().flatten());
    }
    let y = YScale::fit(&values, spec.force_log);
    let (bold, light) = y.ticks();

    // Group labels: horizontal while they fit their slot, else turned a quarter.
    let n = groups.len().max(1);
    let y_area = 84u32;
    let slot = (plot.dim_in_pixel().0.saturating_sub(y_area + 28)) / n as u32;
    let widest = groups.iter().map(|g| plot.estimate_text_size(g, &font(LABEL_PX)).map(|s| s.0).unwrap_or(0)).max().unwrap_or(0);
    let turn = widest + 10 > slot;
    let x_area = if turn { (widest + 14).min(MAX_TURNED_PX + 14) + 30 } else { 54 };

    let centers: Vec<f64> = (0..n).map(|i| i as f64 + 0.5).collect();
    let mut chart = ChartBuilder::on(&plot)
        .margin_top(6)
        .margin_right(24)
        .margin_left(6)
        .x_label_area_size(x_area)
        .y_label_area_size(y_area)
        .build_cartesian_2d(Axis::new(0.0..n as f64, centers, vec![]), Axis::new(y.range(), bold.clone(), light))?;
    // Turned labels are drawn below, reading upwards and ending at their tick.
    let label_of = |v: &f64| if turn { String::new() } else { groups.get((v - 0.5).round().max(0.0) as usize).cloned().unwrap_or_default() };
    let y_label = |v: &f64| y.label(*v);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .bold_line_style(GRID_BOLD)
        .light_line_style(GRID_LIGHT)
        .x_labels(n)
        .y_labels(bold.len())
        .x_label_formatter(&label_of)
        .y_label_formatter(&y_label)
        .x_label_style(font(LABEL_PX))
        .y_label_style(font(LABEL_PX))
        .x_desc(spec.x_desc)
        .y_desc(y.desc())
        .axis_desc_style(font(DESC_PX))
        .axis_style(INK)
        .draw()?;

    if turn {
        let (bx, by) = root.get_base_pixel();
        for (i, g) in groups.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(i as f64 + 0.5, y.pos(y.lo)));
            let style = font(LABEL_PX).transform(FontTransform::Rotate270).pos(Pos::new(HPos::Right, VPos::Center));
            root.draw(&Text::new(shorten(root, g, MAX_TURNED_PX), (px - bx, py - by + 8), style))?;
        }
    }

    // Bars share 80% of their group's slot, but grow no wider than 72 px.
    let ns = series.len().max(1) as f64;
    let px_per_group = (slot as f64).max(1.0);
    let width = (0.8 / ns).min(72.0 / px_per_group);
    let base = y.pos(y.lo);
    for b in spec.bars {
        let g = groups.iter().position(|x| *x == b.group).unwrap_or(0) as f64;
        let k = series.iter().position(|x| *x == b.series).unwrap_or(0);
        let x0 = g + 0.5 - width * ns / 2.0 + k as f64 * width;
        let x1 = x0 + width * 0.9;
        let xc = (x0 + x1) / 2.0;
        let Some(mean) = b.mean_ms else {
            let style = (FONT, 22).into_font().color(&color(k)).pos(Pos::new(HPos::Center, VPos::Bottom));
            chart.plotting_area().draw(&(EmptyElement::at((xc, base)) + Text::new("×", (0, -4), style)))?;
            continue;
        };
        let top = y.pos(mean);
        let published = is_published(&b.series);
        let fill = if published { color(k).mix(0.3).filled() } else { color(k).filled() };
        chart.plotting_area().draw(&Rectangle::new([(x0, base), (x1, top)], fill))?;
        if published {
            chart.plotting_area().draw(&Rectangle::new([(x0, base), (x1, top)], color(k).stroke_width(2)))?;
        }
        if let Some([lo, hi]) = b.ci95_ms {
            let cap = (x1 - x0) * 0.25;
            let (lo, hi) = (y.pos(lo), y.pos(hi));
            let style = INK.stroke_width(1);
            chart.plotting_area().draw(&PathElement::new(vec![(xc, lo), (xc, hi)], style))?;
            chart.plotting_area().draw(&PathElement::new(vec![(xc - cap, lo), (xc + cap, lo)], style))?;
            chart.plotting_area().draw(&PathElement::new(vec![(xc - cap, hi), (xc + cap, hi)], style))?;
        }
    }
    Ok(())
}
