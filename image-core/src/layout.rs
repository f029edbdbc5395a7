//! OCI image layouts, in a directory or in a tar archive (what `ctr images export` writes and
//! `ctr images import` reads).
//!
//! [`Layout::open`] reads `oci-layout` and `index.json`; for an archive it also streams every
//! entry once, hashing each blob through a fixed-size buffer (only small JSON-looking blobs are
//! kept in memory). [`Layout::verify`] walks everything `index.json` references (nested
//! indexes, manifests, configs, layers), checks that each blob is present with the digest and
//! size its descriptor gives, validates manifests, indexes and configs with the media type of
//! the descriptor that pointed at them, and returns every problem found. A layer is never read
//! whole into memory. [`Layout::images`] describes each image (per platform) for `inspect`.

use crate::chainid;
use crate::digest::{self, Algorithm};
use crate::platform::{descriptor_platform, Platform};
use crate::problem::{Problem, Problems};
use crate::validate::{self, Document, Kind};
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use serde::Serialize;
use sha2::{Digest as _, Sha256, Sha512};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The largest JSON document (index, manifest, config) read into memory.
pub const MAX_JSON_BYTES: u64 = 4 * 1024 * 1024;
/// Read buffer for streaming verification.
pub const BUFFER_BYTES: usize = 256 * 1024;
/// Deepest nesting of indexes followed.
const MAX_DEPTH: usize = 8;

/// A layout that cannot be opened at all (as opposed to problems in its content).
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{path}: {what}: {source}")]
    Io {
        path: PathBuf,
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {reason}")]
    NotALayout { path: PathBuf, reason: String },
}

/// The result of streaming one blob through a hasher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashedBlob {
    /// `algorithm:hex` of the content.
    pub digest: String,
    pub size: u64,
    /// The content, when it was small enough to keep (see [`hash_reader`]).
    pub bytes: Option<Vec<u8>>,
}

enum Hasher {
    Sha256(Box<Sha256>),
    Sha512(Box<Sha512>),
}

impl Hasher {
    fn new(alg: Algorithm) -> Self {
        match alg {
            Algorithm::Sha256 => Hasher::Sha256(Box::default()),
            Algorithm::Sha512 => Hasher::Sha512(Box::default()),
        }
    }
    fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(b),
            Hasher::Sha512(h) => h.update(b),
        }
    }
    fn finish(self, alg: Algorithm) -> String {
        let hex = match self {
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
        };
        format!("{}:{hex}", alg.name())
    }
}

/// Hashes everything `reader` yields through a fixed-size buffer. The content is kept when
/// `keep` says so for its first bytes and it stays within `keep_limit` bytes.
pub fn hash_reader(
    reader: &mut dyn Read,
    alg: Algorithm,
    keep_limit: u64,
    keep: &dyn Fn(&[u8]) -> bool,
) -> io::Result<HashedBlob> {
    let mut hasher = Hasher::new(alg);
    let mut buf = vec![0u8; BUFFER_BYTES];
    let mut size = 0u64;
    let mut kept: Option<Vec<u8>> = None;
    let mut first = true;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = &buf[..n];
        hasher.update(chunk);
        if first {
            first = false;
            if keep_limit > 0 && keep(chunk) {
                kept = Some(Vec::new());
            }
        }
        size += n as u64;
        if let Some(k) = kept.as_mut() {
            if size <= keep_limit {
                k.extend_from_slice(chunk);
            } else {
                kept = None;
            }
        }
    }
    if first && keep_limit > 0 {
        kept = Some(Vec::new());
    }
    Ok(HashedBlob {
        digest: hasher.finish(alg),
        size,
        bytes: kept,
    })
}

/// Streams a file through the hasher (nothing kept): its digest and size.
pub fn hash_file(path: &Path, alg: Algorithm) -> io::Result<HashedBlob> {
    let mut f = File::open(path)?;
    hash_reader(&mut f, alg, 0, &|_| false)
}

