//! The one place where `zfs(8)` and `zpool(8)` run.
//!
//! Every command goes through [`Runner::run`]: stderr is captured, a timeout bounds it, and a
//! failure is classified into [`ZfsErrorKind`] so the code above speaks in "not found", "busy",
//! "already exists" instead of exit codes. Only the command subset that both OpenZFS 2.x and
//! zfs-fuse 0.7 accept is used: no `zfs list -p`, no `zfs get -t`, one property per `zfs set`, no
//! `clones`/`written`/`logicalused` properties, no `mountpoint=legacy`.

use crate::cmd::{self, RunError};
use std::fmt;
use std::thread;
use std::time::Duration;

/// What went wrong with a ZFS command, as far as the caller needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZfsErrorKind {
    /// The dataset or snapshot does not exist.
    NotFound,
    /// The dataset already exists.
    AlreadyExists,
    /// The dataset is busy (mounted and in use); often transient on zfs-fuse.
    Busy,
    /// The dataset has children, snapshots or dependent clones.
    HasDependents,
    /// The pool does not exist or is not imported.
    PoolMissing,
    /// Not allowed (not root, or delegated permissions missing).
    PermissionDenied,
    /// No `zfs`/`zpool` binary on this host.
    NotInstalled,
    /// The ZFS library cannot talk to the kernel module or the zfs-fuse daemon.
    Unavailable,
    /// The command did not finish within the runner's timeout.
    Timeout,
    /// Anything else; the error's stderr says what.
    Other,
}

impl ZfsErrorKind {
    fn hint(self) -> &'static str {
        match self {
            ZfsErrorKind::NotFound => "check the name with `zfs list`",
            ZfsErrorKind::AlreadyExists => "pick another name or destroy the existing dataset",
            ZfsErrorKind::Busy => {
                "stop what uses the dataset (a container, a shell in its mountpoint) and retry"
            }
            ZfsErrorKind::HasDependents => {
                "destroy its clones first (`lxcri layers ls` shows which containers use it)"
            }
            ZfsErrorKind::PoolMissing => {
                "import or create the pool (`zpool import`, `zpool list`), or fix zfs.dataset in the config"
            }
            ZfsErrorKind::PermissionDenied => "run as root",
            ZfsErrorKind::NotInstalled => {
                "install zfsutils-linux (OpenZFS) or zfs-fuse, or leave [zfs] out of the config"
            }
            ZfsErrorKind::Unavailable => {
                "load the zfs kernel module (`modprobe zfs`) or start zfs-fuse (`zfs-fuse --enable-xattr`)"
            }
            ZfsErrorKind::Timeout => "check `zpool status` for a hung pool",
            ZfsErrorKind::Other => "see the message of zfs above",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            ZfsErrorKind::NotFound => "does not exist",
            ZfsErrorKind::AlreadyExists => "already exists",
            ZfsErrorKind::Busy => "is busy",
            ZfsErrorKind::HasDependents => "has children or dependent clones",
            ZfsErrorKind::PoolMissing => "its pool is missing",
            ZfsErrorKind::PermissionDenied => "permission denied",
            ZfsErrorKind::NotInstalled => "zfs is not installed",
            ZfsErrorKind::Unavailable => "ZFS is not available",
            ZfsErrorKind::Timeout => "command timed out",
            ZfsErrorKind::Other => "failed",
        }
    }
}

/// A failed ZFS command: which command, on which dataset, what kind of failure, what zfs said.
#[derive(Debug, Clone)]
pub struct ZfsError {
    pub kind: ZfsErrorKind,
    /// The command line, e.g. `zfs destroy tank/lxcri/containers/default-c1`.
    pub command: String,
    /// The dataset the command was about.
    pub dataset: String,
    /// What the command printed on stderr (trimmed).
    pub stderr: String,
}

impl fmt::Display for ZfsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "layerfs: dataset {:?} {} (`{}`",
            self.dataset,
            self.kind.describe(),
            self.command
        )?;
        if !self.stderr.is_empty() {
            write!(f, ": {}", self.stderr)?;
        }
        write!(f, "); {}", self.kind.hint())
    }
}

impl std::error::Error for ZfsError {}

