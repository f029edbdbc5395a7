//! lxcri-init: the contract between the shim and the container's init.
//!
//! The shim writes an [`InitConfig`] as JSON to `<run dir>/init.json`; LXC starts the static
//! `lxcri-init` binary (bind-mounted at [`INIT_PATH`]) as the container's PID 1. The init applies
//! the process spec, reports one [`Status`] line through [`STATUS_FIFO`], waits on [`EXEC_FIFO`]
//! until the shim's Start, then execs the user's process.
//!
//! This crate is linked into a static binary that is bind-mounted into every container: it
//! depends on serde, serde_json and libc only.

pub mod apply;
pub mod terminal;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Component, Path, PathBuf};

/// Where the init binary is bind-mounted (read-only) inside the container.
pub const INIT_PATH: &str = "/.lxcri/init";
/// The directory that holds our files inside the container (hidden before the exec).
pub const LXCRI_DIR: &str = "/.lxcri";
/// Where the container's runtime dir (host: `<lxcpath>/<id>/lxcri/`) is bind-mounted (rw).
pub const RUN_DIR: &str = "/.lxcri/run";
/// File name, in the run dir, of the JSON [`InitConfig`].
pub const INIT_JSON: &str = "init.json";
/// File name, in the run dir, of the FIFO the init reports its [`Status`] line through.
pub const STATUS_FIFO: &str = "status.fifo";
/// File name, in the run dir, of the FIFO the init blocks on until Start.
pub const EXEC_FIFO: &str = "exec.fifo";

/// The highest capability number this crate knows (`CAP_CHECKPOINT_RESTORE`, Linux 5.9).
pub const CAP_LAST_KNOWN: u32 = 40;

/// An error of this crate's helpers: a complete message naming the object and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitError(pub String);

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InitError {}

/// Everything the init applies before exec'ing the user's process (the OCI `process` section
/// plus `root.readonly`, `linux.maskedPaths` and `linux.readonlyPaths`).
///
/// Unknown fields are ignored (a newer shim may send more), and absent fields take their
/// defaults, so the format is forward and backward compatible.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct InitConfig {
    /// argv of the user's process; `args[0]` is resolved through `PATH` from `env`.
    pub args: Vec<String>,
    /// The user's environment, exactly (`KEY=VALUE`); nothing else is passed.
    pub env: Vec<String>,
    /// Working directory inside the container (absolute). Empty means `/`.
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// umask to set; `None` keeps the inherited one.
    pub umask: Option<u32>,
    /// Capability sets; `None` keeps what LXC gave the init (all of them).
    pub capabilities: Option<Capabilities>,
    pub no_new_privileges: bool,
    pub rlimits: Vec<Rlimit>,
    /// Written to `/proc/self/oom_score_adj` when set.
    pub oom_score_adj: Option<i32>,
    /// AppArmor profile for the exec; applied only when the host has AppArmor.
    pub apparmor_profile: Option<String>,
    /// Remount `/` read-only.
    pub readonly_rootfs: bool,
    /// Paths hidden from the process (`/dev/null` over files, an empty read-only tmpfs over dirs).
    pub masked_paths: Vec<String>,
    /// Paths remounted read-only.
    pub readonly_paths: Vec<String>,
    /// Whether the process gets a terminal: its stdin is then the shim's socket, over which
    /// [`terminal::attach_terminal`] hands over the pty it opens.
    pub terminal: bool,
    /// The terminal's first window size, (rows, columns), from `process.consoleSize`; ctr sets
    /// it so that the process never sees a 0x0 terminal before the first ResizePty.
    pub console_size: Option<(u16, u16)>,
    /// The spec's `linux.seccomp`, compiled by the shim; loaded by [`apply`] as runc does:
    /// right before the execve with `no_new_privileges`, else before the identity change.
    pub seccomp: Option<SeccompProgram>,
}

/// A seccomp filter compiled by the shim: classic BPF for `seccomp(SECCOMP_SET_MODE_FILTER)`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeccompProgram {
    /// `SECCOMP_FILTER_FLAG_*` bits passed to seccomp(2).
    pub flags: u32,
    /// The instructions, each `struct sock_filter` packed as
    /// `code | jt << 16 | jf << 24 | k << 32`.
    pub filter: Vec<u64>,
}

/// The five capability sets, as names like `CAP_SYS_ADMIN`. An empty set means none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Capabilities {
    pub bounding: Vec<String>,
    pub effective: Vec<String>,
    pub inheritable: Vec<String>,
    pub permitted: Vec<String>,
    pub ambient: Vec<String>,
}