fn looks_like_json(b: &[u8]) -> bool {
    b.iter()
        .find(|c| !c.is_ascii_whitespace())
        .is_some_and(|c| *c == b'{')
}

/// A blob's name inside the layout: `blobs/sha256/<hex>`; `None` if the digest is unusable.
pub fn blob_path(digest: &str) -> Option<String> {
    let parsed = digest::parse(digest).ok()?;
    parsed.registered?;
    Some(format!("blobs/{}/{}", parsed.algorithm, parsed.encoded))
}

#[derive(Debug)]
enum Source {
    Dir(PathBuf),
    /// Blobs of an archive, hashed while it was read: by their `blobs/ALG/HEX` name.
    Tar {
        path: PathBuf,
        blobs: HashMap<String, HashedBlob>,
    },
}

/// An opened image layout.
#[derive(Debug)]
pub struct Layout {
    source: Source,
    oci_layout: Option<Vec<u8>>,
    index_json: Option<Vec<u8>>,
    /// Problems found while opening (unreadable or oversized files).
    open_problems: Problems,
}

/// Everything [`Layout::verify`] found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub problems: Problems,
    /// Blobs checked (each distinct blob counts once).
    pub blobs: usize,
    /// Bytes of blob content hashed.
    pub bytes: u64,
    /// Manifests found (through every index).
    pub manifests: usize,
    /// Indexes found, `index.json` included.
    pub indexes: usize,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The runtime settings of an image config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConfigSummary {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerInfo {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
}

/// One image (one platform) of a layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageInfo {
    pub manifest_digest: String,
    pub manifest_media_type: String,
    /// From the index descriptor, else from the config.
    pub platform: Option<String>,
    /// `org.opencontainers.image.ref.name` of the top-level descriptor.
    pub ref_name: Option<String>,
    /// `io.containerd.image.name` of the top-level descriptor.
    pub image_name: Option<String>,
    pub config_digest: String,
    pub config: ConfigSummary,
    pub layers: Vec<LayerInfo>,
    pub diff_ids: Vec<String>,
    pub chain_ids: Vec<String>,
}

/// A blob could not be read.
enum Fetch {
    Missing(String),
    Unusable(String),
}

impl Layout {
    /// Opens a layout directory or an OCI archive (a plain tar). An archive is read once here.
    pub fn open(path: &Path) -> Result<Layout, LayoutError> {
        let meta = std::fs::metadata(path).map_err(|source| LayoutError::Io {
            path: path.to_path_buf(),
            what: "cannot open image layout".into(),
            source,
        })?;
        if meta.is_dir() {
            Self::open_dir(path)
        } else {
            Self::open_tar(path)
        }
    }

