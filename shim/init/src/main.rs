//! lxcri-init: the container's PID 1 until Start.
//!
//! LXC starts this static binary as `/.lxcri/init` (root, all capabilities, inside all the
//! container's namespaces). It reads `/.lxcri/run/init.json`, applies the process spec in runc's
//! order, reports one status line through `/.lxcri/run/status.fifo`, blocks on
//! `/.lxcri/run/exec.fifo` until the shim's Start and execs the user's process, which stays
//! PID 1.
//!
//! One deviation from the contract's order: `/.lxcri` is unmounted (lazily) before the user and
//! capability steps, not after the exec FIFO, because unmounting needs CAP_SYS_ADMIN, which the
//! process may not keep. Both FIFOs are opened first (the exec FIFO as an `O_PATH` descriptor,
//! reopened through `/proc/self/fd`), so they stay usable; the exec FIFO must therefore be
//! writable by the process's uid (the shim creates it 0622, as runc does).
//!
//! Every failure names what failed on which object; errors go to the status FIFO and stderr,
//! never a panic.

use lxcri_init::apply::{apply_identity, apply_limits, cstr, errno, exec, last_err, Res};
use lxcri_init::{
    io_text, InitConfig, Status, EXEC_FIFO, INIT_JSON, INIT_PATH, LXCRI_DIR, RUN_DIR, STATUS_FIFO,
};
use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

fn main() {
    std::process::exit(run());
}

fn run() -> i32 {
    // Open the status FIFO first, while still root: the shim holds its read end open, so this
    // does not block, and later steps may drop the rights to open it.
    let status = match open_status_fifo() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("lxcri-init: {e}");
            return 1;
        }
    };
    let (cfg, prep) = match load_config().and_then(|cfg| prepare(&cfg).map(|p| (cfg, p))) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("lxcri-init: {e}");
            report(status, &Status::failed(e));
            return 1;
        }
    };
    if !report(status, &Status::ok()) {
        return 1;
    }
    if let Err(e) = wait_for_start(&prep.exec_fifo) {
        eprintln!("lxcri-init: {e}");
        return 1;
    }
    drop(prep.exec_fifo);
    exec(&prep.program, &cfg)
}

/// What `prepare` hands to the steps after the status report.
struct Prepared {
    /// The program to exec, resolved through PATH.
    program: String,
    /// An `O_PATH` descriptor of the exec FIFO, taken while still root.
    exec_fifo: OwnedFd,
}

fn run_path(name: &str) -> String {
    format!("{RUN_DIR}/{name}")
}

fn open_status_fifo() -> Res<File> {
    let path = run_path(STATUS_FIFO);
    let c = cstr(&path, "status FIFO")?;
    // O_NONBLOCK: fail (ENXIO) instead of hanging when nobody reads.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        let e = errno();
        let hint = if e.raw_os_error() == Some(libc::ENXIO) {
            ": the shim is not reading it (was the container started by lxcri?)"
        } else {
            ""
        };
        return Err(format!("open status FIFO {path}: {}{hint}", io_text(&e)));
    }
    // Back to blocking writes for the report itself.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Writes the status line and closes the FIFO. Returns whether the shim got it.
fn report(mut f: File, status: &Status) -> bool {
    match f.write_all(status.to_line().as_bytes()) {
        Ok(()) => true,
        Err(e) => {
            eprintln!(
                "lxcri-init: write status to {}: {}",
                run_path(STATUS_FIFO),
                io_text(&e)
            );
            false
        }
    }
}

fn load_config() -> Res<InitConfig> {
    let path = run_path(INIT_JSON);
    let data = std::fs::read(&path).map_err(|e| format!("read {path}: {}", io_text(&e)))?;
    serde_json::from_slice(&data).map_err(|e| {
        format!("parse {path}: {e}: the shim and the init are probably from different versions")
    })
}

