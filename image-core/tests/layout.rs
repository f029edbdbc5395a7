//! Layouts built with the builder, then damaged in the ways real ones get damaged.

use image_core::builder::{BuiltImage, ImageBuilder, ImageConfigSpec};
use image_core::chainid;
use image_core::layout::{hash_file, Layout, LayoutError};
use std::fs;
use std::path::{Path, PathBuf};

fn layer_dirs(root: &Path) -> (PathBuf, PathBuf) {
    let l1 = root.join("l1");
    let l2 = root.join("l2");
    fs::create_dir_all(l1.join("etc")).unwrap();
    fs::create_dir_all(l2.join("etc")).unwrap();
    fs::write(l1.join("etc/hostname"), "one\n").unwrap();
    fs::write(l1.join("etc/motd"), "hello\n").unwrap();
    fs::write(l2.join("etc/hostname"), "two\n").unwrap();
    fs::write(l2.join("etc/.wh.motd"), "").unwrap();
    (l1, l2)
}

fn build(root: &Path, archive: bool) -> (PathBuf, BuiltImage) {
    let (l1, l2) = layer_dirs(root);
    let b = ImageBuilder::new("local/test:v1")
        .layer_dir(l1)
        .layer_dir(l2)
        .config(ImageConfigSpec {
            cmd: vec!["/bin/sh".into()],
            env: vec!["A=1".into()],
            working_dir: Some("/etc".into()),
            ..Default::default()
        })
        .fixed_mtime(1_700_000_000);
    if archive {
        let out = root.join("image.tar");
        let built = b.write_archive(&out).unwrap();
        (out, built)
    } else {
        let out = root.join("layout");
        let built = b.write_layout(&out).unwrap();
        (out, built)
    }
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

fn problems_text(l: &Layout) -> String {
    l.verify().problems.to_string()
}

#[test]
fn built_layout_verifies_clean_and_describes_itself() {
    let t = tempfile::tempdir().unwrap();
    let (dir, built) = build(t.path(), false);
    let layout = Layout::open(&dir).unwrap();
    assert!(!layout.is_archive());
    let report = layout.verify();
    assert!(report.is_clean(), "{}", report.problems);
    assert_eq!(report.blobs, 4, "manifest, config, two layers");
    assert_eq!(report.manifests, 1);
    assert_eq!(report.indexes, 1);

    let images = layout.images().unwrap();
    assert_eq!(images.len(), 1);
    let img = &images[0];
    assert_eq!(img.manifest_digest, built.manifest_digest);
    assert_eq!(img.config_digest, built.config_digest);
    assert_eq!(img.ref_name.as_deref(), Some("v1"));
    assert_eq!(img.image_name.as_deref(), Some("local/test:v1"));
    assert_eq!(img.diff_ids, built.diff_ids);
    assert_eq!(img.chain_ids, chainid::chain_ids(&built.diff_ids));
    assert_eq!(img.chain_ids, built.chain_ids);
    assert_eq!(
        img.layers
            .iter()
            .map(|l| l.digest.clone())
            .collect::<Vec<_>>(),
        built.layer_digests
    );
    assert_eq!(img.config.cmd, vec!["/bin/sh".to_string()]);
    assert_eq!(img.config.working_dir.as_deref(), Some("/etc"));
    assert!(img.config.env.contains(&"A=1".to_string()));
    assert!(img.config.env.iter().any(|e| e.starts_with("PATH=")));
    assert_eq!(
        img.platform,
        Some(image_core::platform::Platform::host().to_string())
    );
}

#[test]
fn built_archive_verifies_clean() {
    let t = tempfile::tempdir().unwrap();
    let (tar, built) = build(t.path(), true);
    let layout = Layout::open(&tar).unwrap();
    assert!(layout.is_archive());
    let report = layout.verify();
    assert!(report.is_clean(), "{}", report.problems);
    assert_eq!(report.blobs, 4);
    let images = layout.images().unwrap();
    assert_eq!(images[0].chain_ids, built.chain_ids);
    // Nothing but the archive is left next to it.
    let names: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, vec!["image.tar", "l1", "l2"]);
}

