//! Running a command and getting its exit status in any process, including one whose children
//! are reaped by someone else.
//!
//! The shim runs a reaper (containerd-shim's SIGCHLD handler calls `waitpid(-1)`): a
//! `std::process::Child` of the shim may be reaped before its own `wait` runs, and its exit status
//! is then lost. So the command runs under `/bin/sh`, which waits for it and writes `$?` to a pipe
//! (fd 3 of the shell, closed for the command); stdout and stderr come through pipes as usual.
//! The shell and the command are a process group of their own, killed as a whole on timeout.

use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A command that ran to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Its exit code, or 128 + the signal that killed it.
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.code == 0
    }
}

/// Why a command did not finish.
#[derive(Debug)]
pub enum RunError {
    /// The program is not installed (the shell could not find or run it: status 127).
    NotFound(String),
    /// The shell could not be started.
    Spawn(std::io::Error),
    /// Still running after the time limit: killed.
    Timeout(Duration),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::NotFound(s) => write!(f, "not found: {s}"),
            RunError::Spawn(e) => write!(f, "cannot start /bin/sh: {e}"),
            RunError::Timeout(t) => write!(f, "killed after {t:?}"),
        }
    }
}

const SCRIPT: &str = r#""$0" "$@" 3>&-; echo $? >&3"#;

/// Runs `prog ARGS` (looked up in `PATH`) with stdin from /dev/null, waits at most `timeout`
/// (`None`: no limit), and returns its status and output.
pub fn run<S: AsRef<OsStr>>(
    prog: &str,
    args: &[S],
    timeout: Option<Duration>,
) -> Result<Finished, RunError> {
    let (status_r, status_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| RunError::Spawn(e.into()))?;
    let w = status_w.as_raw_fd();
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(SCRIPT)
        .arg(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: only dup2/fcntl (async-signal-safe) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if w == 3 {
                if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(w, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(RunError::Spawn)?;
    drop(status_w);
    let pgid = child.id() as i32;
    let out = child
        .stdout
        .take()
        .map(|s| thread::spawn(move || read_all(s)));
    let err = child
        .stderr
        .take()
        .map(|s| thread::spawn(move || read_all(s)));
    let status = read_status(status_r, timeout);
    if status.is_none() {
        // SAFETY: kill(2) of the process group this function started.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        // A process stuck in the kernel (a hung FUSE request: state D) dies only when the
        // request ends: do not wait for it or its pipes here; a thread reaps it later.
        thread::spawn(move || {
            let _ = child.wait();
            drop((out, err));
        });
        return Err(RunError::Timeout(timeout.unwrap_or_default()));
    }
    let stdout = out.and_then(|t| t.join().ok()).unwrap_or_default();
    let stderr = err.and_then(|t| t.join().ok()).unwrap_or_default();
    // Reaps the shell where nobody else does; in the shim the reaper may have done it (ECHILD).
    let _ = child.wait();
    let text = status.unwrap_or_default();
    let code: i32 = text.trim().parse().unwrap_or(255);
    if code == 127 {
        return Err(RunError::NotFound(
            String::from_utf8_lossy(&stderr).trim().to_string(),
        ));
    }
    Ok(Finished {
        code,
        stdout,
        stderr,
    })
}

fn read_all(mut r: impl Read) -> Vec<u8> {
    let mut b = Vec::new();
    let _ = r.read_to_end(&mut b);
    b
}

/// Reads the shell's `$?` line; `None` when the time is up first (or the shell died without it).
fn read_status(fd: OwnedFd, timeout: Option<Duration>) -> Option<String> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut file = std::fs::File::from(fd);
    let mut buf = Vec::new();
    loop {
        let wait_ms = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return None;
                }
                left.as_millis().min(i32::MAX as u128) as i32
            }
            None => -1,
        };
        let mut pfd = libc::pollfd {
            fd: file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, wait_ms.max(1)) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return None;
        }
        if n == 0 {
            continue;
        }
        let mut chunk = [0u8; 64];
        match file.read(&mut chunk) {
            Ok(0) => return (!buf.is_empty()).then(|| String::from_utf8_lossy(&buf).into_owned()),
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_output() {
        let f = run("sh", &["-c", "echo out; echo err >&2; exit 7"], None).unwrap();
        assert_eq!(f.code, 7);
        assert_eq!(f.stdout, b"out\n");
        assert_eq!(f.stderr, b"err\n");
        assert!(run("true", &[] as &[&str], None).unwrap().success());
    }

    #[test]
    fn missing_programs_and_timeouts() {
        assert!(matches!(
            run("/nonexistent/prog", &["x"], None),
            Err(RunError::NotFound(_))
        ));
        let start = Instant::now();
        let e = run("sleep", &["20"], Some(Duration::from_millis(200))).unwrap_err();
        assert!(matches!(e, RunError::Timeout(_)), "{e}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn the_status_survives_a_reaper_that_takes_every_child() {
        // What the shim does: reap any child at once.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let reaper = thread::spawn(move || {
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                // SAFETY: waitpid on any child, non-blocking.
                unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
                thread::sleep(Duration::from_micros(200));
            }
        });
        for i in 0..20 {
            let f = run("sh", &["-c", &format!("exit {i}")], None).unwrap();
            assert_eq!(f.code, i);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        reaper.join().unwrap();
    }
}
