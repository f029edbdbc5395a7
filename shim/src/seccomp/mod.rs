//! The seccomp compiler: `linux.seccomp` -> a classic BPF program, loaded by the init
//! (`/.lxcri/init`) with `seccomp(2)`.
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
//! The program is compiled here, in the shim, at Create (`process_spec::init_config`, before anything
//! is made) and travels in the init's JSON config ([`lxcri_init::SeccompProgram`]): the init stays
//! a small static binary with no BPF code. `lxcconf` only notes in the LXC config's comments that
//! the init applies it.
//!
//! Architectures: x86_64 only ([`Arch`]). On another host a spec with `linux.seccomp` fails
//! Create with an error naming the host's architecture: syscall numbers and the audit
//! architecture differ per architecture, and a filter built for x86_64 would deny every call.
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
//! over 4096 instructions, and any profile on a host that is not x86_64.

mod x86_64;

use lxcri_init::SeccompProgram;
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction as Act, LinuxSeccompArg, LinuxSeccompFilterFlag as Flag,
    LinuxSeccompOperator as Op, Spec,
};

use crate::lxcconf::TranslateError;

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

/// An architecture the compiler builds filters for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
}

impl Arch {
    /// The architecture named as Rust names it (`std::env::consts::ARCH`): `x86_64`; `None` for
    /// one the compiler does not handle (`aarch64`, ...).
    pub fn from_name(name: &str) -> Option<Arch> {
        match name {
            "x86_64" => Some(Arch::X86_64),
            _ => None,
        }
    }

    /// `AUDIT_ARCH_*`: what the kernel puts in `seccomp_data.arch` for this architecture's calls.
    fn audit(self) -> u32 {
        match self {
            Arch::X86_64 => AUDIT_ARCH_X86_64,
        }
    }

    /// The number of a syscall name on this architecture.
    pub fn syscall_number(self, name: &str) -> Option<u32> {
        let table = match self {
            Arch::X86_64 => x86_64::SYSCALLS,
        };
        table.iter().find(|(n, _)| *n == name).map(|&(_, nr)| nr)
    }
}

/// Compiles the spec's `linux.seccomp`, if any, into the program the init loads, for this host's
/// architecture.
pub fn compile(spec: &Spec) -> Result<Option<SeccompProgram>, TranslateError> {
    compile_for(spec, std::env::consts::ARCH).map(|c| c.map(|c| c.program))
}

/// [`compile`] for the architecture `arch` (as `std::env::consts::ARCH` names it), with the
/// syscall names the profile gives that `arch` does not have. A profile for an architecture the
/// compiler does not handle is an error naming it; no profile is `None` on any architecture.
pub fn compile_for(spec: &Spec, arch: &str) -> Result<Option<Compiled>, TranslateError> {
    let Some(sc) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(None);
    };
    let Some(a) = Arch::from_name(arch) else {
        return Err(TranslateError::unsupported(
            "linux.seccomp",
            format!(
                "a seccomp profile on this {arch} host (lxcri compiles seccomp filters for x86_64 \
                 only)"
            ),
            "run the container without a seccomp profile (for ctr: without --seccomp and \
             --seccomp-profile; for Kubernetes: seccompProfile type Unconfined), or on an x86_64 \
             node",
        ));
    };
    compile_profile(sc, a).map(Some)
}

/// A compiled profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    pub program: SeccompProgram,
    /// Syscall names not on the architecture, deduplicated, in spec order: skipped.
    pub unknown: Vec<String>,
}

/// `SCMP_ACT_ERRNO` for [`Act::ScmpActErrno`]: the name a profile gives an action.
pub fn action_name(a: Act) -> String {
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

fn compile_profile(sc: &LinuxSeccomp, arch: Arch) -> Result<Compiled, TranslateError> {
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
    asm.jump(JEQ_K, arch.audit(), To::L(native), To::Next);
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
            let Some(nr) = arch.syscall_number(name) else {
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
        Arch::X86_64.syscall_number(name).expect("known syscall")
    }

    #[test]
    fn no_profile_no_program() {
        let spec: Spec =
            serde_json::from_value(serde_json::json!({"ociVersion": "1.1.0"})).unwrap();
        assert_eq!(compile(&spec).unwrap(), None);
        // Also on an architecture the compiler does not handle.
        assert_eq!(compile_for(&spec, "aarch64").unwrap(), None);
    }

    /// On another architecture a profile is refused at Create, naming the architecture and what
    /// to do; x86_64 numbers and audit arch would make a filter that denies every call there.
    #[test]
    fn a_profile_for_another_architecture_is_refused() {
        let spec = spec_with(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["unshare"], "action": "SCMP_ACT_ERRNO"}]
        }));
        for arch in ["aarch64", "riscv64", "x86", "s390x"] {
            let e = compile_for(&spec, arch).unwrap_err();
            let msg = e.to_string();
            assert_eq!(e.field(), "linux.seccomp", "{msg}");
            assert!(msg.contains(&format!("this {arch} host")), "{msg}");
            assert!(msg.contains("x86_64 only"), "{msg}");
            assert!(msg.contains("without a seccomp profile"), "{msg}");
        }
        let c = compile_for(&spec, "x86_64").unwrap().unwrap();
        assert_eq!(
            run(&c.program.filter, X86_64, nr("unshare"), NO),
            RET_ERRNO | EPERM
        );
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
        let mut nrs: Vec<u32> = x86_64::SYSCALLS.iter().map(|&(_, n)| n).collect();
        nrs.sort_unstable();
        nrs.dedup();
        assert_eq!(nrs.len(), x86_64::SYSCALLS.len());
        assert_eq!(Arch::X86_64.syscall_number("_llseek"), None);
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
        let names: Vec<String> = x86_64::SYSCALLS
            .iter()
            .map(|(n, _)| n.to_string())
            .collect();
        let rules: Vec<serde_json::Value> = (0..12)
            .map(|i| serde_json::json!({"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": i}))
            .collect();
        let e = err(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
        assert_eq!(e.field(), "linux.seccomp.syscalls");
        assert!(e.to_string().contains("at most 4096"), "{e}");
    }
}
