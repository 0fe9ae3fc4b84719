//! The style every figure shares, defined once: text sizes in points at a paper's text
//! width, one colour per role (a regime, a loss, an arm, a training signal keeps its
//! colour in every figure), the light grid, and keys (legends) drawn outside the data.
//!
//! **Sizes.** A figure is drawn to be printed [`PRINT_WIDTH`] inches wide, so a size in
//! points becomes `points / 72 × canvas width / PRINT_WIDTH` pixels ([`px`]); the
//! smallest text, [`pt::TEXT`], is 7 pt. Room for text (label areas, margins, key
//! strips) is counted in [`em`]s of that smallest text, so it grows with the text.
//!
//! **Keys.** A key is drawn in a strip of its own ([`key`]), beside or under a chart's
//! plotting area, never inside it. Every chart's plotting area and every key's box is
//! recorded ([`layouts`]), so a test can check that no key covers a panel.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};

use plotters::chart::MeshStyle;
use plotters::coord::CoordTranslate;
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Area, FONT};
use crate::error::Result;
use crate::language::Family;

/// The width a figure is printed at: a paper's text width, in inches.
pub const PRINT_WIDTH: f64 = 6.5;

/// Text sizes in points at [`PRINT_WIDTH`].
pub mod pt {
    /// Tick labels, keys, annotations: the smallest text of every figure.
    pub const TEXT: f64 = 7.0;
    /// Axis descriptions.
    pub const AXIS: f64 = 7.5;
    /// A panel's caption.
    pub const PANEL: f64 = 8.0;
    /// A figure's title.
    pub const TITLE: f64 = 9.5;
}

thread_local! {
    /// The width of the canvas being drawn, in pixels ([`super::save_png`] sets it).
    static CANVAS: Cell<u32> = const { Cell::new(1500) };
    /// What the figures drawn on this thread laid out, per file.
    static LAYOUTS: RefCell<Vec<Layout>> = const { RefCell::new(Vec::new()) };
}

/// Sets the width of the canvas the next sizes are for, and starts the record of the
/// figure at `path`.
pub(super) fn begin(path: &Path, (width, height): (u32, u32)) {
    CANVAS.set(width);
    LAYOUTS.with_borrow_mut(|l| {
        l.push(Layout {
            path: path.to_path_buf(),
            size: (width, height),
            panels: Vec::new(),
            keys: Vec::new(),
        });
    });
}

/// `points` at [`PRINT_WIDTH`] in pixels of the current canvas, rounded up (never smaller).
pub fn px(points: f64) -> u32 {
    (points / 72.0 * f64::from(CANVAS.get()) / PRINT_WIDTH).ceil() as u32
}

/// `n` times the height of the smallest text, in pixels: the unit of room for text.
pub fn em(n: f64) -> u32 {
    (n * f64::from(px(pt::TEXT))).round() as u32
}

/// The figures' font at `points`.
pub fn text(points: f64) -> FontDesc<'static> {
    (FONT, f64::from(px(points))).into_font()
}

/// A pixel rectangle `(left, top, right, bottom)` of the canvas.
pub type Rect = (i32, i32, i32, i32);

/// What one figure laid out: its charts' plotting areas and its keys' boxes.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    /// The file drawn.
    pub path: PathBuf,
    /// The canvas: width and height in pixels.
    pub size: (u32, u32),
    /// Every chart's plotting area.
    pub panels: Vec<Rect>,
    /// Every key's box.
    pub keys: Vec<Rect>,
}

/// Takes the layouts of the figures drawn on this thread since the last call.
pub fn layouts() -> Vec<Layout> {
    LAYOUTS.with_borrow_mut(std::mem::take)
}

/// Records a chart's plotting area in the figure's layout.
pub fn record<DB: DrawingBackend, CT: CoordTranslate>(chart: &ChartContext<'_, DB, CT>) {
    let (x, y) = chart.plotting_area().get_pixel_range();
    push_rect(|l| &mut l.panels, (x.start, y.start, x.end, y.end));
}

fn push_rect(list: fn(&mut Layout) -> &mut Vec<Rect>, rect: Rect) {
    LAYOUTS.with_borrow_mut(|l| {
        if let Some(last) = l.last_mut() {
            list(last).push(rect);
        }
    });
}

/// The light grid and the text sizes of a chart's mesh: major lines only, faint.
pub fn mesh<'m, 'a, 'b, X, Y, DB, XT, YT>(
    m: &'m mut MeshStyle<'a, 'b, X, Y, DB>,
) -> &'m mut MeshStyle<'a, 'b, X, Y, DB>
where
    X: Ranged<ValueType = XT> + ValueFormatter<XT>,
    Y: Ranged<ValueType = YT> + ValueFormatter<YT>,
    DB: DrawingBackend,
{
    m.light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.1))
        .label_style(text(pt::TEXT))
        .axis_desc_style(text(pt::AXIS))
}

