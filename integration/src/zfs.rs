//! A throw-away ZFS pool backed by a sparse file in a tempdir: on the kernel's OpenZFS when its
//! module is loaded (`/sys/module/zfs`, as on the users' hosts and in the VM lane, scripts/vm),
//! otherwise on zfs-fuse, which the harness starts (the dev and CI machines).

use crate::process::{self, run_with_limit};
use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// Serialises starting and stopping zfs-fuse between processes (tests of other crates too).
const LOCK_FILE: &str = "/run/lxcri-test-zfs-fuse.lock";
/// The pid file of a zfs-fuse started by the harness.
const PID_FILE: &str = "/run/lxcri-test-zfs-fuse.pid";
/// Size of the sparse pool file.
const POOL_BYTES: u64 = 1 << 30;
const ZFS_TIMEOUT: Duration = Duration::from_secs(60);

/// Pools alive in this process, and the zfs-fuse this process started (if it did).
struct Daemon {
    pools: usize,
    started: Option<i32>,
}

static DAEMON: Mutex<Daemon> = Mutex::new(Daemon {
    pools: 0,
    started: None,
});

/// A file-backed pool `lxcri-test-<random>` mounted under its tempdir. Without the kernel module,
/// zfs-fuse is started (with extended attributes on) when it is not running. Drop destroys the pool, removes its file and
/// stops zfs-fuse if this process started it and no pool is left on it.
pub struct ZfsPool {
    name: String,
    dir: Option<tempfile::TempDir>,
    mountpoint: PathBuf,
    file: PathBuf,
}

impl ZfsPool {
    /// Creates a fresh pool. Panics, saying what to do, when zfs-fuse cannot be started or the
    /// pool cannot be created.
    pub fn create() -> ZfsPool {
        let dir = tempfile::Builder::new()
            .prefix("lxcri-zfs-")
            .tempdir_in("/tmp")
            .unwrap_or_else(|e| panic!("ZfsPool: cannot create a tempdir in /tmp: {e}"));
        if kernel_zfs() {
            if !daemon_answers() {
                panic!("ZfsPool: the zfs kernel module is loaded but `zpool list` fails");
            }
        } else {
            let mut d = DAEMON.lock().unwrap_or_else(|e| e.into_inner());
            let _lock = FileLock::take();
            if !daemon_answers() {
                let pid = start_daemon();
                d.started = Some(pid);
            } else {
                warn_if_no_xattr();
            }
            d.pools += 1;
        }
        let name = format!("lxcri-test-{}", random_hex());
        let file = dir.path().join("pool.img");
        let mountpoint = dir.path().join("mnt");
        // The pool object exists before the pool: if creation panics, Drop still cleans up.
        let pool = ZfsPool {
            name,
            dir: Some(dir),
            mountpoint,
            file,
        };
        File::create(&pool.file)
            .and_then(|f| f.set_len(POOL_BYTES))
            .unwrap_or_else(|e| panic!("ZfsPool: cannot create {}: {e}", pool.file.display()));
        let mp = pool.mountpoint.to_string_lossy().into_owned();
        let file = pool.file.to_string_lossy().into_owned();
        pool.zpool_ok(&["create", "-m", &mp, &pool.name, &file]);
        pool
    }

    /// The file system type of its mounted datasets as /proc/self/mountinfo shows it: `zfs` on
    /// the kernel module, `fuse.zfs` on zfs-fuse.
    pub fn fs_type(&self) -> &'static str {
        if kernel_zfs() {
            "zfs"
        } else {
            "fuse.zfs"
        }
    }

    /// The pool's name, `lxcri-test-<random>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the pool's root dataset is mounted.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// The full name of dataset `rel` in this pool (`dataset("a/b")` = `<pool>/a/b`).
    pub fn dataset(&self, rel: &str) -> String {
        format!("{}/{}", self.name, rel.trim_matches('/'))
    }

    /// Runs `zfs ARGS`.
    pub fn zfs(&self, args: &[&str]) -> Output {
        run_with_limit(Command::new("zfs").args(args), None, ZFS_TIMEOUT)
    }

    /// Runs `zfs ARGS`, panics with its output when it fails; returns stdout.
    pub fn zfs_ok(&self, args: &[&str]) -> String {
        ok("zfs", args, self.zfs(args))
    }

    /// Runs `zpool ARGS`.
    pub fn zpool(&self, args: &[&str]) -> Output {
        run_with_limit(Command::new("zpool").args(args), None, ZFS_TIMEOUT)
    }

    /// Runs `zpool ARGS`, panics with its output when it fails; returns stdout.
    pub fn zpool_ok(&self, args: &[&str]) -> String {
        ok("zpool", args, self.zpool(args))
    }

    /// True while `zpool list` shows this pool.
    pub fn exists(&self) -> bool {
        pool_names().iter().any(|n| n == &self.name)
    }

    fn destroy(&self) -> Result<(), String> {
        if !self.exists() {
            return Ok(());
        }
        // zfs-fuse often says "busy" right after a user of a dataset went away: retry.
        let mut last = String::new();
        for attempt in 0..20u64 {
            let out = self.zpool(&["destroy", "-f", &self.name]);
            if out.status.success() || !self.exists() {
                return Ok(());
            }
            last = String::from_utf8_lossy(&out.stderr).trim().to_string();
            thread::sleep(Duration::from_millis(100 * (attempt + 1).min(5)));
        }
        Err(last)
    }
}

