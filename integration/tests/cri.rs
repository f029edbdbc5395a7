//! Kubernetes through containerd's CRI plugin: the test plays the kubelet (CRI calls over
//! containerd's socket) against a real containerd whose runtime handler `lxcri` maps to
//! `io.containerd.lxcri.v2`, with real CNI plugins on a private bridge and our pause image as the
//! sandbox image. Each scenario ends with the pod removed and nothing of it left on the host.

use integration::stream::{STDERR, STDIN, STDOUT};
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
    streaming_exec_over_websocket,
    streaming_exec_with_a_terminal,
    update_container_resources_on_a_running_container,
    pod_sandbox_stats_from_the_pod_cgroup,
    cri_config_is_the_documented_form,
    attach_to_a_container_without_a_terminal,
    attach_to_a_container_with_a_terminal,
);

/// The scenarios that restart containerd under the node (they need it mutably).
mod restarts {
    use super::*;

    fn run(v: ContainerdVersion, scenario: fn(&mut CriNode)) {
        if !require_root_or_skip() {
            return;
        }
        let mut node = CriNode::start(v);
        scenario(&mut node);
    }

    fn containerd_restarts_under_a_running_pod(n: &mut CriNode) {
        pod_survives_containerd_restart(n, false);
    }

    fn containerd_crashes_under_a_running_pod(n: &mut CriNode) {
        pod_survives_containerd_restart(n, true);
    }

    per_containerd_version!(
        containerd_restarts_under_a_running_pod,
        containerd_crashes_under_a_running_pod,
    );
}

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

/// A container `busy` that burns some CPU, fills 8 MB of /dev/shm, then sleeps; returns once
/// it has done so.
fn run_busy_container(n: &CriNode, pod: &str, cfg: &api::PodSandboxConfig) -> String {
    let id = n.run_container(
        pod,
        cfg,
        "busy",
        &[
            "/bin/sh",
            "-c",
            "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; \
             head -c 8000000 /dev/zero > /dev/shm/fill; touch /tmp/done; sleep 1000",
        ],
    );
    wait_for_file(n, &id, "/tmp/done");
    id
}

