//! A private containerd per test: its own config, root, state and socket in a short tempdir,
//! driven with the version's own `ctr`.

use crate::image;
use crate::process::{self, run_with_limit};
use crate::shim_dir;
use std::fmt;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The containerd namespace every harness `ctr` call uses.
pub const NAMESPACE: &str = "lxcri-test";

/// How long `start` waits for `ctr version` to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long Drop waits after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Time limit of one `ctr` call (override: env `LXCRI_TEST_CTR_TIMEOUT` in seconds).
const CTR_TIMEOUT: Duration = Duration::from_secs(120);
/// Time limit of each cleanup `ctr` call in Drop.
const CLEANUP_CTR_TIMEOUT: Duration = Duration::from_secs(10);

/// The containerd releases every integration test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerdVersion {
    /// 1.6.20, Debian 12's own package (`/usr/bin`).
    V1_6,
    /// 1.7.24, Debian 13's package, unpacked by `scripts/setup.sh` into the test cache.
    V1_7,
    /// 2.1.9, Debian unstable's package, unpacked by `scripts/setup.sh` into the test cache.
    V2_1,
}

impl ContainerdVersion {
    /// The three versions, oldest first.
    pub fn all() -> [ContainerdVersion; 3] {
        [Self::V1_6, Self::V1_7, Self::V2_1]
    }

    /// The upstream version this entry stands for (`ctr version` prints it, with a suffix).
    pub fn upstream(self) -> &'static str {
        match self {
            Self::V1_6 => "1.6.20",
            Self::V1_7 => "1.7.24",
            Self::V2_1 => "2.1.9",
        }
    }

    /// The directory holding this version's `containerd`, `ctr` and `containerd-shim-runc-v2`.
    /// 1.6 is the system's `/usr/bin`; the others live under `$LXCRI_TEST_CACHE` (default
    /// `/var/cache/lxcri-test`), where `scripts/setup.sh` puts them.
    pub fn bin_dir(self) -> PathBuf {
        match self {
            Self::V1_6 => PathBuf::from("/usr/bin"),
            Self::V1_7 | Self::V2_1 => test_cache()
                .join(format!("containerd-{}", self.upstream()))
                .join("usr/bin"),
        }
    }

    /// This version's `containerd` binary.
    pub fn containerd_bin(self) -> PathBuf {
        self.bin_dir().join("containerd")
    }

    /// This version's `ctr` binary.
    pub fn ctr_bin(self) -> PathBuf {
        self.bin_dir().join("ctr")
    }

    /// The config file layout this version is given: `version = 2` for 1.x, `version = 3` (the
    /// CRI plugin split into `io.containerd.cri.v1.runtime` and `.images`) for 2.x, each in its
    /// own native form (docs/kubernetes.md shows both).
    pub fn config_version(self) -> u32 {
        match self {
            Self::V1_6 | Self::V1_7 => 2,
            Self::V2_1 => 3,
        }
    }

    /// True when both binaries are present.
    pub fn is_installed(self) -> bool {
        self.containerd_bin().is_file() && self.ctr_bin().is_file()
    }
}

impl fmt::Display for ContainerdVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "containerd {}", self.upstream())
    }
}

/// `$LXCRI_TEST_CACHE`, default `/var/cache/lxcri-test` (the same default as scripts/lib.sh).
pub fn test_cache() -> PathBuf {
    std::env::var_os("LXCRI_TEST_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/lxcri-test"))
}

