//! `lm_remedies`: every arm trains its own loss on off-policy DPO's pairs in the same
//! order, so an arm that `lm_losses` or `lm_extend` also trains is that run, bit for bit;
//! the dashboard reads every arm at DPO's β against the model it started from; and each
//! `y⁺` claim is what its end table says.

use learning_dynamics::experiments::lm_extend::{self, Arm, LmExtend};
use learning_dynamics::experiments::lm_losses::{self, LmLosses};
use learning_dynamics::experiments::lm_measures::{Dashboard, DpoRun};
use learning_dynamics::experiments::lm_remedies::{self, LmRemedies, Remedies, Remedy};
use learning_dynamics::experiments::lm_world::LmConfig;
use learning_dynamics::experiments::{Experiment, Valid, claim};
use learning_dynamics::objective::{DpopForm, PairLoss, RpoWeighting};

/// A small world: a short pre-training, ten DPO updates tracked every five.
fn world() -> LmConfig {
    let mut world = LmConfig::default();
    world.pretrain.steps = 1500;
    world.dpo_updates = 10;
    world
}

fn remedies() -> Remedies {
    let config = lm_remedies::Config {
        world: world(),
        track_every: 5,
        ..Default::default()
    };
    LmRemedies::run(&Valid::new(config).unwrap(), 31).unwrap()
}

/// The dashboard at every tracking point and every update's record: what two runs of
/// the same loss on the same pairs must share.
fn trace<L>(r: &DpoRun<L>) -> (Vec<Dashboard>, String) {
    let dashboards = r.points.iter().map(|p| p.dashboard).collect();
    (dashboards, format!("{:?}", r.counts))
}

/// RPO v3 and DPOP inside train at DPO's rate, as a TRL user adds them to a run; IPO and
/// SLiC at the rates `lm_losses` matches to DPO's first step.
#[test]
fn every_arm_trains_its_own_loss_at_its_rate() {
    let config = lm_remedies::Config::default();
    let eta = config.world.dpo_eta;
    let rpo = |alpha| PairLoss::Rpo {
        alpha,
        weighting: RpoWeighting::V3,
    };
    let dpop = |lambda| PairLoss::Dpop {
        lambda,
        form: DpopForm::Inside,
    };
    for (remedy, loss) in [
        (Remedy::Dpo, PairLoss::Dpo),
        (Remedy::Rpo, rpo(1.0)),
        (Remedy::RpoSmall, rpo(0.2)),
        (Remedy::Dpop, dpop(50.0)),
        (Remedy::DpopSmall, dpop(5.0)),
        (Remedy::Extend, PairLoss::Dpo),
    ] {
        assert_eq!(config.loss(remedy), (loss, 0.1, eta), "{}", remedy.id());
    }
    let losses = lm_losses::Config::default().losses();
    assert_eq!(config.loss(Remedy::Ipo), losses[1]);
    assert_eq!(config.loss(Remedy::Slic), losses[2]);
    assert_eq!(Remedy::Rpo.name(&config), "rpo α=1");
    assert_eq!(Remedy::DpopSmall.name(&config), "dpop λ=5");
}

/// Same pairs, same order, same rates: the DPO, IPO and SLiC arms are `lm_losses`' runs
/// and the extend arm is `lm_extend`'s, update by update.
#[test]
fn the_arms_that_other_experiments_train_are_their_runs() {
    let data = remedies();
    let runs = &data.comparison;
    assert_eq!(runs.runs.len(), 5 * Remedy::ALL.len());
    assert!(runs.all_updates_taken());
    let losses_config = lm_losses::Config {
        world: world(),
        track_every: 5,
        ..Default::default()
    };
    let losses = LmLosses::run(&Valid::new(losses_config).unwrap(), 31).unwrap();
    for (remedy, loss) in [
        (Remedy::Dpo, PairLoss::Dpo),
        (Remedy::Ipo, PairLoss::Ipo),
        (Remedy::Slic, losses.labels()[2]),
    ] {
        for (a, b) in runs.of(remedy).zip(losses.of(loss)) {
            assert_eq!(trace(a), trace(b), "{} seed {}", remedy.id(), a.seed);
        }
    }
    let extend_config = lm_extend::Config {
        world: world(),
        track_every: 5,
        ..Default::default()
    };
    let extend = LmExtend::run(&Valid::new(extend_config).unwrap(), 31).unwrap();
    for (a, b) in runs.of(Remedy::Extend).zip(extend.of(Arm::Extend)) {
        assert_eq!(trace(a), trace(b), "extend seed {}", a.seed);
        assert_eq!(a.sft.token_updates, b.sft.token_updates);
    }
}