/// ContainerStats of a container that burnt some CPU and holds some memory.
fn container_stats_have_real_numbers(n: &CriNode) {
    let cfg = n.pod_config("stats", false);
    let pod = n.run_pod(&cfg, LXCRI_HANDLER);
    let id = run_busy_container(n, &pod, &cfg);
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

/// A container that sleeps until stopped, for exec and updates.
fn run_sleeper(n: &CriNode, pod: &str, cfg: &api::PodSandboxConfig, name: &str) -> String {
    let id = n.run_container(
        pod,
        cfg,
        name,
        &["/bin/sh", "-c", "touch /tmp/ready; exec sleep 100000"],
    );
    wait_for_file(n, &id, "/tmp/ready");
    id
}

/// `kubectl exec` without a terminal: CRI Exec gives the streaming server's URL, and a
/// WebSocket client speaking `v4.channel.k8s.io` (what the API server speaks to it) gets stdout
/// and stderr on their channels and the exit status as a JSON Status on channel 3; stdin goes in
/// on channel 0.
fn streaming_exec_over_websocket(n: &CriNode) {
    let cfg = n.pod_config("stream", false);
    let pod = n.run_pod(&cfg, LXCRI_HANDLER);
    let id = run_sleeper(n, &pod, &cfg, "shell");

    // A failing command: its streams apart, the exit code in the status.
    let url = n.exec_url(
        &id,
        &["/bin/sh", "-c", "echo out; echo err >&2; exit 3"],
        false,
        false,
    );
    assert!(url.starts_with("http://"), "Exec URL {url}");
    let out = StreamSession::connect(&url)
        .and_then(|s| s.finish(Duration::from_secs(30)))
        .unwrap_or_else(|e| panic!("{}: exec: {e}", n.containerd.version()));
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("out\n", "err\n")
    );
    assert_eq!(out.status["status"], "Failure", "{:?}", out.status);
    assert_eq!(out.status["reason"], "NonZeroExitCode", "{:?}", out.status);
    assert_eq!(
        out.status["details"]["causes"][0],
        serde_json::json!({"reason": "ExitCode", "message": "3"}),
        "{:?}",
        out.status
    );
    assert_eq!(out.exit_code(), Some(3));

    // A successful one, run in the container (its hostname is the pod's).
    let url = n.exec_url(&id, &["/bin/sh", "-c", "echo $(hostname) ok"], false, false);
    let out = StreamSession::connect(&url)
        .and_then(|s| s.finish(Duration::from_secs(30)))
        .unwrap_or_else(|e| panic!("exec: {e}"));
    assert_eq!(out.stdout, "stream ok\n");
    assert_eq!(out.stderr, "");
    assert_eq!(out.status["status"], "Success", "{:?}", out.status);
    assert_eq!(out.exit_code(), Some(0));

    // stdin: v4 cannot close it, so the command reads a known amount (one line).
    let url = n.exec_url(
        &id,
        &["/bin/sh", "-c", "head -n1 | tr a-z A-Z; exit 4"],
        true,
        false,
    );
    let mut s = StreamSession::connect(&url).unwrap_or_else(|e| panic!("exec: {e}"));
    s.send(STDIN, b"hello through stdin\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let out = s
        .finish(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("exec with stdin: {e}"));
    assert_eq!(out.stdout, "HELLO THROUGH STDIN\n");
    assert_eq!(out.exit_code(), Some(4), "{:?}", out.status);

    // The container runs on; nothing of the execs is left in it.
    let s = n.container_status(&id);
    assert_eq!(state(&s), api::ContainerState::ContainerRunning, "{s:?}");
    let (ps, _, _) = n.exec_sync(&id, &["ps", "-o", "args"], 10);
    assert!(
        !ps.contains("head") && !ps.contains("hostname"),
        "exec processes left:\n{ps}"
    );

    n.stop_container(&id, 1);
    n.remove_container(&id);
    remove_pod_and_check(n, &pod, &[&id]);
}

/// `kubectl exec -it`: a terminal (stdout only, stderr merged), stdin through it, and a resize
/// on channel 4 reaching the process's terminal (`stty size`).
fn streaming_exec_with_a_terminal(n: &CriNode) {
    let cfg = n.pod_config("tty", false);
    let pod = n.run_pod(&cfg, LXCRI_HANDLER);
    let id = run_sleeper(n, &pod, &cfg, "shell");

    let script = "[ -t 0 ] && echo is-a-tty; read line; echo got:$line; \
                  i=0; while [ \"$(stty size)\" != '45 123' ] && [ $i -lt 100 ]; do \
                  sleep 0.1; i=$((i+1)); done; echo size:$(stty size); echo to-stderr >&2; exit 5";
    let url = n.exec_url(&id, &["/bin/sh", "-c", script], true, true);
    let mut s = StreamSession::connect(&url).unwrap_or_else(|e| panic!("exec -t: {e}"));
    s.wait_for(STDOUT, "is-a-tty", Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    s.resize(123, 45).unwrap_or_else(|e| panic!("{e}"));
    s.send(STDIN, b"typed\r").unwrap_or_else(|e| panic!("{e}"));
    let out = s
        .finish(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("exec -t: {e}"));
    assert!(out.stdout.contains("got:typed"), "{:?}", out.stdout);
    assert!(
        out.stdout.contains("size:45 123"),
        "the resize did not reach the terminal: {:?}",
        out.stdout
    );
    assert!(
        out.stdout.contains("to-stderr"),
        "a terminal carries stderr too: {:?}",
        out.stdout
    );
    assert_eq!(out.stderr, "", "no stderr channel with a terminal");
    assert_eq!(out.exit_code(), Some(5), "{:?}", out.status);

    let s = n.container_status(&id);
    assert_eq!(state(&s), api::ContainerState::ContainerRunning, "{s:?}");
    n.stop_container(&id, 1);
    n.remove_container(&id);
    remove_pod_and_check(n, &pod, &[&id]);
}

/// The cgroup v1 directory of `controller` that process `pid` is in; on a cgroup v2 host its one
/// cgroup directory.
fn cgroup_dir_of(pid: i32, controller: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/cgroup: {e}"));
    if cgroup_v2_only() {
        let rel = text
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .unwrap_or_else(|| panic!("process {pid} has no cgroup v2 line:\n{text}"));
        return Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/'));
    }
    let rel = text
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            parts.next();
            parts.next().zip(parts.next())
        })
        .find(|(ctrls, _)| ctrls.split(',').any(|c| c == controller))
        .map(|(_, path)| path.to_string())
        .unwrap_or_else(|| panic!("process {pid} has no {controller} cgroup:\n{text}"));
    Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(rel.trim_start_matches('/'))
}

