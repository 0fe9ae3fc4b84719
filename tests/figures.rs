//! Figures that survive print: every figure of the gallery (and a sweep's) is drawn, and
//! the layout its drawing code records is checked: no key (legend) box overlaps a
//! chart's plotting area, so no key covers a plotted vertex, marker, bar or band edge;
//! every key lies on the canvas; and the text is at least 7 pt at the print width.

use learning_dynamics::experiments::Pooled;
use learning_dynamics::gallery::REGISTRY;
use learning_dynamics::plot::{self, Layout, Rect, pt};

use crate::common::scratch;

fn overlaps(a: Rect, b: Rect) -> bool {
    a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3
}

/// The checks on one figure's layout.
fn check(layout: &Layout) {
    let name = layout.path.display();
    assert!(!layout.panels.is_empty(), "{name}: no chart recorded");
    let (w, h) = (layout.size.0 as i32, layout.size.1 as i32);
    for key in &layout.keys {
        assert!(
            key.0 >= 0 && key.1 >= 0 && key.2 <= w && key.3 <= h,
            "{name}: a key {key:?} reaches off the {w}×{h} canvas"
        );
        for panel in &layout.panels {
            assert!(
                !overlaps(*key, *panel),
                "{name}: the key {key:?} covers the chart {panel:?}"
            );
        }
    }
}

/// The checker itself: overlapping boxes are found, touching ones are not.
#[test]
fn the_overlap_check_finds_overlaps() {
    assert!(overlaps((0, 0, 10, 10), (5, 5, 20, 20)));
    assert!(!overlaps((0, 0, 10, 10), (10, 0, 20, 10)));
    assert!(!overlaps((0, 0, 10, 10), (0, 10, 10, 20)));
}

/// Every experiment's figures at their defaults (claims not rerun): keys beside the
/// charts, never on them; the figures with a key of several entries have one.
#[test]
fn no_key_covers_a_chart_in_any_figure() {
    let dir = scratch("figure-layouts");
    plot::layouts();
    let (mut drawn, mut keyed) = (0, 0);
    for entry in REGISTRY {
        let mut plan = entry.plan(entry.name).unwrap();
        plan.set("robustness_seeds=0").unwrap();
        plan.execute(&dir, &mut |_| {}).unwrap();
        for layout in plot::layouts() {
            check(&layout);
            drawn += 1;
            keyed += usize::from(!layout.keys.is_empty());
        }
    }
    // 19 files (17 PNGs, 2 GIFs) today; 15 of them have keys.
    assert!(drawn >= 19, "only {drawn} figures drawn");
    assert!(keyed >= 15, "only {keyed} figures recorded a key");
}

/// A sweep's heatmaps, for one and for two grid keys.
#[test]
fn no_key_covers_a_chart_in_a_sweep_figure() {
    let dir = scratch("sweep-layout");
    let pooled = |cells: Vec<String>| Pooled {
        holds: vec![vec![3, 1]; cells.len()],
        seeds: vec![5; cells.len()],
        failed: vec![(0, None); cells.len()],
        claims: vec!["valley_argmax_rises".into(), "peak_flattens".into()],
        summary: Vec::new(),
        cells,
    };
    let two: Vec<String> = ["0.1", "0.2"]
        .iter()
        .flat_map(|b| ["0.05", "0.1"].map(|e| format!("beta={b};dpo_eta={e}")))
        .collect();
    plot::layouts();
    plot::sweep::draw(
        &pooled(two),
        (&["beta", "dpo_eta"], "a grid"),
        &dir.join("two.png"),
    )
    .unwrap();
    let one: Vec<String> = ["12", "24"]
        .map(|n| format!("language.entities={n}"))
        .to_vec();
    plot::sweep::draw(
        &pooled(one),
        (&["language.entities"], "sizes"),
        &dir.join("one.png"),
    )
    .unwrap();
    let layouts = plot::layouts();
    assert_eq!(layouts.len(), 2);
    layouts.iter().for_each(check);
}

/// The smallest text is 7 pt at the print width, whatever the canvas: its size in
/// pixels is 7/72 of an inch of a canvas `PRINT_WIDTH` inches wide.
#[test]
fn the_smallest_text_is_seven_points_at_print_width() {
    const {
        assert!(pt::TEXT >= 7.0);
        assert!(pt::TEXT <= pt::AXIS && pt::AXIS <= pt::PANEL && pt::PANEL <= pt::TITLE);
    }
    let dir = scratch("text-size");
    for width in [1100u32, 1500, 1800] {
        let mut size = 0;
        plot::save_png(&dir.join(format!("{width}.png")), (width, 100), |_| {
            size = plot::px(pt::TEXT);
            Ok(())
        })
        .unwrap();
        let points = f64::from(size) * 72.0 * plot::PRINT_WIDTH / f64::from(width);
        assert!((7.0..7.5).contains(&points), "{width} px: {points} pt");
    }
}
