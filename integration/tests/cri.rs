//! Kubernetes through containerd's CRI plugin: the test plays the kubelet (CRI calls over
//! containerd's socket) against a real containerd whose runtime handler `lxcri` maps to
//! `io.containerd.lxcri.v2`, with real CNI plugins on a private bridge and our pause image as the
//! sandbox image. Each scenario ends with the pod removed and nothing of it left on the host.

use integration::*;
use k8s_cri::v1 as api;
use std::path::Path;
use std::time::{Duration, Instant};

fn run(v: ContainerdVersion, scenario: fn(&CriNode)) {
    if !require_root_or_skip() {
        return;
    }
    let node = CriNode::start(v);
    scenario(&node);
}

per_containerd_version!(
    pod_lifecycle,
    pod_containers_share_one_network_and_one_shim,
    pods_reach_each_other_by_ip,
    container_stats_have_real_numbers,
    container_log_is_in_cri_format,
    shared_process_namespace_shows_siblings,
);

/// A pod's network namespace path (from the sandbox's runtime spec in the verbose status).
fn pod_netns(n: &CriNode, pod: &str) -> String {
    let status = n.pod_status(pod);
    let info = status.info.get("info").cloned().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&info).expect("verbose info is JSON");
    v["runtimeSpec"]["linux"]["namespaces"]
        .as_array()
        .and_then(|nss| {
            nss.iter()
                .find(|ns| ns["type"] == "network")
                .and_then(|ns| ns["path"].as_str().map(String::from))
        })
        .unwrap_or_else(|| panic!("pod {pod}: no network namespace path in {info}"))
}

/// Veth ends plugged into the test's bridge.
fn bridge_ports(n: &CriNode) -> Vec<String> {
    let out = std::process::Command::new("ip")
        .args(["-o", "link", "show", "master", &n.net.bridge])
        .output()
        .expect("ip link show master");
    stdout(&out).lines().map(String::from).collect()
}

