//! OCI runtime spec -> LXC configuration keys.
//!
//! [`translate`] is a pure function: from an [`oci_spec::runtime::Spec`] and the host facts in
//! [`Options`] it computes the ordered list of `lxc.container.conf(5)` keys of one container.
//! It reads no file and starts no process; the shim gathers the facts (`/proc/filesystems`,
//! the cgroup layout, AppArmor) and writes the result with [`LxcConfig::render`].
//!
//! The division of labour (see the shim/LXC/init contract): LXC sets up the rootfs,
//! namespaces, the spec's mounts, devices, hostname, sysctls, cgroups and the network
//! namespace; the container's init (`/.lxcri/init`, bind-mounted from the host) applies
//! everything of `process` plus `root.readonly`, `linux.maskedPaths` and
//! `linux.readonlyPaths`; the shim runs the OCI `hooks` itself (`crate::hooks`). So this
//! module validates nothing of `process` beyond what LXC would have to express, and leaves
//! those fields alone.
//!
//! Anything the spec asks for that neither LXC nor the init does is an error here, never a
//! silent omission.
//!
//! One `configure_*` function per concern, each citing the keys it sets. The seccomp compiler is
//! not here (it sets no LXC key): see `crate::seccomp`.

mod cgroup_keys;
mod error;
mod mounts;
mod namespaces;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

pub use error::TranslateError;
pub use mounts::{check_mount_targets, resolve_mount_destinations};

/// Where the host's cgroup controllers live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CgroupMode {
    /// Legacy or hybrid: the controllers are on cgroup v1 hierarchies (`lxc.cgroup.*` keys).
    V1,
    /// Unified: everything on cgroup v2 (`lxc.cgroup2.*` keys).
    #[default]
    V2,
}

/// Host facts and paths the translation needs. `translate` never looks them up itself.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Host path of the mounted rootfs (`<bundle>/rootfs`); relative bind-mount sources are
    /// resolved against its parent, the bundle directory.
    pub rootfs: PathBuf,
    /// Host path of the static `lxcri-init`, bind-mounted read-only at `/.lxcri/init`.
    pub init_path: PathBuf,
    /// Host directory bind-mounted read-write at `/.lxcri/run`.
    pub runtime_dir: PathBuf,
    /// The host's cgroup layout.
    pub cgroup: CgroupMode,
    /// `lxc.log.file`.
    pub log_file: PathBuf,
    /// `lxc.log.level`, e.g. `"WARN"`.
    pub log_level: String,
    /// File system types from `/proc/filesystems`; empty = do not check mount types.
    pub known_fs_types: BTreeSet<String>,
    /// Whether the host has AppArmor enabled.
    pub host_has_apparmor: bool,
    /// Host paths, among the spec's bind-mount sources (relative ones resolved against the
    /// bundle), that are not directories: the shim `stat`s them, e.g. with
    /// [`file_bind_sources`]. A bind of one of these gets `create=file`, every other bind
    /// `create=dir`.
    pub file_bind_sources: BTreeSet<PathBuf>,
    /// The LXC container directory (`<lxcpath>/<id>`), where the shim writes the `config` and
    /// every file of [`LxcConfig::files`]: keys that name such a file use this path.
    pub config_dir: PathBuf,
}

/// `stat`s every bind-mount source of `spec` (relative ones against the parent of `rootfs`,
/// the bundle) and returns those that exist and are not directories, for
/// [`Options::file_bind_sources`]. Missing sources are left out: LXC's mount then fails
/// with the source's name in its log.
pub fn file_bind_sources(spec: &Spec, rootfs: &Path) -> BTreeSet<PathBuf> {
    let mut files = BTreeSet::new();
    for m in spec.mounts().iter().flatten() {
        if !mounts::is_bind(m) {
            continue;
        }
        if let Some(src) = m.source() {
            let host = match rootfs.parent() {
                Some(bundle) if src.is_relative() => bundle.join(src),
                _ => src.clone(),
            };
            if std::fs::metadata(&host).is_ok_and(|md| !md.is_dir()) {
                files.insert(host);
            }
        }
    }
    files
}

/// Path of the directory inside the container where the init and its runtime dir appear.
pub const LXCRI_DIR: &str = "/.lxcri";
/// Path of the init inside the container (`lxc.init.cmd`).
pub const INIT_IN_CONTAINER: &str = "/.lxcri/init";
/// Path of the runtime directory inside the container.
pub const RUN_IN_CONTAINER: &str = "/.lxcri/run";

