//! The container lifecycle through `ctr`, as a user runs it, on containerd 1.6, 1.7 and 2.1 with
//! the lxcri shim: each test below runs once per containerd version.

use integration::process::wait_with_limit;
use integration::run_with_busybox as run;
use integration::{assert_clean, assert_exit, stderr, stdout, wait_until, Events};
use integration::{ctr_run_d, ctr_run_rm, kill_shim_of, unique_id, Containerd, ContainerdVersion};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNTIME: &str = "io.containerd.lxcri.v2";

integration::per_containerd_version!(
    run_rm_passes_streams_and_exit_status,
    stdin_reaches_the_container_and_ends_at_eof,
    sigkill_gives_137,
    detached_task_ls_kill_delete,
    kill_all_signals_every_process,
    create_then_start,
    process_spec_is_applied,
    resources_land_in_the_cgroup,
    events_are_published,
    bad_input_fails_clearly_and_leaves_nothing,
    shim_killed_then_delete_cleans_up,
    runtime_config_path_is_honoured,
);

fn run_rm_passes_streams_and_exit_status(cd: &Containerd) {
    let id = unique_id("rm");
    let o = ctr_run_rm(
        cd,
        &[],
        &id,
        &["/bin/sh", "-c", "echo out; echo err >&2; exit 42"],
    );
    assert_exit(&o, 42);
    assert_eq!(stdout(&o), "out\n");
    assert!(stderr(&o).contains("err"), "stderr: {}", stderr(&o));
    assert!(!stdout(&o).contains("err"), "stderr leaked into stdout");
    assert_clean(&id);

    let id = unique_id("rm0");
    let o = ctr_run_rm(cd, &[], &id, &["true"]);
    assert_exit(&o, 0);
    assert_clean(&id);

    // A large output arrives complete.
    let id = unique_id("big");
    let o = ctr_run_rm(cd, &[], &id, &["sh", "-c", "seq 1 20000"]);
    assert_eq!(o.status.code(), Some(0));
    let lines: Vec<&str> = std::str::from_utf8(&o.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), 20000);
    assert_eq!(lines.last(), Some(&"20000"));
    assert_clean(&id);
}

fn stdin_reaches_the_container_and_ends_at_eof(cd: &Containerd) {
    let id = unique_id("in");
    let o = cd.ctr_stdin(
        &[
            "run",
            "--rm",
            "--runtime",
            RUNTIME,
            integration::BUSYBOX_REF,
            &id,
            "cat",
        ],
        b"data\nmore\n",
    );
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "data\nmore\n");
    assert_clean(&id);
}

/// Runs `ctr run --rm` in the background, kills the task with `signal`, returns ctr's status.
fn killed_foreground(
    cd: &Containerd,
    id: &str,
    signal: &str,
    flags: &[&str],
    cmd: &[&str],
) -> Option<i32> {
    let mut args = vec!["run", "--rm", "--runtime", RUNTIME];
    args.extend(flags);
    args.extend([integration::BUSYBOX_REF, id]);
    args.extend(cmd);
    let mut child = cd
        .ctr_command(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ctr runs");
    cd.wait_task(id, "RUNNING");
    // Resent until the task ends: a PID 1 ignores SIGTERM until its handler is installed.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let _ = cd.ctr(&["task", "kill", "-s", signal, id]);
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(250));
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = wait_with_limit(&mut child, Duration::from_secs(1));
            let tasks = stdout(&cd.ctr(&["task", "ls"]));
            let procs = integration::process::processes_mentioning(id);
            let pid = cd.task(id).map(|t| t.0).unwrap_or(0);
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let cmdline =
                std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let lxc = std::fs::read_to_string(format!(
                "/run/lxcri/{}/{id}/config",
                integration::NAMESPACE
            ))
            .unwrap_or_default();
            eprintln!("task pid {pid} {cmdline:?}\n{status}\nLXC config:\n{lxc}");
            panic!("ctr run {id} ({cmd:?}, flags {flags:?}) did not end after kill -s {signal}:\n{tasks}\n{procs:?}");
        }
    }
}

