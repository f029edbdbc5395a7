//! The rules, one function per JSON object of the image-spec, each walking a
//! `serde_json::Value` and reporting every problem it finds.

use super::formats::{check_date_time, check_uri, decode_base64};
use super::walker::{quote_short, Walker};
use super::Kind;
use crate::digest::{self, DigestError};
use crate::media;
use serde_json::{Map, Value};

/// What a descriptor walk learnt, for the rules of the object around it.
#[derive(Default)]
pub(crate) struct DescriptorFacts<'v> {
    pub media_type: Option<&'v str>,
}

/// A media type string (RFC 6838 grammar).
fn media_type<'v>(w: &mut Walker, v: &'v Value) -> Option<&'v str> {
    let s = w.string(v)?;
    match media::check_media_type(s) {
        Ok(()) => Some(s),
        Err(why) => {
            w.report(why);
            None
        }
    }
}

/// A digest string (grammar; registered algorithms checked; unregistered accepted).
fn digest_string<'v>(w: &mut Walker, v: &'v Value) -> Option<&'v str> {
    let s = w.string(v)?;
    match digest::parse(s) {
        Ok(_) => Some(s),
        Err(e) => {
            w.report(e.to_string());
            None
        }
    }
}

/// A descriptor (descriptor.md): mediaType, digest, size, urls, annotations, data,
/// artifactType, and platform (allowed in every descriptor, used in index entries).
pub(crate) fn descriptor<'v>(w: &mut Walker, v: &'v Value) -> DescriptorFacts<'v> {
    let mut facts = DescriptorFacts::default();
    let Some(m) = w.object(v) else {
        return facts;
    };
    let mt = w.required(m, "mediaType", media_type);
    facts.media_type = mt;
    let dg = w.required(m, "digest", digest_string);
    let size = w.required(m, "size", |w, v| w.size(v));
    w.optional(m, "urls", |w, v| {
        if let Some(items) = w.array(v) {
            for (i, item) in items.iter().enumerate() {
                w.at_index(i, |w| {
                    if let Some(u) = w.string(item) {
                        if let Err(why) = check_uri(u) {
                            w.report(format!("{} {why}", quote_short(u)));
                        }
                    }
                });
            }
        }
    });
    w.optional(m, "annotations", |w, v| w.string_map(v));
    w.optional(m, "artifactType", |w, v| {
        media_type(w, v);
    });
    w.optional(m, "platform", platform);
    w.optional(m, "data", |w, v| {
        let Some(text) = w.string(v) else { return };
        let decoded = match decode_base64(text) {
            Ok(d) => d,
            Err(why) => {
                w.report(why);
                return;
            }
        };
        if let Some(size) = size {
            if decoded.len() as u64 != size {
                w.report(format!(
                    "decodes to {} bytes but size is {size}",
                    decoded.len()
                ));
                return;
            }
        }
        if let Some(dg) = dg {
            match digest::verify(dg, &decoded) {
                Ok(()) | Err(DigestError::Unregistered(_)) => {}
                Err(DigestError::Mismatch { actual, .. }) => w.report(format!(
                    "decodes to content with digest {actual:?}, not the descriptor's digest {dg:?}"
                )),
                Err(e) => w.report(e.to_string()),
            }
        }
    });
    // The empty descriptor (v1.1) describes exactly `{}`.
    if mt == Some(media::OCI_EMPTY) {
        if let Some(dg) = dg {
            if dg != media::EMPTY_DIGEST {
                w.at("digest", |w| {
                    w.report(format!(
                        "{dg:?} is not the digest of the empty JSON object {:?} required by \
                         media type {:?}",
                        media::EMPTY_DIGEST,
                        media::OCI_EMPTY
                    ))
                });
            }
        }
        if let Some(size) = size {
            if size != media::EMPTY_SIZE {
                w.at("size", |w| {
                    w.report(format!(
                        "{size} is not {} (the size of \"{{}}\") required by media type {:?}",
                        media::EMPTY_SIZE,
                        media::OCI_EMPTY
                    ))
                });
            }
        }
    }
    facts
}