/// Classifies what `zfs`/`zpool` printed on stderr.
pub fn classify(stderr: &str) -> ZfsErrorKind {
    let s = stderr.to_ascii_lowercase();
    if s.contains("no such pool") {
        ZfsErrorKind::PoolMissing
    } else if s.contains("failed to initialize zfs library")
        || s.contains("please make sure that the zfs-fuse daemon is running")
        || s.contains("/dev/zfs")
    {
        ZfsErrorKind::Unavailable
    } else if s.contains("does not exist") || s.contains("could not find any snapshots") {
        ZfsErrorKind::NotFound
    } else if s.contains("already exists") {
        ZfsErrorKind::AlreadyExists
    } else if s.contains("is busy") || s.contains("device busy") || s.contains("resource busy") {
        ZfsErrorKind::Busy
    } else if s.contains("has children") || s.contains("dependent clones") {
        ZfsErrorKind::HasDependents
    } else if s.contains("permission denied") || s.contains("operation not permitted") {
        ZfsErrorKind::PermissionDenied
    } else {
        ZfsErrorKind::Other
    }
}

/// Runs `zfs` and `zpool` with a timeout and classifies their errors.
#[derive(Debug, Clone)]
pub struct Runner {
    zfs: String,
    zpool: String,
    timeout: Duration,
    /// Attempts for [`Runner::run_retry_busy`].
    busy_attempts: u32,
}

impl Default for Runner {
    fn default() -> Self {
        Runner {
            zfs: "zfs".into(),
            zpool: "zpool".into(),
            timeout: Duration::from_secs(60),
            busy_attempts: 12,
        }
    }
}

impl Runner {
    /// A runner with another timeout per command.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A runner using other binaries (tests: a missing binary gives `NotInstalled`).
    pub fn with_binaries(mut self, zfs: &str, zpool: &str) -> Self {
        self.zfs = zfs.into();
        self.zpool = zpool.into();
        self
    }

    /// The `zpool` binary this runner runs (for libzetta's zpool engine).
    pub fn zpool_binary(&self) -> &str {
        &self.zpool
    }

    /// Runs `zfs ARGS` about `dataset`; returns stdout.
    pub fn zfs(&self, args: &[&str], dataset: &str) -> Result<String, ZfsError> {
        self.run(&self.zfs, args, dataset)
    }

    /// Runs `zpool ARGS` about `pool`; returns stdout.
    pub fn zpool(&self, args: &[&str], pool: &str) -> Result<String, ZfsError> {
        self.run(&self.zpool, args, pool)
    }

    /// Runs `zfs ARGS`, retrying with backoff (bounded) while it fails with `Busy` only.
    pub fn zfs_retry_busy(&self, args: &[&str], dataset: &str) -> Result<String, ZfsError> {
        let mut attempt = 0;
        loop {
            match self.zfs(args, dataset) {
                Err(e) if e.kind == ZfsErrorKind::Busy && attempt + 1 < self.busy_attempts => {
                    attempt += 1;
                    // zfs-fuse says busy for a moment after a container's last process is
                    // gone: retry soon, then back off (about 4.5 s in all).
                    let wait = Duration::from_millis(10u64 << attempt.min(6));
                    log::debug!("{e}: retry {attempt} in {wait:?}");
                    thread::sleep(wait);
                }
                other => return other,
            }
        }
    }

    fn run(&self, prog: &str, args: &[&str], dataset: &str) -> Result<String, ZfsError> {
        let command = format!("{prog} {}", args.join(" "));
        let err = |kind, stderr: String| ZfsError {
            kind,
            command: command.clone(),
            dataset: dataset.to_string(),
            stderr,
        };
        match cmd::run(prog, args, Some(self.timeout)) {
            Ok(f) if f.success() => Ok(String::from_utf8_lossy(&f.stdout).into_owned()),
            Ok(f) => {
                let stderr = String::from_utf8_lossy(&f.stderr).trim().to_string();
                Err(err(classify(&stderr), stderr))
            }
            Err(RunError::NotFound(s)) => Err(err(ZfsErrorKind::NotInstalled, s)),
            Err(RunError::Timeout(t)) => {
                Err(err(ZfsErrorKind::Timeout, format!("killed after {t:?}")))
            }
            Err(e @ RunError::Spawn(_)) => Err(err(ZfsErrorKind::Other, e.to_string())),
        }
    }

    /// `zfs get -H -o value PROP DATASET`; `None` for an unset user property (`-`).
    pub fn get(&self, dataset: &str, prop: &str) -> Result<Option<String>, ZfsError> {
        let v = self.zfs(&["get", "-H", "-o", "value", prop, dataset], dataset)?;
        let v = v.trim();
        Ok((v != "-" && !v.is_empty()).then(|| v.to_string()))
    }

