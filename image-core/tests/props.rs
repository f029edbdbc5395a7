//! Property tests: generated valid documents round-trip through validation unchanged; mutated
//! ones never make the validator panic and are either accepted or get at least one problem.

use image_core::media;
use image_core::validate::{validate, Document, Kind};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Map, Value};

const KINDS: [Kind; 5] = [
    Kind::Descriptor,
    Kind::Manifest,
    Kind::Index,
    Kind::Config,
    Kind::Layout,
];

fn digest() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{64}".prop_map(|h| format!("sha256:{h}")),
        "[0-9a-f]{128}".prop_map(|h| format!("sha512:{h}")),
    ]
}

fn media_type() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            media::OCI_LAYER_TAR,
            media::OCI_LAYER_TAR_GZIP,
            media::OCI_LAYER_TAR_ZSTD,
            media::DOCKER_LAYER_TAR_GZIP,
            media::OCI_CONFIG,
            media::OCI_MANIFEST,
        ])
        .prop_map(str::to_owned),
        "[a-z0-9][a-z0-9.+-]{0,20}/[a-z0-9][a-z0-9.+_-]{0,20}",
    ]
}

fn annotations() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(
        prop::collection::btree_map("[a-z][a-z0-9.]{0,15}", any::<String>(), 0..4)
            .prop_map(|m| json!(m)),
    )
}

fn platform() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(
        (
            prop::sample::select(vec!["amd64", "arm64", "ppc64le", "s390x", "riscv64"]),
            prop::sample::select(vec!["linux", "windows", "freebsd"]),
            prop::option::of("v[5-8]"),
        )
            .prop_map(|(arch, os, variant)| {
                let mut p = json!({"architecture": arch, "os": os});
                if let Some(v) = variant {
                    p["variant"] = json!(v);
                }
                p
            }),
    )
}

/// Inserts `value` under `key` when it is `Some`.
fn put(m: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        m.insert(key.to_owned(), v);
    }
}

fn descriptor() -> impl Strategy<Value = Value> {
    (
        media_type(),
        digest(),
        any::<u64>(),
        annotations(),
        prop::option::of(prop::collection::vec(
            "https://example\\.com/[a-z0-9/]{0,12}",
            1..3,
        )),
        platform(),
    )
        .prop_map(|(mt, digest, size, ann, urls, platform)| {
            let mut m = Map::new();
            m.insert("mediaType".into(), json!(mt));
            m.insert("digest".into(), json!(digest));
            m.insert("size".into(), json!(size));
            put(&mut m, "annotations", ann);
            put(&mut m, "urls", urls.map(|u| json!(u)));
            put(&mut m, "platform", platform);
            Value::Object(m)
        })
}

fn manifest() -> impl Strategy<Value = Value> {
    (
        descriptor(),
        prop::collection::vec(descriptor(), 1..6),
        annotations(),
        prop::option::of(descriptor()),
        any::<bool>(),
    )
        .prop_map(|(mut config, layers, ann, subject, docker)| {
            config["mediaType"] = json!(if docker {
                media::DOCKER_CONFIG
            } else {
                media::OCI_CONFIG
            });
            let mut m = Map::new();
            m.insert("schemaVersion".into(), json!(2));
            let mt = if docker {
                media::DOCKER_MANIFEST
            } else {
                media::OCI_MANIFEST
            };
            m.insert("mediaType".into(), json!(mt));
            m.insert("config".into(), config);
            m.insert("layers".into(), json!(layers));
            put(&mut m, "annotations", ann);
            put(&mut m, "subject", subject);
            Value::Object(m)
        })
}

fn index() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(descriptor(), 0..6),
        annotations(),
        prop::option::of("application/vnd\\.[a-z]{1,10}\\+json"),
    )
        .prop_map(|(manifests, ann, artifact_type)| {
            let mut m = Map::new();
            m.insert("schemaVersion".into(), json!(2));
            m.insert("mediaType".into(), json!(media::OCI_INDEX));
            m.insert("manifests".into(), json!(manifests));
            put(&mut m, "annotations", ann);
            put(&mut m, "artifactType", artifact_type.map(|a| json!(a)));
            Value::Object(m)
        })
}

fn config() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["amd64", "arm64", "386"]),
        prop::sample::select(vec!["linux", "windows"]),
        prop::collection::vec("[A-Z_][A-Z0-9_]{0,8}=[ -~]{0,12}", 0..5),
        prop::option::of(prop::collection::vec(any::<String>(), 0..4)),
        prop::option::of(
            prop::collection::btree_map("[a-z.]{1,12}", any::<String>(), 0..4)
                .prop_map(|m| json!(m)),
        ),
        prop::collection::vec(digest(), 0..5),
        prop::option::of("20[0-9]{2}-0[1-9]-[12][0-9]T[01][0-9]:[0-5][0-9]:[0-5][0-9]Z"),
    )
        .prop_map(|(arch, os, env, cmd, labels, diff_ids, created)| {
            let mut exec = Map::new();
            exec.insert("Env".into(), json!(env));
            put(&mut exec, "Cmd", cmd.map(|c| json!(c)));
            put(&mut exec, "Labels", labels);
            let history: Vec<Value> = diff_ids
                .iter()
                .map(|d| json!({"created_by": format!("ADD {d}")}))
                .collect();
            let mut m = Map::new();
            m.insert("architecture".into(), json!(arch));
            m.insert("os".into(), json!(os));
            m.insert("config".into(), Value::Object(exec));
            m.insert(
                "rootfs".into(),
                json!({"type": "layers", "diff_ids": diff_ids}),
            );
            m.insert("history".into(), json!(history));
            put(&mut m, "created", created.map(|c| json!(c)));
            Value::Object(m)
        })
}

