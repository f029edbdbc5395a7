//! One container: the blocking work of Create, Start, Kill and Delete.
//!
//! Create lays out the LXC container (`<lxc_path>/<id>/config`), the runtime directory the init
//! reads (`<lxc_path>/<id>/lxcri/`), makes the rootfs through the [`RootfsProvider`], starts the
//! monitor with the container's stdio, and waits until the init reports that the process spec is
//! applied. Anything that fails on the way is undone: nothing is left behind.

use crate::config::Config;
use crate::console::{self, Console};
use crate::error::{Error, Result};
use crate::{hooks, host, lxcconf, process_spec};
use layerfs::{MountSpec, PreparedRootfs, RootfsProvider, RootfsRequest};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Name of the state file the shim keeps in the bundle, read by the `delete` subcommand.
pub const STATE_FILE: &str = "lxcri-state.json";

/// What Create needs.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub id: String,
    pub namespace: String,
    pub bundle: PathBuf,
    pub mounts: Vec<MountSpec>,
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
    /// containerd's own socket (the shim's `-address`): where the image identity is asked.
    pub containerd_address: Option<String>,
}

/// Where a container's files are.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Paths {
    /// LXC's path for the namespace: `<lxc_root>/<namespace>`.
    pub lxcpath: PathBuf,
    /// The LXC container directory: `<lxcpath>/<id>` (config, lxc.log).
    pub dir: PathBuf,
    /// Host side of `/.lxcri/run` in the container.
    pub rundir: PathBuf,
    pub bundle: PathBuf,
}

impl Paths {
    pub fn new(cfg: &Config, namespace: &str, id: &str, bundle: &Path) -> Paths {
        let lxcpath = cfg.lxc_path(namespace);
        let dir = lxcpath.join(id);
        Paths {
            rundir: dir.join("lxcri"),
            dir,
            lxcpath,
            bundle: bundle.to_path_buf(),
        }
    }
    pub fn lxc_log(&self) -> PathBuf {
        self.dir.join("lxc.log")
    }
    pub fn state_file(&self) -> PathBuf {
        self.bundle.join(STATE_FILE)
    }
}

/// What the `delete` subcommand needs to clean up after a shim that is gone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedState {
    pub paths: Paths,
    pub init_pid: i32,
    pub monitor_pid: i32,
    pub rootfs: Option<PreparedRootfs>,
}

/// A created container: its init is alive and waiting for Start.
#[derive(Debug)]
pub struct Created {
    pub paths: Paths,
    pub init_pid: i32,
    pub monitor_pid: i32,
    pub rootfs: Option<PreparedRootfs>,
    /// The init's terminal, when containerd asked for one.
    pub console: Option<Console>,
}

/// Checks a container id: it names a directory, so no `/`, no `..`, nothing exotic.
pub fn check_id(id: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
    if id.is_empty()
        || id.len() > 128
        || id == "."
        || id == ".."
        || !id.chars().all(ok_char)
        || id.starts_with('.')
    {
        return Err(Error::InvalidArgument(format!(
            "container id {id:?} is not valid: use 1 to 128 letters, digits, '_', '.' or '-', \
             not starting with '.' (it names a directory)"
        )));
    }
    Ok(())
}

/// Things to undo if Create fails half-way, run in reverse order.
struct Undo(Vec<Box<dyn FnOnce() + Send>>);

impl Undo {
    fn push(&mut self, f: impl FnOnce() + Send + 'static) {
        self.0.push(Box::new(f));
    }
    fn disarm(mut self) {
        self.0.clear();
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        while let Some(f) = self.0.pop() {
            f();
        }
    }
}

fn read_spec(bundle: &Path) -> Result<oci_spec::runtime::Spec> {
    let path = bundle.join("config.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    serde_json::from_str(&text).map_err(|e| {
        Error::InvalidArgument(format!(
            "{}: not a valid OCI runtime spec: {e}; fix the container's spec (config.json)",
            path.display()
        ))
    })
}

fn mkfifo(path: &Path) -> Result<()> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .map_err(|e| Error::Internal(format!("mkfifo {}: {e}", path.display())))?;
    // The init writes to it after switching to the container's user.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o622))
        .map_err(|e| Error::io(format!("chmod {}", path.display()), e))
}

fn clear_nonblock(f: &File) {
    let fd = f.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK);
        }
    }
}

