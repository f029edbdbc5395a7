//! Test harness: a private containerd, images built locally, `ctr` sessions, a ZFS pool, and a
//! check for what a container left behind. Tests read like a user's session:
//!
//! ```no_run
//! use integration::*;
//!
//! if !require_root_or_skip() {
//!     return;
//! }
//! for v in ContainerdVersion::all() {
//!     let c = Containerd::start(v);
//!     let image = c.import_busybox();
//!     let id = unique_id("hello");
//!     let out = c.ctr(&["run", "--rm", "--runtime", "io.containerd.lxcri.v2", &image, &id,
//!                       "/bin/sh", "-c", "echo hi"]);
//!     assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
//!     drop(c);
//!     assert!(leaks(&id).is_empty());
//! }
//! ```
//!
//! Environment: `LXCRI_BIN_DIR` (where `containerd-shim-lxcri-v2` and `lxcri-init` are; default
//! `<workspace>/target/release`, see `scripts/build.sh`), `LXCRI_TEST_CACHE` (where
//! `scripts/setup.sh` unpacked containerd 1.7 and 2.1; default `/var/cache/lxcri-test`),
//! `LXCRI_TEST_CTR_TIMEOUT` (seconds one `ctr` call may take; default 120),
//! `LXCRI_TEST_CONTAINERD_LOG_LEVEL` (default `info`), `CI` (`true`: skipping is a failure).

mod cni;
mod containerd;
mod cri;
mod image;
mod leaks;
pub mod process;
mod pty;
mod scenario;
pub mod stream;
mod zfs;

pub use cni::CniNetwork;
pub use containerd::{test_cache, Containerd, ContainerdOptions, ContainerdVersion, NAMESPACE};
pub use cri::{
    lxcri_shims, parse_cri_log, pod_cgroup_dir, Cri, CriNode, PodCgroup, CRI_BUSYBOX,
    CRI_NAMESPACE, LXCRI_HANDLER, NODE_LXCRI_CONFIG, PAUSE_IMAGE, RUNC_HANDLER,
};
pub use image::{busybox_archive, deep_image_archive, BUSYBOX_REF, DEEP_IMAGE_REF};
pub use leaks::{leaks, remove_leftovers, wait_no_leaks};
pub use pty::PtySession;
pub use scenario::{
    assert_clean, assert_exit, ctr_run_d, ctr_run_rm, kill_shim_of, run_with_busybox, stderr,
    stdout, wait_until, Events, Running, LXCRI_RUNTIME,
};
pub use stream::{StreamOutput, StreamSession, V4_PROTOCOL};
pub use zfs::{kernel_zfs, ZfsPool};

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

/// The directory holding `containerd-shim-lxcri-v2` and `lxcri-init`: env `LXCRI_BIN_DIR`, else
/// `$CARGO_TARGET_DIR/release` when that is set, else `<workspace>/target/release`.
pub fn shim_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("LXCRI_BIN_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(t).join("release");
    }
    workspace_root().join("target").join("release")
}

/// True on a host with cgroup v2 alone (`/sys/fs/cgroup` is the cgroup2 root, as on the users'
/// hosts and in the VM lane, scripts/vm); false on a v1 or hybrid host like the dev machines.
pub fn cgroup_v2_only() -> bool {
    std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// True when systemd is PID 1 (only then is the systemd cgroup driver meaningful).
pub fn systemd_is_init() -> bool {
    std::path::Path::new("/run/systemd/system").is_dir()
        && std::fs::read_to_string("/proc/1/comm").is_ok_and(|c| c.trim() == "systemd")
}

/// The workspace root (the directory above `integration/`).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// True when running as root. Otherwise prints why the test is skipped and returns false, or,
/// under `CI=true`, panics: CI must not pass by skipping.
pub fn require_root_or_skip() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    let msg = "this test needs root (it starts containerd, containers and zfs-fuse): run it as \
               root, e.g. `sudo -E cargo test -p integration`";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg} (CI=true: not skipping)");
    }
    eprintln!("SKIPPED: {msg}");
    false
}

/// A container id unique in this test run and unlikely to repeat across runs:
/// `<prefix>-<pid hex><time hex>-<counter>`, using only `[a-z0-9-]` after the prefix.
pub fn unique_id(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    format!("{prefix}-{:x}{:05x}-{n}", std::process::id(), t & 0xf_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_ids_differ_and_keep_the_prefix() {
        let ids: Vec<String> = (0..100).map(|_| unique_id("t")).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len());
        for id in &ids {
            assert!(id.starts_with("t-"), "{id}");
            assert!(
                id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "{id}"
            );
        }
    }

    #[test]
    fn shim_dir_defaults_to_the_release_dir() {
        if std::env::var_os("LXCRI_BIN_DIR").is_some()
            || std::env::var_os("CARGO_TARGET_DIR").is_some()
        {
            return;
        }
        assert_eq!(shim_dir(), workspace_root().join("target/release"));
        assert!(workspace_root().join("Cargo.toml").is_file());
    }
}
