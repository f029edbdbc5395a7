//! Which rootfs provider a container gets, what the shim tells it about the container, and the
//! shim's share of ZFS housekeeping.
//!
//! - No `[zfs]` table in the config: [`layerfs::PassThrough`] (containerd's mounts as they are),
//!   said once in the shim's log.
//! - A `[zfs]` table: [`layerfs::ZfsProvider`] once the pool answers and is healthy; otherwise
//!   Create fails with an error naming the pool, the config key and the file. Nothing falls back
//!   silently: a user who configured ZFS gets ZFS or an error.
//!
//! Release never comes here: [`layerfs::release`] goes back to the provider recorded in the
//! container's `PreparedRootfs`, with no config (the `delete` subcommand has none).

use crate::config::Config;
use crate::error::{Error, Result};
use layerfs::{CloneInfo, RootfsProvider, RootfsRequest, ZfsConfig, ZfsProvider};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// The annotation that sets a container's own quota (its clone's `refquota`): `512M`, `10G`,
/// bytes, or `none` for no quota despite the config's default.
pub const QUOTA_ANNOTATION: &str = "io.lxcri.zfs.quota";

/// Annotations that name the container's image, recorded on a base when it is built (informative,
/// for `lxcri layers ls`). The CRI plugin sets the first.
const IMAGE_NAME_ANNOTATIONS: &[&str] =
    &["io.kubernetes.cri.image-name", "io.containerd.image.name"];

/// The ZFS provider of this shim process, made once per config.
static ZFS: Mutex<Option<(ZfsConfig, Arc<ZfsProvider>)>> = Mutex::new(None);
static SAID_PASSTHROUGH: AtomicBool = AtomicBool::new(false);

/// The provider for containers created with `cfg`. Blocking (runs `zpool`/`zfs` the first time).
pub fn provider(cfg: &Config) -> Result<Arc<dyn RootfsProvider>> {
    let Some(z) = &cfg.zfs else {
        if !SAID_PASSTHROUGH.swap(true, Ordering::Relaxed) {
            log::info!(
                "rootfs: no [zfs] table in {}: containers use the mounts containerd passes, as they are",
                config_name(cfg)
            );
        }
        return Ok(Arc::new(layerfs::PassThrough));
    };
    let mut cached = ZFS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((c, p)) = cached.as_ref() {
        if c == z {
            return Ok(p.clone());
        }
    }
    let p = Arc::new(ZfsProvider::new(z.clone()).map_err(|e| zfs_unusable(cfg, z, &e))?);
    log::info!(
        "rootfs: ZFS clones under {} ([zfs] in {})",
        z.dataset,
        config_name(cfg)
    );
    *cached = Some((z.clone(), p.clone()));
    drop(cached);
    maybe_collect(cfg, &p);
    Ok(p)
}

fn config_name(cfg: &Config) -> String {
    cfg.source
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "the lxcri config (none found: defaults)".into())
}

/// The error of a configured ZFS that cannot be used: what is wrong, which key of which file
/// asked for it, and the two ways out.
fn zfs_unusable(cfg: &Config, z: &ZfsConfig, e: &dyn std::fmt::Display) -> Error {
    Error::FailedPrecondition(format!(
        "rootfs: ZFS is configured by `[zfs] dataset = \"{}\"` in {}, but cannot be used: {e}. \
         Fix that, or remove the [zfs] table to run containers on containerd's mounts as they are",
        z.dataset,
        config_name(cfg),
    ))
}

/// What Create tells the provider besides the mounts: the quota annotation (checked here, before
/// anything is made), the image name if an annotation gives it, and the owner (the container's
/// LXC directory, which exists from before the rootfs is made until after it is released).
/// The image key stays unset: the fallback key (the lower directories) applies until the shim
/// knows the image's chain id.
pub fn request_options(spec: &oci_spec::runtime::Spec, lxc_dir: &Path) -> Result<RootfsRequest> {
    let annotations = spec.annotations().clone().unwrap_or_default();
    let quota = match annotations.get(QUOTA_ANNOTATION) {
        Some(q) if q.trim().eq_ignore_ascii_case("none") => Some("none".to_string()),
        Some(q) => match layerfs::zfs_config::parse_size(q) {
            Some(_) => Some(q.trim().to_string()),
            None => {
                return Err(Error::InvalidArgument(format!(
                    "annotation {QUOTA_ANNOTATION} = {q:?} is not a size: use bytes or a number \
                     with K, M, G or T (\"10G\"), or \"none\""
                )))
            }
        },
        None => None,
    };
    let image_name = IMAGE_NAME_ANNOTATIONS
        .iter()
        .find_map(|k| annotations.get(*k))
        .filter(|v| !v.is_empty())
        .cloned();
    Ok(RootfsRequest {
        quota,
        image_name,
        owner: Some(lxc_dir.to_path_buf()),
        ..Default::default()
    })
}

