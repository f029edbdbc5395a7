//! The exec helper: `lxcri-monitor exec LXCPATH NAME PROCESS_JSON PID_FILE`.
//!
//! Attaches to a running container through liblxc (`attach`, all its namespaces and its cgroup)
//! with the helper's stdio, and in the attached child, inside the container, applies the exec's
//! process spec with the same code as the container's init (`lxcri_init::apply`): rlimits,
//! user and groups, capabilities, no_new_privs, cwd, then execs it with exactly its
//! environment. The attached process's host pid goes to PID_FILE (written atomically); the
//! helper waits for it and exits with its exact status: the exit code, or 128 + the signal.

use lxcri_init::apply::{apply_identity, apply_limits, exec};
use lxcri_init::InitConfig;
use std::ffi::{c_void, CString};
use std::path::Path;

/// Exit status when the exec could not be attached at all.
pub const ATTACH_FAILED: i32 = 255;

/// Runs in the attached child, inside the container: never returns on success.
unsafe extern "C" fn attached(payload: *mut c_void) -> libc::c_int {
    // SAFETY: the payload is the InitConfig that `run` keeps alive across the attach call.
    let cfg = unsafe { &*(payload as *const InitConfig) };
    if cfg.terminal {
        if let Err(e) = lxcri_init::terminal::attach_terminal(0, cfg.uid, cfg.console_size) {
            eprintln!("lxcri exec: {e}");
            return 126;
        }
    }
    let program = match apply_limits(cfg, Path::new("/")) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("lxcri exec: {e}");
            return if e.contains("not found") { 127 } else { 126 };
        }
    };
    if let Err(e) = apply_identity(cfg) {
        eprintln!("lxcri exec: {e}");
        return 126;
    }
    exec(&program, cfg)
}

pub fn run(lxcpath: &str, name: &str, process: &str, pid_file: &str) -> i32 {
    let cfg: InitConfig = match std::fs::read(process)
        .map_err(|e| e.to_string())
        .and_then(|d| serde_json::from_slice(&d).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lxcri exec: reading the process spec {process}: {e}");
            return ATTACH_FAILED;
        }
    };
    let (Ok(c_name), Ok(c_path)) = (CString::new(name), CString::new(lxcpath)) else {
        eprintln!("lxcri exec: container name or path contains a NUL byte");
        return ATTACH_FAILED;
    };
    // SAFETY: calls into liblxc with valid C strings; the handle is checked and released once;
    // the options struct is zeroed and then filled as LXC_ATTACH_OPTIONS_DEFAULT does; `cfg`
    // outlives the attach call that passes it to `attached`.
    unsafe {
        let c = lxc_sys::lxc_container_new(c_name.as_ptr(), c_path.as_ptr());
        if c.is_null() {
            eprintln!("lxcri exec: liblxc could not open container {name} in {lxcpath}");
            return ATTACH_FAILED;
        }
        let Some(attach) = (*c).attach else {
            lxc_sys::lxc_container_put(c);
            eprintln!("lxcri exec: liblxc lacks attach");
            return ATTACH_FAILED;
        };
        let mut opts: lxc_sys::lxc_attach_options_t = std::mem::zeroed();
        opts.attach_flags = lxc_sys::LXC_ATTACH_DEFAULT as libc::c_int;
        opts.namespaces = -1;
        opts.personality = -1;
        opts.uid = 0;
        opts.gid = 0;
        opts.env_policy = lxc_sys::lxc_attach_env_policy_t_LXC_ATTACH_CLEAR_ENV;
        opts.stdin_fd = 0;
        opts.stdout_fd = 1;
        opts.stderr_fd = 2;
        opts.log_fd = -libc::EBADF;
        let mut pid: libc::pid_t = -1;
        let payload = &cfg as *const InitConfig as *mut c_void;
        let ret = attach(c, Some(attached), payload, &mut opts, &mut pid);
        lxc_sys::lxc_container_put(c);
        // The attached process has its own stdin: with a terminal it is the shim's socket,
        // whose end of file tells the shim that no pty is coming.
        libc::close(0);
        if ret < 0 || pid <= 0 {
            eprintln!("lxcri exec: attaching to container {name} failed (is it running?)");
            return ATTACH_FAILED;
        }
        let tmp = format!("{pid_file}.tmp");
        if std::fs::write(&tmp, pid.to_string())
            .and_then(|_| std::fs::rename(&tmp, pid_file))
            .is_err()
        {
            eprintln!("lxcri exec: cannot write {pid_file}");
        }
        let mut status = 0;
        loop {
            let r = libc::waitpid(pid, &mut status, 0);
            if r == pid {
                break;
            }
            if r < 0 && *libc::__errno_location() != libc::EINTR {
                return ATTACH_FAILED;
            }
        }
        if libc::WIFSIGNALED(status) {
            128 + libc::WTERMSIG(status)
        } else {
            libc::WEXITSTATUS(status)
        }
    }
}
