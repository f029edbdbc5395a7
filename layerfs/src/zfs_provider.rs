//! Container root filesystems as ZFS clones of per-image base datasets.
//!
//! Layout under the configured parent dataset `P`:
//!
//! - `P/images/<chain-id-hex>`: one base per image, its `@base` snapshot, user properties
//!   `layerfs:state=ready`, `layerfs:last-used=<unix seconds>` and, when known,
//!   `layerfs:image=<image name>`; not mounted (`canmount=noauto`).
//! - `P/images/.build-<hex>-<random>`: a base being built; never used, removed by `gc`.
//! - `P/containers/<namespace>-<id>`: `zfs clone P/images/<hex>@base`, mounted at the rootfs,
//!   `canmount=noauto` (never mounted by `zfs mount -a` at boot), `layerfs:owner=<path>` (the
//!   container's LXC directory: `gc` destroys a clone whose owner is gone), `refquota` if any.
//!
//! The key of a base is the image's top chain ID when the caller knows it
//! ([`RootfsRequest::image_key`]), else a hash of the ordered lower directories of the overlay
//! containerd passes ([`fallback_chain_id`]). Whatever the container's own snapshot already holds
//! (a non-empty overlay upperdir) is applied to its clone, never to the base.
//!
//! A base is built under the temporary name, snapshotted, marked ready and only then renamed to its
//! final name: a build killed at any point leaves only `.build-*` datasets, which nothing trusts.
//! A flock on `<mount_root>/locks/<hex>.lock` makes concurrent Creates of a new image build it
//! once; the lock is held until the clone exists, so `gc` (which takes it too) never destroys a
//! base between the check and the clone.

use crate::tree::{apply_upper, copy_tree, is_empty_dir};
use crate::zfs::{Runner, ZfsError, ZfsErrorKind};
use crate::zfs_config::{parse_size, ConfigError, ZfsConfig};
use crate::{Error, MountError, MountSpec, PreparedRootfs, RootfsProvider, RootfsRequest};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

const STATE: &str = "layerfs:state";
const LAST_USED: &str = "layerfs:last-used";
const IMAGE: &str = "layerfs:image";
const OWNER: &str = "layerfs:owner";
const BUILD_PREFIX: &str = ".build-";

/// Errors of the ZFS provider.
#[derive(Debug, thiserror::Error)]
pub enum ZfsProviderError {
    #[error(transparent)]
    Zfs(#[from] ZfsError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("layerfs: mounting the image's layers read-only to build its base: {0}")]
    Mount(MountError),
    #[error("layerfs: {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("layerfs: copying image {src} into {dataset} failed: {stderr}; check free space in the pool (`zfs list`) and that zfs-fuse runs with --enable-xattr")]
    Copy {
        src: PathBuf,
        dataset: String,
        stderr: String,
    },
    #[error("layerfs: chain id {0:?} is not a sha256 digest (64 hex digits, optionally after \"sha256:\")")]
    BadChainId(String),
    #[error("layerfs: pool {pool:?} not found (zfs.dataset = {dataset:?}); create or import it (`zpool list`, `zpool import {pool}`)")]
    PoolMissing { pool: String, dataset: String },
    #[error("layerfs: pool {pool:?} is {health} (zfs.dataset = {dataset:?}): it cannot hold new bases or clones; see `zpool status {pool}`")]
    PoolUnhealthy {
        pool: String,
        health: String,
        dataset: String,
    },
    #[error("layerfs: {0}")]
    Conflict(String),
    #[error(
        "layerfs: applying the container's own snapshot {upper} onto its clone {dataset}: {why}"
    )]
    Upper {
        upper: PathBuf,
        dataset: String,
        why: String,
    },
}

impl From<ZfsProviderError> for Error {
    fn from(e: ZfsProviderError) -> Self {
        let path = match &e {
            ZfsProviderError::Io { path, .. } => path.clone(),
            _ => PathBuf::new(),
        };
        Error::Target {
            path,
            source: std::io::Error::other(e),
        }
    }
}

type Result<T, E = ZfsProviderError> = std::result::Result<T, E>;

/// The image a container's rootfs is cloned from.
#[derive(Debug, Clone)]
pub struct ImageSource {
    /// The image's top chain id, `sha256:<hex>` or `<hex>`.
    pub chain_id: String,
    /// The read-only merged view of the image's layers, copied into the base when it is built.
    pub source: PathBuf,
}

