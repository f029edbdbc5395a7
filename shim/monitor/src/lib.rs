//! The LXC monitor: a small single-threaded child process (the `lxcri-monitor` binary, found
//! beside the shim) that runs liblxc's `start` in the foreground, so that the container's init
//! is its child, and exits with the init's exact status: the exit code, or 128 + the signal.
//!
//! liblxc forks and waits in ways that do not mix with the shim's multi-threaded async server,
//! which is why the server never calls liblxc itself.

use std::ffi::CString;

/// Exit status of the monitor when liblxc could not start the container at all.
pub const START_FAILED: i32 = 255;

/// Decodes liblxc's `error_num` after a foreground start into an exit status the way a shell
/// reports it: the exit code, or 128 + signal. liblxc reports a normal exit as `code << 8` and a
/// death by signal either as a plain wait status or as `(sig << 8) | 0x7f`.
pub fn decode_status(error_num: i32) -> i32 {
    let low = error_num & 0x7f;
    if error_num & 0xff == 0x7f {
        128 + ((error_num >> 8) & 0x7f)
    } else if low != 0 {
        128 + low
    } else {
        (error_num >> 8) & 0xff
    }
}

/// Entry point: `lxcri-monitor LXCPATH NAME` (the container's monitor) or
/// `lxcri-monitor exec LXCPATH NAME PROCESS_JSON PID_FILE` (an exec). Never returns.
pub fn main(args: &[String]) -> ! {
    let code = match args {
        [lxcpath, name] => run(lxcpath, name),
        [cmd, lxcpath, name, process, pid_file] if cmd == "exec" => {
            exec::run(lxcpath, name, process, pid_file)
        }
        [cmd] if cmd == "version" => {
            // SAFETY: lxc_get_version returns a static NUL-terminated string.
            let v = unsafe { std::ffi::CStr::from_ptr(lxc_sys::lxc_get_version()) };
            println!("liblxc {}", v.to_string_lossy());
            0
        }
        _ => {
            eprintln!("lxcri monitor: usage: lxcri-monitor LXCPATH NAME | lxcri-monitor exec LXCPATH NAME PROCESS_JSON PID_FILE | lxcri-monitor version");
            START_FAILED
        }
    };
    std::process::exit(code)
}

pub mod exec;

fn run(lxcpath: &str, name: &str) -> i32 {
    let (Ok(c_name), Ok(c_path)) = (CString::new(name), CString::new(lxcpath)) else {
        eprintln!("lxcri monitor: container name or path contains a NUL byte");
        return START_FAILED;
    };
    // SAFETY: plain calls into liblxc with valid NUL-terminated strings; the container handle
    // is checked for NULL and released with lxc_container_put exactly once. This process is
    // single-threaded, as liblxc requires for a foreground start.
    unsafe {
        let c = lxc_sys::lxc_container_new(c_name.as_ptr(), c_path.as_ptr());
        if c.is_null() {
            eprintln!("lxcri monitor: liblxc could not open container {name} in {lxcpath}");
            return START_FAILED;
        }
        let cont = &mut *c;
        let (Some(want_daemonize), Some(want_close_all_fds), Some(start)) =
            (cont.want_daemonize, cont.want_close_all_fds, cont.start)
        else {
            lxc_sys::lxc_container_put(c);
            eprintln!("lxcri monitor: liblxc lacks start/want_daemonize");
            return START_FAILED;
        };
        want_daemonize(c, false);
        // Only stdio reaches the container: no descriptor of ours leaks into it.
        want_close_all_fds(c, true);
        let started = start(c, 0, std::ptr::null());
        let error_num = cont.error_num;
        lxc_sys::lxc_container_put(c);
        if !started && error_num == -1 {
            return START_FAILED;
        }
        kill_leftovers(&std::path::Path::new(lxcpath).join(name).join("config"));
        decode_status(error_num)
    }
}

/// When the container joined another PID namespace (a Kubernetes pod with
/// shareProcessNamespace), the end of its init does not end the rest of its processes: they
/// are reparented to the namespace's init (the pod's pause). As runc's shim does, kill what is
/// left in the container's cgroup before reporting the exit, so the container is really gone
/// (and its stdio, held open by a leftover, reaches EOF).
fn kill_leftovers(config: &std::path::Path) {
    let Ok(text) = std::fs::read_to_string(config) else {
        return;
    };
    let value = |key: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .filter(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().trim_start_matches('/').to_string())
            .filter(|v| !v.is_empty())
            .collect()
    };
    if value("lxc.namespace.share.pid").is_empty() {
        return;
    }
    let dirs = value("lxc.cgroup.dir.container");
    let mut roots = vec![std::path::PathBuf::from("/sys/fs/cgroup")];
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        roots.extend(entries.flatten().map(|e| e.path()));
    }
    let procs: Vec<std::path::PathBuf> = roots
        .iter()
        .flat_map(|r| dirs.iter().map(move |d| r.join(d).join("cgroup.procs")))
        .filter(|p| p.exists())
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let pids: Vec<i32> = procs
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .flat_map(|t| {
                t.lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect();
        if pids.is_empty() || std::time::Instant::now() >= deadline {
            return;
        }
        for pid in pids {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::decode_status;

    #[test]
    fn exit_codes() {
        assert_eq!(decode_status(0), 0);
        assert_eq!(decode_status(42 << 8), 42);
        assert_eq!(decode_status(255 << 8), 255);
    }

    #[test]
    fn signals_both_encodings() {
        // liblxc's (sig << 8) | 0x7f
        assert_eq!(decode_status((9 << 8) | 0x7f), 137);
        assert_eq!(decode_status((15 << 8) | 0x7f), 143);
        // a plain wait status
        assert_eq!(decode_status(9), 137);
        assert_eq!(decode_status(15), 143);
        // killed with a core dump
        assert_eq!(decode_status(11 | 0x80), 139);
    }
}
