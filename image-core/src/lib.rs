//! image-core: what lxcri knows about OCI images.
//!
//! It validates image manifests, indexes, configs and descriptors (OCI image-spec v1.1, v1.0.2
//! and Docker schema 2), computes chain IDs, selects platforms, reads OCI image layouts and
//! caches parsed documents. It knows nothing of LXC, ZFS or containerd.
//!
//! | module | what |
//! | --- | --- |
//! | [`problem`] | `Problem` (document, JSON path, reason) and `Problems` |
//! | [`digest`] | the digest grammar: `algorithm:encoded`, registered sha256/sha512 |
//! | [`media`] | media types: OCI, Docker schema 2, layer kinds |
//! | [`validate`] | validation of manifests, indexes, configs, descriptors, `oci-layout` |
//! | [`chainid`] | chain IDs from diff IDs |
//! | [`platform`] | platform normalisation, matching, manifest selection from an index |
//! | [`layout`] | OCI image layouts in a directory or a tar archive, streaming blob verification |
//! | [`cache`] | an LRU cache of validated documents keyed by digest |
//! | [`builder`] | builds OCI layouts/archives from directories (one per layer) |
pub mod builder;
pub mod cache;
pub mod chainid;
pub mod digest;
pub mod layout;
pub mod media;
pub mod platform;
pub mod problem;
pub mod validate;

pub use problem::{Problem, Problems};