/// What to change from the default private configuration.
#[derive(Debug, Clone, Default)]
pub struct ContainerdOptions {
    /// Keep the CRI plugin (off by default: it is slow to start and not needed by `ctr`).
    pub cri: bool,
    /// With `cri`: the CRI plugin's tables in the version's layout
    /// ([`ContainerdVersion::config_version`]; see [`crate::CriNode`]). Empty: only
    /// `restrict_oom_score_adj = true`, which these machines need (a non-empty one must set it).
    pub cri_config: String,
    /// Appended verbatim to the generated config.toml (plugin sections and the like).
    pub extra_config: String,
    /// containerd's `--log-level` (default `info`, or env `LXCRI_TEST_CONTAINERD_LOG_LEVEL`).
    pub log_level: Option<String>,
    /// Where containerd finds the lxcri shim (first in its PATH); default [`shim_dir`].
    pub shim_dir: Option<PathBuf>,
    /// Run containerd, and so its shims and containers, in a PID namespace (and mount
    /// namespace, for its /proc) of its own whose `pid_max` is this: the kernel keeps one per
    /// PID namespace, so pids there wrap around after a few hundred processes. Containerd's
    /// directory is made a shared mount first, so that mounts made there from the host's
    /// namespace (zfs-fuse mounting a rootfs clone) reach containerd's. Stopping containerd
    /// then ends every process of the namespace.
    pub pid_max: Option<u32>,
    /// A ZFS dataset (`pool/name`, not existing yet) for containerd's own zfs snapshotter: it is
    /// created mounted on the snapshotter's root directory before containerd starts, which is
    /// what the plugin needs to load (kernel OpenZFS only: it skips itself on zfs-fuse).
    pub zfs_snapshotter: Option<String>,
}

/// A private containerd. Dropping it removes the containers it still has, stops it (SIGTERM,
/// SIGKILL after 5 s), kills the shims it started, unmounts what is left below its directory and
/// removes the directory: also when the test panics.
pub struct Containerd {
    version: ContainerdVersion,
    options: ContainerdOptions,
    dir: Option<tempfile::TempDir>,
    child: Option<Child>,
    socket: PathBuf,
    root: PathBuf,
    state: PathBuf,
    config: PathBuf,
    log: PathBuf,
}

impl Containerd {
    /// Starts containerd `v` with the default private configuration and waits until `ctr
    /// version` answers. Panics (with containerd's log) when it does not within 20 s.
    pub fn start(v: ContainerdVersion) -> Containerd {
        Self::start_with(v, ContainerdOptions::default())
    }

