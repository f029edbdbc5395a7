//! Real-LXC checks of the translation: translate a spec, write the config into a temporary
//! lxcpath, run `lxc-start -F` on a busybox rootfs, and look at what the container saw.
//!
//! Needs root, LXC and busybox-static. Without root the tests print why and pass, except
//! with `CI=true`, where they fail. Until the real init exists, the init is a shell script
//! (bind-mounted at `/.lxcri/init` like the real one) that records what it sees into
//! `/.lxcri/run/`, then waits for the host to say `go`.
//!
//! Everything (the container, mounts below the temp dir, cgroups, network namespaces) is
//! cleaned up by a guard, also when an assertion fails.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lxcri::lxcconf::{
    check_mount_targets, resolve_mount_destinations, translate, CgroupMode, Options, TranslateError,
};
use oci_spec::runtime::Spec;

/// Whether to run: root and lxc-start present. Fails under CI instead of skipping.
fn can_run(test: &str) -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let reason = if !nix::unistd::geteuid().is_root() {
        Some("not root")
    } else if Command::new("lxc-start").arg("--version").output().is_err() {
        Some("lxc-start not found (install lxc)")
    } else if !Path::new("/bin/busybox").exists() {
        Some("/bin/busybox not found (install busybox-static)")
    } else {
        None
    };
    match reason {
        None => true,
        Some(r) if ci => panic!("{test}: cannot run under CI=true: {r}"),
        Some(r) => {
            eprintln!("SKIPPED {test}: {r}");
            false
        }
    }
}

fn host_cgroup_mode() -> CgroupMode {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        CgroupMode::V2
    } else {
        CgroupMode::V1
    }
}

fn host_filesystems() -> BTreeSet<String> {
    fs::read_to_string("/proc/filesystems")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        .collect()
}

/// Mount points of cgroup hierarchies on the host.
fn cgroup_mounts() -> Vec<PathBuf> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let fstype = right.split_whitespace().next()?;
            let point = left.split_whitespace().nth(4)?;
            (fstype == "cgroup" || fstype == "cgroup2").then(|| PathBuf::from(point))
        })
        .collect()
}

/// Removes the cgroup tree `top` (relative) below every hierarchy, deepest first.
fn remove_cgroup_tree(top: &str) {
    fn rm(dir: &Path) {
        if let Ok(entries) = fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    rm(&e.path());
                }
            }
        }
        let _ = fs::remove_dir(dir);
    }
    for m in cgroup_mounts() {
        rm(&m.join(top));
    }
}

/// Cleans up one test's container, whatever happened.
struct Guard {
    name: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
    cgroup_top: Option<String>,
    netns: Option<String>,
}

impl Guard {
    fn new(test: &str) -> Guard {
        let dir = tempfile::Builder::new()
            .prefix("lxcri-lxcconf-")
            .tempdir()
            .expect("creating a temp dir");
        let name = format!("{test}-{}", std::process::id());
        let g = Guard {
            name,
            dir,
            child: None,
            cgroup_top: None,
            netns: None,
        };
        fs::create_dir_all(g.lxcpath().join(&g.name)).unwrap();
        fs::create_dir_all(g.run()).unwrap();
        make_busybox_rootfs(&g.rootfs());
        g
    }
    fn root(&self) -> &Path {
        self.dir.path()
    }
    fn lxcpath(&self) -> PathBuf {
        self.root().join("lxc")
    }
    fn rootfs(&self) -> PathBuf {
        self.root().join("bundle/rootfs")
    }
    fn run(&self) -> PathBuf {
        self.lxcpath().join(&self.name).join("lxcri")
    }
    fn init(&self) -> PathBuf {
        self.root().join("init.sh")
    }
    fn log(&self) -> String {
        fs::read_to_string(self.lxcpath().join(&self.name).join("lxc.log")).unwrap_or_default()
    }

    fn options(&self) -> Options {
        Options {
            rootfs: self.rootfs(),
            init_path: self.init(),
            runtime_dir: self.run(),
            cgroup: host_cgroup_mode(),
            log_file: self.lxcpath().join(&self.name).join("lxc.log"),
            log_level: "INFO".into(),
            known_fs_types: host_filesystems(),
            host_has_apparmor: false,
            file_bind_sources: BTreeSet::new(),
            config_dir: self.lxcpath().join(&self.name),
        }
    }

