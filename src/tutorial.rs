//! A guided tour of the theory, by running it: learn `A·K·G`, squeezing and the on/off-policy
//! contrast in an hour.
//!
//! Each chapter is a page of prose with code that runs (it is tested with the crate), and
//! ends with the command that regenerates its figure, and the figure. Read them in order:
//!
//! 1. [`ch1_one_step`]: one step of a linear softmax, `A`, `K` and `G` by hand, checked
//!    against the real step;
//! 2. [`ch2_entk`]: the eNTK, and what "similar" means;
//! 3. [`ch3_squeezing`]: the squeezing effect;
//! 4. [`ch4_sequences`]: sequences, and what DPO's `G` looks like;
//! 5. [`ch5_policy`]: off-policy vs on-policy, and the repeater;
//! 6. [`ch6_extend`]: how to add your own model or objective.
//!
//! The figures are the committed `plots/*.png`, embedded when the docs are built, so they
//! show offline.

#[doc = include_str!("tutorial/ch1_one_step.md")]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/residuals.md"))]
pub mod ch1_one_step {}

#[doc = include_str!("tutorial/ch2_entk.md")]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/digits_one_step.md"))]
pub mod ch2_entk {}

#[doc = include_str!("tutorial/ch3_squeezing.md")]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/squeezing.md"))]
pub mod ch3_squeezing {}

#[doc = include_str!("tutorial/ch4_sequences.md")]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/lm_dpo.md"))]
pub mod ch4_sequences {}

#[doc = include_str!("tutorial/ch5_policy.md")]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/lm_policy.md"))]
pub mod ch5_policy {}

#[doc = include_str!("tutorial/ch6_extend.md")]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/lm_losses.md"))]
pub mod ch6_extend {}
