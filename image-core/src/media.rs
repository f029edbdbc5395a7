//! Media types: the OCI and Docker schema 2 names image-core knows, the RFC 6838 grammar every
//! media type must follow, and the kinds of layer.
//!
//! oci-spec's [`oci_spec::image::MediaType`] names the OCI types; the Docker ones are constants
//! here because oci-spec maps them to `MediaType::Other`.

use crate::validate::walker::quote_short;

/// `application/vnd.oci.image.manifest.v1+json`
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// `application/vnd.oci.image.index.v1+json`
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// `application/vnd.oci.image.config.v1+json`
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// `application/vnd.oci.layout.header.v1+json`
pub const OCI_LAYOUT_HEADER: &str = "application/vnd.oci.layout.header.v1+json";
/// `application/vnd.oci.descriptor.v1+json`
pub const OCI_DESCRIPTOR: &str = "application/vnd.oci.descriptor.v1+json";
/// `application/vnd.oci.empty.v1+json`: the empty descriptor of v1.1 artifacts.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The digest of the empty JSON object `{}`, the only content of [`OCI_EMPTY`].
pub const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
/// The size of `{}`.
pub const EMPTY_SIZE: u64 = 2;

/// `application/vnd.oci.image.layer.v1.tar`
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// `application/vnd.oci.image.layer.v1.tar+gzip`
pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// `application/vnd.oci.image.layer.v1.tar+zstd`
pub const OCI_LAYER_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// `application/vnd.oci.image.layer.nondistributable.v1.tar` (deprecated in v1.1)
pub const OCI_LAYER_ND_TAR: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
/// `application/vnd.oci.image.layer.nondistributable.v1.tar+gzip` (deprecated in v1.1)
pub const OCI_LAYER_ND_TAR_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
/// `application/vnd.oci.image.layer.nondistributable.v1.tar+zstd` (deprecated in v1.1)
pub const OCI_LAYER_ND_TAR_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

/// `application/vnd.docker.distribution.manifest.v2+json`
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// `application/vnd.docker.distribution.manifest.list.v2+json`
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// `application/vnd.docker.container.image.v1+json`
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// `application/vnd.docker.image.rootfs.diff.tar.gzip`
pub const DOCKER_LAYER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// `application/vnd.docker.image.rootfs.diff.tar` (uncompressed; seen in the wild)
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// `application/vnd.docker.image.rootfs.foreign.diff.tar.gzip`: a layer fetched from `urls`.
pub const DOCKER_LAYER_FOREIGN_TAR_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// What image-core knows about a layer media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LayerType {
    pub compression: Compression,
    /// Non-distributable (OCI) or foreign (Docker): the blob may live at one of the
    /// descriptor's `urls` rather than in the registry.
    pub non_distributable: bool,
    /// A Docker schema 2 type rather than an OCI one.
    pub docker: bool,
}

/// The layer type a media type names, `None` when it is not a known layer type.
pub fn layer_type(media_type: &str) -> Option<LayerType> {
    let (compression, non_distributable, docker) = match media_type {
        OCI_LAYER_TAR => (Compression::None, false, false),
        OCI_LAYER_TAR_GZIP => (Compression::Gzip, false, false),
        OCI_LAYER_TAR_ZSTD => (Compression::Zstd, false, false),
        OCI_LAYER_ND_TAR => (Compression::None, true, false),
        OCI_LAYER_ND_TAR_GZIP => (Compression::Gzip, true, false),
        OCI_LAYER_ND_TAR_ZSTD => (Compression::Zstd, true, false),
        DOCKER_LAYER_TAR => (Compression::None, false, true),
        DOCKER_LAYER_TAR_GZIP => (Compression::Gzip, false, true),
        DOCKER_LAYER_FOREIGN_TAR_GZIP => (Compression::Gzip, true, true),
        _ => return None,
    };
    Some(LayerType {
        compression,
        non_distributable,
        docker,
    })
}