/// An LXC configuration: an ordered list of `(key, value)` pairs. Keys may repeat
/// (`lxc.mount.entry`, `lxc.idmap`, device rules): the order is significant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LxcConfig {
    items: Vec<(String, String)>,
    notes: Vec<String>,
    files: Vec<(String, String)>,
}

impl LxcConfig {
    /// Files the shim writes into [`Options::config_dir`] before starting LXC: (file name,
    /// content), for keys that take a file (a seccomp policy, for one).
    pub fn files(&self) -> &[(String, String)] {
        &self.files
    }

    /// All pairs, in order.
    pub fn items(&self) -> &[(String, String)] {
        &self.items
    }

    /// Every value of `key`, in order.
    pub fn get_all(&self, key: &str) -> Vec<&str> {
        self.items
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// What the spec asks for that the init, not LXC, applies (one line each).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The config file text: a header comment (with the [`notes`](Self::notes)), then one
    /// `key = value` line per pair.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# Generated by lxcri from the container's OCI runtime spec (config.json).\n\
             # Do not edit: it is rewritten on every create.\n",
        );
        for n in &self.notes {
            out.push_str("# ");
            out.push_str(n);
            out.push('\n');
        }
        for (k, v) in &self.items {
            out.push_str(k);
            out.push_str(" = ");
            out.push_str(v);
            out.push('\n');
        }
        out
    }

    fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.items.push((key.into(), value.into()));
    }
}

/// Translates an OCI runtime spec into LXC configuration keys.
///
/// Pure: no file system or process access; host facts come from `opts`.
pub fn translate(spec: &Spec, opts: &Options) -> Result<LxcConfig, TranslateError> {
    check_unsupported(spec)?;
    let mut cfg = LxcConfig::default();
    note_left_to_init(&mut cfg, spec);
    note_hooks(&mut cfg, spec)?;
    let ns = namespaces::Namespaces::from_spec(spec)?;
    configure_logging(&mut cfg, opts)?;
    configure_rootfs(&mut cfg, spec, opts)?;
    configure_init(&mut cfg, opts)?;
    configure_console(&mut cfg, spec);
    configure_apparmor_selinux(&mut cfg, spec)?;
    namespaces::configure_namespaces(&mut cfg, spec, &ns)?;
    configure_hostname(&mut cfg, spec, &ns)?;
    namespaces::configure_network(&mut cfg, &ns);
    mounts::configure_mounts(&mut cfg, spec, opts)?;
    mounts::configure_devices(&mut cfg, spec)?;
    configure_sysctl(&mut cfg, spec, &ns)?;
    cgroup_keys::configure_cgroups(&mut cfg, spec, opts)?;
    note_seccomp(&mut cfg, spec)?;
    Ok(cfg)
}

/// Rejects what neither LXC nor the init can do, so nothing is silently dropped.
fn check_unsupported(spec: &Spec) -> Result<(), TranslateError> {
    if spec.domainname().as_deref().is_some_and(|d| !d.is_empty()) {
        return Err(TranslateError::unsupported(
            "domainname",
            "setting the NIS domain name",
            "LXC has no configuration key for it; remove `domainname` from the spec",
        ));
    }
    for (name, present) in [
        ("solaris", spec.solaris().is_some()),
        ("windows", spec.windows().is_some()),
        ("vm", spec.vm().is_some()),
        ("zos", spec.zos().is_some()),
    ] {
        if present {
            return Err(TranslateError::unsupported(
                name,
                format!("the `{name}` platform section"),
                "lxcri runs Linux containers only; remove the section",
            ));
        }
    }
    if let Some(p) = spec.process() {
        let checks = [
            ("process.ioPriority", p.io_priority().is_some()),
            ("process.scheduler", p.scheduler().is_some()),
            ("process.execCPUAffinity", p.exec_cpu_affinity().is_some()),
            ("process.commandLine", p.command_line().is_some()),
            (
                "process.selinuxLabel",
                p.selinux_label().as_deref().is_some_and(|l| !l.is_empty()),
            ),
        ];
        if let Some((field, _)) = checks.iter().find(|(_, set)| *set) {
            return Err(TranslateError::unsupported(
                *field,
                "this process attribute",
                "neither LXC nor lxcri's init applies it; remove it from the spec",
            ));
        }
    }
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let checks = [
        ("linux.intelRdt", linux.intel_rdt().is_some()),
        ("linux.personality", linux.personality().is_some()),
        ("linux.memoryPolicy", linux.memory_policy().is_some()),
        (
            "linux.netDevices",
            linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()),
        ),
        (
            "linux.mountLabel",
            linux
                .mount_label()
                .as_deref()
                .is_some_and(|l| !l.is_empty()),
        ),
    ];
    if let Some((field, _)) = checks.iter().find(|(_, set)| *set) {
        return Err(TranslateError::unsupported(
            *field,
            "this Linux feature",
            "LXC cannot express it; remove it from the spec",
        ));
    }
    Ok(())
}

