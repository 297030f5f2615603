//! Figures (PNG, plotters): sample paths like the paper's Fig. 3 and W2-versus-step curves like
//! Fig. 4. Text is drawn with the bundled DejaVu Sans font (assets/, Bitstream Vera licence).

use crate::error::{NsgfError, Result};
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/DejaVuSans.ttf");
        // A failure only loses the text, never the figure.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
    });
}

fn plot_err(e: impl std::fmt::Display) -> NsgfError {
    NsgfError::Other(format!("plotting failed: {e}"))
}

fn bounds(points: impl Iterator<Item = (f32, f32)>) -> (f32, f32, f32, f32) {
    let (mut x0, mut x1, mut y0, mut y1) = (
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::INFINITY,
        f32::NEG_INFINITY,
    );
    for (x, y) in points.filter(|(x, y)| x.is_finite() && y.is_finite()) {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if !x0.is_finite() {
        return (-1.0, 1.0, -1.0, 1.0);
    }
    let pad = 0.05 * (x1 - x0).max(y1 - y0).max(1e-3);
    (x0 - pad, x1 + pad, y0 - pad, y1 + pad)
}

/// Sample paths: `path[k]` holds the `(n, 2)` particles after step `k` (row-major). Target
/// samples in blue, source particles in black, intermediate steps coloured from blue (early)
/// to red (late) as in the paper's Fig. 3, final particles in red.
pub fn trajectory_plot(png: &Path, path: &[Vec<f32>], target: &[f32], title: &str) -> Result<()> {
    register_font();
    create_parent(png)?;
    let root = BitMapBackend::new(png, (700, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    draw_paths(&root, path, target, title, 22)?;
    root.present().map_err(plot_err)
}

/// Several methods' sample paths side by side (the paper's Figs. 3 and 6): one panel per
/// `(title, path)`, in rows of at most 4, all over the same target samples.
pub fn trajectory_panels(
    png: &Path,
    panels: &[(String, Vec<Vec<f32>>)],
    target: &[f32],
) -> Result<()> {
    register_font();
    create_parent(png)?;
    let cols = panels.len().clamp(1, 4);
    let rows = panels.len().div_ceil(cols).max(1);
    let root = BitMapBackend::new(png, (cols as u32 * 400, rows as u32 * 400)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let areas = root.split_evenly((rows, cols));
    for ((title, path), area) in panels.iter().zip(areas.iter()) {
        draw_paths(area, path, target, title, 18)?;
    }
    root.present().map_err(plot_err)
}

fn create_parent(png: &Path) -> Result<()> {
    if let Some(dir) = png.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::io::create_dir_all(dir)?;
    }
    Ok(())
}

fn draw_paths<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    path: &[Vec<f32>],
    target: &[f32],
    title: &str,
    font: u32,
) -> Result<()> {
    let pairs = |v: &[f32]| v.chunks_exact(2).map(|c| (c[0], c[1])).collect::<Vec<_>>();
    let all = path.iter().flat_map(|p| pairs(p)).chain(pairs(target));
    let (x0, x1, y0, y1) = bounds(all);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", font))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(40)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .draw()
        .map_err(plot_err)?;
    chart
        .draw_series(
            pairs(target)
                .into_iter()
                .map(|p| Circle::new(p, 1, RGBColor(70, 110, 230).filled())),
        )
        .map_err(plot_err)?;
    let k_max = path.len().saturating_sub(1).max(1) as f64;
    // Path segments between consecutive steps, per particle (at most 300 particles drawn).
    if path.len() >= 2 {
        let n = path[0].len() / 2;
        let stride = (n / 300).max(1);
        for k in 1..path.len() {
            let c = (k as f64) / k_max;
            let color = RGBColor(
                (40.0 + 215.0 * c) as u8,
                60,
                (230.0 * (1.0 - c) + 25.0) as u8,
            )
            .mix(0.5);
            let (prev, cur) = (pairs(&path[k - 1]), pairs(&path[k]));
            chart
                .draw_series(
                    (0..n)
                        .step_by(stride)
                        .map(|i| PathElement::new(vec![prev[i], cur[i]], color.stroke_width(1))),
                )
                .map_err(plot_err)?;
        }
    }
    if let Some(first) = path.first() {
        chart
            .draw_series(
                pairs(first)
                    .into_iter()
                    .map(|p| Circle::new(p, 1, BLACK.filled())),
            )
            .map_err(plot_err)?;
    }
    if let Some(last) = path.last() {
        chart
            .draw_series(
                pairs(last)
                    .into_iter()
                    .map(|p| Circle::new(p, 1, RGBColor(220, 30, 30).filled())),
            )
            .map_err(plot_err)?;
    }
    Ok(())
}

/// `v` with three significant digits, at most six decimals (`126`, `79.4`, `3.16`, `0.0501`;
/// values of 1,000 and more as integers). Zero and non-finite values print as they are.
fn three_digits(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let decimals = |x: f64| (2 - x.abs().log10().floor() as i32).clamp(0, 6) as usize;
    // The decimals of the value as rounded (99.96 prints as 100, not 100.0).
    let d = decimals(v);
    let d = decimals(format!("{v:.d$}").parse().unwrap_or(v));
    format!("{v:.d$}")
}

/// Groups `(label, x, y)` points into the series [`curve_plot`] draws: one per label, in the
/// order labels first appear, each sorted by `x`.
pub fn group_series(
    points: impl IntoIterator<Item = (String, usize, f64)>,
) -> Vec<(String, Vec<(usize, f64)>)> {
    let mut series: Vec<(String, Vec<(usize, f64)>)> = Vec::new();
    for (label, x, y) in points {
        match series.iter_mut().find(|(l, _)| *l == label) {
            Some((_, s)) => s.push((x, y)),
            None => series.push((label, vec![(x, y)])),
        }
    }
    for (_, s) in series.iter_mut() {
        s.sort_by_key(|p| p.0);
    }
    series
}

/// Matplotlib's `tab10` colours: distinct on white (Palette99's third colour is a pale yellow).
const TAB10: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// W2 against the step index for several series (`(label, [(step, w2)])`), log-scale y, with
/// an optional horizontal reference line (the two-sample floor).
pub fn w2_curve(
    png: &Path,
    series: &[(String, Vec<(usize, f64)>)],
    floor: Option<f64>,
    title: &str,
) -> Result<()> {
    let axes = ("step", "W2 to test set");
    curve_plot(
        png,
        series,
        floor.map(|f| ("two-sample floor", f)),
        axes,
        title,
    )
}

/// A metric against an integer x for several series (`(label, [(x, value)])`): lines with a
/// marker at every point, log-scale y, an optional labelled horizontal reference line and
/// `(x, y)` axis descriptions. Non-positive or non-finite values are left out.
pub fn curve_plot(
    png: &Path,
    series: &[(String, Vec<(usize, f64)>)],
    reference: Option<(&str, f64)>,
    axes: (&str, &str),
    title: &str,
) -> Result<()> {
    register_font();
    // The y axis is drawn in log10 units on a linear scale, labelled with the values: plotters'
    // own log scale labels only the powers of ten, which a range such as 20-120 lacks.
    let series: Vec<(String, Vec<(usize, f64)>)> = series
        .iter()
        .map(|(l, s)| {
            let kept = s.iter().filter(|p| p.1 > 0.0 && p.1.is_finite());
            (l.clone(), kept.map(|p| (p.0, p.1.log10())).collect())
        })
        .collect();
    let floor = reference
        .map(|r| r.1)
        .filter(|f| *f > 0.0 && f.is_finite())
        .map(f64::log10);
    create_parent(png)?;
    let max_step = series
        .iter()
        .flat_map(|(_, s)| s.iter().map(|p| p.0))
        .max()
        .unwrap_or(1)
        .max(1);
    let x_end = max_step + max_step.div_ceil(30);
    let vals = series
        .iter()
        .flat_map(|(_, s)| s.iter().map(|p| p.1))
        .chain(floor);
    let (lo, hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let (lo, hi) = if lo.is_finite() {
        (lo - 0.1, hi + 0.1)
    } else {
        (-2.0, 1.0)
    };
    let root = BitMapBackend::new(png, (800, 550)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        // A little room right of the last point, so that its marker shows whole.
        .build_cartesian_2d(0usize..x_end, lo..hi)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .y_labels(12)
        .y_label_formatter(&|v| three_digits(10f64.powf(*v)))
        .x_desc(axes.0)
        .y_desc(axes.1)
        .draw()
        .map_err(plot_err)?;
    for (i, (label, s)) in series.iter().enumerate() {
        let color = TAB10[i % TAB10.len()].to_rgba();
        chart
            .draw_series(LineSeries::new(s.iter().copied(), color.stroke_width(2)).point_size(3))
            .map_err(plot_err)?
            .label(label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    if let (Some((name, _)), Some(f)) = (reference, floor) {
        chart
            .draw_series(LineSeries::new(
                vec![(0, f), (x_end, f)],
                BLACK.stroke_width(1),
            ))
            .map_err(plot_err)?
            .label(name)
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(1)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)
}

#[cfg(test)]
mod tests {
    use super::{group_series, three_digits};

    #[test]
    fn points_group_by_label_in_order_of_appearance_sorted_by_x() {
        let p = |l: &str, x, y| (l.to_string(), x, y);
        let got = group_series([
            p("nsgfpp", 60, 3.0),
            p("icfm", 20, 5.0),
            p("nsgfpp", 10, 1.0),
            p("sjko", 1, 9.0),
            p("nsgfpp", 20, 2.0),
        ]);
        let want = vec![
            ("nsgfpp".to_string(), vec![(10, 1.0), (20, 2.0), (60, 3.0)]),
            ("icfm".to_string(), vec![(20, 5.0)]),
            ("sjko".to_string(), vec![(1, 9.0)]),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn axis_labels_keep_three_significant_digits() {
        let got: Vec<String> = [
            125.893, 79.433, 3.1623, 0.0501187, 1000.4, 99.96, 9.996, 0.0,
        ]
        .iter()
        .map(|v| three_digits(*v))
        .collect();
        assert_eq!(
            got,
            ["126", "79.4", "3.16", "0.0501", "1000", "100", "10.0", "0"]
        );
    }
}
