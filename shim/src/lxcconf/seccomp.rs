//! `linux.seccomp` -> a classic BPF program, loaded by the init (`/.lxcri/init`).
//!
//! Why not `lxc.seccomp.profile`: LXC loads its filter in the container before it execs
//! `lxc.init.cmd`, so the filter would also constrain our init, which still has to mount
//! (`linux.maskedPaths`, `linux.readonlyPaths`, `root.readonly`), `umount2` `/.lxcri`, and
//! change its identity. containerd's default profile allows `mount`/`umount2`/`unshare`/...
//! only when the spec grants CAP_SYS_ADMIN, so most containers would fail in the init; adding
//! those syscalls to the policy would hand them to the user's process too. So, as runc does, the
//! filter is applied by the init itself: right before the execve when `noNewPrivileges` is set,
//! else just before it drops its identity (loading a filter then needs CAP_SYS_ADMIN).
//!
//! The program is compiled here, in the shim, and travels in the init's JSON config
//! ([`lxcri_init::SeccompProgram`]): the init stays a small static binary with no BPF code.
//!
//! Semantics, as runc with libseccomp on x86_64:
//! - rules are tried in spec order, the first match decides; no match gives `defaultAction`;
//! - `errnoRet` / `defaultErrnoRet` (default EPERM) for `SCMP_ACT_ERRNO` and `SCMP_ACT_TRACE`;
//! - argument conditions of one rule are ANDed, except when they all test the same argument:
//!   then each is an alternative (runc's rule, which libseccomp needs);
//! - a syscall name unknown on x86_64 is skipped (profiles list other architectures' calls);
//! - the i386 and x32 ABIs are not filtered rule by rule: every such call gets the default
//!   action if that denies, else ENOSYS. That is stricter than libseccomp, never weaker.
//!
//! Refused at Create: `SCMP_ACT_NOTIFY`, `listenerPath`, `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`
//! (no seccomp agent support), argument indexes above 5, errno values above 4095, programs
//! over 4096 instructions.

use lxcri_init::SeccompProgram;
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction as Act, LinuxSeccompArg, LinuxSeccompFilterFlag as Flag,
    LinuxSeccompOperator as Op, Spec,
};

use super::{LxcConfig, TranslateError, INIT_IN_CONTAINER};

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;
const MAX_ERRNO: u32 = 4095;
const BPF_MAXINSNS: usize = 4096;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

// struct seccomp_data: nr at 0, arch at 4, instruction_pointer at 8, args[6] at 16.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

// Classic BPF opcodes.
const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JGE_K: u16 = 0x35;
const AND_K: u16 = 0x54;
const RET_K: u16 = 0x06;

const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_KILL_THREAD: u32 = 0x0000_0000;
const RET_TRAP: u32 = 0x0003_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_TRACE: u32 = 0x7ff0_0000;
const RET_LOG: u32 = 0x7ffc_0000;
const RET_ALLOW: u32 = 0x7fff_0000;

const FLAG_TSYNC: u32 = 1;
const FLAG_LOG: u32 = 2;
const FLAG_SPEC_ALLOW: u32 = 4;

/// Compiles the spec's `linux.seccomp`, if any, into the program the init loads.
pub fn compile(spec: &Spec) -> Result<Option<SeccompProgram>, TranslateError> {
    match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        None => Ok(None),
        Some(sc) => compile_profile(sc).map(|c| Some(c.program)),
    }
}

/// Checks and compiles `linux.seccomp` and records in the config's comments that the init,
/// not LXC, applies it (no `lxc.seccomp.*` key is set).
pub(super) fn configure_seccomp(cfg: &mut LxcConfig, spec: &Spec) -> Result<(), TranslateError> {
    let Some(sc) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(());
    };
    let c = compile_profile(sc)?;
    cfg.notes.push(format!(
        "linux.seccomp (default {}, {} rules, flags {:#x}): compiled to {} BPF instructions, \
         loaded by {INIT_IN_CONTAINER} before the exec, not by lxc.seccomp.profile",
        action_name(sc.default_action()),
        sc.syscalls().as_ref().map_or(0, Vec::len),
        c.program.flags,
        c.program.filter.len()
    ));
    if !c.unknown.is_empty() {
        cfg.notes.push(format!(
            "linux.seccomp: {} syscall names unknown on x86_64, skipped: {}",
            c.unknown.len(),
            c.unknown.join(" ")
        ));
    }
    Ok(())
}

struct Compiled {
    program: SeccompProgram,
    /// Syscall names not on x86_64, deduplicated, in spec order.
    unknown: Vec<String>,
}

fn action_name(a: Act) -> String {
    format!(
        "SCMP_ACT_{}",
        format!("{a:?}")
            .trim_start_matches("ScmpAct")
            .to_uppercase()
    )
}