/// The image identity of container `id`, asked of containerd at `address` by the `lxcri` CLI's
/// hidden `rootfs identify` (the gRPC client lives there, not in the shim): Some((chain id,
/// image name)) when containerd names it and image-core confirms it; None when containerd cannot
/// say (the caller falls back to the lower directories' hash). An image that is invalid is an
/// error; one whose name now points at another image falls back, with a warning (a retag
/// between container create and task create is legitimate).
pub fn identify(
    cli: &Path,
    address: &str,
    namespace: &str,
    id: &str,
) -> Result<Option<(String, Option<String>)>> {
    let cli_s = cli.display().to_string();
    let args = [
        "rootfs",
        "identify",
        "--address",
        address,
        "--namespace",
        namespace,
        "--timeout",
        "3000",
        id,
    ];
    let out = match layerfs::cmd::run(&cli_s, &args, Some(std::time::Duration::from_secs(5))) {
        Ok(o) => o,
        Err(e) => {
            log::warn!("container {id}: cannot ask containerd for its image ({cli_s}: {e}); keying its base by its layer directories");
            return Ok(None);
        }
    };
    let v: serde_json::Value = match serde_json::from_slice(&out.stdout) {
        Ok(v) => v,
        Err(_) => {
            log::warn!(
                "container {id}: {cli_s} rootfs identify printed no result ({}); keying its base by its layer directories",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return Ok(None);
        }
    };
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    match text("result").as_deref() {
        Some("identified") => match text("chain_id") {
            Some(chain) => Ok(Some((chain, text("image_name")))),
            None => Ok(None),
        },
        Some("invalid") => Err(Error::InvalidArgument(format!(
            "its image is not valid: {}; re-pull or re-import the image",
            text("error").unwrap_or_else(|| v.to_string())
        ))),
        other => {
            if other == Some("mismatch") {
                log::warn!("container {id}: {}", text("error").unwrap_or_default());
            } else {
                log::debug!("container {id}: containerd cannot name its image: {v}");
            }
            Ok(None)
        }
    }
}

/// Whether the container a clone belongs to is gone: its owner (LXC directory) does not exist;
/// for a clone without an owner, no container directory under `lxc_root` has its name.
pub fn container_gone(lxc_root: &Path) -> impl Fn(&CloneInfo) -> bool {
    let mut leaves = Vec::new();
    if let Ok(namespaces) = std::fs::read_dir(lxc_root) {
        for ns in namespaces.flatten() {
            let Ok(ids) = std::fs::read_dir(ns.path()) else {
                continue;
            };
            let ns = ns.file_name().to_string_lossy().into_owned();
            for id in ids.flatten() {
                let id = id.file_name().to_string_lossy().into_owned();
                leaves.push(ZfsProvider::container_leaf(&ns, &id));
            }
        }
    }
    move |c: &CloneInfo| match &c.owner {
        Some(owner) => !owner.exists(),
        None => !leaves.contains(&c.leaf),
    }
}

/// At most every `gc_interval_secs` (a stamp file's age, checked with one `stat`), and by one
/// shim at a time (a flock), collects orphans and unused bases in a background thread: Create
/// does not wait for it. Safe beside running Creates: a base being built or cloned is locked,
/// a base with clones is never destroyed, a clone whose LXC directory exists is not an orphan.
fn maybe_collect(cfg: &Config, p: &Arc<ZfsProvider>) {
    let z = p.config();
    if z.gc_interval_secs == 0 {
        return;
    }
    let stamp = z.mount_root.join("gc.stamp");
    let age = std::fs::metadata(&stamp)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok());
    if age.is_some_and(|a| a < Duration::from_secs(z.gc_interval_secs)) {
        return;
    }
    let (p, lxc_root) = (p.clone(), cfg.lxc_root.clone());
    std::thread::spawn(move || collect_now(&p, &lxc_root, &stamp));
}

