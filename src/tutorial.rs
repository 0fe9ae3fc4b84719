//! A guided tour of the theory, by running it: from one gradient step to the off- vs
//! on-policy contrast in about an hour, for a reader who knows the softmax.
//!
//! Each chapter is a page of prose with code that runs (it is tested with the crate:
//! `cargo test --release --doc`), and ends with the command that regenerates its figure,
//! and the figure, which the chapter explains. Read them in order:
//!
//! 1. [`ch1_one_step`]: one step of a linear softmax, `A`, `K` and `G` by hand, checked
//!    against the real step; then the same on an MLP;
//! 2. [`ch2_entk`]: the eNTK, and what "similar" means;
//! 3. [`ch3_squeezing`]: the squeezing effect of a negative gradient;
//! 4. [`ch4_sequences`]: sequences, and the residual `G` of every loss the paper draws;
//! 5. [`ch5_sft`]: SFT on a tiny language model, the probe families, and hallucination;
//! 6. [`ch6_policy`]: off- vs on-policy DPO, what the negative gradient does, the repeater;
//! 7. [`ch7_extend`]: the paper's remedy, SFT on `y⁻` first ("extend");
//! 8. [`ch8_remedies`]: which fix? RPO, DPOP, IPO, SLiC and extend on the same pairs, read
//!    through the dashboard a TRL user watches;
//! 9. [`ch9_your_own`]: your own objective and your own model, checked like the crate's.
//!
//! The figures are the committed `plots/*.png`, embedded at their own size when the docs
//! are built, so they show offline and their labels read.

#[doc = include_str!("tutorial/ch1_one_step.md")]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/digits_one_step.md"))]
pub mod ch1_one_step {}

#[doc = include_str!("tutorial/ch2_entk.md")]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/digits_entk.md"))]
pub mod ch2_entk {}

#[doc = include_str!("tutorial/ch3_squeezing.md")]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/squeezing.md"))]
pub mod ch3_squeezing {}

#[doc = include_str!("tutorial/ch4_sequences.md")]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/residuals.md"))]
pub mod ch4_sequences {}

#[doc = include_str!("tutorial/ch5_sft.md")]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/lm_sft.md"))]
pub mod ch5_sft {}

#[doc = include_str!("tutorial/ch6_policy.md")]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/lm_policy.md"))]
pub mod ch6_policy {}

#[doc = include_str!("tutorial/ch7_extend.md")]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/lm_extend.md"))]
pub mod ch7_extend {}

#[doc = include_str!("tutorial/ch8_remedies.md")]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/lm_remedies.md"))]
pub mod ch8_remedies {}

#[doc = include_str!("tutorial/ch9_your_own.md")]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/lm_losses.md"))]
pub mod ch9_your_own {}
