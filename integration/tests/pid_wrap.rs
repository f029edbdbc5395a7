//! Exit statuses stay exact when pids wrap around, as they do on a node after weeks.
//!
//! containerd, its shims and their containers run in a PID namespace of their own whose
//! `pid_max` is 500, with rootfs on ZFS so that the pod's shim runs helper commands (the `sh`
//! around `zfs`, the identify helper) whose exits nobody waits for. A container forks without
//! pause, so the pid counter goes round and round, while a stream of execs runs in another
//! container of the same pod shim: each exec's status must be its own, and its output must be
//! there (an exec handed a stale exit "ends" before it ran).

use integration::{assert_clean, require_root_or_skip, stdout, unique_id};
use integration::{Containerd, ContainerdOptions, ContainerdVersion, ZfsPool};
use std::time::{Duration, Instant};

const RUNTIME: &str = "io.containerd.lxcri.v2";
const PID_MAX: u32 = 500;
const EXECS: u32 = 60;
const SANDBOX_ANNOTATION: &str = "io.kubernetes.cri.sandbox-id";

#[test]
fn exec_statuses_stay_exact_while_pids_wrap_around() {
    if !require_root_or_skip() {
        return;
    }
    let v = ContainerdVersion::V1_7;
    let pool = ZfsPool::create();
    // zfs-fuse mounts datasets in the host's mount namespace: below a shared mount they reach
    // containerd's namespace too (containerd's own directory is shared by the harness).
    integration::process::set_shared(pool.mountpoint())
        .unwrap_or_else(|e| panic!("making {} shared: {e}", pool.mountpoint().display()));
    let config = pool.mountpoint().join("lxcri.toml");
    std::fs::write(
        &config,
        format!(
            "[zfs]\ndataset = \"{}\"\nmount_root = \"{}\"\ngc_interval_secs = 0\n",
            pool.dataset("lxcri"),
            pool.mountpoint().join("roots").display()
        ),
    )
    .unwrap();
    let cd = Containerd::start_with(
        v,
        ContainerdOptions {
            pid_max: Some(PID_MAX),
            ..Default::default()
        },
    );
    let image = cd.import_busybox();
    let pod = unique_id("wrappod");
    let config = config.display().to_string();
    let annotation = format!("{SANDBOX_ANNOTATION}={pod}");
    let flags = [
        "--runtime",
        RUNTIME,
        "--runtime-config-path",
        &config,
        "--annotation",
        &annotation,
    ];
    let run_d = |id: &str, cmd: &str| {
        let mut args = vec!["run", "-d"];
        args.extend(flags);
        args.extend([image.as_str(), id, "sh", "-c", cmd]);
        cd.ctr_ok(&args);
    };

    // The container the execs run in, and a few short-lived ones in the same shim: their
    // Creates and Deletes leave exits of helpers nobody waited for.
    let target = unique_id("wraptarget");
    run_d(&target, "sleep 3600");
    let churn: Vec<String> = (0..4)
        .map(|i| unique_id(&format!("wrapchurn{i}")))
        .collect();
    for id in &churn {
        let mut args = vec!["run", "--rm"];
        args.extend(flags);
        args.extend([image.as_str(), id.as_str(), "true"]);
        cd.ctr_ok(&args);
    }
    // The forker: every /bin/true takes a pid in containerd's namespace too. It counts them in
    // a file of the host's, bind-mounted.
    let out_dir = tempfile::Builder::new()
        .prefix("lxcri-wrap-")
        .tempdir_in("/tmp")
        .unwrap();
    let mount = format!(
        "type=bind,src={},dst=/out,options=rbind:rw",
        out_dir.path().display()
    );
    let forker = unique_id("wrapforker");
    {
        let mut args = vec!["run", "-d", "--mount", &mount];
        args.extend(flags);
        args.extend([
            image.as_str(),
            forker.as_str(),
            "sh",
            "-c",
            "i=0; while :; do /bin/true; i=$((i+1)); echo $i > /out/forks; done",
        ]);
        cd.ctr_ok(&args);
    }
    let count_file = out_dir.path().join("forks");
    // How many times it forked so far (polled: a read can fall between the shell's truncation
    // of the file and its write).
    let forks = || -> u64 {
        let mut last = None;
        integration::wait_until("the forker's count", Duration::from_secs(20), || {
            last = std::fs::read_to_string(&count_file)
                .ok()
                .and_then(|t| t.trim().parse().ok());
            last.is_some()
        });
        last.unwrap_or(0)
    };
    let forks_before = forks();

    let t0 = Instant::now();
    let mut wrong = Vec::new();
    for i in 0..EXECS {
        let status = i % 250 + 1;
        let exec_id = format!("e{i}");
        let script = format!("sleep 0.1; echo ran-{i}; exit {status}");
        let out = cd.ctr(&[
            "task",
            "exec",
            "--exec-id",
            &exec_id,
            &target,
            "sh",
            "-c",
            &script,
        ]);
        let (got, text) = (out.status.code(), stdout(&out));
        if got != Some(status as i32) || text.trim() != format!("ran-{i}") {
            wrong.push(format!(
                "exec {i}: status {got:?} (want {status}), stdout {text:?}, stderr {:?}",
                integration::stderr(&out)
            ));
        }
    }
    let elapsed = t0.elapsed();
    let forks_during = forks().saturating_sub(forks_before);
    let wraps = forks_during / u64::from(PID_MAX);
    println!(
        "pid wrap: {EXECS} execs in {:.1} s while the forker forked {forks_during} times \
         (pid_max {PID_MAX}: the pid counter went round at least {wraps} times); wrong: {}",
        elapsed.as_secs_f64(),
        wrong.len()
    );
    assert!(
        wrong.is_empty(),
        "execs with a status not their own:\n{}",
        wrong.join("\n")
    );
    assert!(
        wraps >= 5,
        "the pids wrapped only {wraps} times ({forks_during} forks): the test proved little"
    );

    for id in [&forker, &target] {
        cd.ctr_ok(&["task", "kill", "-s", "SIGKILL", id]);
    }
    for id in [&forker, &target] {
        wait_stopped(&cd, id);
        cd.ctr_ok(&["task", "delete", id]);
        cd.ctr_ok(&["container", "rm", id]);
    }
    for id in churn.iter().chain([&forker, &target]) {
        assert_clean(id);
    }
    let clones = pool.zfs_ok(&["list", "-H", "-r", "-o", "name", &pool.dataset("lxcri")]);
    assert!(
        !clones.contains("/containers/"),
        "clones left after delete:\n{clones}"
    );
}

/// Polls `ctr task ls` until the task is STOPPED (bounded).
fn wait_stopped(cd: &Containerd, id: &str) {
    integration::wait_until(&format!("{id} stopped"), Duration::from_secs(20), || {
        cd.ctr_ok(&["task", "ls"])
            .lines()
            .any(|l| l.starts_with(id) && l.contains("STOPPED"))
    });
}