/// The `SECCOMP_RET_*` value of an action.
fn action(a: Act, errno: Option<u32>, field: &str) -> Result<u32, TranslateError> {
    let errno_field = if field.ends_with("defaultAction") {
        field.replace("defaultAction", "defaultErrnoRet")
    } else {
        field.replace(".action", ".errnoRet")
    };
    let data = errno.unwrap_or(EPERM);
    let checked = |kind: &str| {
        if data > MAX_ERRNO {
            Err(TranslateError::invalid(
                errno_field.clone(),
                format!("{data} is not an errno value for {kind}"),
                format!("give a value from 0 to {MAX_ERRNO} (e.g. 1 for EPERM, 38 for ENOSYS)"),
            ))
        } else {
            Ok(data)
        }
    };
    Ok(match a {
        Act::ScmpActKill | Act::ScmpActKillThread => RET_KILL_THREAD,
        Act::ScmpActKillProcess => RET_KILL_PROCESS,
        Act::ScmpActTrap => RET_TRAP,
        Act::ScmpActErrno => RET_ERRNO | checked("SCMP_ACT_ERRNO")?,
        Act::ScmpActTrace => RET_TRACE | checked("SCMP_ACT_TRACE")?,
        Act::ScmpActLog => RET_LOG,
        Act::ScmpActAllow => RET_ALLOW,
        Act::ScmpActNotify => {
            return Err(TranslateError::unsupported(
                field,
                "SCMP_ACT_NOTIFY (a seccomp agent)",
                "use SCMP_ACT_ERRNO or SCMP_ACT_LOG for these syscalls, or run the container \
                 with runc",
            ))
        }
    })
}

fn compile_profile(sc: &LinuxSeccomp) -> Result<Compiled, TranslateError> {
    if sc.listener_path().is_some() {
        return Err(TranslateError::unsupported(
            "linux.seccomp.listenerPath",
            "a seccomp agent (SCMP_ACT_NOTIFY listener)",
            "remove listenerPath and every SCMP_ACT_NOTIFY rule, or run the container with runc",
        ));
    }
    let mut flags = 0;
    for (i, f) in sc.flags().iter().flatten().enumerate() {
        flags |= match f {
            Flag::SeccompFilterFlagTsync => FLAG_TSYNC,
            Flag::SeccompFilterFlagLog => FLAG_LOG,
            Flag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            Flag::SeccompFilterFlagWaitKillableRecv => {
                return Err(TranslateError::unsupported(
                    format!("linux.seccomp.flags[{i}]"),
                    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (only meaningful with a seccomp \
                     agent)",
                    "remove the flag",
                ))
            }
        };
    }
    let default = action(
        sc.default_action(),
        sc.default_errno_ret(),
        "linux.seccomp.defaultAction",
    )?;
    // Calls of the i386 and x32 ABIs are not filtered rule by rule: deny them all.
    let other_abi = match default {
        RET_ALLOW | RET_LOG => RET_ERRNO | ENOSYS,
        d if d & 0xffff_0000 == RET_TRACE => RET_ERRNO | ENOSYS,
        d => d,
    };

    let mut asm = Asm::default();
    let native = asm.label();
    asm.ld(OFF_ARCH);
    asm.jump(JEQ_K, AUDIT_ARCH_X86_64, To::L(native), To::Next);
    asm.ret(other_abi);
    asm.bind(native);
    asm.ld(OFF_NR);
    let not_x32 = asm.label();
    asm.jump(JGE_K, X32_SYSCALL_BIT, To::Next, To::L(not_x32));
    asm.ret(other_abi);
    asm.bind(not_x32);

    let mut unknown: Vec<String> = Vec::new();
    // Whether the accumulator holds the syscall number.
    let mut a_is_nr = true;
    for (i, rule) in sc.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let ret = action(rule.action(), rule.errno_ret(), &format!("{field}.action"))?;
        let args = rule.args().clone().unwrap_or_default();
        for (j, arg) in args.iter().enumerate() {
            if arg.index() > 5 {
                return Err(TranslateError::invalid(
                    format!("{field}.args[{j}].index"),
                    format!("{} is not a syscall argument index", arg.index()),
                    "system calls have arguments 0 to 5",
                ));
            }
        }
        // runc: conditions that all test one argument are alternatives, else all must hold.
        let alternatives: Vec<Vec<LinuxSeccompArg>> =
            if args.len() > 1 && args.iter().all(|a| a.index() == args[0].index()) {
                args.iter().map(|a| vec![*a]).collect()
            } else {
                vec![args]
            };
        for name in rule.names() {
            let Some(nr) = syscall_number(name) else {
                if !unknown.contains(name) {
                    unknown.push(name.clone());
                }
                continue;
            };
            for conds in &alternatives {
                let fail = asm.label();
                if !a_is_nr {
                    asm.ld(OFF_NR);
                }
                asm.jump(JEQ_K, nr, To::Next, To::L(fail));
                for c in conds {
                    condition(&mut asm, c, fail);
                }
                asm.ret(ret);
                asm.bind(fail);
                a_is_nr = conds.is_empty();
            }
        }
    }
    asm.ret(default);
    let filter = asm.finish().map_err(|problem| {
        TranslateError::unsupported(
            "linux.seccomp.syscalls",
            format!("this profile ({problem})"),
            "shorten the profile: merge rules, drop conditions or rules for syscalls the \
             default action already covers",
        )
    })?;
    Ok(Compiled {
        program: SeccompProgram { flags, filter },
        unknown,
    })
}