/// How a key entry is drawn.
#[derive(Clone, Copy, Debug)]
pub enum Swatch {
    /// A line.
    Line(RGBColor),
    /// A dashed line.
    Dashed(RGBColor),
    /// A line over its interquartile band.
    Band(RGBColor),
    /// A filled bar.
    Bar(RGBColor),
    /// A filled triangle.
    Triangle(RGBColor),
    /// A filled circle.
    Dot(RGBColor),
    /// A circle's outline.
    Ring(RGBColor),
    /// A short horizontal bar, as a prediction's mark.
    Mark(RGBColor),
}

/// The width of `s` in pixels at `points`.
pub fn width_of(s: &str, points: f64) -> u32 {
    text(points).box_size(s).map_or(0, |b| b.0)
}

/// `s` broken at spaces into lines no wider than `width` pixels at `points`.
pub fn wrap(s: &str, points: f64, width: u32) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in s.split(' ') {
        match lines.last_mut() {
            Some(line) if width_of(&format!("{line} {word}"), points) <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// The entries of a key laid out in rows no wider than `width`: each row's entries, by
/// index, and each entry's width (swatch, gap and label).
fn key_rows(entries: &[(Swatch, &str)], width: u32) -> (Vec<Vec<usize>>, Vec<i32>) {
    let (e, gap) = (em(1.0) as i32, em(1.6) as i32);
    let sizes: Vec<i32> = (entries.iter())
        .map(|(_, label)| 2 * e + e / 2 + width_of(label, pt::TEXT) as i32)
        .collect();
    let mut rows: Vec<Vec<usize>> = vec![Vec::new()];
    let mut used = 0;
    for (i, &w) in sizes.iter().enumerate() {
        let row = rows.last_mut().expect("one row at least");
        if !row.is_empty() && used + gap + w > width as i32 {
            rows.push(vec![i]);
            used = w;
        } else {
            used += if row.is_empty() { w } else { gap + w };
            row.push(i);
        }
    }
    (rows, sizes)
}

/// The height a key of `entries` takes in a strip `width` pixels wide.
pub fn key_height(entries: &[(Swatch, &str)], width: u32) -> u32 {
    let rows = key_rows(entries, width).0.len() as f64;
    em(1.5 * rows + 0.6)
}

/// Splits a strip for a key of `entries` off the bottom of `area` (the top, with `top`),
/// draws the key there, and returns the rest of `area`, for the chart.
pub fn with_key<'a>(area: &Area<'a>, entries: &[(Swatch, &str)], top: bool) -> Result<Area<'a>> {
    let (width, height) = area.dim_in_pixel();
    let strip = key_height(entries, width).min(height);
    let (rest, strip) = match top {
        true => {
            let (strip, rest) = area.split_vertically(strip);
            (rest, strip)
        }
        false => area.split_vertically(height - strip),
    };
    key(&strip, entries)?;
    Ok(rest)
}

/// Draws a key of `entries` in `area`, outside every chart: the entries in rows,
/// each row centred, as many per row as fit. Records its box.
pub fn key(area: &Area<'_>, entries: &[(Swatch, &str)]) -> Result<()> {
    let font = text(pt::TEXT).color(&BLACK);
    let (width, height) = area.dim_in_pixel();
    let (e, gap) = (em(1.0) as i32, em(1.6) as i32);
    let (rows, sizes) = key_rows(entries, width);
    let line = (e as f64 * 1.5) as i32;
    let top = (height as i32 - line * rows.len() as i32) / 2;
    let (mut left_most, mut right_most) = (i32::MAX, i32::MIN);
    for (r, row) in rows.iter().enumerate() {
        let total: i32 = row.iter().map(|&i| sizes[i]).sum::<i32>() + gap * (row.len() as i32 - 1);
        let mut x = ((width as i32 - total) / 2).max(0);
        let y = top + line * r as i32 + line / 2;
        left_most = left_most.min(x);
        right_most = right_most.max(x + total);
        for &i in row {
            let (swatch, label) = entries[i];
            draw_swatch(area, swatch, (x, y), e)?;
            let style = font.clone().pos(Pos::new(HPos::Left, VPos::Center));
            area.draw_text(label, &style, (x + 2 * e + e / 2, y))?;
            x += sizes[i] + gap;
        }
    }
    let (bx, by) = area.get_base_pixel();
    let bottom = top + line * rows.len() as i32;
    push_rect(
        |l| &mut l.keys,
        (bx + left_most, by + top, bx + right_most, by + bottom),
    );
    Ok(())
}

