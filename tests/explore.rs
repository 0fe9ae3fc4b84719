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
    let y_star = e.y_star();
    let before = pi(&e, y_star);
    e.selected = e.rejected; // the least likely class
    e.apply(Action::Negative);
    assert!(pi(&e, y_star) > before);
    assert_eq!(e.rose(), Some(1));
}

/// A negative step on the argmax (on-policy) flattens π: the entropy rises.
#[test]
fn a_negative_step_on_the_argmax_raises_the_entropy() {
    let mut e = explorer();
    let before = e.entropy();
    e.selected = e.y_star();
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
