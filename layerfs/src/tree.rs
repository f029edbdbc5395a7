//! Copying file trees faithfully: the base build's copy of an image, and applying a container's
//! overlay upper directory (its own changes: files, whiteouts, opaque directories) onto a clone.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Copies `src`'s contents into `dst` keeping owners, modes, xattrs, hardlinks, device nodes,
/// sparse files and timestamps (`cp -a --sparse=always`).
pub fn copy_tree(src: &Path, dst: &Path) -> Result<(), String> {
    let mut from = src.as_os_str().to_owned();
    from.push("/.");
    let args = [
        std::ffi::OsStr::new("-a"),
        std::ffi::OsStr::new("--sparse=always"),
        &from,
        dst.as_os_str(),
    ];
    match crate::cmd::run("cp", &args, None) {
        Ok(f) if f.success() => fix_modes(src, dst),
        Ok(f) => Err(String::from_utf8_lossy(&f.stderr).trim().to_string()),
        Err(e) => Err(format!("cannot run cp: {e}")),
    }
}

/// zfs-fuse stores the `system.posix_acl_access` that `cp -a` sets from a file's mode as a
/// plain xattr and keeps the mode `cp` created the file with (0600): put the source's mode back
/// and drop ACLs the source did not have.
fn fix_modes(src: &Path, dst: &Path) -> Result<(), String> {
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

fn cstr(p: &Path) -> Result<CString, String> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| format!("{}: NUL in path", p.display()))
}

/// The value of extended attribute `name` of `path` (not following symlinks), if set.
fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = cstr(path).ok()?;
    let n = CString::new(name).ok()?;
    let mut buf = vec![0u8; 256];
    // SAFETY: valid C strings and a buffer of the given size.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| {
        buf.truncate(len as usize);
        buf
    })
}

/// The names of the extended attributes of `path` (not following symlinks).
fn list_xattrs(path: &Path) -> Vec<String> {
    let Ok(p) = cstr(path) else {
        return Vec::new();
    };
    let mut buf = vec![0u8; 4096];
    // SAFETY: valid C string and a buffer of the given size.
    let len = unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if len <= 0 {
        return Vec::new();
    }
    buf[..len as usize]
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect()
}

