//! Running one hook: fork, enter the container's namespaces, exec, feed the state, collect the
//! output, enforce the timeout.
//!
//! The shim is multi-threaded (tokio), and `setns(CLONE_NEWNS)` and `setns(CLONE_NEWUSER)`
//! refuse a multi-threaded caller, so the namespaces are entered in a forked child, the
//! *runner*, which then forks the hook itself: a process only enters a PID namespace at fork.
//! The runner waits for the hook and reports through a pipe, as fixed-size records: the hook's
//! pid, then its wait status (or the step that failed before the exec, with its errno). The
//! shim never waits for the runner: containerd-shim's reaper collects it, and the hook is the
//! runner's child, not the shim's, so the two never race for an exit status.
//!
//! Between fork and exec only async-signal-safe calls are made (no allocation): everything the
//! children need (C strings, argv and envp arrays, namespace descriptors) is prepared before.
//!
//! The hook gets the state on stdin, a pipe each for stdout and stderr, and its own process
//! group: a timeout kills the group (a shell script's children with it).

use super::{Hook, Place};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// How much of each of stdout and stderr is kept (the rest is read and dropped).
const OUTPUT_CAP: usize = 1 << 20;
/// How much of each stream an error message quotes.
const QUOTE_CAP: usize = 2048;
/// After the hook ended: how long its output pipes may stay open (a child it left running
/// can hold them) before the shim stops reading.
const DRAIN_GRACE: Duration = Duration::from_millis(200);
/// After a timeout's SIGKILL: how long the runner gets to report.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// The namespaces entered for a hook in the container, in this order: user last, so that the
/// others are entered with the shim's (host root's) rights.
const NAMESPACES: [(&str, libc::c_int); 8] = [
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("net", libc::CLONE_NEWNET),
    ("pid", libc::CLONE_NEWPID),
    ("time", 0x80), // CLONE_NEWTIME
    ("mnt", libc::CLONE_NEWNS),
    ("user", libc::CLONE_NEWUSER),
];

/// Steps of the runner and the hook that can fail before the exec (the `aux` of an `E` record;
/// below 8: setns of `NAMESPACES[step]`).
const STEP_ROOT: u8 = 20;
const STEP_CHROOT: u8 = 21;
const STEP_CWD: u8 = 22;
const STEP_IDS: u8 = 23;
const STEP_FORK: u8 = 24;
const STEP_STDIO: u8 = 25;

/// How a hook ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    Exited(i32),
    Signaled(i32),
    /// Killed after its timeout (seconds).
    TimedOut(u64),
    /// It could not be started: the reason.
    NotStarted(String),
}

#[derive(Debug)]
pub struct Outcome {
    pub end: End,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Outcome {
    /// `None` if the hook succeeded (exit status 0), else the error message: the hook, how it
    /// ended and its output.
    pub fn failure(&self, hook: &Hook) -> Option<String> {
        let what = match &self.end {
            End::Exited(0) => return None,
            End::Exited(code) => format!("exited with status {code}"),
            End::Signaled(sig) => format!("was killed by signal {sig}"),
            End::TimedOut(t) => format!(
                "did not finish within its timeout of {t} s (hooks.{}[{}].timeout) and was \
                 killed",
                hook.kind.field(),
                hook.index
            ),
            End::NotStarted(why) => format!("could not be started: {why}"),
        };
        let mut msg = format!("{} {what}", hook.name());
        for (name, data) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let text = quote(data);
            if !text.is_empty() {
                msg.push_str(&format!("; its {name}: {text}"));
            }
        }
        Some(msg)
    }
}

