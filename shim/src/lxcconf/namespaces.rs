//! Namespaces, user id mappings and the network namespace.

use std::collections::BTreeMap;

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use super::{LxcConfig, TranslateError};

/// A namespace kind, in the order LXC lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Mnt,
    Pid,
    Uts,
    Ipc,
    Net,
    User,
    Cgroup,
    Time,
}

impl Kind {
    fn from_oci(t: LinuxNamespaceType) -> Kind {
        match t {
            LinuxNamespaceType::Mount => Kind::Mnt,
            LinuxNamespaceType::Pid => Kind::Pid,
            LinuxNamespaceType::Uts => Kind::Uts,
            LinuxNamespaceType::Ipc => Kind::Ipc,
            LinuxNamespaceType::Network => Kind::Net,
            LinuxNamespaceType::User => Kind::User,
            LinuxNamespaceType::Cgroup => Kind::Cgroup,
            LinuxNamespaceType::Time => Kind::Time,
        }
    }

    /// The identifier LXC uses (as in `/proc/PID/ns`).
    pub(crate) fn lxc_name(self) -> &'static str {
        match self {
            Kind::Mnt => "mnt",
            Kind::Pid => "pid",
            Kind::Uts => "uts",
            Kind::Ipc => "ipc",
            Kind::Net => "net",
            Kind::User => "user",
            Kind::Cgroup => "cgroup",
            Kind::Time => "time",
        }
    }

    /// The name in the OCI spec.
    pub(crate) fn oci_name(self) -> &'static str {
        match self {
            Kind::Mnt => "mount",
            Kind::Net => "network",
            other => other.lxc_name(),
        }
    }
}

/// What the container does with one namespace kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Not in the spec: the host's (the namespace of the process starting LXC).
    Host,
    /// In the spec without a path: a new one.
    New,
    /// In the spec with a path: join that one.
    Join(String),
}

/// The namespace decisions of one spec.
#[derive(Debug, Clone, Default)]
pub(crate) struct Namespaces {
    modes: BTreeMap<Kind, Mode>,
}

impl Namespaces {
    pub(crate) fn from_spec(spec: &Spec) -> Result<Namespaces, TranslateError> {
        let mut modes = BTreeMap::new();
        let list = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default();
        for (i, ns) in list.iter().enumerate() {
            let kind = Kind::from_oci(ns.typ());
            let mode = match ns.path() {
                None => Mode::New,
                Some(p) => {
                    let field = format!("linux.namespaces[{i}].path");
                    let s = p.to_str().ok_or_else(|| {
                        TranslateError::invalid(
                            &field,
                            format!("{p:?} is not valid UTF-8"),
                            "use a UTF-8 path",
                        )
                    })?;
                    if s.is_empty() {
                        Mode::New
                    } else if !p.is_absolute() || s.chars().any(char::is_whitespace) {
                        return Err(TranslateError::invalid(
                            field,
                            format!("{s:?} is not an absolute path without blanks"),
                            "give the namespace as an absolute path such as /proc/PID/ns/net \
                             or /run/netns/NAME",
                        ));
                    } else {
                        Mode::Join(s.to_string())
                    }
                }
            };
            if modes.insert(kind, mode).is_some() {
                return Err(TranslateError::invalid(
                    format!("linux.namespaces[{i}].type"),
                    format!("namespace type {:?} is listed twice", kind.oci_name()),
                    "list each namespace type at most once",
                ));
            }
            if kind == Kind::Mnt && matches!(modes.get(&kind), Some(Mode::Join(_))) {
                return Err(TranslateError::unsupported(
                    format!("linux.namespaces[{i}].path"),
                    "joining an existing mount namespace",
                    "LXC needs a mount namespace of its own to pivot into the rootfs; remove \
                     the path",
                ));
            }
        }
        if !modes.contains_key(&Kind::Mnt) {
            return Err(TranslateError::unsupported(
                "linux.namespaces",
                "running in the host's mount namespace",
                "add {\"type\": \"mount\"} to linux.namespaces: LXC always pivots into the \
                 rootfs in a new mount namespace",
            ));
        }
        Ok(Namespaces { modes })
    }

    pub(crate) fn get(&self, kind: Kind) -> Mode {
        self.modes.get(&kind).cloned().unwrap_or(Mode::Host)
    }
}

