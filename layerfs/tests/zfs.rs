//! The ZFS provider against a real pool (zfs-fuse on a file). Needs root and zfs-fuse: skipped
//! with a printed reason otherwise, but failing when `CI=true`.

use integration::ZfsPool;
use layerfs::{
    ImageSource, KeepPolicy, MountSpec, RootfsProvider, RootfsRequest, ZfsConfig, ZfsErrorKind,
    ZfsProvider, ZfsProviderError,
};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A pool, a mount root and a provider on `<pool>/lxcri`; everything goes away on drop (the
/// provider first, then the pool, then the tempdir).
struct Fixture {
    provider: Option<ZfsProvider>,
    pool: Option<ZfsPool>,
    dir: tempfile::TempDir,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.provider.take();
        self.pool.take();
    }
}

impl Fixture {
    fn new() -> Option<Fixture> {
        let reason = if !nix::unistd::geteuid().is_root() {
            Some("not root")
        } else if Command::new("zfs-fuse").arg("--help").output().is_err() {
            Some("zfs-fuse not installed (scripts/setup.sh installs it)")
        } else {
            None
        };
        if let Some(r) = reason {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("layerfs ZFS tests cannot run in CI: {r}");
            }
            eprintln!("skipped: {r}");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("layerfs-test-")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let pool = ZfsPool::create();
        let cfg = ZfsConfig::new(pool.dataset("lxcri"), dir.path().join("root"));
        let provider = ZfsProvider::new(cfg).expect("provider on a fresh pool");
        Some(Fixture {
            provider: Some(provider),
            pool: Some(pool),
            dir,
        })
    }

    fn p(&self) -> &ZfsProvider {
        self.provider.as_ref().expect("provider")
    }

    fn pool(&self) -> &ZfsPool {
        self.pool.as_ref().expect("pool")
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn zfs_get(&self, ds: &str, prop: &str) -> String {
        self.pool()
            .zfs_ok(&["get", "-H", "-o", "value", prop, ds])
            .trim()
            .to_string()
    }

    /// Every filesystem under `<pool>/lxcri/<rel>` except itself.
    fn datasets_under(&self, rel: &str) -> Vec<String> {
        let parent = self.pool().dataset(&format!("lxcri/{rel}"));
        self.pool()
            .zfs_ok(&[
                "list",
                "-H",
                "-r",
                "-t",
                "filesystem",
                "-o",
                "name",
                &parent,
            ])
            .lines()
            .map(str::trim)
            .filter(|l| *l != parent && !l.is_empty())
            .map(String::from)
            .collect()
    }

    fn request(&self, id: &str) -> RootfsRequest {
        let target = self.path(&format!("bundles/{id}/rootfs"));
        fs::create_dir_all(&target).expect("bundle rootfs dir");
        RootfsRequest {
            namespace: "default".into(),
            id: id.into(),
            mounts: Vec::new(),
            target,
            ..Default::default()
        }
    }

    /// A small image directory with one file saying `tag`.
    fn image(&self, tag: &str, bytes: usize) -> ImageSource {
        let src = self.path(&format!("src-{tag}"));
        fs::create_dir_all(src.join("etc")).expect("image dir");
        fs::write(src.join("etc/tag"), tag).expect("tag");
        fs::write(src.join("data"), vec![0x5au8; bytes]).expect("data");
        ImageSource {
            chain_id: chain(tag),
            source: src,
        }
    }
}

fn chain(tag: &str) -> String {
    use sha2::Digest;
    format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(tag.as_bytes()))
    )
}