    fn open_dir(dir: &Path) -> Result<Layout, LayoutError> {
        let mut problems = Problems::default();
        let mut read_small = |name: &str| -> Option<Vec<u8>> {
            let p = dir.join(name);
            match std::fs::metadata(&p) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => {
                    problems.push(Problem::new(name, "", format!("cannot read: {e}")));
                    None
                }
                Ok(m) if m.len() > MAX_JSON_BYTES => {
                    problems.push(Problem::new(
                        name,
                        "",
                        format!(
                            "is {} bytes, more than the {MAX_JSON_BYTES} lxcri reads",
                            m.len()
                        ),
                    ));
                    None
                }
                Ok(_) => match std::fs::read(&p) {
                    Ok(b) => Some(b),
                    Err(e) => {
                        problems.push(Problem::new(name, "", format!("cannot read: {e}")));
                        None
                    }
                },
            }
        };
        let oci_layout = read_small("oci-layout");
        let index_json = read_small("index.json");
        if oci_layout.is_none() && index_json.is_none() && !dir.join("blobs").is_dir() {
            return Err(LayoutError::NotALayout {
                path: dir.to_path_buf(),
                reason: "not an OCI image layout: no oci-layout, index.json or blobs/ in it".into(),
            });
        }
        Ok(Layout {
            source: Source::Dir(dir.to_path_buf()),
            oci_layout,
            index_json,
            open_problems: problems,
        })
    }

    fn open_tar(path: &Path) -> Result<Layout, LayoutError> {
        let io_err = |what: &str| {
            let what = what.to_string();
            let path = path.to_path_buf();
            move |source| LayoutError::Io { path, what, source }
        };
        let file = File::open(path).map_err(io_err("cannot open archive"))?;
        let mut archive = tar::Archive::new(io::BufReader::with_capacity(BUFFER_BYTES, file));
        let mut blobs = HashMap::new();
        let mut oci_layout = None;
        let mut index_json = None;
        let mut problems = Problems::default();
        let mut entries_seen = 0usize;
        let entries = archive
            .entries()
            .map_err(io_err("cannot read as a tar archive"))?;
        for entry in entries {
            let mut entry = entry.map_err(io_err(
                "cannot read as a tar archive (an OCI archive is a plain, uncompressed tar)",
            ))?;
            entries_seen += 1;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = match entry.path() {
                Ok(p) => p.to_string_lossy().into_owned(),
                Err(_) => continue,
            };
            let name = name.trim_start_matches("./").to_string();
            let read_err = io_err("cannot read archive entry");
            if name == "oci-layout" || name == "index.json" {
                let h = hash_reader(&mut entry, Algorithm::Sha256, MAX_JSON_BYTES, &|_| true)
                    .map_err(read_err)?;
                match h.bytes {
                    Some(b) if name == "oci-layout" => oci_layout = Some(b),
                    Some(b) => index_json = Some(b),
                    None => problems.push(Problem::new(
                        name.as_str(),
                        "",
                        format!(
                            "is {} bytes, more than the {MAX_JSON_BYTES} lxcri reads",
                            h.size
                        ),
                    )),
                }
                continue;
            }
            let mut parts = name.splitn(3, '/');
            let (Some("blobs"), Some(alg), Some(hex)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Some(alg) = Algorithm::from_name(alg) else {
                continue;
            };
            let h =
                hash_reader(&mut entry, alg, MAX_JSON_BYTES, &looks_like_json).map_err(read_err)?;
            blobs.insert(format!("blobs/{}/{hex}", alg.name()), h);
        }
        if entries_seen == 0 {
            return Err(LayoutError::NotALayout {
                path: path.to_path_buf(),
                reason: "empty tar archive, or not a tar archive".into(),
            });
        }
        if oci_layout.is_none() && index_json.is_none() && blobs.is_empty() {
            return Err(LayoutError::NotALayout {
                path: path.to_path_buf(),
                reason: "not an OCI archive: no oci-layout, index.json or blobs/ in the tar".into(),
            });
        }
        Ok(Layout {
            source: Source::Tar {
                path: path.to_path_buf(),
                blobs,
            },
            oci_layout,
            index_json,
            open_problems: problems,
        })
    }

    /// Where the layout was opened from.
    pub fn path(&self) -> &Path {
        match &self.source {
            Source::Dir(p) => p,
            Source::Tar { path, .. } => path,
        }
    }

    /// Is it an archive (tar) rather than a directory?
    pub fn is_archive(&self) -> bool {
        matches!(self.source, Source::Tar { .. })
    }

    /// Reads (directory) or looks up (archive) a blob, hashing it; keeps its content if `keep`.
    fn fetch(&self, digest: &str, keep: bool) -> Result<(String, HashedBlob), Fetch> {
        let Some(name) = blob_path(digest) else {
            return Err(Fetch::Unusable(format!(
                "digest {digest:?} cannot locate a blob (not a registered algorithm:hex digest)"
            )));
        };
        let alg = digest::require_registered(digest).map_err(|e| Fetch::Unusable(e.to_string()))?;
        match &self.source {
            Source::Tar { blobs, .. } => match blobs.get(&name) {
                Some(h) => Ok((name, h.clone())),
                None => Err(Fetch::Missing(name)),
            },
            Source::Dir(dir) => {
                let p = dir.join(&name);
                let mut f = match File::open(&p) {
                    Ok(f) => f,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        return Err(Fetch::Missing(name))
                    }
                    Err(e) => return Err(Fetch::Unusable(format!("cannot open {name}: {e}"))),
                };
                let limit = if keep { MAX_JSON_BYTES } else { 0 };
                let h = hash_reader(&mut f, alg, limit, &|_| true)
                    .map_err(|e| Fetch::Unusable(format!("cannot read {name}: {e}")))?;
                Ok((name, h))
            }
        }
    }

    /// Checks the whole layout; every problem found is in the report.
    pub fn verify(&self) -> Report {
        let mut w = Walker {
            layout: self,
            report: Report::default(),
            seen: HashSet::new(),
            images: None,
        };
        w.report
            .problems
            .0
            .extend(self.open_problems.iter().cloned());
        match &self.oci_layout {
            None => {
                if !self.open_problems.iter().any(|p| p.doc == "oci-layout") {
                    w.problem(
                        "oci-layout",
                        "",
                        "missing: an image layout has an oci-layout file containing \
                         {\"imageLayoutVersion\":\"1.0.0\"}",
                    );
                }
            }
            Some(b) => {
                if let Err(ps) = validate::validate(Kind::Layout, None, b) {
                    w.extend_renamed(ps, "oci-layout");
                }
            }
        }
        w.walk_top();
        w.report
    }

    /// Describes every image (manifest) the layout holds, through nested indexes. Blobs it
    /// reads are checked (digest, validity), layers are not read: call [`verify`](Self::verify)
    /// for that. Fails with the problems that stop it describing an image.
    pub fn images(&self) -> Result<Vec<ImageInfo>, Problems> {
        let mut w = Walker {
            layout: self,
            report: Report::default(),
            seen: HashSet::new(),
            images: Some(Vec::new()),
        };
        w.report
            .problems
            .0
            .extend(self.open_problems.iter().cloned());
        w.walk_top();
        let images = w.images.unwrap_or_default();
        if images.is_empty() && !w.report.problems.is_empty() {
            return Err(w.report.problems);
        }
        Ok(images)
    }
}

