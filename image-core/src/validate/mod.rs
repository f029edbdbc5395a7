//! Validation of OCI image-spec documents (v1.1, v1.0.2) and Docker schema 2 documents.
//!
//! Validation walks the raw JSON (so every problem gets a JSON path, and all of them are
//! reported), then decodes into `oci-spec`'s types, which the rest of lxcri uses. A JSON syntax
//! error is one problem with its line and column. Nothing panics, whatever the bytes.
//!
//! What [`validate`] checks, per kind:
//!
//! - every descriptor: `mediaType` (RFC 6838 `type/subtype`), `digest` (see [`crate::digest`]),
//!   `size` (a non-negative integer), `urls` (RFC 3986 URIs), `annotations` (non-empty keys,
//!   string values), `artifactType`, `platform` (`architecture` and `os` required), `data`
//!   (padded base64 whose decoded length is `size` and, for sha256/sha512, whose digest is
//!   `digest`); a descriptor of the empty type `application/vnd.oci.empty.v1+json` must have
//!   the digest and size of `{}`;
//! - manifests: `schemaVersion` 2, the document's `mediaType` (optional, as in v1.0) is a
//!   manifest type and agrees with `expected_media_type`, `config`, at least one layer,
//!   `subject`, and `artifactType` when the config is the empty descriptor;
//! - indexes: likewise, with `manifests`; Docker manifest lists need a platform per entry;
//! - configs: `architecture`, `os`, `rootfs.type == "layers"`, `rootfs.diff_ids` digests,
//!   `config.Env` entries `KEY=value`, the types of every known field (Docker's `null` for unset
//!   lists and maps is accepted, as the image-spec schema does), RFC 3339 `created` dates;
//! - `oci-layout`: `imageLayoutVersion` is `"1.0.0"`.
//!
//! Decisions, where the spec leaves room:
//!
//! - Unregistered digest algorithms that follow the grammar are **accepted** (the spec's own
//!   validator accepts `multihash+base58:…`); they cannot be verified, which [`check_blob`] and
//!   [`crate::digest::verify`] report as "unregistered digest algorithm".
//! - Layer media types are not restricted by [`validate`] (artifacts and attestations carry other
//!   content, and the spec's vectors accept it); [`check_layers_runnable`] checks that a manifest
//!   is an image lxcri can unpack.
//! - History entries against `diff_ids` are counted by [`check_history`], not by [`validate`]: the
//!   spec's own example config would fail that count.
//! - Unknown fields are ignored, as the spec requires.

mod formats;
mod rules;
pub(crate) mod walker;

use crate::media;
use crate::problem::{Problem, Problems};
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, OciLayout};
use serde_json::Value;
use walker::Walker;

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
            media::OCI_MANIFEST | media::DOCKER_MANIFEST => Some(Kind::Manifest),
            media::OCI_INDEX | media::DOCKER_MANIFEST_LIST => Some(Kind::Index),
            media::OCI_CONFIG | media::DOCKER_CONFIG => Some(Kind::Config),
            media::OCI_LAYOUT_HEADER => Some(Kind::Layout),
            media::OCI_DESCRIPTOR => Some(Kind::Descriptor),
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
#[allow(clippy::large_enum_variant)] // documents are short-lived; boxing would change the API
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
    validate_named(kind.name(), kind, expected_media_type, bytes)
}

/// Like [`validate`], with `doc` as the document name in problems (for example
/// `blobs/sha256/ab12…` when the caller knows where the document came from).
pub fn validate_named(
    doc: &str,
    kind: Kind,
    expected_media_type: Option<&str>,
    bytes: &[u8],
) -> Result<Document, Problems> {
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            return Err(Problems(vec![Problem::new(
                doc,
                "",
                format!("is not valid JSON: {e}"),
            )]))
        }
    };
    let mut w = Walker::new(doc);
    if let Some(e) = expected_media_type {
        if let Some(named) = Kind::from_media_type(e).filter(|k| *k != kind) {
            w.report(format!(
                "the descriptor that points at this document has media type {e:?}, which names \
                 {} {}, but it is read as {} {}",
                article(named),
                named.name(),
                article(kind),
                kind.name()
            ));
        }
    }
    match kind {
        Kind::Descriptor => {
            rules::descriptor(&mut w, &value);
        }
        Kind::Manifest => rules::manifest(&mut w, &value, expected_media_type),
        Kind::Index => rules::index(&mut w, &value, expected_media_type),
        Kind::Config => rules::config(&mut w, &value),
        Kind::Layout => rules::oci_layout(&mut w, &value),
    }
    if w.has_problems() {
        return Err(w.into_problems());
    }
    // The walk found nothing wrong: decode into oci-spec's types. Should oci-spec still refuse
    // something, its error becomes a problem.
    let decoded = match kind {
        Kind::Descriptor => serde_json::from_value(value).map(Document::Descriptor),
        Kind::Manifest => serde_json::from_value(value).map(Document::Manifest),
        Kind::Index => serde_json::from_value(value).map(Document::Index),
        Kind::Config => serde_json::from_value(value).map(Document::Config),
        Kind::Layout => serde_json::from_value(value).map(Document::Layout),
    };
    decoded.map_err(|e| {
        Problems(vec![Problem::new(
            doc,
            "",
            format!("cannot be decoded as an OCI {}: {e}", kind.name()),
        )])
    })
}