/// Records, as comments of the rendered file, the fields the init applies (the contract:
/// `process`, `root.readonly`, `linux.maskedPaths`, `linux.readonlyPaths`), so a reader of
/// the config sees they were not forgotten.
fn note_left_to_init(cfg: &mut LxcConfig, spec: &Spec) {
    let linux = spec.linux().as_ref();
    let count = |v: Option<&Vec<String>>| v.map_or(0, Vec::len);
    let masked = count(linux.and_then(|l| l.masked_paths().as_ref()));
    let readonly = count(linux.and_then(|l| l.readonly_paths().as_ref()));
    if spec.process().is_some() {
        cfg.notes.push(format!(
            "process (args, env, user, capabilities, rlimits, ...): applied by {INIT_IN_CONTAINER}"
        ));
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        cfg.notes.push(format!(
            "root.readonly = true: {INIT_IN_CONTAINER} remounts / read-only"
        ));
    }
    if masked > 0 {
        cfg.notes.push(format!(
            "linux.maskedPaths ({masked}): masked by {INIT_IN_CONTAINER}"
        ));
    }
    if readonly > 0 {
        cfg.notes.push(format!(
            "linux.readonlyPaths ({readonly}): made read-only by {INIT_IN_CONTAINER}"
        ));
    }
}

/// The spec's `hooks` are checked here (an invalid one fails the translation naming its field)
/// but set no LXC key: the shim runs them itself (`crate::hooks`), LXC's `lxc.hook.*` keys do
/// not fit the OCI hooks' arguments, state and order. A comment lists them.
fn note_hooks(cfg: &mut LxcConfig, spec: &Spec) -> Result<(), TranslateError> {
    let hooks = crate::hooks::check(spec)?;
    for kind in crate::hooks::Kind::ALL {
        let n = hooks.iter().filter(|h| h.kind == kind).count();
        if n > 0 {
            cfg.notes.push(format!(
                "hooks.{} ({n}): run by the lxcri shim, not by LXC",
                kind.field()
            ));
        }
    }
    Ok(())
}

/// `linux.seccomp` sets no LXC key: the shim compiles it (`crate::seccomp`) and the init loads
/// it. It is compiled here too, so a profile the compiler refuses fails the translation naming
/// its field, and the config's comments say what the init will load.
fn note_seccomp(cfg: &mut LxcConfig, spec: &Spec) -> Result<(), TranslateError> {
    let Some(sc) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(());
    };
    let arch = std::env::consts::ARCH;
    let Some(c) = crate::seccomp::compile_for(spec, arch)? else {
        return Ok(());
    };
    cfg.notes.push(format!(
        "linux.seccomp (default {}, {} rules, flags {:#x}): compiled to {} BPF instructions, \
         loaded by {INIT_IN_CONTAINER} before the exec, not by lxc.seccomp.profile",
        crate::seccomp::action_name(sc.default_action()),
        sc.syscalls().as_ref().map_or(0, Vec::len),
        c.program.flags,
        c.program.filter.len()
    ));
    if !c.unknown.is_empty() {
        cfg.notes.push(format!(
            "linux.seccomp: {} syscall names unknown on {arch}, skipped: {}",
            c.unknown.len(),
            c.unknown.join(" ")
        ));
    }
    Ok(())
}

/// `lxc.log.file`, `lxc.log.level`.
fn configure_logging(cfg: &mut LxcConfig, opts: &Options) -> Result<(), TranslateError> {
    if !opts.log_file.as_os_str().is_empty() {
        cfg.set("lxc.log.file", host_path(&opts.log_file, "log_file")?);
    }
    if !opts.log_level.is_empty() {
        cfg.set("lxc.log.level", opts.log_level.trim());
    }
    Ok(())
}