/// The container's (or an exec's) stdout and stderr, from containerd's stdio URIs: FIFO paths
/// (the usual case), `file:///path` (both streams appended to the file), or
/// `binary:///path?args` (a logging binary started now, reading the streams from fds 3 and 4 and
/// closing fd 5 once ready, as containerd's shims do). Returns the logger's pid when one runs.
pub fn open_outputs(
    stdout: &str,
    stderr: &str,
    id: &str,
    namespace: &str,
) -> Result<(File, File, Option<i32>)> {
    if let Some(rest) = stdout.strip_prefix("binary://") {
        return start_logger(rest, id, namespace);
    }
    if let Some(path) = stdout.strip_prefix("file://") {
        let f = OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| Error::io(format!("opening the log file {path} (--log-uri)"), e))?;
        let f2 = f
            .try_clone()
            .map_err(|e| Error::io(format!("log file {path}"), e))?;
        return Ok((f, f2, None));
    }
    Ok((open_stdio(stdout, true)?, open_stdio(stderr, true)?, None))
}

fn start_logger(uri_rest: &str, id: &str, namespace: &str) -> Result<(File, File, Option<i32>)> {
    use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    let (path, query) = uri_rest.split_once('?').unwrap_or((uri_rest, ""));
    let mut args = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((k, v)) => {
                args.push(k.to_string());
                if !v.is_empty() {
                    args.push(v.to_string());
                }
            }
            None => args.push(pair.to_string()),
        }
    }
    let pipe = || -> Result<(OwnedFd, OwnedFd)> {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| Error::Internal(format!("pipe for the logging binary: {e}")))
    };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (ready_r, ready_w) = pipe()?;
    let fds = [out_r.as_raw_fd(), err_r.as_raw_fd(), ready_w.as_raw_fd()];
    let mut cmd = std::process::Command::new(path);
    cmd.args(&args)
        .env("CONTAINER_ID", id)
        .env("CONTAINER_NAMESPACE", namespace)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: only dup2/fcntl (async-signal-safe) run between fork and exec. The pipes' fds are
    // above 2, and dup2 onto 3, 4, 5 in order; a source equal to its target keeps CLOEXEC off by
    // fcntl. A source below its target that another dup2 overwrote cannot happen: sources are
    // first moved above 5.
    unsafe {
        cmd.pre_exec(move || {
            let mut moved = [0; 3];
            for (i, fd) in fds.iter().enumerate() {
                moved[i] = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 10);
                if moved[i] < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (i, fd) in moved.iter().enumerate() {
                if libc::dup2(*fd, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| Error::io(format!("starting the logging binary {path} (--log-uri)"), e))?;
    let logger = child.id() as i32;
    drop(child); // the shim's reaper collects it
    drop((out_r, err_r, ready_w));
    // The logger closes fd 5 when it is ready: wait for EOF (bounded).
    let mut ready = File::from(ready_r);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut b = [0u8; 1];
    loop {
        if poll_in(&ready, 50).is_some() && matches!(ready.read(&mut b), Ok(0) | Err(_)) {
            break;
        }
        if Instant::now() > deadline {
            let _ = kill(Pid::from_raw(logger), Signal::SIGKILL);
            return Err(Error::Internal(format!(
                "the logging binary {path} did not get ready within 10 s (it must close fd 5)"
            )));
        }
    }
    // SAFETY: taking ownership of the write ends we own.
    let (out, err) = unsafe {
        (
            File::from_raw_fd(out_w.into_raw_fd()),
            File::from_raw_fd(err_w.into_raw_fd()),
        )
    };
    Ok((out, err, Some(logger)))
}

/// Opens one of containerd's stdio paths for the container. Empty: /dev/null.
pub(crate) fn open_stdio(path: &str, write: bool) -> Result<File> {
    if path.is_empty() {
        return OpenOptions::new()
            .read(!write)
            .write(write)
            .open("/dev/null")
            .map_err(|e| Error::io("/dev/null", e));
    }
    let is_fifo = std::fs::metadata(path)
        .map(|m| m.file_type().is_fifo())
        .unwrap_or(false);
    let f = if !is_fifo {
        if write {
            OpenOptions::new().append(true).create(true).open(path)
        } else {
            File::open(path)
        }
    } else if write {
        // Read and write, as the runc shim keeps a reader of its own: the FIFO never loses its
        // last reader while the process lives. When containerd restarts (or dies) its reader
        // goes away for a while; with a write-only end, every process writing its output then
        // got SIGPIPE (all but a PID namespace's init die of it) or EPIPE. Now the output
        // waits in the pipe (until it is full) for the new containerd to read it. The open
        // does not block either when no reader is there yet.
        OpenOptions::new().read(true).write(true).open(path)
    } else {
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
    };
    let f = f.map_err(|e| Error::io(format!("opening stdio {path}"), e))?;
    clear_nonblock(&f);
    Ok(f)
}

/// A helper process (`lxcri-monitor`) of a container: in its LXC directory, with a clean
/// environment (liblxc reads some variables; none of the shim's may leak into the container).
fn helper_command(bin: &Path, paths: &Paths) -> std::process::Command {
    let mut cmd = std::process::Command::new(bin);
    cmd.current_dir(&paths.dir).env_clear().env(
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    );
    cmd
}

/// Waits up to `ms` for `f` to be readable (or hung up); the poll flags when it is.
fn poll_in(f: &File, ms: i32) -> Option<i16> {
    let mut pfd = libc::pollfd {
        fd: f.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    (n > 0).then_some(pfd.revents)
}

fn pid_alive(pid: i32) -> bool {
    pid > 0 && kill(Pid::from_raw(pid), None).is_ok()
}

/// The last lines of LXC's log for a container, for error messages.
pub fn lxc_log_tail(paths: &Paths) -> String {
    let text = std::fs::read_to_string(paths.lxc_log()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("ERROR")).collect();
    let tail = if lines.is_empty() {
        text.lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
    } else {
        lines
            .into_iter()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect()
    };
    tail.join("\n")
}

/// Reads the init's one status line from the status FIFO, while the monitor lives.
fn read_init_status(
    fifo: &mut File,
    monitor_pid: i32,
    timeout: Duration,
) -> Result<lxcri_init::Status, String> {
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(revents) = poll_in(fifo, 20) {
            match fifo.read(&mut chunk) {
                Ok(0) if revents & libc::POLLHUP != 0 => {
                    if buf.is_empty() {
                        return Err(
                            "the container's init closed its status pipe without a word".into()
                        );
                    }
                }
                Ok(0) => {}
                Ok(k) => buf.extend_from_slice(&chunk[..k]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(format!("reading the init's status: {e}")),
            }
            if let Some(end) = buf.iter().position(|&b| b == b'\n') {
                let line = String::from_utf8_lossy(&buf[..end]).into_owned();
                return lxcri_init::Status::parse_line(&line)
                    .map_err(|e| format!("the init's status line {line:?}: {e}"));
            }
        }
        if !pid_alive(monitor_pid) {
            return Err("LXC stopped before the container's init reported".into());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the container's init did not report within {} ms",
                timeout.as_millis()
            ));
        }
    }
}

/// Creates the container and returns once its init waits for Start.
pub fn create(cfg: &Config, req: &CreateRequest, provider: &dyn RootfsProvider) -> Result<Created> {
    check_id(&req.id)?;
    let mut spec = read_spec(&req.bundle)?;
    let paths = Paths::new(cfg, &req.namespace, &req.id, &req.bundle);
    let init_path = cfg.init_path();
    if !init_path.is_file() {
        return Err(Error::Internal(format!(
            "the container init {} is missing: install lxcri-init beside the shim or set init_path in the lxcri config",
            init_path.display()
        )));
    }

    // What the init will apply: checked before anything is made.
    let mut init_cfg = process_spec::init_config(&spec)
        .map_err(|e| Error::InvalidArgument(format!("container {}: {e}", req.id)))?;
    // containerd's request decides: it is what the stdio paths were made for.
    init_cfg.terminal = req.terminal;
    // The spec's hooks, run once the init is ready (see crate::hooks).
    let bundle = std::path::absolute(&req.bundle)
        .map_err(|e| Error::io(format!("bundle {}", req.bundle.display()), e))?;
    let hook_plan = hooks::Plan::from_spec(&spec, &req.id, &bundle)
        .map_err(|e| Error::InvalidArgument(format!("container {}: {e}", req.id)))?;
    let mut rootfs_options = crate::rootfs::request_options(&spec, &paths.dir)
        .map_err(|e| Error::InvalidArgument(format!("container {}: {e}", req.id)))?;
    // A ZFS base is keyed by the image's chain id when containerd can name it.
    if provider.name() == "zfs" && !req.mounts.is_empty() {
        if let Some(address) = req.containerd_address.as_deref().filter(|a| !a.is_empty()) {
            let found = crate::rootfs::identify(&cfg.cli_path(), address, &req.namespace, &req.id)
                .map_err(|e| Error::InvalidArgument(format!("container {}: {e}", req.id)))?;
            if let Some((chain_id, name)) = found {
                rootfs_options.image_key = Some(chain_id);
                if rootfs_options.image_name.is_none() {
                    rootfs_options.image_name = name;
                }
            }
        }
    }

    let mut undo = Undo(Vec::new());
    std::fs::create_dir_all(&paths.lxcpath)
        .map_err(|e| Error::io(format!("creating {}", paths.lxcpath.display()), e))?;
    match std::fs::create_dir(&paths.dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::AlreadyExists(format!(
                "container {} already exists in {}: delete it first (ctr task delete / ctr container rm)",
                req.id,
                paths.lxcpath.display()
            )))
        }
        Err(e) => return Err(Error::io(format!("creating {}", paths.dir.display()), e)),
    }
    {
        let dir = paths.dir.clone();
        undo.push(move || {
            let _ = std::fs::remove_dir_all(&dir);
        });
    }
    // From here on the bundle's state file always names what exists, so that the `delete`
    // subcommand can clean up after a shim that dies in the middle of Create (containerd runs
    // it then): it is rewritten as the rootfs and the monitor come into being.
    let mut saved = SavedState {
        paths: paths.clone(),
        init_pid: 0,
        monitor_pid: 0,
        rootfs: None,
    };
    saved.save()?;
    {
        let state = paths.state_file();
        undo.push(move || {
            let _ = std::fs::remove_file(&state);
        });
    }
    std::fs::create_dir(&paths.rundir)
        .map_err(|e| Error::io(format!("creating {}", paths.rundir.display()), e))?;
    let _ = std::fs::set_permissions(&paths.rundir, std::fs::Permissions::from_mode(0o711));

    // The rootfs.
    let root_path = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_else(|| PathBuf::from("rootfs"));
    let rootfs_path = if root_path.is_absolute() {
        root_path
    } else {
        req.bundle.join(root_path)
    };
    let rootfs = if req.mounts.is_empty() {
        None
    } else {
        let prepared = provider
            .prepare(&RootfsRequest {
                namespace: req.namespace.clone(),
                id: req.id.clone(),
                mounts: req.mounts.clone(),
                target: rootfs_path.clone(),
                ..rootfs_options
            })
            .map_err(|e| Error::Internal(format!("container {}: rootfs: {e}", req.id)))?;
        let p = prepared.clone();
        undo.push(move || {
            if let Err(e) = layerfs::release(&p) {
                log::warn!("releasing rootfs {}: {e}", p.target.display());
            }
        });
        saved.rootfs = Some(prepared.clone());
        saved.save()?;
        Some(prepared)
    };

    // The LXC config. Mount destinations are resolved inside the mounted rootfs first (symlinks
    // such as /var/run -> /run followed there, never out of it).
    let bad_spec =
        |e: lxcconf::TranslateError| Error::InvalidArgument(format!("container {}: {e}", req.id));
    lxcconf::resolve_mount_destinations(&mut spec, &rootfs_path).map_err(bad_spec)?;
    keep_host_namespaces(&mut spec);
    let file_bind_sources = lxcconf::file_bind_sources(&spec, &rootfs_path);
    let opts = lxcconf::Options {
        rootfs: rootfs_path,
        init_path,
        runtime_dir: paths.rundir.clone(),
        cgroup: host::cgroup_mode(),
        log_file: paths.lxc_log(),
        log_level: cfg.lxc_log_level.to_ascii_uppercase(),
        known_fs_types: host::filesystems(),
        host_has_apparmor: host::has_apparmor(),
        file_bind_sources,
        config_dir: paths.dir.clone(),
    };
    let lxc = lxcconf::translate(&spec, &opts).map_err(bad_spec)?;
    lxcconf::check_mount_targets(&opts.rootfs, &lxc).map_err(bad_spec)?;
    for dir in lxc.get_all("lxc.cgroup.dir.container") {
        check_cgroup_free(dir)?;
        crate::cgroup_files::prepare_cpuset_parents(dir).map_err(|e| {
            Error::Internal(format!(
                "container {}: preparing the cpuset parents of cgroup {dir}: {e}",
                req.id
            ))
        })?;
    }
    for (name, content) in lxc.files() {
        write_file(&paths.dir.join(name), content.as_bytes())?;
    }
    write_file(&paths.dir.join("config"), lxc.render().as_bytes())?;
    let init_json = serde_json::to_vec(&init_cfg)
        .map_err(|e| Error::Internal(format!("encoding init.json: {e}")))?;
    write_file(&paths.rundir.join(lxcri_init::INIT_JSON), &init_json)?;
    let status_path = paths.rundir.join(lxcri_init::STATUS_FIFO);
    mkfifo(&status_path)?;
    mkfifo(&paths.rundir.join(lxcri_init::EXEC_FIFO))?;
    let mut status_fifo = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&status_path)
        .map_err(|e| Error::io(format!("opening {}", status_path.display()), e))?;

    // The monitor, with the container's stdio. With a terminal, its stdin is the socket over
    // which the init hands over the pty; the monitor's own output still goes to containerd.
    let (stdin, console_sock) = if req.terminal {
        let (shim_end, init_end) = console::socket_pair()?;
        (File::from(init_end), Some(shim_end))
    } else {
        (open_stdio(&req.stdin, false)?, None)
    };
    let (stdout, stderr, logger) = open_outputs(&req.stdout, &req.stderr, &req.id, &req.namespace)?;
    if let Some(pid) = logger {
        undo.push(move || {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        });
    }
    let monitor_bin = cfg.monitor_path();
    let child = helper_command(&monitor_bin, &paths)
        .arg(&paths.lxcpath)
        .arg(&req.id)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .map_err(|e| {
            Error::io(
                format!(
                    "starting the LXC monitor {} (install lxcri-monitor beside the shim)",
                    monitor_bin.display()
                ),
                e,
            )
        })?;
    let monitor_pid = child.id() as i32;
    drop(child); // the shim's reaper collects it
    undo.push(move || {
        let _ = kill(Pid::from_raw(monitor_pid), Signal::SIGKILL);
    });
    saved.monitor_pid = monitor_pid;
    saved.save()?;

    let timeout = Duration::from_millis(cfg.create_timeout_ms);
    let status = read_init_status(&mut status_fifo, monitor_pid, timeout).map_err(|why| {
        let log = lxc_log_tail(&paths);
        Error::Internal(format!(
            "container {}: {why}{}",
            req.id,
            if log.is_empty() {
                String::new()
            } else {
                format!("; LXC says:\n{log}")
            }
        ))
    })?;
    if !status.ok {
        let why = status.error.unwrap_or_else(|| "unknown error".into());
        // The init exits after reporting; give LXC a moment to tear the container down.
        wait_gone(monitor_pid, Duration::from_secs(5));
        return Err(Error::InvalidArgument(format!(
            "container {}: {why}",
            req.id
        )));
    }
    let init_pid = find_init(monitor_pid).ok_or_else(|| {
        Error::Internal(format!("container {}: its init reported ready but has no process under the LXC monitor {monitor_pid}", req.id))
    })?;
    let console = match console_sock {
        Some(sock) => {
            let what = format!("container {}", req.id);
            let master = console::receive_master(
                &sock,
                Duration::from_secs(5),
                || pid_alive(init_pid),
                &what,
            )?;
            Some(Console::start(master, &req.stdin, &req.stdout, &what)?)
        }
        None => None,
    };
    let created = Created {
        paths,
        init_pid,
        monitor_pid,
        rootfs,
        console,
    };
    saved.init_pid = init_pid;
    saved.save()?;
    if let Some(plan) = &hook_plan {
        if let Err(e) = run_create_hooks(&created, plan) {
            undo.disarm();
            if let Some(pid) = logger {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            return Err(e);
        }
    }
    undo.disarm();
    Ok(created)
}