fn setxattr(path: &Path, name: &str, value: &[u8]) {
    let p = CString::new(path.as_os_str().as_bytes()).expect("path");
    let n = CString::new(name).expect("name");
    // SAFETY: valid C strings and buffer.
    let r = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(
        r,
        0,
        "setxattr {name} on {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

fn xattrs(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let p = CString::new(path.as_os_str().as_bytes()).expect("path");
    let mut names = vec![0u8; 4096];
    // SAFETY: valid C string and buffer.
    let n = unsafe { libc::llistxattr(p.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    assert!(n >= 0, "listxattr {}", path.display());
    let mut out = BTreeMap::new();
    for name in names[..n as usize]
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
    {
        let cname = CString::new(name).expect("name");
        let mut val = vec![0u8; 4096];
        // SAFETY: valid C strings and buffer.
        let len = unsafe {
            libc::lgetxattr(
                p.as_ptr(),
                cname.as_ptr(),
                val.as_mut_ptr().cast(),
                val.len(),
            )
        };
        assert!(len >= 0, "getxattr {}", path.display());
        val.truncate(len as usize);
        out.insert(String::from_utf8_lossy(name).into_owned(), val);
    }
    out
}

/// Everything a faithful copy keeps, per relative path (inode numbers as hardlink groups).
fn walk(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, PathBuf> = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let md = fs::symlink_metadata(&p).expect("lstat");
        let rel = p.strip_prefix(root).expect("under root").to_path_buf();
        let ft = md.file_type();
        let content = if ft.is_file() {
            let data = fs::read(&p).expect("read");
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&data))
        } else if ft.is_symlink() {
            fs::read_link(&p).expect("readlink").display().to_string()
        } else {
            String::new()
        };
        let link_group = if ft.is_file() && md.nlink() > 1 {
            let first = inodes.entry(md.ino()).or_insert_with(|| rel.clone());
            if rel < *first {
                *first = rel.clone();
            }
            format!("@{}@", md.ino())
        } else {
            String::new()
        };
        let mtime = if rel.as_os_str().is_empty() {
            0 // the mountpoint's own time is the dataset's
        } else {
            // zfs-fuse keeps times to the second only.
            md.mtime() * 1_000_000_000
        };
        out.insert(
            rel.clone(),
            format!(
                "mode={:o} uid={} gid={} size={} rdev={} nlink={} mtime={} content={} link={} xattrs={:?}",
                md.mode(),
                md.uid(),
                md.gid(),
                if ft.is_dir() { 0 } else { md.size() },
                md.rdev(),
                if ft.is_dir() { 0 } else { md.nlink() },
                mtime,
                content,
                link_group,
                // The root is the dataset's mountpoint: zfs-fuse gives it an ACL of its own.
                if rel.as_os_str().is_empty() {
                    BTreeMap::new()
                } else {
                    // zfs-fuse shows every directory's mode as an ACL too.
                    let mut x = xattrs(&p);
                    if ft.is_dir() {
                        x.remove("system.posix_acl_access");
                    }
                    x
                }
            ),
        );
        if ft.is_dir() {
            for e in fs::read_dir(&p).expect("readdir") {
                stack.push(e.expect("entry").path());
            }
        }
    }
    // Hardlinks named by the first path of their inode, whatever the directory order.
    for v in out.values_mut() {
        for (ino, first) in &inodes {
            *v = v.replace(&format!("@{ino}@"), &first.display().to_string());
        }
    }
    out
}

fn set_times(path: &Path, secs: i64, nsec: i64) {
    let p = CString::new(path.as_os_str().as_bytes()).expect("path");
    let ts = [
        libc::timespec {
            tv_sec: secs,
            tv_nsec: nsec,
        },
        libc::timespec {
            tv_sec: secs,
            tv_nsec: nsec,
        },
    ];
    // SAFETY: valid C string and two timespecs.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            p.as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(r, 0, "utimensat {}", path.display());
}

#[test]
fn every_special_file_kind_survives_the_base_build_and_the_clone() {
    let Some(f) = Fixture::new() else { return };
    let src = f.path("special");
    fs::create_dir_all(src.join("dir/sub")).unwrap();
    fs::write(src.join("file"), b"hello layerfs\n").unwrap();
    let suid = src.join("suid");
    fs::write(&suid, b"#!/bin/sh\n").unwrap();
    fs::set_permissions(&suid, fs::Permissions::from_mode(0o4755)).unwrap();
    fs::set_permissions(src.join("dir"), fs::Permissions::from_mode(0o2775)).unwrap();
    std::os::unix::fs::lchown(src.join("file"), Some(1234), Some(5678)).unwrap();
    std::os::unix::fs::chown(src.join("dir/sub"), Some(100), Some(101)).unwrap();
    fs::hard_link(src.join("file"), src.join("dir/hardlink")).unwrap();
    std::os::unix::fs::symlink("../file", src.join("dir/symlink")).unwrap();
    std::os::unix::fs::lchown(src.join("dir/symlink"), Some(7), Some(8)).unwrap();
    nix::unistd::mkfifo(
        &src.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .unwrap();
    nix::sys::stat::mknod(
        &src.join("null"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    let sparse = src.join("sparse");
    {
        let fh = fs::File::create(&sparse).unwrap();
        fh.set_len(32 << 20).unwrap();
        use std::os::unix::fs::FileExt;
        fh.write_all_at(b"end", (32 << 20) - 3).unwrap();
    }
    // File capability cap_net_raw+ep, VFS_CAP_REVISION_2.
    let mut cap = Vec::new();
    for w in [0x0200_0001u32, 1 << 13, 0, 0, 0] {
        cap.extend_from_slice(&w.to_le_bytes());
    }
    setxattr(&suid, "security.capability", &cap);
    setxattr(&src.join("file"), "user.layerfs", b"value");
    setxattr(&src.join("dir"), "trusted.layerfs", b"dir value");
    for (i, rel) in [
        "file",
        "suid",
        "dir/sub",
        "dir/symlink",
        "fifo",
        "null",
        "sparse",
        "dir",
    ]
    .iter()
    .enumerate()
    {
        set_times(&src.join(rel), 1_000_000_000 + i as i64 * 1000, 123_456_789);
    }

    let image = ImageSource {
        chain_id: chain("special"),
        source: src.clone(),
    };
    let req = f.request("special");
    f.p().prepare_image(&req, &image, None).expect("prepare");
    let want = walk(&src);
    let base_mp = f.path("root/images/check");
    let base = f.p().base_dataset(&image.chain_id).unwrap();
    // The base itself, mounted read-only for the check, then the clone.
    f.pool()
        .zfs_ok(&["set", &format!("mountpoint={}", base_mp.display()), &base]);
    f.pool().zfs_ok(&["mount", "-o", "ro", &base]);
    let got_base = walk(&base_mp);
    f.pool().zfs_ok(&["unmount", &base]);
    let got = walk(&req.target);
    for (name, got) in [("base", &got_base), ("clone", &got)] {
        for (k, v) in &want {
            assert_eq!(got.get(k), Some(v), "{name}: {}", k.display());
        }
        assert_eq!(got.len(), want.len(), "{name}: same entries");
    }
    let blocks = fs::symlink_metadata(req.target.join("sparse"))
        .unwrap()
        .blocks();
    assert!(
        blocks * 512 < 1 << 20,
        "sparse file takes {blocks} blocks in the clone"
    );
    assert_eq!(
        f.zfs_get(&f.p().container_dataset("default", "special"), "origin"),
        format!("{base}@base")
    );
    assert_eq!(f.zfs_get(&base, "layerfs:state"), "ready");
}

#[test]
fn two_containers_share_one_base_and_delete_destroys_the_clone() {
    let Some(f) = Fixture::new() else { return };
    let image = f.image("shared", 4096);
    let (a, b) = (f.request("a"), f.request("b"));
    let pa = f
        .p()
        .prepare_image(&a, &image, Some("64M"))
        .expect("prepare a");
    f.p().prepare_image(&b, &image, None).expect("prepare b");
    let base = f.p().base_dataset(&image.chain_id).unwrap();
    let (da, db) = (
        f.p().container_dataset("default", "a"),
        f.p().container_dataset("default", "b"),
    );
    assert_eq!(f.zfs_get(&da, "origin"), format!("{base}@base"));
    assert_eq!(f.zfs_get(&db, "origin"), format!("{base}@base"));
    assert_eq!(f.zfs_get(&da, "refquota"), "64M");
    assert_eq!(f.zfs_get(&da, "mountpoint"), a.target.display().to_string());
    assert_eq!(
        fs::read_to_string(a.target.join("etc/tag")).unwrap(),
        "shared"
    );
    fs::write(a.target.join("etc/tag"), "changed in a").unwrap();
    assert_eq!(
        fs::read_to_string(b.target.join("etc/tag")).unwrap(),
        "shared"
    );
    let bases = f.p().list_bases().unwrap();
    assert_eq!(bases.len(), 1);
    assert_eq!(
        (bases[0].dataset.as_str(), bases[0].clones.len()),
        (base.as_str(), 2)
    );
    assert!(bases[0].bytes > 0);

    // A base with clones is never destroyed, whatever the policy.
    let gc = f
        .p()
        .gc(
            KeepPolicy {
                count: 0,
                bytes: Some(0),
            },
            &|_| false,
        )
        .unwrap();
    assert!(gc.bases.is_empty(), "{gc:?}");

    f.p().release(&pa).expect("release a");
    assert!(!layerfs::is_mount_point(&a.target));
    assert_eq!(f.datasets_under("containers"), vec![db.clone()]);
    f.p().release(&pa).expect("releasing twice is fine");
    assert_eq!(f.p().list_bases().unwrap()[0].clones, vec![db.clone()]);
}

#[test]
fn ten_concurrent_prepares_of_a_new_image_build_one_base() {
    let Some(f) = Fixture::new() else { return };
    let image = f.image("concurrent", 2 << 20);
    let reqs: Vec<_> = (0..10).map(|i| f.request(&format!("c{i}"))).collect();
    let p = f.p();
    std::thread::scope(|s| {
        let handles: Vec<_> = reqs
            .iter()
            .map(|r| s.spawn(|| p.prepare_image(r, &image, None)))
            .collect();
        for h in handles {
            h.join().expect("thread").expect("prepare");
        }
    });
    let bases = f.p().list_bases().unwrap();
    assert_eq!(bases.len(), 1, "{bases:?}");
    assert_eq!(bases[0].clones.len(), 10);
    let history = f.pool().zpool_ok(&["history", f.pool().name()]);
    let builds = history
        .lines()
        .filter(|l| l.contains("zfs create") && l.contains("/.build-"))
        .count();
    assert_eq!(builds, 1, "{history}");
    for r in &reqs {
        assert_eq!(
            fs::read_to_string(r.target.join("etc/tag")).unwrap(),
            "concurrent"
        );
    }
}

#[test]
fn gc_keeps_recently_used_bases_within_the_bounds_and_removes_orphans() {
    let Some(f) = Fixture::new() else { return };
    let imgs: Vec<_> = (0..4)
        .map(|i| f.image(&format!("gc{i}"), 64 << 10))
        .collect();
    let used = f.request("user");
    f.p().prepare_image(&used, &imgs[3], None).unwrap();
    let mut bases = Vec::new();
    for (i, img) in imgs.iter().enumerate() {
        let b = f.p().ensure_base(img).unwrap();
        f.pool()
            .zfs_ok(&["set", &format!("layerfs:last-used={}", 1000 + i), &b]);
        bases.push(b);
    }
    // Unused: 0, 1, 2 (2 most recent). Keep one: 2 stays, 0 and 1 go; 3 has a clone.
    let gc = f
        .p()
        .gc(
            KeepPolicy {
                count: 1,
                bytes: None,
            },
            &|_| false,
        )
        .unwrap();
    let mut destroyed = gc.bases.clone();
    destroyed.sort();
    let mut want = vec![bases[0].clone(), bases[1].clone()];
    want.sort();
    assert_eq!(destroyed, want);
    let mut left = f.datasets_under("images");
    left.sort();
    let mut want = vec![bases[2].clone(), bases[3].clone()];
    want.sort();
    assert_eq!(left, want);

    // The bytes bound: nothing unused fits in 1 byte.
    let gc = f
        .p()
        .gc(
            KeepPolicy {
                count: 10,
                bytes: Some(1),
            },
            &|_| false,
        )
        .unwrap();
    assert_eq!(gc.bases, vec![bases[2].clone()]);

    // A container that no longer exists: its clone is an orphan, then its base is unused.
    let gc = f
        .p()
        .gc(
            KeepPolicy {
                count: 0,
                bytes: None,
            },
            &|c| c.leaf == "default-user",
        )
        .unwrap();
    assert_eq!(
        gc.containers,
        vec![f.p().container_dataset("default", "user")]
    );
    assert_eq!(gc.bases, vec![bases[3].clone()]);
    assert!(f.datasets_under("images").is_empty());
    assert!(f.datasets_under("containers").is_empty());
}

#[test]
fn a_ready_build_that_was_never_renamed_is_not_trusted_and_gc_removes_it() {
    let Some(f) = Fixture::new() else { return };
    let image = f.image("crash", 1024);
    let hex = image.chain_id.trim_start_matches("sha256:").to_string();
    // What a build killed between "state=ready" and the rename leaves.
    let build = format!("{}/.build-{hex}-dead", f.p().images());
    f.pool().zfs_ok(&["create", &build]);
    f.pool().zfs_ok(&["snapshot", &format!("{build}@base")]);
    f.pool().zfs_ok(&["set", "layerfs:state=ready", &build]);
    assert!(f.p().list_bases().unwrap().is_empty());
    let base = f.p().ensure_base(&image).unwrap();
    assert_eq!(base, f.p().base_dataset(&image.chain_id).unwrap());
    let gc = f.p().gc(f.p().keep_policy(), &|_| false).unwrap();
    assert_eq!(gc.builds, vec![build]);
    assert_eq!(f.datasets_under("images"), vec![base]);
}

/// Runs in a child process for `a_build_killed_midway_leaves_nothing_after_gc`.
#[test]
#[ignore = "helper: runs only in a child process started by another test"]
fn helper_build_in_child() {
    let (Ok(ds), Ok(root), Ok(src)) = (
        std::env::var("LAYERFS_HELPER_DATASET"),
        std::env::var("LAYERFS_HELPER_ROOT"),
        std::env::var("LAYERFS_HELPER_SRC"),
    ) else {
        return;
    };
    let p = ZfsProvider::new(ZfsConfig::new(ds, root)).expect("provider in child");
    let _ = p.ensure_base(&ImageSource {
        chain_id: chain("killed"),
        source: src.into(),
    });
}

#[test]
fn a_build_killed_midway_leaves_nothing_after_gc() {
    let Some(f) = Fixture::new() else { return };
    let src = f.path("big");
    fs::create_dir_all(&src).unwrap();
    for i in 0..400 {
        fs::write(src.join(format!("f{i}")), vec![i as u8; 128 << 10]).unwrap();
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_build_in_child",
            "--ignored",
            "--nocapture",
        ])
        .env("LAYERFS_HELPER_DATASET", &f.p().config().dataset)
        .env("LAYERFS_HELPER_ROOT", &f.p().config().mount_root)
        .env("LAYERFS_HELPER_SRC", &src)
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = child.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if f.datasets_under("images")
            .iter()
            .any(|d| d.contains("/.build-"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "the child never started a build");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child finished before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(150));
    // The child and its cp.
    // SAFETY: plain kill(2) of the process group this test started.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let _ = child.wait();
    assert!(
        f.p().list_bases().unwrap().is_empty(),
        "a killed build is not a base"
    );
    // cp may still be exiting: gc skips nothing but needs the dataset not busy (retried).
    let gc = f.p().gc(f.p().keep_policy(), &|_| true).unwrap();
    assert_eq!(gc.builds.len(), 1, "{gc:?}");
    assert!(f.datasets_under("images").is_empty());
    assert!(f.datasets_under("containers").is_empty());
}

#[test]
fn zfs_errors_are_classified_on_a_real_pool() {
    let Some(f) = Fixture::new() else { return };
    let r = f.p().runner();
    let missing = f.pool().dataset("lxcri/nope");
    assert_eq!(
        r.zfs(&["list", &missing], &missing).unwrap_err().kind,
        ZfsErrorKind::NotFound
    );
    r.destroy(&missing, false)
        .expect("destroying what is gone is done");
    let images = f.p().images();
    let e = r.zfs(&["create", &images], &images).unwrap_err();
    assert_eq!(e.kind, ZfsErrorKind::AlreadyExists);
    assert!(e.to_string().contains(&images), "{e}");
    let base = f.p().ensure_base(&f.image("deps", 10)).unwrap();
    f.p()
        .prepare_image(&f.request("dep"), &f.image("deps", 10), None)
        .unwrap();
    let e = r.zfs(&["destroy", &base], &base).unwrap_err();
    assert_eq!(e.kind, ZfsErrorKind::HasDependents, "{e}");

    let cfg = ZfsConfig::new("lxcri-no-such-pool/lxcri", f.path("other"));
    match ZfsProvider::new(cfg) {
        Err(e @ ZfsProviderError::PoolMissing { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("lxcri-no-such-pool") && msg.contains("zfs.dataset"),
                "{msg}"
            );
        }
        other => panic!("expected PoolMissing, got {other:?}"),
    }
}

fn mknod_whiteout(path: &Path) {
    nix::sys::stat::mknod(
        path,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .unwrap_or_else(|e| panic!("whiteout {}: {e}", path.display()));
}

fn overlay_mount(lowers: &[&Path], upper: Option<(&Path, &Path)>) -> MountSpec {
    let lowerdir = lowers
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    let mut options = vec!["index=off".to_string()];
    if let Some((u, w)) = upper {
        options.push(format!("workdir={}", w.display()));
        options.push(format!("upperdir={}", u.display()));
    }
    options.push(format!("lowerdir={lowerdir}"));
    MountSpec {
        kind: "overlay".into(),
        source: "overlay".into(),
        options,
    }
}

/// Mounts `m` read-only at `at`, walks it, unmounts it.
fn walk_mounted(m: &MountSpec, at: &Path) -> BTreeMap<PathBuf, String> {
    fs::create_dir_all(at).unwrap();
    let mut m = m.clone();
    m.options.push("ro".into());
    layerfs::mount::mount(&m, at).expect("mount the expected view");
    let tree = walk(at);
    layerfs::mount::unmount_all(at).unwrap();
    tree
}

#[test]
fn an_overlay_rootfs_is_a_clone_with_its_upperdir_applied_and_the_base_untouched() {
    let Some(f) = Fixture::new() else { return };
    // Two image layers: the top one deletes a file and makes a directory opaque.
    let (l1, l2) = (f.path("ov/l1"), f.path("ov/l2"));
    for d in ["etc", "opt/lower", "var/lib"] {
        fs::create_dir_all(l1.join(d)).unwrap();
    }
    for (p, c) in [
        ("etc/hosts", "hosts"),
        ("etc/old", "old"),
        ("opt/lower/f", "l1"),
        ("var/lib/db", "db"),
    ] {
        fs::write(l1.join(p), c).unwrap();
    }
    fs::create_dir_all(l2.join("etc")).unwrap();
    fs::create_dir_all(l2.join("opt")).unwrap();
    mknod_whiteout(&l2.join("etc/old"));
    setxattr(&l2.join("opt"), "trusted.overlay.opaque", b"y");
    fs::write(l2.join("opt/new"), "l2").unwrap();
    // The container's own snapshot already holds changes (what CRI or a pre-filled snapshot
    // gives): a new file, a changed file, a deleted file, an opaque directory, a file where a
    // directory was.
    let (upper, work) = (f.path("ov/upper"), f.path("ov/work"));
    fs::create_dir_all(upper.join("etc")).unwrap();
    fs::create_dir_all(upper.join("var")).unwrap();
    fs::create_dir_all(&work).unwrap();
    fs::write(upper.join("etc/hosts"), "changed by the container").unwrap();
    fs::write(upper.join("hello"), "from the upper").unwrap();
    mknod_whiteout(&upper.join("var/lib"));
    fs::create_dir_all(upper.join("opt")).unwrap();
    setxattr(&upper.join("opt"), "trusted.overlay.opaque", b"y");
    fs::write(upper.join("opt/only"), "upper").unwrap();
    let lowers = [l2.as_path(), l1.as_path()];
    let want = walk_mounted(
        &overlay_mount(&[upper.as_path(), l2.as_path(), l1.as_path()], None),
        &f.path("ov/want"),
    );

    let mut req = f.request("ov1");
    req.mounts = vec![overlay_mount(&lowers, Some((&upper, &work)))];
    req.owner = Some(f.path("ov/owner1"));
    let p1 = f.p().prepare(&req).expect("prepare with an upperdir");
    let ds1 = f.p().container_dataset("default", "ov1");
    assert_eq!(
        (p1.provider.as_str(), p1.dataset.as_deref()),
        ("zfs", Some(ds1.as_str()))
    );
    let base = f.zfs_get(&ds1, "origin");
    assert!(base.ends_with("@base"), "{base}");
    assert_eq!(
        f.zfs_get(&ds1, "layerfs:owner"),
        f.path("ov/owner1").display().to_string()
    );
    let got = walk(&req.target);
    assert_eq!(got, want, "the clone is what the overlay shows");

    // A second container of the same image with an empty upperdir: the same base, the image
    // alone (nothing of the first container's snapshot leaked into the base).
    let (upper2, work2) = (f.path("ov/upper2"), f.path("ov/work2"));
    fs::create_dir_all(&upper2).unwrap();
    fs::create_dir_all(&work2).unwrap();
    let mut req2 = f.request("ov2");
    req2.mounts = vec![overlay_mount(&lowers, Some((&upper2, &work2)))];
    let p2 = f.p().prepare(&req2).expect("prepare the second");
    let ds2 = f.p().container_dataset("default", "ov2");
    assert_eq!(f.zfs_get(&ds2, "origin"), base);
    let image_only = walk_mounted(&overlay_mount(&lowers, None), &f.path("ov/image"));
    assert_eq!(walk(&req2.target), image_only);
    assert!(!req2.target.join("hello").exists());
    assert_eq!(
        fs::read_to_string(req2.target.join("etc/hosts")).unwrap(),
        "hosts"
    );

    // Release needs nothing but the prepared rootfs (the shim's delete subcommand).
    layerfs::release(&p1).expect("release");
    layerfs::release(&p1).expect("release twice");
    assert!(!layerfs::is_mount_point(&req.target));
    assert_eq!(f.datasets_under("containers"), vec![ds2.clone()]);
    f.p().release(&p2).unwrap();
    assert!(f.datasets_under("containers").is_empty());
    // The base records its last use at release; no merged view is left mounted.
    assert_ne!(
        f.zfs_get(base.trim_end_matches("@base"), "layerfs:last-used"),
        "-"
    );
    let views: Vec<_> = fs::read_dir(f.path("root"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("merged-"))
        .collect();
    assert!(views.is_empty(), "{views:?}");
}

#[test]
fn a_bind_rootfs_is_cloned_only_with_an_image_key() {
    let Some(f) = Fixture::new() else { return };
    let snap = f.path("native/1");
    fs::create_dir_all(snap.join("etc")).unwrap();
    fs::write(snap.join("etc/tag"), "native").unwrap();
    let bind = |src: &Path| MountSpec {
        kind: "bind".into(),
        source: src.display().to_string(),
        options: vec!["rbind".into(), "rw".into()],
    };
    // Without the image's key (containerd's native snapshotter, today): mounted as it is.
    let mut req = f.request("n1");
    req.mounts = vec![bind(&snap)];
    let p = f.p().prepare(&req).unwrap();
    assert_eq!(
        (p.provider.as_str(), p.dataset.as_deref()),
        ("passthrough", None)
    );
    assert!(layerfs::is_mount_point(&req.target));
    assert_eq!(
        fs::read_to_string(req.target.join("etc/tag")).unwrap(),
        "native"
    );
    assert!(f.datasets_under("containers").is_empty());
    layerfs::release(&p).unwrap();
    assert!(!layerfs::is_mount_point(&req.target));

    // With it: a clone of the base keyed by it, shared by the next container of the image.
    let key = chain("native-image");
    let mut req = f.request("n2");
    req.mounts = vec![bind(&snap)];
    req.image_key = Some(key.clone());
    req.image_name = Some("local/native:1".into());
    let p = f.p().prepare(&req).unwrap();
    let base = f.p().base_dataset(&key).unwrap();
    assert_eq!(p.dataset, Some(f.p().container_dataset("default", "n2")));
    assert_eq!(
        f.zfs_get(p.dataset.as_ref().unwrap(), "origin"),
        format!("{base}@base")
    );
    assert_eq!(f.zfs_get(&base, "layerfs:image"), "local/native:1");
    let snap2 = f.path("native/2");
    fs::create_dir_all(&snap2).unwrap();
    let mut req2 = f.request("n3");
    req2.mounts = vec![bind(&snap2)];
    req2.image_key = Some(key);
    let p2 = f.p().prepare(&req2).unwrap();
    assert_eq!(
        fs::read_to_string(req2.target.join("etc/tag")).unwrap(),
        "native",
        "the base, not the second snapshot"
    );
    let bases = f.p().list_bases().unwrap();
    assert_eq!(bases.len(), 1);
    assert_eq!(bases[0].image.as_deref(), Some("local/native:1"));
    layerfs::release(&p).unwrap();
    layerfs::release(&p2).unwrap();
    assert!(f.datasets_under("containers").is_empty());
}

#[test]
fn quotas_owners_and_a_leftover_clone_of_the_same_id() {
    let Some(f) = Fixture::new() else { return };
    let mut cfg = f.p().config().clone();
    cfg.quota = Some("1G".into());
    let p = ZfsProvider::new(cfg).expect("a second provider on the same datasets");
    let image = f.image("quota", 1024);
    let ds = p.container_dataset("default", "q");
    let mut req = f.request("q");
    p.prepare_image(&req, &image, None).unwrap();
    assert_eq!(f.zfs_get(&ds, "refquota"), "1G", "the config's default");
    // What a crash before Delete leaves: the clone. The next container of that id gets a
    // fresh one, with its own quota ("none" overrides the default).
    fs::write(req.target.join("etc/tag"), "dirty").unwrap();
    req.quota = Some("none".into());
    req.owner = Some(f.path("owner-q"));
    let prepared = p.prepare_image(&req, &image, None).unwrap();
    assert_eq!(
        fs::read_to_string(req.target.join("etc/tag")).unwrap(),
        "quota"
    );
    assert_eq!(f.zfs_get(&ds, "refquota"), "none");
    // gc asks about each clone with its owner.
    let seen = std::sync::Mutex::new(Vec::new());
    p.gc(p.keep_policy(), &|c| {
        seen.lock().unwrap().push(c.clone());
        false
    })
    .unwrap();
    assert_eq!(
        seen.into_inner().unwrap(),
        vec![layerfs::CloneInfo {
            dataset: ds.clone(),
            leaf: "default-q".into(),
            owner: Some(f.path("owner-q")),
        }]
    );
    req.quota = Some("lots".into());
    let e = p
        .prepare_image(&f.request("q2"), &image, Some("lots"))
        .unwrap_err();
    assert!(e.to_string().contains("\"lots\""), "{e}");
    layerfs::release(&prepared).unwrap();
    assert!(f.datasets_under("containers").is_empty());
}
