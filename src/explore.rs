//! `ldyn explore`: an interactive squeezing explorer in the terminal.
//!
//! A distribution `π = softmax(z)` is shown as bars, linear and log (the log panel reaches
//! down to the smallest `π` on screen, 1e-300 at most), each beside a gray ghost of `π`
//! before the last step; the status line names the classes that rose, and `?` opens an
//! overlay that explains every symbol. The learner picks a class and takes gradient steps
//! on the logits, as in [`crate::squeezing`]:
//!
//! * a positive or negative step on the selected class, `Δz = ∓C(π − e_k)`;
//! * an SFT step, positive on the marked `y⁺`;
//! * a DPO step on the marked `y⁺` and `y⁻`, `Δz = −(C/β)(ρ G⁺ + G⁻)`, with the residuals of
//!   [`Pairwise`] against the reference distribution (the one at the last reset), and the
//!   chosen context at similarity `ρ` = [`SIMILARITY`] to the rejected one, as in
//!   `ldyn run residuals` (with `ρ = 1`, DPO's `π` terms would cancel).
//!
//! The state and its transitions are a plain struct, [`Explorer`], tested without a
//! terminal; [`draw`] renders one frame; [`run`] owns the terminal (raw mode, the
//! alternate screen, the key loop) and restores it on every exit.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Bar, BarChart, BarGroup, Block, Paragraph};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};

use crate::error::{Error, Result};
use crate::numerics::{entropy_from_log, log_softmax};
use crate::objective::{PairLoss, Pairwise};
use crate::squeezing::{Direction, Role, Squeeze};

/// The relative similarity `K(χ⁻, χ⁺)/K(χ⁻, χ⁻)` of the DPO step's two contexts.
pub const SIMILARITY: f64 = 0.5;

/// The logits shown when none are given: a peaky distribution over 12 classes.
pub const DEFAULT_LOGITS: [f64; 12] = [
    1.0, 2.5, 4.0, 2.0, 1.5, 0.5, 0.0, -0.5, -1.0, -2.0, -3.0, -4.0,
];

/// What a key does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Select the class to the left.
    Left,
    /// Select the class to the right.
    Right,
    /// A positive step on the selected class.
    Positive,
    /// A negative step on the selected class.
    Negative,
    /// Mark the selected class as `y⁺`.
    MarkChosen,
    /// Mark the selected class as `y⁻`.
    MarkRejected,
    /// An SFT step: positive on `y⁺`.
    Sft,
    /// A DPO step on `y⁺` and `y⁻`.
    Dpo,
    /// Double the step size.
    Larger,
    /// Halve the step size.
    Smaller,
    /// Back to the loaded logits, which also become DPO's reference.
    Reset,
    /// Show or hide the help overlay that explains every symbol on screen.
    Help,
}

/// The explorer's state.
#[derive(Clone, Debug)]
pub struct Explorer {
    loaded: Vec<f64>,
    logits: Vec<f64>,
    reference: Vec<f64>,
    /// The class the cursor is on.
    pub selected: usize,
    /// DPO's and SFT's `y⁺`.
    pub chosen: usize,
    /// DPO's `y⁻`.
    pub rejected: usize,
    /// The step size `C`.
    pub step: f64,
    /// DPO's β.
    pub beta: f64,
    last: Option<Squeeze>,
    /// A one-line note on the last key (an error, or what happened).
    pub message: String,
    /// Whether the help overlay is shown.
    pub help: bool,
}

impl Explorer {
    /// An explorer of `logits`, with the cursor on the argmax, `y⁺` the second most likely
    /// class and `y⁻` the least likely.
    ///
    /// # Errors
    /// Fewer than 2 logits, or a non-finite one.
    pub fn new(logits: Vec<f64>) -> Result<Self> {
        if logits.len() < 2 {
            return Err(Error::InvalidArgument(
                "explore needs at least 2 logits".into(),
            ));
        }
        if !logits.iter().all(|z| z.is_finite()) {
            return Err(Error::NonFinite("logits"));
        }
        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
        let reference = log_pi(&logits);
        // y⁺ is the runner-up and y⁻ the least likely class; with two classes, the two.
        let last = order.len() - 1;
        Ok(Explorer {
            selected: order[0],
            chosen: order[1.min(last - 1)],
            rejected: order[last],
            loaded: logits.clone(),
            logits,
            reference,
            step: 2.0,
            beta: 0.1,
            last: None,
            message: String::new(),
            help: false,
        })
    }

    /// `log π` now.
    pub fn log_pi(&self) -> Vec<f64> {
        log_pi(&self.logits)
    }

    /// The entropy of `π`, in nats.
    pub fn entropy(&self) -> f64 {
        entropy_from_log(&self.log_pi())
    }