/// Emits the test of one condition on a 64-bit argument: falls through when it holds, jumps
/// to `fail` when not.
fn condition(asm: &mut Asm, c: &LinuxSeccompArg, fail: usize) {
    let off = OFF_ARGS + 8 * c.index() as u32;
    let (lo, hi) = (off, off + 4);
    let split = |v: u64| (v as u32, (v >> 32) as u32);
    let (vlo, vhi) = split(c.value());
    let ok = asm.label();
    let f = To::L(fail);
    let t = To::L(ok);
    match c.op() {
        Op::ScmpCmpEq => {
            asm.ld(hi);
            asm.jump(JEQ_K, vhi, To::Next, f);
            asm.ld(lo);
            asm.jump(JEQ_K, vlo, To::Next, f);
        }
        Op::ScmpCmpNe => {
            asm.ld(hi);
            asm.jump(JEQ_K, vhi, To::Next, t);
            asm.ld(lo);
            asm.jump(JEQ_K, vlo, f, t);
        }
        Op::ScmpCmpGt | Op::ScmpCmpGe => {
            asm.ld(hi);
            asm.jump(JGT_K, vhi, t, To::Next);
            asm.jump(JEQ_K, vhi, To::Next, f);
            asm.ld(lo);
            let op = if c.op() == Op::ScmpCmpGt {
                JGT_K
            } else {
                JGE_K
            };
            asm.jump(op, vlo, t, f);
        }
        // LT is "not GE", LE is "not GT".
        Op::ScmpCmpLt | Op::ScmpCmpLe => {
            asm.ld(hi);
            asm.jump(JGT_K, vhi, f, To::Next);
            asm.jump(JEQ_K, vhi, To::Next, t);
            asm.ld(lo);
            let op = if c.op() == Op::ScmpCmpLt {
                JGE_K
            } else {
                JGT_K
            };
            asm.jump(op, vlo, f, t);
        }
        Op::ScmpCmpMaskedEq => {
            let (mlo, mhi) = (vlo, vhi);
            let (wlo, whi) = split(c.value_two().unwrap_or(0));
            asm.ld(hi);
            asm.alu_and(mhi);
            asm.jump(JEQ_K, whi, To::Next, f);
            asm.ld(lo);
            asm.alu_and(mlo);
            asm.jump(JEQ_K, wlo, To::Next, f);
        }
    }
    asm.bind(ok);
}

/// A jump target: the next instruction or a label.
#[derive(Debug, Clone, Copy)]
enum To {
    Next,
    L(usize),
}

/// A tiny classic-BPF assembler with forward labels.
#[derive(Default)]
struct Asm {
    insns: Vec<(u16, To, To, u32)>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn bind(&mut self, l: usize) {
        self.labels[l] = Some(self.insns.len());
    }
    fn ld(&mut self, off: u32) {
        self.insns.push((LD_W_ABS, To::Next, To::Next, off));
    }
    fn alu_and(&mut self, k: u32) {
        self.insns.push((AND_K, To::Next, To::Next, k));
    }
    fn jump(&mut self, op: u16, k: u32, jt: To, jf: To) {
        self.insns.push((op, jt, jf, k));
    }
    fn ret(&mut self, k: u32) {
        self.insns.push((RET_K, To::Next, To::Next, k));
    }

    /// Resolves the labels; each instruction packed as `code | jt << 16 | jf << 24 | k << 32`.
    fn finish(self) -> Result<Vec<u64>, String> {
        if self.insns.len() > BPF_MAXINSNS {
            return Err(format!(
                "{} BPF instructions, the kernel takes at most {BPF_MAXINSNS}",
                self.insns.len()
            ));
        }
        let mut out = Vec::with_capacity(self.insns.len());
        for (pc, &(code, jt, jf, k)) in self.insns.iter().enumerate() {
            let off = |t: To| -> Result<u8, String> {
                match t {
                    To::Next => Ok(0),
                    To::L(l) => {
                        let target =
                            self.labels.get(l).copied().flatten().ok_or_else(|| {
                                format!("internal error: label {l} is not placed")
                            })?;
                        target
                            .checked_sub(pc + 1)
                            .and_then(|d| u8::try_from(d).ok())
                            .ok_or_else(|| format!("a jump of instruction {pc} is too long"))
                    }
                }
            };
            let (jt, jf) = (off(jt)?, off(jf)?);
            out.push(code as u64 | (jt as u64) << 16 | (jf as u64) << 24 | (k as u64) << 32);
        }
        Ok(out)
    }
}