/// Annotations inherited from the top-level descriptor.
#[derive(Clone, Default)]
struct Names {
    ref_name: Option<String>,
    image_name: Option<String>,
}

struct Walker<'a> {
    layout: &'a Layout,
    report: Report,
    seen: HashSet<String>,
    /// `Some` when describing images (layers are then not hashed).
    images: Option<Vec<ImageInfo>>,
}

impl Walker<'_> {
    fn problem(&mut self, doc: &str, path: &str, reason: impl Into<String>) {
        self.report.problems.push(Problem::new(doc, path, reason));
    }

    fn extend_renamed(&mut self, ps: Problems, doc: &str) {
        for mut p in ps {
            p.doc = doc.to_string();
            self.report.problems.push(p);
        }
    }

    fn describing(&self) -> bool {
        self.images.is_some()
    }

    fn walk_top(&mut self) {
        let Some(bytes) = self.layout.index_json.clone() else {
            if !self
                .layout
                .open_problems
                .iter()
                .any(|p| p.doc == "index.json")
            {
                self.problem(
                    "index.json",
                    "",
                    "missing: an image layout has an index.json listing its manifests",
                );
            }
            return;
        };
        self.report.indexes += 1;
        match validate::validate_index(&bytes, None) {
            Err(ps) => self.extend_renamed(ps, "index.json"),
            Ok(index) => self.walk_index(&index, "index.json", None, 0),
        }
    }

    fn walk_index(&mut self, index: &ImageIndex, doc: &str, names: Option<&Names>, depth: usize) {
        for (i, d) in index.manifests().iter().enumerate() {
            let path = format!("manifests[{i}]");
            let names = names.cloned().unwrap_or_else(|| names_of(d));
            let mt = d.media_type().to_string();
            match Kind::from_media_type(&mt) {
                Some(Kind::Manifest) => self.walk_manifest(d, doc, &path, &names),
                Some(Kind::Index) => {
                    if depth >= MAX_DEPTH {
                        self.problem(
                            doc,
                            &path,
                            format!("indexes nested deeper than {MAX_DEPTH}; is there a cycle?"),
                        );
                        continue;
                    }
                    let Some((name, bytes)) = self.json_blob(d, doc, &path, "index") else {
                        continue;
                    };
                    self.report.indexes += 1;
                    match validate::validate_index(&bytes, Some(&mt)) {
                        Err(ps) => self.extend_renamed(ps, &format!("{name} (index)")),
                        Ok(child) => self.walk_index(
                            &child,
                            &format!("{name} (index)"),
                            Some(&names),
                            depth + 1,
                        ),
                    }
                }
                _ => {
                    // Something else (an artifact): present and intact is all we can check.
                    if !self.describing() {
                        self.check_blob(d, doc, &path, "blob");
                    }
                }
            }
        }
    }

    fn walk_manifest(&mut self, d: &Descriptor, doc: &str, path: &str, names: &Names) {
        let mt = d.media_type().to_string();
        let Some((name, bytes)) = self.json_blob(d, doc, path, "manifest") else {
            return;
        };
        self.report.manifests += 1;
        let mdoc = format!("{name} (manifest)");
        let manifest = match validate::validate_manifest(&bytes, Some(&mt)) {
            Ok(m) => m,
            Err(ps) => {
                self.extend_renamed(ps, &mdoc);
                return;
            }
        };
        let config_desc = manifest.config();
        let cmt = config_desc.media_type().to_string();
        let mut config: Option<ImageConfiguration> = None;
        let mut config_doc = String::new();
        if let Some((cname, cbytes)) = self.json_blob(config_desc, &mdoc, "config", "config") {
            config_doc = format!("{cname} (config)");
            if Kind::from_media_type(&cmt) == Some(Kind::Config) {
                match validate::validate(Kind::Config, Some(&cmt), &cbytes) {
                    Ok(Document::Config(c)) => config = Some(c),
                    Ok(_) => {}
                    Err(ps) => self.extend_renamed(ps, &config_doc),
                }
            }
        }
        if let Some(c) = &config {
            let ps = validate::check_config_matches_manifest(&manifest, c);
            self.extend_renamed(ps, &config_doc);
        }
        if !self.describing() {
            for (i, l) in manifest.layers().iter().enumerate() {
                self.check_blob(l, &mdoc, &format!("layers[{i}]"), "layer");
            }
        }
        if let Some(images) = self.images.as_mut() {
            if let Some(c) = config {
                images.push(image_info(d, &manifest, &c, names));
            }
        }
    }

    /// Fetches a JSON blob, checks its digest and size; its bytes when it could be read.
    fn json_blob(
        &mut self,
        d: &Descriptor,
        doc: &str,
        path: &str,
        what: &str,
    ) -> Option<(String, Vec<u8>)> {
        if d.size() > MAX_JSON_BYTES {
            self.problem(
                doc,
                &format!("{path}.size"),
                format!(
                    "the {what} is said to be {} bytes, more than the {MAX_JSON_BYTES} lxcri reads for a JSON document",
                    d.size()
                ),
            );
            return None;
        }
        let (name, h) = self.fetch_checked(d, doc, path, what, true)?;
        match h.bytes {
            Some(b) => Some((name, b)),
            None => {
                self.problem(
                    &format!("{name} ({what})"),
                    "",
                    format!(
                        "is {} bytes or does not start with '{{': not a JSON {what}",
                        h.size
                    ),
                );
                None
            }
        }
    }

    /// Checks a blob's presence, size and digest (streaming).
    fn check_blob(&mut self, d: &Descriptor, doc: &str, path: &str, what: &str) {
        let _ = self.fetch_checked(d, doc, path, what, false);
    }

    fn fetch_checked(
        &mut self,
        d: &Descriptor,
        doc: &str,
        path: &str,
        what: &str,
        keep: bool,
    ) -> Option<(String, HashedBlob)> {
        let digest = d.digest().to_string();
        let first_time = self.seen.insert(digest.clone());
        match self.layout.fetch(&digest, keep) {
            Err(Fetch::Missing(name)) => {
                let has_urls = d.urls().as_ref().is_some_and(|u| !u.is_empty());
                if what == "layer" && has_urls {
                    // A non-distributable layer: fetched from its URLs, not in the layout.
                    return None;
                }
                if first_time {
                    self.problem(
                        doc,
                        path,
                        format!("the {what} {digest} is missing: there is no {name} in the layout; re-export or rebuild the image"),
                    );
                }
                None
            }
            Err(Fetch::Unusable(reason)) => {
                if first_time {
                    self.problem(doc, &format!("{path}.digest"), reason);
                }
                None
            }
            Ok((name, h)) => {
                let bdoc = format!("{name} ({what})");
                let mut ok = true;
                if first_time {
                    self.report.blobs += 1;
                    self.report.bytes += h.size;
                    if h.digest != digest {
                        ok = false;
                        self.problem(
                            &bdoc,
                            "",
                            format!("content digest is {}, not {digest} as its name and the descriptor ({doc} {path}) say: the blob is corrupt; re-export or rebuild the image", h.digest),
                        );
                    }
                    if h.size != d.size() {
                        ok = false;
                        self.problem(
                            &bdoc,
                            "",
                            format!(
                                "is {} bytes, but the descriptor ({doc} {path}) says {}",
                                h.size,
                                d.size()
                            ),
                        );
                    }
                } else if h.digest != digest || h.size != d.size() {
                    ok = false;
                }
                if ok {
                    Some((name, h))
                } else {
                    None
                }
            }
        }
    }
}

