//! Builds OCI image layouts (a directory) and OCI archives (a tar of that directory) from
//! directories, one per layer, for tests and demos.
//!
//! Layers are `tar+gzip` of each directory: entries sorted by name, depth first, with mode,
//! uid, gid, mtime (or a fixed mtime), symlinks, hard links (files sharing an inode within a
//! layer), device nodes and FIFOs as found. Whiteouts (`.wh.NAME`, `.wh..wh..opq`) are plain
//! files to the builder: put them in a layer directory and they are packed as they are.
//! Extended attributes (file capabilities) are not packed.
//!
//! The archive's `index.json` names the image twice: `org.opencontainers.image.ref.name` (the
//! tag) and `io.containerd.image.name` (the full name), so `ctr images import FILE.tar` names
//! it without `--base-name`.

use crate::chainid;
use crate::platform::Platform;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_TYPE_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";
/// The PATH put in an image's env when the spec gives none (what Docker uses).
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The runtime part of an image config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfigSpec {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `KEY=VALUE`; a default `PATH` is added when none is given.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

/// Builds one single-platform image from layer directories.
#[derive(Debug, Clone)]
pub struct ImageBuilder {
    name: String,
    layers: Vec<PathBuf>,
    config: ImageConfigSpec,
    platform: Platform,
    mtime: Option<u64>,
}

/// What was built: enough to find the image again in containerd or a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// The full name, with a tag: `local/busybox:latest`.
    pub name: String,
    pub manifest_digest: String,
    pub config_digest: String,
    pub layer_digests: Vec<String>,
    pub diff_ids: Vec<String>,
    pub chain_ids: Vec<String>,
}

/// Why an image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{what} {path}: {source}")]
    Io {
        what: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("image name {name:?} is not usable: {reason}")]
    Name { name: String, reason: String },
    #[error("output {path} already exists and is not empty: remove it or choose another path")]
    OutputExists { path: PathBuf },
    #[error("busybox rootfs: {0}")]
    Busybox(String),
}

fn io_err(what: impl Into<String>, path: &Path) -> impl FnOnce(io::Error) -> BuildError {
    let what = what.into();
    let path = path.to_path_buf();
    move |source| BuildError::Io { what, path, source }
}

/// Splits `repo[:tag]` into the name with a tag and the tag (`latest` when missing).
pub fn split_name(name: &str) -> Result<(String, String), BuildError> {
    let bad = |reason: &str| BuildError::Name {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(bad("it is empty; give one such as local/busybox:latest"));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it contains blanks or control characters"));
    }
    if name.contains('@') {
        return Err(bad(
            "a digest reference cannot be built; give repo:tag such as local/busybox:latest",
        ));
    }
    let last_slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
    match name[last_slash..].rfind(':') {
        Some(i) => {
            let tag = &name[last_slash + i + 1..];
            if tag.is_empty() || name[..last_slash + i].is_empty() {
                return Err(bad("expected repo:tag such as local/busybox:latest"));
            }
            Ok((name.to_string(), tag.to_string()))
        }
        None => Ok((format!("{name}:latest"), "latest".to_string())),
    }
}

impl ImageBuilder {
    /// A builder for the image `name` (`local/busybox:latest`; `:latest` when no tag is given).
    pub fn new(name: &str) -> Self {
        ImageBuilder {
            name: name.to_string(),
            layers: Vec::new(),
            config: ImageConfigSpec::default(),
            platform: Platform::new("linux", &Platform::host().architecture, None),
            mtime: None,
        }
    }