fn article(kind: Kind) -> &'static str {
    if kind == Kind::Index {
        "an"
    } else {
        "a"
    }
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
        problems.push(Problem::new(
            Kind::Config.name(),
            "rootfs.diff_ids",
            format!(
                "has {diff_ids} entries but the manifest has {layers} layers: the config must \
                 list one diff_id per layer (is this the config of another image?)"
            ),
        ));
    }
    problems
}

/// Checks a config's `history` against its `rootfs.diff_ids`: when there is history, one
/// entry without `empty_layer: true` per layer.
///
/// Not part of [`validate`]: the image-spec does not require it, and its own example config
/// (two diff_ids, one non-empty history entry) is valid in the spec's test vectors. Docker and
/// BuildKit images satisfy it, so lxcri can use it as a consistency check where it wants one.
pub fn check_history(doc: &str, config: &ImageConfiguration) -> Problems {
    let mut problems = Problems::default();
    let Some(history) = config.history() else {
        return problems;
    };
    if history.is_empty() {
        return problems;
    }
    let layers = history
        .iter()
        .filter(|h| h.empty_layer() != Some(true))
        .count();
    let diff_ids = config.rootfs().diff_ids().len();
    if layers != diff_ids {
        problems.push(Problem::new(
            doc,
            "history",
            format!(
                "has {layers} entries without \"empty_layer\": true, but rootfs.diff_ids has \
                 {diff_ids}: there must be one such entry per layer"
            ),
        ));
    }
    problems
}

/// Checks the size of a blob against its descriptor's `size`. `doc` and `path` name the
/// descriptor (`manifest`, `layers[2].size`).
pub fn check_size(doc: &str, path: &str, expected: u64, actual: u64) -> Result<(), Problem> {
    if expected == actual {
        Ok(())
    } else {
        Err(Problem::new(
            doc,
            path,
            format!(
                "is {expected} but the blob has {actual} bytes: the blob is truncated, \
                 corrupt or not the one the descriptor points at"
            ),
        ))
    }
}

/// Checks a blob at hand against its descriptor: size and digest. `path` names the descriptor
/// in `doc` (`layers[2]`). A digest with an unregistered algorithm cannot be verified and is a
/// problem here ("unregistered digest algorithm").
pub fn check_blob(doc: &str, path: &str, descriptor: &Descriptor, blob: &[u8]) -> Problems {
    let mut problems = Problems::default();
    let join = |field: &str| {
        if path.is_empty() {
            field.to_owned()
        } else {
            format!("{path}.{field}")
        }
    };
    if let Err(p) = check_size(doc, &join("size"), descriptor.size(), blob.len() as u64) {
        problems.push(p);
    }
    let expected = descriptor.digest().to_string();
    if let Err(e) = crate::digest::verify(&expected, blob) {
        problems.push(Problem::new(doc, join("digest"), e.to_string()));
    }
    problems
}

/// Checks that lxcri can unpack a manifest as a container image: its config is an image config
/// (OCI or Docker) and every layer has a layer media type image-core knows (tar, tar+gzip,
/// tar+zstd, their non-distributable forms, Docker's). [`validate`] does not require this,
/// since the spec lets manifests carry other content (artifacts, attestations).
pub fn check_layers_runnable(doc: &str, manifest: &ImageManifest) -> Problems {
    let mut problems = Problems::default();
    let config_type = manifest.config().media_type().to_string();
    if !media::is_config(&config_type) {
        problems.push(Problem::new(
            doc,
            "config.mediaType",
            format!(
                "{config_type:?} is not an image config media type ({:?} or {:?}): this \
                 manifest is an artifact, not a container image",
                media::OCI_CONFIG,
                media::DOCKER_CONFIG
            ),
        ));
    }
    for (i, layer) in manifest.layers().iter().enumerate() {
        let mt = layer.media_type().to_string();
        if media::layer_type(&mt).is_none() {
            problems.push(Problem::new(
                doc,
                format!("layers[{i}].mediaType"),
                format!(
                    "{mt:?} is not a layer media type lxcri can unpack (OCI tar, tar+gzip, \
                     tar+zstd, or Docker rootfs.diff.tar.gzip)"
                ),
            ));
        }
    }
    problems
}