fn names_of(d: &Descriptor) -> Names {
    let get = |k: &str| d.annotations().as_ref().and_then(|a| a.get(k).cloned());
    Names {
        ref_name: get("org.opencontainers.image.ref.name"),
        image_name: get("io.containerd.image.name"),
    }
}

fn image_info(
    d: &Descriptor,
    manifest: &ImageManifest,
    config: &ImageConfiguration,
    names: &Names,
) -> ImageInfo {
    let cfg = config.config().as_ref();
    let list = |v: Option<&Option<Vec<String>>>| v.and_then(|o| o.clone()).unwrap_or_default();
    let summary = ConfigSummary {
        os: config.os().to_string(),
        architecture: config.architecture().to_string(),
        variant: config.variant().clone(),
        entrypoint: list(cfg.map(|c| c.entrypoint())),
        cmd: list(cfg.map(|c| c.cmd())),
        env: list(cfg.map(|c| c.env())),
        working_dir: cfg.and_then(|c| c.working_dir().clone()),
        user: cfg.and_then(|c| c.user().clone()),
    };
    let platform = descriptor_platform(d).unwrap_or_else(|| {
        Platform::new(
            &summary.os,
            &summary.architecture,
            summary.variant.as_deref(),
        )
    });
    let diff_ids = config.rootfs().diff_ids().clone();
    ImageInfo {
        manifest_digest: d.digest().to_string(),
        manifest_media_type: d.media_type().to_string(),
        platform: Some(platform.to_string()),
        ref_name: names.ref_name.clone(),
        image_name: names.image_name.clone(),
        config_digest: manifest.config().digest().to_string(),
        config: summary,
        layers: manifest
            .layers()
            .iter()
            .map(|l| LayerInfo {
                digest: l.digest().to_string(),
                size: l.size(),
                media_type: l.media_type().to_string(),
            })
            .collect(),
        chain_ids: chainid::chain_ids(&diff_ids),
        diff_ids,
    }
}

/// Annotations of a descriptor as a sorted map (for display).
pub fn annotations(d: &Descriptor) -> BTreeMap<String, String> {
    d.annotations()
        .as_ref()
        .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}