    /// Adds one layer made of the directory's contents; layers stack in call order.
    pub fn layer_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.layers.push(dir.into());
        self
    }

    pub fn config(mut self, spec: ImageConfigSpec) -> Self {
        self.config = spec;
        self
    }

    /// The image's platform (default: linux and the host's architecture).
    pub fn platform(mut self, os: &str, arch: &str) -> Self {
        self.platform = Platform::new(os, arch, None);
        self
    }

    /// Like [`platform`](Self::platform) with a variant (`arm`, `v6`).
    pub fn platform_variant(mut self, os: &str, arch: &str, variant: &str) -> Self {
        self.platform = Platform::new(os, arch, Some(variant));
        self
    }

    /// Every entry's mtime is `secs` instead of the file's own (reproducible layers).
    pub fn fixed_mtime(mut self, secs: u64) -> Self {
        self.mtime = Some(secs);
        self
    }

    /// Writes an OCI image layout into `dir` (created; must not exist or be empty).
    ///
    /// On error nothing it wrote is left behind.
    pub fn write_layout(&self, dir: &Path) -> Result<BuiltImage, BuildError> {
        let (full_name, tag) = split_name(&self.name)?;
        for (i, layer) in self.layers.iter().enumerate() {
            let meta =
                fs::metadata(layer).map_err(io_err(format!("layer {i}: cannot read"), layer))?;
            if !meta.is_dir() {
                return Err(BuildError::Io {
                    what: format!("layer {i}: not a directory (give one directory per layer):"),
                    path: layer.clone(),
                    source: io::Error::from(io::ErrorKind::InvalidInput),
                });
            }
        }
        // Never write into (or clean up) a directory that holds anything already.
        if dir.exists() {
            let mut entries = fs::read_dir(dir).map_err(io_err("cannot read output dir", dir))?;
            if entries.next().is_some() {
                return Err(BuildError::OutputExists {
                    path: dir.to_path_buf(),
                });
            }
        }
        let existed = dir.exists();
        let result = self.write_layout_inner(dir, full_name, tag);
        if result.is_err() {
            if existed {
                let _ = fs::remove_dir_all(dir.join("blobs"));
                let _ = fs::remove_file(dir.join("index.json"));
                let _ = fs::remove_file(dir.join("oci-layout"));
            } else {
                let _ = fs::remove_dir_all(dir);
            }
        }
        result
    }

    fn write_layout_inner(
        &self,
        dir: &Path,
        full_name: String,
        tag: String,
    ) -> Result<BuiltImage, BuildError> {
        let blobs = dir.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(io_err("cannot create", &blobs))?;

        let mut layer_descs = Vec::new();
        let mut layer_digests = Vec::new();
        let mut diff_ids = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            let (digest, size, diff_id) = write_layer(layer, &blobs, i, self.mtime)?;
            layer_descs.push(json!({
                "mediaType": MEDIA_TYPE_LAYER_GZIP,
                "digest": digest,
                "size": size,
            }));
            layer_digests.push(digest);
            diff_ids.push(diff_id);
        }

        let config = self.config_json(&diff_ids);
        let (config_digest, config_size) = write_json_blob(&blobs, &config)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_MANIFEST,
            "config": {
                "mediaType": MEDIA_TYPE_CONFIG,
                "digest": config_digest,
                "size": config_size,
            },
            "layers": layer_descs,
        });
        let (manifest_digest, manifest_size) = write_json_blob(&blobs, &manifest)?;

        let mut platform = Map::new();
        platform.insert(
            "architecture".into(),
            self.platform.architecture.clone().into(),
        );
        platform.insert("os".into(), self.platform.os.clone().into());
        if let Some(v) = &self.platform.variant {
            platform.insert("variant".into(), v.clone().into());
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_INDEX,
            "manifests": [{
                "mediaType": MEDIA_TYPE_MANIFEST,
                "digest": manifest_digest,
                "size": manifest_size,
                "platform": Value::Object(platform),
                "annotations": {
                    ANNOTATION_REF_NAME: tag,
                    ANNOTATION_CONTAINERD_NAME: full_name,
                },
            }],
        });
        write_file(&dir.join("index.json"), &to_json(&index))?;
        write_file(
            &dir.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;

        let chain_ids = chainid::chain_ids(&diff_ids);
        Ok(BuiltImage {
            name: full_name,
            manifest_digest,
            config_digest,
            layer_digests,
            diff_ids,
            chain_ids,
        })
    }

    /// Writes an OCI archive: a plain tar of the layout (`oci-layout`, `index.json`,
    /// `blobs/sha256/...`), what `ctr images import` reads. Replaces `tar` if it exists.
    pub fn write_archive(&self, tar: &Path) -> Result<BuiltImage, BuildError> {
        let parent = match tar.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let file_name = tar
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| BuildError::Io {
                what: "archive path has no file name".into(),
                path: tar.to_path_buf(),
                source: io::Error::from(io::ErrorKind::InvalidInput),
            })?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let work = TempDir(parent.join(format!(
            ".{file_name}.lxcri-build-{}-{stamp}",
            std::process::id()
        )));
        let built = self.write_layout(&work.0)?;
        let partial = parent.join(format!(".{file_name}.partial-{}", std::process::id()));
        let result = tar_layout(&work.0, &partial, self.mtime.unwrap_or(0));
        if let Err(e) = result {
            let _ = fs::remove_file(&partial);
            return Err(e);
        }
        fs::rename(&partial, tar).map_err(|e| {
            let _ = fs::remove_file(&partial);
            io_err("cannot move the archive into place at", tar)(e)
        })?;
        Ok(built)
    }

    fn config_json(&self, diff_ids: &[String]) -> Value {
        let spec = &self.config;
        let mut env = spec.env.clone();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, DEFAULT_PATH.to_string());
        }
        let mut cfg = Map::new();
        cfg.insert("Env".into(), json!(env));
        if !spec.entrypoint.is_empty() {
            cfg.insert("Entrypoint".into(), json!(spec.entrypoint));
        }
        if !spec.cmd.is_empty() {
            cfg.insert("Cmd".into(), json!(spec.cmd));
        }
        if let Some(w) = &spec.working_dir {
            cfg.insert("WorkingDir".into(), json!(w));
        }
        if let Some(u) = &spec.user {
            cfg.insert("User".into(), json!(u));
        }
        let mut top = Map::new();
        top.insert("architecture".into(), json!(self.platform.architecture));
        top.insert("os".into(), json!(self.platform.os));
        if let Some(v) = &self.platform.variant {
            top.insert("variant".into(), json!(v));
        }
        top.insert("config".into(), Value::Object(cfg));
        top.insert(
            "rootfs".into(),
            json!({"type": "layers", "diff_ids": diff_ids}),
        );
        let history: Vec<Value> = self
            .layers
            .iter()
            .map(|l| json!({"created_by": format!("lxcri image build --layer {}", l.display())}))
            .collect();
        top.insert("history".into(), Value::Array(history));
        Value::Object(top)
    }
}

