//! The architecture of `src/lib.rs` as a test: a module may import from its own layer
//! and the layers below it, never from a layer above (core → models → experiments →
//! outputs → binary).

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
            "trainer",
            "squeezing",
            "stats",
            "Rng64",
            "Error",
            "Result",
        ],
    ),
    ("models", &["mlp", "lm", "entk", "language", "digits"]),
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
