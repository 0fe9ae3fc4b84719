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

use plotters::coord::Shift;
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
pub mod remedies;
pub mod squeezing;
mod style;
pub mod sweep;

pub use style::PRINT_WIDTH;
pub use style::{
    Layout, Rect, Swatch, em, family, key, key_height, layouts, mesh, pt, px, record, role, text,
    width_of, with_key, wrap,
};

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

/// A figure's bold title across the top of `area`, broken into lines that fit; takes
/// [`title_height`] of room.
pub fn title(area: &Area<'_>, heading: &str) -> Result<()> {
    let width = area.dim_in_pixel().0;
    let style = text(pt::TITLE)
        .style(FontStyle::Bold)
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    for (k, line) in title_lines(heading, width).iter().enumerate() {
        let y = em(0.6 + TITLE_LINE * k as f64) as i32;
        area.draw_text(line, &style, (width as i32 / 2, y))?;
    }
    Ok(())
}

/// The height of a title line, in [`em`]s.
const TITLE_LINE: f64 = 1.6;

/// The lines of a title across `width` pixels (less a margin).
fn title_lines(heading: &str, width: u32) -> Vec<String> {
    let bold = |s: &str| {
        text(pt::TITLE)
            .style(FontStyle::Bold)
            .box_size(s)
            .map_or(0, |b| b.0)
    };
    let room = width.saturating_sub(em(2.0));
    let mut lines: Vec<String> = Vec::new();
    for word in heading.split(' ') {
        match lines.last_mut() {
            Some(line) if bold(&format!("{line} {word}")) <= room => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// The room a [`title`] of `heading` takes across the whole canvas `width`.
pub fn title_height(heading: &str, width: u32) -> u32 {
    let lines = title_lines(heading, width).len() as f64;
    em(1.0 + TITLE_LINE * lines)
}

/// The room a [`header`] takes across the canvas `width`: the title, and one line per
/// failing claim of `claims`.
pub fn header_height(heading: &str, width: u32, claims: &[Claim]) -> u32 {
    let failing = claims.iter().filter(|c| !c.holds).count();
    title_height(heading, width) + em(1.5) * failing as u32
}

/// Draws the [`title`] across the top of `root` and returns the area below it.
pub fn titled<'a>(root: &Area<'a>, heading: &str) -> Result<Area<'a>> {
    let (top, body) = root.split_vertically(title_height(heading, root.dim_in_pixel().0));
    title(&top, heading)?;
    Ok(body)
}

/// Draws `note` in small text across the top of `area`, broken into lines that fit, and
/// returns the area below it.
pub fn noted<'a>(area: &Area<'a>, note: &str) -> Result<Area<'a>> {
    noted_at(area, note, pt::TEXT)
}

/// [`noted`] at `points`.
pub fn noted_at<'a>(area: &Area<'a>, note: &str, points: f64) -> Result<Area<'a>> {
    let width = area.dim_in_pixel().0;
    let lines = wrap(note, points, width.saturating_sub(em(2.0)));
    let line = 1.4 * points / pt::TEXT;
    let (top, body) = area.split_vertically(em(line * lines.len() as f64 + 0.4));
    let style = text(points)
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    for (k, l) in lines.iter().enumerate() {
        let y = em(0.2 + line * k as f64) as i32;
        top.draw_text(l, &style, (width as i32 / 2, y))?;
    }
    Ok(body)
}

/// Draws the [`header`] across the top of `root` and returns the area below it.
pub fn headed<'a>(root: &Area<'a>, heading: &str, claims: &[Claim]) -> Result<Area<'a>> {
    let height = header_height(heading, root.dim_in_pixel().0, claims);
    let (top, body) = root.split_vertically(height);
    header(&top, heading, claims)?;
    Ok(body)
}

