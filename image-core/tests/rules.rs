//! One valid and one invalid case per validation rule; the invalid one's exact message
//! (document, JSON path, reason) is asserted.

use image_core::media;
use image_core::validate::{
    check_blob, check_config_matches_manifest, check_history, check_layers_runnable, check_size,
    validate, validate_config, validate_manifest, validate_named, Kind,
};
use serde_json::{json, Value};

const D1: &str = "sha256:c86f7763873b6c0aae22d963bab59b4f5debbed6685761b5951584f6efb0633b";
const D2: &str = "sha256:9d3dd9504c685a304985025df4ed0283e47ac9ffa9bd0326fddf4d59513f0827";

fn manifest() -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": media::OCI_CONFIG, "size": 1470, "digest": D1},
        "layers": [
            {"mediaType": media::OCI_LAYER_TAR_GZIP, "size": 675598, "digest": D2},
        ],
    })
}

fn index() -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": [{
            "mediaType": media::OCI_MANIFEST, "size": 7143, "digest": D1,
            "platform": {"architecture": "amd64", "os": "linux"},
        }],
    })
}

fn config() -> Value {
    json!({
        "created": "2015-10-31T22:22:56.015925234Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"], "ExposedPorts": {"80/tcp": {}}},
        "rootfs": {"type": "layers", "diff_ids": [D2]},
        "history": [{"created_by": "ADD rootfs"}, {"created_by": "ENV", "empty_layer": true}],
    })
}

fn descriptor() -> Value {
    json!({"mediaType": media::OCI_MANIFEST, "size": 7682, "digest": D1})
}

/// `base` with the value at JSON pointer `at` replaced (`None` removes it).
fn with(mut base: Value, at: &str, value: Option<Value>) -> Value {
    let (parent, key) = at.rsplit_once('/').expect("pointer has a '/'");
    let target = base.pointer_mut(parent).expect("parent exists");
    match (target, value) {
        (Value::Object(m), Some(v)) => {
            m.insert(key.to_owned(), v);
        }
        (Value::Object(m), None) => {
            m.remove(key);
        }
        (Value::Array(a), Some(v)) => a[key.parse::<usize>().expect("index")] = v,
        (Value::Array(a), None) => {
            a.remove(key.parse::<usize>().expect("index"));
        }
        _ => panic!("{parent} is not a container"),
    }
    base
}

fn problems(kind: Kind, doc: &Value) -> Vec<String> {
    match validate(kind, None, doc.to_string().as_bytes()) {
        Ok(_) => Vec::new(),
        Err(p) => p.iter().map(|p| p.to_string()).collect(),
    }
}

#[track_caller]
fn ok(kind: Kind, doc: &Value) {
    let p = problems(kind, doc);
    assert!(p.is_empty(), "expected valid, got:\n{}", p.join("\n"));
}

#[track_caller]
fn bad(kind: Kind, doc: &Value, expected: &str) {
    assert_eq!(problems(kind, doc), vec![expected.to_owned()]);
}

#[test]
fn base_documents_are_valid() {
    ok(Kind::Manifest, &manifest());
    ok(Kind::Index, &index());
    ok(Kind::Config, &config());
    ok(Kind::Descriptor, &descriptor());
    ok(Kind::Layout, &json!({"imageLayoutVersion": "1.0.0"}));
}

#[test]
fn json_syntax_error_names_line_and_column() {
    let p = validate(
        Kind::Manifest,
        None,
        b"{\n  \"schemaVersion\": 2,\n  oops\n}",
    )
    .unwrap_err();
    assert_eq!(p.len(), 1);
    assert_eq!(
        p.0[0].to_string(),
        "manifest: is not valid JSON: key must be a string at line 3 column 3"
    );
}

#[test]
fn document_must_be_an_object() {
    bad(
        Kind::Config,
        &json!([1]),
        "config: must be an object, found an array",
    );
}