/// True for the manifest media types (OCI image manifest, Docker schema 2 manifest).
pub fn is_manifest(media_type: &str) -> bool {
    matches!(media_type, OCI_MANIFEST | DOCKER_MANIFEST)
}

/// True for the index media types (OCI image index, Docker manifest list).
pub fn is_index(media_type: &str) -> bool {
    matches!(media_type, OCI_INDEX | DOCKER_MANIFEST_LIST)
}

/// True for the image config media types (OCI, Docker).
pub fn is_config(media_type: &str) -> bool {
    matches!(media_type, OCI_CONFIG | DOCKER_CONFIG)
}

/// True for Docker schema 2 media types.
pub fn is_docker(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.docker.")
}

/// The OCI media type equivalent to a Docker schema 2 one, or the media type itself.
pub fn docker_to_oci(media_type: &str) -> &str {
    match media_type {
        DOCKER_MANIFEST => OCI_MANIFEST,
        DOCKER_MANIFEST_LIST => OCI_INDEX,
        DOCKER_CONFIG => OCI_CONFIG,
        DOCKER_LAYER_TAR => OCI_LAYER_TAR,
        DOCKER_LAYER_TAR_GZIP => OCI_LAYER_TAR_GZIP,
        DOCKER_LAYER_FOREIGN_TAR_GZIP => OCI_LAYER_ND_TAR_GZIP,
        other => other,
    }
}

/// Checks the RFC 6838 section 4.2 grammar the image-spec schema enforces:
/// `type/subtype`, each 1 to 127 characters, starting with a letter or digit, followed by
/// letters, digits and `!#$&^_.+-`. Parameters (`; charset=…`) are not allowed.
///
/// Returns the reason when the media type is malformed.
pub fn check_media_type(media_type: &str) -> Result<(), String> {
    let Some((ty, sub)) = media_type.split_once('/') else {
        return Err(format!(
            "{} is not a media type: expected \"type/subtype\"",
            quote_short(media_type)
        ));
    };
    let q = || quote_short(media_type);
    check_name(ty).map_err(|why| format!("{} has an invalid type: {why}", q()))?;
    check_name(sub).map_err(|why| format!("{} has an invalid subtype: {why}", q()))?;
    Ok(())
}

fn check_name(name: &str) -> Result<(), &'static str> {
    let bytes = name.as_bytes();
    let Some(first) = bytes.first() else {
        return Err("it is empty");
    };
    if !first.is_ascii_alphanumeric() {
        return Err("it must start with a letter or digit");
    }
    if bytes.len() > 127 {
        return Err("it is longer than 127 characters");
    }
    let ok = bytes[1..]
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(b));
    if ok {
        Ok(())
    } else {
        Err("only letters, digits and !#$&^_.+- are allowed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        assert!(check_media_type(OCI_MANIFEST).is_ok());
        assert!(check_media_type("a/b").is_ok());
        assert!(check_media_type("application").is_err());
        assert!(check_media_type(".foo/bar").is_err());
        assert!(check_media_type("foo/.bar").is_err());
        assert!(check_media_type("foo/").is_err());
        assert!(check_media_type("foo/bar/baz").is_err());
        assert!(check_media_type("text/plain; charset=utf-8").is_err());
        let max = "a".repeat(127);
        assert!(check_media_type(&format!("{max}/{max}")).is_ok());
        assert!(check_media_type(&format!("{max}a/b")).is_err());
    }

    #[test]
    fn layers() {
        assert_eq!(
            layer_type(DOCKER_LAYER_FOREIGN_TAR_GZIP),
            Some(LayerType {
                compression: Compression::Gzip,
                non_distributable: true,
                docker: true
            })
        );
        assert_eq!(
            layer_type(OCI_LAYER_TAR_ZSTD).map(|l| l.compression),
            Some(Compression::Zstd)
        );
        assert_eq!(layer_type(OCI_CONFIG), None);
        assert_eq!(docker_to_oci(DOCKER_MANIFEST_LIST), OCI_INDEX);
        assert_eq!(docker_to_oci("text/plain"), "text/plain");
    }
}