/// One resource limit: `{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    #[serde(rename = "type")]
    pub typ: String,
    pub soft: u64,
    pub hard: u64,
}

/// The one line of JSON the init writes to the status FIFO:
/// `{"ok":true}` or `{"ok":false,"error":"..."}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Status {
    pub fn ok() -> Status {
        Status {
            ok: true,
            error: None,
        }
    }

    pub fn failed(error: impl Into<String>) -> Status {
        Status {
            ok: false,
            error: Some(error.into()),
        }
    }

    /// The status as one line of JSON, newline included.
    pub fn to_line(&self) -> String {
        // Serializing two plain fields cannot fail; keep a fallback anyway (no panics).
        let mut line = serde_json::to_string(self)
            .unwrap_or_else(|_| String::from(r#"{"ok":false,"error":"status: cannot encode"}"#));
        line.push('\n');
        line
    }

    /// Parses the line the init wrote. An empty input means the init died before reporting.
    pub fn parse_line(line: &str) -> Result<Status, InitError> {
        let line = line.trim();
        if line.is_empty() {
            return Err(InitError(format!(
                "{STATUS_FIFO}: the container's init closed it without a status line: it died \
                 before applying the process spec (see the container's stderr)"
            )));
        }
        serde_json::from_str(line).map_err(|e| {
            InitError(format!(
                "{STATUS_FIFO}: cannot parse the init's status line {line:?}: {e}: the init and \
                 the shim are probably from different versions"
            ))
        })
    }
}

/// Linux capability names, indexed by their number (`capability.h`, Linux 6.x).
const CAP_NAMES: [&str; CAP_LAST_KNOWN as usize + 1] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The number of a capability given by name: `CAP_SYS_ADMIN` (the `CAP_` prefix is optional,
/// case is ignored, as in the OCI runtime spec's users).
pub fn cap_number(name: &str) -> Result<u32, InitError> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    CAP_NAMES
        .iter()
        .position(|n| *n == full)
        .map(|i| i as u32)
        .ok_or_else(|| {
            InitError(format!(
                "capability {name:?}: unknown: use a Linux capability name such as CAP_SYS_ADMIN \
                 (known: CAP_CHOWN .. CAP_CHECKPOINT_RESTORE)"
            ))
        })
}

/// The name of capability number `n`, if known.
pub fn cap_name(n: u32) -> Option<&'static str> {
    CAP_NAMES.get(n as usize).copied()
}

/// The bit mask of a set of capability names (bit `n` for capability number `n`).
pub fn cap_mask<S: AsRef<str>>(names: &[S]) -> Result<u64, InitError> {
    let mut mask = 0u64;
    for name in names {
        mask |= 1u64 << cap_number(name.as_ref())?;
    }
    Ok(mask)
}

/// Parses the content of `/proc/sys/kernel/cap_last_cap`.
pub fn parse_cap_last_cap(content: &str) -> Result<u32, InitError> {
    content.trim().parse::<u32>().map_err(|e| {
        InitError(format!(
            "/proc/sys/kernel/cap_last_cap: {:?} is not a number: {e}",
            content.trim()
        ))
    })
}

/// The running kernel's last capability number; [`CAP_LAST_KNOWN`] when it cannot be read.
pub fn cap_last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|c| parse_cap_last_cap(&c).ok())
        .unwrap_or(CAP_LAST_KNOWN)
}

/// The capabilities to drop from the bounding set: every capability the running kernel knows
/// (`0..=last_cap`) that is not in `keep`. Capabilities beyond the kernel's `last_cap` are
/// skipped, since the kernel cannot drop what it does not have.
pub fn bounding_drops(keep: u64, last_cap: u32) -> Vec<u32> {
    (0..=last_cap.min(63))
        .filter(|n| keep & (1u64 << n) == 0)
        .collect()
}

/// The resource number of an rlimit name such as `RLIMIT_NOFILE`.
pub fn rlimit_resource(name: &str) -> Result<u32, InitError> {
    let r = match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => {
            return Err(InitError(format!(
                "rlimit {name:?}: unknown type: use one of RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_DATA, \
                 RLIMIT_STACK, RLIMIT_CORE, RLIMIT_RSS, RLIMIT_NPROC, RLIMIT_NOFILE, \
                 RLIMIT_MEMLOCK, RLIMIT_AS, RLIMIT_LOCKS, RLIMIT_SIGPENDING, RLIMIT_MSGQUEUE, \
                 RLIMIT_NICE, RLIMIT_RTPRIO, RLIMIT_RTTIME"
            )))
        }
    };
    #[allow(clippy::unnecessary_cast)] // the type differs between glibc and musl
    Ok(r as u32)
}

