//! Container root filesystems as ZFS clones, as a user sees them with `ctr`, `zfs list` and
//! `zfs get`: a real containerd (1.6, 1.7, 2.1), a real pool (on a file; zfs-fuse here, the
//! kernel's OpenZFS in the VM lane, scripts/vm) and a config
//! file with a `[zfs]` table handed to the shim with `--runtime-config-path`.

use integration::{assert_clean, ctr_run_rm, kill_shim_of, require_root_or_skip};
use integration::{
    kernel_zfs, Containerd, ContainerdOptions, ContainerdVersion, ZfsPool, NAMESPACE,
};
use integration::{stderr, stdout, unique_id};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const RUNTIME: &str = "io.containerd.lxcri.v2";

integration::per_containerd_version!(
    rootfs_is_a_clone_and_containers_of_one_image_share_its_base,
    lifecycle_with_the_overlayfs_snapshotter,
    lifecycle_with_the_native_snapshotter,
    delete_after_a_shim_crash_destroys_the_clone,
    gc_honours_the_keep_policy_and_removes_orphans,
    a_configured_pool_that_is_missing_fails_create_and_leaves_nothing,
    three_layers_with_whiteouts_give_the_tree_runc_sees,
    a_100_layer_image_gets_a_base_from_its_merged_layers,
);

/// A pool, a mount root and the lxcri config enabling ZFS on `<pool>/lxcri`.
struct Zfs {
    pool: ZfsPool,
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Zfs {
    /// `extra` is appended to the `[zfs]` table. Start-up collection is off unless `extra` sets
    /// `gc_interval_secs`: the tests call `lxcri layers gc` themselves.
    fn new(extra: &str) -> Zfs {
        let pool = ZfsPool::create();
        let dir = tempfile::Builder::new()
            .prefix("lxcri-zfs-cfg-")
            .tempdir_in("/tmp")
            .unwrap();
        let config = dir.path().join("lxcri.toml");
        let interval = if extra.contains("gc_interval_secs") {
            ""
        } else {
            "gc_interval_secs = 0\n"
        };
        std::fs::write(
            &config,
            format!(
                "[zfs]\ndataset = \"{}\"\nmount_root = \"{}\"\n{interval}{extra}\n",
                pool.dataset("lxcri"),
                dir.path().join("zfs").display()
            ),
        )
        .unwrap();
        Zfs { pool, dir, config }
    }

    fn config(&self) -> String {
        self.config.display().to_string()
    }

    /// `<pool>/lxcri/<rel>`.
    fn ds(&self, rel: &str) -> String {
        self.pool.dataset(&format!("lxcri/{rel}"))
    }

    /// The clone dataset of container `id`.
    fn clone_of(&self, id: &str) -> String {
        self.ds(&format!("containers/{NAMESPACE}-{id}"))
    }

    /// `zfs get -H -o value PROP DS`.
    fn get(&self, ds: &str, prop: &str) -> String {
        self.pool
            .zfs_ok(&["get", "-H", "-o", "value", prop, ds])
            .trim()
            .to_string()
    }

    /// The datasets below `<pool>/lxcri/<rel>` (`zfs list -r`), itself excluded.
    fn children(&self, rel: &str) -> Vec<String> {
        let parent = self.ds(rel);
        let out = self.pool.zfs(&[
            "list",
            "-H",
            "-r",
            "-t",
            "filesystem",
            "-o",
            "name",
            &parent,
        ]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && *l != parent)
            .map(String::from)
            .collect()
    }

    /// Waits (polling `zfs list`) until no container clone is left; panics with `what` and the
    /// clones after `limit`.
    fn wait_no_clones(&self, what: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let left = self.children("containers");
            if left.is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: {left:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `lxcri layers ARGS --config <ours>`.
    fn layers(&self, args: &[&str]) -> Output {
        let out = Command::new(integration::shim_dir().join("lxcri"))
            .arg("layers")
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()
            .expect("run lxcri");
        assert!(
            out.status.success(),
            "lxcri layers {args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        out
    }
}

/// The scenario set-up of this file: a pool and a config, then containerd `v` with busybox; at
/// the end (containerd gone, so every container too) no clone, build or merged view is left.
fn run(v: ContainerdVersion, scenario: fn(&Containerd, &Zfs)) {
    if !require_root_or_skip() {
        return;
    }
    let z = Zfs::new("");
    let cd = Containerd::start(v);
    cd.import_busybox();
    scenario(&cd, &z);
    drop(cd);
    if !std::thread::panicking() {
        assert_eq!(
            z.children("containers"),
            Vec::<String>::new(),
            "clones left"
        );
        let builds: Vec<_> = z
            .children("images")
            .into_iter()
            .filter(|d| d.contains("/.build-"))
            .collect();
        assert!(builds.is_empty(), "builds left: {builds:?}");
        let root = z.dir.path().join("zfs");
        let views: Vec<_> = std::fs::read_dir(&root)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("merged-"))
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            views.is_empty(),
            "merged views left in {}: {views:?}",
            root.display()
        );
    }
}

/// A container started with `ctr run -d` (ZFS config, `flags`), removed on drop even when the
/// scenario panics.
struct Running<'a> {
    cd: &'a Containerd,
    id: String,
}

impl<'a> Running<'a> {
    fn start(cd: &'a Containerd, z: &Zfs, prefix: &str, flags: &[&str], image: &str) -> Self {
        let id = unique_id(prefix);
        let cfg = z.config();
        let mut args = vec![
            "run",
            "-d",
            "--runtime",
            RUNTIME,
            "--runtime-config-path",
            &cfg,
        ];
        args.extend(flags);
        args.extend([image, &id, "sleep", "300"]);
        cd.ctr_ok(&args);
        Running { cd, id }
    }