impl Drop for ZfsPool {
    fn drop(&mut self) {
        if let Err(e) = self.destroy() {
            eprintln!(
                "[harness] cannot destroy ZFS pool {}: {e}; run `zpool destroy -f {}`",
                self.name, self.name
            );
        }
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            for failure in process::unmount_below(&path) {
                eprintln!("[harness] cannot unmount {failure}");
            }
            if let Err(e) = dir.close() {
                eprintln!("[harness] cannot remove {}: {e}", path.display());
            }
        }
        if kernel_zfs() {
            return;
        }
        let mut d = DAEMON.lock().unwrap_or_else(|e| e.into_inner());
        d.pools = d.pools.saturating_sub(1);
        if d.pools == 0 {
            if let Some(pid) = d.started {
                let _lock = FileLock::take();
                // Another process may have made pools on "our" daemon meanwhile: leave it then.
                if pool_names().is_empty() {
                    stop_daemon(pid);
                    d.started = None;
                }
            }
        }
    }
}

fn ok(prog: &str, args: &[&str], out: Output) -> String {
    if !out.status.success() {
        panic!(
            "`{prog} {}` failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pool_names() -> Vec<String> {
    let out = run_with_limit(
        Command::new("zpool").args(["list", "-H", "-o", "name"]),
        None,
        ZFS_TIMEOUT,
    );
    if !out.status.success() {
        return Vec::new();
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// True when ZFS is the kernel's (the `zfs` module is loaded): no zfs-fuse is needed then.
pub fn kernel_zfs() -> bool {
    Path::new("/sys/module/zfs").exists()
}

/// True when ZFS (the kernel module or a zfs-fuse daemon) answers `zpool list`.
fn daemon_answers() -> bool {
    run_with_limit(
        Command::new("zpool").arg("list"),
        None,
        Duration::from_secs(10),
    )
    .status
    .success()
}

/// Starts zfs-fuse with extended attributes (file capabilities survive `cp -a` only then) and
/// waits until it answers. Returns its pid.
fn start_daemon() -> i32 {
    let _ = fs::remove_file(PID_FILE);
    let out = run_with_limit(
        process::close_inherited_fds(Command::new("zfs-fuse").args([
            "--enable-xattr",
            "--pidfile",
            PID_FILE,
        ])),
        None,
        Duration::from_secs(20),
    );
    if !out.status.success() {
        panic!(
            "ZfsPool: cannot start zfs-fuse ({}): {}; install it with scripts/setup.sh \
             (package zfs-fuse) and check that /dev/fuse exists",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while !daemon_answers() {
        if Instant::now() >= deadline {
            panic!("ZfsPool: zfs-fuse started but `zpool list` does not answer after 15 s");
        }
        thread::sleep(Duration::from_millis(100));
    }
    fs::read_to_string(PID_FILE)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .unwrap_or_else(|| panic!("ZfsPool: zfs-fuse runs but wrote no pid to {PID_FILE}"))
}

fn stop_daemon(pid: i32) {
    process::signal(pid, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    while process::alive_not_zombie(pid) {
        if Instant::now() >= deadline {
            eprintln!("[harness] zfs-fuse (pid {pid}) ignored SIGTERM for 10 s: killing it");
            process::signal(pid, libc::SIGKILL);
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let _ = fs::remove_file(PID_FILE);
}

/// zfs-fuse started by someone else may lack extended attributes: say so once.
fn warn_if_no_xattr() {
    let running = process::processes_mentioning("zfs-fuse");
    let with_xattr = running
        .iter()
        .any(|p| p.cmdline.contains("-x") || p.cmdline.contains("enable-xattr"));
    let rc_has_it = fs::read_to_string("/etc/zfs/zfsrc")
        .map(|s| {
            s.lines()
                .any(|l| l.trim_start().starts_with("enable-xattr"))
        })
        .unwrap_or(false);
    if !with_xattr && !rc_has_it {
        eprintln!(
            "[harness] zfs-fuse is running without extended attributes: file capabilities will \
             be lost; restart it with `zfs-fuse --enable-xattr`"
        );
    }
}

/// flock(2) on [`LOCK_FILE`], released on drop. Without the file the lock is skipped: starting
/// zfs-fuse then only races with other processes, which is what it did anyway.
struct FileLock(Option<File>);

impl FileLock {
    fn take() -> FileLock {
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(LOCK_FILE)
            .ok();
        if let Some(f) = &f {
            // SAFETY: the fd is valid while `f` lives.
            unsafe {
                libc::flock(f.as_raw_fd(), libc::LOCK_EX);
            }
        }
        FileLock(f)
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        if let Some(f) = &self.0 {
            // SAFETY: the fd is valid while `f` lives.
            unsafe {
                libc::flock(f.as_raw_fd(), libc::LOCK_UN);
            }
        }
    }
}

/// 8 random hex digits from /dev/urandom (time and pid when it cannot be read).
fn random_hex() -> String {
    let mut buf = [0u8; 4];
    let read =
        File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf));
    if read.is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        buf = (t ^ std::process::id()).to_le_bytes();
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
