//! SVG line charts like the Raspberry Pi study's (Concurrency–Latency, Payload–Throughput, …;
//! see `docs/benchmarks.md`), drawn with plotters' SVG backend: x on a log scale (concurrencies and sizes span decades), one line per
//! series, the baseline in black.

use anyhow::anyhow;
use plotters::prelude::*;
use std::path::Path;

/// One line of a chart.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// Legend text.
    pub(crate) label: String,
    /// (x, y) points; x ≤ 0 is drawn at 1 (log scale).
    pub(crate) points: Vec<(f64, f64)>,
    /// Draw in black: the bare Node.js baseline.
    pub(crate) baseline: bool,
}

/// Labels of a chart.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Axes<'a> {
    /// Title on top.
    pub(crate) title: &'a str,
    /// X axis description.
    pub(crate) x: &'a str,
    /// Y axis description.
    pub(crate) y: &'a str,
}

/// Draws `series` into an SVG file at `path`.
pub(crate) fn line_chart(path: &Path, axes: Axes<'_>, series: &[Series]) -> anyhow::Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());
    let xs = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0.max(1.0)));
    let (x_min, x_max) = xs.fold((f64::MAX, 1.0_f64), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let x_min = if x_min > x_max { 1.0 } else { x_min };
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|y| y.is_finite())
        .fold(0.0_f64, f64::max);
    let y_max = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };

    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(axes.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d((x_min * 0.9..x_max * 1.1).log_scale(), 0.0..y_max)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc(axes.x)
        .y_desc(axes.y)
        .draw()
        .map_err(|e| err(&e))?;
    let mut colour = 0;
    for s in series {
        let style = if s.baseline {
            BLACK.stroke_width(3)
        } else {
            colour += 1;
            Palette99::pick(colour).stroke_width(2)
        };
        let points: Vec<(f64, f64)> = s.points.iter().map(|&(x, y)| (x.max(1.0), y)).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), style))
            .map_err(|e| err(&e))?
            .label(s.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, style.filled())),
            )
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.85))
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_is_an_svg_with_every_series_label() {
        let dir = std::env::temp_dir().join(format!("ew-chart-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.svg");
        let series = vec![
            Series {
                label: "capacity 1".into(),
                points: vec![(1.0, 2.0), (4.0, 3.0), (16.0, 9.0)],
                baseline: false,
            },
            Series {
                label: "node baseline".into(),
                points: vec![(0.0, 1.0), (16.0, 2.0)],
                baseline: true,
            },
        ];
        let axes = Axes {
            title: "Concurrency–Latency",
            x: "clients",
            y: "p50 (ms)",
        };
        line_chart(&path, axes, &series).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("capacity 1") && svg.contains("node baseline"));
        assert!(svg.contains("<polyline"), "lines are drawn");
    }
}
