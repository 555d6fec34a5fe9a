//! `docs/provider-guide.md` must be true: every Rust snippet in it is copied from this crate,
//! which CI compiles and tests. A snippet edited in the guide but not here (or the reverse)
//! fails this test.

use std::path::Path;

/// The text without whitespace, so indentation and line breaks that a formatter changes do
/// not count.
fn squeeze(text: &str) -> String {
    text.split_whitespace().collect()
}

fn rust_snippets(markdown: &str) -> Vec<String> {
    let mut snippets = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start()) {
            (None, fence) if fence.starts_with("```rust") => current = Some(String::new()),
            (Some(_), "```") => snippets.extend(current.take()),
            (Some(s), _) => {
                s.push_str(line);
                s.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "an unclosed ```rust block in the guide");
    snippets
}

#[test]
fn every_rust_snippet_of_the_guide_is_this_crates_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let guide = std::fs::read_to_string(root.join("../../docs/provider-guide.md"))
        .expect("docs/provider-guide.md is readable");
    let mut sources = String::new();
    for dir in ["src", "tests"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                sources.push_str(&std::fs::read_to_string(&path).unwrap());
                sources.push('\n');
            }
        }
    }
    let sources = squeeze(&sources);
    let snippets = rust_snippets(&guide);
    assert!(snippets.len() >= 5, "the guide shows the template's code");
    for snippet in snippets {
        assert!(
            sources.contains(&squeeze(&snippet)),
            "this snippet of docs/provider-guide.md is not in examples/provider-template:\n{snippet}"
        );
    }
}