fn read_num(dir: &Path, file: &str) -> i64 {
    let p = dir.join(file);
    let text =
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{}: {text:?}: {e}", p.display()))
}

/// In-place resize (UpdateContainerResources) of a running container: the new memory limit
/// and CPU quota, period and shares land in its cgroup v1 files on the host, ContainerStatus
/// reports them, and the container runs on.
fn update_container_resources_on_a_running_container(n: &CriNode) {
    const MIB: i64 = 1 << 20;
    let cfg = n.pod_config("resize", false);
    let pod = n.run_pod(&cfg, LXCRI_HANDLER);
    let mut config = n.container_config(
        "app",
        &["/bin/sh", "-c", "touch /tmp/ready; exec sleep 100000"],
    );
    let first = api::LinuxContainerResources {
        cpu_period: 100_000,
        cpu_quota: 50_000,
        cpu_shares: 256,
        memory_limit_in_bytes: 64 * MIB,
        ..Default::default()
    };
    config.linux.get_or_insert_with(Default::default).resources = Some(first.clone());
    let id = n.create_container_with(&pod, &cfg, config);
    n.start_container(&id);
    wait_for_file(n, &id, "/tmp/ready");

    let pid = n.container_pid(&id);
    let mem = cgroup_dir_of(pid, "memory");
    let cpu = cgroup_dir_of(pid, "cpu");
    assert!(
        mem.to_string_lossy().contains(&id),
        "container {id} is not in a cgroup of its own: {}",
        mem.display()
    );
    // v1: memory.limit_in_bytes, cpu.cfs_quota_us, cpu.cfs_period_us, cpu.shares. v2:
    // memory.max, cpu.max ("quota period") and cpu.weight, converted from the shares as runc and
    // the kubelet do (1 + (shares - 2) * 9999 / 262142).
    let v2 = cgroup_v2_only();
    let files = |mem: &Path, cpu: &Path| {
        if v2 {
            let max = std::fs::read_to_string(cpu.join("cpu.max")).unwrap_or_default();
            let q: Vec<i64> = max
                .split_whitespace()
                .map(|f| f.parse().unwrap_or(-1))
                .collect();
            (
                read_num(mem, "memory.max"),
                q.first().copied().unwrap_or(-1),
                q.get(1).copied().unwrap_or(-1),
                read_num(cpu, "cpu.weight"),
            )
        } else {
            (
                read_num(mem, "memory.limit_in_bytes"),
                read_num(cpu, "cpu.cfs_quota_us"),
                read_num(cpu, "cpu.cfs_period_us"),
                read_num(cpu, "cpu.shares"),
            )
        }
    };
    let share = |s: i64| if v2 { 1 + (s - 2) * 9999 / 262_142 } else { s };
    assert_eq!(
        files(&mem, &cpu),
        (64 * MIB, 50_000, 100_000, share(256)),
        "limits at creation"
    );

    let second = api::LinuxContainerResources {
        cpu_period: 50_000,
        cpu_quota: 20_000,
        cpu_shares: 512,
        memory_limit_in_bytes: 96 * MIB,
        ..Default::default()
    };
    n.update_resources(&id, second);
    assert_eq!(
        files(&mem, &cpu),
        (96 * MIB, 20_000, 50_000, share(512)),
        "limits after UpdateContainerResources"
    );
    let s = n.container_status(&id);
    assert_eq!(state(&s), api::ContainerState::ContainerRunning, "{s:?}");
    let linux = s
        .resources
        .as_ref()
        .and_then(|r| r.linux.as_ref())
        .unwrap_or_else(|| panic!("ContainerStatus has no resources: {s:?}"));
    assert_eq!(
        (
            linux.memory_limit_in_bytes,
            linux.cpu_quota,
            linux.cpu_period,
            linux.cpu_shares
        ),
        (96 * MIB, 20_000, 50_000, 512),
        "{linux:?}"
    );
    // Same process, same cgroup, and the container still answers.
    assert_eq!(n.container_pid(&id), pid);
    assert_eq!(cgroup_dir_of(pid, "memory"), mem);
    let (out, _, code) = n.exec_sync(&id, &["echo", "alive"], 10);
    assert_eq!((out.as_str(), code), ("alive\n", 0));

    n.stop_container(&id, 1);
    n.remove_container(&id);
    remove_pod_and_check(n, &pod, &[&id]);
}

