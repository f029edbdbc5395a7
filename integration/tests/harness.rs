//! Proves the harness itself, with runc (the lxcri shim is tested elsewhere): a private
//! containerd of each version runs a busybox container, cleans up after itself (also when the
//! test panics), and a ZFS pool comes and goes.

use integration::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNC: &str = "io.containerd.runc.v2";

/// `ctr run --rm` under runc prints what the container printed and passes on its exit code;
/// afterwards the container left nothing and containerd and its tempdir are gone.
fn runc_session(v: ContainerdVersion) {
    if !require_root_or_skip() {
        return;
    }
    let c = Containerd::start(v);
    let version = c.ctr_ok(&["version"]);
    let server = version.split("Server:").nth(1).unwrap_or_default();
    assert!(
        server.contains(&format!("Version:  {}", v.upstream()))
            || server.contains(&format!("Version: {}", v.upstream())),
        "{v}: `ctr version` names another server:\n{version}"
    );

    let image = c.import_busybox();
    assert_eq!(image, "local/busybox:latest");
    let id = unique_id("harness-runc");
    let out = c.ctr(&[
        "run",
        "--rm",
        "--runtime",
        RUNC,
        &image,
        &id,
        "/bin/sh",
        "-c",
        "echo hi; exit 3",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.trim_end_matches(['\r', '\n']),
        "hi",
        "{v}: stdout of the container; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "{v}: ctr run must pass on the exit code; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // stdin reaches the container through ctr_stdin (`read`: ctr passes no EOF on, so a
    // container waiting for one, like `cat`, would hang).
    let stdin_id = unique_id("harness-stdin");
    let out = c.ctr_stdin(
        &[
            "run",
            "--rm",
            "--runtime",
            RUNC,
            &image,
            &stdin_id,
            "/bin/sh",
            "-c",
            "read line; echo \"got $line\"",
        ],
        b"piped through\n",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "got piped through\n",
        "{v}: stdin of the container; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{v}: read failed: {}", out.status);

    // --rm: the container is gone from containerd.
    let containers = c.ctr_ok(&["containers", "ls", "-q"]);
    assert!(
        !containers.contains(&id),
        "{v}: {id} still listed:\n{containers}"
    );

    let dir = c.dir().to_path_buf();
    let pid = c.pid() as i32;
    let socket = c.socket().to_path_buf();
    assert!(dir.is_dir() && socket.starts_with(&dir));
    assert!(socket.as_os_str().len() < 108, "{}", socket.display());
    drop(c);
    assert_all_gone(v, &dir, pid, &id);
}

/// After containerd `v` (pid `pid`, tempdir `dir`) went away: the directory and the daemon are
/// gone, and container `id` left nothing behind.
fn assert_all_gone(v: ContainerdVersion, dir: &Path, pid: i32, id: &str) {
    assert!(!dir.exists(), "{v}: {} survived", dir.display());
    assert!(
        !process::alive_not_zombie(pid),
        "{v}: containerd (pid {pid}) still runs"
    );
    let left = wait_no_leaks(id, Duration::from_secs(5));
    assert!(left.is_empty(), "{v}: {id} left behind: {left:#?}");
}

#[test]
fn runc_runs_busybox_on_containerd_1_6() {
    runc_session(ContainerdVersion::V1_6);
}

#[test]
fn runc_runs_busybox_on_containerd_1_7() {
    runc_session(ContainerdVersion::V1_7);
}

#[test]
fn runc_runs_busybox_on_containerd_2_1() {
    runc_session(ContainerdVersion::V2_1);
}

/// A test that panics with a running container still leaves nothing: Drop kills the task,
/// stops containerd and removes its directory. On every version: `ctr` differs between them.
#[test]
fn a_panicking_test_leaves_nothing_behind() {
    if !require_root_or_skip() {
        return;
    }
    for v in ContainerdVersion::all() {
        let id = unique_id("harness-panic");
        let mut seen: Option<(PathBuf, i32)> = None;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let c = Containerd::start(v);
            let image = c.import_busybox();
            c.ctr_ok(&[
                "run",
                "-d",
                "--runtime",
                RUNC,
                &image,
                &id,
                "/bin/sleep",
                "300",
            ]);
            let tasks = c.ctr_ok(&["tasks", "ls"]);
            assert!(
                tasks.contains(&id) && tasks.contains("RUNNING"),
                "{v}: {tasks}"
            );
            assert!(
                !leaks(&id).is_empty(),
                "{v}: a running container must show in leaks()"
            );
            seen = Some((c.dir().to_path_buf(), c.pid() as i32));
            panic!("deliberate panic with {id} running");
        }));
        assert!(result.is_err(), "{v}: the closure must have panicked");
        let (dir, pid) = seen.expect("the container was started before the panic");
        assert_all_gone(v, &dir, pid, &id);
    }
}

