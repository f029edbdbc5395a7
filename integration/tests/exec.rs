//! `ctr task exec` into lxcri containers, as a user runs it, on containerd 1.6, 1.7 and 2.1: each
//! exec is attached through liblxc from a helper process, with its process spec applied.

use integration::run_with_busybox as run;
use integration::{stderr, stdout};
use integration::{Containerd, Events, Running};
use std::process::Stdio;
use std::time::{Duration, Instant};

integration::per_containerd_version!(
    exec_output_status_user_cwd_stdin,
    exec_kill_and_ps,
    twenty_execs_at_once,
    exec_events,
    exec_errors,
);

fn exec_output_status_user_cwd_stdin(cd: &Containerd) {
    let c = Running::start(cd, "ex", &["--cap-drop", "CAP_NET_RAW"]);
    let o = c.exec("e1", &[], &["sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert_eq!(stdout(&o), "out\n");
    assert!(stderr(&o).contains("err") && !stdout(&o).contains("err"));

    // A death by signal gives 128 + the signal (the exec is not the PID 1 of its namespace).
    let o = c.exec("e2", &[], &["sh", "-c", "kill -TERM $$"]);
    assert_eq!(o.status.code(), Some(143), "{}", stderr(&o));

    // The exec's user and cwd; capabilities come from the container's process spec.
    let o = c.exec(
        "e3",
        &["--user", "65534", "--cwd", "/tmp"],
        &[
            "sh",
            "-c",
            "id -u; pwd; grep -E 'CapEff|CapBnd|NoNewPrivs' /proc/self/status",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.starts_with("65534\n/tmp\n"), "{text}");
    assert!(text.contains("CapEff:\t0000000000000000"), "{text}");
    let bnd = text
        .lines()
        .find(|l| l.starts_with("CapBnd"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap();
    let bnd = u64::from_str_radix(bnd, 16).unwrap();
    assert_eq!(bnd & (1 << 13), 0, "CAP_NET_RAW in the exec's bounding set");
    assert!(text.contains("NoNewPrivs:\t1"), "{text}");

    // As root, the exec is in the container's namespaces and cgroup, with its environment only.
    let o = c.exec(
        "e4",
        &[],
        &[
            "sh",
            "-c",
            "echo $$; cat /proc/self/cgroup | head -1; env | sort",
        ],
    );
    let text = stdout(&o);
    let mut lines = text.lines();
    let pid: u32 = lines.next().unwrap().parse().unwrap();
    assert!(
        pid > 1 && pid < 100,
        "not in the container's PID namespace: {pid}"
    );
    assert!(
        lines.next().unwrap().contains(&c.id),
        "not in the container's cgroup: {text}"
    );
    assert!(
        !text.contains("container=lxc") && text.contains("PATH="),
        "environment: {text}"
    );

    // stdin, to EOF.
    let o = cd.ctr_stdin(
        &["task", "exec", "--exec-id", "e5", &c.id, "cat"],
        b"hello\nworld\n",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "hello\nworld\n");
}

fn exec_kill_and_ps(cd: &Containerd) {
    let c = Running::start(cd, "exk", &[]);
    // A detached exec, seen by ps, then killed by its exec id.
    let mut child = cd
        .ctr_command(&["task", "exec", "--exec-id", "long", &c.id, "sleep", "301"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let ps = loop {
        let ps = cd.ctr_ok(&["task", "ps", &c.id]);
        if ps.lines().count() >= 3 {
            break ps;
        }
        assert!(
            Instant::now() < deadline,
            "the exec never showed in ps: {ps}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        ps.lines().count(),
        3,
        "header + sleep 300 + the exec, nothing of lxcri's: {ps}"
    );
    // The exec's process is marked with its exec id; the container's own is not.
    let marked: Vec<&str> = ps.lines().filter(|l| l.contains("long")).collect();
    assert_eq!(marked.len(), 1, "the exec's line names its exec id: {ps}");
    cd.ctr_ok(&["task", "kill", "--exec-id", "long", "-s", "SIGKILL", &c.id]);
    let (status, timed_out) =
        integration::process::wait_with_limit(&mut child, Duration::from_secs(10));
    assert!(
        !timed_out,
        "ctr task exec did not end after the exec was killed"
    );
    assert_eq!(status.code(), Some(137));
    let ps = cd.ctr_ok(&["task", "ps", &c.id]);
    assert_eq!(
        ps.lines().count(),
        2,
        "the killed exec is still there: {ps}"
    );
}

fn twenty_execs_at_once(cd: &Containerd) {
    let c = Running::start(cd, "ex20", &[]);
    let children: Vec<_> = (0..20)
        .map(|i| {
            let (exec_id, script) = (format!("p{i}"), format!("sleep 0.2; echo {i}; exit {i}"));
            cd.ctr_command(&[
                "task",
                "exec",
                "--exec-id",
                &exec_id,
                &c.id,
                "sh",
                "-c",
                &script,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(i as i32), "exec p{i}: {}", stderr(&o));
        assert_eq!(stdout(&o), format!("{i}\n"));
    }
}

fn exec_events(cd: &Containerd) {
    let c = Running::start(cd, "exev", &[]);
    let events = Events::watch(cd);
    let o = c.exec("evx", &[], &["sh", "-c", "exit 5"]);
    assert_eq!(o.status.code(), Some(5));
    let text = events.stop();
    let mine: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(&c.id) && l.contains("evx"))
        .collect();
    let pos = |t: &str| {
        mine.iter()
            .position(|l| l.contains(t))
            .unwrap_or_else(|| panic!("no {t} for exec evx:\n{text}"))
    };
    let (added, started, exit) = (
        pos("/tasks/exec-added"),
        pos("/tasks/exec-started"),
        pos("/tasks/exit"),
    );
    assert!(added < started && started < exit, "{}", mine.join("\n"));
}

fn exec_errors(cd: &Containerd) {
    let c = Running::start(cd, "exe", &[]);
    // A program that does not exist: Start fails and names it.
    let o = c.exec("nx", &[], &["/no/such/program"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/no/such/program"), "{}", stderr(&o));
    let o = c.exec("nx2", &[], &["nosuchcmd"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("executable file not found"),
        "{}",
        stderr(&o)
    );
    // Into a stopped container: refused, clearly.
    cd.ctr_ok(&["task", "kill", "-s", "SIGKILL", &c.id]);
    cd.wait_task(&c.id, "STOPPED");
    let o = c.exec("late", &[], &["true"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not running"), "{}", stderr(&o));
}
