//! What the golden tests share: `tests/golden/KIND/NAME.json` holds an OCI runtime spec and
//! `NAME.EXT` what lxcri must make of it. `UPDATE_GOLDEN=1` rewrites the `NAME.EXT` files; review
//! the diff before committing them.

use oci_spec::runtime::Spec;
use std::path::{Path, PathBuf};

/// `tests/golden/KIND`.
pub fn golden_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(kind)
}

/// The spec of case `name` of `kind`.
pub fn load(kind: &str, name: &str) -> Spec {
    let path = golden_dir(kind).join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {path:?}: {e}"))
}

/// For every case of `kind` (the `required` ones must be there: a missing file would otherwise
/// pass), `render(name, spec)` must equal `NAME.EXT`, the golden `what`. Under `UPDATE_GOLDEN=1`
/// the outputs are written to the `.EXT` files instead.
pub fn check_all(
    kind: &str,
    required: &[&str],
    ext: &str,
    what: &str,
    render: impl Fn(&str, &Spec) -> String,
) {
    let dir = golden_dir(kind);
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("reading the golden directory")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.strip_suffix(".json").map(str::to_string)
        })
        .collect();
    names.sort();
    for required in required {
        assert!(
            names.iter().any(|n| n == required),
            "golden case {required}.json is missing"
        );
    }
    let mut failures = Vec::new();
    for name in &names {
        let got = render(name, &load(kind, name));
        let file = dir.join(format!("{name}.{ext}"));
        if update {
            std::fs::write(&file, &got).unwrap_or_else(|e| panic!("writing {file:?}: {e}"));
            continue;
        }
        let want = std::fs::read_to_string(&file).unwrap_or_default();
        if got != want {
            failures.push(format!(
                "{name}: {what} differs from {name}.{ext} (UPDATE_GOLDEN=1 rewrites it)\n\
                 --- got ---\n{got}--- want ---\n{want}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
