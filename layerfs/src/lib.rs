//! layerfs: materialises a container's root filesystem.
//!
//! The shim asks a [`RootfsProvider`] for a rootfs at Create and releases it at Delete. Two
//! providers exist (or will): [`PassThrough`] mounts the mounts containerd passes (overlay, bind)
//! exactly as the runc shim does; the ZFS provider (a later step) clones a per-image base dataset.
//! This crate knows nothing of ttrpc or LXC.

pub mod mount;
pub mod pool;
pub mod zfs;
pub mod zfs_config;
pub mod zfs_provider;

use std::path::{Path, PathBuf};

pub use mount::{MountError, MountSpec};
pub use pool::{pool_health, PoolHealth};
pub use zfs::{Runner, ZfsError, ZfsErrorKind};
pub use zfs_config::{ConfigError, ZfsConfig};
pub use zfs_provider::{
    BaseInfo, GcReport, ImageSource, KeepPolicy, ZfsProvider, ZfsProviderError,
};

/// What a provider is told about the container whose rootfs it makes.
#[derive(Debug, Clone)]
pub struct RootfsRequest {
    /// containerd namespace of the container.
    pub namespace: String,
    /// Container id.
    pub id: String,
    /// The mounts containerd passed in Create (its snapshot of the container), in order.
    pub mounts: Vec<MountSpec>,
    /// Where the rootfs must appear: `<bundle>/rootfs`.
    pub target: PathBuf,
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
        })
    }

    fn release(&self, prepared: &PreparedRootfs) -> Result<(), Error> {
        if prepared.mounted {
            mount::unmount_all(&prepared.target)?;
        }
        Ok(())
    }
}

/// Whether `path` is a mount point (per /proc/self/mountinfo).
pub fn is_mount_point(path: &Path) -> bool {
    mount::is_mount_point(path)
}