    fn exec(&self, exec_id: &str, cmd: &[&str]) -> Output {
        let mut args = vec!["task", "exec", "--exec-id", exec_id, &self.id];
        args.extend(cmd);
        self.cd.ctr(&args)
    }

    /// kill, delete, rm, each of which must work; then nothing of it is left.
    fn remove(self) {
        self.cd.kill_delete_rm(&self.id);
        assert_clean(&self.id);
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.cd.remove_container(&self.id);
    }
}

/// `ctr run --rm` with the ZFS config.
fn run_rm(cd: &Containerd, z: &Zfs, flags: &[&str], image: &str, id: &str, cmd: &[&str]) -> Output {
    let cfg = z.config();
    let mut args = vec![
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        "--runtime-config-path",
        &cfg,
    ];
    args.extend(flags);
    args.extend([image, id]);
    args.extend(cmd);
    cd.ctr(&args)
}

/// Where containerd mounts a container's rootfs (its bundle).
fn bundle_rootfs(cd: &Containerd, id: &str) -> PathBuf {
    cd.state()
        .join("io.containerd.runtime.v2.task")
        .join(NAMESPACE)
        .join(id)
        .join("rootfs")
}

/// `<pool>/lxcri/images/<64 hex>@base`.
fn assert_is_base_snapshot(z: &Zfs, origin: &str) {
    let hex = origin
        .strip_prefix(&format!("{}/", z.ds("images")))
        .and_then(|r| r.strip_suffix("@base"))
        .unwrap_or_else(|| panic!("origin {origin:?} is not an image base's @base"));
    assert!(
        hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{origin}"
    );
}

fn rootfs_is_a_clone_and_containers_of_one_image_share_its_base(cd: &Containerd, z: &Zfs) {
    let image = integration::BUSYBOX_REF;
    let a = Running::start(cd, z, "zc", &[], image);
    let b = Running::start(
        cd,
        z,
        "zc",
        &["--annotation", "io.lxcri.zfs.quota=64M"],
        image,
    );
    let (ca, cb) = (z.clone_of(&a.id), z.clone_of(&b.id));
    let origin = z.get(&ca, "origin");
    assert_is_base_snapshot(z, &origin);
    assert_eq!(z.get(&cb, "origin"), origin, "one base for both");
    assert_eq!(z.children("images").len(), 1, "{:?}", z.children("images"));
    assert_eq!(
        z.get(&ca, "mountpoint"),
        bundle_rootfs(cd, &a.id).display().to_string()
    );
    assert_eq!(z.get(&ca, "refquota"), "none");
    assert_eq!(z.get(&cb, "refquota"), "64M", "the annotation's quota");
    assert_eq!(z.get(&ca, "canmount"), "noauto");
    let owner = z.get(&ca, "layerfs:owner");
    assert!(
        owner.ends_with(&format!("/{NAMESPACE}/{}", a.id)) && Path::new(&owner).is_dir(),
        "owner {owner}"
    );
    // Inside the container, / is the clone.
    let o = a.exec(
        "root",
        &[
            "awk",
            // After the optional fields (shared:N where mounts propagate) comes " - TYPE SOURCE".
            "$5 == \"/\" { for (i = 7; $i != \"-\"; i++) ; print $(i + 1), $(i + 2) }",
            "/proc/self/mountinfo",
        ],
    );
    assert_eq!(
        stdout(&o).trim(),
        format!("{} {ca}", z.pool.fs_type()),
        "{}",
        stderr(&o)
    );
    // Each container writes to its own clone, never to the base or the other.
    assert!(a
        .exec("w", &["sh", "-c", "echo a > /etc/mine"])
        .status
        .success());
    let o = b.exec(
        "r",
        &["sh", "-c", "cat /etc/mine 2>/dev/null || echo absent"],
    );
    assert_eq!(stdout(&o), "absent\n");
    let ls = stdout(&z.layers(&["ls"]));
    let base_line = ls
        .lines()
        .find(|l| l.contains(origin.trim_end_matches("@base")))
        .unwrap_or_else(|| panic!("lxcri layers ls does not list the base:\n{ls}"));
    assert_eq!(
        base_line.split_whitespace().nth(3),
        Some("2"),
        "two clones:\n{ls}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&z.layers(&["ls", "--json"]).stdout).expect("layers ls --json");
    let mut clones: Vec<String> = json[0]["clones"]
        .as_array()
        .expect("clones")
        .iter()
        .map(|c| c.as_str().unwrap_or_default().to_string())
        .collect();
    clones.sort();
    let mut want = vec![ca.clone(), cb.clone()];
    want.sort();
    assert_eq!(clones, want);

    // Delete destroys the clone, and only it; the base stays for the next container.
    let (ida, idb) = (a.id.clone(), b.id.clone());
    a.remove();
    assert_eq!(z.children("containers"), vec![cb.clone()]);
    b.remove();
    assert!(z.children("containers").is_empty());
    assert_eq!(z.children("images").len(), 1);
    assert!(!bundle_rootfs(cd, &ida).exists() || !is_mounted(&bundle_rootfs(cd, &ida)));
    assert!(!is_mounted(&bundle_rootfs(cd, &idb)));
}

fn is_mounted(p: &Path) -> bool {
    integration::process::mount_points()
        .iter()
        .any(|m| Path::new(m) == p)
}

/// The basic ctr scenarios with ZFS on: `run --rm` with output and exit status, `run -d` + exec +
/// kill + delete. `clone` says whether the rootfs is expected to be a clone.
fn lifecycle(cd: &Containerd, z: &Zfs, flags: &[&str], clone: bool) {
    let image = integration::BUSYBOX_REF;
    let id = unique_id("zrm");
    let o = run_rm(
        cd,
        z,
        flags,
        image,
        &id,
        &["sh", "-c", "echo out; echo err >&2; exit 42"],
    );
    assert_eq!(o.status.code(), Some(42), "{}", stderr(&o));
    assert_eq!(stdout(&o), "out\n");
    assert!(stderr(&o).contains("err"));
    assert_clean(&id);
    assert!(z.children("containers").is_empty());

    let c = Running::start(cd, z, "zd", flags, image);
    let datasets = z.children("containers");
    if clone {
        assert_eq!(datasets, vec![z.clone_of(&c.id)]);
    } else {
        assert!(datasets.is_empty(), "{datasets:?}");
    }
    let o = c.exec("e1", &["sh", "-c", "echo in; exit 7"]);
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(7), "in\n"));
    let o = c.exec("e2", &["sh", "-c", "touch /made-here && ls /made-here"]);
    assert!(o.status.success(), "{}", stderr(&o));
    c.remove();
    assert!(z.children("containers").is_empty());
}

