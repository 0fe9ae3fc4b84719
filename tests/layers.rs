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
            "vecmath",
            "model",
            "objective",
            "decomposition",
            "entk",
            "lens",
            "trainer",
            "progress",
            "squeezing",
            "stats",
            "Rng64",
            "Error",
            "Result",
        ],
    ),
    ("models", &["mlp", "lm", "language", "digits"]),
    // `cells!` is the experiments' row macro, exported at the crate root.
    ("experiments", &["experiments", "cells"]),
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
        if module == "lib" || module == "bin" {
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
const SHARED: &[&str] = &[
    "comparison",
    "lm_measures",
    "lm_world",
    "settings",
    "table",
    "toys",
];

/// The identifier at the start of `rest`.
fn ident(rest: &str) -> String {
    rest.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The experiment modules a source file `depth` directories below `src/experiments/`
/// names: `experiments::NAME`, or `super::NAME` with one `super` more than `depth` (fewer
/// stay inside the file's own experiment).
fn experiment_imports(text: &str, depth: usize) -> Vec<String> {
    let mut names = Vec::new();
    for line in text.lines().map(str::trim_start) {
        if line.starts_with("//") {
            continue;
        }
        names.extend(line.split("experiments::").skip(1).map(ident));
        // A chain `super::super::X` splits into empty pieces, one per extra link.
        let pieces: Vec<&str> = line.split("super::").collect();
        let mut links = 0;
        for piece in &pieces[1..] {
            links += 1;
            if piece.is_empty() {
                continue;
            }
            if links == depth + 1 {
                names.push(ident(piece));
            }
            links = 0;
        }
    }
    names.retain(|name| name.chars().next().is_some_and(|c| c.is_lowercase()));
    names
}

/// The Rust files of an experiment: its file, or every file of its directory, with the
/// depth of each below `src/experiments/`.
fn experiment_files(path: &Path) -> Vec<(std::path::PathBuf, usize)> {
    if path.is_dir() {
        let mut files = Vec::new();
        rust_files(path, &mut files);
        files
            .into_iter()
            .map(|f| {
                let depth = f.strip_prefix(path).unwrap().components().count();
                (f, depth)
            })
            .collect()
    } else {
        vec![(path.to_path_buf(), 0)]
    }
}

/// The sideways rule: an experiment (a module of `src/experiments/`, a file or a
/// directory, that is not shared) imports the shared modules of its layer and none of
/// the other experiments.
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
        for (file, depth) in experiment_files(&path) {
            let text = std::fs::read_to_string(&file).unwrap();
            for imported in experiment_imports(&text, depth) {
                assert!(
                    SHARED.contains(&imported.as_str()),
                    "the experiment {module} ({}) imports {imported}, which is not a shared module of the experiments layer",
                    file.display()
                );
                checked += 1;
            }
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
    assert_eq!(experiment_imports(text, 0), ["lm_world", "toys"]);
    // One directory down, `super::` is the experiment itself and `super::super::` its layer.
    let nested = "use super::claims::X;\nuse super::super::residuals::Y;";
    assert_eq!(experiment_imports(nested, 1), ["residuals"]);
}

/// The outputs layer's own order, bottom first: writing files, then drawing and
/// exporting, then the commands, then the gallery that runs them all. A module imports
/// its own rank or a lower one (the sweep figure draws what the gallery pooled, from a
/// type both import from the experiments layer).
const OUTPUTS: &[&[&str]] = &[
    &["io"],
    &["plot", "export"],
    &["explore", "bench"],
    &["gallery"],
];

#[test]
fn the_outputs_import_downwards() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let rank = |m: &str| OUTPUTS.iter().position(|r| r.contains(&m));
    let mut checked = 0;
    for module in OUTPUTS.iter().flat_map(|r| r.iter()) {
        let mut files = Vec::new();
        match src.join(module).is_dir() {
            true => rust_files(&src.join(module), &mut files),
            false => files.push(src.join(format!("{module}.rs"))),
        }
        for file in files {
            for imported in imports(&std::fs::read_to_string(&file).unwrap()) {
                if let Some(target) = rank(&imported) {
                    assert!(
                        target <= rank(module).unwrap(),
                        "{} imports crate::{imported}, a rank above it",
                        file.display()
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(
        checked > 5,
        "only {checked} imports found: is the scan broken?"
    );
}

/// The module path of a source file below `src/`: `gallery/sweep/run.rs` is
/// `[gallery, sweep, run]`, `gallery/sweep/mod.rs` is `[gallery, sweep]`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The lower-case path segments after every `crate::` and `super::…::` in `text`
/// (comments skipped), resolved against the module `at`.
fn resolved_paths(text: &str, at: &[String]) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for line in text.lines().map(str::trim_start) {
        if line.starts_with("//") {
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest
            .find("crate::")
            .into_iter()
            .chain(rest.find("super::"))
            .min()
        {
            let tail = &rest[i..];
            let (mut base, mut after) = match tail.strip_prefix("crate::") {
                Some(after) => (Vec::new(), after),
                None => {
                    // `super` of a file is its folder's module; of a `mod.rs`, the folder's parent.
                    let mut base = at.to_vec();
                    base.pop();
                    (base, &tail["super::".len()..])
                }
            };
            while let Some(more) = after.strip_prefix("super::") {
                base.pop();
                after = more;
            }
            for segment in after.split("::") {
                let name = ident(segment);
                if name.is_empty() || !name.starts_with(|c: char| c.is_lowercase()) {
                    break;
                }
                base.push(name.clone());
                if name.len() != segment.len() {
                    break;
                }
            }
            paths.push(base);
            rest = &tail[tail.find("::").unwrap() + 2..];
        }
    }
    paths
}

/// No folder's modules import each other in a loop: within each module, the graph of
/// its children's imports of one another (found by resolving `crate::` and `super::`
/// paths) has no cycle.
#[test]
fn no_modules_of_one_folder_import_each_other_in_a_loop() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: Vec<Vec<String>> = files
        .iter()
        .map(|f| module_path(f.strip_prefix(&src).unwrap()))
        .collect();
    let mut edges: std::collections::BTreeSet<(Vec<String>, String, String)> = Default::default();
    for (file, at) in files.iter().zip(&modules) {
        if at.first().is_some_and(|m| m == "lib" || m == "bin") {
            continue;
        }
        for path in resolved_paths(&std::fs::read_to_string(file).unwrap(), at) {
            let common = at.iter().zip(&path).take_while(|(a, b)| a == b).count();
            if common >= at.len() || common >= path.len() {
                continue; // an import of an ancestor or of a descendant
            }
            let target: Vec<String> = path[..=common].to_vec();
            if modules.contains(&target) {
                edges.insert((
                    at[..common].to_vec(),
                    at[common].clone(),
                    path[common].clone(),
                ));
            }
        }
    }
    assert!(
        edges.len() > 20,
        "only {} edges: is the scan broken?",
        edges.len()
    );
    // A cycle in any folder's graph: depth-first search from every node.
    for (folder, from, _) in &edges {
        let mut stack = vec![(from.clone(), vec![from.clone()])];
        while let Some((node, trail)) = stack.pop() {
            for (f, a, b) in &edges {
                if f == folder && *a == node {
                    assert!(
                        b != from,
                        "modules of {} import each other in a loop: {} -> {b}",
                        ["crate"]
                            .iter()
                            .map(|s| s.to_string())
                            .chain(folder.iter().cloned())
                            .collect::<Vec<_>>()
                            .join("::"),
                        trail.join(" -> ")
                    );
                    if !trail.contains(b) {
                        let mut next = trail.clone();
                        next.push(b.clone());
                        stack.push((b.clone(), next));
                    }
                }
            }
        }
    }
}
