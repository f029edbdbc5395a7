//! The one conversion of OCI `linux.resources` into cgroup settings: an ordered list of (cgroup
//! file, value) for cgroup v1 or v2. Create renders it as LXC keys (`lxc.cgroup.<file>` /
//! `lxc.cgroup2.<file>`, `lxcconf::cgroup_keys`); Update writes the same files into the running
//! container's cgroup (`cgroup_files::update`). So the two cannot disagree on a value.
//!
//! Pure: no file is read. One function per controller, each naming the files it sets:
//! `memory.rs`, `cpu.rs` (cpu and cpuset), `pids.rs`, `blkio.rs` (blkio / io), `hugetlb.rs`, and
//! here the network, RDMA and `unified` fields. Device rules are not here: they are LXC keys of
//! their own (`devices.allow`/`deny`, with `linux.devices`) and are never updated.
//!
//! The order is the one Create writes in (a fresh cgroup has no limits, so any order works
//! there); Update keeps it, except that on v1 the memory and memory+swap limits go in the order
//! the kernel needs given the current limit (see `cgroup_files`).
//!
//! Conventions, as runc's: -1 means unlimited (`max` on v2); `cpu.shares: 0` means unset; a v2
//! `cpu.weight` is converted from shares, `io.weight` from the blkio weight; OCI's `swap` is
//! memory+swap, v2's `memory.swap.max` swap alone. A field the host's cgroup version does not
//! have is an error naming it, never dropped.

mod blkio;
mod cpu;
mod hugetlb;
mod memory;
mod pids;

use oci_spec::runtime::LinuxResources;

use crate::lxcconf::{CgroupMode, TranslateError};

/// One cgroup file and the value written to it, e.g. `memory.max` = `max`. A file may appear
/// more than once (`io.max`, one line per device).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub file: String,
    pub value: String,
}

/// The settings of `r` on a host of cgroup `mode`, in order.
pub fn settings(r: &LinuxResources, mode: CgroupMode) -> Result<Vec<Setting>, TranslateError> {
    let mut s = Settings {
        mode,
        out: Vec::new(),
    };
    if let Some(m) = r.memory() {
        memory::convert(&mut s, m)?;
    }
    if let Some(c) = r.cpu() {
        cpu::convert(&mut s, c)?;
    }
    if let Some(p) = r.pids() {
        pids::convert(&mut s, p);
    }
    if let Some(b) = r.block_io() {
        blkio::convert(&mut s, b)?;
    }
    if let Some(h) = r.hugepage_limits() {
        hugetlb::convert(&mut s, h)?;
    }
    network(&mut s, r)?;
    rdma(&mut s, r);
    unified(&mut s, r)?;
    Ok(s.out)
}

/// The settings Update writes for `r`, in order (the part [`for_update`] keeps, converted as for
/// Create); network and RDMA limits are an error.
pub fn update_settings(r: &LinuxResources, mode: CgroupMode) -> Result<Vec<Setting>, String> {
    if r.network().is_some() || r.rdma().is_some() {
        return Err(
            "network and RDMA limits cannot be updated on a running container (memory, cpu \
             and pids can)"
                .into(),
        );
    }
    settings(&for_update(r), mode).map_err(|e| e.to_string())
}

/// The part of `r` that Update applies: memory limit, reservation and swap, cpu (shares, quota,
/// period, burst, idle, cpus, mems) and pids. What it leaves out is [`not_updated`], and network
/// and RDMA limits, which Update refuses.
pub fn for_update(r: &LinuxResources) -> LinuxResources {
    let mut u = LinuxResources::default();
    if let Some(m) = r.memory() {
        let mut m = *m;
        m.set_kernel(None)
            .set_kernel_tcp(None)
            .set_swappiness(None)
            .set_disable_oom_killer(None)
            .set_use_hierarchy(None)
            .set_check_before_update(None);
        u.set_memory(Some(m));
    }
    if let Some(c) = r.cpu() {
        let mut c = c.clone();
        c.set_realtime_runtime(None).set_realtime_period(None);
        u.set_cpu(Some(c));
    }
    u.set_pids(*r.pids());
    u
}

