//! The systemd cgroup driver against a real systemd: a node whose kubelet uses the systemd
//! cgroup driver (`SystemdCgroup = true` in the CRI runtime options, pod cgroup parents that are
//! systemd slices), so containerd hands lxcri `slice:cri-containerd:<id>` cgroup paths. The test
//! plays the kubelet: it makes the pod's slices as systemd transient units over D-Bus (as the
//! kubelet does), runs a pod and a container with lxcri, and checks that systemd's view of its
//! units stays consistent (the slices active, no failed unit, also after `daemon-reload`) and
//! that nothing is left once the pod and its slice are gone.
//!
//! Meaningful only with systemd as PID 1 and cgroup v2 alone: the VM lane's systemd mode
//! (scripts/vm/lane.sh) runs it; elsewhere it says so and skips.

use integration::*;
use k8s_cri::v1 as api;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn run(v: ContainerdVersion, scenario: fn(&CriNode)) {
    if !require_root_or_skip() {
        return;
    }
    if !systemd_is_init() || !cgroup_v2_only() {
        eprintln!(
            "SKIPPED: needs systemd as PID 1 and cgroup v2 alone (this host has neither); the VM \
             lane's systemd mode runs it (scripts/vm/lane.sh)"
        );
        return;
    }
    let node = CriNode::start_with(v, true);
    scenario(&node);
}

per_containerd_version!(pod_in_systemd_slices_keeps_systemd_consistent);