#[test]
fn schema_version_is_2() {
    bad(
        Kind::Manifest,
        &with(manifest(), "/schemaVersion", Some(json!(1))),
        "manifest: schemaVersion: 1 is not supported: must be 2",
    );
    bad(
        Kind::Index,
        &with(index(), "/schemaVersion", Some(json!("2"))),
        "index: schemaVersion: must be the number 2, found the string \"2\"",
    );
    bad(
        Kind::Index,
        &with(index(), "/schemaVersion", None),
        "index: schemaVersion: is required but missing",
    );
}

#[test]
fn own_media_type_must_name_the_kind() {
    ok(Kind::Manifest, &with(manifest(), "/mediaType", None));
    ok(
        Kind::Manifest,
        &with(
            manifest(),
            "/mediaType",
            Some(json!(media::DOCKER_MANIFEST)),
        ),
    );
    bad(
        Kind::Manifest,
        &with(manifest(), "/mediaType", Some(json!(media::OCI_INDEX))),
        "manifest: mediaType: \"application/vnd.oci.image.index.v1+json\" is not a media type of \
         a manifest: expected \"application/vnd.oci.image.manifest.v1+json\" or \
         \"application/vnd.docker.distribution.manifest.v2+json\"",
    );
}

#[test]
fn media_type_agrees_with_the_pointing_descriptor() {
    let doc = manifest().to_string();
    assert!(validate(Kind::Manifest, Some(media::OCI_MANIFEST), doc.as_bytes()).is_ok());
    let p = validate(Kind::Manifest, Some(media::DOCKER_MANIFEST), doc.as_bytes()).unwrap_err();
    assert_eq!(
        p.to_string(),
        "manifest: mediaType: \"application/vnd.oci.image.manifest.v1+json\" does not match the \
         media type \"application/vnd.docker.distribution.manifest.v2+json\" of the descriptor \
         that points at this document"
    );
    let p = validate(Kind::Manifest, Some(media::OCI_INDEX), doc.as_bytes()).unwrap_err();
    assert_eq!(
        p.0[0].to_string(),
        "manifest: the descriptor that points at this document has media type \
         \"application/vnd.oci.image.index.v1+json\", which names an index, but it is read as a \
         manifest"
    );
}

#[test]
fn document_name_is_the_callers() {
    let doc = with(manifest(), "/schemaVersion", Some(json!(3)));
    let p = validate_named(
        "blobs/sha256/c86f",
        Kind::Manifest,
        None,
        doc.to_string().as_bytes(),
    )
    .unwrap_err();
    assert_eq!(
        p.to_string(),
        "blobs/sha256/c86f: schemaVersion: 3 is not supported: must be 2"
    );
}

#[test]
fn descriptor_media_type_grammar() {
    ok(
        Kind::Descriptor,
        &with(descriptor(), "/mediaType", Some(json!("a!#$&^_.+-b/c"))),
    );
    bad(
        Kind::Descriptor,
        &with(
            descriptor(),
            "/mediaType",
            Some(json!("text/plain; charset=utf-8")),
        ),
        "descriptor: mediaType: \"text/plain; charset=utf-8\" has an invalid subtype: only \
         letters, digits and !#$&^_.+- are allowed",
    );
}

