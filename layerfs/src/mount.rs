//! Mounting containerd's mount descriptions (`type`, `source`, `options`), the way `mount(8)` and
//! containerd read them: flag options become mount flags, the rest is the filesystem's data.

use nix::mount::{mount as sys_mount, umount2, MntFlags, MsFlags};
use std::path::{Path, PathBuf};

/// One mount as containerd describes it (its `types.Mount`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MountSpec {
    /// Filesystem type: `overlay`, `bind`, `tmpfs`, ...
    pub kind: String,
    pub source: String,
    pub options: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("mount {kind} {source_path} on {target}: {errno} (options {options:?})")]
    Mount {
        kind: String,
        source_path: String,
        target: PathBuf,
        options: Vec<String>,
        errno: nix::Error,
    },
    #[error("unmount {target}: {errno}; something still uses it (see `fuser -m {target}`)")]
    Unmount { target: PathBuf, errno: nix::Error },
    #[error(
        "mount {kind} on {target}: its options are {len} bytes, more than the kernel takes in \
         one page ({max}); an image with this many layers is not supported yet"
    )]
    OptionsTooLong {
        kind: String,
        target: PathBuf,
        len: usize,
        max: usize,
    },
}

/// Flags and data from a list of mount options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedOptions {
    pub flags: MsFlags,
    /// Propagation flags (applied with a second mount call, as the kernel requires).
    pub propagation: MsFlags,
    /// Comma-separated filesystem data.
    pub data: String,
}

/// Splits mount options into flags, propagation and filesystem data.
pub fn parse_options(options: &[String]) -> ParsedOptions {
    let mut flags = MsFlags::empty();
    let mut propagation = MsFlags::empty();
    let mut data: Vec<&str> = Vec::new();
    for opt in options {
        let (set, clear) = match opt.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                propagation |= match opt.as_str() {
                    "private" => MsFlags::MS_PRIVATE,
                    "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
                    "shared" => MsFlags::MS_SHARED,
                    "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
                    "slave" => MsFlags::MS_SLAVE,
                    "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
                    "unbindable" => MsFlags::MS_UNBINDABLE,
                    _ => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
                };
                continue;
            }
            other => {
                data.push(other);
                continue;
            }
        };
        flags.insert(set);
        flags.remove(clear);
    }
    ParsedOptions {
        flags,
        propagation,
        data: data.join(","),
    }
}

/// The most the kernel copies of mount data: one page, with its terminating NUL.
const MAX_DATA: usize = 4095;

/// Mounts `m` on `target`.
pub fn mount(m: &MountSpec, target: &Path) -> Result<(), MountError> {
    let parsed = parse_options(&m.options);
    let err = |errno| MountError::Mount {
        kind: m.kind.clone(),
        source_path: m.source.clone(),
        target: target.to_path_buf(),
        options: m.options.clone(),
        errno,
    };
    if parsed.data.len() > MAX_DATA {
        return Err(MountError::OptionsTooLong {
            kind: m.kind.clone(),
            target: target.to_path_buf(),
            len: parsed.data.len(),
            max: MAX_DATA,
        });
    }
    let mut flags = parsed.flags;
    let kind = if m.kind == "bind" || m.kind == "rbind" {
        flags |= MsFlags::MS_BIND;
        if m.kind == "rbind" {
            flags |= MsFlags::MS_REC;
        }
        None
    } else {
        Some(m.kind.as_str())
    };
    let data = (!parsed.data.is_empty()).then_some(parsed.data.as_str());
    sys_mount(Some(m.source.as_str()), target, kind, flags, data).map_err(err)?;
    // A bind mount ignores MS_RDONLY (and the other per-mount flags) on the first call: remount.
    let bind_flags =
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if flags.contains(MsFlags::MS_BIND) && flags.intersects(bind_flags) {
        let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | (flags & bind_flags);
        if let Err(e) = sys_mount(None::<&str>, target, None::<&str>, remount, None::<&str>) {
            let _ = umount2(target, MntFlags::MNT_DETACH);
            return Err(err(e));
        }
    }
    if !parsed.propagation.is_empty() {
        if let Err(e) = sys_mount(
            None::<&str>,
            target,
            None::<&str>,
            parsed.propagation,
            None::<&str>,
        ) {
            let _ = umount2(target, MntFlags::MNT_DETACH);
            return Err(err(e));
        }
    }
    Ok(())
}

/// Unmounts the top mount at `target`. Not mounted counts as done.
pub fn unmount(target: &Path) -> Result<(), MountError> {
    let mut delay = std::time::Duration::from_millis(5);
    for _ in 0..8 {
        match umount2(target, MntFlags::empty()) {
            Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => return Ok(()),
            Err(nix::Error::EBUSY) => {
                std::thread::sleep(delay);
                delay *= 2;
            }
            Err(errno) => {
                return Err(MountError::Unmount {
                    target: target.to_path_buf(),
                    errno,
                })
            }
        }
    }
    // Still busy after ~1.3 s: detach it so that nothing stays visible, and say so.
    umount2(target, MntFlags::MNT_DETACH).map_err(|errno| MountError::Unmount {
        target: target.to_path_buf(),
        errno,
    })
}

/// Unmounts every mount stacked at `target` (and below it), deepest first.
pub fn unmount_all(target: &Path) -> Result<(), MountError> {
    let mut points = mounts_under(target);
    points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    for p in points {
        unmount(&p)?;
    }
    // Stacked mounts on the same point: unmount until it is no longer a mount point.
    for _ in 0..16 {
        if !is_mount_point(target) {
            break;
        }
        unmount(target)?;
    }
    Ok(())
}

fn unescape_mountinfo(s: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points strictly below `target`, from /proc/self/mountinfo.
fn mounts_under(target: &Path) -> Vec<PathBuf> {
    mount_points()
        .into_iter()
        .filter(|p| p != target && p.starts_with(target))
        .collect()
}

/// All mount points of this mount namespace.
pub fn mount_points() -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .collect()
}

/// Whether `path` is a mount point.
pub fn is_mount_point(path: &Path) -> bool {
    mount_points().iter().any(|p| p == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn overlay_options_are_data() {
        let p = parse_options(&opts(&[
            "index=off",
            "workdir=/w",
            "upperdir=/u",
            "lowerdir=/l1:/l2",
        ]));
        assert_eq!(p.flags, MsFlags::empty());
        assert_eq!(p.data, "index=off,workdir=/w,upperdir=/u,lowerdir=/l1:/l2");
    }

    #[test]
    fn bind_flags_and_propagation() {
        let p = parse_options(&opts(&["rbind", "ro", "nosuid", "rslave"]));
        assert!(p.flags.contains(
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID
        ));
        assert_eq!(p.propagation, MsFlags::MS_SLAVE | MsFlags::MS_REC);
        assert_eq!(p.data, "");
    }

    #[test]
    fn later_options_win() {
        let p = parse_options(&opts(&["ro", "rw"]));
        assert!(!p.flags.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo(r"/a\040b"), "/a b");
        assert_eq!(unescape_mountinfo(r"/plain"), "/plain");
        assert_eq!(unescape_mountinfo(r"/trail\04"), r"/trail\04");
    }

    #[test]
    fn too_long_options_are_refused_before_mounting() {
        let m = MountSpec {
            kind: "overlay".into(),
            source: "overlay".into(),
            options: vec![format!("lowerdir={}", "x".repeat(5000))],
        };
        let e = mount(&m, Path::new("/nonexistent-target")).unwrap_err();
        assert!(e.to_string().contains("more than the kernel takes"), "{e}");
    }
}