/// `lxc.namespace.clone` (the new ones), `lxc.namespace.share.<ns>` (the joined ones),
/// `lxc.idmap` (user namespace mappings), `lxc.time.offset.*`.
///
/// Namespaces not in the spec stay the host's. LXC 5.0.2 refuses `lxc.namespace.keep`
/// together with `lxc.namespace.clone` ("Cannot set both"), and an explicit clone list
/// already keeps every namespace not in it, so no `lxc.namespace.keep` is written.
pub(crate) fn configure_namespaces(
    cfg: &mut LxcConfig,
    spec: &Spec,
    ns: &Namespaces,
) -> Result<(), TranslateError> {
    let new: Vec<&str> = ns
        .modes
        .iter()
        .filter(|(_, m)| **m == Mode::New)
        .map(|(k, _)| k.lxc_name())
        .collect();
    cfg.set("lxc.namespace.clone", new.join(" "));
    for (kind, mode) in &ns.modes {
        if let Mode::Join(path) = mode {
            cfg.set(format!("lxc.namespace.share.{}", kind.lxc_name()), path);
        }
    }
    configure_idmap(cfg, spec, ns)?;
    configure_time_offsets(cfg, spec, ns)
}

fn configure_idmap(
    cfg: &mut LxcConfig,
    spec: &Spec,
    ns: &Namespaces,
) -> Result<(), TranslateError> {
    let linux = spec.linux().as_ref();
    let uids = linux
        .and_then(|l| l.uid_mappings().clone())
        .unwrap_or_default();
    let gids = linux
        .and_then(|l| l.gid_mappings().clone())
        .unwrap_or_default();
    match ns.get(Kind::User) {
        Mode::New => {
            if uids.is_empty() || gids.is_empty() {
                let field = if uids.is_empty() {
                    "linux.uidMappings"
                } else {
                    "linux.gidMappings"
                };
                return Err(TranslateError::invalid(
                    field,
                    "a new user namespace needs both uid and gid mappings",
                    "add uidMappings and gidMappings (containerID, hostID, size) to linux",
                ));
            }
        }
        Mode::Host | Mode::Join(_) => {
            if !uids.is_empty() || !gids.is_empty() {
                let field = if !uids.is_empty() {
                    "linux.uidMappings"
                } else {
                    "linux.gidMappings"
                };
                return Err(TranslateError::invalid(
                    field,
                    "id mappings are given but the container does not get a new user namespace",
                    "add {\"type\": \"user\"} without a path to linux.namespaces, or remove the \
                     mappings",
                ));
            }
            return Ok(());
        }
    }
    for (letter, name, maps) in [("u", "uidMappings", &uids), ("g", "gidMappings", &gids)] {
        for (i, m) in maps.iter().enumerate() {
            check_mapping(m, &format!("linux.{name}[{i}]"))?;
            cfg.set(
                "lxc.idmap",
                format!("{letter} {} {} {}", m.container_id(), m.host_id(), m.size()),
            );
        }
    }
    Ok(())
}

fn check_mapping(m: &LinuxIdMapping, field: &str) -> Result<(), TranslateError> {
    let overflows = |start: u32| u64::from(start) + u64::from(m.size()) > u64::from(u32::MAX) + 1;
    if m.size() == 0 || overflows(m.container_id()) || overflows(m.host_id()) {
        return Err(TranslateError::invalid(
            format!("{field}.size"),
            format!(
                "mapping {} -> {} of size {} is empty or runs past the last id",
                m.container_id(),
                m.host_id(),
                m.size()
            ),
            "give a size of at least 1 that stays within 32-bit ids",
        ));
    }
    Ok(())
}

/// `lxc.time.offset.boot`, `lxc.time.offset.monotonic` (nanoseconds), only for a new time
/// namespace.
fn configure_time_offsets(
    cfg: &mut LxcConfig,
    spec: &Spec,
    ns: &Namespaces,
) -> Result<(), TranslateError> {
    let Some(offsets) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    else {
        return Ok(());
    };
    let mut clocks: Vec<&String> = offsets.keys().collect();
    clocks.sort();
    for clock in clocks {
        let field = format!("linux.timeOffsets.{clock}");
        if ns.get(Kind::Time) != Mode::New {
            return Err(TranslateError::invalid(
                field,
                "clock offsets need a new time namespace",
                "add {\"type\": \"time\"} without a path to linux.namespaces",
            ));
        }
        let key = match clock.as_str() {
            "boottime" => "lxc.time.offset.boot",
            "monotonic" => "lxc.time.offset.monotonic",
            other => {
                return Err(TranslateError::invalid(
                    field,
                    format!("{other:?} is not a clock with a namespace offset"),
                    "use \"boottime\" or \"monotonic\"",
                ))
            }
        };
        let off = &offsets[clock];
        let nanos = i128::from(off.secs().unwrap_or(0)) * 1_000_000_000
            + i128::from(off.nanosecs().unwrap_or(0));
        cfg.set(key, format!("{nanos}ns"));
    }
    Ok(())
}

/// `lxc.net.0.type = empty` for a new network namespace: loopback only (CNI adds the rest).
/// A joined (`lxc.namespace.share.net`) or the host's network namespace gets no `lxc.net`
/// key: LXC leaves it as it is.
pub(crate) fn configure_network(cfg: &mut LxcConfig, ns: &Namespaces) {
    if ns.get(Kind::Net) == Mode::New {
        cfg.set("lxc.net.0.type", "empty");
    }
}