/// containerd itself dies while an lxcri container runs (nobody is left to run the shim's
/// `delete`): dropping the harness still leaves nothing, because it runs the shim's `delete`
/// subcommand in every bundle that has lxcri's state file, as containerd would at its next start.
#[test]
fn a_dead_containerd_with_an_lxcri_container_leaves_nothing() {
    if !require_root_or_skip() {
        return;
    }
    let v = ContainerdVersion::V1_7;
    let id = unique_id("harness-dead");
    let c = Containerd::start(v);
    c.import_busybox();
    ctr_run_d(&c, &[], &id, &["/bin/sleep", "300"]);
    let monitor = integration::process::processes_mentioning(&id)
        .into_iter()
        .find(|p| p.cmdline.contains("lxcri-monitor"));
    assert!(monitor.is_some(), "{v}: the container's LXC monitor runs");
    integration::process::signal(c.pid() as i32, libc::SIGKILL);
    drop(c);
    assert_clean(&id);
}

/// Two instances at once do not collide: each has its own socket and sees only its own images.
#[test]
fn two_instances_are_independent() {
    if !require_root_or_skip() {
        return;
    }
    let a = Containerd::start(ContainerdVersion::V1_6);
    let b = Containerd::start(ContainerdVersion::V1_6);
    assert_ne!(a.socket(), b.socket());
    a.import_busybox();
    assert!(a.ctr_ok(&["images", "ls", "-q"]).contains(BUSYBOX_REF));
    assert!(!b.ctr_ok(&["images", "ls", "-q"]).contains(BUSYBOX_REF));
}

/// A failing ctr call reports what failed: ctr_ok's panic names the command and its stderr.
#[test]
fn ctr_ok_panics_with_the_command_and_its_output() {
    if !require_root_or_skip() {
        return;
    }
    let c = Containerd::start(ContainerdVersion::V1_6);
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        c.ctr_ok(&["tasks", "kill", "no-such-task"]);
    }))
    .expect_err("killing a missing task must fail");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("ctr tasks kill no-such-task"), "{msg}");
    assert!(msg.contains("stderr"), "{msg}");
}

/// A pool on zfs-fuse: a dataset, a snapshot and a clone that sees the snapshot's file; after
/// Drop the pool and its file are gone.
#[test]
fn zfs_pool_creates_snapshots_clones_and_goes_away() {
    if !require_root_or_skip() {
        return;
    }
    let pool = ZfsPool::create();
    let name = pool.name().to_string();
    assert!(name.starts_with("lxcri-test-"), "{name}");
    assert!(pool.exists());
    let base = pool.dataset("base");
    pool.zfs_ok(&["create", &base]);
    let base_mnt = pool.zfs_ok(&["get", "-H", "-o", "value", "mountpoint", &base]);
    let base_mnt = PathBuf::from(base_mnt.trim());
    assert!(
        base_mnt.starts_with(pool.mountpoint()),
        "{}",
        base_mnt.display()
    );
    std::fs::write(base_mnt.join("hello"), b"from the snapshot").expect("write into the dataset");
    pool.zfs_ok(&["snapshot", &format!("{base}@s1")]);
    let clone = pool.dataset("clone");
    pool.zfs_ok(&["clone", &format!("{base}@s1"), &clone]);
    let clone_mnt = pool.zfs_ok(&["get", "-H", "-o", "value", "mountpoint", &clone]);
    let seen = std::fs::read(PathBuf::from(clone_mnt.trim()).join("hello")).expect("read clone");
    assert_eq!(seen, b"from the snapshot");
    let origin = pool.zfs_ok(&["get", "-H", "-o", "value", "origin", &clone]);
    assert_eq!(origin.trim(), format!("{base}@s1"));

    let mountpoint = pool.mountpoint().to_path_buf();
    drop(pool);
    let pools = Command::new("zpool")
        .args(["list", "-H", "-o", "name"])
        .output()
        .expect("run zpool list");
    assert!(
        !String::from_utf8_lossy(&pools.stdout)
            .lines()
            .any(|l| l.trim() == name),
        "pool {name} survived the drop"
    );
    assert!(
        !mountpoint.exists(),
        "{} survived the drop",
        mountpoint.display()
    );
}

