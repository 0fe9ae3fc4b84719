//! `ldyn explore`: the state machine without a terminal, one frame at 80×24 through
//! ratatui's test backend, and the refusal without a terminal.

use learning_dynamics::explore::{Action, DEFAULT_LOGITS, Explorer, HELP, draw};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use crate::common::{assert_fails, ldyn};

fn explorer() -> Explorer {
    Explorer::new(DEFAULT_LOGITS.to_vec()).unwrap()
}

fn pi(e: &Explorer, class: usize) -> f64 {
    e.log_pi()[class].exp()
}

/// A negative step on a valley class squeezes its mass into y*: y* rises, alone.
#[test]
fn a_negative_step_on_a_valley_raises_y_star() {
    let mut e = explorer();
    e.selected = e.rejected; // the least likely class
    let y_star = e.y_star();
    let before = pi(&e, y_star);
    e.apply(Action::Negative);
    assert!(pi(&e, y_star) > before);
    assert_eq!(e.rose(), Some(1));
}

/// A negative step on the argmax (on-policy) flattens π: the entropy rises.
#[test]
fn a_negative_step_on_the_argmax_raises_the_entropy() {
    // y* is never the selected class: it is the most likely class a step does not push.
    let mut probe = explorer();
    for k in 0..DEFAULT_LOGITS.len() {
        probe.selected = k;
        assert_ne!(probe.y_star(), k);
    }
    let mut e = explorer();
    let before = e.entropy();
    let lp = e.log_pi();
    e.selected = (0..lp.len())
        .max_by(|&a, &b| lp[a].total_cmp(&lp[b]))
        .unwrap();
    e.apply(Action::Negative);
    assert!(e.entropy() > before);
    assert_eq!(e.rose(), Some(DEFAULT_LOGITS.len() - 1));
}

/// SFT raises y⁺; DPO raises y⁺ and lowers y⁻; reset restores the loaded logits.
#[test]
fn sft_dpo_marks_sizes_and_reset() {
    let mut e = explorer();
    let (plus, minus) = (e.chosen, e.rejected);
    let (p0, m0) = (pi(&e, plus), pi(&e, minus));
    e.apply(Action::Sft);
    assert!(pi(&e, plus) > p0);
    e.apply(Action::Reset);
    assert!((pi(&e, plus) - p0).abs() < 1e-15);
    e.apply(Action::Dpo);
    assert!(pi(&e, plus) > p0 && pi(&e, minus) < m0);
    e.selected = e.rejected;
    e.apply(Action::MarkChosen);
    assert_eq!(e.chosen, plus, "y⁺ cannot be y⁻");
    assert!(e.message.contains("must differ"));
    e.apply(Action::Larger);
    assert_eq!(e.step, 4.0, "the default step C = 2, doubled");
    e.apply(Action::Left);
    assert_eq!(e.selected, minus - 1);
}

/// One frame at 80×24 shows the bars, y* and the key help.
#[test]
fn a_frame_fits_an_80_by_24_terminal() {
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let e = explorer();
    terminal.draw(|frame| draw(frame, &e)).unwrap();
    let buffer = terminal.backend().buffer();
    let text: String = buffer.content().iter().map(|c| c.symbol()).collect();
    assert!(text.contains('█'), "bars");
    assert!(text.contains(&format!("y* = {}", e.y_star())));
    assert!(text.contains(HELP));
}

/// Without a terminal it refuses in one line and points to `ldyn squeeze`.
#[test]
fn without_a_terminal_it_suggests_squeeze() {
    let out = ldyn(&["explore"]);
    assert_eq!(out.status.code(), Some(2));
    assert_fails(&out, "ldyn squeeze");
}