/// Gives `dst` the access and modification times of `src` (nanoseconds kept).
fn copy_times(src: &Path, dst: &Path) -> Result<(), String> {
    let md = std::fs::symlink_metadata(src).map_err(|e| format!("{}: {e}", src.display()))?;
    let times = [
        libc::timespec {
            tv_sec: md.atime(),
            tv_nsec: md.atime_nsec(),
        },
        libc::timespec {
            tv_sec: md.mtime(),
            tv_nsec: md.mtime_nsec(),
        },
    ];
    let d = cstr(dst)?;
    // SAFETY: valid C string and two timespecs.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            d.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r != 0 {
        return Err(format!(
            "setting the times of {}: {}",
            dst.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// True when `dir` has no entries (a missing directory counts as empty).
pub fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
}

/// Removes whatever is at `path` (a directory with its contents); nothing there is fine.
fn remove_any(path: &Path) -> Result<(), String> {
    let r = match std::fs::symlink_metadata(path) {
        Ok(md) if md.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
    };
    r.map_err(|e| format!("removing {}: {e}", path.display()))
}

/// What [`apply_upper`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpperReport {
    /// Entries copied (files, directories, links...), whiteouts excluded.
    pub entries: usize,
    /// Paths deleted by a whiteout.
    pub whiteouts: Vec<PathBuf>,
    /// Directories whose lower contents an opaque upper directory hid.
    pub opaque: Vec<PathBuf>,
}

/// Applies an overlayfs upper directory onto `dst` as the overlay would show it: a whiteout
/// (character device 0:0) deletes the path, an opaque directory (`trusted.overlay.opaque=y`, or
/// `user.overlay.opaque` for `userxattr` mounts) replaces the directory's contents, a file
/// replaces a directory and the other way round, everything else is copied as by [`copy_tree`].
/// The overlay's own `trusted.overlay.*` attributes are not carried over. Directories renamed
/// with overlayfs' `redirect_dir` feature are refused: they cannot be applied faithfully.
pub fn apply_upper(upper: &Path, dst: &Path) -> Result<UpperReport, String> {
    let mut report = UpperReport::default();
    let mut copied = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let s = upper.join(&rel);
        let entries = std::fs::read_dir(&s).map_err(|e| format!("reading {}: {e}", s.display()))?;
        for e in entries {
            let e = e.map_err(|e| format!("reading {}: {e}", s.display()))?;
            let rel = rel.join(e.file_name());
            let src = upper.join(&rel);
            let d = dst.join(&rel);
            let md =
                std::fs::symlink_metadata(&src).map_err(|e| format!("{}: {e}", src.display()))?;
            let ft = md.file_type();
            if ft.is_char_device() && md.rdev() == 0 {
                remove_any(&d)?;
                report.whiteouts.push(rel);
                continue;
            }
            let dst_md = std::fs::symlink_metadata(&d).ok();
            if md.is_dir() {
                for name in ["trusted.overlay.redirect", "user.overlay.redirect"] {
                    if get_xattr(&src, name).is_some() {
                        return Err(format!(
                            "{} was renamed with overlayfs' redirect_dir feature ({name}), which \
                             cannot be applied onto a ZFS clone; mount the overlay without \
                             redirect_dir=on",
                            src.display()
                        ));
                    }
                }
                let opaque = ["trusted.overlay.opaque", "user.overlay.opaque"]
                    .iter()
                    .any(|n| get_xattr(&src, n).as_deref() == Some(b"y"));
                match dst_md {
                    Some(m) if !m.is_dir() => remove_any(&d)?,
                    Some(_) if opaque => {
                        for child in std::fs::read_dir(&d)
                            .map_err(|e| format!("reading {}: {e}", d.display()))?
                        {
                            let child =
                                child.map_err(|e| format!("reading {}: {e}", d.display()))?;
                            remove_any(&child.path())?;
                        }
                        report.opaque.push(rel.clone());
                    }
                    _ => {}
                }
                stack.push(rel.clone());
            } else if dst_md.is_some_and(|m| m.is_dir()) {
                remove_any(&d)?;
            }
            copied.push(rel);
        }
    }
    copy_tree(upper, dst)?;
    let mut touched = Vec::new();
    for rel in &report.whiteouts {
        remove_any(&dst.join(rel))?;
        let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        if !touched.contains(&parent) {
            touched.push(parent);
        }
    }
    // Removing the copied whiteouts changed their directories' times: put the upper's back.
    for rel in &touched {
        copy_times(&upper.join(rel), &dst.join(rel))?;
    }
    for rel in &copied {
        let d = dst.join(rel);
        for name in list_xattrs(&d) {
            if name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.") {
                let (p, n) = (
                    cstr(&d)?,
                    CString::new(name.as_str()).map_err(|e| e.to_string())?,
                );
                // SAFETY: valid C strings.
                unsafe { libc::lremovexattr(p.as_ptr(), n.as_ptr()) };
            }
        }
    }
    report.entries = copied.len();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn tree(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(p) = stack.pop() {
            for e in fs::read_dir(&p).unwrap() {
                let e = e.unwrap();
                let path = e.path();
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                let md = fs::symlink_metadata(&path).unwrap();
                if md.is_dir() {
                    out.push(format!("{rel}/"));
                    stack.push(path);
                } else if md.file_type().is_symlink() {
                    out.push(format!(
                        "{rel} -> {}",
                        fs::read_link(&path).unwrap().display()
                    ));
                } else {
                    out.push(format!(
                        "{rel} = {}",
                        fs::read_to_string(&path).unwrap_or_default()
                    ));
                }
            }
        }
        out.sort();
        out
    }

    fn set_opaque(dir: &Path) {
        let (p, n) = (
            cstr(dir).unwrap(),
            CString::new("trusted.overlay.opaque").unwrap(),
        );
        // SAFETY: valid C strings and buffer.
        let r = unsafe { libc::lsetxattr(p.as_ptr(), n.as_ptr(), b"y".as_ptr().cast(), 1, 0) };
        assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
    }

    #[test]
    fn whiteouts_opaque_dirs_and_type_changes_are_applied() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: whiteouts (mknod) and trusted.* xattrs need root");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let (upper, dst) = (t.path().join("upper"), t.path().join("dst"));
        for d in ["etc/keep", "opaque/old", "dir-to-file", "gone-dir/sub"] {
            fs::create_dir_all(dst.join(d)).unwrap();
        }
        for f in [
            "etc/hosts",
            "opaque/old/f",
            "opaque/lower",
            "gone",
            "file-to-dir",
        ] {
            fs::write(dst.join(f), "lower").unwrap();
        }
        fs::create_dir_all(upper.join("etc")).unwrap();
        fs::write(upper.join("etc/hosts"), "upper").unwrap();
        fs::write(upper.join("new"), "new").unwrap();
        fs::create_dir_all(upper.join("opaque")).unwrap();
        set_opaque(&upper.join("opaque"));
        fs::write(upper.join("opaque/fresh"), "fresh").unwrap();
        fs::write(upper.join("dir-to-file"), "was a dir").unwrap();
        fs::create_dir_all(upper.join("file-to-dir")).unwrap();
        std::os::unix::fs::symlink("/etc/hosts", upper.join("file-to-dir/link")).unwrap();
        for w in ["gone", "gone-dir"] {
            nix::sys::stat::mknod(
                &upper.join(w),
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::empty(),
                0,
            )
            .unwrap();
        }
        let r = apply_upper(&upper, &dst).unwrap();
        assert_eq!(
            tree(&dst),
            vec![
                "dir-to-file = was a dir",
                "etc/",
                "etc/hosts = upper",
                "etc/keep/",
                "file-to-dir/",
                "file-to-dir/link -> /etc/hosts",
                "new = new",
                "opaque/",
                "opaque/fresh = fresh",
            ]
        );
        assert_eq!(r.whiteouts.len(), 2);
        assert_eq!(r.opaque, vec![PathBuf::from("opaque")]);
        assert!(get_xattr(&dst.join("opaque"), "trusted.overlay.opaque").is_none());
    }

    #[test]
    fn empty_dirs() {
        let t = tempfile::tempdir().unwrap();
        assert!(is_empty_dir(t.path()));
        assert!(is_empty_dir(&t.path().join("missing")));
        fs::write(t.path().join("f"), "").unwrap();
        assert!(!is_empty_dir(t.path()));
    }
}
