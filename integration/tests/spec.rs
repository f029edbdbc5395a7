//! The OCI runtime spec, feature by feature, through the real path: `ctr run --config spec.json`
//! sends the spec to containerd, containerd to the lxcri shim, the shim to LXC and the init.
//! Each spec starts from ctr's own default (`ctr oci spec`), as a user's would.

use integration::{assert_clean, stderr, stdout};
use integration::{require_root_or_skip, unique_id, Containerd, ContainerdVersion};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const RUNTIME: &str = "io.containerd.lxcri.v2";

integration::per_containerd_version!(
    process_and_container_spec_are_applied,
    namespaces_joined_by_path,
    mount_through_symlink_stays_in_rootfs,
    cgroups_path_in_use_is_refused_clearly,
    unsupported_spec_features_fail_at_create,
);

fn run(v: ContainerdVersion, scenario: fn(&Containerd, &Bundle)) {
    if !require_root_or_skip() {
        return;
    }
    let cd = Containerd::start(v);
    let b = Bundle::new(&cd);
    scenario(&cd, &b);
}

/// A busybox rootfs and ctr's default spec, in a tempdir.
struct Bundle {
    dir: tempfile::TempDir,
    spec: Value,
}

impl Bundle {
    fn new(cd: &Containerd) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("lxcri-spec-")
            .tempdir_in("/tmp")
            .unwrap();
        image_core::builder::busybox_rootfs(&dir.path().join("rootfs")).unwrap();
        let spec: Value = serde_json::from_str(&cd.ctr_ok(&["oci", "spec"])).unwrap();
        Bundle { dir, spec }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    /// ctr's default spec with our rootfs, the command, and the cgroup of our namespace.
    fn spec(&self, id: &str, script: &str) -> Value {
        let mut s = self.spec.clone();
        s["root"] = json!({"path": self.path("rootfs"), "readonly": false});
        s["process"]["args"] = json!(["sh", "-c", script]);
        // ctr's default spec has no environment at all (ctr takes it from the image).
        s["process"]["env"] =
            json!(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]);
        s["linux"]["cgroupsPath"] = json!(format!("/{}/{id}", integration::NAMESPACE));
        s
    }
    fn write(&self, name: &str, spec: &Value) -> String {
        let p = self.path(name);
        std::fs::write(&p, serde_json::to_vec_pretty(spec).unwrap()).unwrap();
        p.display().to_string()
    }
}

/// `key=value` lines of the container's report.
fn report(text: &str) -> std::collections::HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path.as_ref())
        .unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
        .trim()
        .to_string()
}