/// The decoded document serialized back to JSON.
fn reencode(doc: Document) -> Value {
    let v = match doc {
        Document::Descriptor(d) => serde_json::to_value(d),
        Document::Manifest(m) => serde_json::to_value(m),
        Document::Index(i) => serde_json::to_value(i),
        Document::Config(c) => serde_json::to_value(c),
        Document::Layout(l) => serde_json::to_value(l),
    };
    v.expect("oci-spec types serialize")
}

fn round_trip(kind: Kind, value: &Value) -> Result<(), TestCaseError> {
    let bytes = serde_json::to_vec(value).expect("serializes");
    match validate(kind, None, &bytes) {
        Ok(doc) => {
            prop_assert_eq!(&reencode(doc), value);
            Ok(())
        }
        Err(p) => Err(TestCaseError::fail(format!(
            "valid {} rejected:\n{p}\n{value}",
            kind.name()
        ))),
    }
}

/// Validation as every kind: never panics; an error always has at least one problem, and
/// the walk catches everything oci-spec's decoding would refuse (so every problem has a
/// precise path and reason rather than a decoder message).
fn never_panics(bytes: &[u8]) -> Result<(), TestCaseError> {
    for kind in KINDS {
        for expected in [None, Some(media::OCI_MANIFEST)] {
            if let Err(p) = validate(kind, expected, bytes) {
                prop_assert!(!p.is_empty(), "{} error without problems", kind.name());
                for problem in p.iter() {
                    prop_assert!(
                        !problem.reason.starts_with("cannot be decoded"),
                        "the walk missed what oci-spec refused: {}\n{}",
                        problem,
                        String::from_utf8_lossy(bytes)
                    );
                }
            }
        }
    }
    Ok(())
}

/// JSON pointers of every value inside `v` (not the root).
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(child, p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(child, p, out);
            }
        }
        _ => {}
    }
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        any::<String>().prop_map(Value::String),
        digest().prop_map(Value::String),
        media_type().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z.]{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Deletes (`replacement` is `None`) or replaces the value at `pointer`.
fn mutate(mut v: Value, pointer: &str, replacement: Option<Value>) -> Value {
    let Some((parent, key)) = pointer.rsplit_once('/') else {
        return v;
    };
    let key = key.replace("~1", "/").replace("~0", "~");
    match (v.pointer_mut(parent), replacement) {
        (Some(Value::Object(m)), Some(r)) => {
            m.insert(key, r);
        }
        (Some(Value::Object(m)), None) => {
            m.remove(&key);
        }
        (Some(Value::Array(a)), r) => {
            if let Ok(i) = key.parse::<usize>() {
                if i < a.len() {
                    match r {
                        Some(r) => a[i] = r,
                        None => {
                            a.remove(i);
                        }
                    }
                }
            }
        }
        _ => {}
    }
    v
}

fn any_document() -> impl Strategy<Value = Value> {
    prop_oneof![
        descriptor(),
        manifest(),
        index(),
        config(),
        Just(json!({"imageLayoutVersion": "1.0.0"})),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn valid_descriptors_round_trip(d in descriptor()) {
        round_trip(Kind::Descriptor, &d)?;
    }

    #[test]
    fn valid_manifests_round_trip(m in manifest()) {
        round_trip(Kind::Manifest, &m)?;
    }

    #[test]
    fn valid_indexes_round_trip(i in index()) {
        round_trip(Kind::Index, &i)?;
    }

    #[test]
    fn valid_configs_round_trip(c in config()) {
        round_trip(Kind::Config, &c)?;
    }

    #[test]
    fn byte_flips_and_truncation_never_panic(
        doc in any_document(),
        flips in prop::collection::vec((any::<Index>(), any::<u8>()), 0..8),
        cut in prop::option::of(any::<Index>()),
    ) {
        let mut bytes = serde_json::to_vec(&doc).expect("serializes");
        for (at, b) in flips {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        never_panics(&bytes)?;
    }

    #[test]
    fn field_deletion_and_replacement_never_panic(
        doc in any_document(),
        edits in prop::collection::vec((any::<Index>(), prop::option::of(any_json())), 1..4),
    ) {
        let mut doc = doc;
        for (at, replacement) in edits {
            let mut ps = Vec::new();
            pointers(&doc, String::new(), &mut ps);
            if ps.is_empty() {
                break;
            }
            let p = ps[at.index(ps.len())].clone();
            doc = mutate(doc, &p, replacement);
        }
        never_panics(&serde_json::to_vec(&doc).expect("serializes"))?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        never_panics(&bytes)?;
    }
}

/// A mutation known to break a valid manifest is reported, at the mutated path.
#[test]
fn replacing_a_required_field_is_reported() {
    let m = json!({
        "schemaVersion": 2,
        "config": {"mediaType": media::OCI_CONFIG, "size": 2, "digest": media::EMPTY_DIGEST},
        "layers": [{"mediaType": media::OCI_LAYER_TAR, "size": 2, "digest": media::EMPTY_DIGEST}],
    });
    let broken = mutate(m, "/layers/0/size", Some(json!(null)));
    let p = validate(Kind::Manifest, None, broken.to_string().as_bytes()).unwrap_err();
    assert_eq!(p.len(), 1);
    assert_eq!(p.0[0].path, "layers[0].size");
}
