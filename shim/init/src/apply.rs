//! Applying a process spec to the calling process: limits, identity, capabilities, exec.
//!
//! Used by the init (the container's process, between LXC's start and the user's exec) and by
//! the exec helper (an attached process, inside the container, before its exec), so that both
//! get the spec applied the same way, in runc's order.

use crate::{
    bounding_drops, cap_last_cap, cap_mask, cap_name, io_text, lookup_path, rlimit_resource,
    Capabilities, InitConfig, SeccompProgram,
};
use std::ffi::CString;
use std::path::Path;

pub type Res<T> = Result<T, String>;

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

/// The kernel's `struct sigaction` (x86_64 and the other 64-bit ABIs with `sa_restorer`).
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

pub fn errno() -> std::io::Error {
    std::io::Error::last_os_error()
}

pub fn last_err() -> String {
    io_text(&errno())
}

pub fn cstr(s: &str, what: &str) -> Res<CString> {
    CString::new(s).map_err(|_| format!("{what} {s:?}: contains a NUL byte"))
}

pub fn set_rlimit(name: &str, soft: u64, hard: u64) -> Res<()> {
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

pub fn set_user(cfg: &InitConfig) -> Res<()> {
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

/// (effective, permitted, inheritable) as 64-bit masks.
pub fn capget() -> Res<(u64, u64, u64)> {
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

pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> Res<()> {
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

pub fn names(mask: u64) -> String {
    let v: Vec<&str> = (0..64)
        .filter(|n| mask & (1u64 << n) != 0)
        .map(|n| cap_name(n).unwrap_or("?"))
        .collect();
    format!("[{}]", v.join(" "))
}

pub fn set_capabilities(caps: &Capabilities) -> Res<()> {
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

pub fn apparmor_enabled() -> bool {
    match std::fs::read_to_string("/sys/module/apparmor/parameters/enabled") {
        Ok(s) => s.trim() == "Y",
        // No sysfs in the container: AppArmor's own proc directory says whether it is there.
        Err(_) => Path::new("/proc/self/attr/apparmor").is_dir(),
    }
}

pub fn apparmor_exec(profile: &str) -> Res<()> {
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

/// Unblocks every signal and gives back the default action to ignored ones (the Rust runtime
/// ignores SIGPIPE; LXC, the shim or its parents may have ignored others), so the process
/// starts clean. Raw system calls: glibc's wrappers refuse the two real-time signals it keeps
/// for itself (32, 33), which a parent may still have left ignored.
pub fn reset_signals() {
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

pub fn exec(program: &str, cfg: &InitConfig) -> i32 {
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
    // With no_new_privs the filter can be loaded without CAP_SYS_ADMIN: load it as the very last
    // step, so it constrains the user's process only (runc's order).
    if cfg.no_new_privileges {
        if let Some(prog) = &cfg.seccomp {
            if let Err(e) = load_seccomp(prog) {
                eprintln!("lxcri-init: exec {program}: {e}");
                return 126;
            }
        }
    }
    unsafe { libc::execve(prog.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    let e = errno();
    eprintln!("lxcri-init: exec {program}: {}", io_text(&e));
    if e.raw_os_error() == Some(libc::ENOENT) {
        127
    } else {
        126
    }
}

/// The first half of the process spec, while still root with every capability: rlimits,
/// oom_score_adj, umask, and the program resolved through the spec's PATH (relative to `root`).
pub fn apply_limits(cfg: &InitConfig, root: &Path) -> Res<String> {
    if cfg.args.is_empty() {
        return Err("process.args: empty: nothing to exec".into());
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
        // SAFETY: umask cannot fail.
        unsafe { libc::umask(mask as libc::mode_t) };
    }
    lookup_path(root, cwd(cfg), &cfg.args[0], &cfg.env).map_err(|e| e.to_string())
}

/// The second half: user and groups, capabilities, no_new_privs, AppArmor for the exec, cwd.
pub fn apply_identity(cfg: &InitConfig) -> Res<()> {
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which the next steps may drop:
    // load it now (runc does the same); the rest of this function and the exec run under it.
    if !cfg.no_new_privileges {
        if let Some(prog) = &cfg.seccomp {
            load_seccomp(prog)?;
        }
    }
    set_user(cfg)?;
    if let Some(caps) = &cfg.capabilities {
        set_capabilities(caps)?;
    }
    // SAFETY: prctl with integer arguments.
    if cfg.no_new_privileges && unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(format!(
            "no_new_privileges: prctl(PR_SET_NO_NEW_PRIVS): {}",
            last_err()
        ));
    }
    if let Some(profile) = cfg.apparmor_profile.as_deref().filter(|p| !p.is_empty()) {
        apparmor_exec(profile)?;
    }
    let dir = cwd(cfg);
    let c = cstr(dir, "cwd")?;
    // SAFETY: chdir with a valid C string.
    if unsafe { libc::chdir(c.as_ptr()) } != 0 {
        return Err(format!("chdir {dir}: {}", last_err()));
    }
    Ok(())
}

pub fn cwd(cfg: &InitConfig) -> &str {
    if cfg.cwd.is_empty() {
        "/"
    } else {
        cfg.cwd.as_str()
    }
}

/// Loads a compiled seccomp filter on the calling thread (`seccomp(SECCOMP_SET_MODE_FILTER)`).
pub fn load_seccomp(prog: &SeccompProgram) -> Res<()> {
    const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
    const BPF_MAXINSNS: usize = 4096;
    let what = format!(
        "linux.seccomp: loading the filter ({} instructions, flags {:#x})",
        prog.filter.len(),
        prog.flags
    );
    if prog.filter.is_empty() || prog.filter.len() > BPF_MAXINSNS {
        return Err(format!(
            "{what}: a filter has 1 to {BPF_MAXINSNS} instructions: the shim and the init are \
             probably from different versions"
        ));
    }
    let insns: Vec<libc::sock_filter> = prog
        .filter
        .iter()
        .map(|&w| libc::sock_filter {
            code: w as u16,
            jt: (w >> 16) as u8,
            jf: (w >> 24) as u8,
            k: (w >> 32) as u32,
        })
        .collect();
    let fprog = libc::sock_fprog {
        len: insns.len() as libc::c_ushort,
        filter: insns.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fprog points at `insns`, which outlives the call; the kernel copies the program.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            prog.flags as libc::c_ulong,
            &fprog as *const libc::sock_fprog,
        )
    };
    if r != 0 {
        let e = errno();
        let hint = match e.raw_os_error() {
            Some(libc::EACCES) => ": the process has neither no_new_privileges nor CAP_SYS_ADMIN",
            Some(libc::EINVAL) => ": the kernel rejects the program or one of the flags",
            _ => "",
        };
        return Err(format!("{what}: {}{hint}", io_text(&e)));
    }
    Ok(())
}