#[test]
fn digest_grammar_and_registered_algorithms() {
    ok(
        Kind::Descriptor,
        &with(
            descriptor(),
            "/digest",
            Some(json!("sha512:".to_owned() + &"0".repeat(128))),
        ),
    );
    // Unregistered algorithms that follow the grammar are accepted by validation.
    ok(
        Kind::Descriptor,
        &with(
            descriptor(),
            "/digest",
            Some(json!("multihash+base58:QmRZxt2b1F")),
        ),
    );
    bad(
        Kind::Manifest,
        &with(manifest(), "/layers/0/digest", Some(json!("sha256:ab"))),
        "manifest: layers[0].digest: \"sha256:ab\" is not 64 lowercase hex characters",
    );
    bad(
        Kind::Descriptor,
        &with(descriptor(), "/digest", Some(json!("sha384:abc"))),
        "descriptor: digest: \"sha384:abc\" is not 96 lowercase hex characters",
    );
    bad(
        Kind::Descriptor,
        &with(descriptor(), "/digest", Some(json!("sha256:+ab"))),
        "descriptor: digest: \"sha256:+ab\" has an invalid encoded part: expected one or more of \
         a-z A-Z 0-9 = _ -",
    );
    bad(
        Kind::Descriptor,
        &with(descriptor(), "/digest", Some(json!("sha256..x:ab"))),
        "descriptor: digest: \"sha256..x:ab\" has an invalid algorithm: expected lowercase \
         letters and digits separated by single '+', '.', '_' or '-'",
    );
}

#[test]
fn huge_values_are_cut_in_messages() {
    let huge = format!("sha256:{}", "a".repeat(100_000));
    let p = problems(
        Kind::Descriptor,
        &with(descriptor(), "/digest", Some(json!(huge))),
    );
    assert_eq!(p.len(), 1);
    assert!(p[0].len() < 300, "message too long: {} bytes", p[0].len());
    assert!(
        p[0].starts_with("descriptor: digest: \"sha256:aaaa"),
        "{}",
        p[0]
    );
    assert!(
        p[0].ends_with("\"… is not 64 lowercase hex characters"),
        "{}",
        p[0]
    );
}

#[test]
fn size_is_a_non_negative_integer() {
    ok(
        Kind::Descriptor,
        &with(descriptor(), "/size", Some(json!(0))),
    );
    bad(
        Kind::Descriptor,
        &with(descriptor(), "/size", Some(json!(-1))),
        "descriptor: size: -1 is not a non-negative integer",
    );
    bad(
        Kind::Descriptor,
        &with(descriptor(), "/size", Some(json!(1.5))),
        "descriptor: size: 1.5 is not a non-negative integer",
    );
}

#[test]
fn manifest_needs_a_config_and_a_layer() {
    bad(
        Kind::Manifest,
        &with(manifest(), "/layers", Some(json!([]))),
        "manifest: layers: is empty: a manifest needs at least one layer (artifacts without \
         content use the empty descriptor)",
    );
    bad(
        Kind::Manifest,
        &with(manifest(), "/config", None),
        "manifest: config: is required but missing",
    );
}

#[test]
fn artifacts_with_empty_config_need_artifact_type() {
    let empty = json!({"mediaType": media::OCI_EMPTY, "size": 2, "digest": media::EMPTY_DIGEST});
    let artifact = with(manifest(), "/config", Some(empty));
    ok(
        Kind::Manifest,
        &with(
            artifact.clone(),
            "/artifactType",
            Some(json!("application/vnd.example+type")),
        ),
    );
    bad(
        Kind::Manifest,
        &artifact,
        "manifest: artifactType: is required when config.mediaType is \
         \"application/vnd.oci.empty.v1+json\" (an artifact manifest)",
    );
    bad(
        Kind::Index,
        &with(index(), "/artifactType", Some(json!("nope"))),
        "index: artifactType: \"nope\" is not a media type: expected \"type/subtype\"",
    );
}

#[test]
fn empty_descriptor_is_the_empty_object() {
    let empty = json!({"mediaType": media::OCI_EMPTY, "size": 2, "digest": media::EMPTY_DIGEST});
    ok(Kind::Descriptor, &empty);
    ok(
        Kind::Descriptor,
        &with(empty.clone(), "/data", Some(json!("e30="))),
    );
    bad(
        Kind::Descriptor,
        &with(empty.clone(), "/size", Some(json!(3))),
        "descriptor: size: 3 is not 2 (the size of \"{}\") required by media type \
         \"application/vnd.oci.empty.v1+json\"",
    );
    bad(
        Kind::Descriptor,
        &with(empty, "/digest", Some(json!(D1))),
        &format!(
            "descriptor: digest: \"{D1}\" is not the digest of the empty JSON object \
             \"{}\" required by media type \"application/vnd.oci.empty.v1+json\"",
            media::EMPTY_DIGEST
        ),
    );
}