/// Runs the Create hooks of a container whose init waits for Start. On a failure the container
/// is torn down (the poststop hooks run, as the runtime spec says) and the error carries the
/// hook's output.
fn run_create_hooks(c: &Created, plan: &hooks::Plan) -> Result<()> {
    if let Err(e) = plan.save(&c.paths.dir) {
        let problems = cleanup(&c.paths, c.init_pid, c.monitor_pid, c.rootfs.as_ref());
        return Err(Error::Internal(format!(
            "writing {}: {e}{}",
            c.paths.dir.join(hooks::PLAN_FILE).display(),
            problems_text(&problems)
        )));
    }
    let Err(why) = plan.run_create(c.init_pid) else {
        return Ok(());
    };
    let id = &plan.id;
    log::warn!("container {id}: {why}");
    let problems = cleanup(&c.paths, c.init_pid, c.monitor_pid, c.rootfs.as_ref());
    Err(Error::Internal(format!(
        "container {id}: {why}; the container was removed{}",
        problems_text(&problems)
    )))
}

fn problems_text(problems: &[String]) -> String {
    if problems.is_empty() {
        String::new()
    } else {
        format!(" (but: {})", problems.join("; "))
    }
}

/// A namespace "joined" by a path that is the host's own namespace (`--with-ns pid:/proc/1/ns/pid`)
/// means the host's namespace: LXC cannot join the namespace it already runs in, it keeps it.
fn keep_host_namespaces(spec: &mut oci_spec::runtime::Spec) {
    use oci_spec::runtime::LinuxNamespaceType as T;
    use std::os::unix::fs::MetadataExt;
    let Some(namespaces) = spec
        .linux_mut()
        .as_mut()
        .and_then(|l| l.namespaces_mut().as_mut())
    else {
        return;
    };
    namespaces.retain(|ns| {
        let Some(path) = ns.path() else { return true };
        let name = match ns.typ() {
            T::Pid => "pid",
            T::Network => "net",
            T::Ipc => "ipc",
            T::Uts => "uts",
            T::Cgroup => "cgroup",
            T::User => "user",
            T::Time => "time",
            T::Mount => return true,
        };
        let same = match (
            std::fs::metadata(path),
            std::fs::metadata(format!("/proc/self/ns/{name}")),
        ) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if same {
            log::info!(
                "namespace {name} at {}: the host's own, kept",
                path.display()
            );
        }
        !same
    });
}