#[test]
fn corrupted_layer_is_a_digest_mismatch() {
    let t = tempfile::tempdir().unwrap();
    let (dir, built) = build(t.path(), false);
    let p = blob(&dir, &built.layer_digests[1]);
    let mut bytes = fs::read(&p).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&p, &bytes).unwrap();
    let report = Layout::open(&dir).unwrap().verify();
    assert_eq!(report.problems.len(), 1, "{}", report.problems);
    let pr = &report.problems.0[0];
    let hex = built.layer_digests[1].trim_start_matches("sha256:");
    assert_eq!(pr.doc, format!("blobs/sha256/{hex} (layer)"));
    assert!(pr.reason.contains("content digest is sha256:"), "{pr}");
    assert!(pr.reason.contains("layers[1]"), "{pr}");
}

#[test]
fn truncated_layer_reports_size_and_digest() {
    let t = tempfile::tempdir().unwrap();
    let (dir, built) = build(t.path(), false);
    let p = blob(&dir, &built.layer_digests[0]);
    let bytes = fs::read(&p).unwrap();
    fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let text = problems_text(&Layout::open(&dir).unwrap());
    assert!(text.contains("content digest is"), "{text}");
    assert!(
        text.contains(&format!("is {} bytes", bytes.len() / 2)),
        "{text}"
    );
}

#[test]
fn missing_config_and_layer_are_reported() {
    let t = tempfile::tempdir().unwrap();
    let (dir, built) = build(t.path(), false);
    fs::remove_file(blob(&dir, &built.config_digest)).unwrap();
    fs::remove_file(blob(&dir, &built.layer_digests[0])).unwrap();
    let report = Layout::open(&dir).unwrap().verify();
    let text = report.problems.to_string();
    assert_eq!(report.problems.len(), 2, "{text}");
    let mhex = built.manifest_digest.trim_start_matches("sha256:");
    for p in report.problems.iter() {
        assert_eq!(p.doc, format!("blobs/sha256/{mhex} (manifest)"));
        assert!(p.reason.contains("is missing"), "{p}");
    }
    assert_eq!(report.problems.0[0].path, "config");
    assert_eq!(report.problems.0[1].path, "layers[0]");
    // images() cannot describe an image without its config.
    assert!(Layout::open(&dir).unwrap().images().is_err());
}

#[test]
fn missing_manifest_is_reported_against_index_json() {
    let t = tempfile::tempdir().unwrap();
    let (dir, built) = build(t.path(), false);
    fs::remove_file(blob(&dir, &built.manifest_digest)).unwrap();
    let report = Layout::open(&dir).unwrap().verify();
    assert_eq!(report.problems.len(), 1, "{}", report.problems);
    let p = &report.problems.0[0];
    assert_eq!(
        (p.doc.as_str(), p.path.as_str()),
        ("index.json", "manifests[0]")
    );
}

#[test]
fn missing_and_bad_oci_layout_file() {
    let t = tempfile::tempdir().unwrap();
    let (dir, _) = build(t.path(), false);
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"9.9.9"}"#).unwrap();
    let report = Layout::open(&dir).unwrap().verify();
    assert_eq!(report.problems.len(), 1, "{}", report.problems);
    assert_eq!(report.problems.0[0].doc, "oci-layout");
    fs::remove_file(dir.join("oci-layout")).unwrap();
    let report = Layout::open(&dir).unwrap().verify();
    assert_eq!(report.problems.len(), 1, "{}", report.problems);
    assert!(report.problems.0[0].reason.contains("missing"));
}

