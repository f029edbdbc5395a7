//! Pause/resume, metrics and update of lxcri containers through `ctr`, on containerd 1.6, 1.7
//! and 2.1.

use integration::run_with_busybox as run;
use integration::{assert_exit, ctr_run_rm, unique_id, Containerd, Events, Running};
use std::path::Path;
use std::time::{Duration, Instant};

// Update is tested in shim_api.rs: none of the three ctr builds has `ctr task update`.
integration::per_containerd_version!(
    pause_stops_the_processes_and_resume_restarts_them,
    metrics_are_real,
    oom_kill_is_reported
);

/// A running container whose shell bumps a counter file every 50 ms.
struct Counter<'a> {
    c: Running<'a>,
    pid: u32,
}

impl<'a> Counter<'a> {
    fn start(cd: &'a Containerd, prefix: &str, flags: &[&str]) -> Counter<'a> {
        let script = "i=0; while :; do i=$((i+1)); echo $i > /tmp/counter; sleep 0.05; done";
        let c = Running::start_cmd(cd, prefix, flags, &["sh", "-c", script]);
        let pid = cd.wait_task(&c.id, "RUNNING");
        Counter { c, pid }
    }
    fn value(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/root/tmp/counter", self.pid))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }
    fn id(&self) -> &str {
        &self.c.id
    }
    /// Its status in `ctr task ls`.
    fn status(&self) -> String {
        self.c.cd.task(self.id()).map(|t| t.1).unwrap_or_default()
    }
}

fn pause_stops_the_processes_and_resume_restarts_them(cd: &Containerd) {
    let events = Events::watch(cd);
    let c = Counter::start(cd, "pause", &[]);
    std::thread::sleep(Duration::from_millis(300));
    cd.ctr_ok(&["task", "pause", c.id()]);
    assert_eq!(c.status(), "PAUSED");
    let frozen = c.value();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(c.value(), frozen, "the counter advanced while paused");
    // Pausing twice, or exec into a paused container, is refused.
    assert!(!cd.ctr(&["task", "pause", c.id()]).status.success());
    cd.ctr_ok(&["task", "resume", c.id()]);
    assert_eq!(c.status(), "RUNNING");
    integration::wait_until(
        "the counter to advance after resume",
        Duration::from_secs(10),
        || c.value() > frozen,
    );
    let text = events.stop();
    let mine: Vec<&str> = text.lines().filter(|l| l.contains(c.id())).collect();
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
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let value = |m: &str, key: &str| -> Option<u64> {
        m.lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
    };
    let (usage, limit, cpu) = if v2 {
        ("memory.usage", "memory.usage_limit", "cpu.usage_usec")
    } else {
        (
            "memory.usage_in_bytes",
            "memory.limit_in_bytes",
            "cpuacct.usage",
        )
    };
    // The counter's shell has its `sleep` child most of the time, not always: poll until one
    // reading shows both processes (slow under emulation, in the VM lane) instead of trusting
    // one reading after a fixed pause.
    let deadline = Instant::now() + Duration::from_secs(20);
    let m = loop {
        let m = cd.ctr_ok(&["task", "metrics", c.id()]);
        let ready = value(&m, usage).is_some_and(|v| v > 0)
            && value(&m, cpu).is_some_and(|v| v > 0)
            && value(&m, "pids.current").is_some_and(|v| v >= 2);
        if ready || Instant::now() >= deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let get = |key: &str| value(&m, key).unwrap_or_else(|| panic!("no {key} in:\n{m}"));
    assert!(get(usage) > 0, "{m}");
    assert_eq!(get(limit), 67108864, "{m}");
    assert!(get(cpu) > 0, "{m}");
    assert!(get("pids.current") >= 2, "{m}");
}

fn oom_kill_is_reported(cd: &Containerd) {
    let events = Events::watch(cd);
    let id = unique_id("oom");
    // `tail /dev/zero` keeps one ever-growing line in memory: 16 MiB are gone at once.
    let o = ctr_run_rm(
        cd,
        &["--memory-limit", "16777216"],
        &id,
        &["tail", "/dev/zero"],
    );
    assert_exit(&o, 137);
    let text = events.stop();
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
