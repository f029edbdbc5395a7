//! Facts about the host that the pure translation needs, read once.

use crate::lxcconf::CgroupMode;
use std::collections::BTreeSet;
use std::path::Path;

/// cgroup v2 when `/sys/fs/cgroup` is the unified hierarchy, else v1 (legacy or hybrid: the
/// controllers are on v1 there).
pub fn cgroup_mode() -> CgroupMode {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        CgroupMode::V2
    } else {
        CgroupMode::V1
    }
}

/// Filesystem types this kernel knows (`/proc/filesystems`).
pub fn filesystems() -> BTreeSet<String> {
    parse_filesystems(&std::fs::read_to_string("/proc/filesystems").unwrap_or_default())
}

pub fn parse_filesystems(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().last())
        .map(str::to_owned)
        .collect()
}

/// Whether AppArmor is enabled on this host.
pub fn has_apparmor() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false)
}

/// The host pids of the processes in the cgroup of `pid` (all of a container's processes when
/// `pid` is its init). Empty when the process is gone.
pub fn cgroup_pids(pid: i32) -> Vec<i32> {
    for dir in cgroup_dirs(pid) {
        if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            let pids: Vec<i32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
            if pids.contains(&pid) {
                return pids;
            }
        }
    }
    if std::path::Path::new(&format!("/proc/{pid}")).exists() {
        vec![pid]
    } else {
        Vec::new()
    }
}

/// The cgroup directories of `pid` in every mounted hierarchy (v1 controllers and v2), from
/// `/proc/PID/cgroup`. Only those that exist; the root cgroup is never returned.
pub fn cgroup_dirs(pid: i32) -> Vec<std::path::PathBuf> {
    let Ok(cg) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in cg.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrl), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if path == "/" || path.is_empty() {
            continue;
        }
        let roots: Vec<String> = if ctrl.is_empty() {
            vec!["/sys/fs/cgroup/unified".into(), "/sys/fs/cgroup".into()]
        } else {
            let first = ctrl
                .split(',')
                .next()
                .unwrap_or(ctrl)
                .trim_start_matches("name=");
            vec![
                format!("/sys/fs/cgroup/{first}"),
                format!("/sys/fs/cgroup/{ctrl}"),
            ]
        };
        for root in roots {
            let dir = std::path::PathBuf::from(format!("{root}{path}"));
            if dir.join("cgroup.procs").exists() && !out.contains(&dir) {
                out.push(dir);
                break;
            }
        }
    }
    out
}

/// Freezes (`true`) or thaws the cgroup of `pid`: the v1 freezer (`freezer.state`) or v2's
/// `cgroup.freeze`. Waits (bounded) until the kernel reports the new state.
pub fn set_frozen(pid: i32, frozen: bool) -> Result<(), String> {
    let dirs = cgroup_dirs(pid);
    let limit = std::time::Duration::from_secs(5);
    if let Some(dir) = dirs.iter().find(|d| d.join("freezer.state").exists()) {
        return freeze_v1(dir, frozen, limit);
    }
    if let Some(dir) = dirs.iter().find(|d| d.join("cgroup.freeze").exists()) {
        return freeze_v2(dir, frozen, limit);
    }
    Err(format!(
        "process {pid} has no freezer cgroup (neither freezer.state nor cgroup.freeze)"
    ))
}

/// Polls `done` every 2 ms until it holds or `limit` passes.
fn wait_until(limit: std::time::Duration, done: impl Fn() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    true
}

/// The cgroup v1 freezer of one cgroup directory: `freezer.state` FROZEN or THAWED.
pub fn freeze_v1(dir: &Path, frozen: bool, limit: std::time::Duration) -> Result<(), String> {
    let f = dir.join("freezer.state");
    let want = if frozen { "FROZEN" } else { "THAWED" };
    std::fs::write(&f, want).map_err(|e| format!("writing {want} to {}: {e}", f.display()))?;
    let reached = wait_until(limit, || {
        std::fs::read_to_string(&f).is_ok_and(|s| s.trim() == want)
    });
    if !reached {
        return Err(format!(
            "{} did not become {want} within {} s",
            f.display(),
            limit.as_secs()
        ));
    }
    Ok(())
}

/// The cgroup v2 freezer of one cgroup directory: `cgroup.freeze`, done when `cgroup.events`
/// says `frozen 1` (or `frozen 0`).
pub fn freeze_v2(dir: &Path, frozen: bool, limit: std::time::Duration) -> Result<(), String> {
    let f = dir.join("cgroup.freeze");
    std::fs::write(&f, if frozen { "1" } else { "0" })
        .map_err(|e| format!("writing {}: {e}", f.display()))?;
    let want = if frozen { "frozen 1" } else { "frozen 0" };
    let events = dir.join("cgroup.events");
    let reached = wait_until(limit, || {
        std::fs::read_to_string(&events).is_ok_and(|s| s.lines().any(|l| l == want))
    });
    if !reached {
        return Err(format!(
            "{} did not say {want:?} within {} s",
            events.display(),
            limit.as_secs()
        ));
    }
    Ok(())
}