/// `lxc.rootfs.path`, `lxc.rootfs.mount`, `lxc.rootfs.managed`, `lxc.rootfs.options`.
///
/// The rootfs is already mounted by the shim; LXC binds it onto itself and pivots into it,
/// but never manages (creates, destroys) it. `root.readonly` is the init's job.
fn configure_rootfs(
    cfg: &mut LxcConfig,
    spec: &Spec,
    opts: &Options,
) -> Result<(), TranslateError> {
    let rootfs = host_path(&opts.rootfs, "rootfs")?;
    if !opts.rootfs.is_absolute() {
        return Err(TranslateError::invalid(
            "root.path",
            format!("the rootfs host path {rootfs:?} is not absolute"),
            "the shim must pass the absolute path of the mounted rootfs",
        ));
    }
    cfg.set("lxc.rootfs.path", format!("dir:{rootfs}"));
    cfg.set("lxc.rootfs.mount", rootfs);
    cfg.set("lxc.rootfs.managed", "0");
    if let Some(prop) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().clone())
    {
        match prop.as_str() {
            "" => {}
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" | "unbindable"
            | "runbindable" => cfg.set("lxc.rootfs.options", prop),
            other => {
                return Err(TranslateError::invalid(
                    "linux.rootfsPropagation",
                    format!("{other:?} is not a mount propagation"),
                    "use one of shared, rshared, slave, rslave, private, rprivate, unbindable, \
                     runbindable",
                ))
            }
        }
    }
    Ok(())
}

/// `lxc.init.cmd`, `lxc.init.uid`, `lxc.init.gid`, `lxc.init.cwd` and the two `/.lxcri`
/// bind mounts (`lxc.mount.entry`). They come before the spec's mounts, so a spec mount can
/// never hide them.
fn configure_init(cfg: &mut LxcConfig, opts: &Options) -> Result<(), TranslateError> {
    let init = host_path(&opts.init_path, "init_path")?;
    let run = host_path(&opts.runtime_dir, "runtime_dir")?;
    cfg.set("lxc.init.cmd", INIT_IN_CONTAINER);
    cfg.set("lxc.init.uid", "0");
    cfg.set("lxc.init.gid", "0");
    cfg.set("lxc.init.cwd", "/");
    cfg.set(
        "lxc.mount.entry",
        format!(
            "{} {} none bind,create=dir 0 0",
            mounts::fstab_escape(&run),
            &RUN_IN_CONTAINER[1..]
        ),
    );
    cfg.set(
        "lxc.mount.entry",
        format!(
            "{} {} none bind,ro,create=file 0 0",
            mounts::fstab_escape(&init),
            &INIT_IN_CONTAINER[1..]
        ),
    );
    Ok(())
}

/// `lxc.console.path`, `lxc.tty.max`, `lxc.pty.max`, `lxc.autodev`.
///
/// No console: the init's stdio is the monitor's (the container's FIFOs). `lxc.autodev = 1`
/// gives `/dev` its basic nodes (null, zero, full, random, urandom, tty) created after the
/// spec's mounts, so they land in the spec's `/dev` tmpfs. A devpts mount at `/dev/pts` in the
/// spec sets `lxc.pty.max`: LXC then mounts a new devpts instance there (gid=5, mode=0620,
/// ptmxmode=0666, the OCI defaults) and binds `/dev/ptmx` to `pts/ptmx`.
fn configure_console(cfg: &mut LxcConfig, spec: &Spec) {
    cfg.set("lxc.console.path", "none");
    cfg.set("lxc.tty.max", "0");
    cfg.set("lxc.autodev", "1");
    let has_devpts = spec.mounts().iter().flatten().any(|m| {
        m.typ().as_deref() == Some("devpts")
            && mounts::normalize_destination(m.destination()).as_deref() == Ok("dev/pts")
    });
    if has_devpts {
        cfg.set("lxc.pty.max", "1024");
    }
}

/// `lxc.apparmor.profile = unconfined`: the init runs unconfined and applies the spec's
/// `process.apparmorProfile` itself when it execs. SELinux labels are rejected in
/// [`check_unsupported`].
fn configure_apparmor_selinux(cfg: &mut LxcConfig, _spec: &Spec) -> Result<(), TranslateError> {
    cfg.set("lxc.apparmor.profile", "unconfined");
    Ok(())
}