/// LXC creates a new cgroup for every container and cannot join one that exists (runc can):
/// an empty leftover is removed, a cgroup in use is a clear error instead of LXC's ERANGE.
fn check_cgroup_free(dir: &str) -> Result<()> {
    for root in cgroup_roots() {
        let path = root.join(dir.trim_start_matches('/'));
        if path.join("cgroup.procs").exists() && std::fs::remove_dir(&path).is_err() {
            return Err(Error::InvalidArgument(format!(
                "linux.cgroupsPath: the cgroup {dir:?} already exists and is in use ({}); LXC gives \
                 every container a new cgroup of its own: use a path that does not exist yet \
                 (containerd's default /<namespace>/<id> does not)",
                path.display()
            )));
        }
    }
    Ok(())
}

/// The cgroup hierarchies' roots: `/sys/fs/cgroup` and every directory in it (v1 and hybrid).
fn cgroup_roots() -> Vec<PathBuf> {
    let mut roots = vec![PathBuf::from("/sys/fs/cgroup")];
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                roots.push(e.path());
            }
        }
    }
    roots
}

/// Removes the (empty) container cgroups named in LXC config `config`: LXC's monitor leaves
/// them when the init was killed while its processes were still being released (a pod's
/// container stopped with SIGKILL). Only empty cgroups go; a short retry covers the release.
fn remove_configured_cgroups(config: &Path) {
    let Ok(text) = std::fs::read_to_string(config) else {
        return;
    };
    let dirs: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.trim() == "lxc.cgroup.dir.container")
        .map(|(_, v)| v.trim().trim_start_matches('/'))
        .filter(|v| !v.is_empty())
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    for root in cgroup_roots() {
        for dir in &dirs {
            let path = root.join(dir);
            while path.join("cgroup.procs").exists()
                && std::fs::remove_dir(&path).is_err()
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(25));
            }
        }
    }
}

fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    std::fs::write(path, data).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

impl SavedState {
    /// Writes the bundle's state file atomically (a new file renamed over the old one), so that
    /// a shim killed while writing leaves the previous state, never half of one.
    fn save(&self) -> Result<()> {
        let data = serde_json::to_vec(self)
            .map_err(|e| Error::Internal(format!("encoding state: {e}")))?;
        let path = self.paths.state_file();
        let tmp = path.with_extension("json.new");
        write_file(&tmp, &data)?;
        std::fs::rename(&tmp, &path).map_err(|e| {
            Error::io(
                format!("renaming {} to {}", tmp.display(), path.display()),
                e,
            )
        })
    }
}

/// The container's init: the child of the monitor.
fn find_init(monitor_pid: i32) -> Option<i32> {
    host::children(monitor_pid).into_iter().next()
}

/// Waits (bounded) until a process is gone.
pub fn wait_gone(pid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while pid_alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// Start: runs the startContainer hooks, releases the init waiting on the exec FIFO, runs the
/// poststart hooks. A failing startContainer hook fails Start and kills the init.
pub fn start(paths: &Paths, id: &str, init_pid: i32) -> Result<()> {
    let plan = hooks::Plan::load(&paths.dir);
    if let Some(plan) = &plan {
        if let Err(why) = plan.run_kind(hooks::Kind::StartContainer, init_pid) {
            log::warn!("container {id}: {why}");
            let _ = kill(Pid::from_raw(init_pid), Signal::SIGKILL);
            return Err(Error::Internal(format!(
                "container {id}: {why}; the container was stopped"
            )));
        }
    }
    release_init(paths, id)?;
    if let Some(plan) = &plan {
        let _ = plan.run_kind(hooks::Kind::Poststart, init_pid);
    }
    Ok(())
}

/// Releases the init waiting on the exec FIFO.
fn release_init(paths: &Paths, id: &str) -> Result<()> {
    let fifo = paths.rundir.join(lxcri_init::EXEC_FIFO);
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .map_err(|e| Error::io(format!("container {id}: opening {}", fifo.display()), e))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut b = [0u8; 1];
    loop {
        if let Some(revents) = poll_in(&f, 20) {
            match f.read(&mut b) {
                Ok(1) => break,
                Ok(_) if revents & libc::POLLHUP != 0 => {
                    return Err(Error::FailedPrecondition(format!(
                        "container {id}: its init exited before Start"
                    )))
                }
                _ => {}
            }
        }
        if Instant::now() > deadline {
            return Err(Error::Internal(format!(
                "container {id}: its init did not take the start signal within 10 s"
            )));
        }
    }
    let _ = std::fs::remove_file(&fifo);
    Ok(())
}

/// Sends a signal to the container's init, or to every process of the container.
pub fn signal(init_pid: i32, sig: i32, all: bool) -> Result<()> {
    let sig = Signal::try_from(sig).map_err(|_| {
        Error::InvalidArgument(format!("signal {sig} is not a valid signal number"))
    })?;
    let pids = if all {
        host::cgroup_pids(init_pid)
    } else {
        vec![init_pid]
    };
    for pid in pids {
        match kill(Pid::from_raw(pid), sig) {
            Ok(()) | Err(nix::Error::ESRCH) => {}
            Err(e) => return Err(Error::Internal(format!("kill {sig} {pid}: {e}"))),
        }
    }
    Ok(())
}

/// Removes everything a container had on the host, best-effort and idempotent: processes,
/// rootfs, LXC directory, state file. Returns what could not be removed.
pub fn cleanup(
    paths: &Paths,
    init_pid: i32,
    monitor_pid: i32,
    rootfs: Option<&PreparedRootfs>,
) -> Vec<String> {
    let mut problems = Vec::new();
    // The poststop hooks run once everything is gone: read their plan before.
    let plan = hooks::Plan::load(&paths.dir);
    // Kill the init and let LXC's monitor tear the container down (cgroups included); the
    // monitor itself is killed only if it does not go by itself.
    // A state saved before the init was found (the shim died during Create): the init is the
    // monitor's child, if it got that far.
    let init_pid = if init_pid > 0 {
        init_pid
    } else {
        find_init(monitor_pid).unwrap_or(0)
    };
    let cgroups: Vec<PathBuf> = [init_pid, monitor_pid]
        .iter()
        .flat_map(|&p| host::cgroup_dirs(p))
        .collect();
    if pid_alive(init_pid) && host::children(monitor_pid).contains(&init_pid) {
        let _ = kill(Pid::from_raw(init_pid), Signal::SIGKILL);
    }
    if !wait_gone(monitor_pid, Duration::from_secs(3)) {
        let _ = kill(Pid::from_raw(monitor_pid), Signal::SIGKILL);
        if !wait_gone(monitor_pid, Duration::from_secs(1)) {
            problems.push(format!("LXC monitor {monitor_pid} did not exit"));
        }
    }
    // What LXC could not remove (its monitor was killed): empty cgroups.
    for dir in &cgroups {
        let _ = std::fs::remove_dir(dir);
    }
    remove_configured_cgroups(&paths.dir.join("config"));
    if let Some(r) = rootfs {
        if let Err(e) = layerfs::release(r) {
            problems.push(e.to_string());
        }
    }
    if let Err(e) = std::fs::remove_dir_all(&paths.dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            problems.push(format!("removing {}: {e}", paths.dir.display()));
        }
    }
    // The namespace's LXC path goes when its last container does.
    let _ = std::fs::remove_dir(&paths.lxcpath);
    let _ = std::fs::remove_file(paths.state_file());
    if let Some(plan) = plan {
        let _ = plan.run_kind(hooks::Kind::Poststop, init_pid);
    }
    problems
}

