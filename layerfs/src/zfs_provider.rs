//! Container root filesystems as ZFS clones of per-image base datasets.
//!
//! Layout under the configured parent dataset `P`:
//!
//! - `P/images/<chain-id-hex>`: one base per image, its `@base` snapshot, user properties
//!   `layerfs:state=ready` and `layerfs:last-used=<unix seconds>`; not mounted (`canmount=noauto`).
//! - `P/images/.build-<hex>-<random>`: a base being built; never used, removed by `gc`.
//! - `P/containers/<namespace>-<id>`: `zfs clone P/images/<hex>@base`, mounted at the rootfs.
//!
//! A base is built under the temporary name, snapshotted, marked ready and only then renamed to its
//! final name: a build killed at any point leaves only `.build-*` datasets, which nothing trusts.
//! A flock on `<mount_root>/locks/<hex>.lock` makes concurrent Creates of a new image build it
//! once; the lock is held until the clone exists, so `gc` (which takes it too) never destroys a
//! base between the check and the clone.

use crate::zfs::{Runner, ZfsError, ZfsErrorKind};
use crate::zfs_config::{parse_size, ConfigError, ZfsConfig};
use crate::{Error, MountSpec, PreparedRootfs, RootfsProvider, RootfsRequest};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

const STATE: &str = "layerfs:state";
const LAST_USED: &str = "layerfs:last-used";
const BUILD_PREFIX: &str = ".build-";

