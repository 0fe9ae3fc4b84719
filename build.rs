//! Embeds the committed figures that the tutorial shows (`plots/*.png`) as data URLs, so
//! `cargo doc` displays them offline. Each becomes `$OUT_DIR/NAME.md`, a one-line
//! Markdown image that `src/tutorial.rs` includes.

use std::path::Path;

/// The figures the tutorial's chapters end with, in chapter order.
const FIGURES: [&str; 9] = [
    "digits_one_step",
    "digits_entk",
    "squeezing",
    "residuals",
    "lm_sft",
    "lm_policy",
    "lm_extend",
    "lm_remedies",
    "lm_losses",
];

/// Standard base64 (RFC 4648) with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn main() {
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    for name in FIGURES {
        let path = format!("plots/{name}.png");
        println!("cargo:rerun-if-changed={path}");
        let markdown = match std::fs::read(&path) {
            // At its own pixel size (tick labels 14 px and up), in a box that scrolls
            // sideways on a narrow page, rather than shrunk to the page's width.
            Ok(png) => format!(
                "\n\n<div style=\"overflow-x: auto\"><img alt=\"The figure {name}.png\" style=\"max-width: none\" src=\"data:image/png;base64,{}\"></div>\n\n*The figure above is `plots/{name}.png` at full size; scroll sideways on a narrow screen.*\n",
                base64(&png)
            ),
            Err(_) => format!("\n\n*(`{path}` is missing: `ldyn gallery` draws it.)*\n"),
        };
        let target = Path::new(&out).join(format!("{name}.md"));
        std::fs::write(&target, markdown).expect("OUT_DIR is writable");
    }
}