    /// `y*`: the most likely class that a step on the selected class `k` does not push,
    /// `argmax_{i≠k} π_i`, as everywhere else in the crate (the squeezing theorems,
    /// `ldyn squeeze`).
    pub fn y_star(&self) -> usize {
        let lp = self.log_pi();
        (0..lp.len())
            .filter(|&i| i != self.selected)
            .max_by(|&a, &b| lp[a].total_cmp(&lp[b]))
            .unwrap_or(0)
    }

    /// How many classes rose on the last step (`None` before the first).
    pub fn rose(&self) -> Option<usize> {
        self.last.as_ref().map(|s| s.risen().len())
    }

    /// The classes that rose on the last step (empty before the first).
    pub fn risen(&self) -> Vec<usize> {
        self.last.as_ref().map_or_else(Vec::new, Squeeze::risen)
    }

    /// `log π` before the last step (the ghost on screen), if there was one.
    pub fn previous(&self) -> Option<&[f64]> {
        self.last.as_ref().map(|s| s.log_p_before.as_slice())
    }

    /// The log panel's lower limit in `log₁₀ π`: a tenth below the smallest `π` on screen
    /// (now or in the ghost), so that its bar still shows, at most −1 and at least −330,
    /// so that `π` down to 1e-300 is drawn.
    pub fn log_floor(&self) -> f64 {
        let smallest = (self.log_pi().iter())
            .chain(self.previous().into_iter().flatten())
            .map(|l| l / std::f64::consts::LN_10)
            .fold(0.0, f64::min);
        (1.1 * smallest.max(-300.0)).floor().min(-1.0)
    }

    /// Applies one key's action. A step that cannot be taken (too large for a double)
    /// leaves the state as it was and says why in [`Explorer::message`].
    pub fn apply(&mut self, action: Action) {
        let v = self.logits.len();
        self.message.clear();
        let stepped = match action {
            Action::Left => {
                self.selected = (self.selected + v - 1) % v;
                Ok(None)
            }
            Action::Right => {
                self.selected = (self.selected + 1) % v;
                Ok(None)
            }
            Action::MarkChosen | Action::MarkRejected => {
                let other = if action == Action::MarkChosen {
                    self.rejected
                } else {
                    self.chosen
                };
                if self.selected == other {
                    self.message = "y⁺ and y⁻ must differ".into();
                } else if action == Action::MarkChosen {
                    self.chosen = self.selected;
                } else {
                    self.rejected = self.selected;
                }
                Ok(None)
            }
            Action::Larger => {
                self.step = (self.step * 2.0).min(1024.0);
                Ok(None)
            }
            Action::Smaller => {
                self.step = (self.step / 2.0).max(1.0 / 1024.0);
                Ok(None)
            }
            Action::Help => {
                self.help = !self.help;
                Ok(None)
            }
            Action::Reset => {
                self.logits = self.loaded.clone();
                self.reference = log_pi(&self.logits);
                self.last = None;
                self.message = "reset: this distribution is DPO's reference".into();
                Ok(None)
            }
            Action::Positive => self.push(self.selected, Direction::Positive).map(Some),
            Action::Negative => self.push(self.selected, Direction::Negative).map(Some),
            Action::Sft => self.push(self.chosen, Direction::Positive).map(Some),
            Action::Dpo => self.dpo().map(Some),
        };
        match stepped {
            Ok(Some(squeeze)) => {
                self.logits = squeeze.log_p_after.clone();
                self.last = Some(squeeze);
            }
            Ok(None) => {}
            Err(e) => self.message = e.to_string(),
        }
    }

    fn push(&self, class: usize, direction: Direction) -> Result<Squeeze> {
        Squeeze::from_logit_step(&self.logits, class, direction, self.step)
    }

    fn dpo(&self) -> Result<Squeeze> {
        let v = self.logits.len();
        let z = nalgebra::DMatrix::from_column_slice(v, 1, &self.logits);
        let pair = Pairwise::classes(
            PairLoss::Dpo,
            self.beta,
            (self.chosen, self.rejected),
            &self.reference,
        );
        let dz: Vec<f64> = pair
            .shared_residual(&z, SIMILARITY)
            .iter()
            .map(|g| -self.step / self.beta * g)
            .collect();
        let mut roles = vec![Role::Other; v];
        roles[self.chosen] = Role::Positive;
        roles[self.rejected] = Role::Negative;
        Squeeze::from_logit_change(&self.logits, &dz, roles)
    }
}

fn log_pi(logits: &[f64]) -> Vec<f64> {
    log_softmax(nalgebra::DVector::from_column_slice(logits).as_view())
        .iter()
        .copied()
        .collect()
}

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