/// Removes the pod (StopPodSandbox, RemovePodSandbox) and checks nothing of it is left: no
/// shim, no process, mount, LXC dir or cgroup naming the pod or its containers, no network
/// namespace, no veth on the bridge.
fn remove_pod_and_check(n: &CriNode, pod: &str, containers: &[&str]) {
    let netns = pod_netns(n, pod);
    n.remove_pod_fully(pod);
    for id in std::iter::once(&pod).chain(containers) {
        assert_clean(id);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let shims = lxcri_shims(&n.containerd);
        let ports = bridge_ports(n);
        let netns_left = Path::new(&netns).exists();
        if shims.is_empty() && ports.is_empty() && !netns_left {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after RemovePodSandbox {pod}: shims {shims:?}, bridge ports {ports:?}, netns {netns} \
             exists: {netns_left}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls (ExecSync `test -f`) until `path` exists in container `id`.
fn wait_for_file(n: &CriNode, id: &str, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while n.exec_sync(id, &["test", "-f", path], 5).2 != 0 {
        assert!(Instant::now() < deadline, "{path} did not appear in {id}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn state(s: &api::ContainerStatus) -> api::ContainerState {
    api::ContainerState::try_from(s.state).unwrap_or(api::ContainerState::ContainerUnknown)
}

/// The whole kubelet sequence on one pod: run, status, exit code, exec, stop (SIGTERM, then
/// SIGKILL after the grace period), remove.
fn pod_lifecycle(n: &CriNode) {
    let cfg = n.pod_config("life", false);
    let pod = n.run_pod(&cfg, LXCRI_HANDLER);

    // A container that ends by itself: its exit code reaches ContainerStatus.
    let quick = n.run_container(&pod, &cfg, "quick", &["/bin/sh", "-c", "exit 7"]);

    let s = n.wait_exited(&quick, Duration::from_secs(20));
    assert_eq!(s.exit_code, 7, "{s:?}");
    assert!(s.finished_at >= s.started_at && s.started_at > 0, "{s:?}");

    // A container that ignores SIGTERM: running, exec works, StopContainer kills it after
    // its grace period.
    let stubborn = n.run_container(
        &pod,
        &cfg,
        "stubborn",
        &[
            "/bin/sh",
            "-c",
            "trap '' TERM; touch /tmp/ready; while true; do sleep 1; done",
        ],
    );
    wait_for_file(n, &stubborn, "/tmp/ready");
    let s = n.container_status(&stubborn);
    assert_eq!(state(&s), api::ContainerState::ContainerRunning, "{s:?}");
    let (out, err, code) = n.exec_sync(
        &stubborn,
        &[
            "/bin/sh",
            "-c",
            "echo hi from $(hostname); echo oops >&2; exit 3",
        ],
        10,
    );
    assert_eq!(
        (out.as_str(), err.as_str(), code),
        ("hi from life\n", "oops\n", 3)
    );
    let (_, _, code) = n.exec_sync(&stubborn, &["/bin/true"], 10);
    assert_eq!(code, 0);
    let t0 = Instant::now();
    n.stop_container(&stubborn, 2);
    let took = t0.elapsed();
    let s = n.container_status(&stubborn);
    assert_eq!(state(&s), api::ContainerState::ContainerExited, "{s:?}");
    assert_eq!(s.exit_code, 137, "SIGKILL after the grace period: {s:?}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(15),
        "StopContainer with a 2 s grace period took {took:?}"
    );

    // A container that ends on SIGTERM stops at once with its own status.
    let polite = n.run_container(
        &pod,
        &cfg,
        "polite",
        &[
            "/bin/sh",
            "-c",
            "trap 'exit 42' TERM; touch /tmp/ready; while true; do sleep 1; done",
        ],
    );
    wait_for_file(n, &polite, "/tmp/ready");
    let t0 = Instant::now();
    n.stop_container(&polite, 30);
    let took = t0.elapsed();
    let s = n.container_status(&polite);
    assert_eq!(s.exit_code, 42, "{s:?}");
    assert!(took < Duration::from_secs(10), "SIGTERM stop took {took:?}");

    for id in [&quick, &stubborn, &polite] {
        n.remove_container(id);
    }
    remove_pod_and_check(n, &pod, &[&quick, &stubborn, &polite]);
}

/// Three containers of one pod: one network namespace (a server on localhost reached from a
/// sibling), one hostname, the CRI plugin's /etc/hosts, /etc/resolv.conf and a shared /dev/shm,
/// and exactly one shim process for the pod.
fn pod_containers_share_one_network_and_one_shim(n: &CriNode) {
    let cfg = n.pod_config("trio", false);
    let pod = n.run_pod(&cfg, LXCRI_HANDLER);
    let server = n.run_container(
        &pod,
        &cfg,
        "server",
        &[
            "/bin/sh",
            "-c",
            "while true; do echo hello-from-server | nc -l -p 8080; done",
        ],
    );
    let client = n.run_container(&pod, &cfg, "client", &["sleep", "1000"]);
    let third = n.run_container(&pod, &cfg, "third", &["sleep", "1000"]);

    let shims = lxcri_shims(&n.containerd);
    assert_eq!(shims.len(), 1, "one shim per pod: {shims:?}");

    let sandbox_pid = n.sandbox_pid(&pod);
    let sandbox_net = std::fs::read_link(format!("/proc/{sandbox_pid}/ns/net")).unwrap();
    let sandbox_uts = std::fs::read_link(format!("/proc/{sandbox_pid}/ns/uts")).unwrap();
    let sandbox_ipc = std::fs::read_link(format!("/proc/{sandbox_pid}/ns/ipc")).unwrap();
    for id in [&server, &client, &third] {
        let (out, _, code) = n.exec_sync(
            id,
            &[
                "/bin/sh",
                "-c",
                "for ns in net uts ipc; do readlink /proc/self/ns/$ns; done; hostname",
            ],
            10,
        );
        assert_eq!(code, 0);
        let expect = format!(
            "{}\n{}\n{}\ntrio\n",
            sandbox_net.display(),
            sandbox_uts.display(),
            sandbox_ipc.display()
        );
        assert_eq!(out, expect, "container {id} is not in the pod's namespaces");
    }

    // localhost is shared: the client reaches the server's port.
    let mut got = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let (out, _, _) = n.exec_sync(
            &client,
            &["/bin/sh", "-c", "nc 127.0.0.1 8080 </dev/null"],
            5,
        );
        got = out;
        if got.contains("hello-from-server") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(got.contains("hello-from-server"), "client got {got:?}");

    // The CRI plugin's files are there, and /dev/shm is the pod's.
    let (hosts, _, _) = n.exec_sync(&client, &["cat", "/etc/hosts"], 10);
    assert!(hosts.contains("localhost"), "/etc/hosts: {hosts:?}");
    let (_, _, code) = n.exec_sync(&client, &["test", "-f", "/etc/resolv.conf"], 10);
    assert_eq!(code, 0, "/etc/resolv.conf is missing");
    let (_, _, code) = n.exec_sync(&server, &["/bin/sh", "-c", "echo shm > /dev/shm/x"], 10);
    assert_eq!(code, 0);
    let (shm, _, _) = n.exec_sync(&third, &["cat", "/dev/shm/x"], 10);
    assert_eq!(shm, "shm\n", "/dev/shm is not shared in the pod");

    for id in [&server, &client, &third] {
        n.stop_container(id, 1);
        n.remove_container(id);
    }
    remove_pod_and_check(n, &pod, &[&server, &client, &third]);
}

/// Two pods on the test's bridge: each has an IP of its subnet and one reaches the other's.
fn pods_reach_each_other_by_ip(n: &CriNode) {
    let cfg_a = n.pod_config("pod-a", false);
    let pod_a = n.run_pod(&cfg_a, LXCRI_HANDLER);
    let cfg_b = n.pod_config("pod-b", false);
    let pod_b = n.run_pod(&cfg_b, LXCRI_HANDLER);
    let (ip_a, ip_b) = (n.pod_ip(&pod_a), n.pod_ip(&pod_b));
    assert!(
        ip_a.starts_with(n.net.prefix()),
        "{ip_a} not in {}",
        n.net.subnet
    );
    assert!(
        ip_b.starts_with(n.net.prefix()),
        "{ip_b} not in {}",
        n.net.subnet
    );
    assert_ne!(ip_a, ip_b);

    let server = n.run_container(
        &pod_a,
        &cfg_a,
        "server",
        &[
            "/bin/sh",
            "-c",
            "while true; do echo hello-from-a | nc -l -p 8080; done",
        ],
    );
    let client = n.run_container(&pod_b, &cfg_b, "client", &["sleep", "1000"]);
    let (addr, _, _) = n.exec_sync(&client, &["ip", "-4", "-o", "addr", "show", "eth0"], 10);
    assert!(addr.contains(&ip_b), "pod b's eth0 lacks {ip_b}: {addr}");
    let mut got = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let cmd = format!("nc {ip_a} 8080 </dev/null");
        got = n.exec_sync(&client, &["/bin/sh", "-c", &cmd], 5).0;
        if got.contains("hello-from-a") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        got.contains("hello-from-a"),
        "pod b got {got:?} from {ip_a}"
    );
    assert_eq!(lxcri_shims(&n.containerd).len(), 2, "one shim per pod");

    for (pod, c) in [(&pod_a, &server), (&pod_b, &client)] {
        n.stop_container(c, 1);
        n.remove_container(c);
        n.stop_pod(pod);
    }
    for (pod, c) in [(&pod_a, &server), (&pod_b, &client)] {
        n.remove_pod(pod);
        assert_clean(pod);
        assert_clean(c);
    }
    assert!(bridge_ports(n).is_empty(), "{:?}", bridge_ports(n));
}

/// ContainerStats of a container that burnt some CPU and holds some memory.
fn container_stats_have_real_numbers(n: &CriNode) {
    let cfg = n.pod_config("stats", false);
    let pod = n.run_pod(&cfg, LXCRI_HANDLER);
    let id = n.run_container(
        &pod,
        &cfg,
        "busy",
        &[
            "/bin/sh",
            "-c",
            "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; \
             head -c 8000000 /dev/zero > /dev/shm/fill; touch /tmp/done; sleep 1000",
        ],
    );
    wait_for_file(n, &id, "/tmp/done");
    let s = n.container_stats(&id);
    let attrs = s.attributes.as_ref().expect("attributes");
    assert_eq!(attrs.id, id);
    let cpu = s.cpu.as_ref().expect("cpu stats");
    let used = cpu.usage_core_nano_seconds.as_ref().map(|v| v.value);
    assert!(
        used.unwrap_or(0) > 10_000_000,
        "100000 shell iterations used {used:?} ns of CPU: {s:?}"
    );
    let mem = s.memory.as_ref().expect("memory stats");
    let ws = mem.working_set_bytes.as_ref().map(|v| v.value).unwrap_or(0);
    assert!(
        ws > 1_000_000 && ws < 1_000_000_000,
        "working set {ws}: {s:?}"
    );
    n.stop_container(&id, 1);
    n.remove_container(&id);
    remove_pod_and_check(n, &pod, &[&id]);
}

/// The container's stdout and stderr land in the pod's log directory in the CRI format.
fn container_log_is_in_cri_format(n: &CriNode) {
    let cfg = n.pod_config("logs", false);
    let pod = n.run_pod(&cfg, LXCRI_HANDLER);
    let id = n.run_container(
        &pod,
        &cfg,
        "talker",
        &[
            "/bin/sh",
            "-c",
            "echo first line; echo to stderr >&2; echo 'with  two  spaces'",
        ],
    );
    let s = n.wait_exited(&id, Duration::from_secs(20));
    assert_eq!(s.exit_code, 0);
    let path = Path::new(&cfg.log_directory).join("talker.log");
    assert_eq!(s.log_path, path.to_string_lossy());
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let lines = parse_cri_log(&text);
    let mut out: Vec<(&str, &str)> = lines
        .iter()
        .map(|(s, _, m)| (s.as_str(), m.as_str()))
        .collect();
    // stdout and stderr are copied separately: only the order within a stream is defined.
    out.sort_by_key(|(s, _)| *s == "stderr");
    assert_eq!(
        out,
        vec![
            ("stdout", "first line"),
            ("stdout", "with  two  spaces"),
            ("stderr", "to stderr"),
        ],
        "{text}"
    );
    assert!(lines.iter().all(|(_, tag, _)| tag == "F"), "{text}");
    n.remove_container(&id);
    remove_pod_and_check(n, &pod, &[&id]);
}

/// With shareProcessNamespace a container sees the pause process and its siblings; without it,
/// only its own processes.
fn shared_process_namespace_shows_siblings(n: &CriNode) {
    let cfg = n.pod_config("sharepid", true);
    let pod = n.run_pod(&cfg, LXCRI_HANDLER);
    let a = n.run_container(&pod, &cfg, "a", &["sleep", "1001"]);
    let b = n.run_container(&pod, &cfg, "b", &["sleep", "1002"]);
    let (ps, _, code) = n.exec_sync(&b, &["ps", "-o", "pid,args"], 10);
    assert_eq!(code, 0);
    assert!(ps.contains("sleep 1001"), "b does not see a's sleep:\n{ps}");
    assert!(
        ps.contains("/pause"),
        "b does not see the pause process:\n{ps}"
    );
    let sandbox_pid = n.sandbox_pid(&pod);
    let pidns = std::fs::read_link(format!("/proc/{sandbox_pid}/ns/pid")).unwrap();
    let (own, _, _) = n.exec_sync(&a, &["readlink", "/proc/self/ns/pid"], 10);
    assert_eq!(own.trim(), pidns.to_string_lossy());

    // A pod without it: the container sees itself only.
    let cfg2 = n.pod_config("ownpid", false);
    let pod2 = n.run_pod(&cfg2, LXCRI_HANDLER);
    let c = n.run_container(&pod2, &cfg2, "c", &["sleep", "1003"]);
    let (ps, _, _) = n.exec_sync(&c, &["ps", "-o", "pid,args"], 10);
    assert!(
        ps.contains("sleep 1003") && !ps.contains("/pause") && !ps.contains("sleep 1001"),
        "{ps}"
    );

    // A container whose init leaves a child behind: stopping it ends the child too (it does
    // not own the PID namespace, so nothing else would), and StopContainer returns.
    let parent = n.run_container(
        &pod,
        &cfg,
        "parent",
        &["/bin/sh", "-c", "sleep 1005 & touch /tmp/ready; wait"],
    );
    wait_for_file(n, &parent, "/tmp/ready");
    let t0 = Instant::now();
    n.stop_container(&parent, 5);
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    let (ps, _, _) = n.exec_sync(&b, &["ps", "-o", "pid,args"], 10);
    assert!(
        !ps.contains("sleep 1005"),
        "the stopped container's child lives on:\n{ps}"
    );
    n.remove_container(&parent);

    n.stop_container(&c, 1);
    n.remove_container(&c);
    n.remove_pod_fully(&pod2);
    assert_clean(&pod2);
    assert_clean(&c);
    for id in [&a, &b] {
        n.stop_container(id, 1);
        n.remove_container(id);
    }
    remove_pod_and_check(n, &pod, &[&a, &b]);
}