/// A base dataset, as `lxcri layers ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseInfo {
    pub dataset: String,
    /// Hex digits of the chain id.
    pub chain_id: String,
    /// `used` of the base, bytes.
    pub bytes: u64,
    /// Containers cloned from it (their clone datasets).
    pub clones: Vec<String>,
    /// Unix seconds of the last clone (or the build).
    pub last_used: u64,
    /// The image's name, when it was known at the build.
    pub image: Option<String>,
}

/// A container clone, as `gc` sees it when it asks whether the container still exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneInfo {
    pub dataset: String,
    /// The last component of the dataset: `<namespace>-<id>` (see
    /// [`ZfsProvider::container_leaf`]).
    pub leaf: String,
    /// The `layerfs:owner` recorded at the clone ([`RootfsRequest::owner`]).
    pub owner: Option<PathBuf>,
}

/// How many unused bases `gc` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepPolicy {
    pub count: usize,
    pub bytes: Option<u64>,
}

/// What `gc` destroyed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub bases: Vec<String>,
    pub builds: Vec<String>,
    pub containers: Vec<String>,
}

/// Makes container root filesystems as clones of per-image bases.
#[derive(Debug)]
pub struct ZfsProvider {
    cfg: ZfsConfig,
    zfs: Runner,
}

impl ZfsProvider {
    /// Checks the config and the pool, creates `<dataset>/images` and `<dataset>/containers` when
    /// missing.
    pub fn new(cfg: ZfsConfig) -> Result<ZfsProvider> {
        Self::with_runner(cfg, Runner::default())
    }

    /// As [`ZfsProvider::new`] with a given runner.
    pub fn with_runner(cfg: ZfsConfig, zfs: Runner) -> Result<ZfsProvider> {
        cfg.validate()?;
        let pool = cfg.pool().to_string();
        // `zpool list -H -o health POOL` (OpenZFS and zfs-fuse alike), or libzetta with the
        // `libzetta` feature: one command on the hot path.
        let health = match crate::pool::pool_health(&zfs, &pool) {
            Ok(h) => h,
            Err(e) if matches!(e.kind, ZfsErrorKind::PoolMissing | ZfsErrorKind::NotFound) => {
                return Err(ZfsProviderError::PoolMissing {
                    pool,
                    dataset: cfg.dataset.clone(),
                })
            }
            Err(e) => return Err(e.into()),
        };
        if !health.usable() {
            return Err(ZfsProviderError::PoolUnhealthy {
                pool,
                health: health.health,
                dataset: cfg.dataset.clone(),
            });
        }
        if health.health != "ONLINE" {
            log::warn!(
                "layerfs: pool {pool:?} is {} (see `zpool status {pool}`)",
                health.health
            );
        }
        let p = ZfsProvider { cfg, zfs };
        let (images, containers) = (p.images(), p.containers());
        // One command when everything is in place (every Create of a shim comes here).
        let ready = p
            .zfs
            .zfs(&["list", "-H", "-o", "name", &images, &containers], &images);
        if ready.is_ok() && p.cfg.mount_root.join("locks").is_dir() {
            return Ok(p);
        }
        for dir in ["locks", "images", "containers"] {
            let d = p.cfg.mount_root.join(dir);
            std::fs::create_dir_all(&d).map_err(|source| ZfsProviderError::Io {
                what: "creating",
                path: d,
                source,
            })?;
        }
        p.create_if_missing(&p.cfg.dataset, None)?;
        let images_mp = p.cfg.mount_root.join("images");
        let containers_mp = p.cfg.mount_root.join("containers");
        p.create_if_missing(&p.images(), Some(&images_mp))?;
        p.create_if_missing(&p.containers(), Some(&containers_mp))?;
        Ok(p)
    }

