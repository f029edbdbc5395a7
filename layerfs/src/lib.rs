//! layerfs: materialises a container's root filesystem.
//!
//! The shim asks a [`RootfsProvider`] for a rootfs at Create and releases it at Delete with
//! [`release`], which goes back to the provider named in the [`PreparedRootfs`]. Two providers
//! exist: [`PassThrough`] mounts the mounts containerd passes (overlay, bind) exactly as the runc
//! shim does; [`ZfsProvider`] clones a per-image base dataset (see `zfs_provider`). This crate
//! knows nothing of ttrpc or LXC.

pub mod cmd;
pub mod mount;
pub mod pool;
pub mod tree;
pub mod zfs;
pub mod zfs_config;
pub mod zfs_provider;

use std::path::{Path, PathBuf};

pub use mount::{MountError, MountSpec};
pub use pool::{pool_health, PoolHealth};
pub use zfs::{Runner, ZfsError, ZfsErrorKind};
pub use zfs_config::{ConfigError, ZfsConfig};
pub use zfs_provider::{
    BaseInfo, CloneInfo, GcReport, ImageSource, KeepPolicy, ZfsProvider, ZfsProviderError,
};

/// What a provider is told about the container whose rootfs it makes.
#[derive(Debug, Clone, Default)]
pub struct RootfsRequest {
    /// containerd namespace of the container.
    pub namespace: String,
    /// Container id.
    pub id: String,
    /// The mounts containerd passed in Create (its snapshot of the container), in order.
    pub mounts: Vec<MountSpec>,
    /// Where the rootfs must appear: `<bundle>/rootfs`.
    pub target: PathBuf,
    /// The image's identity when the caller knows it: its top chain ID (`sha256:<hex>`), the name
    /// containerd gives the container snapshot's parent. The ZFS provider keys the base dataset by
    /// it; without it, by a hash of the ordered lower directories (see
    /// [`zfs_provider::fallback_chain_id`]).
    pub image_key: Option<String>,
    /// The image's name (`docker.io/library/busybox:latest`), recorded on a base when it is built
    /// so that `lxcri layers ls` can show it. Informative only.
    pub image_name: Option<String>,
    /// The container's own quota (`refquota` of its clone): a size (`512M`, `10G`, bytes) or
    /// `none`; `None` takes the provider's default.
    pub quota: Option<String>,
    /// A path that exists exactly as long as the container does (the shim gives its LXC
    /// directory). Recorded on the clone: `gc` removes clones whose owner is gone.
    pub owner: Option<PathBuf>,
}

/// A rootfs that was made, to be released at Delete.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PreparedRootfs {
    /// Where it is mounted.
    pub target: PathBuf,
    /// Which provider made it (`passthrough`, `zfs`): release goes back to the same one.
    pub provider: String,
    /// Whether anything was mounted (false when containerd passed no mounts and the bundle's
    /// rootfs directory is used as it is).
    pub mounted: bool,
    /// The clone dataset (provider `zfs`): what Delete destroys. Recorded so that a process that
    /// has only the saved state (the shim's `delete` subcommand) can release it without the
    /// config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// The base dataset the clone was made from: its `layerfs:last-used` is set at release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error("rootfs target {path}: {source}")]
    Target {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Makes and releases container root filesystems.
pub trait RootfsProvider: Send + Sync {
    /// Short name, recorded in [`PreparedRootfs::provider`].
    fn name(&self) -> &'static str;
    /// Makes the rootfs at `req.target`. On error nothing is left mounted.
    fn prepare(&self, req: &RootfsRequest) -> Result<PreparedRootfs, Error>;
    /// Releases what `prepare` made. Idempotent: releasing twice, or something already gone, is
    /// not an error.
    fn release(&self, prepared: &PreparedRootfs) -> Result<(), Error>;
}

/// Mounts containerd's mounts as they are, one on top of the other, at the target: what the runc
/// shim does. Works on any host.
#[derive(Debug, Default, Clone, Copy)]
pub struct PassThrough;

impl RootfsProvider for PassThrough {
    fn name(&self) -> &'static str {
        "passthrough"
    }

    fn prepare(&self, req: &RootfsRequest) -> Result<PreparedRootfs, Error> {
        std::fs::create_dir_all(&req.target).map_err(|source| Error::Target {
            path: req.target.clone(),
            source,
        })?;
        let mut done = 0;
        for m in &req.mounts {
            if let Err(e) = mount::mount(m, &req.target) {
                for _ in 0..done {
                    let _ = mount::unmount(&req.target);
                }
                return Err(e.into());
            }
            done += 1;
        }
        Ok(PreparedRootfs {
            target: req.target.clone(),
            provider: self.name().into(),
            mounted: done > 0,
            dataset: None,
            base: None,
        })
    }

    fn release(&self, prepared: &PreparedRootfs) -> Result<(), Error> {
        if prepared.mounted {
            mount::unmount_all(&prepared.target)?;
        }
        Ok(())
    }
}

/// Releases a rootfs with the provider that made it ([`PreparedRootfs::provider`]), needing
/// nothing but `prepared` (no config): `passthrough` unmounts; `zfs` unmounts and destroys the
/// clone dataset recorded in it (a busy dataset is retried with a bound; one that does not exist
/// counts as destroyed). Idempotent.
pub fn release(prepared: &PreparedRootfs) -> Result<(), Error> {
    match prepared.provider.as_str() {
        "zfs" => zfs_provider::release_prepared(prepared, &Runner::default()),
        _ => PassThrough.release(prepared),
    }
}

/// Whether `path` is a mount point (per /proc/self/mountinfo).
pub fn is_mount_point(path: &Path) -> bool {
    mount::is_mount_point(path)
}