/// In a real (pseudo-)terminal of 80×24 it draws, takes keys, quits on `q` and leaves the
/// terminal as it was: the alternate screen is left and the cursor shown again.
#[test]
fn it_quits_on_q_and_restores_the_terminal() {
    use std::io::Write;
    let command = format!(
        "stty cols 80 rows 24; {} explore",
        env!("CARGO_BIN_EXE_ldyn")
    );
    if !crate::common::has_script() {
        return;
    }
    let mut child = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script runs");
    let mut keys = child.stdin.take().unwrap();
    for key in ["n", "d", "q"] {
        std::thread::sleep(std::time::Duration::from_millis(400));
        keys.write_all(key.as_bytes()).unwrap();
        keys.flush().unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(screen.contains("reset"), "the key help was drawn");
    let (enter, leave) = (screen.find("\x1b[?1049h"), screen.rfind("\x1b[?1049l"));
    assert!(
        enter.is_some() && leave > enter,
        "the alternate screen is left"
    );
    assert!(screen.ends_with("\x1b[?25h"), "the cursor is shown again");
}

/// The explorer starts with y⁺ ≠ y⁻ whenever there are two classes or more: the
/// runner-up and the least likely class, and with two classes the two.
#[test]
fn the_explorer_starts_with_two_different_classes() {
    for logits in [
        vec![1.0, 0.0],
        vec![0.0, 1.0],
        vec![3.0, 1.0, 2.0],
        DEFAULT_LOGITS.to_vec(),
    ] {
        let e = Explorer::new(logits.clone()).unwrap();
        assert_ne!(e.chosen, e.rejected, "{logits:?}");
    }
    let e = Explorer::new(vec![1.0, 0.0]).unwrap();
    assert_eq!((e.chosen, e.rejected), (0, 1));
}

/// SIGTERM, SIGHUP, SIGQUIT and SIGINT end the explorer with the terminal restored: the
/// alternate screen left, the cursor shown, and the status a shell reports for the
/// signal (128 + its number).
#[test]
fn a_signal_ends_it_with_the_terminal_restored() {
    if !crate::common::has_script() {
        return;
    }
    for (name, number) in [("TERM", 15), ("HUP", 1), ("QUIT", 3), ("INT", 2)] {
        // A unique argument, so that only this explorer receives the signal.
        let marker = format!("1,2,3.25{number}{}", std::process::id());
        let command = format!(
            "stty cols 80 rows 24; exec {} explore --logits {marker}",
            env!("CARGO_BIN_EXE_ldyn")
        );
        let child = std::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("script runs");
        std::thread::sleep(std::time::Duration::from_millis(800));
        // Only the explorer's own command line starts with the binary (not `script`'s).
        let pattern = format!("^{} explore --logits {marker}", env!("CARGO_BIN_EXE_ldyn"));
        let sent = std::process::Command::new("pkill")
            .args([&format!("-{name}"), "-f", &pattern])
            .status()
            .unwrap();
        assert!(sent.success(), "SIG{name} was sent");
        let out = child.wait_with_output().unwrap();
        let screen = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(128 + number), "SIG{name}");
        let (enter, leave) = (screen.find("\x1b[?1049h"), screen.rfind("\x1b[?1049l"));
        assert!(
            enter.is_some() && leave > enter,
            "SIG{name}: the alternate screen is left"
        );
        assert!(
            screen.ends_with("\x1b[?25h"),
            "SIG{name}: the cursor is shown again"
        );
    }
}

/// A terminal that cannot be set up (stdout a pty, but no controlling terminal after
/// `setsid`) is one error line with status 2, not a panic.
#[test]
fn a_terminal_that_cannot_be_set_up_is_an_error() {
    if !crate::common::has_script() {
        return;
    }
    let command = format!(
        "setsid {} explore < /dev/null; echo status=$?",
        env!("CARGO_BIN_EXE_ldyn")
    );
    let (_, text) = crate::common::on_a_terminal(&command, std::path::Path::new("/dev/null"));
    assert!(
        text.contains("error: the terminal cannot be set up"),
        "{text}"
    );
    assert!(
        text.contains("status=2") && !text.contains("panicked"),
        "{text}"
    );
}

/// The screen of `e` at `width × height`, row by row.
fn screen(e: &Explorer, width: u16, height: u16) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| draw(frame, e)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    (0..height)
        .map(|y| {
            (0..width)
                .map(|x| buffer[(x, y)].symbol().to_string())
                .collect()
        })
        .collect()
}

