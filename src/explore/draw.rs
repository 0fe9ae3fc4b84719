//! One frame of the explorer: the bars (linear and log, each beside its ghost), the
//! axis of class names and roles, the status lines and the `?` overlay.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Bar, BarChart, BarGroup, Block, Paragraph};

use super::{Explorer, SIMILARITY};

/// The key help, as shown on screen.
pub const HELP: &str =
    "←/→ class  p/n +/− step  c/r y⁺/y⁻  s SFT  d DPO  +/- C  0 reset  ? help  q quit";

/// What every symbol on screen means: the `?` overlay.
pub const SYMBOLS: [&str; 11] = [
    "bars       π = softmax(z) of each class: linear on top, log₁₀ π below",
    "gray bar   π before the last step (the ghost), left of π now",
    "▲          the selected class (←/→), which p and n push",
    "y*         cyan: the most likely class a step on ▲ does not push",
    "y⁺         green: the chosen class, pulled up by s (SFT) and d (DPO)",
    "y⁻         red: the rejected class, pushed down by d (DPO)",
    "C          the step size: each step moves the logits by C·(π − e_k)",
    "β          DPO's inverse temperature: how hard the margin is pushed",
    "ρ          K(χ⁻, χ⁺) / K(χ⁻, χ⁻): how alike y⁺'s and y⁻'s contexts are",
    "           (at ρ = 1 DPO's two π terms cancel; here ρ = 0.5)",
    "reference  π at the last reset (0): DPO's frozen reference model",
];

/// `π` from its log, readable at any size: four decimals from 1e-3 up, else scientific
/// notation read off `log₁₀ π` (so that 1e-320 shows, though it underflows a double).
pub fn probability(log_p: f64) -> String {
    let p = log_p.exp();
    if p >= 1e-3 {
        return format!("{p:.4}");
    }
    let l = log_p / std::f64::consts::LN_10;
    let mut exponent = l.floor();
    let mut mantissa = 10f64.powf(l - exponent);
    if mantissa >= 9.9995 {
        mantissa /= 10.0;
        exponent += 1.0;
    }
    format!("{mantissa:.3}e{exponent:.0}")
}

/// A step size as it reads: whole numbers from 1, three decimals to 0.01, else two
/// significant digits in scientific notation.
fn step_text(c: f64) -> String {
    if c >= 1.0 {
        format!("{c:.0}")
    } else if c >= 1e-2 {
        format!("{c:.3}")
    } else {
        format!("{c:.1e}")
    }
}

/// The colour of class `i`'s bar: its role (`y_star` is the explorer's), so that the
/// cursor hides none.
fn role_colour(explorer: &Explorer, y_star: usize, i: usize) -> Color {
    if i == explorer.chosen {
        Color::Green
    } else if i == explorer.rejected {
        Color::Red
    } else if i == y_star {
        Color::Cyan
    } else {
        Color::Blue
    }
}

/// Where the classes' bars sit in a chart's inner width: the width of each bar and
/// whether each class shows the ghost beside it (when two bars a class fit).
struct Columns {
    bar: u16,
    ghost: bool,
    gap: u16,
}

impl Columns {
    fn fit(width: u16, classes: u16, ghost: bool) -> Self {
        let classes = classes.max(1);
        let gap = u16::from(width >= 2 * classes);
        let per_class = (width + gap) / classes;
        let ghost = ghost && per_class >= 2 + gap;
        let bar = (per_class.saturating_sub(gap) / if ghost { 2 } else { 1 }).max(1);
        Columns { bar, ghost, gap }
    }

    /// The column where class `i`'s first bar starts.
    fn start(&self, i: u16) -> u16 {
        i * (self.bar * if self.ghost { 2 } else { 1 } + self.gap)
    }

    /// The column of class `i`'s bar of π now.
    fn now(&self, i: u16) -> u16 {
        self.start(i) + if self.ghost { self.bar } else { 0 }
    }
}

/// A bar chart of `values` (each in `0..=max`) and, beside each, the ghost's.
fn chart<'a>(
    explorer: &Explorer,
    title: String,
    (values, ghost): (&[u64], Option<&[u64]>),
    max: u64,
    columns: &Columns,
) -> BarChart<'a> {
    let mut chart = BarChart::default()
        .block(Block::bordered().title(title))
        .bar_width(columns.bar)
        .bar_gap(0)
        .group_gap(columns.gap)
        .max(max);
    let y_star = explorer.y_star();
    for (i, &value) in values.iter().enumerate() {
        let mut bars = Vec::with_capacity(2);
        if let (true, Some(ghost)) = (columns.ghost, ghost) {
            bars.push(bar(ghost[i], Color::DarkGray));
        }
        bars.push(bar(value, role_colour(explorer, y_star, i)));
        chart = chart.data(BarGroup::default().bars(&bars));
    }
    chart
}

fn bar(value: u64, colour: Color) -> Bar<'static> {
    Bar::default()
        .value(value)
        .text_value(String::new())
        .style(Style::default().fg(colour))
}

