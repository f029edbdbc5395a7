//! The OCI process spec -> the init's config ([`lxcri_init::InitConfig`]).
//!
//! The init (`lxcri-init`, PID 1 of the container until Start) applies everything of
//! `process` plus `root.readonly`, `linux.maskedPaths` and `linux.readonlyPaths`; LXC does the
//! rest (see `lxcconf`). This module is pure: it checks the spec and fills the config, and every
//! error names the spec field it is about.

use lxcri_init::{cap_number, rlimit_resource, Capabilities, InitConfig, Rlimit};
use oci_spec::runtime::{Capabilities as OciCaps, Process, Spec};
use std::fmt;

/// A spec field the init cannot use: `process.args: empty: the container needs a command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessError {
    /// The spec field, as a JSON path: `process.rlimits[0]`.
    pub field: String,
    /// What is wrong with it and what to do.
    pub problem: String,
}

impl ProcessError {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> ProcessError {
        ProcessError {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

impl std::error::Error for ProcessError {}

/// The init's config for a container's main process: `process.*`, `root.readonly`,
/// `linux.maskedPaths` and `linux.readonlyPaths`.
pub fn init_config(spec: &Spec) -> Result<InitConfig, ProcessError> {
    let process = spec.process().as_ref().ok_or_else(|| {
        ProcessError::new(
            "process",
            "missing: the container needs a process section with its command",
        )
    })?;
    let mut cfg = from_process(process)?;
    cfg.readonly_rootfs = spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false);
    if let Some(linux) = spec.linux() {
        cfg.masked_paths = absolute_paths("linux.maskedPaths", linux.masked_paths())?;
        cfg.readonly_paths = absolute_paths("linux.readonlyPaths", linux.readonly_paths())?;
    }
    cfg.seccomp =
        crate::seccomp::compile(spec).map_err(|e| ProcessError::new(e.field(), e.to_string()))?;
    Ok(cfg)
}

/// The init's config for one process spec (the container's or, later, an exec'd one). The
/// container-wide fields (`readonly_rootfs`, masked and readonly paths) are left empty.
pub fn from_process(p: &Process) -> Result<InitConfig, ProcessError> {
    let args = p.args().clone().unwrap_or_default();
    if args.is_empty() {
        return Err(ProcessError::new(
            "process.args",
            "empty: the container needs a command",
        ));
    }
    if args[0].is_empty() {
        return Err(ProcessError::new(
            "process.args[0]",
            "empty: give the program to run",
        ));
    }
    for (i, a) in args.iter().enumerate() {
        if a.contains('\0') {
            return Err(ProcessError::new(
                format!("process.args[{i}]"),
                "contains a NUL byte, which cannot be passed to a program",
            ));
        }
    }

    let env = p.env().clone().unwrap_or_default();
    for (i, kv) in env.iter().enumerate() {
        let key = kv.split('=').next().unwrap_or("");
        if !kv.contains('=') || key.is_empty() || kv.contains('\0') {
            return Err(ProcessError::new(
                format!("process.env[{i}]"),
                format!("{kv:?} is not KEY=VALUE: write each variable as NAME=value"),
            ));
        }
    }

    let cwd = p.cwd().to_string_lossy().into_owned();
    if !cwd.starts_with('/') {
        return Err(ProcessError::new(
            "process.cwd",
            format!("{cwd:?} is not an absolute path: give the working directory as an absolute path inside the container"),
        ));
    }

    let user = p.user();
    let capabilities = Some(match p.capabilities() {
        Some(c) => Capabilities {
            bounding: cap_names("bounding", c.bounding())?,
            effective: cap_names("effective", c.effective())?,
            inheritable: cap_names("inheritable", c.inheritable())?,
            permitted: cap_names("permitted", c.permitted())?,
            ambient: cap_names("ambient", c.ambient())?,
        },
        // As runc: no capabilities section means no capabilities.
        None => Capabilities::default(),
    });

    let mut rlimits = Vec::new();
    for (i, r) in p.rlimits().iter().flatten().enumerate() {
        let field = format!("process.rlimits[{i}]");
        let typ = r.typ().to_string();
        rlimit_resource(&typ).map_err(|e| ProcessError::new(&field, e.to_string()))?;
        if r.soft() > r.hard() {
            return Err(ProcessError::new(
                field,
                format!(
                    "{typ}: soft limit {} is above hard limit {}: lower soft or raise hard",
                    r.soft(),
                    r.hard()
                ),
            ));
        }
        if rlimits.iter().any(|x: &Rlimit| x.typ == typ) {
            return Err(ProcessError::new(
                field,
                format!("{typ} is given twice: keep one"),
            ));
        }
        rlimits.push(Rlimit {
            typ,
            soft: r.soft(),
            hard: r.hard(),
        });
    }

    if let Some(adj) = p.oom_score_adj() {
        if !(-1000..=1000).contains(&adj) {
            return Err(ProcessError::new(
                "process.oomScoreAdj",
                format!("{adj} is out of range: give a value from -1000 to 1000"),
            ));
        }
    }

    if p.scheduler().is_some() {
        return Err(unsupported("process.scheduler"));
    }
    if p.io_priority().is_some() {
        return Err(unsupported("process.ioPriority"));
    }
    if p.exec_cpu_affinity().is_some() {
        return Err(unsupported("process.execCPUAffinity"));
    }

    Ok(InitConfig {
        args,
        env,
        cwd,
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask(),
        capabilities,
        no_new_privileges: p.no_new_privileges().unwrap_or(false),
        rlimits,
        oom_score_adj: p.oom_score_adj(),
        apparmor_profile: p.apparmor_profile().clone().filter(|s| !s.is_empty()),
        terminal: p.terminal().unwrap_or(false),
        console_size: p
            .console_size()
            .as_ref()
            .filter(|b| b.width() > 0 && b.height() > 0)
            .map(|b| {
                let clamp = |v: u64| v.min(u16::MAX as u64) as u16;
                (clamp(b.height()), clamp(b.width()))
            }),
        ..InitConfig::default()
    })
}

fn unsupported(field: &str) -> ProcessError {
    ProcessError::new(
        field,
        "not supported by lxcri yet: remove it from the spec or run this container with runc",
    )
}

/// A capability set as sorted, checked names (`CAP_SYS_ADMIN`); absent means empty.
fn cap_names(set: &str, caps: &Option<OciCaps>) -> Result<Vec<String>, ProcessError> {
    let mut names = Vec::new();
    for cap in caps.iter().flatten() {
        // oci-spec displays `SYS_ADMIN`; the init takes the kernel's `CAP_SYS_ADMIN`.
        let name = format!("CAP_{cap}");
        cap_number(&name)
            .map_err(|e| ProcessError::new(format!("process.capabilities.{set}"), e.to_string()))?;
        names.push(name);
    }
    names.sort_by_key(|n| cap_number(n).unwrap_or(u32::MAX));
    names.dedup();
    Ok(names)
}

fn absolute_paths(field: &str, paths: &Option<Vec<String>>) -> Result<Vec<String>, ProcessError> {
    let paths = paths.clone().unwrap_or_default();
    for (i, p) in paths.iter().enumerate() {
        if !p.starts_with('/') || p.contains('\0') {
            return Err(ProcessError::new(
                format!("{field}[{i}]"),
                format!("{p:?} is not an absolute path: give paths as seen inside the container"),
            ));
        }
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).expect("test spec parses")
    }