    fn create_if_missing(&self, ds: &str, mountpoint: Option<&Path>) -> Result<()> {
        if self.zfs.exists(ds)? {
            return Ok(());
        }
        let mut args = vec!["create".to_string(), "-p".to_string()];
        if let Some(mp) = mountpoint {
            args.push("-o".into());
            args.push(format!("mountpoint={}", mp.display()));
        }
        args.push(ds.to_string());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match self.zfs.zfs(&args, ds) {
            Ok(_) => Ok(()),
            Err(e) if e.kind == ZfsErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The config in use.
    pub fn config(&self) -> &ZfsConfig {
        &self.cfg
    }

    /// The runner (tests and admin commands).
    pub fn runner(&self) -> &Runner {
        &self.zfs
    }

    /// `<dataset>/images`.
    pub fn images(&self) -> String {
        format!("{}/images", self.cfg.dataset)
    }

    /// `<dataset>/containers`.
    pub fn containers(&self) -> String {
        format!("{}/containers", self.cfg.dataset)
    }

    /// The base dataset of a chain id.
    pub fn base_dataset(&self, chain_id: &str) -> Result<String> {
        Ok(format!("{}/{}", self.images(), chain_hex(chain_id)?))
    }

    /// The clone dataset of a container: `<dataset>/containers/<namespace>-<id>`, characters a
    /// dataset name cannot hold replaced by `_`.
    pub fn container_dataset(&self, namespace: &str, id: &str) -> String {
        format!(
            "{}/{}",
            self.containers(),
            Self::container_leaf(namespace, id)
        )
    }

    /// The last component of a container's clone dataset: `<namespace>-<id>`, characters a
    /// dataset name cannot hold replaced by `_`.
    pub fn container_leaf(namespace: &str, id: &str) -> String {
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "_-.:".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        format!("{}-{}", clean(namespace), clean(id))
    }

    /// Makes sure the base of `image` exists (building it if needed) and returns its dataset.
    pub fn ensure_base(&self, image: &ImageSource) -> Result<String> {
        let hex = chain_hex(&image.chain_id)?;
        let _lock = self.lock(&hex)?;
        self.ensure_base_locked(&hex, &|| Ok(SourceView::dir(&image.source)), None)
    }

    /// The base of `hex`, built from what `source` opens if it is not there (or not ready).
    /// `source` is only called for a build. The caller holds the lock of `hex`.
    fn ensure_base_locked(
        &self,
        hex: &str,
        source: &dyn Fn() -> Result<SourceView>,
        name: Option<&str>,
    ) -> Result<String> {
        let base = format!("{}/{hex}", self.images());
        // The hot path, one command: the snapshot inherits the base's state property.
        match self.zfs.get(&format!("{base}@base"), STATE) {
            Ok(Some(s)) if s == "ready" => return Ok(base),
            Ok(_) => {}
            Err(e) if e.kind == ZfsErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        if self.zfs.exists(&base)? {
            let ready = self.zfs.get(&base, STATE)?.as_deref() == Some("ready");
            if ready && self.zfs.exists(&format!("{base}@base"))? {
                return Ok(base);
            }
            // Only a ready base is ever renamed to its final name: this one was tampered with.
            if self.clones_of(&base)?.is_empty() {
                log::warn!("layerfs: base {base} is not ready: destroying it and building again");
                self.zfs.destroy(&base, true)?;
            } else {
                return Err(ZfsProviderError::Conflict(format!(
                    "base {base} is not marked {STATE}=ready but has clones; destroy its containers or set the property by hand"
                )));
            }
        }
        let view = source()?;
        self.build(hex, view.path(), &base, name)?;
        Ok(base)
    }

    fn build(&self, hex: &str, source: &Path, base: &str, name: Option<&str>) -> Result<()> {
        let build = format!("{}/{BUILD_PREFIX}{hex}-{}", self.images(), random_hex());
        log::info!("layerfs: building base {base} from {}", source.display());
        let r = self.build_steps(source, &build, base, name);
        if r.is_err() {
            if let Err(e) = self.zfs.destroy(&build, true) {
                log::warn!(
                    "layerfs: cannot remove failed build {build}: {e}; `lxcri layers gc` will"
                );
            }
        }
        r
    }

    fn build_steps(
        &self,
        source: &Path,
        build: &str,
        base: &str,
        name: Option<&str>,
    ) -> Result<()> {
        self.zfs.zfs(&["create", build], build)?;
        let mp = self
            .zfs
            .get(build, "mountpoint")?
            .map(PathBuf::from)
            .ok_or_else(|| ZfsProviderError::Conflict(format!("{build} has no mountpoint")))?;
        copy_tree(source, &mp).map_err(|stderr| ZfsProviderError::Copy {
            src: source.to_path_buf(),
            dataset: build.to_string(),
            stderr,
        })?;
        self.zfs
            .zfs(&["snapshot", &format!("{build}@base")], build)?;
        self.zfs.set(build, "canmount", "noauto")?;
        self.zfs.set(build, LAST_USED, &now().to_string())?;
        if let Some(name) = name {
            self.zfs.set(build, IMAGE, name)?;
        }
        self.zfs.set(build, STATE, "ready")?;
        // zfs-fuse cannot rename a mounted dataset ("dataset is busy").
        self.zfs.zfs_retry_busy(&["unmount", build], build)?;
        self.zfs.zfs_retry_busy(&["rename", build, base], build)?;
        Ok(())
    }

    /// Builds the base if needed, then clones it for the container at `req.target`, with
    /// `quota` (else `req.quota`, else the config's default; `none`: no quota) as `refquota`.
    pub fn prepare_image(
        &self,
        req: &RootfsRequest,
        image: &ImageSource,
        quota: Option<&str>,
    ) -> Result<PreparedRootfs> {
        let hex = chain_hex(&image.chain_id)?;
        self.clone_base(req, &hex, &|| Ok(SourceView::dir(&image.source)), quota)
    }

    /// The refquota of a new clone in bytes: `explicit`, else the request's, else the config's.
    fn quota_bytes(&self, explicit: Option<&str>, req: &RootfsRequest) -> Result<Option<u64>> {
        let (key, q) = match (explicit.or(req.quota.as_deref()), &self.cfg.quota) {
            (Some(q), _) => ("quota (per container)", q),
            (None, Some(q)) => ("quota", q.as_str()),
            (None, None) => return Ok(None),
        };
        if q.trim().eq_ignore_ascii_case("none") {
            return Ok(None);
        }
        parse_size(q).map(Some).ok_or_else(|| {
            ConfigError {
                key,
                value: q.into(),
                problem:
                    "not a size: use bytes or a number with K, M, G or T (\"10G\"), or \"none\""
                        .into(),
            }
            .into()
        })
    }

    fn clone_base(
        &self,
        req: &RootfsRequest,
        hex: &str,
        source: &dyn Fn() -> Result<SourceView>,
        quota: Option<&str>,
    ) -> Result<PreparedRootfs> {
        let quota = self.quota_bytes(quota, req)?;
        let _lock = self.lock(hex)?;
        let base = format!("{}/{hex}", self.images());
        let ds = self.container_dataset(&req.namespace, &req.id);
        let snap = format!("{base}@base");
        // canmount=noauto: a clone is mounted by its container only, never by `zfs mount -a`
        // at boot (its mountpoint is in containerd's state directory, gone after a reboot).
        let mut args = vec![
            "clone".to_string(),
            "-o".into(),
            "canmount=noauto".into(),
            "-o".into(),
            format!("mountpoint={}", req.target.display()),
        ];
        if let Some(q) = quota {
            args.push("-o".into());
            args.push(format!("refquota={q}"));
        }
        if let Some(owner) = &req.owner {
            args.push("-o".into());
            args.push(format!("{OWNER}={}", owner.display()));
        }
        args.push(snap.clone());
        args.push(ds.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // The hot path is the clone alone: `<base>@base` exists only once the base is complete
        // (a build is renamed to the base's name after its snapshot and `state=ready`).
        let (mut built, mut replaced) = (false, false);
        loop {
            match self.zfs.zfs(&args, &ds) {
                Ok(_) => break,
                Err(e) if e.kind == ZfsErrorKind::NotFound && !built => {
                    self.ensure_base_locked(hex, source, req.image_name.as_deref())?;
                    built = true;
                }
                Err(e) if e.kind == ZfsErrorKind::AlreadyExists && !replaced => {
                    // A container id is new at Create: a clone by its name is a leftover of an
                    // earlier container of that id (a crash before Delete). It is replaced,
                    // never reused.
                    log::warn!(
                        "layerfs: {ds} already exists, left by an earlier container {}: destroying it",
                        req.id
                    );
                    self.zfs.destroy(&ds, false).map_err(|e| {
                        ZfsProviderError::Conflict(format!(
                            "container dataset {ds} already exists and cannot be destroyed ({e}); stop what uses it, then `zfs destroy {ds}`"
                        ))
                    })?;
                    replaced = true;
                }
                Err(e) => {
                    // zfs may have made the clone and failed to mount it (target not empty).
                    if e.kind != ZfsErrorKind::AlreadyExists {
                        let _ = self.zfs.destroy(&ds, false);
                    }
                    return Err(e.into());
                }
            }
        }
        // OpenZFS leaves a canmount=noauto clone unmounted; zfs-fuse mounts it anyway.
        if !crate::is_mount_point(&req.target) {
            match self.zfs.zfs(&["mount", &ds], &ds) {
                Ok(_) => {}
                Err(e) if e.stderr.contains("already mounted") => {}
                Err(e) => {
                    let _ = self.zfs.destroy(&ds, false);
                    return Err(e.into());
                }
            }
        }
        log::info!(
            "layerfs: {ds} cloned from {snap} at {}",
            req.target.display()
        );
        Ok(PreparedRootfs {
            target: req.target.clone(),
            provider: "zfs".into(),
            mounted: true,
            dataset: Some(ds),
            base: Some(base),
        })
    }

    /// An overlay of the image's layers (`lowers`) and the container's own `upper`: the clone of
    /// the base keyed by `req.image_key` or the lower directories, then `upper` applied to it.
    fn prepare_overlay(
        &self,
        req: &RootfsRequest,
        lowers: &[PathBuf],
        upper: Option<&Path>,
    ) -> Result<PreparedRootfs> {
        let key = match &req.image_key {
            Some(k) => k.clone(),
            None => fallback_chain_id(lowers),
        };
        let hex = chain_hex(&key)?;
        let root = self.cfg.mount_root.clone();
        let prepared =
            self.clone_base(req, &hex, &|| SourceView::merged(&root, &hex, lowers), None)?;
        let Some(upper) = upper.filter(|u| !is_empty_dir(u)) else {
            return Ok(prepared);
        };
        match apply_upper(upper, &req.target) {
            Ok(r) => {
                log::info!(
                    "layerfs: container {}: applied its own snapshot {} to the clone ({} entries, {} whiteouts, {} opaque directories)",
                    req.id,
                    upper.display(),
                    r.entries,
                    r.whiteouts.len(),
                    r.opaque.len()
                );
                Ok(prepared)
            }
            Err(why) => {
                let dataset = prepared.dataset.clone().unwrap_or_default();
                if let Err(e) = release_prepared(&prepared, &self.zfs) {
                    log::warn!("layerfs: cannot remove {dataset} after a failed Create: {e}");
                }
                Err(ZfsProviderError::Upper {
                    upper: upper.to_path_buf(),
                    dataset,
                    why,
                })
            }
        }
    }

    /// Destroys the clone mounted at `target`, if any. Busy is retried with a bound; a clone
    /// already gone is done. Returns whether a clone was found.
    pub fn release_target(&self, target: &Path) -> Result<bool> {
        let rows = self.zfs.list(&self.containers(), &["name", "mountpoint"])?;
        let mut found = false;
        for row in rows.iter().skip(1) {
            if let [name, mp] = row.as_slice() {
                if Path::new(mp) == target {
                    self.zfs.destroy(name, false)?;
                    log::info!("layerfs: destroyed {name}");
                    found = true;
                }
            }
        }
        Ok(found)
    }

    /// Every base under `<dataset>/images` (ready or not; builds excluded).
    pub fn list_bases(&self) -> Result<Vec<BaseInfo>> {
        let clones = self.clone_origins()?;
        let mut out = Vec::new();
        for row in self.zfs.list(&self.images(), &["name", LAST_USED, IMAGE])? {
            let [name, last, image] = row.as_slice() else {
                continue;
            };
            let Some(hex) = name.strip_prefix(&format!("{}/", self.images())) else {
                continue;
            };
            if hex.contains('/') || hex.starts_with(BUILD_PREFIX) {
                continue;
            }
            let snap = format!("{name}@base");
            out.push(BaseInfo {
                dataset: name.clone(),
                chain_id: hex.to_string(),
                bytes: self.zfs.get_bytes(name, "used")?,
                clones: clones
                    .iter()
                    .filter(|(_, o)| *o == snap)
                    .map(|(c, _)| c.clone())
                    .collect(),
                last_used: last.parse().unwrap_or(0),
                image: (image != "-" && !image.is_empty()).then(|| image.clone()),
            });
        }
        Ok(out)
    }

    /// (name, origin) of every clone under `<dataset>/containers`.
    fn clone_origins(&self) -> Result<Vec<(String, String)>> {
        Ok(self
            .zfs
            .list(&self.containers(), &["name", "origin"])?
            .into_iter()
            .filter_map(|r| match r.as_slice() {
                [name, origin] if origin != "-" => Some((name.clone(), origin.clone())),
                _ => None,
            })
            .collect())
    }

    fn clones_of(&self, base: &str) -> Result<Vec<String>> {
        let snap = format!("{base}@base");
        Ok(self
            .zfs
            .list(&self.containers(), &["name", "origin"])?
            .into_iter()
            .filter(|r| r.get(1) == Some(&snap))
            .filter_map(|r| r.into_iter().next())
            .collect())
    }

    /// Every container clone under `<dataset>/containers`.
    pub fn list_clones(&self) -> Result<Vec<CloneInfo>> {
        let prefix = format!("{}/", self.containers());
        Ok(self
            .zfs
            .list(&self.containers(), &["name", OWNER])?
            .into_iter()
            .filter_map(|row| {
                let [name, owner] = row.as_slice() else {
                    return None;
                };
                let leaf = name.strip_prefix(&prefix)?;
                (!leaf.contains('/')).then(|| CloneInfo {
                    dataset: name.clone(),
                    leaf: leaf.to_string(),
                    owner: (owner != "-" && !owner.is_empty()).then(|| PathBuf::from(owner)),
                })
            })
            .collect())
    }

    /// The keep policy of the config.
    pub fn keep_policy(&self) -> KeepPolicy {
        KeepPolicy {
            count: self.cfg.keep_bases,
            bytes: self.cfg.keep_bytes,
        }
    }

    /// Removes leftovers and unused bases beyond `policy`:
    /// - container clones for which `container_gone` is true (the shim asks whether the clone's
    ///   owner, its LXC directory, still exists);
    /// - `.build-*` datasets whose build is not running (its lock is free);
    /// - bases no container uses, beyond the `policy.count` / `policy.bytes` most recently used.
    ///
    /// Bases with clones are never touched.
    pub fn gc(
        &self,
        policy: KeepPolicy,
        container_gone: &dyn Fn(&CloneInfo) -> bool,
    ) -> Result<GcReport> {
        let mut report = GcReport::default();
        for c in self.list_clones()? {
            if container_gone(&c) {
                self.zfs.destroy(&c.dataset, false)?;
                report.containers.push(c.dataset);
            }
        }
        let prefix = format!("{}/", self.images());
        for row in self.zfs.list(&self.images(), &["name"])? {
            let Some(name) = row.first() else { continue };
            let Some(leaf) = name.strip_prefix(&prefix) else {
                continue;
            };
            let Some(rest) = leaf.strip_prefix(BUILD_PREFIX) else {
                continue;
            };
            let hex = rest.split('-').next().unwrap_or("");
            let Some(_lock) = self.try_lock(hex)? else {
                continue; // being built right now
            };
            self.zfs.destroy(name, true)?;
            report.builds.push(name.clone());
        }
        self.remove_stale_views();
        let mut lru = lru::LruCache::unbounded();
        let mut bases = self.list_bases()?;
        bases.retain(|b| b.clones.is_empty());
        bases.sort_by_key(|b| b.last_used);
        for b in &bases {
            lru.put(b.dataset.clone(), b.clone());
        }
        let mut kept = 0usize;
        let mut kept_bytes = 0u64;
        for (ds, b) in lru.iter() {
            let fits = kept < policy.count
                && policy
                    .bytes
                    .is_none_or(|max| kept_bytes.saturating_add(b.bytes) <= max);
            if fits {
                kept += 1;
                kept_bytes = kept_bytes.saturating_add(b.bytes);
                continue;
            }
            let Some(_lock) = self.try_lock(&b.chain_id)? else {
                continue; // a Create is cloning it right now
            };
            if !self.clones_of(ds)?.is_empty() {
                continue;
            }
            self.zfs.destroy(ds, true)?;
            report.bases.push(ds.clone());
        }
        Ok(report)
    }

    /// Unmounts and removes `<mount_root>/merged-<hex>-*` views whose build is not running.
    fn remove_stale_views(&self) {
        let Ok(entries) = std::fs::read_dir(&self.cfg.mount_root) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(hex) = name
                .strip_prefix(MERGED_PREFIX)
                .and_then(|r| r.split('-').next())
            else {
                continue;
            };
            if let Ok(Some(_lock)) = self.try_lock(hex) {
                let path = e.path();
                let _ = nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH);
                if let Err(err) = std::fs::remove_dir(&path) {
                    log::warn!("layerfs: cannot remove {}: {err}", path.display());
                }
            }
        }
    }

    fn lock_path(&self, hex: &str) -> PathBuf {
        self.cfg
            .mount_root
            .join("locks")
            .join(format!("{hex}.lock"))
    }

    fn open_lock(&self, hex: &str) -> Result<File> {
        let path = self.lock_path(hex);
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| ZfsProviderError::Io {
                what: "opening lock",
                path,
                source,
            })
    }

    fn lock(&self, hex: &str) -> Result<FlockGuard> {
        let f = self.open_lock(hex)?;
        loop {
            // SAFETY: the fd is valid while `f` lives.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(FlockGuard(f));
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(ZfsProviderError::Io {
                    what: "locking",
                    path: self.lock_path(hex),
                    source: e,
                });
            }
        }
    }

