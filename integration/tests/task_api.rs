//! Pause/resume, metrics and update of lxcri containers through `ctr`, on containerd 1.6, 1.7
//! and 2.1.

use integration::run_with_busybox as run;
use integration::{unique_id, Containerd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNTIME: &str = "io.containerd.lxcri.v2";

// Update is tested in shim_api.rs: none of the three ctr builds has `ctr task update`.
integration::per_containerd_version!(
    pause_stops_the_processes_and_resume_restarts_them,
    metrics_are_real,
    oom_kill_is_reported
);

/// A running container whose shell bumps a counter file every 50 ms.
struct Counter<'a> {
    cd: &'a Containerd,
    id: String,
    pid: u32,
}

impl<'a> Counter<'a> {
    fn start(cd: &'a Containerd, prefix: &str, flags: &[&str]) -> Counter<'a> {
        let id = unique_id(prefix);
        let mut args = vec!["run", "-d", "--runtime", RUNTIME];
        args.extend(flags);
        args.extend([
            integration::BUSYBOX_REF,
            id.as_str(),
            "sh",
            "-c",
            "i=0; while :; do i=$((i+1)); echo $i > /tmp/counter; sleep 0.05; done",
        ]);
        cd.ctr_ok(&args);
        let deadline = Instant::now() + Duration::from_secs(10);
        let pid = loop {
            let ls = cd.ctr_ok(&["task", "ls"]);
            if let Some(pid) = ls
                .lines()
                .find(|l| l.starts_with(&id) && l.contains("RUNNING"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            {
                break pid;
            }
            assert!(Instant::now() < deadline, "never running: {ls}");
            std::thread::sleep(Duration::from_millis(20));
        };
        Counter { cd, id, pid }
    }
    fn value(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/root/tmp/counter", self.pid))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }
    fn status(&self) -> String {
        let ls = self.cd.ctr_ok(&["task", "ls"]);
        ls.lines()
            .find(|l| l.starts_with(&self.id))
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap_or("")
            .to_string()
    }
}

impl Drop for Counter<'_> {
    fn drop(&mut self) {
        self.cd.remove_container(&self.id);
        if !std::thread::panicking() {
            integration::assert_clean(&self.id);
        }
    }
}

fn pause_stops_the_processes_and_resume_restarts_them(cd: &Containerd) {
    let mut events = Command::new(cd.version().ctr_bin())
        .args(["-a", &cd.socket().display().to_string(), "events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let c = Counter::start(cd, "pause", &[]);
    std::thread::sleep(Duration::from_millis(300));
    cd.ctr_ok(&["task", "pause", &c.id]);
    assert_eq!(c.status(), "PAUSED");
    let frozen = c.value();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(c.value(), frozen, "the counter advanced while paused");
    // Pausing twice, or exec into a paused container, is refused.
    assert!(!cd.ctr(&["task", "pause", &c.id]).status.success());
    cd.ctr_ok(&["task", "resume", &c.id]);
    assert_eq!(c.status(), "RUNNING");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        c.value() > frozen,
        "the counter did not advance after resume"
    );
    std::thread::sleep(Duration::from_millis(300));
    let _ = events.kill();
    let text = String::from_utf8_lossy(&events.wait_with_output().unwrap().stdout).into_owned();
    let mine: Vec<&str> = text.lines().filter(|l| l.contains(&c.id)).collect();
    let p = mine
        .iter()
        .position(|l| l.contains("/tasks/paused"))
        .unwrap_or_else(|| panic!("no /tasks/paused:\n{text}"));
    let r = mine
        .iter()
        .position(|l| l.contains("/tasks/resumed"))
        .unwrap_or_else(|| panic!("no /tasks/resumed:\n{text}"));
    assert!(p < r);
}

fn metrics_are_real(cd: &Containerd) {
    let c = Counter::start(cd, "metrics", &["--memory-limit", "67108864"]);
    std::thread::sleep(Duration::from_millis(300));
    let m = cd.ctr_ok(&["task", "metrics", &c.id]);
    let value = |key: &str| -> u64 {
        m.lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in:\n{m}"))
    };
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        assert!(value("memory.usage") > 0, "{m}");
        assert_eq!(value("memory.usage_limit"), 67108864, "{m}");
        assert!(value("cpu.usage_usec") > 0, "{m}");
        assert!(value("pids.current") >= 2, "{m}");
    } else {
        assert!(value("memory.usage_in_bytes") > 0, "{m}");
        assert_eq!(value("memory.limit_in_bytes"), 67108864, "{m}");
        assert!(value("cpuacct.usage") > 0, "{m}");
        assert!(value("pids.current") >= 2, "{m}");
    }
}

fn oom_kill_is_reported(cd: &Containerd) {
    let mut events = Command::new(cd.version().ctr_bin())
        .args(["-a", &cd.socket().display().to_string(), "events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let id = unique_id("oom");
    // `tail /dev/zero` keeps one ever-growing line in memory: 16 MiB are gone at once.
    let o = cd.ctr(&[
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        "--memory-limit",
        "16777216",
        integration::BUSYBOX_REF,
        &id,
        "tail",
        "/dev/zero",
    ]);
    assert_eq!(
        o.status.code(),
        Some(137),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::thread::sleep(Duration::from_millis(500));
    let _ = events.kill();
    let text = String::from_utf8_lossy(&events.wait_with_output().unwrap().stdout).into_owned();
    let mine: Vec<&str> = text.lines().filter(|l| l.contains(&id)).collect();
    let oom = mine
        .iter()
        .position(|l| l.contains("/tasks/oom"))
        .unwrap_or_else(|| panic!("no /tasks/oom for {id}:\n{text}"));
    let exit = mine
        .iter()
        .position(|l| l.contains("/tasks/exit"))
        .unwrap_or_else(|| panic!("no /tasks/exit for {id}:\n{text}"));
    assert!(oom < exit, "{}", mine.join("\n"));
    integration::assert_clean(&id);
}