/// A pod with a kubelet-made pod cgroup (`cgroup_parent`): its sandbox and containers run
/// below it, and PodSandboxStats / ListPodSandboxStats report its CPU time, memory, processes,
/// network and per-container stats.
fn pod_sandbox_stats_from_the_pod_cgroup(n: &CriNode) {
    let mut cfg = n.pod_config("podstats", false);
    let pod_cgroup = n.make_pod_cgroup(&mut cfg);
    let pod = n.run_pod(&cfg, LXCRI_HANDLER);
    let id = run_busy_container(n, &pod, &cfg);

    // The container is below the pod's cgroup, as the kubelet expects.
    let pid = n.container_pid(&id);
    let mem_dir = cgroup_dir_of(pid, "memory");
    assert!(
        mem_dir.starts_with(pod_cgroup_dir(&pod_cgroup, "memory")),
        "container {id} is in {}, not below the pod cgroup {pod_cgroup}",
        mem_dir.display()
    );
    let sandbox_mem = cgroup_dir_of(n.sandbox_pid(&pod), "memory");
    assert!(
        sandbox_mem.starts_with(pod_cgroup_dir(&pod_cgroup, "memory")),
        "the sandbox is in {}",
        sandbox_mem.display()
    );

    let check = |st: &api::PodSandboxStats, how: &str| {
        assert_eq!(
            st.attributes.as_ref().map(|a| a.id.as_str()),
            Some(pod.as_str()),
            "{how}"
        );
        let linux = st
            .linux
            .as_ref()
            .unwrap_or_else(|| panic!("{how}: no linux stats: {st:?}"));
        let cpu = linux
            .cpu
            .as_ref()
            .and_then(|c| c.usage_core_nano_seconds.as_ref())
            .map_or(0, |v| v.value);
        assert!(
            cpu > 10_000_000,
            "{how}: pod CPU {cpu} ns after 100000 shell iterations: {st:?}"
        );
        let ws = linux
            .memory
            .as_ref()
            .and_then(|m| m.working_set_bytes.as_ref())
            .map_or(0, |v| v.value);
        assert!(
            ws > 1_000_000 && ws < 1_000_000_000,
            "{how}: pod working set {ws}: {st:?}"
        );
        let procs = linux
            .process
            .as_ref()
            .and_then(|p| p.process_count.as_ref())
            .map_or(0, |v| v.value);
        assert!(procs >= 1, "{how}: process count {procs}: {st:?}");
        let iface = linux
            .network
            .as_ref()
            .and_then(|nw| nw.default_interface.as_ref())
            .unwrap_or_else(|| panic!("{how}: no network stats: {st:?}"));
        assert_eq!(iface.name, "eth0", "{how}");
        let ids: Vec<&str> = linux
            .containers
            .iter()
            .filter_map(|c| c.attributes.as_ref().map(|a| a.id.as_str()))
            .collect();
        assert_eq!(ids, vec![id.as_str()], "{how}: container stats");
    };
    let st = n
        .pod_stats(&pod)
        .unwrap_or_else(|e| panic!("{}: PodSandboxStats: {e:?}", n.containerd.version()));
    check(&st, "PodSandboxStats");
    let all = n
        .list_pod_stats()
        .unwrap_or_else(|e| panic!("ListPodSandboxStats: {e:?}"));
    let ours: Vec<_> = all
        .iter()
        .filter(|s| s.attributes.as_ref().is_some_and(|a| a.id == pod))
        .collect();
    assert_eq!(ours.len(), 1, "ListPodSandboxStats: {all:?}");
    check(ours[0], "ListPodSandboxStats");

    n.stop_container(&id, 1);
    n.remove_container(&id);
    remove_pod_and_check(n, &pod, &[&id]);
    // LXC removed what it made below the pod cgroup (the kubelet then removes the pod cgroup).
    for controller in ["memory", "cpu", "cpuset", "pids"] {
        let dir = pod_cgroup_dir(&pod_cgroup, controller);
        let children: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name())
            .collect();
        assert!(children.is_empty(), "{}: left {children:?}", dir.display());
    }
}