    fn try_lock(&self, hex: &str) -> Result<Option<FlockGuard>> {
        let f = self.open_lock(hex)?;
        // SAFETY: the fd is valid while `f` lives.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            Ok(Some(FlockGuard(f)))
        } else {
            Ok(None)
        }
    }
}

/// Holds a flock until dropped (closing the file releases it).
struct FlockGuard(#[allow(dead_code)] File);

impl RootfsProvider for ZfsProvider {
    fn name(&self) -> &'static str {
        "zfs"
    }

    /// - one overlay mount (containerd's overlayfs snapshotter): a clone of the base keyed by
    ///   `req.image_key` or the lower directories, built from their read-only merged view; the
    ///   upperdir's contents applied to the clone;
    /// - one bind mount of a directory (containerd's native snapshotter: a private full copy of
    ///   the image) with `req.image_key` known: a clone of the base keyed by it, built from that
    ///   directory when the base is new;
    /// - anything else (a bind mount without an image key, a `zfs` mount from containerd's zfs
    ///   snapshotter, several mounts): mounted as they are, like [`crate::PassThrough`], and
    ///   recorded as `passthrough`.
    fn prepare(&self, req: &RootfsRequest) -> Result<PreparedRootfs, Error> {
        match req.mounts.as_slice() {
            [m] if m.kind == "overlay" => {
                if let Some(lowers) = lowerdirs(m) {
                    let upper = option_value(m, "upperdir").map(PathBuf::from);
                    return Ok(self.prepare_overlay(req, &lowers, upper.as_deref())?);
                }
            }
            [m] if is_bind(m) => {
                if let Some(key) = &req.image_key {
                    let hex = chain_hex(key)?;
                    let src = PathBuf::from(&m.source);
                    return Ok(self.clone_base(req, &hex, &|| Ok(SourceView::dir(&src)), None)?);
                }
                log::info!(
                    "layerfs: container {}: rootfs is the bind mount {} (containerd's native snapshotter), used as it is, not as a ZFS clone: it is already a private full copy of the image, and without the image's chain id it cannot be shared as a base (see docs/zfs.md)",
                    req.id,
                    m.source
                );
            }
            _ => {
                let kinds: Vec<&str> = req.mounts.iter().map(|m| m.kind.as_str()).collect();
                log::info!(
                    "layerfs: container {}: rootfs mounts {kinds:?} used as they are, not as a ZFS clone",
                    req.id
                );
            }
        }
        crate::PassThrough.prepare(req)
    }

    fn release(&self, prepared: &PreparedRootfs) -> Result<(), Error> {
        if prepared.dataset.is_none()
            && prepared.provider == "zfs"
            && self.release_target(&prepared.target)?
        {
            return Ok(());
        }
        release_prepared(prepared, &self.zfs)
    }
}

