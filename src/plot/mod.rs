//! Figures as PNG files. Plotting only turns an experiment's data into pictures: every
//! number drawn is in (or recomputed from the rows of) one of the experiment's tables.
//! The gallery ([`crate::gallery`]) chooses the paths; each figure is a
//! `draw(&Data, path)` function.
//!
//! Text is drawn with an embedded copy of DejaVu Sans (`assets/`, with its licence), so
//! a figure does not depend on the fonts of the machine and the same data always
//! gives the same bytes. Every file is drawn to a temporary path and renamed into
//! place ([`crate::io::write_atomic`]).

use std::path::Path;
use std::sync::Once;

use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{Error, Result};
use crate::experiments::Claim;
use crate::io::write_atomic;

pub mod digits;
pub mod lens;
pub mod lm;
pub mod mechanism;
pub mod policy;
pub mod squeezing;
pub mod sweep;

/// The font family name registered for every figure.
pub const FONT: &str = "sans-serif";

/// Colour of "before" curves.
pub const BEFORE: RGBColor = RGBColor(150, 150, 150);
/// Colour of "after" curves.
pub const AFTER: RGBColor = RGBColor(31, 119, 180);
/// Colour marking a class that receives a negative gradient.
pub const NEGATIVE: RGBColor = RGBColor(214, 39, 40);
/// Colour marking a class that receives a positive gradient.
pub const POSITIVE: RGBColor = RGBColor(44, 160, 44);

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let bytes = include_bytes!("../../assets/DejaVuSans.ttf");
        for style in [FontStyle::Normal, FontStyle::Bold] {
            plotters::style::register_font(FONT, style, bytes)
                .unwrap_or_else(|_| panic!("the embedded font is a valid TrueType file"));
        }
    });
}

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for Error {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        Error::Plot(e.to_string())
    }
}

/// A figure's bold title across the top of `area`.
pub fn title(area: &Area<'_>, text: &str, size: u32) -> Result<()> {
    area.titled(text, (FONT, size).into_font().style(FontStyle::Bold))?;
    Ok(())
}

/// A figure's title, and under it, in red, the ids of the claims of `claims` that fail
/// ("not reproduced here: …"), so that a figure never shows a failed claim as if it
/// held. Fits a 50-pixel header with a title of size 22 or less.
pub fn header(area: &Area<'_>, text: &str, size: u32, claims: &[Claim]) -> Result<()> {
    title(area, text, size)?;
    let failed: Vec<&str> = claims.iter().filter(|c| !c.holds).map(|c| c.id).collect();
    if !failed.is_empty() {
        let line = format!("not reproduced here: {}", failed.join(", "));
        let width = area.dim_in_pixel().0 as i32;
        let font = (FONT, 14)
            .into_font()
            .color(&RED)
            .pos(Pos::new(HPos::Center, VPos::Top));
        area.draw_text(&line, &font, (width / 2, size as i32 + 10))?;
    }
    Ok(())
}

/// The legend of a chart's labelled series, in the style of every figure.
pub fn legend<'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, CT>,
    position: SeriesLabelPosition,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    Ok(())
}

/// Draws a `width × height` PNG at `path` with `draw`: rendered into memory, encoded,
/// then written whole ([`write_atomic`]).
pub fn save_png(
    path: &Path,
    (width, height): (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()>,
) -> Result<()> {
    register_font();
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    let mut png = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut png),
        &pixels,
        width,
        height,
        image::ColorType::Rgb8,
    )
    .map_err(|e| Error::Plot(format!("{}: {e}", path.display())))?;
    write_atomic(path, &png)
}

/// Draws a `width × height` GIF animation at `path`: `frames` frames, frame `k` drawn by
/// `draw(k, area)` and shown for `delay_ms`, looping; encoded in memory (a deterministic
/// 256-colour quantisation per frame), then written whole ([`write_atomic`]).
pub fn save_gif(
    path: &Path,
    (width, height): (u32, u32),
    frames: usize,
    delay_ms: u32,
    draw: impl Fn(usize, &DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()>,
) -> Result<()> {
    use image::codecs::gif::{GifEncoder, Repeat};
    register_font();
    let encoding = |e: image::ImageError| Error::Plot(format!("{}: {e}", path.display()));
    let mut gif = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut gif, 10);
        encoder.set_repeat(Repeat::Infinite).map_err(encoding)?;
        for k in 0..frames {
            let mut pixels = vec![0u8; width as usize * height as usize * 3];
            {
                let root =
                    BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
                root.fill(&WHITE)?;
                draw(k, &root)?;
                root.present()?;
            }
            let rgba = image::RgbaImage::from_fn(width, height, |x, y| {
                let i = 3 * (y as usize * width as usize + x as usize);
                image::Rgba([pixels[i], pixels[i + 1], pixels[i + 2], 255])
            });
            let delay = image::Delay::from_numer_denom_ms(delay_ms, 1);
            encoder
                .encode_frame(image::Frame::from_parts(rgba, 0, 0, delay))
                .map_err(encoding)?;
        }
    }
    write_atomic(path, &gif)
}

/// The staircase of a distribution over class indices: a flat step `[i − ½, i + ½]`
/// at height `values[i]` for every class, like the paper's step plots.
pub fn staircase(values: &[f64]) -> Vec<(f64, f64)> {
    values
        .iter()
        .enumerate()
        .flat_map(|(i, &v)| [(i as f64 - 0.5, v), (i as f64 + 0.5, v)])
        .collect()
}