/// The harness's containerd config is the documented one for the version (1.x `version = 2`,
/// 2.x `version = 3` with `io.containerd.cri.v1.runtime` / `.images`), containerd takes it as
/// such (the handler, its ConfigPath and the sandbox image in its effective config), and the
/// shim reads the file ConfigPath names (its `lxc_log_level` is in the container's LXC config).
fn cri_config_is_the_documented_form(n: &CriNode) {
    let v = n.containerd.version();
    let file = std::fs::read_to_string(n.containerd.config_file()).unwrap();
    let version_line = format!("version = {}\n", v.config_version());
    assert!(file.starts_with(&version_line), "{v}:\n{file}");
    let runtime_table = match v.config_version() {
        2 => "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.lxcri]",
        _ => "[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.lxcri]",
    };
    assert!(file.contains(runtime_table), "{v}:\n{file}");

    let config = n.cri_config_json();
    let lxcri = &config["containerd"]["runtimes"][LXCRI_HANDLER];
    assert_eq!(lxcri["runtimeType"], "io.containerd.lxcri.v2", "{lxcri}");
    assert_eq!(
        lxcri["options"]["ConfigPath"],
        n.lxcri_config.to_string_lossy().as_ref(),
        "{lxcri}"
    );
    // 2.x's verbose Status shows the runtime half only; there the pinned sandbox image is
    // proven by RunPodSandbox below (the default, registry.k8s.io/pause, cannot be pulled here).
    if v.config_version() == 2 {
        assert_eq!(config["sandboxImage"], PAUSE_IMAGE, "{v}: {config}");
    }

    let cfg = n.pod_config("conf", false);
    let pod = n.run_pod(&cfg, LXCRI_HANDLER);
    let id = run_sleeper(n, &pod, &cfg, "c");
    let lxc_config = Path::new("/run/lxcri")
        .join(CRI_NAMESPACE)
        .join(&id)
        .join("config");
    let text = std::fs::read_to_string(&lxc_config)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", lxc_config.display()));
    assert!(
        text.lines()
            .any(|l| l.replace(' ', "") == "lxc.log.level=NOTICE"),
        "{}: the shim did not use {} (NODE_LXCRI_CONFIG):\n{text}",
        lxc_config.display(),
        n.lxcri_config.display()
    );
    n.stop_container(&id, 1);
    n.remove_container(&id);
    remove_pod_and_check(n, &pod, &[&id]);
}

/// The highest `tick N` in a CRI log file (None before the first; a line being written is
/// skipped).
fn last_tick(log: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.rsplit_once(" tick ").and_then(|(_, n)| n.parse().ok()))
        .max()
}

