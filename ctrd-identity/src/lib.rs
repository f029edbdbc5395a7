//! ctrd-identity: the identity of a container's image, asked of containerd and checked by
//! image-core.
//!
//! layerfs keys a per-image ZFS base dataset by the image's top chain ID. This crate finds that
//! chain ID for a container that containerd knows, through containerd's gRPC API (v1 services,
//! the same on containerd 1.6, 1.7 and 2.x):
//!
//! 1. `Containers.Get(id)` gives the image name, the snapshotter and the snapshot key;
//! 2. `Snapshots(snapshotter).Stat(key)` gives the snapshot's parent, which containerd names by the
//!    chain ID of the image's top layer when it unpacks an image;
//! 3. `Images.Get(image)` gives the image's target descriptor;
//! 4. `Content.Read` reads the index (if any; image-core's platform selection picks the manifest),
//!    the manifest and the config; image-core checks each blob against its descriptor (size and
//!    digest) and validates it, then recomputes the chain ID from the config's `rootfs.diff_ids`;
//! 5. the computed chain ID must equal the snapshot's parent.
//!
//! The outcome is an [`Identity`], or an [`IdentifyError`] that says whether the caller should
//! fall back to another key ([`IdentifyError::is_fallback`]: containerd cannot say, e.g. the
//! container or its image is gone) or stop ([`IdentifyError::Invalid`],
//! [`IdentifyError::Mismatch`]: the image is broken or is not what the snapshot was made from).
//!
//! The tonic/prost stack this needs is linked only into the `lxcri` command line tool
//! (`lxcri rootfs identify`), never into the static shim binary.

mod client;
mod verify;

pub use client::{identify, identify_blocking};

use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// How long one identification may take by default, all calls included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// What to identify: container `container_id` of `namespace`, asked of the containerd at `address`.
#[derive(Debug, Clone)]
pub struct Request {
    /// containerd's gRPC socket (`/run/containerd/containerd.sock`).
    pub address: PathBuf,
    /// The containerd namespace of the container (`default`, `k8s.io`, ...).
    pub namespace: String,
    /// The container's id.
    pub container_id: String,
    /// The platform to pick from an index first (default: this machine's).
    pub platform: image_core::platform::Platform,
    /// Limit for the whole identification; past it the result is [`IdentifyError::Unavailable`].
    pub timeout: Duration,
}

impl Request {
    /// A request with the host platform and [`DEFAULT_TIMEOUT`].
    pub fn new(
        address: impl Into<PathBuf>,
        namespace: impl Into<String>,
        container_id: impl Into<String>,
    ) -> Self {
        Request {
            address: address.into(),
            namespace: namespace.into(),
            container_id: container_id.into(),
            platform: image_core::platform::Platform::host(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// A container's image identity, verified: `chain_id` is both the container's snapshot parent and
/// the chain ID image-core computed from the image's config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// The image's top chain ID (`sha256:…`): the key of its base dataset.
    pub chain_id: String,
    /// The image name the container was created from (`docker.io/library/busybox:latest`).
    pub image_name: String,
    /// The digest of the image's target (an index or a manifest).
    pub target_digest: String,
    /// The digest of the manifest whose config gave `chain_id`.
    pub manifest_digest: String,
    /// The digest of that config.
    pub config_digest: String,
    /// The config's platform (`linux/amd64`).
    pub platform: String,
    /// The number of layers (`rootfs.diff_ids`).
    pub layers: usize,
    /// The container's snapshotter (`overlayfs`, `native`, `zfs`, ...).
    pub snapshotter: String,
    /// The container's snapshot key.
    pub snapshot_key: String,
}

/// What one manifest of the image gave, for [`IdentifyError::Mismatch`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Computed {
    pub manifest_digest: String,
    pub platform: String,
    pub chain_id: String,
}

/// Why no identity was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifyError {
    /// containerd cannot say: no address, containerd not answering or too slow, the container,
    /// its snapshot, its image or the image's content not found, a snapshot without a parent
    /// named by a chain ID. The caller falls back (layerfs: a hash of the ordered lower
    /// directories).
    #[error("containerd cannot identify the image of container {container:?}: {reason}")]
    Unavailable { container: String, reason: String },
    /// The image's index, manifest or config is invalid, or is not the blob its descriptor
    /// names. A real error: the image is broken in containerd's content store.
    #[error(
        "image {image:?} of container {container:?}: {document} is invalid: {}; remove the image \
         and pull or import it again",
        problems.join("; ")
    )]
    Invalid {
        container: String,
        image: String,
        /// `manifest sha256:…`, `config sha256:…`, `index sha256:…`.
        document: String,
        problems: Vec<String>,
    },
    /// The image is valid, but no manifest of it gives the chain ID of the container's snapshot
    /// parent: the snapshot was not unpacked from this image (the image name was re-tagged, or
    /// the snapshot store is corrupt). A real error.
    #[error(
        "container {container:?}: its snapshot's parent is {parent}, but image {image:?} gives \
         {}; the image name now points at another image than the container was created from \
         (re-create the container) or the snapshot store is damaged",
        computed_text(.computed)
    )]
    Mismatch {
        container: String,
        image: String,
        parent: String,
        computed: Vec<Computed>,
    },
}

fn computed_text(computed: &[Computed]) -> String {
    if computed.is_empty() {
        return "no chain ID (no manifest of it could be read)".to_string();
    }
    computed
        .iter()
        .map(|c| {
            format!(
                "{} (manifest {}, {})",
                c.chain_id, c.manifest_digest, c.platform
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl IdentifyError {
    /// True when the caller should fall back to another key; false for a real error.
    pub fn is_fallback(&self) -> bool {
        matches!(self, IdentifyError::Unavailable { .. })
    }

    /// `unavailable`, `invalid` or `mismatch` (the `result` of `lxcri rootfs identify`'s JSON).
    pub fn kind(&self) -> &'static str {
        match self {
            IdentifyError::Unavailable { .. } => "unavailable",
            IdentifyError::Invalid { .. } => "invalid",
            IdentifyError::Mismatch { .. } => "mismatch",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unavailable_falls_back() {
        let u = IdentifyError::Unavailable {
            container: "c".into(),
            reason: "no address".into(),
        };
        assert!(u.is_fallback());
        assert_eq!(u.kind(), "unavailable");
        let i = IdentifyError::Invalid {
            container: "c".into(),
            image: "i".into(),
            document: "config sha256:ab".into(),
            problems: vec!["a".into(), "b".into()],
        };
        assert!(!i.is_fallback());
        assert!(
            i.to_string().contains("config sha256:ab is invalid: a; b"),
            "{i}"
        );
        let m = IdentifyError::Mismatch {
            container: "c".into(),
            image: "i".into(),
            parent: "sha256:11".into(),
            computed: vec![Computed {
                manifest_digest: "sha256:22".into(),
                platform: "linux/amd64".into(),
                chain_id: "sha256:33".into(),
            }],
        };
        assert!(!m.is_fallback());
        let text = m.to_string();
        assert!(text.contains("parent is sha256:11"), "{text}");
        assert!(
            text.contains("sha256:33 (manifest sha256:22, linux/amd64)"),
            "{text}"
        );
    }
}