fn sigkill_gives_137(cd: &Containerd) {
    let id = unique_id("k9");
    assert_eq!(
        killed_foreground(cd, &id, "SIGKILL", &[], &["sleep", "300"]),
        Some(137)
    );
    assert_clean(&id);
    // A death by SIGTERM gives 143. The kernel delivers SIGTERM to a PID-namespace init only if
    // it handles it (as with runc), so this process shares the host's PID namespace (named by
    // this test's own process: /proc/1 may not be readable in a sandboxed VM).
    let id = unique_id("k15");
    let host_pid_ns = format!("pid:/proc/{}/ns/pid", std::process::id());
    let code = killed_foreground(
        cd,
        &id,
        "SIGTERM",
        &["--with-ns", &host_pid_ns],
        &["sleep", "300"],
    );
    assert_eq!(code, Some(143));
    assert_clean(&id);
    // A PID 1 that handles SIGTERM gets it.
    let id = unique_id("k15h");
    let code = killed_foreground(
        cd,
        &id,
        "SIGTERM",
        &[],
        &[
            "sh",
            "-c",
            "trap 'exit 3' TERM; while :; do sleep 0.05; done",
        ],
    );
    assert_eq!(code, Some(3));
    assert_clean(&id);
}

fn detached_task_ls_kill_delete(cd: &Containerd) {
    let id = unique_id("det");
    ctr_run_d(cd, &[], &id, &["sleep", "300"]);
    let pid = cd.wait_task(&id, "RUNNING");
    assert!(pid > 1, "task pid {pid}");
    // The pid is the container's PID 1, in a PID namespace of its own.
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/pid")).unwrap();
    assert_ne!(ns(&pid.to_string()), ns("self"));
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert!(nspid.trim_end().ends_with("\t1"), "{nspid}");
    // It is a real LXC container, visible to LXC's tools on lxcri's LXC path.
    let lxcpath = format!("/run/lxcri/{}", integration::NAMESPACE);
    let info = Command::new("lxc-info")
        .args(["-P", &lxcpath, "-n", &id, "-s", "-p"])
        .output()
        .unwrap();
    let info = stdout(&info);
    assert!(
        info.contains("RUNNING") && info.contains(&pid.to_string()),
        "lxc-info: {info}"
    );
    // ps lists the container's process.
    let ps = cd.ctr_ok(&["task", "ps", &id]);
    assert!(ps.contains(&pid.to_string()), "{ps}");
    // Delete of a running task is refused.
    let o = cd.ctr(&["task", "delete", &id]);
    assert!(!o.status.success());
    cd.ctr_ok(&["task", "kill", "-s", "SIGKILL", &id]);
    cd.wait_task(&id, "STOPPED");
    // Kill of an exited task: not found.
    let o = cd.ctr(&["task", "kill", "-s", "SIGKILL", &id]);
    assert!(!o.status.success(), "kill of a stopped task succeeded");
    cd.ctr_ok(&["task", "delete", &id]);
    cd.ctr_ok(&["container", "rm", &id]);
    assert_clean(&id);
}

fn kill_all_signals_every_process(cd: &Containerd) {
    let id = unique_id("all");
    ctr_run_d(cd, &[], &id, &["sh", "-c", "sleep 300 & sleep 301 & wait"]);
    let pid = cd.wait_task(&id, "RUNNING");
    wait_until(
        "the children in ctr task ps",
        Duration::from_secs(5),
        || cd.ctr_ok(&["task", "ps", &id]).lines().count() >= 4,
    );
    let ps = cd.ctr_ok(&["task", "ps", &id]);
    assert_eq!(
        ps.lines().count(),
        4,
        "header + sh + 2 sleeps, and nothing of lxcri's: {ps}"
    );
    cd.ctr_ok(&["task", "kill", "--all", "-s", "SIGKILL", &id]);
    cd.wait_task(&id, "STOPPED");
    assert!(!integration::process::alive_not_zombie(pid as i32));
    cd.ctr_ok(&["task", "delete", &id]);
    cd.ctr_ok(&["container", "rm", &id]);
    assert_clean(&id);
}

fn create_then_start(cd: &Containerd) {
    let id = unique_id("cs");
    // (ctr container create would take a `-c` of the command as its own --config flag.)
    cd.ctr_ok(&[
        "container",
        "create",
        "--runtime",
        RUNTIME,
        integration::BUSYBOX_REF,
        &id,
        "sleep",
        "300",
    ]);
    // ctr task start creates and starts the task; -d returns at once.
    cd.ctr_ok(&["task", "start", "-d", &id]);
    cd.wait_task(&id, "RUNNING");
    cd.kill_delete_rm(&id);
    assert_clean(&id);
}