/// Runs the explorer on `logits` in the terminal until `q`, `Esc` or Ctrl-C, and
/// restores the terminal on every exit, an error included.
///
/// # Errors
/// If stdout is not a terminal (the error suggests `ldyn squeeze`), the logits are not
/// valid, or the terminal fails.
pub fn run(logits: Vec<f64>) -> Result<()> {
    require_terminal()?;
    let mut explorer = Explorer::new(logits)?;
    // SIGTERM, SIGHUP, SIGQUIT and SIGINT end the loop, which then restores the terminal
    // (raw mode off, the main screen back) before the process ends.
    let signal = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for number in [SIGTERM, SIGHUP, SIGQUIT, SIGINT] {
        signal_hook::flag::register_usize(number, signal.clone(), number as usize)
            .map_err(|e| Error::InvalidArgument(format!("cannot watch signal {number}: {e}")))?;
    }
    let mut terminal = ratatui::try_init()
        .map_err(|e| Error::InvalidArgument(format!("the terminal cannot be set up: {e}")))?;
    watch_the_terminal(signal.clone());
    let result = key_loop(&mut terminal, &mut explorer, &signal);
    ratatui::restore();
    match result.map_err(|e| Error::InvalidArgument(format!("terminal: {e}")))? {
        0 => Ok(()),
        number => Err(Error::Signal(number as i32)),
    }
}

/// Ends the process from a thread of its own when the terminal hangs up (status 129, as
/// SIGHUP), or when a watched signal is not answered by the key loop within a second
/// (128 + its number). Once its terminal is gone, the terminal library's read returns end
/// of file at once and retries without returning to the key loop, which would spin at
/// full CPU for ever.
fn watch_the_terminal(signal: std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    std::thread::spawn(move || {
        let mut unanswered = 0;
        loop {
            std::thread::sleep(std::time::Duration::from_millis(100));
            if terminal_hung_up() {
                std::process::exit(128 + SIGHUP);
            }
            let number = signal.load(std::sync::atomic::Ordering::Relaxed);
            unanswered = if number == 0 { 0 } else { unanswered + 1 };
            if unanswered > 10 {
                std::process::exit(128 + number as i32);
            }
        }
    });
}

/// Whether the terminal the explorer draws on (stdout) has hung up: its window closed,
/// its tmux session killed, its ssh connection dropped. (Linux and other Unix: `poll`
/// reports `POLLHUP` on the terminal's fd.)
fn terminal_hung_up() -> bool {
    #[repr(C)]
    struct PollFd {
        fd: i32,
        events: i16,
        revents: i16,
    }
    unsafe extern "C" {
        fn poll(fds: *mut PollFd, n: u64, timeout: i32) -> i32;
    }
    const POLLHUP: i16 = 0x10;
    const POLLNVAL: i16 = 0x20;
    let mut fd = PollFd {
        fd: 1,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no timeout; poll writes only its revents.
    let ready = unsafe { poll(&mut fd, 1, 0) };
    ready > 0 && fd.revents & (POLLHUP | POLLNVAL) != 0
}

/// Refuses to start without a terminal on stdout, before anything is read.
///
/// # Errors
/// If stdout is not a terminal.
pub fn require_terminal() -> Result<()> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return Err(Error::InvalidArgument(
            "ldyn explore needs a terminal; without one, `ldyn squeeze` takes one step and prints it".into(),
        ));
    }
    Ok(())
}

/// The keys until one quits (returns 0) or a watched signal arrives (returns its
/// number); the signal flag is looked at every 100 ms.
fn key_loop(
    terminal: &mut ratatui::DefaultTerminal,
    explorer: &mut Explorer,
    signal: &std::sync::atomic::AtomicUsize,
) -> std::io::Result<usize> {
    use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
    use std::sync::atomic::Ordering;
    loop {
        // Whatever woke the loop, a watched signal ends it.
        let number = signal.load(Ordering::Relaxed);
        if number != 0 {
            return Ok(number);
        }
        terminal.draw(|frame| draw(frame, explorer))?;
        while !event::poll(std::time::Duration::from_millis(100))? {
            let number = signal.load(Ordering::Relaxed);
            if number != 0 {
                return Ok(number);
            }
        }
        let Event::Key(key) = event::read()? else {
            continue;
        };
        if key.kind != KeyEventKind::Press {
            continue;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let action = match key.code {
            KeyCode::Char('q') | KeyCode::Esc => return Ok(0),
            KeyCode::Char('c') if ctrl => return Ok(0),
            KeyCode::Left | KeyCode::Char('h') => Action::Left,
            KeyCode::Right | KeyCode::Char('l') => Action::Right,
            KeyCode::Char('p') => Action::Positive,
            KeyCode::Char('n') => Action::Negative,
            KeyCode::Char('c') => Action::MarkChosen,
            KeyCode::Char('r') => Action::MarkRejected,
            KeyCode::Char('s') => Action::Sft,
            KeyCode::Char('d') => Action::Dpo,
            KeyCode::Char('+') | KeyCode::Char('=') => Action::Larger,
            KeyCode::Char('-') => Action::Smaller,
            KeyCode::Char('0') => Action::Reset,
            KeyCode::Char('?') => Action::Help,
            _ => continue,
        };
        explorer.apply(action);
    }
}
