//! Pool checks: is the configured pool healthy enough to build bases and clone them?
//!
//! The default build asks `zpool list -H -o health POOL` through the [`Runner`] (zfs-fuse and
//! OpenZFS both accept it). With the `libzetta` cargo feature (hosts with OpenZFS's libraries;
//! Debian: `libzfslinux-dev` from contrib) the health comes from libzetta's zpool engine first,
//! and [`libzfs_core_status`] tells whether libzfs_core can reach the kernel module (`/dev/zfs`);
//! when libzetta cannot read the pool (zfs-fuse's `zpool` lacks `list -p`), the runner answers.

use crate::zfs::{Runner, ZfsError, ZfsErrorKind};

/// A pool's health as ZFS reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolHealth {
    pub pool: String,
    /// `ONLINE`, `DEGRADED`, `FAULTED`, `OFFLINE`, `UNAVAIL`, `REMOVED`, ...
    pub health: String,
    /// Who answered: `zpool list` (the runner) or `libzetta`.
    pub via: &'static str,
}

impl PoolHealth {
    /// ONLINE and DEGRADED pools take writes; anything else cannot hold new bases or clones.
    pub fn usable(&self) -> bool {
        matches!(self.health.as_str(), "ONLINE" | "DEGRADED")
    }
}

/// The health of `pool`. Errors are the runner's (`PoolMissing` for a pool that is not
/// imported, `NotInstalled`, `Unavailable`, ...).
pub fn pool_health(zfs: &Runner, pool: &str) -> Result<PoolHealth, ZfsError> {
    #[cfg(feature = "libzetta")]
    match libzetta_health(zfs, pool) {
        Ok(h) => return Ok(h),
        Err(why) => log::debug!("libzetta cannot read pool {pool:?} ({why}); asking zpool list"),
    }
    let out = zfs.zpool(&["list", "-H", "-o", "health", pool], pool)?;
    let health = out.lines().next().unwrap_or_default().trim().to_string();
    if health.is_empty() {
        return Err(ZfsError {
            kind: ZfsErrorKind::Other,
            command: format!("zpool list -H -o health {pool}"),
            dataset: pool.to_string(),
            stderr: "printed no health".into(),
        });
    }
    Ok(PoolHealth {
        pool: pool.to_string(),
        health,
        via: "zpool list",
    })
}

#[cfg(feature = "libzetta")]
fn libzetta_health(zfs: &Runner, pool: &str) -> Result<PoolHealth, String> {
    use libzetta::zpool::{Health, ZpoolEngine, ZpoolOpen3};
    let engine = ZpoolOpen3::with_cmd(zfs.zpool_binary());
    let props = engine.read_properties(pool).map_err(|e| e.to_string())?;
    let health = match props.health() {
        Health::Online => "ONLINE",
        Health::Degraded => "DEGRADED",
        Health::Faulted => "FAULTED",
        Health::Offline => "OFFLINE",
        Health::Available => "AVAIL",
        Health::Unavailable => "UNAVAIL",
        Health::Removed => "REMOVED",
        Health::Inuse => "INUSE",
    };
    Ok(PoolHealth {
        pool: pool.to_string(),
        health: health.to_string(),
        via: "libzetta",
    })
}

/// Whether libzfs_core can talk to ZFS (OpenZFS's kernel module through `/dev/zfs`); `Err` says
/// why not. zfs-fuse has no `/dev/zfs`: there this is always an error, and layerfs keeps using
/// `zfs(8)`.
#[cfg(feature = "libzetta")]
pub fn libzfs_core_status() -> Result<(), String> {
    match libzetta::zfs::ZfsLzc::new() {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "libzfs_core cannot open /dev/zfs ({e}): the OpenZFS kernel module is not loaded \
             (`modprobe zfs`); zfs-fuse does not provide it"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    /// A `zpool` stand-in that prints `stdout` and exits with `code`.
    fn fake_zpool(dir: &Path, stdout: &str, stderr: &str, code: i32) -> String {
        let p = dir.join("zpool");
        std::fs::write(
            &p,
            format!("#!/bin/sh\nprintf '%s' '{stdout}'\nprintf '%s' '{stderr}' >&2\nexit {code}\n"),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.to_string_lossy().into_owned()
    }

    fn runner(zpool: &str) -> Runner {
        Runner::default().with_binaries("/nonexistent/zfs", zpool)
    }

    #[test]
    fn online_and_degraded_are_usable_the_rest_not() {
        let dir = tempfile::tempdir().unwrap();
        for (printed, usable) in [
            ("ONLINE\n", true),
            ("DEGRADED\n", true),
            ("FAULTED\n", false),
            ("UNAVAIL\n", false),
            ("SUSPENDED\n", false),
        ] {
            let z = fake_zpool(dir.path(), printed, "", 0);
            let h = pool_health(&runner(&z), "tank").unwrap();
            assert_eq!(h.health, printed.trim());
            assert_eq!(h.usable(), usable, "{printed}");
            assert_eq!(h.pool, "tank");
            std::fs::remove_file(&z).unwrap();
        }
    }

    #[test]
    fn a_missing_pool_or_zpool_is_classified() {
        let dir = tempfile::tempdir().unwrap();
        let z = fake_zpool(dir.path(), "", "cannot open 'tank': no such pool", 1);
        let e = pool_health(&runner(&z), "tank").unwrap_err();
        assert_eq!(e.kind, ZfsErrorKind::PoolMissing, "{e}");
        let e = pool_health(&runner("/nonexistent/zpool"), "tank").unwrap_err();
        assert_eq!(e.kind, ZfsErrorKind::NotInstalled, "{e}");
        let z2 = dir.path().join("zpool");
        std::fs::remove_file(&z2).unwrap();
        let z = fake_zpool(dir.path(), "", "", 0);
        let e = pool_health(&runner(&z), "tank").unwrap_err();
        assert!(e.to_string().contains("printed no health"), "{e}");
    }

    #[cfg(feature = "libzetta")]
    #[test]
    fn libzfs_core_says_why_it_is_unavailable() {
        // These machines have no OpenZFS kernel module; where one is loaded this is Ok.
        match libzfs_core_status() {
            Ok(()) => assert!(Path::new("/dev/zfs").exists()),
            Err(why) => {
                assert!(!Path::new("/dev/zfs").exists(), "{why}");
                assert!(why.contains("/dev/zfs"), "{why}");
            }
        }
    }

    #[cfg(feature = "libzetta")]
    #[test]
    fn libzetta_reads_openzfs_style_properties() {
        // What OpenZFS's `zpool list -p -H -o <libzetta's columns>` prints for a healthy pool.
        let dir = tempfile::tempdir().unwrap();
        let line = "94208\t0\t-\t1.00\t-\t0\t10645504\t0\t5461426327434491893\tONLINE\t\
                    10737418240\t0\t-\toff\toff\toff\t-\t-\t0\ton\twait\n";
        let z = fake_zpool(dir.path(), line, "", 0);
        let h = pool_health(&runner(&z), "tank").unwrap();
        assert_eq!(h.via, "libzetta");
        assert_eq!(h.health, "ONLINE");
    }
}
