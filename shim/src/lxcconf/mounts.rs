//! The spec's mounts and device nodes as `lxc.mount.entry` lines.
//!
//! How LXC 5.0.2 resolves an entry's target (tried on this machine, see
//! `tests/lxcconf_lxc.rs`): a relative target is taken below `lxc.rootfs.mount`, and LXC opens
//! it component by component refusing symbolic links (`open_without_symlink`: "Too many
//! levels of symbolic links - X was a symbolic link!"), so the container fails to start rather
//! than mount outside its rootfs. But `create=dir`/`create=file` run *before* that check with a
//! plain `mkdir -p`/`open(O_CREAT)` that follows links: a rootfs holding `evil -> /somewhere`
//! and a mount on `/evil/x` makes LXC create `/somewhere/x` on the host. Hence
//! [`check_mount_targets`], which the shim runs on the mounted rootfs before starting LXC.
//!
//! runc instead follows such links *inside* the rootfs (an image's `/var/run -> /run` makes a
//! mount on `/var/run/secrets` land on `/run/secrets`). [`resolve_mount_destinations`] does
//! the same on the spec before translation, so those specs work under LXC too.

use std::path::{Component, Path};

use oci_spec::runtime::{LinuxDeviceType, Mount, Spec};

use super::{CgroupMode, LxcConfig, Options, TranslateError};

/// Escapes a path for an fstab field (LXC reads `lxc.mount.entry` with `getmntent`).
pub(crate) fn fstab_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            ' ' => out.push_str("\\040"),
            '\t' => out.push_str("\\011"),
            '\n' => out.push_str("\\012"),
            '\\' => out.push_str("\\134"),
            c => out.push(c),
        }
    }
    out
}

fn fstab_unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// A container path as a target relative to the rootfs: no leading `/`, no `.`, and no `..`
/// (which LXC would resolve against the host side of the rootfs path).
pub(crate) fn normalize_destination(dest: &Path) -> Result<String, String> {
    let mut parts = Vec::new();
    for c in dest.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => return Err(format!("{dest:?} contains \"..\"")),
            Component::Normal(p) => match p.to_str() {
                Some(s) => parts.push(s),
                None => return Err(format!("{dest:?} is not valid UTF-8")),
            },
            Component::Prefix(_) => return Err(format!("{dest:?} is not a Linux path")),
        }
    }
    if parts.is_empty() {
        return Err(format!("{dest:?} is the container's root directory"));
    }
    Ok(parts.join("/"))
}

/// Whether the spec's mount is a bind mount (type `bind`, or a `bind`/`rbind` option).
pub(crate) fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

/// Mount options LXC itself interprets in `lxc.mount.entry`; from a spec they would change
/// what LXC does rather than what the kernel mounts.
const LXC_ONLY_OPTIONS: &[&str] = &["optional", "relative"];

/// Options runc understands that neither the kernel's mount(2) flags nor LXC do.
fn unsupported_option(o: &str) -> Option<&'static str> {
    match o {
        "tmpcopyup" => Some("copying the image's files into a tmpfs (tmpcopyup)"),
        "idmap" | "ridmap" => Some("id-mapped mounts"),
        "rro" | "rrw" | "rnosuid" | "rsuid" | "rnodev" | "rdev" | "rnoexec" | "rexec"
        | "rnodiratime" | "rdiratime" | "rrelatime" | "rnorelatime" | "rnoatime" | "ratime"
        | "rstrictatime" | "rnostrictatime" | "rnosymfollow" | "rsymfollow" => {
            Some("recursive mount attributes (mount_setattr)")
        }
        _ => None,
    }
}

/// `lxc.mount.entry` for each of the spec's mounts, in order; `lxc.mount.auto = cgroup:…`
/// for a cgroup mount on a cgroup v1 host.
///
/// Each entry is `SOURCE TARGET TYPE OPTIONS 0 0`, the target relative to the rootfs. Bind
/// mounts get `create=file` when their source is a file (per `Options::file_bind_sources`),
/// everything else `create=dir`. Options pass through to LXC, which knows the mount(8) flag
/// names (ro, nosuid, nodev, noexec, relatime, strictatime, ...), the propagation ones
/// (private, rprivate, shared, rshared, slave, rslave, unbindable, runbindable), bind/rbind,
/// and hands the rest (mode=, size=, ...) to the file system.
pub(crate) fn configure_mounts(
    cfg: &mut LxcConfig,
    spec: &Spec,
    opts: &Options,
) -> Result<(), TranslateError> {
    let Some(list) = spec.mounts() else {
        return Ok(());
    };
    for (i, m) in list.iter().enumerate() {
        configure_mount(cfg, i, m, opts)?;
    }
    Ok(())
}