fn sh(cmd: &str, args: &[&str]) -> Output {
    integration::process::run_with_limit(
        Command::new(cmd).args(args),
        None,
        Duration::from_secs(60),
    )
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn active_state(unit: &str) -> String {
    let o = sh("systemctl", &["show", "-P", "ActiveState", unit]);
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Starts slice `name` as a transient unit, as the kubelet's systemd driver does
/// (StartTransientUnit over D-Bus), unless it is already active; waits until it is.
fn start_slice(name: &str) {
    if active_state(name) == "active" {
        return;
    }
    let o = sh(
        "busctl",
        &[
            "call",
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "StartTransientUnit",
            "ssa(sv)a(sa(sv))",
            name,
            "replace",
            "1",
            "Description",
            "s",
            "lxcri test (kubelet-made slice)",
            "0",
        ],
    );
    assert!(
        o.status.success(),
        "StartTransientUnit {name}: {}",
        text(&o)
    );
    wait_until(&format!("{name} active"), Duration::from_secs(20), || {
        active_state(name) == "active"
    });
}

fn failed_units() -> String {
    let o = sh(
        "systemctl",
        &["list-units", "--failed", "--all", "--plain", "--no-legend"],
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// The cgroup (v2) process `pid` is in, e.g. `/kubepods.slice/.../x.scope`.
fn cgroup_of(pid: i32) -> String {
    let t = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    t.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or_else(|| panic!("process {pid} has no cgroup v2 line: {t:?}"))
        .to_string()
}

/// Says what systemd shows, for the lane's log (the report reads it).
fn show(what: &str, o: &Output) {
    eprintln!(
        "[systemd] {what} (exit {}):\n{}",
        o.status,
        text(o).trim_end()
    );
}

fn pod_in_systemd_slices_keeps_systemd_consistent(n: &CriNode) {
    const MIB: i64 = 1 << 20;
    let failed_before = failed_units();
    // The kubelet's layout: kubepods.slice / kubepods-besteffort.slice / a slice per pod, its
    // uid's dashes escaped (a dash in a slice name means a level).
    let uid = unique_id("uid").replace('-', "_");
    let pod_slice = format!("kubepods-besteffort-pod{uid}.slice");
    let slice_dir = format!("/kubepods.slice/kubepods-besteffort.slice/{pod_slice}");
    let slice_path = Path::new("/sys/fs/cgroup").join(slice_dir.trim_start_matches('/'));
    for s in ["kubepods.slice", "kubepods-besteffort.slice", &pod_slice] {
        start_slice(s);
    }
    assert!(slice_path.is_dir(), "{} is not there", slice_path.display());

    let mut cfg = n.pod_config("sdpod", false);
    cfg.linux.get_or_insert_with(Default::default).cgroup_parent = pod_slice.clone();
    let pod = n.run_pod(&cfg, LXCRI_HANDLER);
    let mut config = n.container_config("app", &["/bin/sh", "-c", "exec sleep 100000"]);
    config.linux.get_or_insert_with(Default::default).resources =
        Some(api::LinuxContainerResources {
            memory_limit_in_bytes: 64 * MIB,
            cpu_quota: 50_000,
            cpu_period: 100_000,
            ..Default::default()
        });
    let id = n.create_container_with(&pod, &cfg, config);
    n.start_container(&id);

    // containerd turned the slice parent into `slice:cri-containerd:<id>`; lxcri put each
    // process where systemd would have: <pod slice>/cri-containerd-<id>.scope.
    let pid = n.container_pid(&id);
    let scope = format!("cri-containerd-{id}.scope");
    assert_eq!(cgroup_of(pid), format!("{slice_dir}/{scope}"));
    let sandbox_scope = format!("cri-containerd-{pod}.scope");
    assert_eq!(
        cgroup_of(n.sandbox_pid(&pod)),
        format!("{slice_dir}/{sandbox_scope}")
    );
    // The limits are in the scope's files; systemd manages the slices' cgroup.subtree_control,
    // so they are read again after a daemon-reload below.
    let limits = || {
        let read = |f: &str| {
            std::fs::read_to_string(slice_path.join(&scope).join(f))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|e| format!("cannot read {f}: {e}"))
        };
        (read("memory.max"), read("cpu.max"))
    };
    let want = ((64 * MIB).to_string(), "50000 100000".to_string());
    assert_eq!(limits(), want, "memory.max and cpu.max of {scope}");

    // systemd's view while the pod runs.
    let status = sh(
        "systemctl",
        &["status", "--no-pager", "--lines=0", &pod_slice],
    );
    show(&format!("systemctl status {pod_slice}"), &status);
    assert!(
        status.status.success(),
        "systemctl status {pod_slice}: {}",
        text(&status)
    );
    assert!(
        text(&status).contains(&scope) && text(&status).contains(&pid.to_string()),
        "systemd's cgroup tree of {pod_slice} does not show {scope} with pid {pid}:\n{}",
        text(&status)
    );
    let scope_unit = sh(
        "systemctl",
        &["show", "-p", "LoadState,ActiveState,ControlGroup", &scope],
    );
    show(
        &format!("systemctl show {scope} (made by lxcri, not by systemd)"),
        &scope_unit,
    );
    let ps_unit = sh(
        "systemctl",
        &["status", "--no-pager", "--lines=0", &pid.to_string()],
    );
    show(
        &format!("systemctl status {pid} (the container's init)"),
        &ps_unit,
    );
    assert_eq!(
        failed_units(),
        failed_before,
        "failed units while the pod runs"
    );

    // A daemon-reload (any package upgrade does one) must not move or kill anything.
    let reload = sh("systemctl", &["daemon-reload"]);
    assert!(reload.status.success(), "daemon-reload: {}", text(&reload));
    assert_eq!(
        cgroup_of(pid),
        format!("{slice_dir}/{scope}"),
        "after daemon-reload"
    );
    let (out, _, code) = n.exec_sync(&id, &["echo", "alive"], 10);
    assert_eq!((out.as_str(), code), ("alive\n", 0), "after daemon-reload");
    assert_eq!(active_state(&pod_slice), "active", "after daemon-reload");
    assert_eq!(limits(), want, "memory.max and cpu.max after daemon-reload");
    // The kubelet sets properties on the pod's slice (CPU shares 2 = CPUWeight 1 for a
    // best-effort pod) and on the QoS slices now and then; systemd then realizes the slices'
    // cgroups again, cgroup.subtree_control included.
    let prop = sh(
        "systemctl",
        &["set-property", "--runtime", &pod_slice, "CPUWeight=1"],
    );
    assert!(prop.status.success(), "set-property: {}", text(&prop));
    let sc = std::fs::read_to_string(slice_path.join("cgroup.subtree_control")).unwrap_or_default();
    eprintln!(
        "[systemd] {pod_slice} cgroup.subtree_control after set-property: {}",
        sc.trim()
    );
    assert_eq!(
        limits(),
        want,
        "memory.max and cpu.max after set-property on {pod_slice}"
    );
    let (out, _, code) = n.exec_sync(&id, &["echo", "alive"], 10);
    assert_eq!((out.as_str(), code), ("alive\n", 0), "after set-property");
    assert_eq!(
        failed_units(),
        failed_before,
        "failed units after set-property"
    );
    assert_eq!(
        failed_units(),
        failed_before,
        "failed units after daemon-reload"
    );

    // The kubelet's teardown: the pod goes, then its slice.
    n.stop_container(&id, 1);
    n.remove_container(&id);
    n.remove_pod_fully(&pod);
    for x in [&pod, &id] {
        assert_clean(x);
    }
    let children = |p: &PathBuf| -> Vec<String> {
        std::fs::read_dir(p)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        children(&slice_path),
        Vec::<String>::new(),
        "cgroups left in {pod_slice} after RemovePodSandbox"
    );
    let stop = sh("systemctl", &["stop", &pod_slice]);
    assert!(
        stop.status.success(),
        "systemctl stop {pod_slice}: {}",
        text(&stop)
    );
    wait_until(
        &format!("{} removed", slice_path.display()),
        Duration::from_secs(20),
        || !slice_path.exists(),
    );
    let after = sh(
        "systemctl",
        &["show", "-p", "LoadState,ActiveState", &pod_slice],
    );
    show(&format!("systemctl show {pod_slice} after stop"), &after);
    assert_eq!(failed_units(), failed_before, "failed units after the pod");
}