/// The output for an error message: trimmed, at most [`QUOTE_CAP`] bytes (the start and the
/// end of a longer one).
pub fn quote(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    let text = text.trim();
    if text.len() <= QUOTE_CAP {
        return text.to_string();
    }
    let head_end = floor_char(text, QUOTE_CAP / 4);
    let tail_start = ceil_char(text, text.len() - (QUOTE_CAP - QUOTE_CAP / 4));
    format!(
        "{} [... {} bytes cut ...] {}",
        &text[..head_end],
        tail_start - head_end,
        &text[tail_start..]
    )
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

fn not_started(why: impl Into<String>) -> Outcome {
    Outcome {
        end: End::NotStarted(why.into()),
        stdout: Vec::new(),
        stderr: Vec::new(),
    }
}

/// What the children need, prepared before the fork.
struct Prepared {
    path: CString,
    argv: Vec<CString>,
    env: Vec<CString>,
    /// (descriptor, CLONE_NEW* flag, index in NAMESPACES), in the order to enter them.
    namespaces: Vec<(OwnedFd, libc::c_int, u8)>,
    /// The directory to chroot to after the mount namespace is entered.
    root: Option<OwnedFd>,
    cwd: CString,
    /// Whether the user namespace is entered (then the ids become the container's root).
    user: bool,
}

fn cstring(s: &str, what: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("{what} {s:?} contains a NUL byte"))
}

fn same_file(a: &str, b: &str) -> Result<bool, std::io::Error> {
    let (a, b) = (std::fs::metadata(a)?, std::fs::metadata(b)?);
    Ok(a.ino() == b.ino() && a.dev() == b.dev())
}

fn open_path(path: &str, flags: libc::c_int) -> Result<OwnedFd, String> {
    let c = cstring(path, "path")?;
    // SAFETY: a valid C string; the descriptor is owned at once.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(format!(
            "opening {path}: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn prepare(hook: &Hook, bundle: &Path, init_pid: Option<i32>) -> Result<Prepared, String> {
    let place = hook.kind.place();
    let path = cstring(&hook.path, "path")?;
    let argv = hook
        .args
        .iter()
        .map(|a| cstring(a, "argument"))
        .collect::<Result<Vec<_>, _>>()?;
    let env = hook
        .env
        .iter()
        .map(|e| cstring(e, "environment entry"))
        .collect::<Result<Vec<_>, _>>()?;
    let bundle_str = bundle.to_str().unwrap_or("/");
    let mut prepared = Prepared {
        path,
        argv,
        env,
        namespaces: Vec::new(),
        root: None,
        cwd: cstring(bundle_str, "bundle")?,
        user: false,
    };
    if place == Place::Runtime {
        return Ok(prepared);
    }
    let pid = init_pid.ok_or("the container has no init process")?;
    for (i, (name, flag)) in NAMESPACES.iter().enumerate() {
        let theirs = format!("/proc/{pid}/ns/{name}");
        let ours = format!("/proc/self/ns/{name}");
        if !Path::new(&ours).exists() {
            continue; // a namespace kind this kernel does not have
        }
        match same_file(&ours, &theirs) {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => {
                return Err(format!(
                    "the container's init (pid {pid}) is gone: {theirs}: {e}"
                ))
            }
        }
        let fd = open_path(&theirs, libc::O_RDONLY)?;
        prepared.namespaces.push((fd, *flag, i as u8));
        prepared.user |= *name == "user";
    }
    let root = match place {
        Place::ContainerHostRoot => "/".to_string(),
        _ => {
            prepared.cwd = cstring("/", "cwd")?;
            format!("/proc/{pid}/root")
        }
    };
    prepared.root = Some(open_path(&root, libc::O_PATH | libc::O_DIRECTORY)?);
    Ok(prepared)
}

/// A close-on-exec pipe whose descriptors are above 2 (the hook's stdio is dup2-ed onto 0-2;
/// a shim started with a closed stdio descriptor could otherwise get one of those numbers).
fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let (r, w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    Ok((above_stdio(r)?, above_stdio(w)?))
}

