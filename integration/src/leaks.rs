//! What a container left behind on the host.

use crate::process::{mount_points, processes_mentioning};
use std::path::Path;
use std::time::{Duration, Instant};

/// Where LXC (and lxcri on top of it) keeps per-container directories.
const LXC_ROOTS: &[&str] = &[
    "/var/lib/lxc",
    "/run/lxc",
    "/var/lib/lxcri",
    "/run/lxcri",
    "/var/run/lxcri",
];

/// Everything on this host that still names container `id`: processes whose command line
/// contains it, mount points (`/proc/self/mountinfo`), directories under the LXC roots
/// (`/var/lib/lxc`, `/run/lxc`, `/var/lib/lxcri`, `/run/lxcri`) and cgroup directories under
/// `/sys/fs/cgroup` (v1 hierarchies and v2 alike). One line per finding; empty means clean.
///
/// Give ids from [`crate::unique_id`]: a short or common id matches unrelated things.
pub fn leaks(id: &str) -> Vec<String> {
    let mut found = Vec::new();
    if id.is_empty() {
        found.push("leaks(\"\"): an empty id matches everything; give a container id".into());
        return found;
    }
    for p in processes_mentioning(id) {
        found.push(format!("process {}: {}", p.pid, p.cmdline));
    }
    for m in mount_points() {
        if m.contains(id) {
            found.push(format!("mount {m}"));
        }
    }
    for root in LXC_ROOTS {
        find_dirs_named(Path::new(root), id, 3, "lxc dir", &mut found);
    }
    find_dirs_named(Path::new("/sys/fs/cgroup"), id, 8, "cgroup", &mut found);
    found
}

/// Polls [`leaks`] until it is empty or `timeout` has passed; returns the last findings. Things
/// go away asynchronously (a SIGKILLed process lingers a moment, a lazy unmount completes
/// later): use this after a teardown.
pub fn wait_no_leaks(id: &str, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let found = leaks(id);
        if found.is_empty() || Instant::now() >= deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last resort of a test that failed half-way: kills the processes naming `id`, lazily
/// unmounts what is mounted at paths naming it, removes its LXC directories and (empty) cgroup
/// directories. For a Drop guard; the test itself asserts with [`leaks`] before.
pub fn remove_leftovers(id: &str) {
    if id.is_empty() {
        return;
    }
    crate::process::kill_processes_mentioning(id);
    for m in mount_points().into_iter().rev().filter(|m| m.contains(id)) {
        crate::process::unmount_below(Path::new(&m));
    }
    let mut dirs = Vec::new();
    for root in LXC_ROOTS {
        find_dirs_named(Path::new(root), id, 3, "", &mut dirs);
    }
    for d in &dirs {
        let _ = std::fs::remove_dir_all(d.trim_start());
    }
    let mut cgroups = Vec::new();
    find_dirs_named(Path::new("/sys/fs/cgroup"), id, 8, "", &mut cgroups);
    for d in &cgroups {
        let _ = std::fs::remove_dir(d.trim_start());
    }
}

/// Adds every directory below `dir` (down to `depth` levels) whose name contains `id`; does not
/// descend into a match.
fn find_dirs_named(dir: &Path, id: &str, depth: u32, what: &str, found: &mut Vec<String>) {
    if depth == 0 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        // file_type() does not follow symlinks: /sys/fs/cgroup has some (cpu -> cpu,cpuacct).
        let Ok(ft) = e.file_type() else { continue };
        if !ft.is_dir() {
            continue;
        }
        let path = e.path();
        if e.file_name().to_string_lossy().contains(id) {
            found.push(format!("{what} {}", path.display()));
        } else {
            find_dirs_named(&path, id, depth - 1, what, found);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_named_directories_and_nothing_else() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let id = crate::unique_id("leak-unit");
        std::fs::create_dir_all(tmp.path().join("a/b").join(&id).join("inner")).expect("mkdir");
        std::fs::create_dir_all(tmp.path().join("other")).expect("mkdir");
        std::fs::write(tmp.path().join(format!("file-{id}")), b"").expect("write");
        let mut found = Vec::new();
        find_dirs_named(tmp.path(), &id, 5, "dir", &mut found);
        assert_eq!(
            found,
            vec![format!(
                "dir {}",
                tmp.path().join("a/b").join(&id).display()
            )]
        );
        let mut shallow = Vec::new();
        find_dirs_named(tmp.path(), &id, 2, "dir", &mut shallow);
        assert!(shallow.is_empty(), "{shallow:?}");
    }

    #[test]
    fn empty_id_is_refused() {
        assert_eq!(leaks("").len(), 1);
    }
}
