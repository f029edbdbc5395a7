//! The test-image builder: layer contents, determinism, and a real containerd import.

use flate2::read::GzDecoder;
use image_core::builder::{busybox_rootfs, split_name, ImageBuilder, ImageConfigSpec};
use image_core::chainid;
use image_core::layout::Layout;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// (path, entry type, mode, link name) of every entry of a gzip layer.
fn entries(layer: &Path) -> Vec<(String, tar::EntryType, u32, Option<String>)> {
    let f = fs::File::open(layer).unwrap();
    let mut a = tar::Archive::new(GzDecoder::new(f));
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                h.entry_type(),
                h.mode().unwrap(),
                e.link_name()
                    .unwrap()
                    .map(|l| l.to_string_lossy().into_owned()),
            )
        })
        .collect()
}

#[test]
fn layer_preserves_modes_links_and_whiteouts_in_sorted_order() {
    let t = tempfile::tempdir().unwrap();
    let l = t.path().join("layer");
    fs::create_dir_all(l.join("b/sub")).unwrap();
    fs::write(l.join("b/sub/file"), "x").unwrap();
    fs::write(l.join("a.sh"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(l.join("a.sh"), fs::Permissions::from_mode(0o750)).unwrap();
    fs::hard_link(l.join("a.sh"), l.join("c-hard")).unwrap();
    std::os::unix::fs::symlink("a.sh", l.join("d-link")).unwrap();
    fs::write(l.join(".wh.gone"), "").unwrap();
    fs::create_dir(l.join("opq")).unwrap();
    fs::write(l.join("opq/.wh..wh..opq"), "").unwrap();

    let out = t.path().join("layout");
    let built = ImageBuilder::new("local/x")
        .layer_dir(&l)
        .write_layout(&out)
        .unwrap();
    assert_eq!(built.name, "local/x:latest");
    let got = entries(&blob(&out, &built.layer_digests[0]));
    let names: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        vec![
            ".wh.gone",
            "a.sh",
            "b",
            "b/sub",
            "b/sub/file",
            "c-hard",
            "d-link",
            "opq",
            "opq/.wh..wh..opq"
        ]
    );
    let find = |n: &str| got.iter().find(|e| e.0 == n).unwrap().clone();
    assert_eq!(find("a.sh").1, tar::EntryType::Regular);
    assert_eq!(find("a.sh").2, 0o750);
    assert_eq!(find("c-hard").1, tar::EntryType::Link);
    assert_eq!(find("c-hard").3.as_deref(), Some("a.sh"));
    assert_eq!(find("d-link").1, tar::EntryType::Symlink);
    assert_eq!(find("d-link").3.as_deref(), Some("a.sh"));
    assert_eq!(find("b").1, tar::EntryType::Directory);

    // diff_id is the digest of the uncompressed tar.
    let mut plain = Vec::new();
    std::io::Read::read_to_end(
        &mut GzDecoder::new(fs::File::open(blob(&out, &built.layer_digests[0])).unwrap()),
        &mut plain,
    )
    .unwrap();
    assert_eq!(built.diff_ids[0], image_core::digest::sha256(&plain));
    let uid = fs::metadata(l.join("a.sh")).unwrap().uid();
    let f = fs::File::open(blob(&out, &built.layer_digests[0])).unwrap();
    let mut a = tar::Archive::new(GzDecoder::new(f));
    for e in a.entries().unwrap() {
        assert_eq!(e.unwrap().header().uid().unwrap(), uid as u64);
    }
}

#[test]
fn fixed_mtime_builds_are_reproducible_and_chain_ids_match() {
    let t = tempfile::tempdir().unwrap();
    let (l1, l2) = (t.path().join("l1"), t.path().join("l2"));
    fs::create_dir_all(&l1).unwrap();
    fs::create_dir_all(&l2).unwrap();
    fs::write(l1.join("f"), "1").unwrap();
    fs::write(l2.join("g"), "2").unwrap();
    let b = ImageBuilder::new("local/r:1")
        .layer_dir(&l1)
        .layer_dir(&l2)
        .config(ImageConfigSpec {
            entrypoint: vec!["/bin/sh".into(), "-c".into()],
            cmd: vec!["true".into()],
            user: Some("nobody".into()),
            ..Default::default()
        })
        .fixed_mtime(0);
    let a = b.write_layout(&t.path().join("a")).unwrap();
    let c = b.write_layout(&t.path().join("c")).unwrap();
    assert_eq!(a, c);
    assert_eq!(a.layer_digests.len(), 2);
    assert_eq!(a.chain_ids, chainid::chain_ids(&a.diff_ids));
    assert_eq!(a.chain_ids[0], a.diff_ids[0]);
    let cfg: serde_json::Value =
        serde_json::from_slice(&fs::read(blob(&t.path().join("a"), &a.config_digest)).unwrap())
            .unwrap();
    assert_eq!(cfg["rootfs"]["diff_ids"], serde_json::json!(a.diff_ids));
    assert_eq!(cfg["config"]["User"], "nobody");
    assert_eq!(
        cfg["config"]["Entrypoint"],
        serde_json::json!(["/bin/sh", "-c"])
    );
    let idx: serde_json::Value =
        serde_json::from_slice(&fs::read(t.path().join("a/index.json")).unwrap()).unwrap();
    let ann = &idx["manifests"][0]["annotations"];
    assert_eq!(ann["org.opencontainers.image.ref.name"], "1");
    assert_eq!(ann["io.containerd.image.name"], "local/r:1");
    // A second write into a non-empty directory is refused, not merged.
    let e = b.write_layout(&t.path().join("a")).unwrap_err();
    assert!(e.to_string().contains("not empty"), "{e}");
    // ... and the layout already there is untouched.
    let report = Layout::open(&t.path().join("a")).unwrap().verify();
    assert!(report.is_clean(), "{}", report.problems);
}

#[test]
fn archive_of_layout_is_the_same_image() {
    let t = tempfile::tempdir().unwrap();
    let l = t.path().join("l");
    fs::create_dir_all(&l).unwrap();
    fs::write(l.join("f"), "1").unwrap();
    let b = ImageBuilder::new("local/a:latest")
        .layer_dir(&l)
        .fixed_mtime(5);
    let dir = b.write_layout(&t.path().join("d")).unwrap();
    let tar = b.write_archive(&t.path().join("a.tar")).unwrap();
    assert_eq!(dir, tar);
    // Written twice: replaced in place, still valid.
    b.write_archive(&t.path().join("a.tar")).unwrap();
    let report = Layout::open(&t.path().join("a.tar")).unwrap().verify();
    assert!(report.is_clean(), "{}", report.problems);
}

#[test]
fn bad_inputs_are_errors_naming_the_input() {
    let t = tempfile::tempdir().unwrap();
    let e = ImageBuilder::new("local/x")
        .layer_dir(t.path().join("nope"))
        .write_layout(&t.path().join("o"))
        .unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
    assert!(
        !t.path().join("o").exists(),
        "nothing is left after a failed build"
    );
    // A bad second layer is found before anything is written.
    let good = t.path().join("good");
    fs::create_dir_all(&good).unwrap();
    let e = ImageBuilder::new("local/x")
        .layer_dir(&good)
        .layer_dir(t.path().join("nope2"))
        .write_archive(&t.path().join("o.tar"))
        .unwrap_err();
    assert!(e.to_string().contains("layer 1"), "{e}");
    let left: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("good")]);
    for bad in ["", "a b", "x@sha256:00", "repo:"] {
        assert!(split_name(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        split_name("localhost:5000/x").unwrap(),
        ("localhost:5000/x:latest".to_string(), "latest".to_string())
    );
}

#[test]
fn busybox_rootfs_has_shell_and_users() {
    if !Path::new("/bin/busybox").is_file() {
        eprintln!("SKIP busybox_rootfs_has_shell_and_users: /bin/busybox missing (apt-get install busybox-static)");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    busybox_rootfs(t.path()).unwrap();
    assert_eq!(
        fs::read_link(t.path().join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert!(fs::read_to_string(t.path().join("etc/passwd"))
        .unwrap()
        .contains("nobody:x:65534"));
    assert!(fs::read_to_string(t.path().join("etc/group"))
        .unwrap()
        .starts_with("root:x:0:"));
    for d in ["proc", "sys", "dev"] {
        assert!(t.path().join(d).is_dir());
    }
    assert_eq!(
        fs::metadata(t.path().join("tmp"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o1777
    );
    // Idempotent: a second run over the same directory works.
    busybox_rootfs(t.path()).unwrap();
}

/// A private containerd, stopped and removed on drop.
struct Containerd {
    child: Child,
    sock: PathBuf,
    _dir: tempfile::TempDir,
    _sockdir: tempfile::TempDir,
}

impl Containerd {
    fn start() -> Containerd {
        let dir = tempfile::tempdir().unwrap();
        let sockdir = tempfile::Builder::new()
            .prefix("lxcri-b")
            .tempdir_in("/tmp")
            .unwrap();
        let sock = sockdir.path().join("c.sock");
        let cfg = dir.path().join("config.toml");
        fs::write(
            &cfg,
            format!(
                "version = 2\nroot = \"{0}/root\"\nstate = \"{1}/state\"\n[grpc]\n  address = \"{2}\"\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  restrict_oom_score_adj = true\n",
                dir.path().display(),
                sockdir.path().display(),
                sock.display()
            ),
        )
        .unwrap();
        let log = fs::File::create(dir.path().join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let c = Containerd {
            child,
            sock,
            _dir: dir,
            _sockdir: sockdir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if c.sock.exists() && c.ctr(&["version"]).status.success() {
                return c;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("containerd did not come up on {}", c.sock.display());
    }

    fn ctr(&self, args: &[&str]) -> std::process::Output {
        Command::new("ctr")
            .arg("-a")
            .arg(&self.sock)
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.ctr(&["tasks", "kill", "-s", "SIGKILL", "t1"]);
        let _ = self.ctr(&["containers", "rm", "t1"]);
        terminate(self.child.id());
        let _ = self.child.wait();
        // Unmount anything containerd left under its root (overlay snapshots).
        if let Ok(mounts) = fs::read_to_string("/proc/self/mounts") {
            let root = self._dir.path().to_string_lossy().into_owned();
            for line in mounts.lines() {
                if let Some(mp) = line.split(' ').nth(1) {
                    if mp.starts_with(&root) {
                        let _ = Command::new("umount").arg("-l").arg(mp).status();
                    }
                }
            }
        }
    }
}

fn terminate(pid: u32) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    std::thread::sleep(Duration::from_millis(300));
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn busybox_archive_imports_into_containerd_and_runs() {
    let ci = std::env::var("CI").as_deref() == Ok("true");
    let is_root = fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    if !is_root {
        eprintln!("SKIP busybox_archive_imports_into_containerd_and_runs: needs root");
        return;
    }
    for tool in ["containerd", "ctr", "runc"] {
        if !have(tool) {
            assert!(
                !ci,
                "CI=true but {tool} is missing: install containerd and runc"
            );
            eprintln!("SKIP busybox_archive_imports_into_containerd_and_runs: {tool} missing");
            return;
        }
    }
    if !Path::new("/bin/busybox").is_file() {
        assert!(
            !ci,
            "CI=true but /bin/busybox is missing: install busybox-static"
        );
        eprintln!("SKIP: /bin/busybox missing");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let rootfs = t.path().join("rootfs");
    busybox_rootfs(&rootfs).unwrap();
    let tar = t.path().join("busybox.tar");
    let built = ImageBuilder::new("local/busybox:latest")
        .layer_dir(&rootfs)
        .config(ImageConfigSpec {
            cmd: vec!["/bin/sh".into()],
            ..Default::default()
        })
        .write_archive(&tar)
        .unwrap();
    let report = Layout::open(&tar).unwrap().verify();
    assert!(report.is_clean(), "{}", report.problems);

    let c = Containerd::start();
    let out = c.ctr(&["images", "import", tar.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = c.ctr(&["images", "ls", "-q"]);
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(listed.lines().any(|l| l == built.name), "images: {listed}");
    let out = c.ctr(&[
        "run",
        "--rm",
        "--runtime",
        "io.containerd.runc.v2",
        &built.name,
        "t1",
        "/bin/sh",
        "-c",
        "echo hi",
    ]);
    assert!(
        out.status.success(),
        "run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hi");
    // What containerd exports again is a layout lxcri reads and finds clean.
    let exported = t.path().join("exported.tar");
    let out = c.ctr(&["images", "export", exported.to_str().unwrap(), &built.name]);
    assert!(
        out.status.success(),
        "export: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let layout = Layout::open(&exported).unwrap();
    let report = layout.verify();
    assert!(report.is_clean(), "{}", report.problems);
    let images = layout.images().unwrap();
    assert!(
        images
            .iter()
            .any(|i| i.manifest_digest == built.manifest_digest && i.chain_ids == built.chain_ids),
        "{images:?}"
    );
    // containerd's snapshot of the image is named by the top chain ID.
    let out = c.ctr(&["snapshots", "ls"]);
    let snaps = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        snaps.contains(built.chain_ids.last().unwrap()),
        "snapshots: {snaps}"
    );
}