fn collect_now(p: &ZfsProvider, lxc_root: &Path, stamp: &PathBuf) {
    let lock_path = p.config().mount_root.join("locks").join("gc.lock");
    let Ok(lock) = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
    else {
        return;
    };
    // SAFETY: flock on a descriptor owned by `lock`, which outlives the collection.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return; // another shim collects right now
    }
    if let Err(e) = std::fs::write(stamp, b"") {
        log::warn!("rootfs: cannot write {}: {e}", stamp.display());
    }
    let started = std::time::Instant::now();
    match p.gc(p.keep_policy(), &container_gone(lxc_root)) {
        Ok(r) => {
            let n = r.containers.len() + r.builds.len() + r.bases.len();
            log::info!(
                "rootfs: collected {n} datasets in {} ms (orphan clones {:?}, builds {:?}, unused bases {:?})",
                started.elapsed().as_millis(),
                r.containers,
                r.builds,
                r.bases
            );
        }
        Err(e) => log::warn!("rootfs: collection failed: {e}; run `lxcri layers gc`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(annotations: &[(&str, &str)]) -> oci_spec::runtime::Spec {
        let mut s = oci_spec::runtime::Spec::default();
        s.set_annotations(Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ));
        s
    }

    #[test]
    fn quota_annotation_is_checked_and_passed_on() {
        let dir = Path::new("/run/lxcri/default/c1");
        let r = request_options(&spec(&[(QUOTA_ANNOTATION, "64M")]), dir).unwrap();
        assert_eq!(r.quota.as_deref(), Some("64M"));
        assert_eq!(r.owner.as_deref(), Some(dir));
        let r = request_options(&spec(&[(QUOTA_ANNOTATION, "None")]), dir).unwrap();
        assert_eq!(r.quota.as_deref(), Some("none"));
        let e = request_options(&spec(&[(QUOTA_ANNOTATION, "lots")]), dir)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("io.lxcri.zfs.quota = \"lots\"") && e.contains("10G"),
            "{e}"
        );
        let r = request_options(
            &spec(&[(
                "io.kubernetes.cri.image-name",
                "docker.io/library/busybox:1",
            )]),
            dir,
        )
        .unwrap();
        assert_eq!(r.image_name.as_deref(), Some("docker.io/library/busybox:1"));
        assert_eq!((r.quota, r.image_key), (None, None));
    }

    #[test]
    fn a_clone_is_an_orphan_when_its_owner_is_gone() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("k8s.io/web-1")).unwrap();
        let gone = container_gone(root.path());
        let c = |leaf: &str, owner: Option<PathBuf>| CloneInfo {
            dataset: format!("tank/lxcri/containers/{leaf}"),
            leaf: leaf.into(),
            owner,
        };
        assert!(!gone(&c("x", Some(root.path().join("k8s.io/web-1")))));
        assert!(gone(&c("x", Some(root.path().join("k8s.io/web-2")))));
        assert!(!gone(&c("k8s.io-web-1", None)));
        assert!(gone(&c("k8s.io-web-2", None)));
    }

    #[test]
    fn without_a_zfs_table_containers_get_passthrough() {
        let p = provider(&Config::default()).unwrap();
        assert_eq!(p.name(), "passthrough");
    }

    #[test]
    fn a_configured_pool_that_is_missing_names_the_pool_key_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg_path = dir.path().join("config.toml");
        let mut cfg = Config::default();
        let mut z = ZfsConfig::new("lxcri-no-such-pool/lxcri", dir.path().join("zfs"));
        z.gc_interval_secs = 0;
        cfg.zfs = Some(z);
        cfg.source = Some(cfg_path.clone());
        let Err(e) = provider(&cfg) else {
            panic!("a missing pool must fail");
        };
        let msg = e.to_string();
        assert!(
            msg.contains("lxcri-no-such-pool")
                && msg.contains("[zfs] dataset = \"lxcri-no-such-pool/lxcri\"")
                && msg.contains(&cfg_path.display().to_string()),
            "{msg}"
        );
    }
}
