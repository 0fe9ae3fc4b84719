//! The architecture of `src/lib.rs` as a test: a module may import from its own layer
//! and the layers below it, never from a layer above (core → models → experiments →
//! outputs → binary); and within the experiments layer, an experiment imports only the
//! layer's shared modules, never another experiment.

use std::path::Path;

/// The layer of each top-level module, bottom first.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "core",
        &[
            "error",
            "numerics",
            "model",
            "objective",
            "decomposition",
            "entk",
            "trainer",
            "squeezing",
            "stats",
            "Rng64",
            "Error",
            "Result",
        ],
    ),
    ("models", &["mlp", "lm", "language", "digits"]),
    ("experiments", &["experiments"]),
    (
        "outputs",
        &["gallery", "plot", "export", "explore", "bench", "io"],
    ),
    ("docs", &["tutorial"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, mods)| mods.contains(&module))
}

/// The top-level modules a source file names through `crate::NAME` (comments skipped).
fn imports(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim_start)
        .filter(|l| !l.starts_with("//"))
        .flat_map(|l| l.split("crate::").skip(1).map(str::to_string))
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut checked = 0;
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative.iter().next().unwrap().to_string_lossy();
        let module = top.trim_end_matches(".rs");
        if module == "lib" || module == "main" {
            continue;
        }
        let own = layer_of(module).unwrap_or_else(|| panic!("{module} has no layer"));
        for imported in imports(&std::fs::read_to_string(&file).unwrap()) {
            let target = layer_of(&imported)
                .unwrap_or_else(|| panic!("{}: crate::{imported} has no layer", file.display()));
            assert!(
                target <= own,
                "{} ({}) imports crate::{imported} ({})",
                relative.display(),
                LAYERS[own].0,
                LAYERS[target].0
            );
            checked += 1;
        }
    }
    assert!(
        checked > 50,
        "only {checked} imports found: is the scan broken?"
    );
}

/// The checker itself: it finds the module of a path and skips comments.
#[test]
fn the_import_scan_reads_paths_not_comments() {
    let text = "use crate::gallery::x;\n// crate::plot\nlet a = crate::io::f();";
    assert_eq!(imports(text), ["gallery", "io"]);
}

/// The experiments layer's shared modules: what an experiment may import sideways.
const SHARED: &[&str] = &["comparison", "lm_measures", "lm_world", "settings", "toys"];

/// The experiment modules a source file names (`super::NAME` or `experiments::NAME`).
fn experiment_imports(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim_start)
        .filter(|l| !l.starts_with("//"))
        .flat_map(|l| {
            let sideways = l.split("super::").skip(1);
            let named = l.split("experiments::").skip(1);
            sideways
                .chain(named)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        })
        .filter(|name: &String| name.chars().next().is_some_and(|c| c.is_lowercase()))
        .collect()
}

/// The sideways rule: an experiment (a module of `src/experiments/` that is not shared)
/// imports the shared modules of its layer and none of the other experiments.
#[test]
fn experiments_import_only_the_shared_modules_of_their_layer() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/experiments");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let module = path.file_stem().unwrap().to_string_lossy().into_owned();
        if module == "mod" || SHARED.contains(&module.as_str()) {
            continue;
        }
        for imported in experiment_imports(&std::fs::read_to_string(&path).unwrap()) {
            assert!(
                SHARED.contains(&imported.as_str()),
                "the experiment {module} imports {imported}, which is not a shared module of the experiments layer"
            );
            checked += 1;
        }
    }
    // The ten experiments name the shared modules 19 times today (counted with grep over
    // src/experiments); fewer than 10 means the scan broke.
    assert!(
        checked > 10,
        "only {checked} sideways imports found: is the scan broken?"
    );
}

/// The sideways scanner finds `super::` and `experiments::` paths, not types or comments.
#[test]
fn the_sideways_scan_reads_module_paths() {
    let text = "use super::lm_world::X;\n// super::digits\nuse super::{Claim, Table};\nlet a = crate::experiments::toys::f();";
    assert_eq!(experiment_imports(text), ["lm_world", "toys"]);
}
