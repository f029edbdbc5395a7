//! The pure part: from an image's target descriptor and a content store, find the manifest whose
//! config gives the container's snapshot parent as chain ID, checking every blob on the way.

use crate::{Computed, IdentifyError, Identity};
use image_core::chainid;
use image_core::layout::MAX_JSON_BYTES;
use image_core::media;
use image_core::platform::{self, Platform};
use image_core::problem::Problems;
use image_core::validate::{self, Document, Kind};
use oci_spec::image::{Descriptor, ImageManifest};

/// The most manifests of an index read while looking for the snapshot's parent.
pub(crate) const MAX_CANDIDATES: usize = 16;

/// A content store that reads whole blobs (containerd's content service, or a map in tests).
pub(crate) trait Content {
    /// The bytes of blob `digest` (`size` bytes expected). `Err` says why it cannot be read
    /// (not found, containerd failing).
    async fn read(&mut self, digest: &str, size: u64) -> Result<Vec<u8>, String>;
}

/// What containerd said about the container, its snapshot and its image.
#[derive(Debug, Clone)]
pub(crate) struct Subject {
    pub container: String,
    pub image: String,
    pub snapshotter: String,
    pub snapshot_key: String,
    /// The parent of the container's snapshot.
    pub parent: String,
    /// The image's target descriptor, as containerd gave it.
    pub target_media_type: String,
    pub target_digest: String,
    pub target_size: i64,
}

/// One manifest, checked, with its config's chain ID.
struct Checked {
    manifest_digest: String,
    config_digest: String,
    platform: String,
    layers: usize,
    chain_id: String,
}

