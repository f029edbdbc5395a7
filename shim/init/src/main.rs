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

use lxcri_init::{
    bounding_drops, cap_last_cap, cap_mask, cap_name, io_text, lookup_path, rlimit_resource,
    Capabilities, InitConfig, Status, EXEC_FIFO, INIT_JSON, INIT_PATH, LXCRI_DIR, RUN_DIR,
    STATUS_FIFO,
};
use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

type Res<T> = Result<T, String>;

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

fn errno() -> std::io::Error {
    std::io::Error::last_os_error()
}

fn last_err() -> String {
    io_text(&errno())
}

fn cstr(s: &str, what: &str) -> Res<CString> {
    CString::new(s).map_err(|_| format!("{what} {s:?}: contains a NUL byte"))
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
    for p in &cfg.masked_paths {
        mask_path(p).map_err(|e| format!("masked path {p}: {e}"))?;
    }
    for p in &cfg.readonly_paths {
        readonly_path(p).map_err(|e| format!("readonly path {p}: {e}"))?;
    }
    if cfg.readonly_rootfs {
        remount_ro("/").map_err(|e| format!("readonly rootfs: remount / read-only: {e}"))?;
    }
    for r in &cfg.rlimits {
        set_rlimit(&r.typ, r.soft, r.hard)?;
    }
    if let Some(adj) = cfg.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(|e| {
            format!(
                "oom_score_adj {adj}: write /proc/self/oom_score_adj: {}",
                io_text(&e)
            )
        })?;
    }
    if let Some(mask) = cfg.umask {
        unsafe { libc::umask(mask as libc::mode_t) };
    }
    let cwd = if cfg.cwd.is_empty() {
        "/"
    } else {
        cfg.cwd.as_str()
    };
    let program =
        lookup_path(Path::new("/"), cwd, &cfg.args[0], &cfg.env).map_err(|e| e.to_string())?;
    // Unmounting needs CAP_SYS_ADMIN, which the next steps may drop: hide our files now. The
    // status FIFO is open and the exec FIFO is held by an O_PATH descriptor, so both stay usable.
    hide_our_files();
    set_user(cfg)?;
    if let Some(caps) = &cfg.capabilities {
        set_capabilities(caps)?;
    }
    if cfg.no_new_privileges && unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(format!(
            "no_new_privileges: prctl(PR_SET_NO_NEW_PRIVS): {}",
            last_err()
        ));
    }
    if let Some(profile) = cfg.apparmor_profile.as_deref().filter(|p| !p.is_empty()) {
        apparmor_exec(profile)?;
    }
    let c = cstr(cwd, "cwd")?;
    if unsafe { libc::chdir(c.as_ptr()) } != 0 {
        return Err(format!("chdir {cwd}: {}", last_err()));
    }
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

fn set_rlimit(name: &str, soft: u64, hard: u64) -> Res<()> {
    let what = format!("rlimit {name} (soft {soft}, hard {hard})");
    let resource = rlimit_resource(name).map_err(|e| e.to_string())?;
    let lim = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    if unsafe { libc::setrlimit(resource as _, &lim) } != 0 {
        return Err(format!("{what}: {}", last_err()));
    }
    Ok(())
}

fn set_user(cfg: &InitConfig) -> Res<()> {
    let groups: Vec<libc::gid_t> = cfg.additional_gids.clone();
    if unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } != 0 {
        return Err(format!(
            "setgroups {:?}: {}",
            cfg.additional_gids,
            last_err()
        ));
    }
    if unsafe { libc::setgid(cfg.gid) } != 0 {
        return Err(format!("setgid {}: {}", cfg.gid, last_err()));
    }
    // Keep the permitted capabilities across the uid change; the capability step decides.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } != 0 {
        return Err(format!("prctl(PR_SET_KEEPCAPS): {}", last_err()));
    }
    if unsafe { libc::setuid(cfg.uid) } != 0 {
        return Err(format!("setuid {}: {}", cfg.uid, last_err()));
    }
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) } != 0 {
        return Err(format!("prctl(PR_SET_KEEPCAPS, 0): {}", last_err()));
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// (effective, permitted, inheritable) as 64-bit masks.
fn capget() -> Res<(u64, u64, u64)> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    if unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) } != 0 {
        return Err(format!("capget: {}", last_err()));
    }
    let join = |lo: u32, hi: u32| (lo as u64) | ((hi as u64) << 32);
    Ok((
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
        join(data[0].inheritable, data[1].inheritable),
    ))
}

fn capset(effective: u64, permitted: u64, inheritable: u64) -> Res<()> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: effective as u32,
            permitted: permitted as u32,
            inheritable: inheritable as u32,
        },
        CapData {
            effective: (effective >> 32) as u32,
            permitted: (permitted >> 32) as u32,
            inheritable: (inheritable >> 32) as u32,
        },
    ];
    if unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) } != 0 {
        return Err(last_err());
    }
    Ok(())
}

fn names(mask: u64) -> String {
    let v: Vec<&str> = (0..64)
        .filter(|n| mask & (1u64 << n) != 0)
        .map(|n| cap_name(n).unwrap_or("?"))
        .collect();
    format!("[{}]", v.join(" "))
}