/// `lxc.uts.name`, only with a new UTS namespace.
fn configure_hostname(
    cfg: &mut LxcConfig,
    spec: &Spec,
    ns: &namespaces::Namespaces,
) -> Result<(), TranslateError> {
    let Some(hostname) = spec.hostname().as_deref().filter(|h| !h.is_empty()) else {
        return Ok(());
    };
    match ns.get(namespaces::Kind::Uts) {
        namespaces::Mode::New => {}
        namespaces::Mode::Host => {
            return Err(TranslateError::invalid(
                "hostname",
                format!(
                    "hostname {hostname:?} is set but the container uses the host's UTS namespace"
                ),
                "add {\"type\": \"uts\"} to linux.namespaces, or remove `hostname`",
            ))
        }
        namespaces::Mode::Join(_) => {
            return Err(TranslateError::invalid(
                "hostname",
                format!(
                    "hostname {hostname:?} is set but the container joins an existing UTS \
                     namespace (it would rename every process in it)"
                ),
                "remove `hostname` (the joined namespace keeps its name) or give the container \
                 its own UTS namespace",
            ))
        }
    }
    if hostname.len() > 64
        || hostname
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(TranslateError::invalid(
            "hostname",
            format!("{hostname:?} is not a valid host name (at most 64 bytes, no blanks)"),
            "use a valid host name",
        ));
    }
    cfg.set("lxc.uts.name", hostname);
    Ok(())
}

/// `lxc.sysctl.<name>`, in name order. Namespaced sysctls need the namespace that owns them:
/// `net.*` a network namespace of the container's own (new or joined), IPC ones an IPC
/// namespace, `kernel.hostname`/`kernel.domainname` a new UTS namespace; anything else would
/// change the host.
fn configure_sysctl(
    cfg: &mut LxcConfig,
    spec: &Spec,
    ns: &namespaces::Namespaces,
) -> Result<(), TranslateError> {
    use namespaces::{Kind, Mode};
    let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    let mut names: Vec<&String> = sysctl.keys().collect();
    names.sort();
    for name in names {
        let value = &sysctl[name];
        let field = format!("linux.sysctl.{name}");
        if name.split('.').any(|part| part.is_empty())
            || name
                .chars()
                .any(|c| c.is_whitespace() || c == '=' || c == '/')
        {
            return Err(TranslateError::invalid(
                field,
                format!("{name:?} is not a sysctl name"),
                "use a dotted name as listed under /proc/sys (e.g. net.ipv4.ip_forward)",
            ));
        }
        if value.contains('\n') {
            return Err(TranslateError::invalid(
                field,
                "the value contains a line break",
                "give the value on one line",
            ));
        }
        let needs = if name.starts_with("net.") {
            Some((Kind::Net, false))
        } else if name.starts_with("fs.mqueue.")
            || [
                "kernel.msgmax",
                "kernel.msgmnb",
                "kernel.msgmni",
                "kernel.sem",
            ]
            .contains(&name.as_str())
            || name.starts_with("kernel.shm")
        {
            Some((Kind::Ipc, false))
        } else if name == "kernel.hostname" || name == "kernel.domainname" {
            Some((Kind::Uts, true))
        } else {
            None
        };
        match needs {
            None => {
                return Err(TranslateError::invalid(
                    field,
                    format!("{name} is not a namespaced sysctl: setting it would change the host"),
                    "set it on the host instead, or remove it from the spec",
                ))
            }
            Some((kind, new_only)) => {
                let ok = match ns.get(kind) {
                    Mode::New => true,
                    Mode::Join(_) => !new_only,
                    Mode::Host => false,
                };
                if !ok {
                    return Err(TranslateError::invalid(
                        field,
                        format!(
                            "{name} belongs to the {} namespace, which the container does not \
                             have its own of",
                            kind.lxc_name()
                        ),
                        format!(
                            "add {{\"type\": \"{}\"}} to linux.namespaces, or remove the sysctl",
                            kind.oci_name()
                        ),
                    ));
                }
            }
        }
        cfg.set(format!("lxc.sysctl.{name}"), value.trim());
    }
    Ok(())
}

/// A host path as UTF-8 that fits on one config line.
fn host_path(p: &Path, what: &str) -> Result<String, TranslateError> {
    match p.to_str() {
        Some(s) if !s.contains('\n') => Ok(s.to_string()),
        _ => Err(TranslateError::invalid(
            format!("<options.{what}>"),
            format!("host path {p:?} is not valid UTF-8 or contains a line break"),
            "use a plain path for lxcri's directories",
        )),
    }
}

#[cfg(test)]
mod tests;