/// Everything before the status report, in runc's order.
fn prepare(cfg: &InitConfig) -> Res<Prepared> {
    if cfg.args.is_empty() {
        return Err("process.args: empty: nothing to exec".into());
    }
    let exec_fifo = open_path(&run_path(EXEC_FIFO))?;
    if cfg.terminal {
        lxcri_init::terminal::attach_terminal(0, cfg.uid, cfg.console_size)?;
    }
    for p in &cfg.masked_paths {
        mask_path(p).map_err(|e| format!("masked path {p}: {e}"))?;
    }
    for p in &cfg.readonly_paths {
        readonly_path(p).map_err(|e| format!("readonly path {p}: {e}"))?;
    }
    if cfg.readonly_rootfs {
        remount_ro("/").map_err(|e| format!("readonly rootfs: remount / read-only: {e}"))?;
    }
    let program = apply_limits(cfg, Path::new("/"))?;
    // Unmounting needs CAP_SYS_ADMIN, which the next steps may drop: hide our files now. The
    // status FIFO is open and the exec FIFO is held by an O_PATH descriptor, so both stay usable.
    hide_our_files();
    apply_identity(cfg)?;
    Ok(Prepared { program, exec_fifo })
}

fn open_path(path: &str) -> Res<OwnedFd> {
    let c = cstr(path, "path")?;
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(format!("open {path}: {}", last_err()));
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn mount(src: &str, target: &str, fstype: &str, flags: libc::c_ulong, data: &str) -> Res<()> {
    let (s, t, f, d) = (
        cstr(src, "mount source")?,
        cstr(target, "mount target")?,
        cstr(fstype, "filesystem type")?,
        cstr(data, "mount data")?,
    );
    let fstype_ptr = if fstype.is_empty() {
        std::ptr::null()
    } else {
        f.as_ptr()
    };
    let data_ptr = if data.is_empty() {
        std::ptr::null()
    } else {
        d.as_ptr() as *const libc::c_void
    };
    if unsafe { libc::mount(s.as_ptr(), t.as_ptr(), fstype_ptr, flags, data_ptr) } != 0 {
        return Err(last_err());
    }
    Ok(())
}

/// `/dev/null` bound over a file, an empty read-only tmpfs over a directory; missing: skipped.
fn mask_path(path: &str) -> Res<()> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("stat: {}", io_text(&e))),
    };
    if meta.is_dir() {
        mount("tmpfs", path, "tmpfs", libc::MS_RDONLY, "")
            .map_err(|e| format!("mount an empty read-only tmpfs: {e}"))
    } else {
        mount("/dev/null", path, "", libc::MS_BIND, "")
            .map_err(|e| format!("bind-mount /dev/null: {e}"))
    }
}

/// The mount flags of `path` that a bind remount must keep (the kernel refuses to clear locked
/// ones).
fn kept_flags(path: &str) -> Res<libc::c_ulong> {
    let c = cstr(path, "path")?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(format!("statvfs: {}", last_err()));
    }
    let mut flags = 0;
    for (st_flag, ms_flag) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if st.f_flag & st_flag != 0 {
            flags |= ms_flag;
        }
    }
    Ok(flags)
}

fn remount_ro(path: &str) -> Res<()> {
    let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | kept_flags(path)?;
    mount("", path, "", flags, "").map_err(|e| format!("bind remount read-only: {e}"))
}

/// Bind `path` on itself and remount it read-only; missing: skipped.
fn readonly_path(path: &str) -> Res<()> {
    match std::fs::metadata(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("stat: {}", io_text(&e))),
    }
    mount(path, path, "", libc::MS_BIND | libc::MS_REC, "")
        .map_err(|e| format!("bind-mount on itself: {e}"))?;
    remount_ro(path)
}

/// Blocks until the shim opens the exec FIFO for reading (Start), then writes one byte.
fn wait_for_start(fifo: &OwnedFd) -> Res<()> {
    // Reopen through /proc: the path may no longer be reachable with the process's rights, but
    // its own descriptors are.
    let path = format!("/proc/self/fd/{}", fifo.as_raw_fd());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| format!("open exec FIFO {}: {}", run_path(EXEC_FIFO), io_text(&e)))?;
    f.write_all(b"0")
        .map_err(|e| format!("write exec FIFO {}: {}", run_path(EXEC_FIFO), io_text(&e)))
}

/// Lazily unmounts our files so the user's process cannot see them; errors are ignored.
fn hide_our_files() {
    for p in [RUN_DIR, INIT_PATH, LXCRI_DIR] {
        if let Ok(c) = CString::new(p) {
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}