/// Releases a rootfs without the provider's config: destroys the clone dataset recorded in
/// `prepared` (unmounted first; busy retried with a bound; "does not exist" is done), records
/// the time on its base (`layerfs:last-used`, for the keep policy), and unmounts whatever is
/// still mounted at the target.
pub fn release_prepared(prepared: &PreparedRootfs, zfs: &Runner) -> Result<(), Error> {
    if let Some(ds) = &prepared.dataset {
        zfs.destroy(ds, false).map_err(ZfsProviderError::from)?;
        log::info!("layerfs: destroyed {ds}");
        if let Some(base) = &prepared.base {
            match zfs.set(base, LAST_USED, &now().to_string()) {
                Ok(()) => {}
                // gc took it meanwhile: nothing to record.
                Err(e) if e.kind == ZfsErrorKind::NotFound => {}
                Err(e) => log::warn!("layerfs: cannot record last use of {base}: {e}"),
            }
        }
    }
    if prepared.mounted && crate::is_mount_point(&prepared.target) {
        crate::mount::unmount_all(&prepared.target)?;
    }
    Ok(())
}

fn is_bind(m: &MountSpec) -> bool {
    m.kind == "bind" || m.kind == "rbind" || m.options.iter().any(|o| o == "bind" || o == "rbind")
}