fn above_stdio(fd: OwnedFd) -> Result<OwnedFd, String> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: fcntl on a descriptor we own; the new one is owned at once.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(format!("dup: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

fn set_nonblock(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
}

/// Runs one hook: `init_pid` is the container's init for hooks that run in the container
/// (`None` for runtime-namespace hooks), `state` goes to its stdin. Blocks until the hook ended
/// (or its timeout killed it).
pub fn run_hook(hook: &Hook, bundle: &Path, init_pid: Option<i32>, state: &[u8]) -> Outcome {
    let prepared = match prepare(hook, bundle, init_pid) {
        Ok(p) => p,
        Err(e) => return not_started(e),
    };
    let pipes = (|| Ok::<_, String>((pipe()?, pipe()?, pipe()?, pipe()?)))();
    let ((in_r, in_w), (out_r, out_w), (err_r, err_w), (rep_r, rep_w)) = match pipes {
        Ok(p) => p,
        Err(e) => return not_started(e),
    };
    let mut argv: Vec<*const libc::c_char> = prepared.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = prepared.env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    let child_fds = ChildFds {
        stdin: in_r.as_raw_fd(),
        stdout: out_w.as_raw_fd(),
        stderr: err_w.as_raw_fd(),
        report: rep_w.as_raw_fd(),
        parent_ends: [
            in_w.as_raw_fd(),
            out_r.as_raw_fd(),
            err_r.as_raw_fd(),
            rep_r.as_raw_fd(),
        ],
    };

    // Block every signal across the fork so that no handler of the shim runs in a child; the
    // hook gets default dispositions and an empty mask before its exec.
    // SAFETY: plain signal-mask and fork calls; the child only makes async-signal-safe calls
    // on memory prepared above and never returns.
    let runner = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let pid = libc::fork();
        if pid == 0 {
            runner_main(&prepared, &argv, &envp, &child_fds);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        pid
    };
    if runner < 0 {
        return not_started(format!("fork: {}", std::io::Error::last_os_error()));
    }
    drop((in_r, out_w, err_w, rep_w));
    drop(prepared);
    let timeout = hook.timeout_s.map(Duration::from_secs);
    supervise(runner, timeout, hook, state, in_w, out_r, err_r, rep_r)
}

/// The raw descriptors the children use.
struct ChildFds {
    stdin: RawFd,
    stdout: RawFd,
    stderr: RawFd,
    report: RawFd,
    /// The shim's ends, closed in the runner.
    parent_ends: [RawFd; 4],
}

/// Writes one 6-byte record `[tag, aux, value (i32, native order)]` to the report pipe.
unsafe fn report(fd: RawFd, tag: u8, aux: u8, value: i32) {
    let v = value.to_ne_bytes();
    let rec = [tag, aux, v[0], v[1], v[2], v[3]];
    libc::write(fd, rec.as_ptr() as *const libc::c_void, rec.len());
}

unsafe fn errno() -> i32 {
    *libc::__errno_location()
}

/// Reports a failed step and exits.
unsafe fn fail(fd: RawFd, step: u8) -> ! {
    report(fd, b'E', step, errno());
    libc::_exit(1)
}

/// The runner (the forked child): enters the namespaces, forks the hook, waits for it and
/// reports. Async-signal-safe calls only.
unsafe fn runner_main(
    p: &Prepared,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    fds: &ChildFds,
) -> ! {
    for fd in fds.parent_ends {
        libc::close(fd);
    }
    let rep = fds.report;
    for (fd, flag, idx) in &p.namespaces {
        if *flag == libc::CLONE_NEWUSER {
            continue;
        }
        if libc::setns(fd.as_raw_fd(), *flag) != 0 {
            fail(rep, *idx);
        }
    }
    if let Some(root) = &p.root {
        if libc::fchdir(root.as_raw_fd()) != 0 {
            fail(rep, STEP_ROOT);
        }
        if libc::chroot(c".".as_ptr()) != 0 {
            fail(rep, STEP_CHROOT);
        }
    }
    if libc::chdir(p.cwd.as_ptr()) != 0 && libc::chdir(c"/".as_ptr()) != 0 {
        fail(rep, STEP_CWD);
    }
    for (fd, flag, idx) in &p.namespaces {
        if *flag == libc::CLONE_NEWUSER && libc::setns(fd.as_raw_fd(), *flag) != 0 {
            fail(rep, *idx);
        }
    }
    if p.user {
        // The container's root, as runc's hooks in a user namespace are.
        libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>());
        if libc::syscall(libc::SYS_setresgid, 0, 0, 0) != 0
            || libc::syscall(libc::SYS_setresuid, 0, 0, 0) != 0
        {
            fail(rep, STEP_IDS);
        }
    }
    let hook = libc::fork();
    if hook < 0 {
        fail(rep, STEP_FORK);
    }
    if hook == 0 {
        hook_main(p, argv, envp, fds);
    }
    libc::setpgid(hook, hook);
    libc::close(fds.stdin);
    libc::close(fds.stdout);
    libc::close(fds.stderr);
    report(rep, b'P', 0, hook);
    let mut status = 0;
    loop {
        let r = libc::waitpid(hook, &mut status, 0);
        if r == hook {
            break;
        }
        if r < 0 && errno() != libc::EINTR {
            fail(rep, STEP_FORK);
        }
    }
    report(rep, b'S', 0, status);
    libc::_exit(0)
}

/// The hook (the runner's child): its own process group, stdio, default signals, exec.
unsafe fn hook_main(
    p: &Prepared,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    fds: &ChildFds,
) -> ! {
    libc::setpgid(0, 0);
    for (from, to) in [(fds.stdin, 0), (fds.stdout, 1), (fds.stderr, 2)] {
        if libc::dup2(from, to) < 0 {
            fail(fds.report, STEP_STDIO);
        }
    }
    for sig in 1..=libc::SIGRTMAX() {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
    let mut empty: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut empty);
    libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    libc::execve(p.path.as_ptr(), argv.as_ptr(), envp.as_ptr());
    report(fds.report, b'X', 0, errno());
    libc::_exit(127)
}

fn step_name(step: u8) -> String {
    match step {
        s if (s as usize) < NAMESPACES.len() => {
            format!(
                "entering the container's {} namespace (setns)",
                NAMESPACES[s as usize].0
            )
        }
        STEP_ROOT | STEP_CHROOT => "changing to the hook's root directory".into(),
        STEP_CWD => "changing to the hook's working directory".into(),
        STEP_IDS => "becoming the container's root user (setresuid/setresgid)".into(),
        STEP_FORK => "forking the hook".into(),
        STEP_STDIO => "setting up the hook's stdio".into(),
        s => format!("step {s}"),
    }
}

/// Feeds stdin, collects stdout/stderr and the runner's reports, enforces the timeout.
#[allow(clippy::too_many_arguments)]
fn supervise(
    runner: i32,
    timeout: Option<Duration>,
    hook: &Hook,
    state: &[u8],
    stdin: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
    reports: OwnedFd,
) -> Outcome {
    use std::io::{Read, Write};
    let start = Instant::now();
    for fd in [&stdin, &stdout, &stderr, &reports] {
        set_nonblock(fd.as_raw_fd());
    }
    let mut stdin = Some(std::fs::File::from(stdin));
    let mut streams = [
        (Some(std::fs::File::from(stdout)), Vec::new()),
        (Some(std::fs::File::from(stderr)), Vec::new()),
    ];
    let mut reports = Some(std::fs::File::from(reports));
    let mut records = Vec::new();
    let mut written = 0;
    let mut hook_pid: Option<i32> = None;
    let mut status = None;
    let mut step_error = None;
    let mut exec_errno = None;
    let mut killed_at: Option<Instant> = None;
    let mut ended_at: Option<Instant> = None;
    let mut buf = [0u8; 8192];
    loop {
        let streams_open = streams.iter().any(|(f, _)| f.is_some());
        if let Some(t) = ended_at {
            if !streams_open || t.elapsed() > DRAIN_GRACE {
                break;
            }
        }
        if killed_at.is_some_and(|t| t.elapsed() > KILL_GRACE) {
            // SAFETY: kill of our own child, the runner.
            unsafe { libc::kill(runner, libc::SIGKILL) };
            break;
        }
        if let (Some(limit), None, None) = (timeout, killed_at, ended_at) {
            if start.elapsed() >= limit {
                // The hook's group (its children too), or the runner if it never forked it.
                // SAFETY: signals to processes we started.
                unsafe {
                    match hook_pid {
                        Some(pid) => libc::kill(-pid, libc::SIGKILL),
                        None => libc::kill(runner, libc::SIGKILL),
                    };
                }
                killed_at = Some(Instant::now());
            }
        }
        let mut pfds = Vec::with_capacity(4);
        let fd_of = |f: &Option<std::fs::File>| f.as_ref().map(|f| f.as_raw_fd());
        let slots = [
            (fd_of(&stdin), libc::POLLOUT),
            (fd_of(&streams[0].0), libc::POLLIN),
            (fd_of(&streams[1].0), libc::POLLIN),
            (fd_of(&reports), libc::POLLIN),
        ];
        for (fd, events) in slots {
            pfds.push(libc::pollfd {
                fd: fd.unwrap_or(-1),
                events,
                revents: 0,
            });
        }
        // SAFETY: an array of valid pollfd (negative fds are ignored).
        unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 20) };
        if pfds[0].revents != 0 {
            if let Some(f) = stdin.as_mut() {
                match f.write(&state[written..]) {
                    Ok(n) => written += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => written = state.len(), // EPIPE: the hook does not read it
                }
                if written >= state.len() {
                    stdin = None;
                }
            }
        }
        for (i, (file, data)) in streams.iter_mut().enumerate() {
            if pfds[i + 1].revents == 0 {
                continue;
            }
            if let Some(f) = file.as_mut() {
                match f.read(&mut buf) {
                    Ok(0) => *file = None,
                    Ok(n) => {
                        let room = OUTPUT_CAP.saturating_sub(data.len());
                        data.extend_from_slice(&buf[..n.min(room)]);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => *file = None,
                }
            }
        }
        if pfds[3].revents != 0 {
            if let Some(f) = reports.as_mut() {
                match f.read(&mut buf) {
                    Ok(0) => {
                        reports = None;
                        ended_at.get_or_insert_with(Instant::now);
                    }
                    Ok(n) => records.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => {
                        reports = None;
                        ended_at.get_or_insert_with(Instant::now);
                    }
                }
            }
            while records.len() >= 6 {
                let rec: Vec<u8> = records.drain(..6).collect();
                let value = i32::from_ne_bytes([rec[2], rec[3], rec[4], rec[5]]);
                match rec[0] {
                    b'P' => hook_pid = Some(value),
                    b'S' => status = Some(value),
                    b'X' => exec_errno = Some(value),
                    b'E' => step_error = Some((rec[1], value)),
                    _ => {}
                }
            }
        }
        if stdin.is_some() && ended_at.is_some() {
            stdin = None;
        }
    }
    let [(_, stdout), (_, stderr)] = streams;
    let where_ = match hook.kind.place() {
        Place::Container => "in the container",
        _ => "on the host",
    };
    let end = if let Some(t) = killed_at.and(hook.timeout_s) {
        End::TimedOut(t)
    } else if let Some(e) = exec_errno {
        End::NotStarted(format!(
            "executing {} {where_}: {}",
            hook.path,
            std::io::Error::from_raw_os_error(e)
        ))
    } else if let Some((step, e)) = step_error {
        End::NotStarted(format!(
            "{}: {}",
            step_name(step),
            std::io::Error::from_raw_os_error(e)
        ))
    } else {
        match status {
            Some(s) if libc::WIFEXITED(s) => End::Exited(libc::WEXITSTATUS(s)),
            Some(s) if libc::WIFSIGNALED(s) => End::Signaled(libc::WTERMSIG(s)),
            _ => End::NotStarted("the hook's runner process ended without a report".into()),
        }
    };
    Outcome {
        end,
        stdout,
        stderr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hooks::Kind;

    fn hook(kind: Kind, script: &str, timeout_s: Option<u64>) -> Hook {
        Hook {
            kind,
            index: 0,
            path: "/bin/sh".into(),
            args: vec!["my-argv0".into(), "-c".into(), script.into()],
            env: vec!["A=1".into(), "B=two words".into()],
            timeout_s,
        }
    }

    #[test]
    fn a_host_hook_gets_args_env_state_and_cwd() {
        let dir = tempfile::tempdir().unwrap();
        let h = hook(
            Kind::CreateRuntime,
            "tr '\\0' ' ' < /proc/$$/cmdline; echo; tr '\\0' ' ' < /proc/$$/environ; echo; \
             pwd; cat; echo err >&2",
            None,
        );
        let o = run_hook(&h, dir.path(), None, b"{\"state\":1}");
        assert_eq!(o.end, End::Exited(0), "{o:?}");
        let out = String::from_utf8_lossy(&o.stdout);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("my-argv0 -c "), "{out}");
        assert_eq!(lines[1], "A=1 B=two words ");
        assert_eq!(lines[2], dir.path().to_str().unwrap());
        assert_eq!(lines[3], "{\"state\":1}");
        assert_eq!(o.stderr, b"err\n");
        assert!(o.failure(&h).is_none());
    }

    #[test]
    fn a_failing_hook_names_itself_its_status_and_output() {
        let h = hook(
            Kind::CreateRuntime,
            "echo out-text; echo err-text >&2; exit 3",
            None,
        );
        let o = run_hook(&h, Path::new("/"), None, b"{}");
        assert_eq!(o.end, End::Exited(3));
        let msg = o.failure(&h).unwrap();
        assert!(
            msg.starts_with(
                "createRuntime hook hooks.createRuntime[0] (/bin/sh) exited with status 3"
            ),
            "{msg}"
        );
        assert!(msg.contains("its stdout: out-text"), "{msg}");
        assert!(msg.contains("its stderr: err-text"), "{msg}");
    }

    #[test]
    fn a_hook_that_does_not_read_its_stdin_and_big_state_are_fine() {
        let h = hook(Kind::Poststop, "exit 0", None);
        let state = vec![b'x'; 1 << 20];
        let o = run_hook(&h, Path::new("/"), None, &state);
        assert_eq!(o.end, End::Exited(0));
        let h = hook(Kind::Poststop, "wc -c", None);
        let o = run_hook(&h, Path::new("/"), None, &state);
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "1048576");
    }

    #[test]
    fn a_timeout_kills_the_hook_and_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("child-pid");
        let script = format!(
            "sleep 30 & echo $! > {}; echo started; wait",
            marker.display()
        );
        let h = hook(Kind::CreateRuntime, &script, Some(1));
        let t = Instant::now();
        let o = run_hook(&h, dir.path(), None, b"{}");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert_eq!(o.end, End::TimedOut(1));
        let msg = o.failure(&h).unwrap();
        assert!(msg.contains("timeout of 1 s"), "{msg}");
        assert!(msg.contains("its stdout: started"), "{msg}");
        let child: i32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        while std::fs::read_to_string(format!("/proc/{child}/stat"))
            .is_ok_and(|s| !s.contains(") Z "))
        {
            assert!(
                Instant::now() < deadline,
                "the hook's child {child} lives on"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_missing_executable_is_reported() {
        let mut h = hook(Kind::CreateRuntime, "", None);
        h.path = "/nonexistent/hook".into();
        let o = run_hook(&h, Path::new("/"), None, b"{}");
        let msg = o.failure(&h).unwrap();
        assert!(
            msg.contains(
                "could not be started: executing /nonexistent/hook on the host: No such file"
            ),
            "{msg}"
        );
    }

    /// `unshare` running `sleep` in new namespaces (root only); killed on drop.
    struct Namespaced {
        unshare: std::process::Child,
        /// The sleep inside.
        pid: i32,
    }

    impl Drop for Namespaced {
        fn drop(&mut self) {
            let _ = self.unshare.kill();
            let _ = self.unshare.wait();
        }
    }

    fn namespaced_process(extra: &[&str]) -> Option<Namespaced> {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED: needs root");
            return None;
        }
        let unshare = std::process::Command::new("unshare")
            .args(extra)
            .args([
                "--mount",
                "--uts",
                "--pid",
                "--fork",
                "--mount-proc",
                "/bin/sh",
                "-c",
            ])
            .arg("hostname unit-inner; exec sleep 30")
            .spawn();
        let mut n = Namespaced {
            unshare: unshare.expect("unshare"),
            pid: 0,
        };
        let id = n.unshare.id();
        let deadline = Instant::now() + Duration::from_secs(5);
        while n.pid == 0 {
            let kids = std::fs::read_to_string(format!("/proc/{id}/task/{id}/children"))
                .unwrap_or_default();
            if let Some(pid) = kids.split_whitespace().next().and_then(|p| p.parse().ok()) {
                let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
                if exe.to_string_lossy().contains("sleep") {
                    n.pid = pid;
                }
            }
            assert!(Instant::now() < deadline, "unshare's child did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(n)
    }

    fn ns(pid: &str, kind: &str) -> String {
        std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
            .unwrap()
            .display()
            .to_string()
    }

    #[test]
    fn container_hooks_enter_the_init_namespaces() {
        for extra in [&[][..], &["--user", "--map-root-user"][..]] {
            let Some(inner) = namespaced_process(extra) else {
                return;
            };
            let pid = inner.pid;
            let script = "for n in mnt uts pid user; do readlink /proc/self/ns/$n; done; \
                          hostname; echo $$; id -u; pwd";
            for kind in [Kind::CreateContainer, Kind::StartContainer] {
                let h = hook(kind, script, Some(10));
                let o = run_hook(&h, Path::new("/tmp"), Some(pid), b"{}");
                assert_eq!(o.end, End::Exited(0), "{extra:?} {kind:?}: {o:?}");
                let out = String::from_utf8_lossy(&o.stdout).to_string();
                let lines: Vec<&str> = out.lines().collect();
                let p = pid.to_string();
                assert_eq!(lines[0], ns(&p, "mnt"), "{extra:?} {kind:?}: {out}");
                assert_eq!(lines[1], ns(&p, "uts"), "{extra:?} {kind:?}: {out}");
                assert_eq!(lines[2], ns(&p, "pid"), "{extra:?} {kind:?}: {out}");
                assert_eq!(lines[3], ns(&p, "user"), "{extra:?} {kind:?}: {out}");
                assert_ne!(lines[0], ns("self", "mnt"));
                assert_eq!(lines[4], "unit-inner");
                // Forked inside the PID namespace: a small pid there.
                let inner_pid: i32 = lines[5].parse().unwrap();
                assert!(inner_pid < 100, "{extra:?} {kind:?}: {out}");
                assert_eq!(lines[6], "0");
                let cwd = if kind == Kind::StartContainer {
                    "/"
                } else {
                    "/tmp"
                };
                assert_eq!(lines[7], cwd, "{extra:?} {kind:?}: {out}");
            }
        }
    }

    #[test]
    fn long_output_is_quoted_by_its_ends() {
        let text: String = (0..5000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let q = quote(text.as_bytes());
        assert!(q.len() < QUOTE_CAP + 64, "{}", q.len());
        assert!(q.starts_with("abc") && q.contains("bytes cut"));
        assert!(q.ends_with(&text[text.len() - 10..]));
        assert_eq!(quote(b"  short\n"), "short");
    }
}
