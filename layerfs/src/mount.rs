//! Mounting containerd's mount descriptions (`type`, `source`, `options`), the way `mount(8)` and
//! containerd read them: flag options become mount flags, the rest is the filesystem's data.
//!
//! Deep images: `mount(2)` copies at most one page of filesystem data, and an overlay of 60 or
//! more layers at containerd's snapshot paths (`.../snapshots/123/fs`) has a longer `lowerdir=`.
//! Such a mount is made with the lower directories relative to their common parent directory
//! (`lowerdir=123/fs:122/fs:...`), by a short-lived thread of its own that has unshared its
//! working directory (`unshare(CLONE_FS)`) and changed into that parent: the kernel resolves the
//! relative paths there at mount time, and the working directory of the (multi-threaded) shim is
//! never touched. It is the same compaction containerd makes for runc; it works on every kernel.

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
         one page ({max}), even with the overlay's lower directories relative to their common \
         parent; an image with fewer layers, or layers stored under one directory (as \
         containerd's overlayfs snapshotter does), can be mounted"
    )]
    OptionsTooLong {
        kind: String,
        target: PathBuf,
        len: usize,
        max: usize,
    },
    #[error(
        "mount {kind} on {target} with its lower directories relative to {dir}: cannot enter \
         {dir}: {errno}"
    )]
    EnterDir {
        kind: String,
        target: PathBuf,
        dir: PathBuf,
        errno: nix::Error,
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

/// An overlay's filesystem data rewritten for a mount made from inside `dir`: every `lowerdir=`
/// entry relative to `dir`, the deepest directory that holds all their parents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactedData {
    pub dir: PathBuf,
    pub data: String,
}

/// The `lowerdir=` option of comma-separated overlay data with its entries made relative to their
/// common parent directory (`/s/snapshots/12/fs:/s/snapshots/3/fs` becomes `12/fs:3/fs` in
/// `/s/snapshots`); the other options are kept as they are. `None` when there is nothing to gain
/// or it cannot be done safely: no `lowerdir=`, a relative or escaped (`\:`) entry, an empty one
/// (a data-only layer `::`), or no common parent below `/`.
pub fn compact_lowerdirs(data: &str) -> Option<CompactedData> {
    let opts: Vec<&str> = data.split(',').collect();
    let idx = opts.iter().position(|o| o.starts_with("lowerdir="))?;
    let lowers: Vec<&str> = opts[idx]["lowerdir=".len()..].split(':').collect();
    if lowers
        .iter()
        .any(|l| !l.starts_with('/') || l.contains('\\') || l.split('/').any(|c| c == ".."))
    {
        return None;
    }
    // The common parent of the entries' parents: every relative entry keeps its last component.
    let parent = |l: &str| -> Vec<String> {
        let mut parts: Vec<String> = l
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .map(str::to_string)
            .collect();
        parts.pop();
        parts
    };
    let mut common = parent(lowers[0]);
    for l in &lowers[1..] {
        let p = parent(l);
        let same = common.iter().zip(&p).take_while(|(a, b)| a == b).count();
        common.truncate(same);
    }
    if common.is_empty() {
        return None;
    }
    let mut relative = Vec::with_capacity(lowers.len());
    for l in &lowers {
        let parts: Vec<&str> = l
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        relative.push(parts[common.len()..].join("/"));
    }
    let mut out: Vec<String> = opts.iter().map(|o| o.to_string()).collect();
    out[idx] = format!("lowerdir={}", relative.join(":"));
    Some(CompactedData {
        dir: PathBuf::from(format!("/{}", common.join("/"))),
        data: out.join(","),
    })
}