fn configure_mount(
    cfg: &mut LxcConfig,
    i: usize,
    m: &Mount,
    opts: &Options,
) -> Result<(), TranslateError> {
    if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
        return Err(TranslateError::unsupported(
            format!("mounts[{i}].uidMappings"),
            "id-mapped mounts",
            "remove the mount's uidMappings/gidMappings",
        ));
    }
    let dest = normalize_destination(m.destination()).map_err(|problem| {
        TranslateError::invalid(
            format!("mounts[{i}].destination"),
            problem,
            "give an absolute path inside the container, without \"..\"",
        )
    })?;
    let options = m.options().clone().unwrap_or_default();
    let mut kept = Vec::with_capacity(options.len() + 1);
    for (j, o) in options.iter().enumerate() {
        let field = format!("mounts[{i}].options[{j}]");
        if o.is_empty() {
            continue;
        }
        if let Some(feature) = unsupported_option(o) {
            return Err(TranslateError::unsupported(
                field,
                format!("{feature} ({o:?})"),
                "remove the option",
            ));
        }
        if LXC_ONLY_OPTIONS.contains(&o.as_str()) || o.starts_with("create=") {
            return Err(TranslateError::invalid(
                field,
                format!("{o:?} is not a mount option (it is LXC's own syntax)"),
                "remove the option",
            ));
        }
        if o.contains(',') || o.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(TranslateError::invalid(
                field,
                format!("option {o:?} contains a comma or a blank"),
                "give one option per list element, without blanks",
            ));
        }
        kept.push(o.as_str());
    }
    let fs_type = m.typ().as_deref().unwrap_or("");
    let is_bind = fs_type == "bind" || kept.iter().any(|o| *o == "bind" || *o == "rbind");

    if !is_bind && (fs_type == "cgroup" || fs_type == "cgroup2") {
        return configure_cgroup_mount(cfg, i, &dest, &kept, opts);
    }

    let source = m
        .source()
        .as_ref()
        .map(|s| {
            s.to_str().map(str::to_string).ok_or_else(|| {
                TranslateError::invalid(
                    format!("mounts[{i}].source"),
                    format!("{s:?} is not valid UTF-8"),
                    "use a UTF-8 path",
                )
            })
        })
        .transpose()?
        .unwrap_or_default();

    let (source, lxc_type, create) = if is_bind {
        if !kept.iter().any(|o| *o == "bind" || *o == "rbind") {
            kept.insert(0, "bind");
        }
        if source.is_empty() {
            return Err(TranslateError::invalid(
                format!("mounts[{i}].source"),
                "a bind mount needs a source",
                "give the host path to bind",
            ));
        }
        let mut host = std::path::PathBuf::from(&source);
        if host.is_relative() {
            // Relative to the bundle, which holds the rootfs.
            let bundle = opts.rootfs.parent().ok_or_else(|| {
                TranslateError::invalid(
                    format!("mounts[{i}].source"),
                    format!("relative source {source:?} but the rootfs has no bundle directory"),
                    "give an absolute source path",
                )
            })?;
            host = bundle.join(host);
        }
        let create = if opts.file_bind_sources.contains(&host) {
            "create=file"
        } else {
            "create=dir"
        };
        let host = host.to_str().map(str::to_string).unwrap_or(source);
        (host, "none".to_string(), create)
    } else {
        if fs_type.is_empty() || fs_type == "none" {
            return Err(TranslateError::invalid(
                format!("mounts[{i}].type"),
                "the mount has no type and is not a bind mount",
                "give a file system type, or \"bind\" with a source",
            ));
        }
        if !opts.known_fs_types.is_empty() && !opts.known_fs_types.contains(fs_type) {
            return Err(TranslateError::UnknownMountType {
                field: format!("mounts[{i}].type"),
                fs_type: fs_type.to_string(),
            });
        }
        if fs_type.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(TranslateError::invalid(
                format!("mounts[{i}].type"),
                format!("{fs_type:?} contains blanks"),
                "give a file system type",
            ));
        }
        let src = if source.is_empty() {
            fs_type.to_string()
        } else {
            source
        };
        (src, fs_type.to_string(), "create=dir")
    };
    kept.push(create);
    cfg.set(
        "lxc.mount.entry",
        format!(
            "{} {} {} {} 0 0",
            fstab_escape(&source),
            fstab_escape(&dest),
            lxc_type,
            kept.join(",")
        ),
    );
    Ok(())
}