/// leaks() finds a process naming the id, and nothing once it is gone. Needs no root.
#[test]
fn leaks_finds_a_process_naming_the_id() {
    /// Kills the process on drop, also when an assertion fails.
    struct Reaped(std::process::Child);
    impl Drop for Reaped {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let id = unique_id("harness-leak");
    assert!(leaks(&id).is_empty(), "a fresh id names nothing");
    // `sh -c CMD NAME`: NAME is $0 and stays in sh's command line; `read` is a builtin, so sh
    // neither forks nor execs while it waits on the open stdin pipe.
    let child = Reaped(
        Command::new("/bin/sh")
            .args(["-c", "read x", &id])
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn sh"),
    );
    let pid = child.0.id();
    let want = format!("process {pid}:");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut found = leaks(&id);
    while !found.iter().any(|l| l.starts_with(&want)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        found = leaks(&id);
    }
    assert!(found.iter().any(|l| l.starts_with(&want)), "{found:?}");
    drop(child);
    let left = wait_no_leaks(&id, Duration::from_secs(5));
    assert!(left.is_empty(), "{left:?}");
}

/// restart() brings containerd back on the same state: a running container survives it.
#[test]
fn restart_keeps_running_containers() {
    if !require_root_or_skip() {
        return;
    }
    let mut c = Containerd::start(ContainerdVersion::V1_6);
    let image = c.import_busybox();
    let id = unique_id("harness-restart");
    c.ctr_ok(&[
        "run",
        "-d",
        "--runtime",
        RUNC,
        &image,
        &id,
        "/bin/sleep",
        "300",
    ]);
    let before = c.pid();
    c.restart();
    assert_ne!(c.pid(), before, "restart must start a new containerd");
    let tasks = c.ctr_ok(&["tasks", "ls"]);
    assert!(
        tasks
            .lines()
            .any(|l| l.contains(&id) && l.contains("RUNNING")),
        "{id} did not survive the restart:\n{tasks}"
    );
    drop(c);
    let left = wait_no_leaks(&id, Duration::from_secs(5));
    assert!(left.is_empty(), "{id} left behind: {left:#?}");
}

/// With `cri: true` the CRI plugin loads (it needs restrict_oom_score_adj on these machines);
/// by default it is off.
#[test]
fn cri_plugin_is_opt_in() {
    if !require_root_or_skip() {
        return;
    }
    let cri_status = |c: &Containerd| -> String {
        c.ctr_ok(&["plugins", "ls"])
            .lines()
            .find(|l| {
                l.contains("io.containerd.grpc.v1") && l.split_whitespace().nth(1) == Some("cri")
            })
            .map(|l| l.split_whitespace().last().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    let plain = Containerd::start(ContainerdVersion::V1_6);
    assert_ne!(cri_status(&plain), "ok", "CRI must be off by default");
    let with_cri = Containerd::start_with(
        ContainerdVersion::V1_6,
        ContainerdOptions {
            cri: true,
            ..ContainerdOptions::default()
        },
    );
    assert_eq!(
        cri_status(&with_cri),
        "ok",
        "{}",
        with_cri.ctr_ok(&["plugins", "ls"])
    );
}