/// The children of `pid`, from `/proc/PID/task/*/children` (each thread lists the children it
/// forked), or a scan of /proc where the kernel lacks those files.
pub fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    if pid <= 0 {
        // Not a process (an unset pid): its "children" by ppid would be the kernel's and init.
        return out;
    }
    let mut found_files = false;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
                found_files = true;
                out.extend(
                    text.split_whitespace()
                        .filter_map(|p| p.parse::<i32>().ok()),
                );
            }
        }
    }
    if found_files {
        return out;
    }
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(child) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) {
                // ppid is the 2nd field after the parenthesised command name
                if let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) {
                    if rest.split(' ').nth(1).and_then(|p| p.parse::<i32>().ok()) == Some(pid) {
                        out.push(child);
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unset_pid_has_no_children() {
        // By ppid, pid 0's children are init and kthreadd: never to be killed as a container's.
        assert!(children(0).is_empty());
        assert!(children(-1).is_empty());
        assert!(!children(1).is_empty() || !std::path::Path::new("/proc/1").exists());
    }

    #[test]
    fn filesystems_parse() {
        let fs = parse_filesystems("nodev\tsysfs\nnodev\ttmpfs\n\text4\nnodev\toverlay\n");
        assert!(fs.contains("ext4") && fs.contains("overlay") && fs.contains("sysfs"));
        assert!(!fs.contains("nodev"));
    }

    /// The host's cgroup2 mount: `/sys/fs/cgroup` on a unified host, `/sys/fs/cgroup/unified` on
    /// a hybrid one. The v2 freezer is core cgroup2 (no controller needed), so it works on both.
    fn cgroup2_root() -> Option<std::path::PathBuf> {
        let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
        mounts.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 2 && f[2] == "cgroup2").then(|| std::path::PathBuf::from(f[1]))
        })
    }

    /// A cgroup2 directory of the test's own, removed (its processes killed) on drop.
    struct TestCgroup(std::path::PathBuf, std::process::Child);

    impl Drop for TestCgroup {
        fn drop(&mut self) {
            let _ = std::fs::write(self.0.join("cgroup.freeze"), "0");
            let _ = self.1.kill();
            let _ = self.1.wait();
            for _ in 0..100 {
                if std::fs::remove_dir(&self.0).is_ok() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }

    #[test]
    fn v2_freezer_really_stops_a_process() {
        if !nix::unistd::Uid::effective().is_root() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs the tests as root"
            );
            eprintln!("skipped: needs root to make a cgroup");
            return;
        }
        let root = cgroup2_root().expect("the host mounts cgroup2 (unified or hybrid)");
        let dir = root.join(format!("lxcri-test-freeze-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        // The process appends a line every 10 ms: the file's size is its progress.
        let counter = tempfile::NamedTempFile::new().unwrap();
        let child = std::process::Command::new("sh")
            .args(["-c", "while :; do echo x; sleep 0.01; done"])
            .stdout(counter.reopen().unwrap())
            .spawn()
            .unwrap();
        let cg = TestCgroup(dir.clone(), child);
        std::fs::write(dir.join("cgroup.procs"), cg.1.id().to_string()).unwrap();
        let read = || -> u64 {
            std::fs::metadata(counter.path())
                .map(|m| m.len())
                .unwrap_or(0)
        };
        let limit = std::time::Duration::from_secs(5);
        let wait = || std::thread::sleep(std::time::Duration::from_millis(150));

        wait();
        freeze_v2(&dir, true, limit).unwrap();
        let frozen_at = read();
        wait();
        assert_eq!(read(), frozen_at, "the process wrote while frozen");
        let events = std::fs::read_to_string(dir.join("cgroup.events")).unwrap();
        assert!(events.lines().any(|l| l == "frozen 1"), "{events}");

        freeze_v2(&dir, false, limit).unwrap();
        wait();
        assert!(
            read() > frozen_at,
            "the process did not resume after thawing"
        );
        drop(cg);
        assert!(!dir.exists(), "{} left behind", dir.display());
    }

    #[test]
    fn own_children_are_found() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let me = std::process::id() as i32;
        let kids = children(me);
        let _ = child.kill();
        let _ = child.wait();
        assert!(kids.contains(&(child.id() as i32)), "{kids:?}");
    }
}