/// Waits until the log at `log` shows a tick above `above` (its container writes one every
/// 0.2 s); returns it.
fn wait_tick_above(log: &Path, above: Option<u64>, what: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let last = last_tick(log);
        if let Some(t) = last.filter(|t| Some(*t) > above.map(|a| a + 2)) {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the log {} stays at tick {last:?}:\n{}",
            log.display(),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// containerd restarts under a running pod of two containers (an upgrade: SIGTERM; with
/// `crash`: SIGKILL). Afterwards, through the CRI: the pod is READY and its containers RUNNING
/// with the same processes, exec (ExecSync and streaming) works, the pod's one shim (same pid)
/// still serves it and takes a container created after the restart, the container's log goes
/// on, a stop after the restart reports the container's own exit code, and the pod goes away
/// without leftovers.
fn pod_survives_containerd_restart(n: &mut CriNode, crash: bool) {
    let how = if crash { "SIGKILL" } else { "restart" };
    let cfg = n.pod_config("survivor", false);
    let pod = n.run_pod(&cfg, LXCRI_HANDLER);
    let ticker = n.run_container(
        &pod,
        &cfg,
        "ticker",
        &[
            "/bin/sh",
            "-c",
            // The writer is not the container's init: a pid 1 would ignore the SIGPIPE of a
            // FIFO without reader, any other process dies of it.
            "(i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done) & \
             trap 'kill $!; exit 42' TERM; wait",
        ],
    );
    let sleeper = run_sleeper(n, &pod, &cfg, "sleeper");
    let log = Path::new(&cfg.log_directory).join("ticker.log");
    wait_tick_above(&log, None, "before the restart");

    let shims = lxcri_shims(&n.containerd);
    assert_eq!(shims.len(), 1, "one shim for the pod: {shims:?}");
    let shim_pid = shims[0].pid;
    let sandbox_pid = n.sandbox_pid(&pod);
    let pids = [n.container_pid(&ticker), n.container_pid(&sleeper)];
    let started = n.container_status(&ticker).started_at;

    let old_containerd = n.containerd.pid();
    n.restart_containerd(crash);
    assert_ne!(n.containerd.pid(), old_containerd, "a new containerd runs");
    let tick_at_restart = last_tick(&log);

    // The kubelet's view after the restart: pod ready, containers running, same processes.
    let pods = n.list_pods();
    let listed = pods
        .iter()
        .find(|p| p.id == pod)
        .unwrap_or_else(|| panic!("{how}: pod {pod} is not listed: {pods:?}"));
    assert_eq!(
        listed.state,
        api::PodSandboxState::SandboxReady as i32,
        "{how}: {listed:?}"
    );
    let mut listed: Vec<(String, i32)> = n
        .list_containers(&pod)
        .into_iter()
        .map(|c| (c.id, c.state))
        .collect();
    listed.sort();
    let mut expected = vec![
        (ticker.clone(), api::ContainerState::ContainerRunning as i32),
        (
            sleeper.clone(),
            api::ContainerState::ContainerRunning as i32,
        ),
    ];
    expected.sort();
    assert_eq!(listed, expected, "{how}: ListContainers");
    for (id, pid) in [&ticker, &sleeper].into_iter().zip(pids) {
        let s = n.container_status(id);
        assert_eq!(
            state(&s),
            api::ContainerState::ContainerRunning,
            "{how}: {s:?}"
        );
        assert_eq!(n.container_pid(id), pid, "{how}: container {id}'s process");
        let (out, err, code) = n.exec_sync(id, &["/bin/sh", "-c", "echo alive $(hostname)"], 10);
        assert_eq!(
            (out.as_str(), code),
            ("alive survivor\n", 0),
            "{how}: ExecSync in {id}: {err}"
        );
    }
    assert_eq!(n.container_status(&ticker).started_at, started);
    assert_eq!(
        n.sandbox_pid(&pod),
        sandbox_pid,
        "{how}: the sandbox's process"
    );
    let url = n.exec_url(
        &sleeper,
        &["/bin/sh", "-c", "echo streamed; exit 6"],
        false,
        false,
    );
    let out = StreamSession::connect(&url)
        .and_then(|s| s.finish(Duration::from_secs(30)))
        .unwrap_or_else(|e| panic!("{how}: streaming exec: {e}"));
    assert_eq!(
        (out.stdout.as_str(), out.exit_code()),
        ("streamed\n", Some(6)),
        "{how}: {out:?}"
    );

    // The container's output still reaches its log (containerd reopened the FIFOs).
    wait_tick_above(&log, tick_at_restart, &format!("after the {how}"));

    // The same shim process serves the pod, and a new container joins it.
    let pids_now: Vec<i32> = lxcri_shims(&n.containerd).iter().map(|p| p.pid).collect();
    assert_eq!(pids_now, vec![shim_pid], "{how}: the pod's shim");
    let late = run_sleeper(n, &pod, &cfg, "late");
    let pids_now: Vec<i32> = lxcri_shims(&n.containerd).iter().map(|p| p.pid).collect();
    assert_eq!(
        pids_now,
        vec![shim_pid],
        "{how}: a container created after the restart must join the pod's shim"
    );
    let (out, _, code) = n.exec_sync(&late, &["hostname"], 10);
    assert_eq!((out.as_str(), code), ("survivor\n", 0));

    // An exit after the restart reaches the CRI with its code.
    let t0 = Instant::now();
    n.stop_container(&ticker, 10);
    assert!(
        t0.elapsed() < Duration::from_secs(8),
        "{how}: StopContainer took {:?}",
        t0.elapsed()
    );
    let s = n.container_status(&ticker);
    assert_eq!(
        (state(&s), s.exit_code),
        (api::ContainerState::ContainerExited, 42),
        "{how}: {s:?}"
    );

    for id in [&ticker, &sleeper, &late] {
        n.stop_container(id, 1);
        n.remove_container(id);
    }
    remove_pod_and_check(n, &pod, &[&ticker, &sleeper, &late]);
}

/// A busybox container config with stdin open (and `stdin_once`, `tty` as given), as the
/// kubelet makes it for `stdin: true` in a pod spec.
fn interactive_config(
    n: &CriNode,
    name: &str,
    script: &str,
    stdin_once: bool,
    tty: bool,
) -> api::ContainerConfig {
    let mut c = n.container_config(name, &["/bin/sh", "-c", script]);
    c.stdin = true;
    c.stdin_once = stdin_once;
    c.tty = tty;
    c
}

/// `kubectl attach -i` to containers without a terminal: CRI Attach's URL over WebSocket
/// `v4.channel.k8s.io`; what the container prints comes on channels 1 and 2, what is sent on
/// channel 0 reaches its stdin. Without `stdin_once` stdin stays open across attach sessions and
/// the container's exit ends the session (status Success: the attach, not the process, is
/// what it reports); with `stdin_once` the end of the first session closes the container's
/// stdin (containerd calls CloseIO on the task).
fn attach_to_a_container_without_a_terminal(n: &CriNode) {
    let cfg = n.pod_config("attach", false);
    let pod = n.run_pod(&cfg, LXCRI_HANDLER);

    let talk_script = "read a; echo got:$a; echo err:$a >&2; read b; echo bye:$b; exit 3";
    let talk = n.create_container_with(
        &pod,
        &cfg,
        interactive_config(n, "talk", talk_script, false, false),
    );
    n.start_container(&talk);
    let url = n.attach_url(&talk, true, false);
    assert!(url.starts_with("http://"), "Attach URL {url}");
    let mut s = StreamSession::connect(&url).unwrap_or_else(|e| panic!("attach: {e}"));
    s.send(STDIN, b"one\n").unwrap_or_else(|e| panic!("{e}"));
    s.wait_for(STDOUT, "got:one", Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    s.wait_for(STDERR, "err:one", Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    drop(s); // detach: without stdin_once the container's stdin stays open
    let s = n.container_status(&talk);
    assert_eq!(state(&s), api::ContainerState::ContainerRunning, "{s:?}");
    let url = n.attach_url(&talk, true, false);
    let mut s = StreamSession::connect(&url).unwrap_or_else(|e| panic!("attach again: {e}"));
    s.send(STDIN, b"two\n").unwrap_or_else(|e| panic!("{e}"));
    let out = s
        .finish(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("the container's exit must end the attach: {e}"));
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("bye:two\n", "")
    );
    assert_eq!(out.status["status"], "Success", "{:?}", out.status);
    let s = n.wait_exited(&talk, Duration::from_secs(20));
    assert_eq!(s.exit_code, 3, "{s:?}");

    // stdin_once: the first session's end is the end of the container's stdin.
    let once_script =
        "read a; echo got:$a; if read b; then echo more:$b; else echo stdin-closed; fi";
    let once = n.create_container_with(
        &pod,
        &cfg,
        interactive_config(n, "once", once_script, true, false),
    );
    n.start_container(&once);
    let url = n.attach_url(&once, true, false);
    let mut s = StreamSession::connect(&url).unwrap_or_else(|e| panic!("attach: {e}"));
    s.send(STDIN, b"only\n").unwrap_or_else(|e| panic!("{e}"));
    s.wait_for(STDOUT, "got:only", Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    drop(s);
    let s = n.wait_exited(&once, Duration::from_secs(20));
    assert_eq!(s.exit_code, 0, "{s:?}");
    let log =
        std::fs::read_to_string(Path::new(&cfg.log_directory).join("once.log")).unwrap_or_default();
    let lines: Vec<String> = parse_cri_log(&log).into_iter().map(|(_, _, m)| m).collect();
    assert_eq!(
        lines,
        vec!["got:only", "stdin-closed"],
        "with stdin_once the end of the attach closes stdin:\n{log}"
    );

    for id in [&talk, &once] {
        n.remove_container(id);
    }
    remove_pod_and_check(n, &pod, &[&talk, &once]);
}

/// `kubectl attach -it` to a container created with a terminal: input typed on channel 0
/// reaches it through the terminal, its output comes on channel 1, a resize on channel 4 shows
/// in `stty size`, and its exit ends the session.
fn attach_to_a_container_with_a_terminal(n: &CriNode) {
    let cfg = n.pod_config("attachtty", false);
    let pod = n.run_pod(&cfg, LXCRI_HANDLER);
    let script = "read line; [ -t 0 ] && echo tty:$line; \
                  i=0; while [ \"$(stty size)\" != '45 123' ] && [ $i -lt 100 ]; do \
                  sleep 0.1; i=$((i+1)); done; echo size:$(stty size); exit 4";
    let id = n.create_container_with(
        &pod,
        &cfg,
        interactive_config(n, "term", script, true, true),
    );
    n.start_container(&id);
    let url = n.attach_url(&id, true, true);
    let mut s = StreamSession::connect(&url).unwrap_or_else(|e| panic!("attach -t: {e}"));
    s.send(STDIN, b"typed\r").unwrap_or_else(|e| panic!("{e}"));
    s.wait_for(STDOUT, "tty:typed", Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    s.resize(123, 45).unwrap_or_else(|e| panic!("{e}"));
    let out = s
        .finish(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("the container's exit must end the attach: {e}"));
    assert!(
        out.stdout.contains("size:45 123"),
        "the resize did not reach the terminal: {:?}",
        out.stdout
    );
    assert_eq!(out.stderr, "", "no stderr channel with a terminal");
    assert_eq!(out.status["status"], "Success", "{:?}", out.status);
    let s = n.wait_exited(&id, Duration::from_secs(20));
    assert_eq!(s.exit_code, 4, "{s:?}");
    n.remove_container(&id);
    remove_pod_and_check(n, &pod, &[&id]);
}