fn option_value<'a>(m: &'a MountSpec, key: &str) -> Option<&'a str> {
    m.options
        .iter()
        .find_map(|o| o.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
}

fn lowerdirs(m: &MountSpec) -> Option<Vec<PathBuf>> {
    let opt = option_value(m, "lowerdir")?;
    Some(opt.split(':').map(PathBuf::from).collect())
}

/// The fallback identity of an image: sha256 of its ordered lower directories.
pub fn fallback_chain_id(lowers: &[PathBuf]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for l in lowers {
        h.update(l.as_os_str().as_encoded_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// What a base is built from: a directory as it is, or the image's lower directories mounted
/// read-only as one overlay at `<mount_root>/merged-<hex>-<random>` (unmounted on drop; `gc`
/// removes one left by a killed build).
struct SourceView {
    path: PathBuf,
    mounted: bool,
}

const MERGED_PREFIX: &str = "merged-";

impl SourceView {
    fn dir(path: &Path) -> SourceView {
        SourceView {
            path: path.to_path_buf(),
            mounted: false,
        }
    }

    fn merged(root: &Path, hex: &str, lowers: &[PathBuf]) -> Result<SourceView> {
        if let [one] = lowers {
            return Ok(SourceView::dir(one));
        }
        let path = root.join(format!("{MERGED_PREFIX}{hex}-{}", random_hex()));
        std::fs::create_dir_all(&path).map_err(|source| ZfsProviderError::Io {
            what: "creating",
            path: path.clone(),
            source,
        })?;
        let lowerdir = lowers
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        // Through `mount::mount`, as the pass-through provider mounts: a lowerdir list longer
        // than a page (an image of 60 or more layers) is mounted with relative paths.
        let spec = MountSpec {
            kind: "overlay".into(),
            source: "overlay".into(),
            options: vec!["ro".into(), format!("lowerdir={lowerdir}")],
        };
        if let Err(e) = crate::mount::mount(&spec, &path) {
            let _ = std::fs::remove_dir(&path);
            return Err(ZfsProviderError::Mount(e));
        }
        Ok(SourceView {
            path,
            mounted: true,
        })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SourceView {
    fn drop(&mut self) {
        if self.mounted {
            let _ = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

/// The hex part of a chain id, checked.
fn chain_hex(chain_id: &str) -> Result<String> {
    let hex = chain_id.strip_prefix("sha256:").unwrap_or(chain_id);
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex.to_ascii_lowercase())
    } else {
        Err(ZfsProviderError::BadChainId(chain_id.to_string()))
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn random_hex() -> String {
    let mut buf = [0u8; 6];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf))
        .is_err()
    {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        buf[..4].copy_from_slice(&(t ^ std::process::id()).to_le_bytes());
    }
    hex::encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_are_checked() {
        let h = "a".repeat(64);
        assert_eq!(chain_hex(&format!("sha256:{h}")).unwrap(), h);
        assert_eq!(chain_hex(&h.to_uppercase()).unwrap(), h);
        assert!(chain_hex("sha256:abc").is_err());
        assert!(chain_hex(&"g".repeat(64)).is_err());
    }

    #[test]
    fn fallback_chain_id_depends_on_order() {
        let a = fallback_chain_id(&["/a".into(), "/b".into()]);
        let b = fallback_chain_id(&["/b".into(), "/a".into()]);
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(chain_hex(&a).is_ok());
    }
}
