//! The layer order of `ops-core`'s modules (README, "Inside ops-core"), checked: a module may
//! use only the modules in layers above its own. Cargo checks the order between crates; this
//! checks it inside the crate, where the compiler does not.

use std::path::{Path, PathBuf};

/// Layers, top first; modules in one layer may use each other.
const LAYERS: &[&[&str]] = &[
    &["error", "clock", "checksum", "redact", "money", "quantity"],
    &["config", "serde_duration"],
    &["contracts", "judge", "codec", "log_line"],
    &["retry"],
    &["http", "poll", "sim", "calendar"],
    &["adapters", "engine"],
    &["runbooks", "schedule", "presets"],
    &["memory", "testkit"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `crate::NAME` uses in code (comments and doc comments left out: a doc link is no import).
fn uses(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let name: String = rest[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.push(name);
            rest = &rest[i + 7..];
        }
    }
    found
}

#[test]
fn no_module_uses_a_layer_below_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let module = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let Some(own) = layer_of(&module) else {
            assert!(
                module == "lib",
                "{module}: a module not in LAYERS (add it to the README's table and here)"
            );
            continue;
        };
        // Unit tests may use anything (the testkit's suites run against the adapters).
        if rel.file_name().is_some_and(|f| f == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for used in uses(code) {
            if let Some(theirs) = layer_of(&used)
                && theirs > own
            {
                wrong.push(format!("{} uses crate::{used}", rel.display()));
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "layer order broken:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_check_sees_a_use_and_ignores_a_comment() {
    assert_eq!(
        uses("use crate::engine::Runner; // crate::runbooks"),
        ["engine"]
    );
    assert!(uses("/// see [`crate::http`]").is_empty());
}