    /// `zfs get -H -p -o value PROP DATASET` parsed as bytes (`used`, `referenced`...).
    pub fn get_bytes(&self, dataset: &str, prop: &str) -> Result<u64, ZfsError> {
        let v = self.zfs(&["get", "-H", "-p", "-o", "value", prop, dataset], dataset)?;
        v.trim().parse().map_err(|_| ZfsError {
            kind: ZfsErrorKind::Other,
            command: format!("zfs get -H -p -o value {prop} {dataset}"),
            dataset: dataset.into(),
            stderr: format!("expected a number of bytes, got {:?}", v.trim()),
        })
    }

    /// `zfs set PROP=VALUE DATASET` (one property per call: zfs-fuse takes no more).
    pub fn set(&self, dataset: &str, prop: &str, value: &str) -> Result<(), ZfsError> {
        self.zfs(&["set", &format!("{prop}={value}"), dataset], dataset)
            .map(drop)
    }

    /// Whether `dataset` exists.
    pub fn exists(&self, dataset: &str) -> Result<bool, ZfsError> {
        match self.zfs(&["list", "-H", "-o", "name", dataset], dataset) {
            Ok(_) => Ok(true),
            Err(e) if e.kind == ZfsErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Filesystems under `parent` (recursively, `parent` included) with the given columns, one
    /// `Vec` per dataset.
    pub fn list(&self, parent: &str, columns: &[&str]) -> Result<Vec<Vec<String>>, ZfsError> {
        let cols = columns.join(",");
        let out = self.zfs(
            &["list", "-H", "-r", "-t", "filesystem", "-o", &cols, parent],
            parent,
        )?;
        Ok(out
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split('\t').map(|c| c.trim().to_string()).collect())
            .collect())
    }

    /// Unmounts (Busy retried) then destroys `dataset` (with `-r`: its snapshots too), Busy
    /// retried with a bound. A dataset that does not exist counts as destroyed.
    pub fn destroy(&self, dataset: &str, recursive: bool) -> Result<(), ZfsError> {
        match self.zfs_retry_busy(&["unmount", dataset], dataset) {
            Ok(_) => {}
            Err(e) if e.kind == ZfsErrorKind::NotFound => return Ok(()),
            // "not currently mounted" and the like: destroy says what matters.
            Err(e) if e.kind == ZfsErrorKind::Other => {}
            Err(e) => return Err(e),
        }
        let args: &[&str] = if recursive {
            &["destroy", "-r", dataset]
        } else {
            &["destroy", dataset]
        };
        match self.zfs_retry_busy(args, dataset) {
            Ok(_) => Ok(()),
            Err(e) if e.kind == ZfsErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn classifies_zfs_fuse_and_openzfs_messages() {
        let cases = [
            ("cannot open 'p/x': dataset does not exist", ZfsErrorKind::NotFound),
            ("cannot create 'p/x': dataset already exists", ZfsErrorKind::AlreadyExists),
            ("cannot destroy 'p/x': dataset is busy", ZfsErrorKind::Busy),
            ("cannot unmount '/m': Device busy", ZfsErrorKind::Busy),
            ("cannot destroy 'p/x': filesystem has children", ZfsErrorKind::HasDependents),
            (
                "cannot destroy 'p/x@base': snapshot has dependent clones",
                ZfsErrorKind::HasDependents,
            ),
            ("cannot create 'n/x': no such pool 'n'", ZfsErrorKind::PoolMissing),
            ("cannot create 'p/x': permission denied", ZfsErrorKind::PermissionDenied),
            (
                "connect: No such file or directory\nPlease make sure that the zfs-fuse daemon is running.",
                ZfsErrorKind::Unavailable,
            ),
            ("something new", ZfsErrorKind::Other),
        ];
        for (msg, kind) in cases {
            assert_eq!(classify(msg), kind, "{msg}");
        }
    }

    #[test]
    fn a_missing_binary_is_not_installed_and_the_error_names_command_and_dataset() {
        let r = Runner::default().with_binaries("/nonexistent/zfs", "/nonexistent/zpool");
        let e = r.zfs(&["list", "tank/x"], "tank/x").unwrap_err();
        assert_eq!(e.kind, ZfsErrorKind::NotInstalled);
        let msg = e.to_string();
        assert!(msg.contains("tank/x") && msg.contains("/nonexistent/zfs list tank/x"));
        assert!(msg.contains("install"), "{msg}");
    }

    #[test]
    fn a_command_that_hangs_times_out() {
        let r = Runner::default()
            .with_binaries("/bin/sleep", "/bin/sleep")
            .with_timeout(Duration::from_millis(200));
        let start = Instant::now();
        let e = r.zfs(&["20"], "p/x").unwrap_err();
        assert_eq!(e.kind, ZfsErrorKind::Timeout);
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
