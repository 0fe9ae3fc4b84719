//! The world every language-model experiment runs in: the configuration of the tiny LM
//! and its schedules, the seeded synthetic language ([`crate::language`]), the
//! pre-trained base model and its SFT checkpoint, and preference training.
//!
//! One seed fixes everything, in this order of draws from one generator: the language,
//! its probes, the model's initialisation, the pre-training corpus, then the order of
//! every SFT epoch and DPO pass. Pre-training and SFT are trained once per world and seed
//! in a process ([`checkpoint`]) and shared by every experiment that starts there.
//!
//! For the on/off-policy comparison it also holds the pieces every regime shares: where
//! a DPO pair comes from ([`Regime`], [`draw_pair`]) and the update rule that gives every
//! regime exactly the same number of updates ([`train_dpo`]). What the experiments
//! measure in this world is in [`super::lm_measures`].
//!
//! | module | owns |
//! |---|---|
//! | `config` | [`LmConfig`] and its documented keys |
//! | `world` | [`World`], [`pretrain`], the shared [`Checkpoint`]s, the world's updates |
//! | `preference` | [`Regime`], [`draw_pair`], [`Dpo`], [`train_dpo`], [`tracked_dpo`] |
//! | `signal` | the training [`Signal`]s of `lm_influence` and `lm_lens` |

mod config;
mod preference;
mod signal;
mod world;

pub use config::*;
pub use preference::*;
pub use signal::*;
pub use world::*;
