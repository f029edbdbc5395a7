//! Small process helpers: running a command with a time limit, signalling, scanning `/proc`.

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Runs `cmd` to completion, feeding it `stdin` (or /dev/null when `None`) and collecting its
/// output. When it outlives `limit` it is SIGKILLed; the returned status then says "signal 9" and
/// a line naming the limit is appended to its stderr. A command that cannot be started gives
/// exit status 127 and the reason on stderr, so callers handle one kind of result.
pub fn run_with_limit(cmd: &mut Command, stdin: Option<&[u8]>, limit: Duration) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Output {
                status: ExitStatus::from_raw(127 << 8),
                stdout: Vec::new(),
                stderr: format!("cannot start {cmd:?}: {e}").into_bytes(),
            }
        }
    };
    let writer = match (stdin, child.stdin.take()) {
        (Some(data), Some(mut pipe)) => {
            let data = data.to_vec();
            // A child that exits without reading gives EPIPE: not our problem here.
            Some(thread::spawn(move || {
                let _ = pipe.write_all(&data);
            }))
        }
        _ => None,
    };
    let out_reader = child.stdout.take().map(|mut s| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf);
            buf
        })
    });
    let err_reader = child.stderr.take().map(|mut s| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf);
            buf
        })
    });
    let (status, timed_out) = wait_with_limit(&mut child, limit);
    if let Some(w) = writer {
        let _ = w.join();
    }
    let stdout = out_reader.and_then(|r| r.join().ok()).unwrap_or_default();
    let mut stderr = err_reader.and_then(|r| r.join().ok()).unwrap_or_default();
    if timed_out {
        stderr.extend_from_slice(
            format!("\n[harness] killed after {limit:?}: {cmd:?} did not finish\n").as_bytes(),
        );
    }
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Waits for `child` at most `limit`, then SIGKILLs and reaps it. Returns its status and whether
/// it had to be killed.
pub fn wait_with_limit(child: &mut Child, limit: Duration) -> (ExitStatus, bool) {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return (status, false),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            _ => break,
        }
    }
    let _ = child.kill();
    let status = child
        .wait()
        .unwrap_or_else(|_| ExitStatus::from_raw(libc::SIGKILL));
    (status, true)
}

/// Sends `sig` to `pid`; false when there is no such process (or no permission).
pub fn signal(pid: i32, sig: libc::c_int) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill(2) has no memory-safety preconditions; pid > 0 names one process.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// Sends `sig` to every process of process group `pgid`; false when there is none.
pub fn signal_group(pgid: i32, sig: libc::c_int) -> bool {
    if pgid <= 1 {
        return false;
    }
    // SAFETY: as above; a negative pid names the process group.
    unsafe { libc::kill(-pgid, sig) == 0 }
}

/// True while a process `pid` exists (zombies included).
pub fn alive(pid: i32) -> bool {
    signal(pid, 0)
}

/// One process as seen in `/proc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: i32,
    /// The arguments, NUL-separated in /proc, joined by blanks here.
    pub cmdline: String,
}

/// Every process whose command line contains `needle` (this process excluded).
pub fn processes_mentioning(needle: &str) -> Vec<ProcInfo> {
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(raw) = std::fs::read(Path::new("/proc").join(pid.to_string()).join("cmdline"))
        else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw)
            .trim_end_matches('\0')
            .replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(ProcInfo { pid, cmdline });
        }
    }
    found.sort_by_key(|p| p.pid);
    found
}

/// SIGKILLs every process whose command line contains `needle` and waits (up to 5 s) until they
/// are gone. Returns what it killed.
pub fn kill_processes_mentioning(needle: &str) -> Vec<ProcInfo> {
    let victims = processes_mentioning(needle);
    for p in &victims {
        signal(p.pid, libc::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while victims.iter().any(|p| alive_not_zombie(p.pid)) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    victims
}

/// Runs a removal `op` up to `attempts` times, sleeping `pause(attempt)` after each failure
/// ("busy" right after a lazy unmount or while LXC releases a cgroup). Not found counts as
/// removed. Returns the last error when every attempt failed.
pub fn retry_removal(
    attempts: u32,
    pause: impl Fn(u32) -> Duration,
    op: impl Fn() -> std::io::Result<()>,
) -> Option<std::io::Error> {
    let mut last = None;
    for attempt in 0..attempts {
        match op() {
            Ok(()) => return None,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => last = Some(e),
        }
        thread::sleep(pause(attempt));
    }
    last
}

/// Makes `cmd` start with only fds 0, 1 and 2: descriptors this process inherited without
/// close-on-exec (a `flock FILE cargo test` lock, for one) must not live on in a daemon the
/// tests start, or that daemon holds them for its whole life.
pub fn close_inherited_fds(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure only makes one async-signal-safe system call.
    unsafe {
        cmd.pre_exec(|| {
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            Ok(())
        })
    }
}

/// True when `pid` exists and is not a zombie (a zombie is dead, only not yet reaped).
pub fn alive_not_zombie(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the ")" closing the command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(true),
        Err(_) => false,
    }
}

/// Decodes the octal escapes (`\040` for a blank) of a `/proc/self/mountinfo` path field.
pub fn unescape_mount_path(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|b| (b'0'..=b'7').contains(b)) {
                let v = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points (field 5 of `/proc/self/mountinfo`), unescaped, in mount order.
pub fn mount_points() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(unescape_mount_path))
        .collect()
}

