//! `bench.svg`: throughput (records/s, median) by input size, one line per
//! mode and baseline, one panel per workload; both axes log-scaled.

use super::table::median_rate;
use super::{BenchResults, Column};
use plotters::prelude::*;

fn color(c: Column) -> RGBColor {
    match c {
        Column::Serial => RGBColor(31, 119, 180),
        Column::Pipeline => RGBColor(255, 127, 14),
        Column::Multiprocess => RGBColor(44, 160, 44),
        Column::Plain => RGBColor(110, 110, 110),
        Column::Rayon => RGBColor(214, 39, 40),
        Column::Bound => RGBColor(148, 103, 189),
    }
}

fn human(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if v >= 1e3 {
        format!("{}K", trim(v / 1e3))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

/// What a workload's sizes count.
fn unit(w: super::BenchWorkload) -> &'static str {
    match w {
        super::BenchWorkload::Logs => "lines",
        super::BenchWorkload::Matrix => "tasks",
    }
}

/// Tick values 1, 2, 3, 5 × 10^k inside `[lo, hi]`, so that a range of less
/// than a decade still gets labels.
fn nice_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut ticks = Vec::new();
    let mut decade = 10f64.powf(lo.max(1e-9).log10().floor());
    while decade <= hi {
        for m in [1.0, 2.0, 3.0, 5.0] {
            let v = m * decade;
            if v >= lo && v <= hi {
                ticks.push(v);
            }
        }
        decade *= 10.0;
    }
    ticks
}

/// Draws the chart as SVG text.
pub fn render_svg(results: &BenchResults) -> anyhow::Result<String> {
    let mut svg = String::new();
    let panels = results.workloads.len().max(1);
    {
        let root =
            SVGBackend::with_string(&mut svg, (760 * panels as u32, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
        let areas = root.split_evenly((1, panels));
        for (area, &w) in areas.iter().zip(&results.workloads) {
            let lines: Vec<(Column, Vec<(f64, f64)>)> = results
                .columns
                .iter()
                .map(|&c| {
                    let pts = results
                        .sizes
                        .iter()
                        .filter_map(|&n| {
                            median_rate(&results.samples, w, n, c).map(|r| (n as f64, r))
                        })
                        .collect();
                    (c, pts)
                })
                .filter(|(_, p): &(Column, Vec<(f64, f64)>)| !p.is_empty())
                .collect();
            let all = lines.iter().flat_map(|(_, p)| p.iter());
            let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
            for &(x, y) in all {
                x0 = x0.min(x);
                x1 = x1.max(x);
                y0 = y0.min(y);
                y1 = y1.max(y);
            }
            if x0 > x1 {
                (x0, x1, y0, y1) = (1.0, 10.0, 1.0, 10.0);
            }
            let caption = format!(
                "parpipe bench: {} throughput ({} cores, median of {})",
                w.as_str(),
                results.cores,
                results.repeat
            );
            let mut chart = ChartBuilder::on(area)
                .caption(caption, ("sans-serif", 20))
                .margin(16)
                .x_label_area_size(48)
                .y_label_area_size(72)
                .build_cartesian_2d(
                    (x0 / 1.3..x1 * 1.3)
                        .log_scale()
                        .with_key_points(results.sizes.iter().map(|&n| n as f64).collect()),
                    // Headroom above the lines keeps the legend off them.
                    (y0 / 1.5..y1 * 3.0)
                        .log_scale()
                        .with_key_points(nice_ticks(y0 / 1.5, y1 * 3.0)),
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            chart
                .configure_mesh()
                .x_desc(format!("input size ({}, log scale)", unit(w)))
                .y_desc(format!("{} per second (log scale)", unit(w)))
                .x_label_formatter(&|v| human(*v))
                .y_label_formatter(&|v| human(*v))
                .label_style(("sans-serif", 14))
                .axis_desc_style(("sans-serif", 15))
                .light_line_style(WHITE.mix(0.0))
                .draw()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            for (c, pts) in lines {
                let style = color(c).stroke_width(if c.mode().is_some() { 3 } else { 2 });
                chart
                    .draw_series(LineSeries::new(pts.clone(), style))
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .label(c.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color(c).stroke_width(3))
                    });
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 4, color(c).filled())))
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .label_font(("sans-serif", 14))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::super::{BenchWorkload, Sample};
    use super::*;

    #[test]
    fn chart_names_every_column_and_workload() {
        let mut samples = Vec::new();
        for &(size, c, wall) in &[
            (1000, Column::Serial, 0.01),
            (10000, Column::Serial, 0.1),
            (1000, Column::Rayon, 0.005),
            (10000, Column::Rayon, 0.05),
        ] {
            samples.push(Sample {
                workload: BenchWorkload::Logs,
                size,
                column: c,
                rep: 0,
                wall_seconds: wall,
                records: size,
                cpu_percent: 100.0,
                peak_rss_bytes: 1,
                inline: false,
            });
        }
        let results = BenchResults {
            cores: 2,
            bound_ways: 2,
            repeat: 1,
            workloads: vec![BenchWorkload::Logs],
            sizes: vec![1000, 10000],
            columns: vec![Column::Serial, Column::Rayon],
            unavailable: vec![],
            samples,
            ratios: vec![],
        };
        let svg = render_svg(&results).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..50.min(svg.len())]);
        for word in ["serial", "rayon", "logs throughput"] {
            assert!(svg.contains(word), "missing {word}");
        }
    }
}
