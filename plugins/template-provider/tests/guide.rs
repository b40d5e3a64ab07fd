//! The provider author's guide (`plugin-api/README.md`, the rustdoc of mailhost-plugin-api)
//! shows this crate's `src/lib.rs` verbatim; this test keeps the two identical.

use std::path::Path;

/// The line in the guide that introduces the template's code block.
const MARKER: &str = "<!-- begin: plugins/template-provider/src/lib.rs -->";

#[test]
fn the_guide_shows_this_crate_verbatim() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let guide = std::fs::read_to_string(root.join("../../plugin-api/README.md"))
        .expect("read plugin-api/README.md");
    let source = std::fs::read_to_string(root.join("src/lib.rs")).expect("read src/lib.rs");

    let after_marker = guide
        .split_once(MARKER)
        .map(|(_, rest)| rest)
        .expect("the guide has the template marker");
    let block = after_marker
        .split_once("```rust")
        .and_then(|(_, rest)| rest.split_once("\n```"))
        .map(|(block, _)| block)
        .expect("a ```rust block follows the marker");
    // rustdoc's hidden lines (`# fn main() {}`) are for the doctest only.
    let shown: String = block
        .lines()
        .skip(1) // the rest of the ```rust line
        .filter(|line| !(line.starts_with("# ") || *line == "#"))
        .map(|line| format!("{line}\n"))
        .collect();
    assert!(
        shown == source,
        "plugin-api/README.md's template block differs from plugins/template-provider/src/lib.rs; \
         copy the file into the guide.\n--- guide\n{shown}\n--- file\n{source}"
    );
}