#[test]
fn subject_is_a_descriptor() {
    ok(
        Kind::Manifest,
        &with(manifest(), "/subject", Some(descriptor())),
    );
    bad(
        Kind::Index,
        &with(index(), "/subject", Some(with(descriptor(), "/size", None))),
        "index: subject.size: is required but missing",
    );
}

#[test]
fn annotation_keys_and_values() {
    ok(
        Kind::Manifest,
        &with(
            manifest(),
            "/annotations",
            Some(json!({"org.opencontainers.image.ref.name": "v1"})),
        ),
    );
    bad(
        Kind::Manifest,
        &with(manifest(), "/annotations", Some(json!({"a.b": 1}))),
        "manifest: annotations[\"a.b\"]: must be a string, found the number 1",
    );
    bad(
        Kind::Manifest,
        &with(manifest(), "/layers/0/annotations", Some(json!({"": "x"}))),
        "manifest: layers[0].annotations: has an empty key: keys must be non-empty strings",
    );
}

#[test]
fn urls_are_uris() {
    ok(
        Kind::Descriptor,
        &with(
            descriptor(),
            "/urls",
            Some(json!(["https://example.com/a%20b"])),
        ),
    );
    bad(
        Kind::Descriptor,
        &with(
            descriptor(),
            "/urls",
            Some(json!(["https://example.com/", "http://a b"])),
        ),
        "descriptor: urls[1]: \"http://a b\" is not a URI: character ' ' at offset 8 must be \
         percent-encoded",
    );
}

#[test]
fn data_is_padded_base64_matching_size_and_digest() {
    // "hello" is 5 bytes.
    let hello = json!({
        "mediaType": "text/plain", "size": 5, "data": "aGVsbG8=",
        "digest": "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
    });
    ok(Kind::Descriptor, &hello);
    bad(
        Kind::Descriptor,
        &with(hello.clone(), "/data", Some(json!("aGVsbG8"))),
        "descriptor: data: is not padded base64: its length 7 is not a multiple of 4",
    );
    bad(
        Kind::Descriptor,
        &with(hello.clone(), "/size", Some(json!(6))),
        "descriptor: data: decodes to 5 bytes but size is 6",
    );
    bad(
        Kind::Descriptor,
        &with(hello, "/data", Some(json!("aGVsbGE="))),
        &format!(
            "descriptor: data: decodes to content with digest {:?}, not the descriptor's digest \
             \"sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\"",
            image_core::digest::sha256(b"hella")
        ),
    );
}

#[test]
fn platform_needs_architecture_and_os() {
    ok(
        Kind::Index,
        &with(index(), "/manifests/0/platform/variant", Some(json!("v8"))),
    );
    bad(
        Kind::Index,
        &with(index(), "/manifests/0/platform/os", None),
        "index: manifests[0].platform.os: is required but missing",
    );
}

#[test]
fn docker_manifest_list_entries_need_a_platform() {
    let list = with(
        index(),
        "/mediaType",
        Some(json!(media::DOCKER_MANIFEST_LIST)),
    );
    ok(Kind::Index, &list);
    // OCI indexes do not require it.
    ok(Kind::Index, &with(index(), "/manifests/0/platform", None));
    bad(
        Kind::Index,
        &with(list, "/manifests/0/platform", None),
        "index: manifests[0].platform: is required in the entries of a Docker manifest list \
         (\"application/vnd.docker.distribution.manifest.list.v2+json\")",
    );
}