/// The fields of `r` that Update does not apply ([`for_update`] leaves them out), named so the
/// shim can log them instead of dropping them silently.
///
/// containerd's CRI plugin sends the container's whole `linux.resources` with every
/// UpdateContainerResources, device rules and hugepage limits included, though the CRI cannot
/// change either: they are not applied (as runc's `update` does not), not refused.
pub fn not_updated(r: &LinuxResources) -> Vec<&'static str> {
    let mut out = Vec::new();
    if r.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        out.push("devices");
    }
    if r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()) {
        out.push("hugepageLimits");
    }
    if r.block_io().is_some() {
        out.push("blockIO");
    }
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        out.push("unified");
    }
    if let Some(m) = r.memory() {
        for (set, name) in [
            (m.kernel().is_some(), "memory.kernel"),
            (m.kernel_tcp().is_some(), "memory.kernelTCP"),
            (m.swappiness().is_some(), "memory.swappiness"),
            (m.disable_oom_killer().is_some(), "memory.disableOOMKiller"),
            (m.use_hierarchy().is_some(), "memory.useHierarchy"),
        ] {
            if set {
                out.push(name);
            }
        }
    }
    if let Some(c) = r.cpu() {
        if c.realtime_runtime().is_some() || c.realtime_period().is_some() {
            out.push("cpu.realtime");
        }
    }
    out
}

/// The list being built, and the host's cgroup version.
struct Settings {
    mode: CgroupMode,
    out: Vec<Setting>,
}

impl Settings {
    fn set(&mut self, file: impl Into<String>, value: impl ToString) {
        self.out.push(Setting {
            file: file.into(),
            value: value.to_string(),
        });
    }

    fn v1(&self) -> bool {
        self.mode == CgroupMode::V1
    }

    /// An error for a field that only exists on the other cgroup version.
    fn only_on(&self, field: &str, version: &str) -> TranslateError {
        let host = if self.v1() { "v1 (or hybrid)" } else { "v2" };
        TranslateError::unsupported(
            field,
            format!("this limit on a cgroup {host} host (it exists only on cgroup {version})"),
            "remove it from the spec for this host",
        )
    }
}

/// v2's `max` for OCI's -1 (any negative: unlimited).
fn v2_limit(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

/// v1 `net_cls.classid`, `net_prio.ifpriomap` (one per interface); no v2 equivalent.
fn network(s: &mut Settings, r: &LinuxResources) -> Result<(), TranslateError> {
    let Some(n) = r.network() else {
        return Ok(());
    };
    if !s.v1() {
        return Err(s.only_on("linux.resources.network", "v1"));
    }
    if let Some(id) = n.class_id() {
        s.set("net_cls.classid", id);
    }
    for p in n.priorities().iter().flatten() {
        s.set(
            "net_prio.ifpriomap",
            format!("{} {}", p.name(), p.priority()),
        );
    }
    Ok(())
}

/// `rdma.max`, one line per device, in device name order.
fn rdma(s: &mut Settings, r: &LinuxResources) {
    let Some(rdma) = r.rdma() else {
        return;
    };
    let mut devs: Vec<&String> = rdma.keys().collect();
    devs.sort();
    for dev in devs {
        let l = &rdma[dev];
        let mut v = dev.clone();
        if let Some(h) = l.hca_handles() {
            v.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = l.hca_objects() {
            v.push_str(&format!(" hca_object={o}"));
        }
        s.set("rdma.max", v);
    }
}

/// v2 `unified`: each file as given, in name order.
fn unified(s: &mut Settings, r: &LinuxResources) -> Result<(), TranslateError> {
    let Some(unified) = r.unified() else {
        return Ok(());
    };
    let mut keys: Vec<&String> = unified.keys().collect();
    keys.sort();
    for k in keys {
        let field = format!("linux.resources.unified.{k}");
        if s.v1() {
            return Err(s.only_on(&field, "v2"));
        }
        if k.is_empty() || k.contains('/') || k.chars().any(char::is_whitespace) {
            return Err(TranslateError::invalid(
                field,
                format!("{k:?} is not a cgroup file name"),
                "give a file name such as memory.high",
            ));
        }
        let v = &unified[k];
        if v.contains('\n') {
            return Err(TranslateError::invalid(
                field,
                "the value contains a line break",
                "give a one-line value",
            ));
        }
        s.set(k.as_str(), v);
    }
    Ok(())
}
