//! `ldyn explore`: an interactive squeezing explorer in the terminal.
//!
//! A distribution `π = softmax(z)` is shown as bars, linear and log. The learner picks a
//! class and takes gradient steps on the logits, as in [`crate::squeezing`]:
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

    /// `y*`: the most likely class now.
    pub fn y_star(&self) -> usize {
        let lp = self.log_pi();
        (0..lp.len())
            .max_by(|&a, &b| lp[a].total_cmp(&lp[b]))
            .unwrap_or(0)
    }

    /// How many classes rose on the last step (`None` before the first).
    pub fn rose(&self) -> Option<usize> {
        self.last.as_ref().map(|s| s.risen().len())
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
    "←/→ class  p/n +/− step  c/r mark y⁺/y⁻  s SFT  d DPO  +/- size  0 reset  q quit";

/// The bars of `values` (each in `0..=max`), coloured by role.
fn bars(explorer: &Explorer, values: &[u64]) -> Vec<Bar<'static>> {
    let y_star = explorer.y_star();
    values
        .iter()
        .enumerate()
        .map(|(i, &value)| {
            let colour = if i == explorer.selected {
                Color::Yellow
            } else if i == explorer.chosen {
                Color::Green
            } else if i == explorer.rejected {
                Color::Red
            } else if i == y_star {
                Color::Cyan
            } else {
                Color::Blue
            };
            Bar::default()
                .value(value)
                .text_value(String::new())
                .label(Line::from(format!("{i}")))
                .style(Style::default().fg(colour))
        })
        .collect()
}

/// Renders one frame: the linear and log bars, the numbers, the key help.
pub fn draw(frame: &mut Frame<'_>, explorer: &Explorer) {
    let [title, linear, log, info, help] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(3),
        Constraint::Fill(2),
        Constraint::Length(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(
        Paragraph::new("ldyn explore   yellow: selected   green: y⁺   red: y⁻   cyan: y*"),
        title,
    );
    let lp = explorer.log_pi();
    let v = lp.len() as u16;
    let width = (linear.width.saturating_sub(2) / v.max(1))
        .saturating_sub(1)
        .max(1);
    let chart = |block: &'static str, values: Vec<u64>, max: u64| {
        BarChart::default()
            .block(Block::bordered().title(block))
            .data(BarGroup::default().bars(&bars(explorer, &values)))
            .bar_width(width)
            .bar_gap(1)
            .max(max)
    };
    let linear_values: Vec<u64> = lp
        .iter()
        .map(|l| (l.exp() * 1000.0).round() as u64)
        .collect();
    frame.render_widget(chart("π (linear, 0 to 1)", linear_values, 1000), linear);
    // log₁₀ π from −8 (and below) to 0, in hundredths.
    let log_values: Vec<u64> = lp
        .iter()
        .map(|l| (((l / std::f64::consts::LN_10).max(-8.0) + 8.0) * 100.0).round() as u64)
        .collect();
    frame.render_widget(chart("log₁₀ π (from −8 to 0)", log_values, 800), log);
    let rose = explorer
        .rose()
        .map_or("–".to_string(), |r| format!("{r}/{}", lp.len()));
    let text = vec![
        Line::from(format!(
            "y* = {}  entropy {:.3} nats  rose on last step: {rose}  class {}: π = {:.4}",
            explorer.y_star(),
            explorer.entropy(),
            explorer.selected,
            lp[explorer.selected].exp()
        )),
        Line::from(format!(
            "step C = {}  DPO: β = {}  ρ = {SIMILARITY}  y⁺ = {} (ref π {:.3})  y⁻ = {} (ref π {:.1e})",
            explorer.step,
            explorer.beta,
            explorer.chosen,
            explorer.reference[explorer.chosen].exp(),
            explorer.rejected,
            explorer.reference[explorer.rejected].exp(),
        )),
        Line::from(format!(
            "reference π: the last reset.  {}",
            explorer.message
        )),
    ];
    frame.render_widget(Paragraph::new(text), info);
    frame.render_widget(Paragraph::new(HELP), help);
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
    let result = key_loop(&mut terminal, &mut explorer, &signal);
    ratatui::restore();
    match result.map_err(|e| Error::InvalidArgument(format!("terminal: {e}")))? {
        0 => Ok(()),
        number => Err(Error::Signal(number as i32)),
    }
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
            _ => continue,
        };
        explorer.apply(action);
    }
}