#[test]
fn config_requires_os_architecture_rootfs() {
    bad(
        Kind::Config,
        &with(config(), "/architecture", None),
        "config: architecture: is required but missing",
    );
    bad(
        Kind::Config,
        &with(config(), "/rootfs/type", Some(json!("tar"))),
        "config: rootfs.type: \"tar\" is not supported: must be \"layers\"",
    );
    bad(
        Kind::Config,
        &with(config(), "/rootfs/diff_ids/0", Some(json!("sha256:xyz"))),
        "config: rootfs.diff_ids[0]: \"sha256:xyz\" is not 64 lowercase hex characters",
    );
}

#[test]
fn config_env_is_key_equals_value() {
    ok(
        Kind::Config,
        &with(config(), "/config/Env", Some(json!(["A=", "B==x"]))),
    );
    // Docker writes null for unset lists.
    ok(
        Kind::Config,
        &with(config(), "/config/Env", Some(Value::Null)),
    );
    bad(
        Kind::Config,
        &with(config(), "/config/Env", Some(json!(["A=1", "=x"]))),
        "config: config.Env[1]: \"=x\" is not of the form KEY=value",
    );
}

#[test]
fn config_created_is_a_date_time() {
    bad(
        Kind::Config,
        &with(config(), "/history/0/created", Some(json!("yesterday"))),
        "config: history[0].created: \"yesterday\" is not an RFC 3339 date-time such as \
         \"2015-10-31T22:22:56.015925234Z\"",
    );
    bad(
        Kind::Config,
        &with(
            config(),
            "/config/ExposedPorts",
            Some(json!({"80/tcp": true})),
        ),
        "config: config.ExposedPorts[\"80/tcp\"]: must be an object, found the boolean true",
    );
}

#[test]
fn history_count_matches_diff_ids() {
    let good = validate_config(config().to_string().as_bytes()).expect("valid");
    assert!(check_history("config", &good).is_empty());
    let two = with(config(), "/rootfs/diff_ids", Some(json!([D1, D2])));
    // Valid by the spec (its own example is like this) ...
    let two = validate_config(two.to_string().as_bytes()).expect("valid by the spec");
    // ... but inconsistent.
    assert_eq!(
        check_history("config", &two).to_string(),
        "config: history: has 1 entries without \"empty_layer\": true, but rootfs.diff_ids has \
         2: there must be one such entry per layer"
    );
}

#[test]
fn config_matches_manifest() {
    let m = validate_manifest(manifest().to_string().as_bytes(), None).expect("valid");
    let c = validate_config(config().to_string().as_bytes()).expect("valid");
    assert!(check_config_matches_manifest(&m, &c).is_empty());
    let c2 = with(config(), "/rootfs/diff_ids", Some(json!([D1, D2])));
    let c2 = validate_config(c2.to_string().as_bytes()).expect("valid");
    assert_eq!(
        check_config_matches_manifest(&m, &c2).to_string(),
        "config: rootfs.diff_ids: has 2 entries but the manifest has 1 layers: the config must \
         list one diff_id per layer (is this the config of another image?)"
    );
}

#[test]
fn oci_layout_version() {
    bad(
        Kind::Layout,
        &json!({"imageLayoutVersion": "2.0.0"}),
        "oci-layout: imageLayoutVersion: \"2.0.0\" is not a supported image layout version: \
         expected \"1.0.0\"",
    );
    bad(
        Kind::Layout,
        &json!({}),
        "oci-layout: imageLayoutVersion: is required but missing",
    );
}