/// Lazily unmounts everything mounted at or below `dir`, deepest first. Returns the mount
/// points it could not unmount, with the reason.
/// Bind-mounts `dir` onto itself and makes it a shared mount, recursively: mounts made below
/// it later show in every mount namespace copied from this one with slave propagation.
/// [`unmount_below`] of `dir` undoes it.
pub fn make_shared_mount(dir: &Path) -> std::io::Result<()> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let none = std::ptr::null::<libc::c_char>();
    // SAFETY: valid NUL-terminated paths; null filesystem type and data as mount(2) allows.
    let rc = unsafe {
        libc::mount(
            c.as_ptr(),
            c.as_ptr(),
            none,
            libc::MS_BIND | libc::MS_REC,
            none.cast(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    set_shared(dir).inspect_err(|_| {
        // SAFETY: as above.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    })
}

/// Makes the mount at `dir` (a mount point already) shared, recursively.
pub fn set_shared(dir: &Path) -> std::io::Result<()> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let none = std::ptr::null::<libc::c_char>();
    // SAFETY: a valid NUL-terminated path; null source, type and data as mount(2) allows.
    let rc = unsafe {
        libc::mount(
            none,
            c.as_ptr(),
            none,
            libc::MS_SHARED | libc::MS_REC,
            none.cast(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

pub fn unmount_below(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().into_owned();
    let mut points: Vec<String> = mount_points()
        .into_iter()
        .filter(|m| m == &prefix || m.starts_with(&format!("{prefix}/")))
        .collect();
    // Later mounts may sit on top of earlier ones: undo them in reverse order.
    points.reverse();
    let mut failed = Vec::new();
    for m in points {
        let Ok(c) = std::ffi::CString::new(m.clone()) else {
            continue;
        };
        // SAFETY: c is a valid NUL-terminated path that outlives the call.
        let rc = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            // EINVAL: no longer a mount point (a parent's lazy unmount took it along).
            if e.raw_os_error() != Some(libc::EINVAL) && e.raw_os_error() != Some(libc::ENOENT) {
                failed.push(format!("{m}: {e}"));
            }
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_started_daemon_does_not_inherit_stray_fds() {
        // An fd without close-on-exec, as `flock` leaves one to its child.
        let f = std::fs::File::open("/proc/self/status").unwrap();
        // SAFETY: duplicating a descriptor we own to a free high number.
        let fd = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&f), libc::F_DUPFD, 200) };
        assert!(fd >= 200);
        let probe = |close: bool| {
            let mut cmd = Command::new("sh");
            cmd.arg("-c").arg(format!(
                "test -e /proc/$$/fd/{fd} && echo open || echo closed"
            ));
            if close {
                close_inherited_fds(&mut cmd);
            }
            String::from_utf8(cmd.output().unwrap().stdout).unwrap()
        };
        assert_eq!(probe(false), "open\n", "the probe sees an inherited fd");
        assert_eq!(probe(true), "closed\n");
        // SAFETY: closing the duplicate made above.
        unsafe { libc::close(fd) };
    }

    #[test]
    fn unescape_decodes_octal_blanks_and_keeps_the_rest() {
        assert_eq!(unescape_mount_path(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape_mount_path(r"/x\134y"), r"/x\y");
        assert_eq!(unescape_mount_path(r"/plain"), "/plain");
        assert_eq!(unescape_mount_path(r"/bad\09"), r"/bad\09");
        assert_eq!(unescape_mount_path(r"/end\04"), r"/end\04");
    }

    #[test]
    fn run_with_limit_collects_output_status_and_stdin() {
        let out = run_with_limit(
            Command::new("/bin/sh").args(["-c", "cat; echo err >&2; exit 4"]),
            Some(b"piped"),
            Duration::from_secs(10),
        );
        assert_eq!(out.status.code(), Some(4));
        assert_eq!(out.stdout, b"piped");
        assert_eq!(out.stderr, b"err\n");
    }

    #[test]
    fn run_with_limit_kills_a_command_that_hangs() {
        let start = Instant::now();
        let out = run_with_limit(
            Command::new("/bin/sleep").arg("30"),
            None,
            Duration::from_millis(300),
        );
        assert!(start.elapsed() < Duration::from_secs(10));
        assert_eq!(out.status.signal(), Some(libc::SIGKILL));
        assert!(String::from_utf8_lossy(&out.stderr).contains("killed after"));
    }

    #[test]
    fn run_with_limit_reports_a_missing_program() {
        let out = run_with_limit(
            &mut Command::new("/nonexistent/lxcri-no-such-program"),
            None,
            Duration::from_secs(1),
        );
        assert_eq!(out.status.code(), Some(127));
        assert!(String::from_utf8_lossy(&out.stderr).contains("cannot start"));
    }
}