    fn write_init(&self, script: &str) {
        let p = self.init();
        fs::write(&p, format!("#!/bin/sh\nR=/.lxcri/run\n{script}\n")).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn write_config(&self, spec: &Spec, opts: &Options) -> Result<(), TranslateError> {
        let cfg = translate(spec, opts)?;
        check_mount_targets(&self.rootfs(), &cfg)?;
        fs::write(self.lxcpath().join(&self.name).join("config"), cfg.render()).unwrap();
        Ok(())
    }

    fn start(&mut self) {
        let child = Command::new("lxc-start")
            .args(["-F", "-n", &self.name, "-P"])
            .arg(self.lxcpath())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("running lxc-start");
        self.child = Some(child);
    }

    /// Waits for `file` in the runtime dir; false after `secs`.
    fn wait_for(&self, file: &str, secs: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if self.run().join(file).exists() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Waits for lxc-start to end (at most `secs`).
    fn wait_exit(&mut self, secs: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let Some(child) = self.child.as_mut() else {
            return true;
        };
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                self.child = None;
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn result(&self, file: &str) -> String {
        fs::read_to_string(self.run().join(file)).unwrap_or_else(|e| {
            panic!(
                "the container did not write {file}: {e}\nLXC log:\n{}",
                self.log()
            )
        })
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("lxc-stop")
                .args(["-k", "-n", &self.name, "-P"])
                .arg(self.lxcpath())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
        // Anything LXC left mounted below the temp dir (it should not: the mounts live in
        // the container's mount namespace), deepest first.
        let root = self.root().to_string_lossy().to_string();
        let mut mounts: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&root))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        if let Some(top) = &self.cgroup_top {
            remove_cgroup_tree(top);
        }
        if let Some(ns) = &self.netns {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A busybox rootfs: /bin/busybox plus one relative symlink per applet (`busybox --install
/// -s` would write absolute host paths into the links).
fn make_busybox_rootfs(rootfs: &Path) {
    let bin = rootfs.join("bin");
    fs::create_dir_all(&bin).unwrap();
    for d in ["proc", "sys", "dev", "etc", "tmp", "run"] {
        fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    fs::copy("/bin/busybox", bin.join("busybox")).expect("copying /bin/busybox");
    let list = Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            let _ = symlink("busybox", bin.join(applet));
        }
    }
}

fn ctr_default_spec() -> serde_json::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/lxcconf/ctr-default.json");
    serde_json::from_str(&fs::read_to_string(p).unwrap()).unwrap()
}

fn spec_from(v: serde_json::Value) -> Spec {
    serde_json::from_value(v).expect("spec parses")
}

#[test]
fn ctr_default_spec_runs_under_lxc_with_limits_mounts_devices_and_sysctl() {
    if !can_run("ctr_default_spec_runs_under_lxc") {
        return;
    }
    let mut g = Guard::new("lxcconf-a");
    let top = format!("lxcri-test-{}", g.name);
    g.cgroup_top = Some(top.clone());
    let cgroups_path = format!("/{top}/c1");

    // A host directory and a host file to bind in.
    let share = g.root().join("share");
    fs::create_dir_all(&share).unwrap();
    fs::write(share.join("hello"), "from the host\n").unwrap();
    let hostfile = g.root().join("hostfile");
    fs::write(&hostfile, "a file\n").unwrap();

    let mut v = ctr_default_spec();
    v["hostname"] = "lxcri-box".into();
    v["linux"]["cgroupsPath"] = cgroups_path.clone().into();
    v["linux"]["resources"]["memory"] = serde_json::json!({"limit": 67108864});
    v["linux"]["resources"]["pids"] = serde_json::json!({"limit": 77});
    v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"});
    let mounts = v["mounts"].as_array_mut().unwrap();
    mounts.push(
        serde_json::json!({"destination": "/mnt/share", "type": "bind",
        "source": share, "options": ["rbind", "ro", "nosuid"]}),
    );
    mounts.push(
        serde_json::json!({"destination": "/etc/hostfile", "type": "bind",
        "source": hostfile, "options": ["bind"]}),
    );
    mounts.push(
        serde_json::json!({"destination": "/sys/fs/cgroup", "type": "cgroup",
        "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    );
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"type": "cgroup"}));
    let fuse = Path::new("/dev/fuse").exists();
    if fuse {
        v["linux"]["devices"] = serde_json::json!([{"path": "/dev/fuse", "type": "c",
            "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0}]);
    }
    let spec = spec_from(v);
    let mut opts = g.options();
    opts.file_bind_sources.insert(hostfile.clone());

    g.write_init(
        r#"
hostname > $R/hostname
cat /proc/self/mountinfo > $R/mountinfo
cat /proc/sys/net/ipv4/ip_forward > $R/ip_forward
cat /mnt/share/hello > $R/share
cat /etc/hostfile > $R/hostfile
touch /mnt/share/x 2> /dev/null && echo writable > $R/share_ro || echo readonly > $R/share_ro
d=""
for n in null zero random urandom tty full ptmx; do [ -c /dev/$n ] && d="$d $n"; done
echo x > /dev/null && d="$d null-writes"
[ "$(head -c 4 /dev/zero | wc -c)" = 4 ] && d="$d zero-reads"
[ "$(head -c 4 /dev/urandom | wc -c)" = 4 ] && d="$d urandom-reads"
[ "$(head -c 4 /dev/random | wc -c)" = 4 ] && d="$d random-reads"
echo x 2> /dev/null > /dev/full || d="$d full-is-full"
echo x > /dev/shm/t && d="$d shm-writes"
grep -q " /dev/pts .* - devpts " /proc/self/mountinfo && d="$d pts-mounted"
[ -c /dev/fuse ] && d="$d fuse"
echo "$d" > $R/devices
cat /proc/self/cgroup > $R/cgroup
touch $R/ready
i=0; while [ ! -e $R/go ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
"#,
    );
    g.write_config(&spec, &opts).expect("translating");
    g.start();
    assert!(
        g.wait_for("ready", 20),
        "the container did not come up; LXC log:\n{}",
        g.log()
    );

    // While it runs: the cgroup named by cgroupsPath exists, with the limits.
    let (mem_file, mem_want, pids_dir) = match host_cgroup_mode() {
        CgroupMode::V1 => (
            format!("/sys/fs/cgroup/memory{cgroups_path}/memory.limit_in_bytes"),
            "67108864",
            format!("/sys/fs/cgroup/pids{cgroups_path}"),
        ),
        CgroupMode::V2 => (
            format!("/sys/fs/cgroup{cgroups_path}/memory.max"),
            "67108864",
            format!("/sys/fs/cgroup{cgroups_path}"),
        ),
    };
    let mem = fs::read_to_string(&mem_file).unwrap_or_else(|e| panic!("{mem_file}: {e}"));
    assert_eq!(mem.trim(), mem_want);
    let pids = fs::read_to_string(format!("{pids_dir}/pids.max")).unwrap();
    assert_eq!(pids.trim(), "77");
    let procs = fs::read_to_string(format!("{pids_dir}/cgroup.procs")).unwrap();
    assert!(!procs.trim().is_empty(), "no process in {pids_dir}");

    fs::write(g.run().join("go"), "").unwrap();
    assert!(g.wait_exit(20), "lxc-start did not end");
    assert!(
        !Path::new(&pids_dir).exists(),
        "{pids_dir} is left after the container stopped"
    );

    assert_eq!(g.result("hostname").trim(), "lxcri-box");
    assert_eq!(g.result("ip_forward").trim(), "1");
    assert_eq!(g.result("share"), "from the host\n");
    assert_eq!(g.result("hostfile"), "a file\n");
    assert_eq!(g.result("share_ro").trim(), "readonly");
    let devices: BTreeSet<String> = g
        .result("devices")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    for want in [
        "null",
        "zero",
        "random",
        "urandom",
        "tty",
        "full",
        "ptmx",
        "null-writes",
        "zero-reads",
        "urandom-reads",
        "random-reads",
        "full-is-full",
        "shm-writes",
        "pts-mounted",
    ] {
        assert!(devices.contains(want), "{want} missing from {devices:?}");
    }
    if fuse {
        assert!(
            devices.contains("fuse"),
            "/dev/fuse missing from {devices:?}"
        );
    }
    // A cgroup namespace: the container sees its own cgroup as the root.
    assert!(
        g.result("cgroup").lines().all(|l| l.ends_with(":/")),
        "{}",
        g.result("cgroup")
    );
    let mi = g.result("mountinfo");
    for target in [
        " /proc ",
        " /sys ",
        " /dev/mqueue ",
        " /run ",
        " /mnt/share ",
        " /sys/fs/cgroup",
    ] {
        assert!(mi.contains(target), "{target} not mounted:\n{mi}");
    }
    assert!(!share.join("x").exists());
}

#[test]
fn joined_network_namespace_by_path() {
    if !can_run("joined_network_namespace_by_path") {
        return;
    }
    let mut g = Guard::new("lxcconf-n");
    let ns = format!("lxcri-t-{}", std::process::id());
    let ok = Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "ip netns add {ns} failed");
    g.netns = Some(ns.clone());
    use std::os::unix::fs::MetadataExt;
    let ns_ino = fs::metadata(format!("/run/netns/{ns}")).unwrap().ino();

    let mut v = ctr_default_spec();
    v["linux"]["cgroupsPath"] = serde_json::Value::Null;
    for n in v["linux"]["namespaces"].as_array_mut().unwrap() {
        if n["type"] == "network" {
            n["path"] = format!("/run/netns/{ns}").into();
        }
    }
    let spec = spec_from(v);
    g.write_init("ip link > $R/links; readlink /proc/self/ns/net > $R/netns");
    g.write_config(&spec, &g.options()).expect("translating");
    g.start();
    assert!(g.wait_exit(20), "lxc-start did not end");
    // The namespace the container ran in is the file's (same inode), not the host's.
    assert_eq!(g.result("netns").trim(), format!("net:[{ns_ino}]"));
    let host_ns = fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(g.result("netns").trim(), host_ns.to_string_lossy());
    assert!(g.result("links").contains("lo"));
}

#[test]
fn symlink_out_of_the_rootfs_is_never_mounted_through() {
    if !can_run("symlink_out_of_the_rootfs_is_never_mounted_through") {
        return;
    }
    let mut g = Guard::new("lxcconf-s");
    let outside = g.root().join("outside");
    fs::create_dir_all(&outside).unwrap();
    symlink(&outside, g.rootfs().join("evil")).unwrap();
    symlink("../../outside", g.rootfs().join("evil-rel")).unwrap();

    for (i, dest) in ["/evil/x", "/evil-rel/y"].iter().enumerate() {
        let mut v = ctr_default_spec();
        v["linux"]["cgroupsPath"] = serde_json::Value::Null;
        v["mounts"].as_array_mut().unwrap().push(serde_json::json!({
            "destination": dest, "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
        let spec = spec_from(v);
        let cfg = translate(&spec, &g.options()).expect("translating");
        // The shim's check refuses it before LXC runs ...
        let err = check_mount_targets(&g.rootfs(), &cfg).expect_err("symlink not detected");
        assert!(
            matches!(err, TranslateError::SymlinkInMountTarget { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("symbolic link"), "{err}");

        // ... and LXC itself, given the config anyway, refuses to mount through the link:
        // the container does not start and nothing is mounted outside the rootfs.
        if i == 0 {
            g.write_init("touch $R/ran");
            fs::write(g.lxcpath().join(&g.name).join("config"), cfg.render()).unwrap();
            g.start();
            assert!(g.wait_exit(20), "lxc-start did not end");
            assert!(!g.run().join("ran").exists(), "the container ran");
            assert!(
                g.log().contains("was a symbolic link"),
                "LXC log does not show the refusal:\n{}",
                g.log()
            );
            let mi = fs::read_to_string("/proc/self/mountinfo").unwrap();
            assert!(!mi.contains(&*outside.to_string_lossy()));
            // LXC's create=dir did follow the link (documented in lxcconf::mounts): that is
            // what check_mount_targets prevents. Nothing may be mounted there.
            if outside.join("x").exists() {
                assert_eq!(fs::read_dir(outside.join("x")).unwrap().count(), 0);
            }
        }
    }

    // With the destinations resolved inside the rootfs (as runc does), the same spec runs and
    // the tmpfs lands inside the rootfs, at the link's target taken from the rootfs's root.
    let _ = fs::remove_dir(outside.join("x"));
    let mut v = ctr_default_spec();
    v["linux"]["cgroupsPath"] = serde_json::Value::Null;
    v["mounts"].as_array_mut().unwrap().push(serde_json::json!({
        "destination": "/evil/x", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    let mut spec = spec_from(v);
    resolve_mount_destinations(&mut spec, &g.rootfs()).expect("resolving");
    let inside = outside.join("x");
    let last = spec
        .mounts()
        .as_ref()
        .unwrap()
        .last()
        .unwrap()
        .destination()
        .clone();
    assert_eq!(last, inside, "resolved against the rootfs's root");
    g.write_init("grep ' - tmpfs ' /proc/self/mountinfo > $R/tmpfs; touch $R/ran2");
    g.write_config(&spec, &g.options())
        .expect("translating the resolved spec");
    g.start();
    assert!(g.wait_exit(20), "lxc-start did not end");
    let tmpfs = g.result("tmpfs");
    assert!(
        tmpfs.contains(&format!(" {} ", inside.display())),
        "no tmpfs at {inside:?}:\n{tmpfs}"
    );
    assert!(!inside.exists(), "something was created outside the rootfs");
    assert!(g.rootfs().join(inside.strip_prefix("/").unwrap()).is_dir());
}