fn process_and_container_spec_are_applied(cd: &Containerd, b: &Bundle) {
    let id = unique_id("full");
    // Host side of a read-only bind, a bind of a single file, and a writable bind for results.
    std::fs::create_dir_all(b.path("data")).unwrap();
    std::fs::write(b.path("data/hello"), "from the host\n").unwrap();
    std::fs::write(b.path("extra.conf"), "a file bind\n").unwrap();
    std::fs::create_dir_all(b.path("out")).unwrap();
    let script = r#"
        o=/out/report
        {
        echo uid=$(id -u); echo groups=$(id -G); echo cwd=$(pwd); echo host=$(hostname)
        echo env_a=$A; echo nofile=$(ulimit -n); echo nofile_hard=$(ulimit -Hn)
        echo capeff=$(awk '/CapEff/{print $2}' /proc/self/status)
        echo capbnd=$(awk '/CapBnd/{print $2}' /proc/self/status)
        echo capamb=$(awk '/CapAmb/{print $2}' /proc/self/status)
        echo nnp=$(awk '/NoNewPrivs/{print $2}' /proc/self/status)
        echo oom=$(cat /proc/self/oom_score_adj)
        echo ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)
        echo fuse=$(stat -c '%F %t:%T' /dev/fuse)
        echo null=$(echo x > /dev/null && echo ok)
        echo data=$(cat /data/hello)
        echo data_write=$(touch /data/new 2>/dev/null && echo yes || echo no)
        echo extra=$(cat /etc/extra.conf)
        echo scratch=$(awk '$2=="/scratch"{print $3" "$4}' /proc/mounts)
        echo proc_sys=$(awk '$2=="/proc/sys"{print $4}' /proc/mounts | cut -d, -f1)
        echo keys=$(cat /proc/keys 2>/dev/null | wc -c)
        echo mqueue=$(awk '$2=="/dev/mqueue"{print $3}' /proc/mounts)
        echo sysfs=$(awk '$2=="/sys"{print $4}' /proc/mounts | cut -d, -f1)
        echo cgroupfs=$(awk '$2 ~ "^/sys/fs/cgroup"{n++} END{print n+0}' /proc/mounts)
        echo pid1=$$
        } > $o.tmp && mv $o.tmp $o
        sleep 300"#;
    let mut s = b.spec(&id, script);
    s["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 20]});
    s["process"]["cwd"] = json!("/tmp");
    s["process"]["env"] = json!(["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "A=one two"]);
    s["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 1000, "hard": 2000}]);
    let caps = json!(["CAP_NET_BIND_SERVICE"]);
    s["process"]["capabilities"] = json!({
        "bounding": ["CAP_NET_BIND_SERVICE", "CAP_CHOWN"],
        "effective": caps, "permitted": caps, "inheritable": caps, "ambient": caps,
    });
    s["process"]["noNewPrivileges"] = json!(true);
    s["process"]["oomScoreAdj"] = json!(123);
    s["hostname"] = json!("spec-host");
    s["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    s["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "cgroup"}));
    s["linux"]["devices"] = json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0}]);
    s["linux"]["resources"] = json!({
        "devices": [{"allow": false, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"}],
        "memory": {"limit": 67108864},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000},
        "pids": {"limit": 50},
    });
    let mounts = s["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}));
    mounts.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "size=1m"]}));
    mounts.push(json!({"destination": "/data", "type": "bind", "source": b.path("data"), "options": ["rbind", "ro"]}));
    mounts.push(json!({"destination": "/etc/extra.conf", "type": "bind", "source": b.path("extra.conf"), "options": ["bind", "ro"]}));
    mounts.push(json!({"destination": "/out", "type": "bind", "source": b.path("out"), "options": ["rbind", "rw", "rprivate"]}));
    std::fs::set_permissions(
        b.path("out"),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let cfg = b.write("full.json", &s);

    cd.ctr_ok(&["run", "-d", "--runtime", RUNTIME, "--config", &cfg, &id]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.path("out/report").exists() {
        assert!(
            Instant::now() < deadline,
            "the container wrote no report; containerd log:\n{}",
            cd.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = report(&read(b.path("out/report")));
    let get = |k: &str| {
        r.get(k)
            .cloned()
            .unwrap_or_else(|| panic!("no {k} in report {r:?}"))
    };
    assert_eq!(get("uid"), "1000");
    assert_eq!(get("groups"), "1000 10 20");
    assert_eq!(get("cwd"), "/tmp");
    assert_eq!(get("host"), "spec-host");
    assert_eq!(get("env_a"), "one two");
    assert_eq!(get("nofile"), "1000");
    assert_eq!(get("nofile_hard"), "2000");
    // CAP_NET_BIND_SERVICE is bit 10, CAP_CHOWN bit 0.
    assert_eq!(get("capeff"), "0000000000000400");
    assert_eq!(get("capamb"), "0000000000000400");
    assert_eq!(get("capbnd"), "0000000000000401");
    assert_eq!(get("nnp"), "1");
    assert_eq!(get("oom"), "123");
    assert_eq!(get("ip_forward"), "1");
    assert_eq!(get("fuse"), "character special file a:e5");
    assert_eq!(get("null"), "ok");
    assert_eq!(get("data"), "from the host");
    assert_eq!(get("data_write"), "no", "a read-only bind was writable");
    assert_eq!(get("extra"), "a file bind");
    assert!(
        get("scratch").starts_with("tmpfs ") && get("scratch").contains("size=1024k"),
        "{}",
        get("scratch")
    );
    assert_eq!(
        get("proc_sys"),
        "ro",
        "readonlyPaths: /proc/sys is not read-only"
    );
    assert_eq!(get("keys"), "0", "maskedPaths: /proc/keys is readable");
    assert_eq!(get("mqueue"), "mqueue");
    assert_eq!(get("sysfs"), "ro");
    assert_ne!(
        get("cgroupfs"),
        "0",
        "no cgroup filesystem at /sys/fs/cgroup"
    );
    assert_eq!(get("pid1"), "1");

    // From the host: the cgroup named by cgroupsPath, with the limits, and the oom score.
    let (pid, _) = cd.task(&id).expect("the task is listed");
    assert_eq!(read(format!("/proc/{pid}/oom_score_adj")), "123");
    let cg = format!("{}/{id}", integration::NAMESPACE);
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        assert_eq!(read(format!("/sys/fs/cgroup/{cg}/memory.max")), "67108864");
        assert_eq!(read(format!("/sys/fs/cgroup/{cg}/pids.max")), "50");
        assert_eq!(read(format!("/sys/fs/cgroup/{cg}/cpu.max")), "50000 100000");
    } else {
        assert_eq!(
            read(format!("/sys/fs/cgroup/memory/{cg}/memory.limit_in_bytes")),
            "67108864"
        );
        assert_eq!(read(format!("/sys/fs/cgroup/pids/{cg}/pids.max")), "50");
        assert_eq!(read(format!("/sys/fs/cgroup/cpu/{cg}/cpu.shares")), "512");
        assert_eq!(
            read(format!("/sys/fs/cgroup/cpu/{cg}/cpu.cfs_quota_us")),
            "50000"
        );
        let devices = read(format!("/sys/fs/cgroup/devices/{cg}/devices.list"));
        assert!(
            devices.contains("c 10:229 rwm") && !devices.contains("a *:* rwm"),
            "{devices}"
        );
    }
    // An exec gets the process spec applied too (ctr copies the container's process for it):
    // rlimits, user and groups, bounding set.
    let o = cd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "x1",
        &id,
        "sh",
        "-c",
        "ulimit -n; id -u; id -G; awk '/CapBnd/{print $2}' /proc/self/status",
    ]);
    assert_eq!(o.status.code(), Some(0), "exec: {}", stderr(&o));
    assert_eq!(stdout(&o), "1000\n1000\n1000 10 20\n0000000000000401\n");

    cd.kill_delete_rm(&id);
    assert!(
        !Path::new(&format!("/sys/fs/cgroup/memory/{cg}")).exists(),
        "the container's cgroup outlived it"
    );
    assert_clean(&id);
}