/// `?` opens an overlay that explains every symbol on screen (ρ, β, y*, y⁺, y⁻, the
/// reference, the ghost, C) and lists the keys; `?` again closes it.
#[test]
fn the_help_overlay_explains_every_symbol() {
    let mut e = explorer();
    e.apply(Action::Help);
    let text = screen(&e, 80, 24).join("\n");
    for symbol in [
        "ρ ",
        "β ",
        "y* ",
        "y⁺ ",
        "y⁻ ",
        "reference ",
        "gray bar ",
        "C ",
    ] {
        assert!(text.contains(symbol), "{symbol}: {text}");
    }
    assert!(text.contains("K(χ⁻, χ⁺) / K(χ⁻, χ⁻)"), "{text}");
    assert!(text.contains("? closes this help"));
    e.apply(Action::Help);
    assert!(!screen(&e, 80, 24).join("\n").contains("? closes this help"));
    // `explore --help` lists the keys, the overlay's among them.
    let out = ldyn(&["explore", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for key in ["p / n", "c / r", "+ / -", "?  ", "q, Esc"] {
        assert!(help.contains(key), "{key}: {help}");
    }
}

/// With a class at π = 1e-200 the log panel reaches below it (its floor follows the
/// smallest π on screen), the class's bar shows, and its readout is 1.000e-200.
#[test]
fn the_log_panel_reaches_a_probability_of_1e_minus_200() {
    let (half, tiny) = (0.5f64.ln(), -200.0 * std::f64::consts::LN_10);
    let mut e = Explorer::new(vec![half, half, tiny]).unwrap();
    assert!((e.log_pi()[2] / std::f64::consts::LN_10 + 200.0).abs() < 1e-9);
    // A tenth below log₁₀ π = −200, rounded down: −220 or −221 (rounding of the log).
    let floor = e.log_floor();
    assert!((-230.0..-200.0).contains(&floor), "{floor}");
    e.selected = 2;
    let rows = screen(&e, 80, 24);
    let text = rows.join("\n");
    assert!(
        text.contains(&format!("log₁₀ π (from −{} to 0)", -floor)),
        "{text}"
    );
    assert!(text.contains("π = 1.000e-200"), "{text}");
    // The log panel's bottom row has a bar for each of the three classes.
    let log_bottom = rows.iter().rposition(|r| r.contains('█')).unwrap();
    assert!(
        rows[log_bottom].matches('█').count() >= 3,
        "{}",
        rows[log_bottom]
    );
    // Ten negative steps on a class push it below 1e-300; the floor stops at −330.
    e.selected = 1;
    for _ in 0..30 {
        e.apply(Action::Larger);
        e.apply(Action::Negative);
    }
    assert!(e.log_pi()[1] / std::f64::consts::LN_10 < -300.0);
    assert_eq!(e.log_floor(), -330.0);
}

/// The readouts: scientific notation below 1e-3, no −0.000, rounded step sizes, and the
/// classes that rose by name; the ghost of the last step's π is drawn in gray.
#[test]
fn readouts_name_what_changed() {
    use learning_dynamics::explore::probability;
    assert_eq!(probability(0.5f64.ln()), "0.5000");
    assert_eq!(probability(2e-4f64.ln()), "2.000e-4");
    // e^−1000 = 10^−434.2945 = 5.076e-435: far below the smallest double, read off log π.
    assert_eq!(probability(-1000.0), "5.076e-435");
    let mut e = Explorer::new(vec![30.0, 0.0]).unwrap();
    let text = screen(&e, 80, 24).join("\n");
    assert!(text.contains("entropy 0.000 nats"), "{text}");
    for _ in 0..11 {
        e.apply(Action::Smaller);
    }
    assert!(screen(&e, 80, 24).join("\n").contains("C = 9.8e-4"));
    let mut e = explorer();
    e.selected = e.rejected;
    e.apply(Action::Negative);
    let text = screen(&e, 80, 24).join("\n");
    assert!(
        text.contains(&format!("rose on the last step: class {}", e.y_star())),
        "{text}"
    );
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal.draw(|frame| draw(frame, &e)).unwrap();
    let gray = terminal
        .backend()
        .buffer()
        .content()
        .iter()
        .filter(|c| c.symbol() == "█" && c.fg == ratatui::style::Color::DarkGray);
    assert!(gray.count() > 0, "the ghost");
}

/// At 50 classes every bar has its own column, the class labels do not run together
/// (every label on the axis is a whole class index), and the ▲ sits under the selected
/// class, whose index is always labelled.
#[test]
fn fifty_classes_read() {
    let logits: Vec<f64> = (0..50).map(|i| (i as f64 * 0.7).sin() * 3.0).collect();
    let mut e = Explorer::new(logits).unwrap();
    e.selected = 37;
    let rows = screen(&e, 80, 24);
    let axis = rows.iter().position(|r| r.contains('▲')).unwrap() - 1;
    let labels: Vec<usize> = rows[axis]
        .split_whitespace()
        .map(|w| w.parse().unwrap())
        .collect();
    // 50 one-column classes in 78 columns: a label of up to two digits and a space fits
    // at least every third class, so 17 labels; 8 leaves room for the selected one's.
    assert!(labels.len() >= 8, "{}", rows[axis]);
    assert!(labels.windows(2).all(|w| w[0] < w[1]), "{}", rows[axis]);
    assert!(labels.contains(&37));
    let cursor = rows[axis + 1].chars().position(|c| c == '▲').unwrap();
    assert_eq!(
        rows[axis].chars().nth(cursor),
        Some('3'),
        "{}\n{}",
        rows[axis],
        rows[axis + 1]
    );
}

/// When its terminal goes away (a closed window, a killed tmux session, a dropped ssh:
/// here a pseudo-terminal whose master is closed, with no SIGHUP sent), the explorer
/// exits with status 129 within seconds instead of spinning on end-of-file reads.
#[test]
fn explore_exits_when_its_terminal_closes() {
    const SCRIPT: &str = r#"
import os, pty, select, subprocess, sys, time
master, slave = pty.openpty()
p = subprocess.Popen([sys.argv[1], "explore"], stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
os.close(slave)
end = time.time() + 1.5
while time.time() < end:
    if select.select([master], [], [], 0.1)[0]:
        try:
            os.read(master, 65536)
        except OSError:
            break
os.close(master)
try:
    print(p.wait(timeout=10))
except subprocess.TimeoutExpired:
    p.kill()
    print("still running 10 s after its terminal closed")
"#;
    let python = std::process::Command::new("python3")
        .arg("--version")
        .output();
    if !crate::common::requires("python3", python.is_ok_and(|o| o.status.success())) {
        return;
    }
    let out = std::process::Command::new("python3")
        .args(["-c", SCRIPT, env!("CARGO_BIN_EXE_ldyn")])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        said.trim(),
        "129",
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
