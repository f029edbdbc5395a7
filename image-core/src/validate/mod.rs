//! Validation of OCI image-spec documents (v1.1, v1.0.2) and Docker schema 2 documents.
//!
//! Validation walks the raw JSON (so every problem gets a JSON path, and all of them are
//! reported), then decodes into `oci-spec`'s types, which the rest of lxcri uses.

use crate::problem::Problems;
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, OciLayout};

/// The kinds of document image-core validates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Descriptor,
    Manifest,
    Index,
    Config,
    /// The `oci-layout` file of an image layout.
    Layout,
}

impl Kind {
    /// The kind a media type names (OCI or Docker), `None` for layers and unknown types.
    pub fn from_media_type(media_type: &str) -> Option<Kind> {
        match media_type {
            crate::media::OCI_MANIFEST | crate::media::DOCKER_MANIFEST => Some(Kind::Manifest),
            crate::media::OCI_INDEX | crate::media::DOCKER_MANIFEST_LIST => Some(Kind::Index),
            crate::media::OCI_CONFIG | crate::media::DOCKER_CONFIG => Some(Kind::Config),
            crate::media::OCI_LAYOUT_HEADER => Some(Kind::Layout),
            crate::media::OCI_DESCRIPTOR => Some(Kind::Descriptor),
            _ => None,
        }
    }

    /// The name used as `Problem::doc`: `descriptor`, `manifest`, `index`, `config`, `oci-layout`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Descriptor => "descriptor",
            Kind::Manifest => "manifest",
            Kind::Index => "index",
            Kind::Config => "config",
            Kind::Layout => "oci-layout",
        }
    }
}

/// A document that passed validation, decoded into oci-spec's type.
#[derive(Debug, Clone)]
pub enum Document {
    Descriptor(Descriptor),
    Manifest(ImageManifest),
    Index(ImageIndex),
    Config(ImageConfiguration),
    Layout(OciLayout),
}

/// Validates one document of a known kind.
///
/// `expected_media_type` is the media type of the descriptor that pointed at the document, when
/// there is one: the document's own `mediaType` must agree with it. Returns every problem found.
/// Never panics, whatever the bytes.
pub fn validate(
    kind: Kind,
    expected_media_type: Option<&str>,
    bytes: &[u8],
) -> Result<Document, Problems> {
    // First version: typed decoding only; the JSON walker comes next.
    let _ = expected_media_type;
    let doc = kind.name();
    let err =
        |e: serde_json::Error| Problems(vec![crate::problem::Problem::new(doc, "", e.to_string())]);
    Ok(match kind {
        Kind::Descriptor => Document::Descriptor(serde_json::from_slice(bytes).map_err(err)?),
        Kind::Manifest => Document::Manifest(serde_json::from_slice(bytes).map_err(err)?),
        Kind::Index => Document::Index(serde_json::from_slice(bytes).map_err(err)?),
        Kind::Config => Document::Config(serde_json::from_slice(bytes).map_err(err)?),
        Kind::Layout => Document::Layout(serde_json::from_slice(bytes).map_err(err)?),
    })
}

/// Validates a manifest (OCI or Docker schema 2).
pub fn validate_manifest(
    bytes: &[u8],
    expected_media_type: Option<&str>,
) -> Result<ImageManifest, Problems> {
    match validate(Kind::Manifest, expected_media_type, bytes)? {
        Document::Manifest(m) => Ok(m),
        _ => unreachable!("validate(Kind::Manifest) returns a manifest"),
    }
}

/// Validates an index (OCI image index or Docker manifest list).
pub fn validate_index(
    bytes: &[u8],
    expected_media_type: Option<&str>,
) -> Result<ImageIndex, Problems> {
    match validate(Kind::Index, expected_media_type, bytes)? {
        Document::Index(i) => Ok(i),
        _ => unreachable!("validate(Kind::Index) returns an index"),
    }
}

/// Validates an image config (OCI or Docker).
pub fn validate_config(bytes: &[u8]) -> Result<ImageConfiguration, Problems> {
    match validate(Kind::Config, None, bytes)? {
        Document::Config(c) => Ok(c),
        _ => unreachable!("validate(Kind::Config) returns a config"),
    }
}

/// Checks a config against the manifest that points at it: as many `rootfs.diff_ids` as the
/// manifest has layers. Problems name the config document.
pub fn check_config_matches_manifest(
    manifest: &ImageManifest,
    config: &ImageConfiguration,
) -> Problems {
    let mut problems = Problems::default();
    let layers = manifest.layers().len();
    let diff_ids = config.rootfs().diff_ids().len();
    if layers != diff_ids {
        problems.push(crate::problem::Problem::new(
            "config",
            "rootfs.diff_ids",
            format!("has {diff_ids} entries but the manifest has {layers} layers"),
        ));
    }
    problems
}