/// Runs `f` on a thread of its own whose working directory is `dir`: the thread first unshares
/// its filesystem attributes (`unshare(CLONE_FS)`), so the process's working directory, shared by
/// every other thread, does not change. The thread ends with `f`.
pub fn in_dir<T: Send>(
    dir: &Path,
    f: impl FnOnce() -> nix::Result<T> + Send,
) -> Result<nix::Result<T>, nix::Error> {
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS)?;
            nix::unistd::chdir(dir)?;
            Ok(f())
        })
        .join()
        .unwrap_or(Err(nix::Error::EFAULT))
    })
}

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
    let mut from_dir = None;
    let mut data = parsed.data.clone();
    if data.len() > MAX_DATA {
        let compacted = compact_lowerdirs(&data).filter(|c| c.data.len() <= MAX_DATA);
        let Some(c) = compacted else {
            return Err(MountError::OptionsTooLong {
                kind: m.kind.clone(),
                target: target.to_path_buf(),
                len: parsed.data.len(),
                max: MAX_DATA,
            });
        };
        log::info!(
            "layerfs: mounting {} on {} with {} lower directories relative to {} ({} bytes of \
             options instead of {})",
            m.kind,
            target.display(),
            c.data.matches(':').count() + 1,
            c.dir.display(),
            c.data.len(),
            parsed.data.len()
        );
        data = c.data;
        from_dir = Some(c.dir);
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
    let data = (!data.is_empty()).then_some(data.as_str());
    match &from_dir {
        None => sys_mount(Some(m.source.as_str()), target, kind, flags, data).map_err(err)?,
        Some(dir) => {
            // The target is resolved in `dir` too: make it absolute first.
            let target = std::path::absolute(target).map_err(|e| err(errno_of(&e)))?;
            in_dir(dir, || {
                sys_mount(Some(m.source.as_str()), &target, kind, flags, data)
            })
            .map_err(|errno| MountError::EnterDir {
                kind: m.kind.clone(),
                target: target.clone(),
                dir: dir.clone(),
                errno,
            })?
            .map_err(err)?
        }
    }
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

fn errno_of(e: &std::io::Error) -> nix::Error {
    nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EINVAL))
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
        // Relative entries cannot be compacted; entries in two trees have no common parent.
        let two_roots = (0..300)
            .map(|i| format!("/{}/snapshot-{i:04}/fs", if i % 2 == 0 { "a" } else { "b" }))
            .collect::<Vec<_>>()
            .join(":");
        for lowerdir in ["x".repeat(5000), two_roots] {
            let m = MountSpec {
                kind: "overlay".into(),
                source: "overlay".into(),
                options: vec![format!("lowerdir={lowerdir}")],
            };
            let e = mount(&m, Path::new("/nonexistent-target")).unwrap_err();
            assert!(e.to_string().contains("more than the kernel takes"), "{e}");
        }
    }

    /// containerd's overlayfs snapshotter: `<root>/snapshots/<id>/fs`, newest first.
    fn snapshot_lowers(root: &str, ids: impl Iterator<Item = u32>) -> String {
        ids.map(|i| format!("{root}/snapshots/{i}/fs"))
            .collect::<Vec<_>>()
            .join(":")
    }

    #[test]
    fn deep_lowerdirs_become_relative_to_their_common_parent() {
        let root = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs";
        let lowers = snapshot_lowers(root, (1..=127).rev());
        let data = format!("index=off,workdir={root}/snapshots/129/work,upperdir={root}/snapshots/129/fs,lowerdir={lowers},userxattr");
        assert!(data.len() > MAX_DATA, "the case must need compaction");
        let c = compact_lowerdirs(&data).expect("compacted");
        assert_eq!(c.dir, Path::new(&format!("{root}/snapshots")));
        let rel = snapshot_lowers("", (1..=127).rev()).replace("/snapshots/", "");
        assert!(
            rel.starts_with("127/fs:126/fs:") && rel.ends_with(":1/fs"),
            "{rel}"
        );
        // Only lowerdir changes: the other options keep their place and absolute paths.
        assert_eq!(
            c.data,
            format!("index=off,workdir={root}/snapshots/129/work,upperdir={root}/snapshots/129/fs,lowerdir={rel},userxattr")
        );
        assert!(c.data.len() <= MAX_DATA, "{} bytes", c.data.len());
    }

    #[test]
    fn lowerdirs_that_cannot_be_compacted_safely_are_left_alone() {
        for data in [
            "upperdir=/u,workdir=/w",       // no lowerdir
            "lowerdir=a/fs:/s/1/fs",        // a relative entry
            "lowerdir=/a/fs:/b/fs",         // no common parent below /
            "lowerdir=/s/1\\:x/fs:/s/2/fs", // an escaped colon
            "lowerdir=/s/1/fs::/s/2/fs",    // a data-only layer
            "lowerdir=/s/1/../fs:/s/2/fs",  // dot-dot
        ] {
            assert_eq!(compact_lowerdirs(data), None, "{data}");
        }
        // Entries at different depths: the parent common to all, each entry keeps a component.
        let c = compact_lowerdirs("lowerdir=/s/a/1:/s/a/b/2:/s/3").unwrap();
        assert_eq!(
            (c.dir.as_path(), c.data.as_str()),
            (Path::new("/s"), "lowerdir=a/1:a/b/2:3")
        );
    }

    #[test]
    fn in_dir_changes_only_its_own_threads_directory() {
        let before = std::env::current_dir().unwrap();
        let d = tempfile::tempdir().unwrap();
        let seen = in_dir(d.path(), nix::unistd::getcwd).unwrap().unwrap();
        assert_eq!(seen, d.path().canonicalize().unwrap());
        assert_eq!(std::env::current_dir().unwrap(), before);
        let e = in_dir(Path::new("/nonexistent-lxcri-dir"), || Ok(())).unwrap_err();
        assert_eq!(e, nix::Error::ENOENT);
    }

    /// A real overlay of 120 layers whose `lowerdir=` is longer than a page (as root; skipped
    /// otherwise): every layer's file is seen, and nothing stays mounted.
    #[test]
    fn an_overlay_deeper_than_a_page_mounts() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: mounting needs root");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        // A long parent path, as containerd's is.
        let snaps = d
            .path()
            .join("io.containerd.snapshotter.v1.overlayfs/snapshots");
        for i in 1..=120 {
            let fs = snaps.join(i.to_string()).join("fs");
            std::fs::create_dir_all(&fs).unwrap();
            std::fs::write(fs.join(format!("layer-{i}")), i.to_string()).unwrap();
            std::fs::write(fs.join("top"), i.to_string()).unwrap();
        }
        let lowers = snapshot_lowers(
            &snaps.parent().unwrap().display().to_string(),
            (1..=120).rev(),
        );
        assert!(lowers.len() > MAX_DATA);
        let target = d.path().join("merged");
        std::fs::create_dir(&target).unwrap();
        let m = MountSpec {
            kind: "overlay".into(),
            source: "overlay".into(),
            options: vec!["ro".into(), format!("lowerdir={lowers}")],
        };
        let before = std::env::current_dir().unwrap();
        mount(&m, &target).unwrap();
        let read = |f: &str| std::fs::read_to_string(target.join(f));
        let seen = (read("layer-1"), read("layer-120"), read("top"));
        unmount_all(&target).unwrap();
        assert_eq!(std::env::current_dir().unwrap(), before);
        assert_eq!(
            (seen.0.unwrap(), seen.1.unwrap(), seen.2.unwrap()),
            ("1".into(), "120".into(), "120".into())
        );
        assert!(!is_mount_point(&target));
    }
}