/// The x86_64 number of a syscall name.
pub fn syscall_number(name: &str) -> Option<u32> {
    SYSCALLS_X86_64
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, nr)| nr)
}

/// x86_64 syscall names and numbers (Linux's `arch/x86/entry/syscalls/syscall_64.tbl`, to 6.15).
const SYSCALLS_X86_64: &[(&str, u32)] = &[
    ("read", 0),
    ("write", 1),
    ("open", 2),
    ("close", 3),
    ("stat", 4),
    ("fstat", 5),
    ("lstat", 6),
    ("poll", 7),
    ("lseek", 8),
    ("mmap", 9),
    ("mprotect", 10),
    ("munmap", 11),
    ("brk", 12),
    ("rt_sigaction", 13),
    ("rt_sigprocmask", 14),
    ("rt_sigreturn", 15),
    ("ioctl", 16),
    ("pread64", 17),
    ("pwrite64", 18),
    ("readv", 19),
    ("writev", 20),
    ("access", 21),
    ("pipe", 22),
    ("select", 23),
    ("sched_yield", 24),
    ("mremap", 25),
    ("msync", 26),
    ("mincore", 27),
    ("madvise", 28),
    ("shmget", 29),
    ("shmat", 30),
    ("shmctl", 31),
    ("dup", 32),
    ("dup2", 33),
    ("pause", 34),
    ("nanosleep", 35),
    ("getitimer", 36),
    ("alarm", 37),
    ("setitimer", 38),
    ("getpid", 39),
    ("sendfile", 40),
    ("socket", 41),
    ("connect", 42),
    ("accept", 43),
    ("sendto", 44),
    ("recvfrom", 45),
    ("sendmsg", 46),
    ("recvmsg", 47),
    ("shutdown", 48),
    ("bind", 49),
    ("listen", 50),
    ("getsockname", 51),
    ("getpeername", 52),
    ("socketpair", 53),
    ("setsockopt", 54),
    ("getsockopt", 55),
    ("clone", 56),
    ("fork", 57),
    ("vfork", 58),
    ("execve", 59),
    ("exit", 60),
    ("wait4", 61),
    ("kill", 62),
    ("uname", 63),
    ("semget", 64),
    ("semop", 65),
    ("semctl", 66),
    ("shmdt", 67),
    ("msgget", 68),
    ("msgsnd", 69),
    ("msgrcv", 70),
    ("msgctl", 71),
    ("fcntl", 72),
    ("flock", 73),
    ("fsync", 74),
    ("fdatasync", 75),
    ("truncate", 76),
    ("ftruncate", 77),
    ("getdents", 78),
    ("getcwd", 79),
    ("chdir", 80),
    ("fchdir", 81),
    ("rename", 82),
    ("mkdir", 83),
    ("rmdir", 84),
    ("creat", 85),
    ("link", 86),
    ("unlink", 87),
    ("symlink", 88),
    ("readlink", 89),
    ("chmod", 90),
    ("fchmod", 91),
    ("chown", 92),
    ("fchown", 93),
    ("lchown", 94),
    ("umask", 95),
    ("gettimeofday", 96),
    ("getrlimit", 97),
    ("getrusage", 98),
    ("sysinfo", 99),
    ("times", 100),
    ("ptrace", 101),
    ("getuid", 102),
    ("syslog", 103),
    ("getgid", 104),
    ("setuid", 105),
    ("setgid", 106),
    ("geteuid", 107),
    ("getegid", 108),
    ("setpgid", 109),
    ("getppid", 110),
    ("getpgrp", 111),
    ("setsid", 112),
    ("setreuid", 113),
    ("setregid", 114),
    ("getgroups", 115),
    ("setgroups", 116),
    ("setresuid", 117),
    ("getresuid", 118),
    ("setresgid", 119),
    ("getresgid", 120),
    ("getpgid", 121),
    ("setfsuid", 122),
    ("setfsgid", 123),
    ("getsid", 124),
    ("capget", 125),
    ("capset", 126),
    ("rt_sigpending", 127),
    ("rt_sigtimedwait", 128),
    ("rt_sigqueueinfo", 129),
    ("rt_sigsuspend", 130),
    ("sigaltstack", 131),
    ("utime", 132),
    ("mknod", 133),
    ("uselib", 134),
    ("personality", 135),
    ("ustat", 136),
    ("statfs", 137),
    ("fstatfs", 138),
    ("sysfs", 139),
    ("getpriority", 140),
    ("setpriority", 141),
    ("sched_setparam", 142),
    ("sched_getparam", 143),
    ("sched_setscheduler", 144),
    ("sched_getscheduler", 145),
    ("sched_get_priority_max", 146),
    ("sched_get_priority_min", 147),
    ("sched_rr_get_interval", 148),
    ("mlock", 149),
    ("munlock", 150),
    ("mlockall", 151),
    ("munlockall", 152),
    ("vhangup", 153),
    ("modify_ldt", 154),
    ("pivot_root", 155),
    ("_sysctl", 156),
    ("prctl", 157),
    ("arch_prctl", 158),
    ("adjtimex", 159),
    ("setrlimit", 160),
    ("chroot", 161),
    ("sync", 162),
    ("acct", 163),
    ("settimeofday", 164),
    ("mount", 165),
    ("umount2", 166),
    ("swapon", 167),
    ("swapoff", 168),
    ("reboot", 169),
    ("sethostname", 170),
    ("setdomainname", 171),
    ("iopl", 172),
    ("ioperm", 173),
    ("create_module", 174),
    ("init_module", 175),
    ("delete_module", 176),
    ("get_kernel_syms", 177),
    ("query_module", 178),
    ("quotactl", 179),
    ("nfsservctl", 180),
    ("getpmsg", 181),
    ("putpmsg", 182),
    ("afs_syscall", 183),
    ("tuxcall", 184),
    ("security", 185),
    ("gettid", 186),
    ("readahead", 187),
    ("setxattr", 188),
    ("lsetxattr", 189),
    ("fsetxattr", 190),
    ("getxattr", 191),
    ("lgetxattr", 192),
    ("fgetxattr", 193),
    ("listxattr", 194),
    ("llistxattr", 195),
    ("flistxattr", 196),
    ("removexattr", 197),
    ("lremovexattr", 198),
    ("fremovexattr", 199),
    ("tkill", 200),
    ("time", 201),
    ("futex", 202),
    ("sched_setaffinity", 203),
    ("sched_getaffinity", 204),
    ("set_thread_area", 205),
    ("io_setup", 206),
    ("io_destroy", 207),
    ("io_getevents", 208),
    ("io_submit", 209),
    ("io_cancel", 210),
    ("get_thread_area", 211),
    ("lookup_dcookie", 212),
    ("epoll_create", 213),
    ("epoll_ctl_old", 214),
    ("epoll_wait_old", 215),
    ("remap_file_pages", 216),
    ("getdents64", 217),
    ("set_tid_address", 218),
    ("restart_syscall", 219),
    ("semtimedop", 220),
    ("fadvise64", 221),
    ("timer_create", 222),
    ("timer_settime", 223),
    ("timer_gettime", 224),
    ("timer_getoverrun", 225),
    ("timer_delete", 226),
    ("clock_settime", 227),
    ("clock_gettime", 228),
    ("clock_getres", 229),
    ("clock_nanosleep", 230),
    ("exit_group", 231),
    ("epoll_wait", 232),
    ("epoll_ctl", 233),
    ("tgkill", 234),
    ("utimes", 235),
    ("vserver", 236),
    ("mbind", 237),
    ("set_mempolicy", 238),
    ("get_mempolicy", 239),
    ("mq_open", 240),
    ("mq_unlink", 241),
    ("mq_timedsend", 242),
    ("mq_timedreceive", 243),
    ("mq_notify", 244),
    ("mq_getsetattr", 245),
    ("kexec_load", 246),
    ("waitid", 247),
    ("add_key", 248),
    ("request_key", 249),
    ("keyctl", 250),
    ("ioprio_set", 251),
    ("ioprio_get", 252),
    ("inotify_init", 253),
    ("inotify_add_watch", 254),
    ("inotify_rm_watch", 255),
    ("migrate_pages", 256),
    ("openat", 257),
    ("mkdirat", 258),
    ("mknodat", 259),
    ("fchownat", 260),
    ("futimesat", 261),
    ("newfstatat", 262),
    ("unlinkat", 263),
    ("renameat", 264),
    ("linkat", 265),
    ("symlinkat", 266),
    ("readlinkat", 267),
    ("fchmodat", 268),
    ("faccessat", 269),
    ("pselect6", 270),
    ("ppoll", 271),
    ("unshare", 272),
    ("set_robust_list", 273),
    ("get_robust_list", 274),
    ("splice", 275),
    ("tee", 276),
    ("sync_file_range", 277),
    ("vmsplice", 278),
    ("move_pages", 279),
    ("utimensat", 280),
    ("epoll_pwait", 281),
    ("signalfd", 282),
    ("timerfd_create", 283),
    ("eventfd", 284),
    ("fallocate", 285),
    ("timerfd_settime", 286),
    ("timerfd_gettime", 287),
    ("accept4", 288),
    ("signalfd4", 289),
    ("eventfd2", 290),
    ("epoll_create1", 291),
    ("dup3", 292),
    ("pipe2", 293),
    ("inotify_init1", 294),
    ("preadv", 295),
    ("pwritev", 296),
    ("rt_tgsigqueueinfo", 297),
    ("perf_event_open", 298),
    ("recvmmsg", 299),
    ("fanotify_init", 300),
    ("fanotify_mark", 301),
    ("prlimit64", 302),
    ("name_to_handle_at", 303),
    ("open_by_handle_at", 304),
    ("clock_adjtime", 305),
    ("syncfs", 306),
    ("sendmmsg", 307),
    ("setns", 308),
    ("getcpu", 309),
    ("process_vm_readv", 310),
    ("process_vm_writev", 311),
    ("kcmp", 312),
    ("finit_module", 313),
    ("sched_setattr", 314),
    ("sched_getattr", 315),
    ("renameat2", 316),
    ("seccomp", 317),
    ("getrandom", 318),
    ("memfd_create", 319),
    ("kexec_file_load", 320),
    ("bpf", 321),
    ("execveat", 322),
    ("userfaultfd", 323),
    ("membarrier", 324),
    ("mlock2", 325),
    ("copy_file_range", 326),
    ("preadv2", 327),
    ("pwritev2", 328),
    ("pkey_mprotect", 329),
    ("pkey_alloc", 330),
    ("pkey_free", 331),
    ("statx", 332),
    ("io_pgetevents", 333),
    ("rseq", 334),
    ("pidfd_send_signal", 424),
    ("io_uring_setup", 425),
    ("io_uring_enter", 426),
    ("io_uring_register", 427),
    ("open_tree", 428),
    ("move_mount", 429),
    ("fsopen", 430),
    ("fsconfig", 431),
    ("fsmount", 432),
    ("fspick", 433),
    ("pidfd_open", 434),
    ("clone3", 435),
    ("close_range", 436),
    ("openat2", 437),
    ("pidfd_getfd", 438),
    ("faccessat2", 439),
    ("process_madvise", 440),
    ("epoll_pwait2", 441),
    ("mount_setattr", 442),
    ("quotactl_fd", 443),
    ("landlock_create_ruleset", 444),
    ("landlock_add_rule", 445),
    ("landlock_restrict_self", 446),
    ("memfd_secret", 447),
    ("process_mrelease", 448),
    ("futex_waitv", 449),
    ("set_mempolicy_home_node", 450),
    ("cachestat", 451),
    ("fchmodat2", 452),
    ("map_shadow_stack", 453),
    ("futex_wake", 454),
    ("futex_wait", 455),
    ("futex_requeue", 456),
    ("statmount", 457),
    ("listmount", 458),
    ("lsm_get_self_attr", 459),
    ("lsm_set_self_attr", 460),
    ("lsm_list_modules", 461),
    ("mseal", 462),
    ("setxattrat", 463),
    ("getxattrat", 464),
    ("listxattrat", 465),
    ("removexattrat", 466),
    ("open_tree_attr", 467),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a packed program on one `struct seccomp_data`, as the kernel would.
    fn run(prog: &[u64], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let mut a: u32 = 0;
        let mut pc = 0usize;
        loop {
            let w = prog[pc];
            let (code, jt, jf, k) = (w as u16, (w >> 16) as u8, (w >> 24) as u8, (w >> 32) as u32);
            pc += 1;
            match code {
                LD_W_ABS => {
                    let o = k as usize;
                    a = u32::from_le_bytes(data[o..o + 4].try_into().unwrap());
                }
                AND_K => a &= k,
                RET_K => return k,
                JEQ_K | JGT_K | JGE_K => {
                    let hit = match code {
                        JEQ_K => a == k,
                        JGT_K => a > k,
                        _ => a >= k,
                    };
                    pc += if hit { jt } else { jf } as usize;
                }
                other => panic!("unexpected opcode {other:#x} at {}", pc - 1),
            }
        }
    }

    fn spec_with(seccomp: serde_json::Value) -> Spec {
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.1.0",
            "root": {"path": "rootfs"},
            "linux": {"seccomp": seccomp}
        }))
        .expect("test spec parses")
    }

    fn program(seccomp: serde_json::Value) -> SeccompProgram {
        compile(&spec_with(seccomp))
            .expect("profile compiles")
            .expect("profile present")
    }

    fn err(seccomp: serde_json::Value) -> TranslateError {
        match compile(&spec_with(seccomp)) {
            Ok(p) => panic!("expected an error, got {p:?}"),
            Err(e) => e,
        }
    }

    const X86_64: u32 = AUDIT_ARCH_X86_64;
    const I386: u32 = 0x4000_0003;
    const NO: [u64; 6] = [0; 6];

    fn nr(name: &str) -> u32 {
        syscall_number(name).expect("known syscall")
    }

    #[test]
    fn no_profile_no_program() {
        let spec: Spec =
            serde_json::from_value(serde_json::json!({"ociVersion": "1.1.0"})).unwrap();
        assert_eq!(compile(&spec).unwrap(), None);
    }

    #[test]
    fn table_matches_libc() {
        assert_eq!(nr("read"), libc::SYS_read as u32);
        assert_eq!(nr("mkdirat"), libc::SYS_mkdirat as u32);
        assert_eq!(nr("personality"), libc::SYS_personality as u32);
        assert_eq!(nr("unshare"), libc::SYS_unshare as u32);
        assert_eq!(nr("kill"), libc::SYS_kill as u32);
        assert_eq!(nr("fchmodat2"), libc::SYS_fchmodat2 as u32);
        assert_eq!(nr("mseal"), libc::SYS_mseal as u32);
        // Every number once.
        let mut nrs: Vec<u32> = SYSCALLS_X86_64.iter().map(|&(_, n)| n).collect();
        nrs.sort_unstable();
        nrs.dedup();
        assert_eq!(nrs.len(), SYSCALLS_X86_64.len());
        assert_eq!(syscall_number("_llseek"), None);
    }

    #[test]
    fn allowlist_with_default_errno() {
        let p = program(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["read", "write", "_llseek"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"}
            ]
        }));
        let f = &p.filter;
        assert_eq!(run(f, X86_64, nr("read"), NO), RET_ALLOW);
        assert_eq!(run(f, X86_64, nr("write"), NO), RET_ALLOW);
        assert_eq!(run(f, X86_64, nr("mkdir"), NO), RET_ERRNO | 13);
        assert_eq!(run(f, X86_64, nr("mkdirat"), NO), RET_ERRNO | 13);
        assert_eq!(run(f, X86_64, nr("getpid"), NO), RET_ERRNO | EPERM);
        assert_eq!(run(f, X86_64, nr("open"), NO), RET_ERRNO | 38);
        // Other ABIs get the (denying) default action, never a rule's ALLOW.
        assert_eq!(
            run(f, X86_64, nr("read") | X32_SYSCALL_BIT, NO),
            RET_ERRNO | 38
        );
        assert_eq!(run(f, I386, 3, NO), RET_ERRNO | 38);
    }

    #[test]
    fn blocklist_default_allow_denies_other_abis_with_enosys() {
        let p = program(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["unshare"], "action": "SCMP_ACT_KILL_PROCESS"}]
        }));
        assert_eq!(run(&p.filter, X86_64, nr("unshare"), NO), RET_KILL_PROCESS);
        assert_eq!(run(&p.filter, X86_64, nr("getpid"), NO), RET_ALLOW);
        assert_eq!(run(&p.filter, I386, 310, NO), RET_ERRNO | ENOSYS);
    }

    #[test]
    fn every_action() {
        for (name, errno, want) in [
            ("SCMP_ACT_KILL", None, RET_KILL_THREAD),
            ("SCMP_ACT_KILL_THREAD", None, RET_KILL_THREAD),
            ("SCMP_ACT_KILL_PROCESS", None, RET_KILL_PROCESS),
            ("SCMP_ACT_TRAP", None, RET_TRAP),
            ("SCMP_ACT_ERRNO", Some(0), RET_ERRNO),
            ("SCMP_ACT_ERRNO", Some(4095), RET_ERRNO | 4095),
            ("SCMP_ACT_TRACE", Some(7), RET_TRACE | 7),
            ("SCMP_ACT_LOG", None, RET_LOG),
            ("SCMP_ACT_ALLOW", None, RET_ALLOW),
        ] {
            let mut rule = serde_json::json!({"names": ["getpid"], "action": name});
            if let Some(e) = errno {
                rule["errnoRet"] = e.into();
            }
            let p = program(serde_json::json!({
                "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]
            }));
            assert_eq!(run(&p.filter, X86_64, nr("getpid"), NO), want, "{name}");
            assert_eq!(run(&p.filter, X86_64, nr("getppid"), NO), RET_ALLOW);
        }
    }

    /// One rule per operator on argument 1, tried around 64-bit boundaries.
    #[test]
    fn argument_conditions_compare_64_bit_values() {
        let values: [u64; 9] = [
            0,
            1,
            0xffff_ffff,
            0x1_0000_0000,
            0x1_0000_0001,
            0x2_0000_0000,
            0xffff_ffff_0000_0000,
            u64::MAX - 1,
            u64::MAX,
        ];
        type Holds = fn(u64, u64) -> bool;
        let ops: [(&str, Holds); 6] = [
            ("SCMP_CMP_EQ", |a, v| a == v),
            ("SCMP_CMP_NE", |a, v| a != v),
            ("SCMP_CMP_LT", |a, v| a < v),
            ("SCMP_CMP_LE", |a, v| a <= v),
            ("SCMP_CMP_GT", |a, v| a > v),
            ("SCMP_CMP_GE", |a, v| a >= v),
        ];
        for (op, holds) in ops {
            for &v in &values {
                let p = program(serde_json::json!({
                    "defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                                  "args": [{"index": 1, "value": v, "op": op}]}]
                }));
                for &a in &values {
                    let got = run(&p.filter, X86_64, nr("kill"), [0, a, 0, 0, 0, 0]);
                    let want = if holds(a, v) {
                        RET_ERRNO | EPERM
                    } else {
                        RET_ALLOW
                    };
                    assert_eq!(got, want, "{op}: arg {a:#x} vs {v:#x}");
                }
            }
        }
    }

    #[test]
    fn masked_eq_and_anded_conditions() {
        let p = program(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["clone"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 0, "value": 0x7E02_0000u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                 "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                          {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]}
            ]
        }));
        let f = &p.filter;
        // clone: denied unless a namespace flag is set (the mask selects them).
        assert_eq!(
            run(f, X86_64, nr("clone"), [0x11, 0, 0, 0, 0, 0]),
            RET_ERRNO | 1
        );
        assert_eq!(
            run(f, X86_64, nr("clone"), [0x1000_0000, 0, 0, 0, 0, 0]),
            RET_ALLOW
        );
        assert_eq!(
            run(f, X86_64, nr("clone"), [1 << 33, 0, 0, 0, 0, 0]),
            RET_ERRNO | 1
        );
        // kill: both conditions must hold.
        assert_eq!(
            run(f, X86_64, nr("kill"), [1, 9, 0, 0, 0, 0]),
            RET_ERRNO | 13
        );
        assert_eq!(run(f, X86_64, nr("kill"), [1, 15, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(f, X86_64, nr("kill"), [2, 9, 0, 0, 0, 0]), RET_ALLOW);
    }

    /// containerd's personality rules: several conditions on one argument are alternatives.
    #[test]
    fn conditions_on_one_argument_are_alternatives_and_first_rule_wins() {
        let p = program(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                          {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW"}
            ]
        }));
        let f = &p.filter;
        let call = |a: u64| run(f, X86_64, nr("personality"), [a, 0, 0, 0, 0, 0]);
        assert_eq!(call(0), RET_ALLOW);
        assert_eq!(call(8), RET_ALLOW);
        assert_eq!(call(0xffff_ffff), RET_ERRNO | 22);
    }

    #[test]
    fn flags_are_passed() {
        let p = program(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                      "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
        }));
        assert_eq!(p.flags, FLAG_TSYNC | FLAG_LOG | FLAG_SPEC_ALLOW);
        assert_eq!(run(&p.filter, X86_64, 0, NO), RET_ALLOW);
    }

    #[test]
    fn what_cannot_be_expressed_is_an_error_naming_the_field() {
        let cases = [
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY"}),
                "linux.seccomp.defaultAction",
                "SCMP_ACT_NOTIFY",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                    {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
                "linux.seccomp.syscalls[1].action",
                "SCMP_ACT_NOTIFY",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
                                   "listenerPath": "/run/agent.sock"}),
                "linux.seccomp.listenerPath",
                "seccomp agent",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
                                   "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}),
                "linux.seccomp.flags[0]",
                "WAIT_KILLABLE_RECV",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5000}),
                "linux.seccomp.defaultErrnoRet",
                "5000 is not an errno value",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]}),
                "linux.seccomp.syscalls[0].errnoRet",
                "70000 is not an errno value",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                     "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
                "linux.seccomp.syscalls[0].args[0].index",
                "6 is not a syscall argument index",
            ),
        ];
        for (profile, field, needle) in cases {
            let e = err(profile);
            let msg = e.to_string();
            assert_eq!(e.field(), field, "{msg}");
            assert!(msg.contains(field) && msg.contains(needle), "{msg}");
        }
    }

    #[test]
    fn too_long_a_program_is_an_error() {
        let names: Vec<String> = SYSCALLS_X86_64.iter().map(|(n, _)| n.to_string()).collect();
        let rules: Vec<serde_json::Value> = (0..12)
            .map(|i| serde_json::json!({"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": i}))
            .collect();
        let e = err(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
        assert_eq!(e.field(), "linux.seccomp.syscalls");
        assert!(e.to_string().contains("at most 4096"), "{e}");
    }
}