/// One swatch, `2e` wide, centred on the height `y` from `x`.
fn draw_swatch(area: &Area<'_>, swatch: Swatch, (x, y): (i32, i32), e: i32) -> Result<()> {
    let stroke = (e / 5).max(2) as u32;
    let line = |c: RGBColor| PathElement::new(vec![(x, y), (x + 2 * e, y)], c.stroke_width(stroke));
    match swatch {
        Swatch::Line(c) => area.draw(&line(c))?,
        Swatch::Dashed(c) => {
            for k in 0..3 {
                let x0 = x + k * 2 * e / 3;
                area.draw(&PathElement::new(
                    vec![(x0, y), (x0 + e / 3, y)],
                    c.stroke_width(stroke),
                ))?;
            }
        }
        Swatch::Band(c) => {
            area.draw(&Rectangle::new(
                [(x, y - e / 2), (x + 2 * e, y + e / 2)],
                c.mix(0.2).filled(),
            ))?;
            area.draw(&line(c))?;
        }
        Swatch::Bar(c) => area.draw(&Rectangle::new(
            [(x + e / 2, y - e / 2), (x + 3 * e / 2, y + e / 2)],
            c.mix(0.8).filled(),
        ))?,
        Swatch::Triangle(c) => area.draw(&TriangleMarker::new((x + e, y), e / 2, c.filled()))?,
        Swatch::Dot(c) => area.draw(&Circle::new((x + e, y), e / 3, c.filled()))?,
        Swatch::Ring(c) => area.draw(&Circle::new((x + e, y), e / 3, c.stroke_width(stroke)))?,
        Swatch::Mark(c) => area.draw(&PathElement::new(
            vec![(x + e / 3, y), (x + 5 * e / 3, y)],
            c.stroke_width(stroke + 1),
        ))?,
    }
    Ok(())
}

/// A distinct colour per probe family (tab10, then four more), in every figure: one arm
/// per family, so a new family cannot be drawn without a colour.
pub fn family(family: Family) -> RGBColor {
    match family {
        Family::Chosen => RGBColor(31, 119, 180),
        Family::Rejected => RGBColor(214, 39, 40),
        Family::ChosenRephrase => RGBColor(44, 160, 44),
        Family::ChosenFormat => RGBColor(148, 103, 189),
        Family::RejectedRephrase => RGBColor(255, 127, 14),
        Family::OtherPrompt => RGBColor(140, 86, 75),
        Family::TestPrompt => RGBColor(227, 119, 194),
        Family::RandomSentence => RGBColor(127, 127, 127),
        Family::ShuffledChosen => RGBColor(188, 189, 34),
        Family::RandomTokens => RGBColor(23, 190, 207),
        Family::Argmax => RGBColor(0, 0, 0),
        Family::ExceptArgmax => RGBColor(90, 90, 90),
        Family::ArgmaxRejectedPrefix => RGBColor(120, 0, 60),
        Family::ExceptArgmaxRejectedPrefix => RGBColor(200, 150, 170),
    }
}

/// The colour of a compared run's label (a DPO regime, a loss, an arm of `lm_extend`, a
/// training signal of the lens): one table for every figure. Off-policy DPO is the same
/// run under every name (`off_policy`, `dpo`, `baseline`), so it has one colour.
pub fn role(id: &str) -> RGBColor {
    ROLES
        .iter()
        .find(|(name, _)| *name == id)
        .map_or(RGBColor(100, 100, 100), |r| r.1)
}

/// The table behind [`role`].
const ROLES: [(&str, RGBColor); 21] = [
    ("off_policy", RED_),
    ("dpo", RED_),
    ("baseline", RED_),
    ("spin", RGBColor(255, 127, 14)),
    ("online", RGBColor(31, 119, 180)),
    ("off_policy_chosen_only", RGBColor(188, 189, 34)),
    ("off_policy_rejected_only", RGBColor(23, 190, 207)),
    ("ipo", RGBColor(148, 103, 189)),
    ("slic", RGBColor(140, 86, 75)),
    ("sppo", RGBColor(227, 119, 194)),
    ("sppo_hard", RGBColor(227, 119, 194)),
    ("extend", RGBColor(44, 160, 44)),
    ("rpo", RGBColor(0, 70, 160)),
    ("rpo_small", RGBColor(100, 160, 230)),
    ("dpop", RGBColor(0, 128, 128)),
    ("dpop_small", RGBColor(110, 200, 190)),
    ("sft_chosen", RGBColor(0, 100, 0)),
    ("sft_rejected", RGBColor(106, 61, 154)),
    ("sft_chosen_rephrase", RGBColor(0, 139, 139)),
    ("sft_rejected_rephrase", RGBColor(128, 128, 0)),
    ("sft_shuffled_chosen", RGBColor(90, 90, 90)),
];

/// Off-policy DPO's red.
const RED_: RGBColor = RGBColor(214, 39, 40);
