//! What the end-to-end test files share: one test per containerd version for each scenario, the
//! standard scenario set-up, and small assertions.

use crate::process::{processes_mentioning, signal};
use crate::BUSYBOX_REF;
use crate::{require_root_or_skip, unique_id, wait_no_leaks, Containerd, ContainerdVersion};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

/// The runtime name of the lxcri shim, for `ctr run --runtime`.
pub const LXCRI_RUNTIME: &str = "io.containerd.lxcri.v2";

/// `per_containerd_version!(a, b)` makes `v1_6::a`, `v1_7::a`, `v2_1::a`, ... tests, each calling
/// `run(ContainerdVersion::V1_6, a)` with the `run` in scope of the test file (usually
/// [`run_with_busybox`]).
#[macro_export]
macro_rules! per_containerd_version {
    ($($name:ident),* $(,)?) => {
        mod v1_6 { $( #[test] fn $name() { super::run($crate::ContainerdVersion::V1_6, super::$name) } )* }
        mod v1_7 { $( #[test] fn $name() { super::run($crate::ContainerdVersion::V1_7, super::$name) } )* }
        mod v2_1 { $( #[test] fn $name() { super::run($crate::ContainerdVersion::V2_1, super::$name) } )* }
    };
}

/// The usual scenario set-up: (as root) a private containerd `v` with the busybox image imported.
pub fn run_with_busybox(v: ContainerdVersion, scenario: fn(&Containerd)) {
    if !require_root_or_skip() {
        return;
    }
    let cd = Containerd::start(v);
    cd.import_busybox();
    scenario(&cd);
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Panics, listing them, if container `id` left anything behind after 5 s.
pub fn assert_clean(id: &str) {
    let left = wait_no_leaks(id, Duration::from_secs(5));
    assert!(
        left.is_empty(),
        "container {id} left things behind:\n{}",
        left.join("\n")
    );
}

/// Panics unless `o` (of a `ctr` call) exited with `code`, showing its stdout and stderr.
pub fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout: {} stderr: {}",
        stdout(o),
        stderr(o)
    );
}

/// Polls `done` every 20 ms until it is true; panics naming `what` after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `ctr run --rm --runtime io.containerd.lxcri.v2 FLAGS local/busybox:latest ID CMD`: ctr's
/// output once the container has ended and is removed.
pub fn ctr_run_rm(cd: &Containerd, flags: &[&str], id: &str, cmd: &[&str]) -> Output {
    let mut args = vec!["run", "--rm", "--runtime", LXCRI_RUNTIME];
    args.extend(flags);
    args.extend([BUSYBOX_REF, id]);
    args.extend(cmd);
    cd.ctr(&args)
}

/// `ctr run -d --runtime io.containerd.lxcri.v2 FLAGS local/busybox:latest ID CMD`, which must
/// succeed.
pub fn ctr_run_d(cd: &Containerd, flags: &[&str], id: &str, cmd: &[&str]) {
    let mut args = vec!["run", "-d", "--runtime", LXCRI_RUNTIME];
    args.extend(flags);
    args.extend([BUSYBOX_REF, id]);
    args.extend(cmd);
    cd.ctr_ok(&args);
}

/// A busybox container running `sleep 300` (started with [`ctr_run_d`]), removed when dropped,
/// also when the scenario panics; then, unless panicking, checked to have left nothing.
pub struct Running<'a> {
    pub cd: &'a Containerd,
    pub id: String,
}

impl<'a> Running<'a> {
    /// Starts a container with a new id beginning with `prefix`, with `ctr run` flags `flags`.
    pub fn start(cd: &'a Containerd, prefix: &str, flags: &[&str]) -> Running<'a> {
        Running::start_cmd(cd, prefix, flags, &["sleep", "300"])
    }

    /// [`Running::start`] with the command `cmd` instead of `sleep 300`.
    pub fn start_cmd(cd: &'a Containerd, prefix: &str, flags: &[&str], cmd: &[&str]) -> Self {
        let id = unique_id(prefix);
        ctr_run_d(cd, flags, &id, cmd);
        Running { cd, id }
    }

    /// Removes container `id` (created by the caller) when dropped, as for a started one.
    pub fn remove_on_drop(cd: &'a Containerd, id: &str) -> Running<'a> {
        Running {
            cd,
            id: id.to_string(),
        }
    }

    /// `ctr task exec --exec-id EXEC_ID FLAGS ID CMD`.
    pub fn exec(&self, exec_id: &str, flags: &[&str], cmd: &[&str]) -> Output {
        let mut args = vec!["task", "exec", "--exec-id", exec_id];
        args.extend(flags);
        args.push(&self.id);
        args.extend(cmd);
        self.cd.ctr(&args)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.cd.remove_container(&self.id);
        if !std::thread::panicking() {
            assert_clean(&self.id);
        }
    }
}

/// SIGKILLs the one shim process serving container `id` (as if it crashed).
pub fn kill_shim_of(id: &str) {
    let shims: Vec<_> = processes_mentioning(id)
        .into_iter()
        .filter(|p| {
            p.cmdline.contains("containerd-shim-lxcri-v2") && !p.cmdline.contains("__lxcri_monitor")
        })
        .collect();
    assert_eq!(shims.len(), 1, "{shims:?}");
    signal(shims[0].pid, libc::SIGKILL);
}

/// `ctr events` in the background (every namespace), as a user watches them in another terminal;
/// stopped on drop.
pub struct Events(Option<Child>);

impl Events {
    /// Starts `ctr events` and gives it 300 ms to subscribe.
    pub fn watch(cd: &Containerd) -> Events {
        let child = std::process::Command::new(cd.version().ctr_bin())
            .arg("-a")
            .arg(cd.socket())
            .arg("events")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run ctr events: {e}"));
        std::thread::sleep(Duration::from_millis(300));
        Events(Some(child))
    }

    /// Gives the last events 500 ms to arrive, stops `ctr events` and returns what it printed.
    pub fn stop(mut self) -> String {
        std::thread::sleep(Duration::from_millis(500));
        let mut child = self.0.take().expect("ctr events runs");
        let _ = child.kill();
        stdout(&child.wait_with_output().expect("ctr events ends"))
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