/// Removes a directory tree when dropped (also on error paths).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn to_json(v: &Value) -> Vec<u8> {
    // Serialising a Value cannot fail (all keys are strings).
    serde_json::to_vec(v).unwrap_or_default()
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), BuildError> {
    fs::write(path, bytes).map_err(io_err("cannot write", path))
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn write_json_blob(blobs: &Path, v: &Value) -> Result<(String, u64), BuildError> {
    let bytes = to_json(v);
    let digest = sha256_digest(&bytes);
    let hex = &digest["sha256:".len()..];
    write_file(&blobs.join(hex), &bytes)?;
    Ok((digest, bytes.len() as u64))
}

/// A writer that hashes and counts what passes through it.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Packs `src` as a gzip tar into `blobs/<digest>`; returns (digest, size, diff_id).
fn write_layer(
    src: &Path,
    blobs: &Path,
    index: usize,
    mtime: Option<u64>,
) -> Result<(String, u64, String), BuildError> {
    let meta = fs::metadata(src).map_err(io_err(format!("layer {index}: cannot read"), src))?;
    if !meta.is_dir() {
        return Err(BuildError::Io {
            what: format!("layer {index}: not a directory (give one directory per layer):"),
            path: src.to_path_buf(),
            source: io::Error::from(io::ErrorKind::InvalidInput),
        });
    }
    let tmp = blobs.join(format!(".layer-{index}.partial"));
    let file = File::create(&tmp).map_err(io_err("cannot create", &tmp))?;
    let compressed = HashingWriter {
        inner: BufWriter::new(file),
        hasher: Sha256::new(),
        count: 0,
    };
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(compressed, flate2::Compression::default());
    let plain = HashingWriter {
        inner: gz,
        hasher: Sha256::new(),
        count: 0,
    };
    let mut tar = tar::Builder::new(plain);
    tar.follow_symlinks(false);
    let mut links = HashMap::new();
    append_tree(&mut tar, src, Path::new(""), mtime, &mut links)?;
    let err = io_err("cannot write layer", &tmp);
    let plain = tar
        .into_inner()
        .map_err(io_err("cannot write layer", &tmp))?;
    let diff_id = format!("sha256:{}", hex::encode(plain.hasher.finalize()));
    let mut compressed = plain.inner.finish().map_err(err)?;
    compressed
        .flush()
        .map_err(io_err("cannot write layer", &tmp))?;
    let digest = format!("sha256:{}", hex::encode(compressed.hasher.finalize()));
    let size = compressed.count;
    drop(compressed.inner);
    let dest = blobs.join(&digest["sha256:".len()..]);
    fs::rename(&tmp, &dest).map_err(io_err("cannot rename layer blob to", &dest))?;
    Ok((digest, size, diff_id))
}

/// Appends the children of `dir` (sorted by name), recursively; `rel` is their path in the tar.
fn append_tree<W: Write>(
    tar: &mut tar::Builder<W>,
    dir: &Path,
    rel: &Path,
    mtime: Option<u64>,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<(), BuildError> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .map_err(io_err("cannot list", dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(io_err("cannot list", dir))?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let rel_path = rel.join(&name);
        let meta = fs::symlink_metadata(&path).map_err(io_err("cannot stat", &path))?;
        let ft = meta.file_type();
        let mut h = tar::Header::new_gnu();
        h.set_mode(meta.permissions().mode() & 0o7777);
        h.set_uid(meta.uid() as u64);
        h.set_gid(meta.gid() as u64);
        h.set_mtime(mtime.unwrap_or(meta.mtime().max(0) as u64));
        h.set_size(0);
        let werr = io_err("cannot add to layer:", &path);
        if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            tar.append_data(&mut h, &rel_path, io::empty())
                .map_err(werr)?;
            append_tree(tar, &path, &rel_path, mtime, links)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&path).map_err(io_err("cannot read link", &path))?;
            h.set_entry_type(tar::EntryType::Symlink);
            tar.append_link(&mut h, &rel_path, &target).map_err(werr)?;
        } else if ft.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = links.get(&key) {
                    h.set_entry_type(tar::EntryType::Link);
                    tar.append_link(&mut h, &rel_path, first).map_err(werr)?;
                    continue;
                }
                links.insert(key, rel_path.clone());
            }
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(meta.len());
            let f = File::open(&path).map_err(io_err("cannot open", &path))?;
            // Exactly the size recorded in the header, even if the file changes meanwhile.
            let mut reader = f.take(meta.len());
            tar.append_data(&mut h, &rel_path, &mut reader)
                .map_err(werr)?;
        } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
            let kind = if ft.is_char_device() {
                tar::EntryType::Char
            } else if ft.is_block_device() {
                tar::EntryType::Block
            } else {
                tar::EntryType::Fifo
            };
            h.set_entry_type(kind);
            if kind != tar::EntryType::Fifo {
                let rdev = meta.rdev();
                let major = libc_major(rdev);
                let minor = libc_minor(rdev);
                h.set_device_major(major).map_err(io_err("device", &path))?;
                h.set_device_minor(minor).map_err(io_err("device", &path))?;
            }
            tar.append_data(&mut h, &rel_path, io::empty())
                .map_err(werr)?;
        }
        // Sockets cannot be stored in a tar: skipped.
    }
    Ok(())
}

