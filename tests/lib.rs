//! All integration tests compile into this one binary (as nalgebra does), which keeps
//! link time low. Each module states the theory it checks.

mod attribution;
mod cli;
mod common;
mod decomposition;
mod digits;
mod entk;
mod explore;
mod export;
mod figures;
mod gradients;
mod layers;
mod lens;
mod lm;
mod lm_remedies;
mod lm_squeezing;
mod range_ends;
mod reliability;
mod remedies;
mod squeezing;
mod sweep;
mod vecmath;