/// The spec's cgroup mount. cgroup v2: a `cgroup2` entry where the spec says. cgroup v1 (or
/// hybrid), where a single `cgroup` mount cannot express the per-controller hierarchies:
/// `lxc.mount.auto = cgroup:ro:force` (or `:rw:`), which mounts a tmpfs at `/sys/fs/cgroup`
/// with each hierarchy below it, the container's own cgroup bound in (`force`: even with a
/// cgroup namespace). LXC does these after all `lxc.mount.entry` lines.
fn configure_cgroup_mount(
    cfg: &mut LxcConfig,
    i: usize,
    dest: &str,
    kept: &[&str],
    opts: &Options,
) -> Result<(), TranslateError> {
    let ro = kept.contains(&"ro");
    match opts.cgroup {
        CgroupMode::V2 => {
            let mut o: Vec<&str> = kept.to_vec();
            o.push("create=dir");
            cfg.set(
                "lxc.mount.entry",
                format!("cgroup2 {} cgroup2 {} 0 0", fstab_escape(dest), o.join(",")),
            );
        }
        CgroupMode::V1 => {
            if dest != "sys/fs/cgroup" {
                return Err(TranslateError::unsupported(
                    format!("mounts[{i}].destination"),
                    format!("a cgroup mount at /{dest} on a cgroup v1 host"),
                    "mount the cgroup file system at /sys/fs/cgroup",
                ));
            }
            if !cfg.get_all("lxc.mount.auto").is_empty() {
                return Err(TranslateError::invalid(
                    format!("mounts[{i}]"),
                    "a second cgroup mount",
                    "mount the cgroup file system once",
                ));
            }
            cfg.set(
                "lxc.mount.auto",
                if ro {
                    "cgroup:ro:force"
                } else {
                    "cgroup:rw:force"
                },
            );
        }
    }
    Ok(())
}

/// `linux.devices`: each node is the host's node of the same path, bound onto its path in the
/// container (`lxc.mount.entry ... bind,create=file`); its mode and owner are the host node's
/// (which is where containerd's CRI and nerdctl took `fileMode`/`uid`/`gid` from). The access
/// rules for them go to the device cgroup (see `cgroups`).
pub(crate) fn configure_devices(cfg: &mut LxcConfig, spec: &Spec) -> Result<(), TranslateError> {
    let Some(devices) = spec.linux().as_ref().and_then(|l| l.devices().as_ref()) else {
        return Ok(());
    };
    for (i, d) in devices.iter().enumerate() {
        let dest = normalize_destination(d.path()).map_err(|problem| {
            TranslateError::invalid(
                format!("linux.devices[{i}].path"),
                problem,
                "give the absolute path of the device node, e.g. /dev/fuse",
            )
        })?;
        if !dest.starts_with("dev/") {
            return Err(TranslateError::unsupported(
                format!("linux.devices[{i}].path"),
                format!("a device node outside /dev (/{dest})"),
                "put the node under /dev",
            ));
        }
        if d.typ() == LinuxDeviceType::A {
            return Err(TranslateError::invalid(
                format!("linux.devices[{i}].type"),
                "\"a\" is not a device node type",
                "use c, b, u or p",
            ));
        }
        let host = format!("/{dest}");
        cfg.set(
            "lxc.mount.entry",
            format!(
                "{} {} none bind,create=file 0 0",
                fstab_escape(&host),
                fstab_escape(&dest)
            ),
        );
    }
    Ok(())
}