fn set_capabilities(caps: &Capabilities) -> Res<()> {
    let last = cap_last_cap();
    // Capabilities the running kernel does not know cannot be set or dropped: skip them.
    let valid = if last >= 63 {
        u64::MAX
    } else {
        (1u64 << (last + 1)) - 1
    };
    let mask = |set: &str, list: &[String]| {
        cap_mask(list)
            .map(|m| m & valid)
            .map_err(|e| format!("capabilities.{set}: {e}"))
    };
    let bounding = mask("bounding", &caps.bounding)?;
    let effective = mask("effective", &caps.effective)?;
    let permitted = mask("permitted", &caps.permitted)?;
    let inheritable = mask("inheritable", &caps.inheritable)?;
    let ambient = mask("ambient", &caps.ambient)?;

    // After a uid change the effective set is empty: take the permitted set back first
    // (PR_CAPBSET_DROP needs CAP_SETPCAP).
    let (_, cur_permitted, cur_inheritable) = capget()?;
    capset(cur_permitted, cur_permitted, cur_inheritable)
        .map_err(|e| format!("capabilities: raise the effective set: {e}"))?;
    for n in bounding_drops(bounding, last) {
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, n as libc::c_ulong, 0, 0, 0) } != 0 {
            let e = errno();
            // EINVAL: the kernel does not have this capability.
            if e.raw_os_error() != Some(libc::EINVAL) {
                return Err(format!(
                    "capabilities.bounding: drop {}: {}",
                    cap_name(n).unwrap_or("?"),
                    io_text(&e)
                ));
            }
        }
    }
    capset(effective, permitted, inheritable).map_err(|e| {
        format!(
            "capabilities: capset effective {} permitted {} inheritable {}: {e} (effective must \
             be within permitted)",
            names(effective),
            names(permitted),
            names(inheritable)
        )
    })?;
    if unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    } != 0
    {
        return Err(format!("capabilities.ambient: clear: {}", last_err()));
    }
    for n in 0..=last.min(63) {
        if ambient & (1u64 << n) == 0 {
            continue;
        }
        if unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                n as libc::c_ulong,
                0,
                0,
            )
        } != 0
        {
            return Err(format!(
                "capabilities.ambient: raise {}: {} (an ambient capability must be permitted \
                 and inheritable)",
                cap_name(n).unwrap_or("?"),
                last_err()
            ));
        }
    }
    Ok(())
}

fn apparmor_enabled() -> bool {
    match std::fs::read_to_string("/sys/module/apparmor/parameters/enabled") {
        Ok(s) => s.trim() == "Y",
        // No sysfs in the container: AppArmor's own proc directory says whether it is there.
        Err(_) => Path::new("/proc/self/attr/apparmor").is_dir(),
    }
}

fn apparmor_exec(profile: &str) -> Res<()> {
    if !apparmor_enabled() {
        return Ok(());
    }
    let attr = if Path::new("/proc/self/attr/apparmor/exec").exists() {
        "/proc/self/attr/apparmor/exec"
    } else {
        "/proc/self/attr/exec"
    };
    std::fs::write(attr, format!("exec {profile}")).map_err(|e| {
        format!(
            "apparmor profile {profile:?}: write {attr}: {}",
            io_text(&e)
        )
    })
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

/// The kernel's `struct sigaction` (x86_64 and the other 64-bit ABIs with `sa_restorer`).
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Unblocks every signal and gives back the default action to ignored ones (the Rust runtime
/// ignores SIGPIPE; LXC, the shim or its parents may have ignored others), so the process
/// starts clean. Raw system calls: glibc's wrappers refuse the two real-time signals it keeps
/// for itself (32, 33), which a parent may still have left ignored.
fn reset_signals() {
    const SIGSET_SIZE: usize = 8;
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        let mut old = KernelSigaction {
            handler: 0,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        let got = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                std::ptr::null::<KernelSigaction>(),
                &mut old,
                SIGSET_SIZE,
            )
        };
        if got == 0 && old.handler == libc::SIG_IGN {
            let dfl = KernelSigaction {
                handler: libc::SIG_DFL,
                flags: 0,
                restorer: 0,
                mask: 0,
            };
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    &dfl,
                    std::ptr::null_mut::<KernelSigaction>(),
                    SIGSET_SIZE,
                )
            };
        }
    }
    let none: u64 = 0;
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &none,
            std::ptr::null_mut::<u64>(),
            SIGSET_SIZE,
        )
    };
}

fn exec(program: &str, cfg: &InitConfig) -> i32 {
    let to_c = |v: &[String], what: &str| -> Res<Vec<CString>> {
        v.iter().map(|s| cstr(s, what)).collect()
    };
    let (prog, args, env) = match (
        cstr(program, "process.args[0]"),
        to_c(&cfg.args, "process.args"),
        to_c(&cfg.env, "process.env"),
    ) {
        (Ok(p), Ok(a), Ok(e)) => (p, a, e),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            eprintln!("lxcri-init: exec {program}: {e}");
            return 126;
        }
    };
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    reset_signals();
    unsafe { libc::execve(prog.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    let e = errno();
    eprintln!("lxcri-init: exec {program}: {}", io_text(&e));
    if e.raw_os_error() == Some(libc::ENOENT) {
        127
    } else {
        126
    }
}