/// A platform object (image-index.md): architecture and os required.
fn platform(w: &mut Walker, v: &Value) {
    let Some(m) = w.object(v) else { return };
    w.required(m, "architecture", |w, v| w.string(v));
    w.required(m, "os", |w, v| w.string(v));
    w.optional(m, "os.version", |w, v| {
        w.string(v);
    });
    w.optional(m, "os.features", |w, v| {
        w.string_array(v);
    });
    w.optional(m, "variant", |w, v| {
        w.string(v);
    });
    w.optional(m, "features", |w, v| {
        w.string_array(v);
    });
}

/// `schemaVersion`: required, exactly 2.
fn schema_version(w: &mut Walker, m: &Map<String, Value>) {
    w.required(m, "schemaVersion", |w, v| {
        if v.as_u64() != Some(2) {
            match v {
                Value::Number(n) => w.report(format!("{n} is not supported: must be 2")),
                other => w.report(format!(
                    "must be the number 2, found {}",
                    super::walker::describe(other)
                )),
            }
        }
        Some(())
    });
}

/// The document's own `mediaType` (optional in OCI documents): must be one of `allowed`, and
/// must agree with the descriptor that pointed at the document.
fn own_media_type(
    w: &mut Walker,
    m: &Map<String, Value>,
    kind: Kind,
    allowed: &[&str],
    expected: Option<&str>,
) {
    let Some(v) = m.get("mediaType") else { return };
    w.at("mediaType", |w| {
        let Some(mt) = w.string(v) else { return };
        if !allowed.contains(&mt) {
            w.report(format!(
                "{} is not a media type of {} {}: expected {}",
                quote_short(mt),
                if kind == Kind::Index { "an" } else { "a" },
                kind.name(),
                allowed
                    .iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ));
            return;
        }
        if let Some(e) = expected {
            if e != mt {
                w.report(format!(
                    "{mt:?} does not match the media type {e:?} of the descriptor that points \
                     at this document"
                ));
            }
        }
    });
}

/// `artifactType` of a manifest or index: a media type.
fn artifact_type<'v>(w: &mut Walker, m: &'v Map<String, Value>) -> Option<&'v str> {
    let v = m.get("artifactType")?;
    w.at("artifactType", |w| media_type(w, v))
}

/// An image manifest (manifest.md), OCI or Docker schema 2.
pub(crate) fn manifest(w: &mut Walker, v: &Value, expected: Option<&str>) {
    let Some(m) = w.object(v) else { return };
    schema_version(w, m);
    own_media_type(
        w,
        m,
        Kind::Manifest,
        &[media::OCI_MANIFEST, media::DOCKER_MANIFEST],
        expected,
    );
    let has_artifact_type = m.contains_key("artifactType");
    artifact_type(w, m);
    let config = w.required(m, "config", |w, v| Some(descriptor(w, v)));
    if let Some(DescriptorFacts {
        media_type: Some(media::OCI_EMPTY),
    }) = config
    {
        if !has_artifact_type {
            w.at("artifactType", |w| {
                w.report(format!(
                    "is required when config.mediaType is {:?} (an artifact manifest)",
                    media::OCI_EMPTY
                ))
            });
        }
    }
    w.required(m, "layers", |w, v| {
        let items = w.array(v)?;
        if items.is_empty() {
            w.report(
                "is empty: a manifest needs at least one layer (artifacts without content use \
                 the empty descriptor)",
            );
        }
        for (i, item) in items.iter().enumerate() {
            w.at_index(i, |w| descriptor(w, item));
        }
        Some(())
    });
    w.optional(m, "subject", |w, v| {
        descriptor(w, v);
    });
    w.optional(m, "annotations", |w, v| w.string_map(v));
}

/// An image index (image-index.md), OCI or Docker manifest list.
pub(crate) fn index(w: &mut Walker, v: &Value, expected: Option<&str>) {
    let Some(m) = w.object(v) else { return };
    schema_version(w, m);
    own_media_type(
        w,
        m,
        Kind::Index,
        &[media::OCI_INDEX, media::DOCKER_MANIFEST_LIST],
        expected,
    );
    artifact_type(w, m);
    // Docker's manifest list requires a platform in every entry (OCI makes it optional).
    let docker = m.get("mediaType").and_then(Value::as_str) == Some(media::DOCKER_MANIFEST_LIST);
    w.required(m, "manifests", |w, v| {
        let items = w.array(v)?;
        for (i, item) in items.iter().enumerate() {
            w.at_index(i, |w| {
                descriptor(w, item);
                if let (true, Some(entry)) = (docker, item.as_object()) {
                    if !entry.contains_key("platform") {
                        w.at("platform", |w| {
                            w.report(format!(
                                "is required in the entries of a Docker manifest list ({:?})",
                                media::DOCKER_MANIFEST_LIST
                            ))
                        });
                    }
                }
            });
        }
        Some(())
    });
    w.optional(m, "subject", |w, v| {
        descriptor(w, v);
    });
    w.optional(m, "annotations", |w, v| w.string_map(v));
}