#[test]
fn invalid_manifest_is_validated_with_its_descriptor_media_type() {
    let t = tempfile::tempdir().unwrap();
    let (dir, built) = build(t.path(), false);
    // A manifest whose schemaVersion is wrong, stored under its true digest, and index.json
    // pointing at it.
    let mpath = blob(&dir, &built.manifest_digest);
    let mut m: serde_json::Value = serde_json::from_slice(&fs::read(&mpath).unwrap()).unwrap();
    m["schemaVersion"] = serde_json::json!(3);
    let bytes = serde_json::to_vec(&m).unwrap();
    let digest = image_core::digest::sha256(&bytes);
    fs::write(blob(&dir, &digest), &bytes).unwrap();
    let ipath = dir.join("index.json");
    let mut idx: serde_json::Value = serde_json::from_slice(&fs::read(&ipath).unwrap()).unwrap();
    idx["manifests"][0]["digest"] = serde_json::json!(digest);
    idx["manifests"][0]["size"] = serde_json::json!(bytes.len());
    fs::write(&ipath, serde_json::to_vec(&idx).unwrap()).unwrap();
    let report = Layout::open(&dir).unwrap().verify();
    assert!(!report.is_clean());
    let hex = digest.trim_start_matches("sha256:");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.doc == format!("blobs/sha256/{hex} (manifest)")
                && p.path.contains("schemaVersion")),
        "{}",
        report.problems
    );
}

#[test]
fn nested_index_is_followed() {
    let t = tempfile::tempdir().unwrap();
    let (dir, built) = build(t.path(), false);
    let ipath = dir.join("index.json");
    let top: serde_json::Value = serde_json::from_slice(&fs::read(&ipath).unwrap()).unwrap();
    // The original index becomes a blob; a new index.json points at it.
    let mut inner = top.clone();
    inner["manifests"][0]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    let inner_bytes = serde_json::to_vec(&inner).unwrap();
    let inner_digest = image_core::digest::sha256(&inner_bytes);
    fs::write(blob(&dir, &inner_digest), &inner_bytes).unwrap();
    let new_top = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": inner_digest,
            "size": inner_bytes.len(),
            "annotations": top["manifests"][0]["annotations"].clone(),
        }],
    });
    fs::write(&ipath, serde_json::to_vec(&new_top).unwrap()).unwrap();
    let layout = Layout::open(&dir).unwrap();
    let report = layout.verify();
    assert!(report.is_clean(), "{}", report.problems);
    assert_eq!((report.indexes, report.manifests, report.blobs), (2, 1, 5));
    let images = layout.images().unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].manifest_digest, built.manifest_digest);
    assert_eq!(images[0].image_name.as_deref(), Some("local/test:v1"));
}

#[test]
fn corrupted_blob_in_archive() {
    let t = tempfile::tempdir().unwrap();
    let (dir, built) = build(t.path(), false);
    let p = blob(&dir, &built.config_digest);
    let mut bytes = fs::read(&p).unwrap();
    bytes[2] = b'X';
    fs::write(&p, &bytes).unwrap();
    // Pack the damaged layout with the tar crate, the way an archive carries it.
    let tar_path = t.path().join("bad.tar");
    let mut b = tar::Builder::new(fs::File::create(&tar_path).unwrap());
    b.append_dir_all(".", &dir).unwrap();
    b.finish().unwrap();
    drop(b);
    let report = Layout::open(&tar_path).unwrap().verify();
    assert_eq!(report.problems.len(), 1, "{}", report.problems);
    assert!(report.problems.0[0].doc.ends_with("(config)"));
    assert!(report.problems.0[0].reason.contains("content digest"));
}

#[test]
fn not_a_layout() {
    let t = tempfile::tempdir().unwrap();
    assert!(matches!(
        Layout::open(t.path()),
        Err(LayoutError::NotALayout { .. })
    ));
    let f = t.path().join("x.json");
    fs::write(&f, "{}").unwrap();
    assert!(Layout::open(&f).is_err());
    assert!(matches!(
        Layout::open(&t.path().join("nope")),
        Err(LayoutError::Io { .. })
    ));
}

#[test]
fn hash_file_streams_the_whole_file() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("blob");
    let data: Vec<u8> = (0..1_000_003u32).map(|i| (i % 251) as u8).collect();
    fs::write(&p, &data).unwrap();
    let h = hash_file(&p, image_core::digest::Algorithm::Sha256).unwrap();
    assert_eq!(h.size, data.len() as u64);
    assert_eq!(h.digest, image_core::digest::sha256(&data));
    assert!(h.bytes.is_none());
}
