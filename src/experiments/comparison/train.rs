//! The loop every comparison trains with: per seed, from that seed's SFT checkpoint,
//! each contender's DPO run on the same pairs in the same order, tracked alike.

use super::{Comparison, Label, Layout};
use crate::error::Result;
use crate::experiments::lm_measures::{SftPhase, SqueezingRows};
use crate::experiments::lm_world::{
    Checkpoint, Dpo, LmConfig, Tracking, checkpoint, per_seed, tracked_dpo,
};
use crate::lm::TinyLm;

/// One contender of a comparison on one seed: its label, its preference training, and
/// where that starts (`None`: the seed's SFT checkpoint, also its reference; or a model
/// of its own, its reference, with the SFT phase that led to it).
pub struct Contender<L> {
    /// What distinguishes it.
    pub label: L,
    /// Its preference training.
    pub dpo: Dpo,
    /// Its own start, if not the checkpoint.
    pub start: Option<(TinyLm, SftPhase)>,
}

impl<L> Contender<L> {
    /// `dpo` from the seed's SFT checkpoint.
    pub fn from_checkpoint(label: L, dpo: Dpo) -> Self {
        Contender {
            label,
            dpo,
            start: None,
        }
    }
}

/// What a comparison's runs share: the world, the seeds of one run, how often the
/// measures are tracked, and which squeezing records are written.
#[derive(Clone, Copy, Debug)]
pub struct Training<'a> {
    /// The world (its β is the dashboard's).
    pub world: &'a LmConfig,
    /// Seeds one run covers: `seed, seed + 1, …`.
    pub seeds: u64,
    /// Updates between two tracking points.
    pub track_every: usize,
    /// Whether every squeezing record is written, or only the aggregates.
    pub squeezing_rows: SqueezingRows,
}

impl<L: Label + Send + Sync> Comparison<L> {
    /// Every seed's contenders, `contenders(checkpoint, seed)` in order, each trained by
    /// [`tracked_dpo`] from the seed's checkpoint's generator state, so that runs that
    /// draw their pairs from the dataset see the same pairs in the same order. The
    /// mechanism's attribution is tracked when `layout` writes it.
    ///
    /// # Errors
    /// The first seed's error, in seed order.
    pub fn train(
        layout: &'static Layout,
        training: Training<'_>,
        seed: u64,
        contenders: impl Fn(&Checkpoint, u64) -> Result<Vec<Contender<L>>> + Sync,
    ) -> Result<Self> {
        let world = training.world;
        let every = training.track_every;
        let tracking = Tracking {
            every,
            attribute: layout.mechanism,
            reward_beta: world.beta,
        };
        let runs = per_seed((seed, training.seeds), |seed| {
            let start = checkpoint(world, seed)?;
            let contenders = contenders(&start, seed)?;
            let n = contenders.len();
            (contenders.into_iter().enumerate())
                .map(|(k, c)| {
                    crate::progress::stage(0, || {
                        let id = c.label.id();
                        format!("seed {seed}: DPO {} {}/{n} ({id})", layout.column, k + 1)
                    });
                    let from = match &c.start {
                        Some((model, sft)) => (model, sft.clone()),
                        None => (&start.sft_model, start.sft.every(every)),
                    };
                    Ok(tracked_dpo((c.label, seed), &start, from, &c.dpo, tracking)?.1)
                })
                .collect()
        })?;
        Ok(Comparison {
            layout,
            seed,
            updates: world.dpo_updates,
            sizes: world.language,
            runs,
            squeezing_rows: training.squeezing_rows,
            reward_beta: world.beta,
        })
    }
}