/// The value of `PATH` in an environment list (`KEY=VALUE`). When `PATH` is given more than
/// once the last assignment wins, as in runc (which builds its environment with `Setenv`).
pub fn env_path(env: &[String]) -> Option<&str> {
    env.iter().rev().find_map(|kv| kv.strip_prefix("PATH="))
}

/// Resolves the program `arg0` the way the user's process will be exec'd (Go's
/// `exec.LookPath`, as runc does it): a name containing `/` is used as it is (relative to `cwd`
/// when relative), otherwise each directory of `PATH` (from `env`) is tried in order.
///
/// All paths are taken inside the container whose root is `root` on this host (the init passes
/// `/`); symbolic links are resolved inside `root`. Returns the path to exec, as the container
/// sees it. Errors use runc's wording: `exec: "foo": executable file not found in $PATH`.
pub fn lookup_path(
    root: &Path,
    cwd: &str,
    arg0: &str,
    env: &[String],
) -> Result<String, InitError> {
    if arg0.is_empty() {
        return Err(InitError(
            "exec: \"\": executable file not found in $PATH: process.args[0] is empty".into(),
        ));
    }
    if arg0.contains('/') {
        return match check_executable(root, cwd, arg0) {
            Ok(()) => Ok(arg0.to_string()),
            Err(why) => Err(InitError(format!("exec: {arg0:?}: {why}"))),
        };
    }
    let path = env_path(env).unwrap_or("");
    if !path.is_empty() {
        for dir in path.split(':') {
            let dir = if dir.is_empty() { "." } else { dir };
            let candidate = format!("{}/{arg0}", dir.trim_end_matches('/'));
            if check_executable(root, cwd, &candidate).is_ok() {
                return Ok(candidate);
            }
        }
    }
    Err(InitError(format!(
        "exec: {arg0:?}: executable file not found in $PATH"
    )))
}

/// Go's `findExecutable`: a regular (non-directory) file with an execute bit.
fn check_executable(root: &Path, cwd: &str, path: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let full = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{path}", if cwd.is_empty() { "/" } else { cwd })
    };
    let host = resolve_in_root(root, &full).map_err(|e| format!("stat {path}: {e}"))?;
    let meta = std::fs::metadata(&host).map_err(|e| format!("stat {path}: {}", io_text(&e)))?;
    if meta.is_dir() {
        return Err(format!("stat {path}: is a directory"));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!("stat {path}: permission denied"));
    }
    Ok(())
}

/// The text of an io error without Rust's " (os error N)" suffix, like strerror.
pub fn io_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// The host path of `path` (absolute, inside the container) with every symbolic link resolved
/// inside `root`, as the container would see it. The last component need not exist.
pub fn resolve_in_root(root: &Path, path: &str) -> Result<PathBuf, String> {
    const MAX_LINKS: u32 = 40;
    let mut links = 0;
    // Components still to walk, in reverse order (a stack).
    let mut todo: Vec<String> = Vec::new();
    push_components(&mut todo, path);
    let mut done: Vec<String> = Vec::new();
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "." | "" => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        let mut host = root.to_path_buf();
        host.extend(done.iter());
        host.push(&c);
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err("too many levels of symbolic links".into());
                }
                let target = std::fs::read_link(&host).map_err(|e| io_text(&e))?;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    done.clear();
                }
                push_components(&mut todo, &target);
            }
            Ok(_) => done.push(c),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && todo.is_empty() => done.push(c),
            Err(e) => return Err(io_text(&e)),
        }
    }
    let mut host = root.to_path_buf();
    host.extend(done.iter());
    Ok(host)
}

