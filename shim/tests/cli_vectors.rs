//! `lxcri image validate` on every valid and invalid document of the OCI image-spec's own schema
//! tests (`image-core/tests/vectors/`, origin and license in its README.md), as a user runs it:
//! exit 0 for each valid one, exit 1 with one `document: path: reason` line per problem for each
//! invalid one.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn vectors(file: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../image-core/tests/vectors")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e} (the vectors are part of the repository, in \
             image-core/tests/vectors/; restore them with git checkout)",
            path.display()
        )
    });
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn media_type_arg(kind: &str) -> &'static str {
    match kind {
        "descriptor" => "descriptor",
        "manifest" => "manifest",
        "imageIndex" => "index",
        "config" => "config",
        "imageLayout" => "oci-layout",
        other => panic!("unknown vector kind {other}"),
    }
}

fn check_file(file: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut wrong = Vec::new();
    let cases = vectors(file);
    assert!(cases.len() > 50, "{file}: only {} cases", cases.len());
    for (n, case) in cases.iter().enumerate() {
        let id = format!(
            "{}#{} ({}:{})",
            case["test"].as_str().unwrap_or("?"),
            case["index"],
            case["source"].as_str().unwrap_or("?"),
            case["line"]
        );
        let doc = dir.path().join(format!("case-{n}.json"));
        std::fs::write(&doc, case["json"].as_str().unwrap()).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_lxcri"))
            .args(["image", "validate"])
            .arg(&doc)
            .args([
                "--media-type",
                media_type_arg(case["kind"].as_str().unwrap()),
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let fail = case["fail"].as_bool().unwrap();
        match (fail, out.status.code()) {
            (false, Some(0)) => {}
            (true, Some(1)) => {
                // Every problem line names the document, then a path or the reason.
                let problems: Vec<&str> = stderr
                    .lines()
                    .filter(|l| !l.starts_with("invalid:"))
                    .collect();
                if problems.is_empty() || problems.iter().any(|l| !l.contains(": ")) {
                    wrong.push(format!("{id}: rejected, but the problem lines are not `doc: path: reason`:\n{stderr}"));
                }
            }
            (f, code) => wrong.push(format!(
                "{id}: expected {}, got exit {code:?}\n{stderr}",
                if f {
                    "exit 1 (invalid)"
                } else {
                    "exit 0 (valid)"
                }
            )),
        }
    }
    assert!(
        wrong.is_empty(),
        "{file}: {} of {} cases wrong:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

#[test]
fn image_spec_v1_1_1_cases() {
    check_file("image-spec-v1.1.1-schema-cases.json");
}

#[test]
fn image_spec_v1_0_2_cases() {
    check_file("image-spec-v1.0.2-schema-cases.json");
}