/// A figure's title, and under it, in red, each claim of `claims` that fails, in words
/// ("not reproduced here: …", cut to the width), so that a figure never shows a failed
/// claim as if it held. Takes [`header_height`] of room.
pub fn header(area: &Area<'_>, heading: &str, claims: &[Claim]) -> Result<()> {
    title(area, heading)?;
    let width = area.dim_in_pixel().0;
    let font = text(pt::TEXT)
        .color(&RED)
        .pos(Pos::new(HPos::Center, VPos::Top));
    let room = width.saturating_sub(em(2.0));
    let below = title_height(heading, width) as i32;
    for (k, claim) in claims.iter().filter(|c| !c.holds).enumerate() {
        let mut line = format!("not reproduced here: {}", claim.text);
        while style::width_of(&line, pt::TEXT) > room && line.chars().count() > 2 {
            let keep = line.chars().count() - 2;
            line = line.chars().take(keep).collect::<String>() + "…";
        }
        let y = below + em(1.5) as i32 * k as i32;
        area.draw_text(&line, &font, (width as i32 / 2, y))?;
    }
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
    style::begin(path, (width, height));
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
    style::begin(path, (width, height));
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
/// ten in range (1, 1.5, 2, 3, 5 and 7 times, where that gives fewer than five labels),
/// or the powers of ten alone when that would be more than 12 labels.
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let decades = (lo.log10().floor() as i32)..=(hi.log10().ceil() as i32);
    let within = |v: &f64| *v >= lo && *v <= hi;
    let at = |multiples: &[f64]| -> Vec<f64> {
        (decades.clone())
            .flat_map(|e| multiples.iter().map(move |m| m * 10f64.powi(e)))
            .filter(within)
            .collect()
    };
    let nice = at(&[1.0, 2.0, 5.0]);
    if nice.len() < 5 {
        at(&[1.0, 1.5, 2.0, 3.0, 5.0, 7.0])
    } else if nice.len() <= 12 {
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

/// A chart on a bitmap with `f64` axes.
pub type Chart<'a> = ChartContext<
    'a,
    BitMapBackend<'a>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// A box at `x` of the quantiles `q` (the 5th, 25th, 50th, 75th and 95th percentiles):
/// a whisker from the 5th to the 95th and the interquartile box in `colour`, the median
/// a black bar across it.
pub fn quantile_box(chart: &mut Chart<'_>, x: f64, q: [f64; 5], colour: RGBColor) -> Result<()> {
    let half = 0.28;
    chart.draw_series([PathElement::new(
        vec![(x, q[0]), (x, q[4])],
        colour.stroke_width(2),
    )])?;
    chart.draw_series([Rectangle::new(
        [(x - half, q[1]), (x + half, q[3])],
        colour.mix(0.5).filled(),
    )])?;
    chart.draw_series([PathElement::new(
        vec![(x - half, q[2]), (x + half, q[2])],
        BLACK.stroke_width(3),
    )])?;
    Ok(())
}

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
        .caption(title, text(pt::PANEL))
        .margin(em(0.8))
        .x_label_area_size(em(3.2))
        .y_label_area_size(row_names.map_or(em(4.0), label_width))
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
        .label_style(text(pt::TEXT))
        .axis_desc_style(text(pt::AXIS))
        .draw()?;
    record(&chart);
    for r in 0..rows {
        for c in 0..cols {
            let fill = colour(m[(r, c)]);
            let (x, y) = (c as f64, flip(r));
            chart.draw_series([Rectangle::new(
                [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)],
                fill.filled(),
            )])?;
            if let Some(label) = label {
                let style = text(pt::TEXT)
                    .color(&ink_on(fill))
                    .pos(Pos::new(HPos::Center, VPos::Center));
                chart.draw_series([Text::new(label(r, c), (x, y), style)])?;
            }
        }
    }
    Ok(())
}

/// Room for row names and the axis description beside them.
fn label_width(names: &[&str]) -> u32 {
    let longest = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    em(0.6 * longest as f64 + 3.0)
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
        .margin_top(em(2.5))
        .margin_bottom(em(3.5))
        .margin_right(em(0.5))
        .y_label_area_size(em(5.5))
        .build_cartesian_2d(0.0..1.0, lo..hi)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_label_formatter(&tick)
        .y_desc(label)
        .label_style(text(pt::TEXT))
        .axis_desc_style(text(pt::AXIS))
        .draw()?;
    let steps = 100;
    let h = (hi - lo) / f64::from(steps);
    chart.draw_series((0..steps).map(|i| {
        let y = lo + f64::from(i) * h;
        Rectangle::new([(0.0, y), (1.0, y + h)], colour(y + h / 2.0).filled())
    }))?;
    Ok(())
}
