//! The OCI image-spec's own schema test cases (v1.1.1 and v1.0.2), extracted as data under
//! `tests/vectors/` (origin and license in its README.md): every case must get the verdict the
//! spec's validator gives.

use image_core::media;
use image_core::validate::{validate, Kind};
use serde_json::Value;
use std::path::PathBuf;

fn load(name: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the test vectors {}: {e} (they are part of the repository, in \
             image-core/tests/vectors/; restore them with git checkout)",
            path.display()
        )
    });
    let cases: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()));
    match cases {
        Value::Array(cases) => cases,
        _ => panic!("{} is not a JSON list of cases", path.display()),
    }
}

fn kind_of(kind: &str) -> Kind {
    match kind {
        "descriptor" => Kind::Descriptor,
        "manifest" => Kind::Manifest,
        "imageIndex" => Kind::Index,
        "config" => Kind::Config,
        "imageLayout" => Kind::Layout,
        other => panic!("unknown case kind {other:?}"),
    }
}

/// Swaps Docker media types for the OCI ones, as the spec's backwards-compatibility tests do.
fn convert_docker(json: &str) -> String {
    let mut out = json.to_owned();
    for docker in [
        media::DOCKER_MANIFEST_LIST,
        media::DOCKER_MANIFEST,
        media::DOCKER_CONFIG,
        media::DOCKER_LAYER_FOREIGN_TAR_GZIP,
        media::DOCKER_LAYER_TAR_GZIP,
    ] {
        out = out.replace(docker, media::docker_to_oci(docker));
    }
    out
}

/// Runs every case of one file; returns the mismatches (and checks there were cases).
fn check_file(name: &str, convert: bool) -> Vec<String> {
    let cases = load(name);
    assert!(cases.len() > 10, "{name}: only {} cases", cases.len());
    let mut mismatches = Vec::new();
    for case in &cases {
        let id = format!(
            "{name}: {} #{} (line {}, {})",
            case["test"].as_str().unwrap_or("?"),
            case["index"],
            case["line"],
            case["comment"].as_str().unwrap_or("").trim()
        );
        let kind = kind_of(case["kind"].as_str().unwrap_or(""));
        let json = case["json"]
            .as_str()
            .unwrap_or_else(|| panic!("{id}: no json"));
        let fail = case["fail"]
            .as_bool()
            .unwrap_or_else(|| panic!("{id}: no fail"));
        let json = if convert && case["convert_docker_mediatypes"] == Value::Bool(true) {
            convert_docker(json)
        } else {
            json.to_owned()
        };
        match (validate(kind, None, json.as_bytes()), fail) {
            (Ok(_), false) => {}
            (Err(p), true) => {
                assert!(!p.is_empty(), "{id}: Err with no problems");
            }
            (Ok(_), true) => mismatches.push(format!("{id}: accepted, must be rejected")),
            (Err(p), false) => mismatches.push(format!("{id}: rejected, must be accepted:\n{p}")),
        }
    }
    mismatches
}

fn assert_none(mismatches: Vec<String>) {
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn image_spec_v1_1_1() {
    assert_none(check_file("image-spec-v1.1.1-schema-cases.json", true));
}

#[test]
fn image_spec_v1_0_2() {
    assert_none(check_file("image-spec-v1.0.2-schema-cases.json", true));
}

/// The backwards-compatibility cases also pass with their Docker media types left as they are.
#[test]
fn docker_media_types_accepted_as_is() {
    for name in [
        "image-spec-v1.1.1-schema-cases.json",
        "image-spec-v1.0.2-schema-cases.json",
    ] {
        assert_none(check_file(name, false));
    }
}

/// With the media type of the descriptor that pointed at them, the manifests and indexes that
/// carry a `mediaType` pass, and fail when the descriptor said something else.
#[test]
fn expected_media_type_agrees() {
    let mut checked = 0;
    for case in load("image-spec-v1.1.1-schema-cases.json") {
        if case["fail"] != Value::Bool(false) {
            continue;
        }
        let kind = kind_of(case["kind"].as_str().unwrap_or(""));
        if !matches!(kind, Kind::Manifest | Kind::Index) {
            continue;
        }
        let json = case["json"].as_str().unwrap_or_default();
        let doc: Value = serde_json::from_str(json).expect("valid case is JSON");
        let Some(mt) = doc["mediaType"].as_str() else {
            continue;
        };
        assert!(
            validate(kind, Some(mt), json.as_bytes()).is_ok(),
            "{}: rejected with its own media type",
            case["line"]
        );
        let other = if kind == Kind::Manifest {
            if mt == media::OCI_MANIFEST {
                media::DOCKER_MANIFEST
            } else {
                media::OCI_MANIFEST
            }
        } else if mt == media::OCI_INDEX {
            media::DOCKER_MANIFEST_LIST
        } else {
            media::OCI_INDEX
        };
        let problems = validate(kind, Some(other), json.as_bytes())
            .err()
            .unwrap_or_else(|| panic!("{}: accepted with media type {other}", case["line"]));
        assert_eq!(problems.len(), 1, "{problems}");
        assert_eq!(problems.0[0].path, "mediaType");
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} cases checked");
}