/// Errors of the ZFS provider.
#[derive(Debug, thiserror::Error)]
pub enum ZfsProviderError {
    #[error(transparent)]
    Zfs(#[from] ZfsError),
    #[error(transparent)]
    Config(#[from] ConfigError),
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
    /// Containers cloned from it.
    pub clones: usize,
    /// Unix seconds of the last clone (or the build).
    pub last_used: u64,
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
        match zfs.exists(&pool) {
            Ok(true) => {}
            Ok(false) => {
                return Err(ZfsProviderError::PoolMissing {
                    pool,
                    dataset: cfg.dataset.clone(),
                })
            }
            Err(e) => return Err(e.into()),
        }
        let health = crate::pool::pool_health(&zfs, &pool)?;
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
        format!("{}/{}-{}", self.containers(), clean(namespace), clean(id))
    }

    /// Makes sure the base of `image` exists (building it if needed) and returns its dataset.
    pub fn ensure_base(&self, image: &ImageSource) -> Result<String> {
        let hex = chain_hex(&image.chain_id)?;
        let _lock = self.lock(&hex)?;
        self.ensure_base_locked(&hex, &image.source)
    }

    fn ensure_base_locked(&self, hex: &str, source: &Path) -> Result<String> {
        let base = format!("{}/{hex}", self.images());
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
        self.build(hex, source, &base)?;
        Ok(base)
    }

    fn build(&self, hex: &str, source: &Path, base: &str) -> Result<()> {
        let build = format!("{}/{BUILD_PREFIX}{hex}-{}", self.images(), random_hex());
        log::info!("layerfs: building base {base} from {}", source.display());
        let r = self.build_steps(source, &build, base);
        if r.is_err() {
            if let Err(e) = self.zfs.destroy(&build, true) {
                log::warn!(
                    "layerfs: cannot remove failed build {build}: {e}; `lxcri layers gc` will"
                );
            }
        }
        r
    }

    fn build_steps(&self, source: &Path, build: &str, base: &str) -> Result<()> {
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
        self.zfs.set(build, STATE, "ready")?;
        // zfs-fuse cannot rename a mounted dataset ("dataset is busy").
        self.zfs.zfs_retry_busy(&["unmount", build], build)?;
        self.zfs.zfs_retry_busy(&["rename", build, base], build)?;
        Ok(())
    }

    /// Builds the base if needed, then clones it for the container at `req.target`, with
    /// `quota` (or the config's default) as `refquota`.
    pub fn prepare_image(
        &self,
        req: &RootfsRequest,
        image: &ImageSource,
        quota: Option<&str>,
    ) -> Result<PreparedRootfs> {
        let hex = chain_hex(&image.chain_id)?;
        let quota = match quota.or(self.cfg.quota.as_deref()) {
            Some(q) => Some(
                parse_size(q)
                    .ok_or_else(|| ConfigError {
                        key: "quota",
                        value: q.into(),
                        problem: "not a size (bytes or a number with K, M, G, T)".into(),
                    })?
                    .to_string(),
            ),
            None => None,
        };
        let _lock = self.lock(&hex)?;
        let base = self.ensure_base_locked(&hex, &image.source)?;
        let ds = self.container_dataset(&req.namespace, &req.id);
        let snap = format!("{base}@base");
        let mut args = vec![
            "clone".to_string(),
            "-o".into(),
            format!("mountpoint={}", req.target.display()),
        ];
        if let Some(q) = &quota {
            args.push("-o".into());
            args.push(format!("refquota={q}"));
        }
        args.push(snap.clone());
        args.push(ds.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match self.zfs.zfs(&args, &ds) {
            Ok(_) => {}
            Err(e) if e.kind == ZfsErrorKind::AlreadyExists => {
                let origin = self.zfs.get(&ds, "origin")?;
                let mp = self.zfs.get(&ds, "mountpoint")?;
                if origin.as_deref() != Some(snap.as_str())
                    || mp.as_deref().map(Path::new) != Some(req.target.as_path())
                {
                    return Err(ZfsProviderError::Conflict(format!(
                        "container dataset {ds} already exists (origin {origin:?}, mountpoint {mp:?}); delete the old container or destroy it with `zfs destroy {ds}`"
                    )));
                }
            }
            Err(e) => {
                // zfs may have made the clone and failed to mount it (target not empty).
                let _ = self.zfs.destroy(&ds, false);
                return Err(e.into());
            }
        }
        if self.zfs.get(&ds, "mounted")?.as_deref() != Some("yes") {
            if let Err(e) = self.zfs.zfs(&["mount", &ds], &ds) {
                let _ = self.zfs.destroy(&ds, false);
                return Err(e.into());
            }
        }
        if let Err(e) = self.zfs.set(&base, LAST_USED, &now().to_string()) {
            log::warn!("layerfs: cannot record last use of {base}: {e}");
        }
        log::info!(
            "layerfs: {ds} cloned from {snap} at {}",
            req.target.display()
        );
        Ok(PreparedRootfs {
            target: req.target.clone(),
            provider: "zfs".into(),
            mounted: true,
        })
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
        for row in self.zfs.list(&self.images(), &["name", LAST_USED])? {
            let [name, last] = row.as_slice() else {
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
                clones: clones.iter().filter(|o| **o == snap).count(),
                last_used: last.parse().unwrap_or(0),
            });
        }
        Ok(out)
    }

    /// The `origin` of every dataset under `<dataset>/containers`.
    fn clone_origins(&self) -> Result<Vec<String>> {
        Ok(self
            .zfs
            .list(&self.containers(), &["name", "origin"])?
            .into_iter()
            .filter_map(|r| r.get(1).cloned())
            .filter(|o| o != "-")
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

    /// The keep policy of the config.
    pub fn keep_policy(&self) -> KeepPolicy {
        KeepPolicy {
            count: self.cfg.keep_bases,
            bytes: self.cfg.keep_bytes,
        }
    }

    /// Removes leftovers and unused bases beyond `policy`:
    /// - container clones for which `container_gone(namespace-id)` is true (the dataset's last
    ///   component is passed);
    /// - `.build-*` datasets whose build is not running (its lock is free);
    /// - bases no container uses, beyond the `policy.count` / `policy.bytes` most recently used.
    ///
    /// Bases with clones are never touched.
    pub fn gc(
        &self,
        policy: KeepPolicy,
        container_gone: &dyn Fn(&str) -> bool,
    ) -> Result<GcReport> {
        let mut report = GcReport::default();
        let prefix = format!("{}/", self.containers());
        for row in self.zfs.list(&self.containers(), &["name"])? {
            let Some(name) = row.first() else { continue };
            let Some(leaf) = name.strip_prefix(&prefix) else {
                continue;
            };
            if !leaf.contains('/') && container_gone(leaf) {
                self.zfs.destroy(name, false)?;
                report.containers.push(name.clone());
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
        let mut lru = lru::LruCache::unbounded();
        let mut bases = self.list_bases()?;
        bases.retain(|b| b.clones == 0);
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

    /// Overlay mounts: the base is keyed by a hash of the ordered lower directories (the image's
    /// layers) and built from their read-only merged view. Other mounts are mounted as they are.
    fn prepare(&self, req: &RootfsRequest) -> Result<PreparedRootfs, Error> {
        let lowers = match req.mounts.as_slice() {
            [m] if m.kind == "overlay" => lowerdirs(m),
            _ => None,
        };
        let Some(lowers) = lowers else {
            let mut p = crate::PassThrough.prepare(req)?;
            p.provider = self.name().into();
            return Ok(p);
        };
        let chain = fallback_chain_id(&lowers);
        let merged = MergedView::new(&self.cfg.mount_root, &lowers)?;
        let image = ImageSource {
            chain_id: chain,
            source: merged.path().to_path_buf(),
        };
        Ok(self.prepare_image(req, &image, None)?)
    }

    fn release(&self, prepared: &PreparedRootfs) -> Result<(), Error> {
        if !self.release_target(&prepared.target)? && crate::is_mount_point(&prepared.target) {
            crate::mount::unmount_all(&prepared.target)?;
        }
        Ok(())
    }
}

fn lowerdirs(m: &MountSpec) -> Option<Vec<PathBuf>> {
    let opt = m.options.iter().find_map(|o| o.strip_prefix("lowerdir="))?;
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

/// The lower directories mounted read-only as one overlay (or the single lower as it is).
struct MergedView {
    path: PathBuf,
    mounted: bool,
}

impl MergedView {
    fn new(root: &Path, lowers: &[PathBuf]) -> Result<MergedView> {
        if let [one] = lowers {
            return Ok(MergedView {
                path: one.clone(),
                mounted: false,
            });
        }
        let path = root.join(format!("merged-{}", random_hex()));
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
        let r = nix::mount::mount(
            Some("overlay"),
            &path,
            Some("overlay"),
            nix::mount::MsFlags::MS_RDONLY,
            Some(format!("lowerdir={lowerdir}").as_str()),
        );
        if let Err(e) = r {
            let _ = std::fs::remove_dir(&path);
            return Err(ZfsProviderError::Io {
                what: "mounting the image's layers read-only at",
                path,
                source: e.into(),
            });
        }
        Ok(MergedView {
            path,
            mounted: true,
        })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for MergedView {
    fn drop(&mut self) {
        if self.mounted {
            let _ = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

/// Copies `src`'s contents into `dst` keeping owners, modes, xattrs, hardlinks, device nodes,
/// sparse files and timestamps (`cp -a --sparse=always`).
fn copy_tree(src: &Path, dst: &Path) -> Result<(), String> {
    let mut from = src.as_os_str().to_owned();
    from.push("/.");
    let out = Command::new("cp")
        .arg("-a")
        .arg("--sparse=always")
        .arg(&from)
        .arg(dst)
        .output()
        .map_err(|e| format!("cannot run cp: {e}"))?;
    if out.status.success() {
        fix_modes(src, dst)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// zfs-fuse stores the `system.posix_acl_access` that `cp -a` sets from a file's mode as a
/// plain xattr and keeps the mode `cp` created the file with (0600): put the source's mode back
/// and drop ACLs the source did not have.
fn fix_modes(src: &Path, dst: &Path) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    const ACL: &std::ffi::CStr = c"system.posix_acl_access";
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let s = src.join(&rel);
        let md = std::fs::symlink_metadata(&s).map_err(|e| format!("{}: {e}", s.display()))?;
        if md.file_type().is_symlink() {
            continue;
        }
        let d = dst.join(&rel);
        let cs = std::ffi::CString::new(s.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
        let cd = std::ffi::CString::new(d.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
        // SAFETY: valid C strings; a null buffer of size 0 only asks for the length.
        let src_has_acl =
            unsafe { libc::lgetxattr(cs.as_ptr(), ACL.as_ptr(), std::ptr::null_mut(), 0) } >= 0;
        if !src_has_acl {
            // SAFETY: valid C strings. ENODATA (no ACL) is fine.
            unsafe { libc::lremovexattr(cd.as_ptr(), ACL.as_ptr()) };
        }
        // SAFETY: valid C string.
        if unsafe { libc::chmod(cd.as_ptr(), md.mode() & 0o7777) } != 0 {
            return Err(format!(
                "chmod {}: {}",
                d.display(),
                std::io::Error::last_os_error()
            ));
        }
        if md.is_dir() {
            for e in std::fs::read_dir(&s).map_err(|e| format!("{}: {e}", s.display()))? {
                let e = e.map_err(|e| format!("{}: {e}", s.display()))?;
                stack.push(rel.join(e.file_name()));
            }
        }
    }
    Ok(())
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