/// The class axis under the charts: class indices where they fit without touching, the
/// selected one always, and a ▲ under the selected class.
fn axis(explorer: &Explorer, columns: &Columns, width: u16) -> [Line<'static>; 2] {
    let width = usize::from(width);
    if width == 0 {
        return [Line::from(""), Line::from("")];
    }
    let mut labels = vec![' '; width];
    let mut free_from = 0;
    let v = explorer.log_pi().len();
    let at = |i: usize| usize::from(columns.now(i as u16)) + 1;
    for i in (0..v).filter(|&i| i != explorer.selected) {
        let text = i.to_string();
        let x = at(i);
        let clear_of_selected = {
            let s = at(explorer.selected);
            x + text.len() < s || x > s + explorer.selected.to_string().len()
        };
        if x >= free_from && x + text.len() <= width && clear_of_selected {
            labels[x..x + text.len()]
                .iter_mut()
                .zip(text.chars())
                .for_each(|(c, t)| *c = t);
            free_from = x + text.len() + 1;
        }
    }
    let s = at(explorer.selected).min(width.saturating_sub(1));
    let selected = explorer.selected.to_string();
    for (k, ch) in selected.chars().enumerate() {
        if s + k < width {
            labels[s + k] = ch;
        }
    }
    let mut cursor = vec![' '; width];
    cursor[s] = '▲';
    [
        Line::from(labels.into_iter().collect::<String>()),
        Line::from(cursor.into_iter().collect::<String>())
            .style(Style::default().fg(Color::Yellow)),
    ]
}

/// Renders one frame: the linear and log bars with the ghost, the class axis, the
/// numbers, the key help, and the `?` overlay on top when it is on.
pub fn draw(frame: &mut Frame<'_>, explorer: &Explorer) {
    let [title, linear, log, axis_area, info, help] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(3),
        Constraint::Fill(2),
        Constraint::Length(2),
        Constraint::Length(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(
        Paragraph::new(
            "ldyn explore   green y⁺   red y⁻   cyan y*   gray: before the last step   ? help",
        ),
        title,
    );
    let lp = explorer.log_pi();
    let v = lp.len() as u16;
    let columns = Columns::fit(
        linear.width.saturating_sub(2),
        v,
        explorer.previous().is_some(),
    );
    let scaled =
        |lp: &[f64], f: &dyn Fn(f64) -> u64| lp.iter().map(|&l| f(l)).collect::<Vec<u64>>();
    let linear_of = |l: f64| (l.exp() * 1000.0).round() as u64;
    let floor = explorer.log_floor();
    let log_of = |l: f64| {
        let l10 = (l / std::f64::consts::LN_10).max(floor);
        ((l10 - floor) / -floor * 1000.0).round() as u64
    };
    let previous = explorer.previous();
    let ghost = |f: &dyn Fn(f64) -> u64| previous.map(|p| scaled(p, f));
    let (now_linear, ghost_linear) = (scaled(&lp, &linear_of), ghost(&linear_of));
    frame.render_widget(
        chart(
            explorer,
            "π (linear, 0 to 1)".into(),
            (&now_linear, ghost_linear.as_deref()),
            1000,
            &columns,
        ),
        linear,
    );
    let (now_log, ghost_log) = (scaled(&lp, &log_of), ghost(&log_of));
    let log_title = format!("log₁₀ π (from −{} to 0)", -floor);
    frame.render_widget(
        chart(
            explorer,
            log_title,
            (&now_log, ghost_log.as_deref()),
            1000,
            &columns,
        ),
        log,
    );
    frame.render_widget(
        Paragraph::new(axis(explorer, &columns, axis_area.width).to_vec()),
        axis_area,
    );
    let risen = explorer.risen();
    let rose = match explorer.rose() {
        None => "–".to_string(),
        Some(0) => "none".to_string(),
        Some(_) if risen.len() <= 6 => format!(
            "class {}",
            risen
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some(n) => format!("{n} of {}", lp.len()),
    };
    let entropy = explorer.entropy();
    let text = vec![
        Line::from(format!(
            "y* = {}   entropy {:.3} nats   ▲ class {}: π = {}",
            explorer.y_star(),
            if entropy.abs() < 5e-4 { 0.0 } else { entropy },
            explorer.selected,
            probability(lp[explorer.selected])
        )),
        Line::from(format!(
            "rose on the last step: {rose}   {}",
            explorer.message
        )),
        Line::from(format!(
            "C = {}  β = {}  ρ = {SIMILARITY}  y⁺ = {} (ref π {})  y⁻ = {} (ref π {})",
            step_text(explorer.step),
            explorer.beta,
            explorer.chosen,
            probability(explorer.reference[explorer.chosen]),
            explorer.rejected,
            probability(explorer.reference[explorer.rejected]),
        )),
    ];
    frame.render_widget(Paragraph::new(text), info);
    frame.render_widget(Paragraph::new(HELP), help);
    if explorer.help {
        overlay(frame);
    }
}

/// The `?` overlay: every symbol on screen, then the keys, in a box over the middle.
fn overlay(frame: &mut Frame<'_>) {
    let area = frame.area();
    let width = area.width.min(84);
    let mut lines: Vec<Line> = SYMBOLS.iter().map(|s| Line::from(*s)).collect();
    lines.push(Line::from(""));
    lines.push(Line::from(HELP));
    lines.push(Line::from("? closes this help"));
    // Each line takes as many rows as it wraps to, inside the border.
    let inner = usize::from(width.saturating_sub(2)).max(1);
    let rows: usize = lines.iter().map(|l| l.width().div_ceil(inner).max(1)).sum();
    let height = (rows as u16 + 2).min(area.height);
    let box_area = ratatui::layout::Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(ratatui::widgets::Clear, box_area);
    frame.render_widget(
        Paragraph::new(lines)
            .block(Block::bordered().title("what is on screen"))
            .wrap(ratatui::widgets::Wrap { trim: false }),
        box_area,
    );
}