fn namespaces_joined_by_path(cd: &Containerd, b: &Bundle) {
    let id = unique_id("ns");
    let netns = unique_id("lxcri-netns");
    let st = Command::new("ip")
        .args(["netns", "add", &netns])
        .status()
        .unwrap();
    assert!(st.success(), "ip netns add");
    struct DelNetns(String);
    impl Drop for DelNetns {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let _guard = DelNetns(netns.clone());
    let path = format!("/run/netns/{netns}");
    let want = std::fs::metadata(&path)
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap();

    let mut s = b.spec(
        &id,
        "readlink /proc/self/ns/net; readlink /proc/self/ns/uts",
    );
    for ns in s["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "network" {
            ns["path"] = json!(path);
        }
    }
    let cfg = b.write("ns.json", &s);
    let o = cd.ctr(&["run", "--rm", "--runtime", RUNTIME, "--config", &cfg, &id]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&format!("net:[{want}]")),
        "not in the joined netns {want}: {out}"
    );
    // The UTS namespace is a new one, not the host's.
    let host_uts = std::fs::read_link("/proc/self/ns/uts")
        .unwrap()
        .display()
        .to_string();
    assert!(!out.contains(&host_uts), "{out}");
    assert_clean(&id);
}

fn mount_through_symlink_stays_in_rootfs(cd: &Containerd, b: &Bundle) {
    let id = unique_id("link");
    // A rootfs whose /evil points out of it, at a host directory.
    let outside = tempfile::Builder::new()
        .prefix("lxcri-outside-")
        .tempdir_in("/tmp")
        .unwrap();
    std::os::unix::fs::symlink(outside.path(), b.path("rootfs/evil")).unwrap();
    let mut s = b.spec(
        &id,
        "grep ' /scratch-x\\| /evil/x\\|/x ' /proc/mounts | cut -d' ' -f2; ls -d /evil/x",
    );
    s["mounts"].as_array_mut().unwrap().push(json!({"destination": "/evil/x", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    let cfg = b.write("link.json", &s);
    let o = cd.ctr(&["run", "--rm", "--runtime", RUNTIME, "--config", &cfg, &id]);
    // Whether the mount lands inside the rootfs (the link followed within it, as runc does) or
    // the container is refused, nothing may appear outside the rootfs.
    let x = outside.path().join("x");
    assert!(
        !x.exists(),
        "a mount destination escaped the rootfs: {} exists (ctr: {} {})",
        x.display(),
        stdout(&o),
        stderr(&o)
    );
    if !o.status.success() {
        assert!(
            stderr(&o).contains("evil"),
            "refused without naming the link: {}",
            stderr(&o)
        );
    }
    let _ = cd.ctr(&["container", "rm", &id]);
    assert_clean(&id);
}

fn cgroups_path_in_use_is_refused_clearly(cd: &Containerd, b: &Bundle) {
    // A cgroup with a process in it (ours): LXC cannot join it, the error must say so.
    let id = unique_id("cgu");
    let cg = format!("lxcri-test-busy-{id}");
    let dir = PathBuf::from("/sys/fs/cgroup/pids").join(&cg);
    let dir = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        PathBuf::from("/sys/fs/cgroup").join(&cg)
    } else {
        dir
    };
    std::fs::create_dir(&dir).unwrap();
    let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
    std::fs::write(dir.join("cgroup.procs"), sleeper.id().to_string()).unwrap();
    let mut s = b.spec(&id, "true");
    s["linux"]["cgroupsPath"] = json!(format!("/{cg}"));
    let cfg = b.write("cgu.json", &s);
    let o = cd.ctr(&["run", "--rm", "--runtime", RUNTIME, "--config", &cfg, &id]);
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    std::thread::sleep(Duration::from_millis(100));
    let _ = std::fs::remove_dir(&dir);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("cgroupsPath") && err.contains("already exists"),
        "stderr: {err}"
    );
    let _ = cd.ctr(&["container", "rm", &id]);
    assert_clean(&id);
}

fn unsupported_spec_features_fail_at_create(cd: &Containerd, b: &Bundle) {
    type Mutate = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Mutate, &str)> = vec![
        // (hooks are supported now, see hooks.rs: only an invalid one is refused)
        (
            "badhook",
            Box::new(|s: &mut Value| s["hooks"] = json!({"prestart": [{"path": "true"}]})),
            "hooks.prestart[0].path",
        ),
        // (seccomp is supported now: its refusals are tested in seccomp.rs)
        (
            "badcwd",
            Box::new(|s: &mut Value| s["process"]["cwd"] = json!("relative")),
            "cwd",
        ),
        (
            "noargs",
            Box::new(|s: &mut Value| s["process"]["args"] = json!([])),
            "args",
        ),
    ];
    for (name, mutate, word) in cases {
        let id = unique_id(name);
        let mut s = b.spec(&id, "true");
        mutate(&mut s);
        let cfg = b.write(&format!("{name}.json"), &s);
        let o = cd.ctr(&["run", "--rm", "--runtime", RUNTIME, "--config", &cfg, &id]);
        assert!(!o.status.success(), "{name}: accepted");
        assert!(
            stderr(&o).contains(word),
            "{name}: the error does not name {word}: {}",
            stderr(&o)
        );
        let _ = cd.ctr(&["container", "rm", &id]);
        assert_clean(&id);
    }
    // A config.json that does not parse reaches the shim as it is: it names the file.
    let id = unique_id("badjson");
    let s = b.spec(&id, "true");
    let mut text = serde_json::to_string(&s).unwrap();
    text = text.replacen("\"args\"", "\"args\":1,\"x\"", 1);
    let cfg = b.path("bad.json");
    std::fs::write(&cfg, text).unwrap();
    let o = cd.ctr(&[
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        "--config",
        &cfg.display().to_string(),
        &id,
    ]);
    assert!(!o.status.success(), "a bad spec was accepted");
    let _ = cd.ctr(&["container", "rm", &id]);
    assert_clean(&id);
}