fn process_spec_is_applied(cd: &Containerd) {
    let id = unique_id("spec");
    let script = "echo env=$FOO; echo cwd=$(pwd); echo uid=$(id -u) gid=$(id -g) groups=$(id -G); \
                  echo host=$(hostname); grep CapEff /proc/self/status; grep NoNewPrivs /proc/self/status; \
                  touch /rootfs-write 2>/dev/null && echo rw || echo ro";
    // ctr 1.6 has no --user and no --hostname: there the process runs as root, hostname unset.
    let with_user = cd.version() != ContainerdVersion::V1_6;
    let mut args = vec![
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        "--env",
        "FOO=bar baz",
        "--cwd",
        "/tmp",
    ];
    if with_user {
        args.extend(["--user", "65534:65534", "--hostname", "box"]);
    }
    args.extend([
        "--cap-drop",
        "CAP_NET_RAW",
        "--read-only",
        integration::BUSYBOX_REF,
        &id,
        "sh",
        "-c",
        script,
    ]);
    let o = cd.ctr(&args);
    let out = stdout(&o);
    assert_exit(&o, 0);
    assert!(out.contains("env=bar baz\n"), "{out}");
    assert!(out.contains("cwd=/tmp\n"), "{out}");
    if with_user {
        assert!(out.contains("host=box\n"), "{out}");
        assert!(out.contains("uid=65534 gid=65534"), "{out}");
        // A non-root user gets an empty effective set (its bounding set keeps the rest).
        assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    } else {
        assert!(out.contains("uid=0 gid=0"), "{out}");
    }
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(out.contains("ro\n"), "read-only rootfs was writable: {out}");
    assert_clean(&id);

    // As root: ctr's default capabilities minus CAP_NET_RAW (bit 13).
    let id = unique_id("caps");
    let o = ctr_run_rm(
        cd,
        &["--cap-drop", "CAP_NET_RAW"],
        &id,
        &["grep", "CapBnd", "/proc/self/status"],
    );
    let bnd = u64::from_str_radix(stdout(&o).split_whitespace().last().unwrap_or("0"), 16).unwrap();
    assert_eq!(
        bnd & (1 << 13),
        0,
        "CAP_NET_RAW still in the bounding set: {bnd:x}"
    );
    assert_ne!(bnd & (1 << 0), 0, "CAP_CHOWN missing: {bnd:x}");
    assert_clean(&id);
}

fn resources_land_in_the_cgroup(cd: &Containerd) {
    let id = unique_id("cg");
    ctr_run_d(
        cd,
        &["--memory-limit", "67108864", "--cpus", "0.5"],
        &id,
        &["sleep", "300"],
    );
    let pid = cd.wait_task(&id, "RUNNING");
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    // ctr's cgroupsPath is /<namespace>/<id>.
    let want = format!("/{}/{}", integration::NAMESPACE, id);
    assert!(cgroup.contains(&want), "{cgroup}");
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if v2 {
        let max = std::fs::read_to_string(format!("/sys/fs/cgroup{want}/memory.max")).unwrap();
        assert_eq!(max.trim(), "67108864");
        let cpu = std::fs::read_to_string(format!("/sys/fs/cgroup{want}/cpu.max")).unwrap();
        assert_eq!(cpu.trim(), "50000 100000");
    } else {
        let max =
            std::fs::read_to_string(format!("/sys/fs/cgroup/memory{want}/memory.limit_in_bytes"))
                .unwrap();
        assert_eq!(max.trim(), "67108864");
        let quota =
            std::fs::read_to_string(format!("/sys/fs/cgroup/cpu{want}/cpu.cfs_quota_us")).unwrap();
        assert_eq!(quota.trim(), "50000");
    }
    cd.kill_delete_rm(&id);
    assert_clean(&id);
}