/// Every arm's rewards are β (log π − log π_ref) at the world's β, whatever its own
/// parameter, with its own start as the reference: 0 before the first update, and at
/// the end β times the change of `logps/*`.
#[test]
fn the_dashboard_reads_every_arm_at_dpos_beta() {
    let data = remedies();
    let beta = data.config.world.beta;
    for r in &data.comparison.runs {
        let (first, last) = (r.first().dashboard, r.last().dashboard);
        assert_eq!((first.rewards_chosen, first.rewards_rejected), (0.0, 0.0));
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * (1.0 + b.abs());
        assert!(close(
            last.rewards_chosen,
            beta * (last.logps_chosen - first.logps_chosen)
        ));
        assert!(close(
            last.rewards_rejected,
            beta * (last.logps_rejected - first.logps_rejected)
        ));
    }
}

/// Each remedy's `y⁺` claim counts the seeds of its end table where `logps/chosen`
/// ends over 1 nat above DPO's on the same seed, and holds on all seeds but one.
#[test]
fn each_chosen_claim_is_what_its_end_table_says() {
    let data = remedies();
    let tables = LmRemedies::tables(&data);
    let end = tables.iter().find(|t| t.name == "lm_remedies_end").unwrap();
    assert!(end.header().starts_with("arm,seed,logps_chosen_change,"));
    assert_eq!(end.rows().len(), 5 * Remedy::ALL.len());
    let rows = end.rows();
    let change = |arm: &str, seed: &str| -> f64 {
        let row = (rows.iter())
            .map(|r| r.split(',').collect::<Vec<_>>())
            .find(|f| f[0] == arm && f[1] == seed)
            .unwrap();
        row[2].parse().unwrap()
    };
    let claims = LmRemedies::claims(&data);
    for remedy in &Remedy::ALL[1..] {
        let seeds: Vec<String> = (31..36).map(|s: u64| s.to_string()).collect();
        let k = (seeds.iter())
            .filter(|s| change(remedy.id(), s) > change("dpo", s) + 1.0)
            .count();
        let c = claim(&claims, &format!("{}_keeps_chosen", remedy.id()));
        assert_eq!(c.holds, k >= 4, "{}: {k}/5, {}", remedy.id(), c.text);
        assert!(c.text.contains(&format!("on {k}/5 seeds")), "{}", c.text);
    }
}

/// The tables are typed columns, which the CSV text writes as they read back: in the end
/// table the arm is text, the seed an integer, every measure a real number (missing where
/// a run had no valley push); and every field of every table of the run parses back to
/// its column's value.
#[test]
fn the_tables_are_typed_columns_that_their_csv_reads_back() {
    use learning_dynamics::experiments::Values;

    let data = remedies();
    let tables = LmRemedies::tables(&data);
    let end = tables.iter().find(|t| t.name == "lm_remedies_end").unwrap();
    let kind = |name: &str| match &end.column(name).unwrap().values {
        Values::Real(_) => "real",
        Values::Int(_) => "int",
        Values::Text(_) => "text",
    };
    assert_eq!(
        [
            kind("arm"),
            kind("seed"),
            kind("logps_chosen_change"),
            kind("valley_argmax_rise")
        ],
        ["text", "int", "real", "real"]
    );
    for table in &tables {
        let rows = table.rows();
        assert_eq!(rows.len(), table.len());
        for (i, row) in rows.iter().enumerate() {
            let fields: Vec<&str> = row.split(',').collect();
            assert_eq!(fields.len(), table.columns.len(), "{}: {row}", table.name);
            for (field, column) in fields.iter().zip(&table.columns) {
                let same = match &column.values {
                    Values::Real(v) => v[i] == field.parse().ok(),
                    Values::Int(v) => v[i] == field.parse().ok(),
                    Values::Text(v) => v[i] == *field,
                };
                assert!(same, "{}.{} row {i}: {field}", table.name, column.name);
            }
        }
    }
}