/// Checks that no `lxc.mount.entry` target of `cfg` goes through a symbolic link in the
/// mounted rootfs at `rootfs` (see the module documentation: LXC would refuse the mount, but
/// only after its `create=` followed the link, possibly out of the rootfs). Reads the file
/// system: the shim calls it on the mounted rootfs, after [`translate`](super::translate)
/// and before starting LXC.
///
/// Only the rootfs as it is before start is checked: a symbolic link that an earlier mount
/// brings in (binding a directory the container's user controls, then mounting below it) is
/// not seen here, and LXC's own refusal remains the guard for the mount itself.
pub fn check_mount_targets(rootfs: &Path, cfg: &LxcConfig) -> Result<(), TranslateError> {
    for entry in cfg.get_all("lxc.mount.entry") {
        let Some(target) = entry.split_whitespace().nth(1) else {
            continue;
        };
        let target = fstab_unescape(target);
        if target.starts_with('/') {
            continue;
        }
        let mut here = rootfs.to_path_buf();
        for part in target.split('/').filter(|p| !p.is_empty()) {
            here.push(part);
            match std::fs::symlink_metadata(&here) {
                Ok(md) if md.file_type().is_symlink() => {
                    return Err(TranslateError::SymlinkInMountTarget {
                        entry: entry.to_string(),
                        target: target.clone(),
                        symlink: here.display().to_string(),
                    })
                }
                Ok(_) => {}
                // Missing: LXC creates the rest; nothing below can be a link yet.
                Err(_) => break,
            }
        }
    }
    Ok(())
}

/// Rewrites each mount destination of `spec` (and each `linux.devices` path) so that it
/// contains no symbolic link of the mounted rootfs at `rootfs`: links are followed as if
/// `rootfs` were `/` (an absolute target is taken inside the rootfs, `..` stops at its root),
/// the way runc resolves mount destinations. Reads the file system (the shim calls it before
/// [`translate`](super::translate)); components that do not exist yet are kept as they are.
pub fn resolve_mount_destinations(
    spec: &mut oci_spec::runtime::Spec,
    rootfs: &Path,
) -> Result<(), TranslateError> {
    if let Some(mounts) = spec.mounts_mut() {
        for (i, m) in mounts.iter_mut().enumerate() {
            let resolved = resolve_in_root(rootfs, m.destination()).map_err(|p| {
                TranslateError::invalid(
                    format!("mounts[{i}].destination"),
                    p,
                    "fix the symbolic links in the image, or mount elsewhere",
                )
            })?;
            m.set_destination(resolved);
        }
    }
    Ok(())
}

/// `path` (absolute, inside the container) with every symbolic link of `rootfs` resolved
/// within `rootfs`. At most 40 links, like the kernel.
pub(crate) fn resolve_in_root(rootfs: &Path, path: &Path) -> Result<std::path::PathBuf, String> {
    let mut todo: Vec<std::ffi::OsString> = path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut done = std::path::PathBuf::from("/");
    let mut links = 0;
    let mut missing = false;
    while let Some(part) = todo.pop() {
        if part == ".." {
            done.pop();
            continue;
        }
        let candidate = done.join(&part);
        if !missing {
            let host = rootfs.join(candidate.strip_prefix("/").unwrap_or(&candidate));
            match std::fs::symlink_metadata(&host) {
                Ok(md) if md.file_type().is_symlink() => {
                    links += 1;
                    if links > 40 {
                        return Err(format!("{path:?} goes through more than 40 symbolic links"));
                    }
                    let target = std::fs::read_link(&host)
                        .map_err(|e| format!("reading the symbolic link {host:?}: {e}"))?;
                    if target.is_absolute() {
                        done = std::path::PathBuf::from("/");
                    }
                    for c in target.components().rev() {
                        match c {
                            Component::Normal(p) => todo.push(p.to_os_string()),
                            Component::ParentDir => todo.push("..".into()),
                            _ => {}
                        }
                    }
                    continue;
                }
                Ok(_) => {}
                Err(_) => missing = true,
            }
        }
        done = candidate;
    }
    Ok(done)
}