fn push_components(todo: &mut Vec<String>, path: &str) {
    let comps: Vec<String> = Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    todo.extend(comps.into_iter().rev());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn cap_numbers_match_the_kernel_header() {
        assert_eq!(cap_number("CAP_CHOWN"), Ok(0));
        assert_eq!(cap_number("CAP_NET_BIND_SERVICE"), Ok(10));
        assert_eq!(cap_number("CAP_SYS_ADMIN"), Ok(21));
        assert_eq!(cap_number("CAP_AUDIT_WRITE"), Ok(29));
        assert_eq!(cap_number("CAP_SETFCAP"), Ok(31));
        assert_eq!(cap_number("CAP_AUDIT_READ"), Ok(37));
        assert_eq!(cap_number("CAP_PERFMON"), Ok(38));
        assert_eq!(cap_number("CAP_BPF"), Ok(39));
        assert_eq!(cap_number("CAP_CHECKPOINT_RESTORE"), Ok(40));
        assert_eq!(cap_number("sys_admin"), Ok(21));
        for n in 0..=CAP_LAST_KNOWN {
            let name = cap_name(n).expect("every number up to CAP_LAST_KNOWN has a name");
            assert_eq!(cap_number(name), Ok(n));
        }
        assert_eq!(cap_name(CAP_LAST_KNOWN + 1), None);
    }

    #[test]
    fn unknown_cap_is_an_error_naming_it() {
        let e = cap_number("CAP_FLY").unwrap_err();
        assert!(e.0.contains("\"CAP_FLY\""), "{e}");
        assert!(e.0.contains("unknown"), "{e}");
        assert!(cap_mask(&["CAP_KILL", "CAP_NOPE"])
            .unwrap_err()
            .0
            .contains("CAP_NOPE"));
    }

    #[test]
    fn cap_mask_sets_one_bit_per_cap() {
        assert_eq!(cap_mask::<&str>(&[]), Ok(0));
        assert_eq!(
            cap_mask(&["CAP_CHOWN", "CAP_KILL", "CAP_CHECKPOINT_RESTORE"]),
            Ok(1 | (1 << 5) | (1 << 40))
        );
    }

    #[test]
    fn bounding_drops_skip_caps_beyond_the_kernel() {
        let keep = cap_mask(&["CAP_CHOWN", "CAP_KILL"]).unwrap();
        let drops = bounding_drops(keep, 37);
        assert_eq!(drops.len(), 38 - 2);
        assert!(!drops.contains(&0) && !drops.contains(&5));
        assert!(drops.contains(&21) && drops.contains(&37));
        assert!(!drops.contains(&38), "CAP_PERFMON is beyond this kernel");
        assert_eq!(bounding_drops(u64::MAX, 40), Vec::<u32>::new());
        assert_eq!(parse_cap_last_cap("40\n"), Ok(40));
        assert!(parse_cap_last_cap("x").is_err());
    }

    #[test]
    #[allow(clippy::unnecessary_cast)] // the type differs between glibc and musl
    fn rlimit_names() {
        assert_eq!(
            rlimit_resource("RLIMIT_NOFILE"),
            Ok(libc::RLIMIT_NOFILE as u32)
        );
        assert_eq!(rlimit_resource("RLIMIT_CPU"), Ok(libc::RLIMIT_CPU as u32));
        assert_eq!(
            rlimit_resource("RLIMIT_RTTIME"),
            Ok(libc::RLIMIT_RTTIME as u32)
        );
        let e = rlimit_resource("RLIMIT_FUN").unwrap_err();
        assert!(e.0.contains("\"RLIMIT_FUN\""), "{e}");
    }

    #[test]
    fn status_lines() {
        assert_eq!(Status::ok().to_line(), "{\"ok\":true}\n");
        let f = Status::failed("setgid 1000: Operation not permitted");
        assert_eq!(
            f.to_line(),
            "{\"ok\":false,\"error\":\"setgid 1000: Operation not permitted\"}\n"
        );
        assert_eq!(Status::parse_line(&f.to_line()), Ok(f));
        assert_eq!(Status::parse_line("{\"ok\":true}"), Ok(Status::ok()));
        assert!(Status::parse_line("").unwrap_err().0.contains("died"));
        assert!(Status::parse_line("garbage").is_err());
    }

    #[test]
    fn init_config_is_forward_compatible() {
        let c: InitConfig = serde_json::from_str(
            r#"{"args":["sh"],"uid":5,"future_field":{"x":1},
                "capabilities":{"bounding":["CAP_KILL"]},
                "rlimits":[{"type":"RLIMIT_NOFILE","soft":10,"hard":20}]}"#,
        )
        .unwrap();
        assert_eq!(c.args, vec!["sh"]);
        assert_eq!(c.uid, 5);
        assert_eq!(c.cwd, "");
        assert_eq!(c.capabilities.as_ref().unwrap().bounding, vec!["CAP_KILL"]);
        assert!(c.capabilities.as_ref().unwrap().ambient.is_empty());
        assert_eq!(c.rlimits[0].typ, "RLIMIT_NOFILE");
        let back: InitConfig = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    struct Root(PathBuf);
    impl Drop for Root {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn make_root(tag: &str) -> Root {
        let dir =
            std::env::temp_dir().join(format!("lxcri-init-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::create_dir_all(dir.join("usr/bin")).unwrap();
        std::fs::create_dir_all(dir.join("work")).unwrap();
        let exe = |p: &str, mode: u32| {
            std::fs::write(dir.join(p), b"#!/bin/sh\n").unwrap();
            std::fs::set_permissions(dir.join(p), std::fs::Permissions::from_mode(mode)).unwrap();
        };
        exe("bin/busybox", 0o755);
        exe("usr/bin/data", 0o644);
        exe("work/tool", 0o700);
        std::fs::create_dir_all(dir.join("usr/bin/adir")).unwrap();
        // Absolute link: must resolve inside the root, not on the host.
        symlink("/bin/busybox", dir.join("bin/sh")).unwrap();
        symlink("../../bin/busybox", dir.join("usr/bin/env")).unwrap();
        symlink("/nowhere", dir.join("bin/dangling")).unwrap();
        Root(dir)
    }

    fn env(path: &str) -> Vec<String> {
        vec!["HOME=/".into(), format!("PATH={path}")]
    }

    #[test]
    fn lookup_through_path() {
        let r = make_root("path");
        let root = &r.0;
        assert_eq!(
            lookup_path(root, "/", "sh", &env("/usr/bin:/bin")).unwrap(),
            "/bin/sh"
        );
        assert_eq!(
            lookup_path(root, "/", "env", &env("/usr/bin:/bin")).unwrap(),
            "/usr/bin/env"
        );
        // Not executable and directories are skipped, as Go's LookPath does.
        let e = lookup_path(root, "/", "data", &env("/usr/bin:/bin")).unwrap_err();
        assert_eq!(e.0, "exec: \"data\": executable file not found in $PATH");
        assert!(lookup_path(root, "/", "adir", &env("/usr/bin")).is_err());
        assert!(lookup_path(root, "/", "dangling", &env("/bin")).is_err());
        // No PATH at all: nothing is found.
        let e = lookup_path(root, "/", "sh", &["HOME=/".to_string()]).unwrap_err();
        assert_eq!(e.0, "exec: \"sh\": executable file not found in $PATH");
        // An empty PATH element means the working directory.
        assert_eq!(
            lookup_path(root, "/work", "tool", &env("/bin:")).unwrap(),
            "./tool"
        );
        // The last PATH assignment wins.
        let twice = vec!["PATH=/nothing".to_string(), "PATH=/bin".to_string()];
        assert_eq!(lookup_path(root, "/", "sh", &twice).unwrap(), "/bin/sh");
    }

    #[test]
    fn lookup_with_a_slash_uses_the_name() {
        let r = make_root("slash");
        let root = &r.0;
        assert_eq!(lookup_path(root, "/", "/bin/sh", &[]).unwrap(), "/bin/sh");
        assert_eq!(lookup_path(root, "/work", "./tool", &[]).unwrap(), "./tool");
        assert_eq!(
            lookup_path(root, "/bin", "../work/tool", &[]).unwrap(),
            "../work/tool"
        );
        let e = lookup_path(root, "/", "/bin/nope", &env("/bin")).unwrap_err();
        assert_eq!(
            e.0,
            "exec: \"/bin/nope\": stat /bin/nope: No such file or directory"
        );
        let e = lookup_path(root, "/", "/usr/bin/data", &[]).unwrap_err();
        assert_eq!(
            e.0,
            "exec: \"/usr/bin/data\": stat /usr/bin/data: permission denied"
        );
        let e = lookup_path(root, "/", "/usr/bin/adir", &[]).unwrap_err();
        assert!(e.0.contains("is a directory"), "{e}");
        assert!(lookup_path(root, "/", "", &env("/bin")).is_err());
    }

    #[test]
    fn resolve_stays_inside_the_root() {
        let r = make_root("resolve");
        let root = &r.0;
        assert_eq!(
            resolve_in_root(root, "/bin/sh").unwrap(),
            root.join("bin/busybox")
        );
        assert_eq!(
            resolve_in_root(root, "/../../bin/sh").unwrap(),
            root.join("bin/busybox")
        );
        assert_eq!(
            resolve_in_root(root, "/usr/bin/env").unwrap(),
            root.join("bin/busybox")
        );
        symlink("loop", root.join("bin/loop")).unwrap();
        assert!(resolve_in_root(root, "/bin/loop/x")
            .unwrap_err()
            .contains("symbolic links"));
    }
}