    const FULL: &str = r#"{
        "ociVersion": "1.1.0",
        "root": {"path": "rootfs", "readonly": true},
        "process": {
            "terminal": true,
            "consoleSize": {"height": 40, "width": 132},
            "user": {"uid": 1000, "gid": 100, "additionalGids": [10, 20], "umask": 18},
            "args": ["sh", "-c", "echo hi"],
            "env": ["PATH=/usr/bin:/bin", "HOME=/home/u", "EMPTY="],
            "cwd": "/home/u",
            "capabilities": {
                "bounding": ["CAP_KILL", "CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_KILL"],
                "permitted": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "inheritable": ["CAP_NET_BIND_SERVICE"],
                "ambient": ["CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}],
            "noNewPrivileges": true,
            "oomScoreAdj": 500,
            "apparmorProfile": "lxcri-default"
        },
        "linux": {
            "maskedPaths": ["/proc/kcore", "/sys/firmware"],
            "readonlyPaths": ["/proc/sys"]
        }
    }"#;

    #[test]
    fn maps_every_field() {
        let c = init_config(&spec(FULL)).unwrap();
        assert_eq!(c.args, vec!["sh", "-c", "echo hi"]);
        assert_eq!(c.env, vec!["PATH=/usr/bin:/bin", "HOME=/home/u", "EMPTY="]);
        assert_eq!(c.cwd, "/home/u");
        assert_eq!((c.uid, c.gid), (1000, 100));
        assert_eq!(c.additional_gids, vec![10, 20]);
        assert_eq!(c.umask, Some(0o22));
        let caps = c.capabilities.as_ref().unwrap();
        assert_eq!(
            caps.bounding,
            vec!["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
        );
        assert_eq!(caps.effective, vec!["CAP_KILL"]);
        assert_eq!(caps.permitted, vec!["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
        assert_eq!(caps.inheritable, vec!["CAP_NET_BIND_SERVICE"]);
        assert_eq!(caps.ambient, vec!["CAP_NET_BIND_SERVICE"]);
        assert_eq!(
            c.rlimits,
            vec![Rlimit {
                typ: "RLIMIT_NOFILE".into(),
                soft: 100,
                hard: 200
            }]
        );
        assert!(c.no_new_privileges);
        assert_eq!(c.oom_score_adj, Some(500));
        assert_eq!(c.apparmor_profile.as_deref(), Some("lxcri-default"));
        assert_eq!(c.console_size, Some((40, 132)), "(rows, columns)");
        assert!(c.readonly_rootfs);
        assert!(c.terminal);
        assert_eq!(c.masked_paths, vec!["/proc/kcore", "/sys/firmware"]);
        assert_eq!(c.readonly_paths, vec!["/proc/sys"]);
    }

    #[test]
    fn minimal_spec_gets_safe_defaults() {
        let c = init_config(&spec(
            r#"{"ociVersion": "1.1.0", "process": {"user": {"uid": 0, "gid": 0},
                "args": ["/bin/true"], "cwd": "/"}}"#,
        ))
        .unwrap();
        assert_eq!(c.args, vec!["/bin/true"]);
        assert!(c.env.is_empty());
        // No capabilities section: no capabilities (as runc), not "keep LXC's".
        assert_eq!(c.capabilities, Some(Capabilities::default()));
        assert!(!c.readonly_rootfs && !c.no_new_privileges && !c.terminal);
        assert_eq!(c.umask, None);
        assert_eq!(c.oom_score_adj, None);
        assert_eq!(c.apparmor_profile, None);
        assert!(c.masked_paths.is_empty() && c.readonly_paths.is_empty());
    }

    fn err_of(json: &str) -> String {
        init_config(&spec(json)).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            err_of(r#"{"ociVersion": "1.1.0"}"#),
            "process: missing: the container needs a process section with its command"
        );
        assert_eq!(
            err_of(
                r#"{"ociVersion": "1.1.0", "process": {"user": {"uid": 0, "gid": 0}, "args": [], "cwd": "/"}}"#
            ),
            "process.args: empty: the container needs a command"
        );
        assert_eq!(
            err_of(
                r#"{"ociVersion": "1.1.0", "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/"}}"#
            ),
            "process.args: empty: the container needs a command"
        );
        assert!(err_of(
            r#"{"ociVersion": "1.1.0", "process": {"user": {"uid": 0, "gid": 0}, "args": [""], "cwd": "/"}}"#
        )
        .starts_with("process.args[0]: empty"));
        let e = err_of(
            r#"{"ociVersion": "1.1.0", "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/", "env": ["A=1", "JUNK"]}}"#,
        );
        assert!(
            e.starts_with("process.env[1]: \"JUNK\" is not KEY=VALUE"),
            "{e}"
        );
        let e = err_of(
            r#"{"ociVersion": "1.1.0", "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "tmp"}}"#,
        );
        assert!(
            e.starts_with("process.cwd: \"tmp\" is not an absolute path"),
            "{e}"
        );
        let e = err_of(
            r#"{"ociVersion": "1.1.0", "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/",
                "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 300, "hard": 200}]}}"#,
        );
        assert!(
            e.starts_with(
                "process.rlimits[0]: RLIMIT_NOFILE: soft limit 300 is above hard limit 200"
            ),
            "{e}"
        );
        let e = err_of(
            r#"{"ociVersion": "1.1.0", "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/",
                "rlimits": [{"type": "RLIMIT_CORE", "soft": 0, "hard": 0}, {"type": "RLIMIT_CORE", "soft": 1, "hard": 1}]}}"#,
        );
        assert!(
            e.starts_with("process.rlimits[1]: RLIMIT_CORE is given twice"),
            "{e}"
        );
        let e = err_of(
            r#"{"ociVersion": "1.1.0", "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/", "oomScoreAdj": 1001}}"#,
        );
        assert!(
            e.starts_with("process.oomScoreAdj: 1001 is out of range"),
            "{e}"
        );
        let e = err_of(
            r#"{"ociVersion": "1.1.0", "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/"},
                "linux": {"maskedPaths": ["/proc/kcore", "proc/keys"]}}"#,
        );
        assert!(
            e.starts_with("linux.maskedPaths[1]: \"proc/keys\" is not an absolute path"),
            "{e}"
        );
        let e = err_of(
            r#"{"ociVersion": "1.1.0", "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/"},
                "linux": {"readonlyPaths": ["sys"]}}"#,
        );
        assert!(e.starts_with("linux.readonlyPaths[0]:"), "{e}");
        let e = err_of(
            r#"{"ociVersion": "1.1.0", "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/",
                "scheduler": {"policy": "SCHED_OTHER"}}}"#,
        );
        assert!(e.starts_with("process.scheduler: not supported"), "{e}");
    }

    #[test]
    fn every_oci_capability_is_known_to_the_init() {
        let all: Vec<String> = (0..=lxcri_init::CAP_LAST_KNOWN)
            .map(|n| format!("\"{}\"", lxcri_init::cap_name(n).unwrap()))
            .collect();
        let json = format!(
            r#"{{"ociVersion": "1.1.0", "process": {{"user": {{"uid": 0, "gid": 0}}, "args": ["sh"], "cwd": "/",
                "capabilities": {{"bounding": [{}]}}}}}}"#,
            all.join(",")
        );
        let c = init_config(&spec(&json)).unwrap();
        let bounding = &c.capabilities.unwrap().bounding;
        assert_eq!(bounding.len(), all.len());
        assert_eq!(bounding[21], "CAP_SYS_ADMIN");
        assert_eq!(bounding[40], "CAP_CHECKPOINT_RESTORE");
    }

    #[test]
    fn from_process_leaves_container_fields_empty() {
        let s = spec(FULL);
        let c = from_process(s.process().as_ref().unwrap()).unwrap();
        assert!(!c.readonly_rootfs);
        assert!(c.masked_paths.is_empty() && c.readonly_paths.is_empty());
        assert_eq!(c.uid, 1000);
    }

    #[test]
    fn the_config_round_trips_as_json() {
        let c = init_config(&spec(FULL)).unwrap();
        let back: InitConfig = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn seccomp_profile_is_compiled_for_the_init() {
        let mut v: serde_json::Value = serde_json::from_str(FULL).unwrap();
        v["linux"]["seccomp"] = serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]
        });
        let cfg = init_config(&serde_json::from_value(v.clone()).unwrap()).unwrap();
        let prog = cfg.seccomp.expect("a program");
        assert_eq!(prog.flags, 2);
        assert!(!prog.filter.is_empty());
        assert_eq!(init_config(&spec(FULL)).unwrap().seccomp, None);

        v["linux"]["seccomp"]["defaultAction"] = "SCMP_ACT_NOTIFY".into();
        let e = init_config(&serde_json::from_value(v).unwrap()).unwrap_err();
        assert_eq!(e.field, "linux.seccomp.defaultAction");
    }
}