fn libc_major(dev: u64) -> u32 {
    (((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff)) as u32
}

fn libc_minor(dev: u64) -> u32 {
    (((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff)) as u32
}

/// Tars a layout directory (`oci-layout`, `index.json`, `blobs/...`, sorted) into `out`.
fn tar_layout(layout: &Path, out: &Path, mtime: u64) -> Result<(), BuildError> {
    let file = File::create(out).map_err(io_err("cannot create archive", out))?;
    let mut tar = tar::Builder::new(BufWriter::new(file));
    let werr = || io_err("cannot write archive", out);
    let add_file = |tar: &mut tar::Builder<BufWriter<File>>, rel: &str| {
        let path = layout.join(rel);
        let f = File::open(&path).map_err(io_err("cannot open", &path))?;
        let len = f.metadata().map_err(io_err("cannot stat", &path))?.len();
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_mtime(mtime);
        h.set_size(len);
        tar.append_data(&mut h, rel, f.take(len)).map_err(werr())
    };
    add_file(&mut tar, "oci-layout")?;
    add_file(&mut tar, "index.json")?;
    for d in ["blobs/", "blobs/sha256/"] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_mtime(mtime);
        h.set_size(0);
        tar.append_data(&mut h, d, io::empty()).map_err(werr())?;
    }
    let blobs = layout.join("blobs").join("sha256");
    let mut names: Vec<String> = fs::read_dir(&blobs)
        .map_err(io_err("cannot list", &blobs))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in names {
        add_file(&mut tar, &format!("blobs/sha256/{n}"))?;
    }
    let mut w = tar.into_inner().map_err(werr())?;
    w.flush().map_err(werr())?;
    w.get_ref().sync_all().map_err(werr())?;
    Ok(())
}

/// Makes a minimal busybox root filesystem in `dir` (created if missing): `/bin/busybox` copied
/// from the host's `/bin/busybox` (package busybox-static), a `/bin/NAME -> busybox` symlink per
/// applet, `/etc/passwd` and `/etc/group` with root and nobody, and `/tmp` (1777), `/proc`,
/// `/sys`, `/dev`, `/root`.
pub fn busybox_rootfs(dir: &Path) -> Result<(), BuildError> {
    busybox_rootfs_from(Path::new("/bin/busybox"), dir)
}

/// [`busybox_rootfs`] with another busybox binary (it must be static to run in the image).
pub fn busybox_rootfs_from(busybox: &Path, dir: &Path) -> Result<(), BuildError> {
    if !busybox.is_file() {
        return Err(BuildError::Busybox(format!(
            "{} not found: install busybox-static (apt-get install busybox-static)",
            busybox.display()
        )));
    }
    let out = std::process::Command::new(busybox)
        .arg("--list")
        .output()
        .map_err(io_err("cannot run", busybox))?;
    if !out.status.success() {
        return Err(BuildError::Busybox(format!(
            "{} --list failed ({}): is it busybox?",
            busybox.display(),
            out.status
        )));
    }
    let applets = String::from_utf8_lossy(&out.stdout);
    for d in ["bin", "etc", "proc", "sys", "dev", "root", "tmp"] {
        let p = dir.join(d);
        fs::create_dir_all(&p).map_err(io_err("cannot create", &p))?;
    }
    let tmp = dir.join("tmp");
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777))
        .map_err(io_err("cannot chmod", &tmp))?;
    let target = dir.join("bin").join("busybox");
    fs::copy(busybox, &target).map_err(io_err("cannot copy busybox to", &target))?;
    fs::set_permissions(&target, fs::Permissions::from_mode(0o755))
        .map_err(io_err("cannot chmod", &target))?;
    for applet in applets.lines().map(str::trim) {
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        let link = dir.join("bin").join(applet);
        match fs::symlink_metadata(&link) {
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("cannot stat", &link)(e)),
        }
        std::os::unix::fs::symlink("busybox", &link).map_err(io_err("cannot symlink", &link))?;
    }
    write_file(
        &dir.join("etc").join("passwd"),
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    write_file(
        &dir.join("etc").join("group"),
        b"root:x:0:\nnobody:x:65534:\n",
    )?;
    Ok(())
}