/// The labelled values of a log axis from `lo` to `hi`: 1, 2 and 5 times each power of
/// ten in range, or the powers of ten alone when that would be more than 12 labels.
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let decades = (lo.log10().floor() as i32)..=(hi.log10().ceil() as i32);
    let within = |v: &f64| *v >= lo && *v <= hi;
    let nice: Vec<f64> = (decades.clone())
        .flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(e)))
        .filter(within)
        .collect();
    if nice.len() <= 12 {
        nice
    } else {
        decades.map(|e| 10f64.powi(e)).filter(within).collect()
    }
}

/// An axis tick label: whole numbers without decimals, small values with up to three
/// significant decimals, and never `-0`.
pub fn tick(v: &f64) -> String {
    let v = if v.abs() < 1e-12 { 0.0 } else { *v };
    if v == v.round() && v.abs() < 1e6 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        // 0.9999 is drawn "1", never "1." or "1.000"; −0.0001 is drawn "0".
        let s = format!("{v:.3}");
        match s.trim_end_matches('0').trim_end_matches('.') {
            "-0" => "0".to_string(),
            t => t.to_string(),
        }
    }
}

/// A drawing area of the PNG backend.
pub type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Sequential colour map from white (`t = 0`) to dark blue (`t = 1`), like matplotlib's Blues.
pub fn blues(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let lerp = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(lerp(247.0, 8.0), lerp(251.0, 48.0), lerp(255.0, 107.0))
}

/// Diverging colour map for `t ∈ [−1, 1]`: blue below 0, white at 0, red above.
pub fn diverging(t: f64) -> RGBColor {
    let t = t.clamp(-1.0, 1.0);
    let (end, s) = if t < 0.0 {
        ((33.0, 102.0, 172.0), -t)
    } else {
        ((178.0, 24.0, 43.0), t)
    };
    let lerp = |b: f64| (247.0 + (b - 247.0) * s).round() as u8;
    RGBColor(lerp(end.0), lerp(end.1), lerp(end.2))
}

/// Text colour that stays readable on `background`.
fn ink_on(background: RGBColor) -> RGBColor {
    let RGBColor(r, g, b) = background;
    let luminance = 0.299 * f64::from(r) + 0.587 * f64::from(g) + 0.114 * f64::from(b);
    if luminance < 128.0 { WHITE } else { BLACK }
}

/// Names for the rows and columns of a [`heatmap`] (indices are used where `None`).
pub type Names<'a> = (Option<&'a [&'a str]>, Option<&'a [&'a str]>);

/// A labelled matrix plot: cell `(r, c)` of `m` is drawn at row `r` (top to bottom) and
/// column `c`, coloured by `colour(m[(r, c)])`, and labelled with `label(m[(r, c)])` if given.
pub fn heatmap(
    area: &Area<'_>,
    title: &str,
    axes: (&str, &str),
    names: Names<'_>,
    m: &nalgebra::DMatrix<f64>,
    colour: &dyn Fn(f64) -> RGBColor,
    label: Option<&dyn Fn(f64) -> String>,
) -> Result<()> {
    let by_cell = label.map(|f| move |r: usize, c: usize| f(m[(r, c)]));
    let by_cell = by_cell
        .as_ref()
        .map(|f| f as &dyn Fn(usize, usize) -> String);
    heatmap_labelled(area, title, axes, names, m, colour, by_cell)
}

/// A [`heatmap`] whose cell `(r, c)` is labelled `label(r, c)`.
pub fn heatmap_labelled(
    area: &Area<'_>,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    (row_names, col_names): Names<'_>,
    m: &nalgebra::DMatrix<f64>,
    colour: &dyn Fn(f64) -> RGBColor,
    label: Option<&dyn Fn(usize, usize) -> String>,
) -> Result<()> {
    let (rows, cols) = m.shape();
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(row_names.map_or(50, label_width))
        .build_cartesian_2d(-0.5..cols as f64 - 0.5, -0.5..rows as f64 - 0.5)?;
    let flip = |r: usize| (rows - 1 - r) as f64;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(cols)
        .y_labels(rows)
        .x_label_formatter(&|x| name(col_names, x.round() as usize))
        .y_label_formatter(&|y| name(row_names, (rows as f64 - 1.0 - y).round() as usize))
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .draw()?;
    for r in 0..rows {
        for c in 0..cols {
            let fill = colour(m[(r, c)]);
            let (x, y) = (c as f64, flip(r));
            chart.draw_series([Rectangle::new(
                [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)],
                fill.filled(),
            )])?;
            if let Some(label) = label {
                let style = (FONT, 12)
                    .into_font()
                    .color(&ink_on(fill))
                    .pos(Pos::new(HPos::Center, VPos::Center));
                chart.draw_series([Text::new(label(r, c), (x, y), style)])?;
            }
        }
    }
    Ok(())
}

/// Room for row names at 14 px and the axis description beside them: at least 150 px.
fn label_width(names: &[&str]) -> u32 {
    let longest = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    (8 * longest as u32 + 40).max(150)
}

fn name(names: Option<&[&str]>, i: usize) -> String {
    names
        .and_then(|n| n.get(i))
        .map_or_else(|| i.to_string(), |s| (*s).to_string())
}

/// A vertical colour bar from `lo` to `hi` with a label.
pub fn colourbar(
    area: &Area<'_>,
    (lo, hi): (f64, f64),
    colour: &dyn Fn(f64) -> RGBColor,
    label: &str,
) -> Result<()> {
    let mut chart = ChartBuilder::on(area)
        .margin_top(40)
        .margin_bottom(50)
        .margin_right(10)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..1.0, lo..hi)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_label_formatter(&tick)
        .y_desc(label)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()?;
    let steps = 100;
    let h = (hi - lo) / f64::from(steps);
    chart.draw_series((0..steps).map(|i| {
        let y = lo + f64::from(i) * h;
        Rectangle::new([(0.0, y), (1.0, y + h)], colour(y + h / 2.0).filled())
    }))?;
    Ok(())
}
