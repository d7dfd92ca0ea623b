//! PNG plots of the training diagnostics, like the lecture's figures: the loss curve (log10,
//! averaged per 1,000 steps), activation and gradient histograms per Tanh layer, and the
//! update:data ratio (log10) of each Linear weight over time with the -3 guide line.
//!
//! The font is embedded (DejaVu Sans Mono, `assets/`), so the plots look the same on every
//! machine and need no system fonts.

use std::sync::Once;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::diagnostics::{DiagnosticsFile, HISTOGRAM_BINS, Histogram};

const FONT: &[u8] = include_bytes!("../assets/DejaVuSansMono.ttf");
const SIZE: (u32, u32) = (1000, 500);

/// Why a plot could not be drawn or written.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw {plot}: {reason}")]
pub struct PlotError {
    /// The PNG file's name.
    pub plot: &'static str,
    /// What went wrong.
    pub reason: String,
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The embedded font is a valid TrueType file; if registration failed the plots
        // would merely lack text, so the result is not fatal.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// The PNG files [`render_all`] draws, in its order.
pub const FILES: [&str; 4] = [
    "loss.png",
    "activations.png",
    "gradients.png",
    "update_ratio.png",
];

/// Draws the plots of [`FILES`] and returns each PNG file's bytes, in that order; writing them
/// is the caller's (through `namegen_files::output::Outputs`, like every file).
pub fn render_all(diagnostics: &DiagnosticsFile) -> Result<[Vec<u8>; 4], PlotError> {
    register_font();
    let losses: Vec<(u64, f64)> = diagnostics
        .loss_per_1000_steps
        .iter()
        .map(|l| (l.step, l.loss))
        .collect();
    let loss = loss(FILES[0], &losses)?;
    // The histograms are of the last record; their legends give its statistics.
    let last_tanh = diagnostics.records.last().map_or(&[][..], |r| &r.tanh[..]);
    let stats = |i: usize| last_tanh.get(i);
    let activation_labels: Vec<String> = (0..diagnostics.activation_histograms.len())
        .map(|i| match stats(i) {
            Some(t) => format!(
                "layer {i} (tanh): mean {:+.2}, std {:.2}, saturated {:.1}%",
                t.mean,
                t.std,
                100.0 * t.saturation
            ),
            None => format!("layer {i} (tanh)"),
        })
        .collect();
    let gradient_labels: Vec<String> = (0..diagnostics.gradient_histograms.len())
        .map(|i| match stats(i) {
            Some(t) => format!("layer {i} (tanh): std {:.2e}", t.grad_std),
            None => format!("layer {i} (tanh)"),
        })
        .collect();
    let activations = histograms(
        FILES[1],
        "activation distribution (tanh outputs)",
        &diagnostics.activation_histograms,
        &activation_labels,
    )?;
    let gradients = histograms(
        FILES[2],
        "gradient distribution (at tanh outputs)",
        &diagnostics.gradient_histograms,
        &gradient_labels,
    )?;
    let ratios: Vec<(u64, Vec<f64>)> = diagnostics
        .records
        .iter()
        .map(|r| {
            let ratios = r.weights.iter().map(|w| w.update_to_data_log10).collect();
            (r.step, ratios)
        })
        .collect();
    let update_ratios = update_ratios(FILES[3], &ratios)?;
    Ok([loss, activations, gradients, update_ratios])
}

/// Pads a range that would otherwise be empty, so that a chart can be built over it.
fn span(lo: f64, hi: f64) -> std::ops::Range<f64> {
    if lo.is_finite() && hi.is_finite() && lo < hi {
        let pad = (hi - lo) * 0.05;
        lo - pad..hi + pad
    } else if lo.is_finite() {
        lo - 1.0..lo + 1.0
    } else {
        0.0..1.0
    }
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
}

/// The axes of one chart: ranges and titles; `integer_x` labels x without decimals (steps).
struct Axes<'t> {
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    x_desc: &'t str,
    y_desc: &'t str,
    integer_x: bool,
}

