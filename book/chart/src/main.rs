//! Draws the compare bench's table as the SVG bar chart in the guide.
//!
//! ```text
//! cargo bench -p multiproc --bench compare | tee bench.txt
//! cargo run -p multiproc-book-chart -- bench.txt book/src/figures/bench.svg
//! ```
//!
//! The input is the bench's output: its Markdown table, whose fourth column is
//! multiproc's figure over CPython's ("× better"). Output of
//! `runtime/benches/compare-loads.sh` works too: each `== label` section (idle,
//! pinned, busy) becomes its own series, so the chart shows a row's ratio under
//! each load side by side. Rows without a CPython figure are left out.

use std::error::Error;

use plotters::prelude::*;
use plotters::style::text_anchor;

/// One run of the bench: its label, load average and `(case, ratio)` rows.
struct Series {
    label: String,
    load: String,
    rows: Vec<(String, f64)>,
}

/// Colours of the series, in order (idle, pinned, busy, …).
const COLOURS: [RGBColor; 4] =
    [RGBColor(46, 125, 50), RGBColor(21, 101, 192), RGBColor(230, 81, 0), RGBColor(106, 27, 154)];
/// Pixels per bar, and room for the case names on the left.
const BAR: u32 = 16;
const NAMES: u32 = 330;
const WIDTH: u32 = 900;

/// Reads the bench's output into series, one per `== label` section.
fn parse(text: &str) -> Vec<Series> {
    let mut all: Vec<Series> = Vec::new();
    let fresh = |label: &str| Series { label: label.to_string(), load: String::new(), rows: Vec::new() };
    for line in text.lines() {
        if let Some(label) = line.strip_prefix("== ") {
            all.push(fresh(label.trim()));
            continue;
        }
        if all.is_empty() {
            all.push(fresh("one run"));
        }
        let series = all.last_mut().expect("a series was just pushed");
        if let Some(load) = line.strip_prefix("load average: ") {
            series.load = load.trim().to_string();
        } else if let Some(row) = table_row(line) {
            series.rows.push(row);
        }
    }
    all.retain(|s| !s.rows.is_empty());
    all
}

/// `(case, ratio)` of a table line such as `| pipe RTT | 6 µs | 40 µs | 6.7× | … |`.
fn table_row(line: &str) -> Option<(String, f64)> {
    let cells: Vec<&str> = line.trim().strip_prefix('|')?.split('|').map(str::trim).collect();
    let ratio: f64 = cells.get(3)?.strip_suffix('×')?.parse().ok()?;
    (ratio > 0.0).then(|| (cells[0].to_string(), ratio))
}

/// The cases in first-seen order across all series.
fn cases(all: &[Series]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (case, _) in all.iter().flat_map(|s| &s.rows) {
        if !names.contains(case) {
            names.push(case.clone());
        }
    }
    names
}

/// The log axis' range: a decade-aligned span that holds every ratio and 1×.
fn span(all: &[Series]) -> (f64, f64) {
    let ratios = all.iter().flat_map(|s| s.rows.iter().map(|r| r.1));
    let (lo, hi) = ratios.fold((1.0f64, 1.0f64), |(lo, hi), r| (lo.min(r), hi.max(r)));
    (10f64.powf(lo.log10().floor()), 10f64.powf(hi.log10().ceil()))
}

fn draw(all: &[Series], out: &str) -> Result<(), Box<dyn Error>> {
    let names = cases(all);
    let per_case = all.len() as u32 * BAR + 8;
    let legend_height = 10 + 20 * all.len() as u32;
    let height = 90 + names.len() as u32 * per_case + legend_height;
    let whole = SVGBackend::new(out, (WIDTH, height)).into_drawing_area();
    whole.fill(&WHITE)?;
    let (root, legend_area) = whole.split_vertically(height - legend_height);
    let (lo, hi) = span(all);
    let rows = names.len() as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption("multiproc vs CPython: × faster (> 1× multiproc wins; log scale)", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(NAMES)
        .build_cartesian_2d((lo..hi).log_scale(), 0.0..rows)?;
    chart.configure_mesh().disable_y_mesh().y_labels(0).x_label_formatter(&|x| format!("{x}×")).draw()?;
    let slot = 1.0 / (all.len() as f64 + 0.5);
    for (k, series) in all.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let bars = series.rows.iter().map(|(case, ratio)| {
            let i = names.iter().position(|n| n == case).expect("every case is named") as f64;
            let top = rows - 1.0 - i + 0.25 * slot + (all.len() - 1 - k) as f64 * slot;
            Rectangle::new([(1.0, top), (*ratio, top + slot * 0.9)], colour.filled())
        });
        chart.draw_series(bars)?;
        let load = if series.load.is_empty() { "not recorded" } else { &series.load };
        let (x, y) = (NAMES as i32 + 20, 10 + 20 * k as i32);
        legend_area.draw(&Rectangle::new([(x, y), (x + 12, y + 10)], colour.filled()))?;
        let legend = format!("{} (load average {load})", series.label);
        legend_area.draw(&Text::new(legend, (x + 18, y - 1), ("sans-serif", 13).into_font()))?;
    }
    chart.draw_series(LineSeries::new([(1.0, 0.0), (1.0, rows)], BLACK.stroke_width(2)))?;
    let style = ("sans-serif", 13)
        .into_font()
        .color(&BLACK)
        .pos(text_anchor::Pos::new(text_anchor::HPos::Right, text_anchor::VPos::Center));
    for (i, name) in names.iter().enumerate() {
        let (_, y) = chart.backend_coord(&(lo, rows - 0.5 - i as f64));
        root.draw(&Text::new(name.as_str(), (NAMES as i32 + 4, y), style.clone()))?;
    }
    whole.present()?;
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        return Err("usage: bench-chart <bench output file> <output .svg>".into());
    };
    let text = std::fs::read_to_string(input).map_err(|e| format!("cannot read {input}: {e}"))?;
    let all = parse(&text);
    if all.is_empty() {
        return Err(
            format!("{input} holds no table rows with a CPython ratio (is it the compare bench's output?)").into()
        );
    }
    draw(&all, output)
}