    /// [`Containerd::start`] with options.
    pub fn start_with(v: ContainerdVersion, options: ContainerdOptions) -> Containerd {
        if !v.is_installed() {
            panic!(
                "{v}: {} or {} is missing: run scripts/setup.sh (it fetches containerd 1.7 and \
                 2.1 into {})",
                v.containerd_bin().display(),
                v.ctr_bin().display(),
                test_cache().display()
            );
        }
        // /tmp and a short prefix: the socket path must stay far below 108 bytes, and the shim
        // derives its own socket names from it.
        let dir = tempfile::Builder::new()
            .prefix("lxcri-")
            .rand_bytes(6)
            .tempdir_in("/tmp")
            .unwrap_or_else(|e| panic!("{v}: cannot create a tempdir in /tmp: {e}"));
        let base = dir.path().to_path_buf();
        let mut c = Containerd {
            version: v,
            options,
            socket: base.join("c.sock"),
            root: base.join("root"),
            state: base.join("state"),
            config: base.join("config.toml"),
            log: base.join("containerd.log"),
            dir: Some(dir),
            child: None,
        };
        fs::write(&c.config, c.config_toml())
            .unwrap_or_else(|e| panic!("{v}: cannot write {}: {e}", c.config.display()));
        // From here on Drop cleans up whatever happens.
        if c.options.pid_max.is_some() {
            process::make_shared_mount(&base).unwrap_or_else(|e| {
                panic!("{v}: cannot make {} a shared mount: {e}", base.display())
            });
        }
        if let Some(ds) = c.options.zfs_snapshotter.clone() {
            let mountpoint = c.root.join("io.containerd.snapshotter.v1.zfs");
            let mp = format!("mountpoint={}", mountpoint.display());
            let out = process::run_with_limit(
                Command::new("zfs").args(["create", "-p", "-o", &mp, &ds]),
                None,
                Duration::from_secs(60),
            );
            if !out.status.success() {
                panic!(
                    "{v}: `zfs create -o {mp} {ds}` for the zfs snapshotter failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
        c.spawn();
        c.wait_ready();
        c
    }

    fn config_toml(&self) -> String {
        let base = self.dir().to_string_lossy().into_owned();
        let mut t = format!(
            "version = {}\n\
             root = \"{base}/root\"\n\
             state = \"{base}/state\"\n",
            self.version.config_version()
        );
        if !self.options.cri {
            t.push_str("disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n");
        }
        t.push_str(&format!(
            "\n[grpc]\n  address = \"{base}/c.sock\"\n\
             \n[ttrpc]\n  address = \"{base}/c.sock.ttrpc\"\n\
             \n[plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{base}/opt\"\n"
        ));
        if self.options.cri {
            t.push('\n');
            if self.options.cri_config.is_empty() {
                let table = match self.version.config_version() {
                    2 => "io.containerd.grpc.v1.cri",
                    _ => "io.containerd.cri.v1.runtime",
                };
                t.push_str(&format!(
                    "[plugins.\"{table}\"]\n  restrict_oom_score_adj = true\n"
                ));
            } else {
                t.push_str(&self.options.cri_config);
            }
            t.push('\n');
        }
        if !self.options.extra_config.is_empty() {
            t.push('\n');
            t.push_str(&self.options.extra_config);
            t.push('\n');
        }
        t
    }

    fn spawn(&mut self) {
        let v = self.version;
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("{v}: cannot open {}: {e}", self.log.display()));
        let log2 = log
            .try_clone()
            .unwrap_or_else(|e| panic!("{v}: cannot dup the log file: {e}"));
        let level = self
            .options
            .log_level
            .clone()
            .or_else(|| std::env::var("LXCRI_TEST_CONTAINERD_LOG_LEVEL").ok())
            .unwrap_or_else(|| "info".to_string());
        // The lxcri shim first, then this version's own runc shim, then the system PATH (runc).
        let system_path = std::env::var("PATH").unwrap_or_else(|_| {
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
        });
        let path = format!(
            "{}:{}:{system_path}",
            self.options
                .shim_dir
                .clone()
                .unwrap_or_else(shim_dir)
                .display(),
            v.bin_dir().display()
        );
        let mut cmd = match self.options.pid_max {
            None => Command::new(v.containerd_bin()),
            Some(max) => {
                // unshare stays containerd's parent (it ignores SIGTERM itself: the daemon
                // is signalled directly, see `stop_daemon`).
                let mut cmd = Command::new("unshare");
                // Shared mounts stay peers across the namespaces (mounts and unmounts of the
                // rootfs clones go both ways); private ones (/ here, so the new /proc) stay put.
                cmd.args([
                    "--pid",
                    "--fork",
                    "--mount-proc",
                    "--propagation",
                    "unchanged",
                ])
                .arg("--kill-child=SIGTERM")
                .args(["--", "sh", "-c"])
                .arg(format!(
                    "echo {max} > /proc/sys/kernel/pid_max && exec \"$0\" \"$@\""
                ))
                .arg(v.containerd_bin());
                cmd
            }
        };
        let child = crate::process::close_inherited_fds(&mut cmd)
            .arg("--config")
            .arg(&self.config)
            .arg("--log-level")
            .arg(level)
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .unwrap_or_else(|e| panic!("{v}: cannot start {}: {e}", v.containerd_bin().display()));
        self.child = Some(child);
    }

    fn wait_ready(&mut self) {
        let v = self.version;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "{v} exited before answering ({status}); its log:\n{}",
                        self.log()
                    );
                }
            }
            if Path::new(&self.socket).exists() {
                let out = self.ctr_limited(&["version"], None, Duration::from_secs(5));
                if out.status.success() {
                    return;
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "{v} did not answer `ctr version` within {READY_TIMEOUT:?} on {}; its \
                     log:\n{}",
                    self.socket.display(),
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Restarts containerd with the same configuration, root and state (containers and shims
    /// keep running), and waits until it answers again.
    pub fn restart(&mut self) {
        self.stop_daemon();
        self.spawn();
        self.wait_ready();
    }

    /// Kills containerd with SIGKILL (a crash: no clean shutdown), reaps it, then starts it
    /// again on the same configuration, root and state like [`Containerd::restart`].
    pub fn crash_and_restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            process::signal(child.id() as i32, libc::SIGKILL);
            let _ = child.wait();
        }
        self.spawn();
        self.wait_ready();
    }

    /// `ctr -a SOCKET -n lxcri-test ARGS` with this version's own `ctr`, stdin from /dev/null.
    pub fn ctr(&self, args: &[&str]) -> Output {
        self.ctr_limited(args, None, ctr_timeout())
    }

    /// Like [`Containerd::ctr`], but panics with the command, its status, stdout and stderr (and
    /// the end of containerd's log) when it fails. Returns stdout.
    pub fn ctr_ok(&self, args: &[&str]) -> String {
        self.stdout_of_success(&format!("ctr {}", args.join(" ")), self.ctr(args))
    }

    /// The stdout of `out`, of the ctr call shown as `shown`; panics with its status, stdout and
    /// stderr (and the end of containerd's log) when it failed.
    fn stdout_of_success(&self, shown: &str, out: Output) -> String {
        if !out.status.success() {
            panic!(
                "{}: `{shown}` failed ({})\n--- stdout:\n{}\n--- stderr:\n{}\n--- containerd log \
                 (end):\n{}",
                self.version,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                tail(&self.log(), 40)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// [`Containerd::ctr`] with `stdin` piped to ctr. Note: `ctr run` (1.6 to 2.1) does not pass
    /// the end of its stdin on to the container: a process that reads until EOF (`cat`) never
    /// ends and the call runs into its time limit. Read a known amount (`read line`, `head -n1`).
    pub fn ctr_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        self.ctr_limited(args, Some(stdin), ctr_timeout())
    }

    /// `ctr -a SOCKET -n NS ARGS` in another namespace than the harness's (the CRI plugin's
    /// is `k8s.io`); panics like [`Containerd::ctr_ok`] when it fails. Returns stdout.
    pub fn ctr_ns_ok(&self, ns: &str, args: &[&str]) -> String {
        let mut cmd = Command::new(self.version.ctr_bin());
        cmd.arg("-a").arg(&self.socket).arg("-n").arg(ns).args(args);
        let out = run_with_limit(&mut cmd, None, ctr_timeout());
        self.stdout_of_success(&format!("ctr -n {ns} {}", args.join(" ")), out)
    }

    fn ctr_limited(&self, args: &[&str], stdin: Option<&[u8]>, limit: Duration) -> Output {
        run_with_limit(&mut self.ctr_command(args), stdin, limit)
    }

    /// The `ctr -a SOCKET -n lxcri-test ARGS` command, not started: for a test that runs it its
    /// own way (on a terminal: [`crate::PtySession`]).
    pub fn ctr_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.version.ctr_bin());
        cmd.arg("-a")
            .arg(&self.socket)
            .arg("-n")
            .arg(NAMESPACE)
            .args(args);
        cmd
    }

    /// Imports the harness's busybox image (built once per test process with
    /// `image_core::builder`) and returns its reference, `local/busybox:latest`.
    pub fn import_busybox(&self) -> String {
        let bytes = image::busybox_archive();
        let tar = self.dir().join("busybox.tar");
        fs::write(&tar, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", tar.display()));
        self.import_archive(&tar, image::BUSYBOX_REF);
        let _ = fs::remove_file(&tar);
        image::BUSYBOX_REF.to_string()
    }

    /// Imports an OCI archive (e.g. from `ImageBuilder::write_archive`) and checks that
    /// `reference` is then listed. Panics with ctr's output otherwise.
    pub fn import_archive(&self, tar: &Path, reference: &str) {
        let path = tar.to_string_lossy();
        self.ctr_ok(&["images", "import", &path]);
        let listed = self.ctr_ok(&["images", "ls", "-q"]);
        if !listed.lines().any(|l| l.trim() == reference) {
            panic!(
                "{}: imported {} but no image {reference} is listed; `ctr images ls -q` \
                 says:\n{listed}",
                self.version,
                tar.display()
            );
        }
    }

    /// containerd's own log (stdout and stderr) so far.
    pub fn log(&self) -> String {
        fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("(cannot read {}: {e})", self.log.display()))
    }

    /// The gRPC socket (`ctr -a`).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The generated config.toml.
    pub fn config_file(&self) -> &Path {
        &self.config
    }

    /// containerd's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// containerd's state directory.
    pub fn state(&self) -> &Path {
        &self.state
    }

    /// The tempdir holding config, root, state, sockets and log.
    pub fn dir(&self) -> &Path {
        match &self.dir {
            Some(d) => d.path(),
            // Only None inside Drop.
            None => Path::new("/nonexistent"),
        }
    }

    /// The version running.
    pub fn version(&self) -> ContainerdVersion {
        self.version
    }

    /// containerd's pid (0 when it is not running).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// The pid and status (`CREATED`, `RUNNING`, `PAUSED`, `STOPPED`) `ctr task ls` shows for
    /// task `id`; None when it lists no such task.
    pub fn task(&self, id: &str) -> Option<(u32, String)> {
        let out = self.ctr_ok(&["task", "ls"]);
        out.lines().skip(1).find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&id)).then(|| (f[1].parse().unwrap_or(0), f[2].to_string()))
        })
    }

    /// Waits up to 10 s for `ctr task ls` to show task `id` as `status`; returns its pid.
    pub fn wait_task(&self, id: &str, status: &str) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let task = self.task(id);
            match task {
                Some((pid, s)) if s == status => return pid,
                _ => assert!(
                    Instant::now() < deadline,
                    "task {id} never became {status}: {task:?}"
                ),
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// `ctr task kill -s SIGKILL`, wait for STOPPED, `ctr task delete`, `ctr container rm`: the
    /// way a user ends a detached container; each step must succeed.
    pub fn kill_delete_rm(&self, id: &str) {
        self.ctr_ok(&["task", "kill", "-s", "SIGKILL", id]);
        self.wait_task(id, "STOPPED");
        self.ctr_ok(&["task", "delete", id]);
        self.ctr_ok(&["container", "rm", id]);
    }

    /// `ctr task delete -f ID` until containerd has no task `id` any more (after its shim was
    /// lost: containerd cleans up through the shim's `delete` subcommand); panics after `limit`.
    pub fn force_delete_task(&self, id: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let o = self.ctr(&["task", "delete", "-f", id]);
            let e = String::from_utf8_lossy(&o.stderr);
            if o.status.success() || e.contains("not found") || e.contains("no running task") {
                return;
            }
            assert!(Instant::now() < deadline, "task never went away: {e}");
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills every process of container `id`'s task and deletes the task and the container,
    /// best-effort (what a test's teardown needs, also after a failed assertion).
    pub fn remove_container(&self, id: &str) {
        self.remove_task(id);
        self.ctr_limited(&["containers", "delete", id], None, CLEANUP_CTR_TIMEOUT);
    }

    fn remove_task(&self, id: &str) {
        self.ctr_limited(&["tasks", "resume", id], None, CLEANUP_CTR_TIMEOUT);
        self.ctr_limited(
            &["tasks", "kill", "-a", "-s", "SIGKILL", id],
            None,
            CLEANUP_CTR_TIMEOUT,
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let out = self.ctr_limited(&["tasks", "delete", "-f", id], None, CLEANUP_CTR_TIMEOUT);
            if out.status.success() || Instant::now() >= deadline {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn remove_containers(&self) {
        let list = |what: &str| -> Vec<String> {
            let out = self.ctr_limited(&[what, "ls", "-q"], None, CLEANUP_CTR_TIMEOUT);
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()
        };
        for id in list("tasks") {
            self.remove_task(&id);
        }
        for id in list("containers") {
            self.ctr_limited(&["containers", "delete", &id], None, CLEANUP_CTR_TIMEOUT);
        }
    }

    /// SIGTERM, wait up to 5 s, SIGKILL; reaps the process.
    fn stop_daemon(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(None) = child.try_wait() {
                // In a PID namespace of its own, containerd is unshare's child.
                let pid = child.id();
                let daemon = match self.options.pid_max {
                    None => vec![pid as i32],
                    Some(_) => fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                        .unwrap_or_default()
                        .split_whitespace()
                        .filter_map(|p| p.parse().ok())
                        .collect(),
                };
                for p in daemon {
                    process::signal(p, libc::SIGTERM);
                }
                let (_, killed) = process::wait_with_limit(&mut child, STOP_TIMEOUT);
                if killed {
                    eprintln!(
                        "[harness] {} (pid {}) ignored SIGTERM for {STOP_TIMEOUT:?}: killed",
                        self.version,
                        child.id()
                    );
                }
            }
        }
    }
}

impl Containerd {
    /// What containerd does at its next start for a task whose shim is gone: runs the lxcri
    /// shim's `delete` subcommand in each bundle that still has lxcri's state file (a test that
    /// failed half-way, every namespace, CRI pods included), so that no LXC directory, monitor
    /// or ZFS clone outlives the test.
    fn delete_leftover_bundles(&self) {
        let tasks = self.state.join("io.containerd.runtime.v2.task");
        let shim = self
            .options
            .shim_dir
            .clone()
            .unwrap_or_else(shim_dir)
            .join("containerd-shim-lxcri-v2");
        let ttrpc = format!("{}.ttrpc", self.socket.display());
        let ttrpc = ttrpc.as_str();
        for ns in fs::read_dir(&tasks).into_iter().flatten().flatten() {
            for bundle in fs::read_dir(ns.path()).into_iter().flatten().flatten() {
                let bundle = bundle.path();
                if !bundle.join("lxcri-state.json").exists() {
                    continue;
                }
                let id = bundle
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                let out = process::run_with_limit(
                    Command::new(&shim)
                        .current_dir(&bundle)
                        .arg("-namespace")
                        .arg(ns.file_name())
                        .arg("-id")
                        .arg(&id)
                        .arg("-address")
                        .arg(&self.socket)
                        .arg("delete")
                        .env("TTRPC_ADDRESS", ttrpc)
                        .env("GRPC_ADDRESS", &self.socket)
                        .env("NAMESPACE", ns.file_name()),
                    None,
                    Duration::from_secs(30),
                );
                eprintln!(
                    "[harness] ran the shim's delete for leftover task {id}: {} {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let running = self
            .child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)));
        if running {
            self.remove_containers();
        }
        self.stop_daemon();
        // Shims are started with `-address <our socket>`: none may outlive the test.
        let sock = self.socket.to_string_lossy().into_owned();
        for p in process::kill_processes_mentioning(&sock) {
            eprintln!("[harness] killed leftover process {}: {}", p.pid, p.cmdline);
        }
        self.delete_leftover_bundles();
        let Some(dir) = self.dir.take() else {
            return;
        };
        let path = dir.path().to_path_buf();
        for failure in process::unmount_below(&path) {
            eprintln!("[harness] cannot unmount {failure}");
        }
        // A lazily unmounted fs may keep a file busy for a moment: retry briefly.
        let last = process::retry_removal(
            10,
            |attempt| Duration::from_millis(50 * (u64::from(attempt) + 1)),
            || fs::remove_dir_all(&path),
        );
        // TempDir's own drop would retry once more and stay silent: keep it from doing so.
        let _ = dir.keep();
        if let Some(e) = last {
            eprintln!(
                "[harness] cannot remove {}: {e}; remove it by hand (umount -R, rm -rf)",
                path.display()
            );
        }
    }
}

fn ctr_timeout() -> Duration {
    std::env::var("LXCRI_TEST_CTR_TIMEOUT")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(CTR_TIMEOUT)
}

/// The last `n` lines of `s`.
fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bin_dirs_follow_the_cache_layout() {
        assert_eq!(ContainerdVersion::V1_6.bin_dir(), PathBuf::from("/usr/bin"));
        let d17 = ContainerdVersion::V1_7.bin_dir();
        assert!(
            d17.ends_with("containerd-1.7.24/usr/bin"),
            "{}",
            d17.display()
        );
        let d21 = ContainerdVersion::V2_1.bin_dir();
        assert!(
            d21.ends_with("containerd-2.1.9/usr/bin"),
            "{}",
            d21.display()
        );
        assert_eq!(ContainerdVersion::all().len(), 3);
        assert_eq!(ContainerdVersion::V2_1.to_string(), "containerd 2.1.9");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
        assert_eq!(tail("", 5), "");
    }
}