/// Cleans up after a container whose shim is gone (the `delete` subcommand).
pub fn cleanup_saved(bundle: &Path) -> Vec<String> {
    let Ok(data) = std::fs::read(bundle.join(STATE_FILE)) else {
        // Never created, or already cleaned: still make sure the rootfs is not left mounted.
        let rootfs = bundle.join("rootfs");
        if layerfs::is_mount_point(&rootfs) {
            if let Err(e) = layerfs::mount::unmount_all(&rootfs) {
                return vec![e.to_string()];
            }
        }
        return Vec::new();
    };
    match serde_json::from_slice::<SavedState>(&data) {
        Ok(s) => cleanup(&s.paths, s.init_pid, s.monitor_pid, s.rootfs.as_ref()),
        Err(e) => vec![format!("{}: {e}", bundle.join(STATE_FILE).display())],
    }
}

/// Where an exec's files live: the process spec the helper reads and the pid it writes.
pub fn exec_files(paths: &Paths, exec_id: &str) -> (PathBuf, PathBuf) {
    (
        paths.dir.join(format!("exec-{exec_id}.json")),
        paths.dir.join(format!("exec-{exec_id}.pid")),
    )
}

/// Starts an exec: the helper `lxcri-monitor exec` attaches to the running container with the
/// exec's stdio and applies its process spec. Returns the helper's pid, the exec's host pid and,
/// with a terminal, its console.
pub fn start_exec(
    cfg: &Config,
    paths: &Paths,
    id: &str,
    exec_id: &str,
    process: &lxcri_init::InitConfig,
    stdio: (&str, &str, &str),
    init_pid: Option<i32>,
) -> Result<(i32, i32, Option<Console>)> {
    // Resolve the program now, inside the container's root, so that a missing one fails Start
    // with runc's message instead of exiting 127 later.
    if let Some(init_pid) = init_pid {
        let root = PathBuf::from(format!("/proc/{init_pid}/root"));
        let cwd = if process.cwd.is_empty() {
            "/"
        } else {
            process.cwd.as_str()
        };
        if let Some(arg0) = process.args.first() {
            lxcri_init::lookup_path(&root, cwd, arg0, &process.env).map_err(|e| {
                Error::FailedPrecondition(format!("container {id}: exec {exec_id}: {e}"))
            })?;
        }
    }
    let (spec_file, pid_file) = exec_files(paths, exec_id);
    let data = serde_json::to_vec(process)
        .map_err(|e| Error::Internal(format!("encoding exec {exec_id}: {e}")))?;
    write_file(&spec_file, &data)?;
    let _ = std::fs::remove_file(&pid_file);
    let monitor_bin = cfg.monitor_path();
    let ns = paths
        .lxcpath
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (out, err, _logger) = open_outputs(stdio.1, stdio.2, id, &ns)?;
    let (stdin, console_sock) = if process.terminal {
        let (shim_end, exec_end) = console::socket_pair()?;
        (File::from(exec_end), Some(shim_end))
    } else {
        (open_stdio(stdio.0, false)?, None)
    };
    let child = helper_command(&monitor_bin, paths)
        .arg("exec")
        .arg(&paths.lxcpath)
        .arg(id)
        .arg(&spec_file)
        .arg(&pid_file)
        .stdin(stdin)
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| {
            Error::io(
                format!("starting the exec helper {}", monitor_bin.display()),
                e,
            )
        })?;
    let helper = child.id() as i32;
    drop(child); // the shim's reaper collects it
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(&pid_file) {
            if let Ok(pid) = text.trim().parse::<i32>() {
                let console = match console_sock {
                    Some(sock) => {
                        let what = format!("container {id}: exec {exec_id}");
                        let master = console::receive_master(
                            &sock,
                            Duration::from_secs(10),
                            || pid_alive(helper),
                            &what,
                        )
                        .inspect_err(|_| {
                            let _ = kill(Pid::from_raw(helper), Signal::SIGKILL);
                        })?;
                        Some(Console::start(master, stdio.0, stdio.1, &what)?)
                    }
                    None => None,
                };
                return Ok((helper, pid, console));
            }
        }
        if !pid_alive(helper) {
            return Err(Error::Internal(format!(
                "container {id}: exec {exec_id} could not attach to the container (see the exec's stderr)"
            )));
        }
        if Instant::now() > deadline {
            let _ = kill(Pid::from_raw(helper), Signal::SIGKILL);
            return Err(Error::Internal(format!(
                "container {id}: exec {exec_id} did not start within 10 s"
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The container's seccomp filter, from the init's config the shim wrote at Create.
pub fn init_seccomp(paths: &Paths) -> Option<lxcri_init::SeccompProgram> {
    let data = std::fs::read(paths.rundir.join(lxcri_init::INIT_JSON)).ok()?;
    serde_json::from_slice::<lxcri_init::InitConfig>(&data)
        .ok()?
        .seccomp
}

/// Removes an exec's files.
pub fn remove_exec_files(paths: &Paths, exec_id: &str) {
    let (a, b) = exec_files(paths, exec_id);
    let _ = std::fs::remove_file(a);
    let _ = std::fs::remove_file(b);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "web-1", "x.y_z", &"a".repeat(128)] {
            check_id(ok).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            ".hidden",
            "a b",
            &"a".repeat(129),
            "a\0b",
        ] {
            let e = check_id(bad).unwrap_err().to_string();
            assert!(e.contains("is not valid"), "{bad}: {e}");
        }
    }
}