#[test]
fn blob_size_and_digest() {
    assert!(check_size("manifest", "layers[0].size", 5, 5).is_ok());
    assert_eq!(
        check_size("manifest", "layers[0].size", 5, 4)
            .unwrap_err()
            .to_string(),
        "manifest: layers[0].size: is 5 but the blob has 4 bytes: the blob is truncated, corrupt \
         or not the one the descriptor points at"
    );
    let d: oci_spec::image::Descriptor = serde_json::from_value(json!({
        "mediaType": "text/plain", "size": 2, "digest": media::EMPTY_DIGEST,
    }))
    .expect("descriptor");
    assert!(check_blob("manifest", "config", &d, b"{}").is_empty());
    assert_eq!(
        check_blob("manifest", "config", &d, b"{ }").to_string(),
        format!(
            "manifest: config.size: is 2 but the blob has 3 bytes: the blob is truncated, \
             corrupt or not the one the descriptor points at\n\
             manifest: config.digest: content has digest \
             \"sha256:257c1be96ae69f4b01c2c69bdb6d78605f59175819fb007d0bf245bf48444c4a\", \
             expected \"{}\"",
            media::EMPTY_DIGEST
        )
    );
    let unregistered: oci_spec::image::Descriptor = serde_json::from_value(json!({
        "mediaType": "text/plain", "size": 2, "digest": "multihash+base58:QmRZ",
    }))
    .expect("descriptor");
    assert_eq!(
        check_blob("manifest", "config", &unregistered, b"{}").to_string(),
        "manifest: config.digest: \"multihash+base58:QmRZ\" uses an unregistered digest \
         algorithm: only sha256 and sha512 can be verified"
    );
}

#[test]
fn runnable_layers() {
    let m = validate_manifest(manifest().to_string().as_bytes(), None).expect("valid");
    assert!(check_layers_runnable("manifest", &m).is_empty());
    let docker = with(
        manifest(),
        "/layers/0/mediaType",
        Some(json!(media::DOCKER_LAYER_FOREIGN_TAR_GZIP)),
    );
    let docker = validate_manifest(docker.to_string().as_bytes(), None).expect("valid");
    assert!(check_layers_runnable("manifest", &docker).is_empty());
    let attestation = with(
        manifest(),
        "/layers/0/mediaType",
        Some(json!("application/vnd.in-toto+json")),
    );
    let attestation = validate_manifest(attestation.to_string().as_bytes(), None).expect("valid");
    assert_eq!(
        check_layers_runnable("manifest", &attestation).to_string(),
        "manifest: layers[0].mediaType: \"application/vnd.in-toto+json\" is not a layer media \
         type lxcri can unpack (OCI tar, tar+gzip, tar+zstd, or Docker rootfs.diff.tar.gzip)"
    );
}

#[test]
fn kind_from_media_type() {
    assert_eq!(
        Kind::from_media_type(media::OCI_MANIFEST),
        Some(Kind::Manifest)
    );
    assert_eq!(
        Kind::from_media_type(media::DOCKER_MANIFEST),
        Some(Kind::Manifest)
    );
    assert_eq!(Kind::from_media_type(media::OCI_INDEX), Some(Kind::Index));
    assert_eq!(
        Kind::from_media_type(media::DOCKER_MANIFEST_LIST),
        Some(Kind::Index)
    );
    assert_eq!(Kind::from_media_type(media::OCI_CONFIG), Some(Kind::Config));
    assert_eq!(
        Kind::from_media_type(media::DOCKER_CONFIG),
        Some(Kind::Config)
    );
    assert_eq!(
        Kind::from_media_type(media::OCI_LAYOUT_HEADER),
        Some(Kind::Layout)
    );
    assert_eq!(Kind::from_media_type(media::OCI_LAYER_TAR_GZIP), None);
    assert_eq!(Kind::from_media_type("text/plain"), None);
}

#[test]
fn every_problem_is_reported() {
    let doc = with(manifest(), "/schemaVersion", Some(json!(1)));
    let doc = with(doc, "/config/size", Some(json!("1470")));
    let doc = with(doc, "/layers/0/digest", Some(json!("sha256:AB")));
    let p = problems(Kind::Manifest, &doc);
    assert_eq!(
        p,
        vec![
            "manifest: schemaVersion: 1 is not supported: must be 2",
            "manifest: config.size: must be a non-negative integer, found the string \"1470\"",
            "manifest: layers[0].digest: \"sha256:AB\" is not 64 lowercase hex characters",
        ]
    );
}