/// True for `sha256:` followed by 64 lowercase hex characters: how containerd names the
/// snapshot of an unpacked layer stack.
pub(crate) fn is_chain_id(name: &str) -> bool {
    name.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// Verifies `s` against the content in `content`: the manifest for `wanted` (or, when its chain
/// ID is not the parent, another manifest of the index) must give `s.parent`.
pub(crate) async fn verify<C: Content>(
    content: &mut C,
    s: &Subject,
    wanted: &Platform,
) -> Result<Identity, IdentifyError> {
    let unavailable = |reason: String| IdentifyError::Unavailable {
        container: s.container.clone(),
        reason,
    };
    if s.parent.is_empty() {
        return Err(unavailable(format!(
            "its snapshot {:?} ({}) has no parent: it was not prepared from an unpacked image",
            s.snapshot_key, s.snapshotter
        )));
    }
    if !is_chain_id(&s.parent) {
        return Err(unavailable(format!(
            "the parent of its snapshot {:?} ({}) is {:?}, not a chain ID (sha256:<64 hex>): \
             the snapshot was not prepared from an image unpacked by containerd, or for a \
             remapped user namespace",
            s.snapshot_key, s.snapshotter, s.parent
        )));
    }
    let target = target_descriptor(s)?;
    let target_type = target.media_type().to_string();
    let bytes = read_blob(content, s, &target, "image target").await?;
    let mut computed = Vec::new();
    if media::is_manifest(&target_type) {
        let c = check_manifest(content, s, &target, Some(bytes)).await?;
        if c.chain_id == s.parent {
            return Ok(identity(s, c));
        }
        computed.push(to_computed(c));
    } else if media::is_index(&target_type) {
        let index = validate::validate_index(&bytes, Some(&target_type))
            .map_err(|p| invalid(s, format!("index {}", s.target_digest), p))?;
        // The manifest for `wanted` first; the others only when it does not give the parent (a
        // container created with another --platform), and only if their content is present.
        let primary = platform::select_manifest(&index, wanted).ok().cloned();
        let mut others: Vec<&Descriptor> = index
            .manifests()
            .iter()
            .filter(|d| media::is_manifest(d.media_type().as_ref()))
            .filter(|d| primary.as_ref().is_none_or(|p| p.digest() != d.digest()))
            .collect();
        others.truncate(MAX_CANDIDATES);
        if let Some(p) = &primary {
            if media::is_manifest(p.media_type().as_ref()) {
                let c = check_manifest(content, s, p, None).await?;
                if c.chain_id == s.parent {
                    return Ok(identity(s, c));
                }
                computed.push(to_computed(c));
            }
        }
        let mut missing = 0;
        for d in others {
            match check_manifest(content, s, d, None).await {
                Ok(c) if c.chain_id == s.parent => return Ok(identity(s, c)),
                Ok(c) => computed.push(to_computed(c)),
                // containerd fetches only the platforms it was asked for: another platform's
                // manifest or config is usually absent.
                Err(IdentifyError::Unavailable { .. }) => missing += 1,
                Err(e) => return Err(e),
            }
        }
        if primary.is_none() && computed.is_empty() {
            return Err(unavailable(format!(
                "image {:?} has no manifest for {wanted} and the content of none of its other \
                 {missing} manifests is in containerd's content store",
                s.image
            )));
        }
    } else {
        return Err(invalid(
            s,
            format!("image target {}", s.target_digest),
            Problems(vec![image_core::Problem::new(
                "image target",
                "mediaType",
                format!("{target_type:?} is neither a manifest nor an index media type"),
            )]),
        ));
    }
    Err(IdentifyError::Mismatch {
        container: s.container.clone(),
        image: s.image.clone(),
        parent: s.parent.clone(),
        computed,
    })
}

fn identity(s: &Subject, c: Checked) -> Identity {
    Identity {
        chain_id: c.chain_id,
        image_name: s.image.clone(),
        target_digest: s.target_digest.clone(),
        manifest_digest: c.manifest_digest,
        config_digest: c.config_digest,
        platform: c.platform,
        layers: c.layers,
        snapshotter: s.snapshotter.clone(),
        snapshot_key: s.snapshot_key.clone(),
    }
}

fn to_computed(c: Checked) -> Computed {
    Computed {
        manifest_digest: c.manifest_digest,
        platform: c.platform,
        chain_id: c.chain_id,
    }
}

fn invalid(s: &Subject, document: String, problems: Problems) -> IdentifyError {
    IdentifyError::Invalid {
        container: s.container.clone(),
        image: s.image.clone(),
        document,
        problems: problems.iter().map(ToString::to_string).collect(),
    }
}

/// The image's target as an oci-spec descriptor, validated by image-core.
fn target_descriptor(s: &Subject) -> Result<Descriptor, IdentifyError> {
    let json = serde_json::json!({
        "mediaType": s.target_media_type,
        "digest": s.target_digest,
        "size": s.target_size,
    });
    let bytes = serde_json::to_vec(&json).unwrap_or_default();
    match validate::validate_named("image target", Kind::Descriptor, None, &bytes) {
        Ok(Document::Descriptor(d)) => Ok(d),
        Ok(_) => unreachable!("validate(Kind::Descriptor) returns a descriptor"),
        Err(p) => Err(invalid(
            s,
            format!("the target descriptor of image {:?}", s.image),
            p,
        )),
    }
}

/// Reads the JSON blob `d` points at and checks its size and digest.
async fn read_blob<C: Content>(
    content: &mut C,
    s: &Subject,
    d: &Descriptor,
    what: &str,
) -> Result<Vec<u8>, IdentifyError> {
    let digest = d.digest().to_string();
    let document = format!("{what} {digest}");
    if d.size() > MAX_JSON_BYTES {
        return Err(invalid(
            s,
            document,
            Problems(vec![image_core::Problem::new(
                what,
                "size",
                format!(
                    "is {} bytes, more than the {MAX_JSON_BYTES} a JSON document may have",
                    d.size()
                ),
            )]),
        ));
    }
    let bytes =
        content
            .read(&digest, d.size())
            .await
            .map_err(|reason| IdentifyError::Unavailable {
                container: s.container.clone(),
                reason: format!(
                    "cannot read {what} {digest} of image {:?} from containerd's content store: \
                 {reason}",
                    s.image
                ),
            })?;
    let problems = validate::check_blob(what, "", d, &bytes);
    if !problems.is_empty() {
        return Err(invalid(s, document, problems));
    }
    Ok(bytes)
}

/// Reads (unless given), checks and validates manifest `d` and its config; computes the chain ID.
async fn check_manifest<C: Content>(
    content: &mut C,
    s: &Subject,
    d: &Descriptor,
    bytes: Option<Vec<u8>>,
) -> Result<Checked, IdentifyError> {
    let manifest_digest = d.digest().to_string();
    let media_type = d.media_type().to_string();
    let bytes = match bytes {
        Some(b) => b,
        None => read_blob(content, s, d, "manifest").await?,
    };
    let document = format!("manifest {manifest_digest}");
    let manifest: ImageManifest = validate::validate_manifest(&bytes, Some(&media_type))
        .map_err(|p| invalid(s, document.clone(), p))?;
    let runnable = validate::check_layers_runnable("manifest", &manifest);
    if !runnable.is_empty() {
        return Err(invalid(s, document, runnable));
    }
    let config_desc = manifest.config();
    let config_digest = config_desc.digest().to_string();
    let config_bytes = read_blob(content, s, config_desc, "config").await?;
    let config_document = format!("config {config_digest}");
    let config = validate::validate_config(&config_bytes)
        .map_err(|p| invalid(s, config_document.clone(), p))?;
    let matches = validate::check_config_matches_manifest(&manifest, &config);
    if !matches.is_empty() {
        return Err(invalid(s, config_document, matches));
    }
    let diff_ids = config.rootfs().diff_ids();
    let Some(chain_id) = chainid::chain_id(diff_ids) else {
        // validate_manifest requires a layer and the config has as many diff_ids.
        unreachable!("a validated config of a validated manifest has diff_ids")
    };
    let platform = Platform::new(
        &config.os().to_string(),
        &config.architecture().to_string(),
        config.variant().as_deref(),
    );
    Ok(Checked {
        manifest_digest,
        config_digest,
        platform: platform.to_string(),
        layers: diff_ids.len(),
        chain_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image_core::digest::sha256;
    use std::collections::HashMap;

    /// A content store in memory; counts reads.
    #[derive(Default)]
    struct Map {
        blobs: HashMap<String, Vec<u8>>,
        reads: usize,
    }

    impl Map {
        fn put(&mut self, bytes: Vec<u8>) -> (String, i64) {
            let d = sha256(&bytes);
            let n = bytes.len() as i64;
            self.blobs.insert(d.clone(), bytes);
            (d, n)
        }
    }

    impl Content for Map {
        async fn read(&mut self, digest: &str, _size: u64) -> Result<Vec<u8>, String> {
            self.reads += 1;
            self.blobs
                .get(digest)
                .cloned()
                .ok_or_else(|| format!("content digest {digest}: not found"))
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn diff_id(n: u8) -> String {
        format!("sha256:{}", hex(&[n; 32]))
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn config(arch: &str, diff_ids: &[String]) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "architecture": arch, "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap()
    }

    /// Puts a manifest with `layers` layers and its config; returns (digest, size).
    fn manifest(store: &mut Map, arch: &str, diff_ids: &[String]) -> (String, i64) {
        let (cd, cn) = store.put(config(arch, diff_ids));
        let layers: Vec<_> = diff_ids
            .iter()
            .map(|d| {
                serde_json::json!({"mediaType": media::OCI_LAYER_TAR_GZIP, "digest": d, "size": 1})
            })
            .collect();
        store.put(
            serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
                "config": {"mediaType": media::OCI_CONFIG, "digest": cd, "size": cn},
                "layers": layers,
            }))
            .unwrap(),
        )
    }

    fn index(store: &mut Map, manifests: &[(&str, (String, i64))]) -> (String, i64) {
        let m: Vec<_> = manifests
            .iter()
            .map(|(arch, (d, n))| {
                serde_json::json!({"mediaType": media::OCI_MANIFEST, "digest": d, "size": n,
                                   "platform": {"os": "linux", "architecture": arch}})
            })
            .collect();
        store.put(
            serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": m,
            }))
            .unwrap(),
        )
    }

    fn subject(media_type: &str, (digest, size): (String, i64), parent: &str) -> Subject {
        Subject {
            container: "c1".into(),
            image: "local/x:1".into(),
            snapshotter: "overlayfs".into(),
            snapshot_key: "c1".into(),
            parent: parent.into(),
            target_media_type: media_type.into(),
            target_digest: digest,
            target_size: size,
        }
    }

    fn amd64() -> Platform {
        Platform::new("linux", "amd64", None)
    }

    #[test]
    fn chain_id_names() {
        assert!(is_chain_id(&diff_id(1)));
        assert!(!is_chain_id("sha256:AB"));
        assert!(!is_chain_id(&format!("{}-0-0", diff_id(1))));
        assert!(!is_chain_id(&diff_id(1).replace("sha256", "sha512")));
        assert!(!is_chain_id(""));
    }

    #[test]
    fn a_manifest_whose_chain_id_is_the_parent() {
        let mut store = Map::default();
        let ids = vec![diff_id(1), diff_id(2), diff_id(3)];
        let chain = chainid::chain_id(&ids).unwrap();
        let m = manifest(&mut store, "amd64", &ids);
        let s = subject(media::OCI_MANIFEST, m.clone(), &chain);
        let id = block_on(verify(&mut store, &s, &amd64())).unwrap();
        assert_eq!(id.chain_id, chain);
        assert_ne!(
            id.chain_id,
            diff_id(3),
            "three layers: not the last diff id"
        );
        assert_eq!(id.manifest_digest, m.0);
        assert_eq!(id.target_digest, m.0);
        assert_eq!(id.layers, 3);
        assert_eq!(id.platform, "linux/amd64");
        assert_eq!(store.reads, 2, "manifest and config, nothing else");
    }

    #[test]
    fn an_index_picks_the_wanted_platform_first() {
        let mut store = Map::default();
        let arm = manifest(&mut store, "arm64", &[diff_id(7)]);
        let amd = manifest(&mut store, "amd64", &[diff_id(8), diff_id(9)]);
        let i = index(&mut store, &[("arm64", arm), ("amd64", amd.clone())]);
        let chain = chainid::chain_id(&[diff_id(8), diff_id(9)]).unwrap();
        let s = subject(media::OCI_INDEX, i.clone(), &chain);
        let id = block_on(verify(&mut store, &s, &amd64())).unwrap();
        assert_eq!(id.manifest_digest, amd.0);
        assert_eq!(id.target_digest, i.0);
        assert_eq!(store.reads, 3, "index, amd64 manifest, its config");
    }

    #[test]
    fn an_index_falls_back_to_another_present_platform() {
        // Created with --platform linux/arm64 on amd64: the parent is arm64's chain ID.
        let mut store = Map::default();
        let arm = manifest(&mut store, "arm64", &[diff_id(7)]);
        let amd = manifest(&mut store, "amd64", &[diff_id(8)]);
        let i = index(&mut store, &[("amd64", amd), ("arm64", arm.clone())]);
        let s = subject(media::OCI_INDEX, i, &diff_id(7));
        let id = block_on(verify(&mut store, &s, &amd64())).unwrap();
        assert_eq!(id.manifest_digest, arm.0);
        assert_eq!(
            id.platform, "linux/arm64/v8",
            "normalised as containerd does"
        );
    }

    #[test]
    fn absent_other_platforms_are_skipped() {
        let mut store = Map::default();
        let arm = manifest(&mut store, "arm64", &[diff_id(7)]);
        let amd = manifest(&mut store, "amd64", &[diff_id(8)]);
        store.blobs.remove(&arm.0);
        let i = index(&mut store, &[("arm64", arm), ("amd64", amd.clone())]);
        let s = subject(media::OCI_INDEX, i, &diff_id(8));
        let id = block_on(verify(&mut store, &s, &amd64())).unwrap();
        assert_eq!(id.manifest_digest, amd.0);
    }

    #[test]
    fn a_parent_that_no_manifest_gives_is_a_mismatch() {
        let mut store = Map::default();
        let amd = manifest(&mut store, "amd64", &[diff_id(1), diff_id(2)]);
        let s = subject(media::OCI_MANIFEST, amd.clone(), &diff_id(2));
        let e = block_on(verify(&mut store, &s, &amd64())).unwrap_err();
        let IdentifyError::Mismatch {
            parent, computed, ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(parent, &diff_id(2));
        assert_eq!(
            computed[0].chain_id,
            chainid::chain_id(&[diff_id(1), diff_id(2)]).unwrap()
        );
        assert_eq!(computed[0].manifest_digest, amd.0);
        assert!(!e.is_fallback());
    }

    #[test]
    fn a_tampered_config_is_invalid() {
        let mut store = Map::default();
        let m = manifest(&mut store, "amd64", &[diff_id(1)]);
        // Replace the config's bytes under its digest: the digest check must catch it.
        let manifest: serde_json::Value = serde_json::from_slice(&store.blobs[&m.0]).unwrap();
        let cd = manifest["config"]["digest"].as_str().unwrap().to_string();
        store
            .blobs
            .insert(cd.clone(), config("amd64", &[diff_id(9)]));
        let s = subject(media::OCI_MANIFEST, m, &diff_id(9));
        let e = block_on(verify(&mut store, &s, &amd64())).unwrap_err();
        match &e {
            IdentifyError::Invalid {
                document, problems, ..
            } => {
                assert_eq!(document, &format!("config {cd}"));
                assert!(
                    problems.iter().any(|p| p.contains("digest")),
                    "{problems:?}"
                );
            }
            _ => panic!("{e:?}"),
        }
    }

    #[test]
    fn an_invalid_manifest_is_invalid() {
        let mut store = Map::default();
        let bad = store.put(br#"{"schemaVersion": 2, "layers": []}"#.to_vec());
        let s = subject(media::OCI_MANIFEST, bad, &diff_id(1));
        let e = block_on(verify(&mut store, &s, &amd64())).unwrap_err();
        assert_eq!(e.kind(), "invalid", "{e}");
        assert!(e.to_string().contains("manifest sha256:"), "{e}");
    }

    #[test]
    fn a_config_with_other_layer_count_is_invalid() {
        let mut store = Map::default();
        let (cd, cn) = store.put(config("amd64", &[diff_id(1), diff_id(2)]));
        let m = store.put(
            serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
                "config": {"mediaType": media::OCI_CONFIG, "digest": cd, "size": cn},
                "layers": [{"mediaType": media::OCI_LAYER_TAR, "digest": diff_id(1), "size": 1}],
            }))
            .unwrap(),
        );
        let s = subject(media::OCI_MANIFEST, m, &diff_id(1));
        let e = block_on(verify(&mut store, &s, &amd64())).unwrap_err();
        assert!(e.to_string().contains("rootfs.diff_ids"), "{e}");
    }

    #[test]
    fn missing_content_falls_back() {
        let mut store = Map::default();
        let m = manifest(&mut store, "amd64", &[diff_id(1)]);
        store.blobs.remove(&m.0);
        let s = subject(media::OCI_MANIFEST, m, &diff_id(1));
        let e = block_on(verify(&mut store, &s, &amd64())).unwrap_err();
        assert!(e.is_fallback(), "{e}");
        assert!(e.to_string().contains("not found"), "{e}");
    }

    #[test]
    fn parents_that_are_no_chain_id_fall_back_without_reading() {
        let mut store = Map::default();
        let m = manifest(&mut store, "amd64", &[diff_id(1)]);
        for parent in ["", "base-snapshot", &format!("{}-1000-1000", diff_id(1))] {
            let s = subject(media::OCI_MANIFEST, m.clone(), parent);
            let e = block_on(verify(&mut store, &s, &amd64())).unwrap_err();
            assert!(e.is_fallback(), "{parent}: {e}");
        }
        assert_eq!(store.reads, 0);
    }

    #[test]
    fn odd_targets_are_invalid() {
        let mut store = Map::default();
        let blob = store.put(b"{}".to_vec());
        let s = subject(media::OCI_CONFIG, blob.clone(), &diff_id(1));
        let e = block_on(verify(&mut store, &s, &amd64())).unwrap_err();
        assert_eq!(e.kind(), "invalid", "{e}");
        let s = subject(media::OCI_MANIFEST, (blob.0.clone(), -1), &diff_id(1));
        let e = block_on(verify(&mut store, &s, &amd64())).unwrap_err();
        assert_eq!(e.kind(), "invalid", "{e}");
        let s = subject(
            media::OCI_MANIFEST,
            (blob.0, (MAX_JSON_BYTES + 1) as i64),
            &diff_id(1),
        );
        let e = block_on(verify(&mut store, &s, &amd64())).unwrap_err();
        assert!(e.to_string().contains("more than"), "{e}");
    }
}