type Chart<'a> = ChartContext<'a, BitMapBackend<'a>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws one PNG the way every plot here looks (white, captioned, labelled mesh), lets
/// `series` add the lines, then a legend when `legend` is set, and returns the PNG's bytes.
/// Failures name `name`.
fn plot(
    name: &'static str,
    caption: &str,
    axes: Axes<'_>,
    legend: bool,
    series: impl FnOnce(&mut Chart<'_>) -> Result<(), String>,
) -> Result<Vec<u8>, PlotError> {
    let fail = |reason: String| PlotError { plot: name, reason };
    let mut pixels = vec![0u8; SIZE.0 as usize * SIZE.1 as usize * 3];
    let root = BitMapBackend::with_buffer(&mut pixels, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(axes.x, axes.y)
        .map_err(|e| fail(e.to_string()))?;
    let integer = |x: &f64| format!("{x:.0}");
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(axes.x_desc).y_desc(axes.y_desc);
    if axes.integer_x {
        mesh.x_label_formatter(&integer);
    }
    mesh.draw().map_err(|e| fail(e.to_string()))?;
    series(&mut chart).map_err(fail)?;
    if legend {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| fail(e.to_string()))?;
    }
    root.present().map_err(|e| fail(e.to_string()))?;
    drop(chart);
    drop(root);
    encode_png(&pixels).map_err(|e| fail(e.to_string()))
}

/// The PNG file of an RGB image of [`SIZE`].
fn encode_png(pixels: &[u8]) -> Result<Vec<u8>, png::EncodingError> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, SIZE.0, SIZE.1);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(pixels)?;
    writer.finish()?;
    Ok(bytes)
}

/// A legend entry's sample: a short line in `color`.
fn legend_line(color: RGBAColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color)
}

fn loss(name: &'static str, losses: &[(u64, f64)]) -> Result<Vec<u8>, PlotError> {
    let points: Vec<(f64, f64)> = losses
        .iter()
        .map(|&(step, loss)| (step as f64, loss.log10()))
        .collect();
    let (x_lo, x_hi) = bounds(points.iter().map(|p| p.0));
    let (y_lo, y_hi) = bounds(points.iter().map(|p| p.1));
    let axes = Axes {
        x: span(x_lo, x_hi),
        y: span(y_lo, y_hi),
        x_desc: "step",
        y_desc: "log10(loss)",
        integer_x: true,
    };
    let caption = "training loss, log10, mean per 1,000 steps";
    plot(name, caption, axes, false, |chart| {
        chart
            .draw_series(LineSeries::new(points, &BLUE))
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

fn histograms(
    name: &'static str,
    title: &str,
    layers: &[Histogram],
    labels: &[String],
) -> Result<Vec<u8>, PlotError> {
    let series: Vec<Vec<(f64, f64)>> = layers
        .iter()
        .map(|h| {
            let width = (h.max - h.min) / HISTOGRAM_BINS as f64;
            h.density
                .iter()
                .enumerate()
                .map(|(i, &d)| (h.min + (i as f64 + 0.5) * width, d))
                .collect()
        })
        .collect();
    let (x_lo, x_hi) = bounds(series.iter().flatten().map(|p| p.0));
    let (_, y_hi) = bounds(series.iter().flatten().map(|p| p.1));
    let axes = Axes {
        x: span(x_lo, x_hi),
        y: span(0.0, y_hi),
        x_desc: "value",
        y_desc: "density",
        integer_x: false,
    };
    plot(name, title, axes, true, |chart| {
        for (i, (points, label)) in series.into_iter().zip(labels).enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(points, color))
                .map_err(|e| e.to_string())?
                .label(label)
                .legend(legend_line(color));
        }
        Ok(())
    })
}

fn update_ratios(name: &'static str, records: &[(u64, Vec<f64>)]) -> Result<Vec<u8>, PlotError> {
    let layers = records.iter().map(|r| r.1.len()).max().unwrap_or(0);
    let (x_lo, x_hi) = bounds(records.iter().map(|r| r.0 as f64));
    let (y_lo, y_hi) = bounds(records.iter().flat_map(|r| r.1.iter().copied()));
    let x = span(x_lo, x_hi);
    let guide = [(x.start, -3.0), (x.end, -3.0)];
    let axes = Axes {
        x,
        y: span(y_lo.min(-3.0), y_hi.max(-3.0)),
        x_desc: "step",
        y_desc: "log10(std(update) / std(weight))",
        integer_x: true,
    };
    let caption = "update:data ratio, log10, per Linear weight";
    plot(name, caption, axes, true, |chart| {
        for layer in 0..layers {
            let color = Palette99::pick(layer).to_rgba();
            let points = records
                .iter()
                .filter_map(|(step, ratios)| Some((*step as f64, *ratios.get(layer)?)))
                .filter(|p| p.1.is_finite());
            chart
                .draw_series(LineSeries::new(points, color))
                .map_err(|e| e.to_string())?
                .label(format!("layer {layer} weight"))
                .legend(legend_line(color));
        }
        chart
            .draw_series(LineSeries::new(guide, BLACK.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label("-3 (guide)")
            .legend(legend_line(BLACK.to_rgba()));
        Ok(())
    })
}