fn events_are_published(cd: &Containerd) {
    let id = unique_id("ev");
    let events = Events::watch(cd);
    let o = ctr_run_rm(cd, &[], &id, &["sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7));
    let text = events.stop();
    let mine: Vec<&str> = text.lines().filter(|l| l.contains(&id)).collect();
    let pos = |topic: &str| {
        mine.iter()
            .position(|l| l.contains(topic))
            .unwrap_or_else(|| panic!("no {topic} for {id} in:\n{text}"))
    };
    let (c, s, e, d) = (
        pos("/tasks/create"),
        pos("/tasks/start"),
        pos("/tasks/exit"),
        pos("/tasks/delete"),
    );
    assert!(
        c < s && s < e && e < d,
        "events out of order:\n{}",
        mine.join("\n")
    );
    assert!(
        mine[e].contains("exit_status:7")
            || mine[e].contains("exit_status\":7")
            || mine[e].contains("exit_status: 7"),
        "{}",
        mine[e]
    );
    assert!(mine[e].contains("exited_at"), "{}", mine[e]);
    assert_clean(&id);
}

fn bad_input_fails_clearly_and_leaves_nothing(cd: &Containerd) {
    // A command that does not exist: Create fails, naming it.
    let id = unique_id("bad1");
    let o = ctr_run_rm(cd, &[], &id, &["/no/such/binary"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("/no/such/binary"),
        "stderr: {}",
        stderr(&o)
    );
    let _ = cd.ctr(&["container", "rm", &id]);
    assert_clean(&id);

    // A mount of a filesystem type this kernel does not know.
    let id = unique_id("bad2");
    let o = ctr_run_rm(
        cd,
        &["--mount", "type=nosuchfs,src=none,dst=/mnt,options=rw"],
        &id,
        &["true"],
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("nosuchfs") && err.contains("mounts["),
        "stderr: {err}"
    );
    let _ = cd.ctr(&["container", "rm", &id]);
    assert_clean(&id);

    // A working directory that cannot be entered is reported at Create, not after Start.
    let id = unique_id("bad3");
    let o = ctr_run_rm(cd, &["--cwd", "/etc/passwd"], &id, &["true"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/etc/passwd"), "stderr: {}", stderr(&o));
    let _ = cd.ctr(&["container", "rm", &id]);
    assert_clean(&id);
}

fn shim_killed_then_delete_cleans_up(cd: &Containerd) {
    let id = unique_id("crash");
    ctr_run_d(cd, &[], &id, &["sleep", "300"]);
    cd.wait_task(&id, "RUNNING");
    kill_shim_of(&id);
    // containerd notices the dead shim and runs `containerd-shim-lxcri-v2 delete`, which must
    // remove the container within its 5 s limit.
    cd.force_delete_task(&id, Duration::from_secs(15));
    let _ = cd.ctr(&["container", "rm", &id]);
    assert_clean(&id);
}

fn runtime_config_path_is_honoured(cd: &Containerd) {
    // ctr passes --runtime-config-path in the runtime options; lxcri reads its config from it.
    let dir = tempfile::tempdir().unwrap();
    let lxc_root = dir.path().join("lxc");
    let cfg = dir.path().join("lxcri.toml");
    std::fs::write(&cfg, format!("lxc_root = \"{}\"\n", lxc_root.display())).unwrap();
    let id = unique_id("cfg");
    let cfg_s = cfg.display().to_string();
    ctr_run_d(
        cd,
        &["--runtime-config-path", &cfg_s],
        &id,
        &["sleep", "300"],
    );
    cd.wait_task(&id, "RUNNING");
    let lxc_dir = lxc_root.join(integration::NAMESPACE).join(&id);
    assert!(
        lxc_dir.join("config").is_file(),
        "{} has no LXC config",
        lxc_dir.display()
    );
    cd.kill_delete_rm(&id);
    assert!(!lxc_dir.exists());
    assert_clean(&id);

    // A config file that is wrong fails Create and names the file and the key.
    std::fs::write(&cfg, "lxc_root = \"relative\"\n").unwrap();
    let id = unique_id("cfgbad");
    let o = ctr_run_rm(cd, &["--runtime-config-path", &cfg_s], &id, &["true"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("lxc_root") && stderr(&o).contains("lxcri.toml"),
        "stderr: {}",
        stderr(&o)
    );
    let _ = cd.ctr(&["container", "rm", &id]);
    assert_clean(&id);
}