fn lifecycle_with_the_overlayfs_snapshotter(cd: &Containerd, z: &Zfs) {
    lifecycle(cd, z, &["--snapshotter", "overlayfs"], true);
    assert_eq!(z.children("images").len(), 1);
}

/// containerd's native snapshotter gives each container a private full copy of the image as a
/// bind mount; without the image's chain id lxcri cannot share it as a base and mounts it as it
/// is (docs/zfs.md), saying so in the log.
fn lifecycle_with_the_native_snapshotter(cd: &Containerd, z: &Zfs) {
    // containerd names the image (lxcri rootfs identify), so the native snapshotter's full copy
    // becomes a base keyed by the image's chain id, and the container a clone of it.
    lifecycle(cd, z, &["--snapshotter", "native"], true);
    // The image's one layer is the committed snapshot whose name is its chain id.
    let snaps = cd.ctr_ok(&["snapshots", "--snapshotter", "native", "ls"]);
    let chain = snaps
        .lines()
        .find(|l| l.contains("Committed"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|k| k.strip_prefix("sha256:"))
        .unwrap_or_else(|| panic!("no committed snapshot: {snaps}"))
        .to_string();
    assert_eq!(
        z.children("images"),
        vec![z.ds(&format!("images/{chain}"))],
        "one base, named by the image's chain id"
    );
}

fn delete_after_a_shim_crash_destroys_the_clone(cd: &Containerd, z: &Zfs) {
    let c = Running::start(cd, z, "zcrash", &[], integration::BUSYBOX_REF);
    let clone = z.clone_of(&c.id);
    assert_eq!(z.children("containers"), vec![clone]);
    kill_shim_of(&c.id);
    // containerd runs `containerd-shim-lxcri-v2 delete`: a new process with the saved state
    // only, which must still destroy the clone.
    cd.force_delete_task(&c.id, Duration::from_secs(20));
    let _ = cd.ctr(&["container", "rm", &c.id]);
    // containerd's clean-up after the lost shim runs on its own: give it a moment.
    z.wait_no_clones(
        "the delete subcommand left the clone",
        Duration::from_secs(15),
    );
    assert_clean(&c.id);
}

/// 1.6 and 1.7 only: Debian's containerd 2.1.9 is built without the zfs snapshotter (`ctr
/// plugins ls` does not list it at all).
mod containerds_zfs_snapshotter_gives_lxcri_a_zfs_rootfs {
    use integration::ContainerdVersion::*;
    #[test]
    fn v1_6() {
        super::containerds_zfs_snapshotter_gives_lxcri_a_zfs_rootfs(V1_6)
    }
    #[test]
    fn v1_7() {
        super::containerds_zfs_snapshotter_gives_lxcri_a_zfs_rootfs(V1_7)
    }
}

/// containerd's own zfs snapshotter (no `[zfs]` in lxcri's config): containerd hands the shim a
/// rootfs mount of type `zfs` (its active snapshot, a clone), lxcri mounts it, the container runs
/// on it and writes to it, and `ctr run --rm` leaves no dataset behind. Only on the kernel's
/// OpenZFS: containerd skips the plugin on zfs-fuse (mount type `fuse.zfs`), so on the dev and
/// CI hosts this is meaningless and skipped; the VM lane (scripts/vm) runs it.
fn containerds_zfs_snapshotter_gives_lxcri_a_zfs_rootfs(v: ContainerdVersion) {
    if !require_root_or_skip() {
        return;
    }
    if !kernel_zfs() {
        eprintln!(
            "SKIPPED: containerd's zfs snapshotter needs the kernel's OpenZFS (it skips itself on \
             zfs-fuse); the VM lane runs this test (scripts/vm/lane.sh)"
        );
        return;
    }
    let pool = ZfsPool::create();
    let ds = pool.dataset("containerd");
    let cd = Containerd::start_with(
        v,
        ContainerdOptions {
            zfs_snapshotter: Some(ds.clone()),
            ..ContainerdOptions::default()
        },
    );
    let plugins = cd.ctr_ok(&["plugins", "ls"]);
    assert!(
        plugins.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() >= 4 && f[0] == "io.containerd.snapshotter.v1" && f[1] == "zfs" && f[3] == "ok"
        }),
        "{v}: the zfs snapshotter did not load:\n{plugins}"
    );
    let image = cd.import_busybox();
    let datasets = || {
        let mut l: Vec<String> = pool
            .zfs_ok(&["list", "-H", "-o", "name", "-r", &ds])
            .lines()
            .map(String::from)
            .collect();
        l.sort();
        l
    };
    let mut after_first = None;
    for round in 0..2 {
        let id = unique_id("zsnap");
        let o = cd.ctr(&[
            "run",
            "--rm",
            "--snapshotter",
            "zfs",
            "--runtime",
            RUNTIME,
            &image,
            &id,
            "sh",
            "-c",
            "awk '$5 == \"/\" { for (i = 7; $i != \"-\"; i++) ; print $(i + 1), $(i + 2) }' \
             /proc/self/mountinfo; echo w > /written && cat /written",
        ]);
        assert!(o.status.success(), "{v}: {}", stderr(&o));
        let out = stdout(&o);
        let mut lines = out.lines();
        let root = lines.next().unwrap_or_default();
        assert!(
            root.starts_with(&format!("zfs {ds}/")),
            "{v}: / of the container is {root:?}, not a dataset below {ds}"
        );
        assert_eq!(lines.next(), Some("w"), "{v}: {out}");
        assert_clean(&id);
        // The first run unpacked the image into datasets (one per committed snapshot). containerd
        // removes the container's own dataset in its garbage collection, after `ctr run --rm`
        // has returned: wait until only the committed ones are left.
        let committed = || {
            cd.ctr_ok(&["snapshots", "--snapshotter", "zfs", "ls"])
                .lines()
                .filter(|l| l.split_whitespace().last() == Some("Committed"))
                .count()
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        let now = loop {
            let now = datasets();
            if now.len() == 1 + committed() || Instant::now() >= deadline {
                break now;
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        assert_eq!(
            now.len(),
            1 + committed(),
            "{v}: round {round}: the container's dataset was not removed: {now:?}"
        );
        match &after_first {
            None => after_first = Some(now),
            Some(first) => assert_eq!(&now, first, "{v}: round {round} left datasets"),
        }
    }
}

mod a_shim_killed_during_create_leaves_nothing {
    use integration::ContainerdVersion::*;
    #[test]
    fn v1_6() {
        super::a_shim_killed_during_create_leaves_nothing(V1_6)
    }
    #[test]
    fn v1_7() {
        super::a_shim_killed_during_create_leaves_nothing(V1_7)
    }
    #[test]
    fn v2_1() {
        super::a_shim_killed_during_create_leaves_nothing(V2_1)
    }
}

/// The shim dies in the middle of Create, after the clone exists and before the container does:
/// containerd's clean-up (`containerd-shim-lxcri-v2 delete`, from the bundle's state file) must
/// still destroy the clone, kill the monitor and remove the LXC directory. The shim runs from a
/// copy whose `lxcri-monitor` is a script that never starts the container, so that Create waits
/// at that point for as long as the test needs.
fn a_shim_killed_during_create_leaves_nothing(v: ContainerdVersion) {
    if !require_root_or_skip() {
        return;
    }
    let z = Zfs::new("");
    let shims = tempfile::Builder::new()
        .prefix("lxcri-shims-")
        .tempdir_in("/tmp")
        .unwrap();
    for bin in ["containerd-shim-lxcri-v2", "lxcri", "lxcri-init"] {
        std::fs::copy(integration::shim_dir().join(bin), shims.path().join(bin))
            .unwrap_or_else(|e| panic!("copying {bin}: {e} (run scripts/build.sh)"));
    }
    let monitor = shims.path().join("lxcri-monitor");
    let started = shims.path().join("lxcri-monitor.started");
    std::fs::write(
        &monitor,
        "#!/bin/sh\n# Never starts the container: the shim waits in Create.\n\
         echo $$ > \"$0.started\"\nwhile :; do sleep 1; done\n",
    )
    .unwrap();
    std::fs::set_permissions(
        &monitor,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let cd = Containerd::start_with(
        v,
        integration::ContainerdOptions {
            shim_dir: Some(shims.path().to_path_buf()),
            ..Default::default()
        },
    );
    let image = cd.import_busybox();
    let id = unique_id("zkill");
    /// Kills the fake monitor and removes what the shim left, when the test fails half-way.
    struct Leftovers(String);
    impl Drop for Leftovers {
        fn drop(&mut self) {
            integration::remove_leftovers(&self.0);
        }
    }
    let _leftovers = Leftovers(id.clone());
    let cfg = z.config();
    let mut run = cd
        .ctr_command(&[
            "run",
            "-d",
            "--runtime",
            RUNTIME,
            "--runtime-config-path",
            &cfg,
            &image,
            &id,
            "sleep",
            "100",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    while !started.exists() {
        if Instant::now() > deadline || run.try_wait().unwrap().is_some() {
            let _ = run.kill();
            let out = run.wait_with_output().unwrap();
            panic!(
                "Create never reached the monitor: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        z.children("containers"),
        vec![z.clone_of(&id)],
        "the clone exists while Create waits"
    );
    kill_shim_of(&id);
    let (status, _) = integration::process::wait_with_limit(&mut run, Duration::from_secs(30));
    assert!(!status.success(), "ctr run succeeded without its shim");

    // What a user does after a failed run; containerd runs the delete subcommand on its own.
    cd.force_delete_task(&id, Duration::from_secs(20));
    let _ = cd.ctr(&["container", "rm", &id]);
    z.wait_no_clones(
        "the clone was left after the shim died in Create",
        Duration::from_secs(20),
    );
    assert_clean(&id);
    drop(cd);
}

/// An image `name` of one small layer holding `/tag`.
fn import_tagged(cd: &Containerd, dir: &Path, name: &str) {
    let layer = dir.join(format!("layer-{}", name.replace(['/', ':'], "_")));
    image_core::builder::busybox_rootfs(&layer).expect("busybox rootfs");
    std::fs::write(layer.join("tag"), name).unwrap();
    let tar = dir.join(format!("{}.tar", name.replace(['/', ':'], "_")));
    image_core::builder::ImageBuilder::new(name)
        .layer_dir(&layer)
        .write_archive(&tar)
        .expect("build image");
    cd.import_archive(&tar, name);
}

/// What a crash leaves: clone `ghost` of `base`, owned by a container that is gone, mounted on
/// `mountpoint`.
fn orphan_clone(z: &Zfs, base: &str, ghost: &str, mountpoint: &Path) {
    z.pool.zfs_ok(&[
        "clone",
        "-o",
        "layerfs:owner=/nonexistent/lxcri/ghost",
        "-o",
        &format!("mountpoint={}", mountpoint.display()),
        &format!("{base}@base"),
        ghost,
    ]);
}

fn gc_honours_the_keep_policy_and_removes_orphans(cd: &Containerd, z: &Zfs) {
    let tmp = tempfile::tempdir().unwrap();
    let images = ["local/gc-a:1", "local/gc-b:1", "local/gc-c:1"];
    for name in images {
        import_tagged(cd, tmp.path(), name);
    }
    // One base per image: a and b unused after their run, c used by a running container.
    let mut bases = Vec::new();
    for name in &images[..2] {
        let id = unique_id("zgc");
        let o = run_rm(cd, z, &[], name, &id, &["cat", "/tag"]);
        assert_eq!(stdout(&o), *name, "{}", stderr(&o));
        bases.push(
            z.children("images")
                .into_iter()
                .find(|b| !bases.contains(b))
                .unwrap(),
        );
    }
    let user = Running::start(cd, z, "zgcuse", &[], images[2]);
    let used_base = z.get(&z.clone_of(&user.id), "origin").replace("@base", "");
    // Last uses: a longest ago.
    for (i, b) in bases.iter().enumerate() {
        z.pool
            .zfs_ok(&["set", &format!("layerfs:last-used={}", 1000 + i), b]);
    }
    // Leftovers of crashes: a clone whose container is gone and a build that never finished.
    let ghost = z.ds(&format!("containers/{NAMESPACE}-ghost"));
    orphan_clone(z, &used_base, &ghost, &tmp.path().join("ghost"));
    let build = z.ds(&format!("images/.build-{}-dead", "0".repeat(64)));
    z.pool.zfs_ok(&["create", &build]);

    let out = stdout(&z.layers(&["gc", "--keep", "1"]));
    assert!(
        out.contains(&format!("destroyed orphan clone {ghost}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("destroyed interrupted build {build}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("destroyed unused base {}", bases[0])),
        "{out}"
    );
    assert!(
        !out.contains(&bases[1]),
        "the most recent unused base is kept: {out}"
    );
    let mut left = z.children("images");
    left.sort();
    let mut want = vec![bases[1].clone(), used_base.clone()];
    want.sort();
    assert_eq!(left, want);
    assert_eq!(z.children("containers"), vec![z.clone_of(&user.id)]);

    // keep 0: every unused base goes, never one with a clone.
    let out = stdout(&z.layers(&["gc", "--keep", "0"]));
    assert!(out.contains(&bases[1]), "{out}");
    assert_eq!(z.children("images"), vec![used_base.clone()]);
    user.remove();

    // The shim collects too, at a Create, when the last collection is older than
    // gc_interval_secs: an orphan left now goes without `lxcri layers gc`.
    orphan_clone(z, &used_base, &ghost, &tmp.path().join("ghost"));
    let quick = z.dir.path().join("quick-gc.toml");
    let text = std::fs::read_to_string(&z.config)
        .unwrap()
        .replace("gc_interval_secs = 0", "gc_interval_secs = 1");
    std::fs::write(&quick, text).unwrap();
    let id = unique_id("zgcshim");
    let quick_s = quick.display().to_string();
    let o = ctr_run_rm(
        cd,
        &["--runtime-config-path", &quick_s],
        &id,
        &["sleep", "1"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let deadline = Instant::now() + Duration::from_secs(20);
    while z.children("containers").contains(&ghost) {
        assert!(
            Instant::now() < deadline,
            "the shim did not collect the orphan {ghost}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_clean(&id);
}

fn a_configured_pool_that_is_missing_fails_create_and_leaves_nothing(cd: &Containerd, z: &Zfs) {
    let missing = format!("lxcri-missing-{}", &unique_id("p")[2..]);
    let cfg = z.dir.path().join("missing.toml");
    std::fs::write(
        &cfg,
        format!(
            "[zfs]\ndataset = \"{missing}/lxcri\"\nmount_root = \"{}\"\n",
            z.dir.path().join("zfs-missing").display()
        ),
    )
    .unwrap();
    let id = unique_id("zmiss");
    let cfg_s = cfg.display().to_string();
    let o = ctr_run_rm(cd, &["--runtime-config-path", &cfg_s], &id, &["true"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains(&format!("[zfs] dataset = \"{missing}/lxcri\""))
            && e.contains(&cfg_s)
            && e.contains(&format!("pool \"{missing}\" not found"))
            && e.contains("zpool import"),
        "the error must name the pool, the key, the file and what to do: {e}"
    );
    let _ = cd.ctr(&["container", "rm", &id]);
    assert_clean(&id);
    assert!(!is_mounted(&bundle_rootfs(cd, &id)));
    assert!(z.children("containers").is_empty());
}

/// Three layers: the second deletes a file and makes a directory opaque, the third deletes a
/// directory, replaces a file with a directory and adds a hardlink and a symlink.
fn multi_layer_image(dir: &Path) -> PathBuf {
    let l1 = dir.join("l1");
    image_core::builder::busybox_rootfs(&l1).expect("busybox rootfs");
    let w = |p: &Path, c: &str| {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, c).unwrap();
    };
    for f in [
        "data/a",
        "data/b",
        "data/keep",
        "opt/x/1",
        "opt/x/2",
        "srv/old/f",
        "var/thing",
    ] {
        w(&l1.join(f), f);
    }
    let l2 = dir.join("l2");
    w(&l2.join("data/.wh.a"), "");
    w(&l2.join("opt/x/.wh..wh..opq"), "");
    w(&l2.join("opt/x/3"), "l2");
    w(&l2.join("data/b"), "b changed in l2");
    let l3 = dir.join("l3");
    w(&l3.join("srv/.wh.old"), "");
    w(&l3.join("var/.wh.thing"), "");
    w(&l3.join("var/thing/inside"), "now a directory");
    w(&l3.join("data/c"), "c");
    std::fs::hard_link(l3.join("data/c"), l3.join("data/c-link")).unwrap();
    std::fs::create_dir_all(l3.join("opt")).unwrap();
    std::os::unix::fs::symlink("../data/keep", l3.join("opt/keep-link")).unwrap();
    let tar = dir.join("layers.tar");
    image_core::builder::ImageBuilder::new("local/layers:3")
        .layer_dir(&l1)
        .layer_dir(&l2)
        .layer_dir(&l3)
        .write_archive(&tar)
        .expect("build the 3-layer image");
    tar
}

fn three_layers_with_whiteouts_give_the_tree_runc_sees(cd: &Containerd, z: &Zfs) {
    let tmp = tempfile::tempdir().unwrap();
    let tar = multi_layer_image(tmp.path());
    cd.import_archive(&tar, "local/layers:3");
    // Names, types, modes, owners, sizes, link counts, mtimes and contents of the image's part.
    // (Directories without size and link count: those depend on the filesystem.)
    let listing = "cd / && find data opt srv var | sort | while read -r p; do \
                   if [ -d \"$p\" ] && [ ! -L \"$p\" ]; then stat -c '%n %F %a %u:%g %Y' \"$p\"; \
                   else stat -c '%n %F %a %u:%g %s %h %Y %N' \"$p\"; fi; \
                   if [ -f \"$p\" ] && [ ! -L \"$p\" ]; then md5sum \"$p\"; fi; done";
    let id = unique_id("zlayers");
    let with_zfs = run_rm(cd, z, &[], "local/layers:3", &id, &["sh", "-c", listing]);
    assert!(with_zfs.status.success(), "{}", stderr(&with_zfs));
    assert_eq!(z.children("images").len(), 1, "the image's base was built");
    let rid = unique_id("zlayers-runc");
    let with_runc = cd.ctr(&[
        "run",
        "--rm",
        "--runtime",
        "io.containerd.runc.v2",
        "local/layers:3",
        &rid,
        "sh",
        "-c",
        listing,
    ]);
    assert!(with_runc.status.success(), "{}", stderr(&with_runc));
    let (got, want) = (stdout(&with_zfs), stdout(&with_runc));
    assert_eq!(got, want, "lxcri on ZFS vs runc on overlayfs");
    for (line, why) in [
        ("data/a ", "deleted in layer 2"),
        ("opt/x/1", "hidden by the opaque opt/x"),
        ("srv/old", "deleted in layer 3"),
    ] {
        assert!(!got.contains(line), "{line} is there, but {why}:\n{got}");
    }
    assert!(got.contains("var/thing/inside"), "{got}");
    assert!(got.contains("opt/x/3"), "{got}");
    assert_clean(&id);
}

/// The base of an image whose `lowerdir=` is longer than a page is built from its merged view
/// (mounted with relative lower directories): the clone has the deepest and the top layer.
fn a_100_layer_image_gets_a_base_from_its_merged_layers(cd: &Containerd, z: &Zfs) {
    let tmp = tempfile::tempdir().unwrap();
    let tar = integration::deep_image_archive(tmp.path(), 100);
    cd.import_archive(&tar, integration::DEEP_IMAGE_REF);
    let id = unique_id("zdeep");
    let out = run_rm(
        cd,
        z,
        &[],
        integration::DEEP_IMAGE_REF,
        &id,
        &[
            "sh",
            "-c",
            "cat /deepest /layers/002 /layers/100 /top; ls /layers | wc -l",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).split_whitespace().collect::<Vec<_>>(),
        ["deepest", "layer", "2", "100", "100", "99"]
    );
    assert_eq!(z.children("images").len(), 1, "the image's base was built");
    assert_clean(&id);
}
