//! OOM kills in a container's cgroup, as they happen, for `/tasks/oom`.
//!
//! cgroup v1: an eventfd registered on `memory.oom_control` through `cgroup.event_control`
//! (the kernel signals it on every OOM in the cgroup, and once more when the cgroup goes away).
//! cgroup v2: inotify on `memory.events`, whose `oom_kill` counter the kernel increments.
//! Both are waited on with tokio's `AsyncFd`: no polling.

use crate::host;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use tokio::io::unix::AsyncFd;

pub struct OomWatcher {
    fd: AsyncFd<OwnedFd>,
    kind: Kind,
}

enum Kind {
    /// The eventfd; the oom_control file stays open while registered.
    V1 {
        _control: std::fs::File,
        cgroup: PathBuf,
    },
    /// inotify on memory.events; the last oom_kill count seen.
    V2 { events: PathBuf, seen: u64 },
}

fn oom_kills(events: &Path) -> u64 {
    std::fs::read_to_string(events)
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("oom_kill ")
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

impl OomWatcher {
    /// Starts watching the memory cgroup of `pid` (a container's init).
    pub fn new(pid: i32) -> Result<OomWatcher, String> {
        let dirs = host::cgroup_dirs(pid);
        if let Some(dir) = dirs.iter().find(|d| d.join("memory.oom_control").exists()) {
            // SAFETY: eventfd with flags; the result is checked before being owned.
            let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
            if efd < 0 {
                return Err(format!("eventfd: {}", std::io::Error::last_os_error()));
            }
            // SAFETY: a descriptor we just created and own.
            let efd = unsafe { OwnedFd::from_raw_fd(efd) };
            let control = std::fs::File::open(dir.join("memory.oom_control"))
                .map_err(|e| format!("{}: {e}", dir.join("memory.oom_control").display()))?;
            let reg = format!("{} {}", efd.as_raw_fd(), control.as_raw_fd());
            std::fs::write(dir.join("cgroup.event_control"), reg)
                .map_err(|e| format!("{}: {e}", dir.join("cgroup.event_control").display()))?;
            // SAFETY: the eventfd is owned by the AsyncFd and closed only when it is dropped.
            let fd = unsafe { AsyncFd::register(efd) }
                .map_err(|e| format!("registering the eventfd: {e}"))?;
            return Ok(OomWatcher {
                fd,
                kind: Kind::V1 {
                    _control: control,
                    cgroup: dir.clone(),
                },
            });
        }
        if let Some(dir) = dirs.iter().find(|d| d.join("memory.events").exists()) {
            let events = dir.join("memory.events");
            // SAFETY: inotify_init1 with flags; the result is checked before being owned.
            let ifd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
            if ifd < 0 {
                return Err(format!(
                    "inotify_init1: {}",
                    std::io::Error::last_os_error()
                ));
            }
            // SAFETY: a descriptor we just created and own.
            let ifd = unsafe { OwnedFd::from_raw_fd(ifd) };
            let c = std::ffi::CString::new(events.as_os_str().as_encoded_bytes())
                .map_err(|e| e.to_string())?;
            // SAFETY: a valid inotify fd and C string.
            if unsafe { libc::inotify_add_watch(ifd.as_raw_fd(), c.as_ptr(), libc::IN_MODIFY) } < 0
            {
                return Err(format!(
                    "inotify on {}: {}",
                    events.display(),
                    std::io::Error::last_os_error()
                ));
            }
            let seen = oom_kills(&events);
            // SAFETY: the inotify fd is owned by the AsyncFd and closed only when it is dropped.
            let fd = unsafe { AsyncFd::register(ifd) }
                .map_err(|e| format!("registering inotify: {e}"))?;
            return Ok(OomWatcher {
                fd,
                kind: Kind::V2 { events, seen },
            });
        }
        Err(format!(
            "process {pid} has no memory cgroup to watch for OOM kills"
        ))
    }

    /// Waits for the next OOM kill. `None` when the cgroup is gone (the container stopped).
    pub async fn next(&mut self) -> Option<()> {
        loop {
            let mut guard = self.fd.readable().await.ok()?;
            let mut buf = [0u8; 4096];
            // SAFETY: reading into our own buffer from our own descriptor.
            let n = unsafe {
                libc::read(
                    self.fd.get_ref().as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::WouldBlock {
                    guard.clear_ready();
                    continue;
                }
                return None;
            }
            match &mut self.kind {
                Kind::V1 { cgroup, .. } => {
                    // The eventfd also fires when the cgroup is removed.
                    if !cgroup.join("memory.oom_control").exists() {
                        return None;
                    }
                    return Some(());
                }
                Kind::V2 { events, seen } => {
                    if !events.exists() {
                        return None;
                    }
                    let now = oom_kills(events);
                    if now > *seen {
                        *seen = now;
                        return Some(());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::oom_kills;

    #[test]
    fn v2_oom_kill_count_from_memory_events() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("memory.events");
        std::fs::write(
            &f,
            "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n",
        )
        .unwrap();
        assert_eq!(oom_kills(&f), 2, "oom_kill, not oom or oom_group_kill");
        std::fs::write(&f, "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n").unwrap();
        assert_eq!(oom_kills(&f), 0);
        assert_eq!(oom_kills(&d.path().join("missing")), 0);
    }
}