/// An image config (config.md), OCI or Docker.
pub(crate) fn config(w: &mut Walker, v: &Value) {
    let Some(m) = w.object(v) else { return };
    w.optional(m, "created", date_time);
    w.optional(m, "author", |w, v| {
        w.string(v);
    });
    w.required(m, "architecture", |w, v| w.string(v));
    w.required(m, "os", |w, v| w.string(v));
    w.optional(m, "os.version", |w, v| {
        w.string(v);
    });
    w.optional(m, "os.features", |w, v| {
        w.string_array(v);
    });
    w.optional(m, "variant", |w, v| {
        w.string(v);
    });
    w.nullable(m, "config", exec_config);
    w.required(m, "rootfs", |w, v| {
        let m = w.object(v)?;
        w.required(m, "type", |w, v| {
            let t = w.string(v)?;
            if t != "layers" {
                w.report(format!(
                    "{} is not supported: must be \"layers\"",
                    quote_short(t)
                ));
            }
            Some(())
        });
        w.required(m, "diff_ids", |w, v| {
            for (i, item) in w.array(v)?.iter().enumerate() {
                w.at_index(i, |w| digest_string(w, item));
            }
            Some(())
        })
    });
    // The count of history entries against diff_ids is not checked here: the spec's own
    // example config has fewer (see `check_history`).
    w.optional(m, "history", |w, v| {
        if let Some(items) = w.array(v) {
            for (i, item) in items.iter().enumerate() {
                w.at_index(i, |w| history(w, item));
            }
        }
    });
}

fn date_time(w: &mut Walker, v: &Value) {
    if let Some(s) = w.string(v) {
        if let Err(why) = check_date_time(s) {
            w.report(format!("{} {why}", quote_short(s)));
        }
    }
}

/// A history entry.
fn history(w: &mut Walker, v: &Value) {
    let Some(m) = w.object(v) else { return };
    w.optional(m, "created", date_time);
    for key in ["author", "created_by", "comment"] {
        w.optional(m, key, |w, v| {
            w.string(v);
        });
    }
    w.optional(m, "empty_layer", |w, v| {
        w.boolean(v);
    });
}

/// The `config` object of an image config: how to run the image. Docker writes `null` for
/// unset arrays and maps, which the image-spec schema allows.
fn exec_config(w: &mut Walker, v: &Value) {
    let Some(m) = w.object(v) else { return };
    for key in ["User", "WorkingDir", "StopSignal"] {
        w.optional(m, key, |w, v| {
            w.string(v);
        });
    }
    w.nullable(m, "ExposedPorts", |w, v| w.string_set(v));
    w.nullable(m, "Volumes", |w, v| w.string_set(v));
    w.nullable(m, "Labels", |w, v| w.string_map(v));
    for key in ["Entrypoint", "Cmd"] {
        w.nullable(m, key, |w, v| {
            w.string_array(v);
        });
    }
    w.nullable(m, "Env", |w, v| {
        let Some(items) = w.array(v) else { return };
        for (i, item) in items.iter().enumerate() {
            w.at_index(i, |w| {
                let Some(e) = w.string(item) else { return };
                match e.split_once('=') {
                    Some((k, _)) if !k.is_empty() => {}
                    _ => w.report(format!("{} is not of the form KEY=value", quote_short(e))),
                }
            });
        }
    });
}

/// The `oci-layout` file (image-layout.md).
pub(crate) fn oci_layout(w: &mut Walker, v: &Value) {
    let Some(m) = w.object(v) else { return };
    w.required(m, "imageLayoutVersion", |w, v| {
        let s = w.string(v)?;
        if s != "1.0.0" {
            w.report(format!(
                "{} is not a supported image layout version: expected \"1.0.0\"",
                quote_short(s)
            ));
        }
        Some(())
    });
}
