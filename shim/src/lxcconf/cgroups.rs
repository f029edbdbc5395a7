//! `linux.cgroupsPath` and `linux.resources` as `lxc.cgroup.*` (v1) / `lxc.cgroup2.*` (v2).

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources, Spec};

use super::{CgroupMode, LxcConfig, Options, TranslateError};

/// Device rules runc grants every container after the spec's own: mknod of anything, and the
/// nodes `lxc.autodev` and the devpts setup create.
const DEFAULT_DEVICE_RULES: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",   // /dev/null
    "c 1:5 rwm",   // /dev/zero
    "c 1:7 rwm",   // /dev/full
    "c 1:8 rwm",   // /dev/random
    "c 1:9 rwm",   // /dev/urandom
    "c 5:0 rwm",   // /dev/tty
    "c 5:2 rwm",   // /dev/ptmx
    "c 136:* rwm", // /dev/pts/*
];

/// Everything about cgroups: where (`configure_cgroup_dir`), the limits
/// (`configure_resources`), and the device rules (`configure_device_rules`).
pub(crate) fn configure_cgroups(
    cfg: &mut LxcConfig,
    spec: &Spec,
    opts: &Options,
) -> Result<(), TranslateError> {
    configure_cgroup_dir(cfg, spec)?;
    let prefix = match opts.cgroup {
        CgroupMode::V1 => "lxc.cgroup",
        CgroupMode::V2 => "lxc.cgroup2",
    };
    let resources = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
    if let Some(r) = resources {
        let mut w = Writer {
            cfg,
            prefix,
            mode: opts.cgroup,
        };
        configure_resources(&mut w, r)?;
    }
    configure_device_rules(cfg, spec, prefix, resources)
}

/// `lxc.cgroup.dir.container` and `lxc.cgroup.dir.monitor` from `linux.cgroupsPath`.
///
/// The container's cgroup is exactly the path (LXC's `lxc.cgroup.dir` would append
/// `lxc.payload.NAME`); LXC's monitor goes into a sibling, `lxcri-monitor-<leaf>`, so the
/// container's cgroup holds nothing but the container. Both are below the root of each
/// hierarchy (LXC, privileged, escapes to the root cgroup first); LXC removes both when the
/// container stops. The cgroupfs form `/a/b/c` is used as it is (a relative path likewise,
/// from the root); the systemd form `slice:prefix:name` becomes the path systemd would use,
/// `a.slice/a-b.slice/prefix-name.scope` (LXC writes the cgroup file system directly: no
/// systemd unit is made). No `cgroupsPath`: LXC's default (`lxc.payload.NAME`).
fn configure_cgroup_dir(cfg: &mut LxcConfig, spec: &Spec) -> Result<(), TranslateError> {
    let Some(path) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
    else {
        return Ok(());
    };
    let field = "linux.cgroupsPath";
    let raw = path.to_str().ok_or_else(|| {
        TranslateError::invalid(
            field,
            format!("{path:?} is not valid UTF-8"),
            "use a UTF-8 path",
        )
    })?;
    if raw.is_empty() {
        return Ok(());
    }
    let parts = cgroup_path_parts(raw)?;
    let Some((leaf, parents)) = parts.split_last() else {
        return Err(TranslateError::invalid(
            field,
            format!("{raw:?} names the root cgroup"),
            "give the container a cgroup of its own, e.g. /default/ID",
        ));
    };
    let container = parts.join("/");
    let mut monitor = parents.to_vec();
    let monitor_leaf = format!("lxcri-monitor-{leaf}");
    monitor.push(monitor_leaf);
    cfg.set("lxc.cgroup.dir.container", container);
    cfg.set("lxc.cgroup.dir.monitor", monitor.join("/"));
    Ok(())
}

pub(crate) fn cgroup_path_parts(raw: &str) -> Result<Vec<String>, TranslateError> {
    let field = "linux.cgroupsPath";
    let bad = |problem: String| {
        TranslateError::invalid(
            field,
            problem,
            "use the cgroupfs form /a/b/c or the systemd form slice:prefix:name",
        )
    };
    let check = |name: &str| -> Result<(), TranslateError> {
        if name == "." || name == ".." || name.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad(format!("{raw:?} has the invalid component {name:?}")));
        }
        Ok(())
    };
    if raw.contains(':') {
        let fields: Vec<&str> = raw.split(':').collect();
        let [slice, prefix, name] = fields.as_slice() else {
            return Err(bad(format!(
                "{raw:?} has {} colon-separated fields, the systemd form has 3",
                fields.len()
            )));
        };
        if name.is_empty() || name.contains('/') || prefix.contains('/') || slice.contains('/') {
            return Err(bad(format!("{raw:?} is not slice:prefix:name")));
        }
        let mut parts = Vec::new();
        if !slice.is_empty() && *slice != "-.slice" {
            let Some(base) = slice.strip_suffix(".slice") else {
                return Err(bad(format!("slice {slice:?} does not end in .slice")));
            };
            if base.is_empty()
                || base.starts_with('-')
                || base.ends_with('-')
                || base.contains("--")
            {
                return Err(bad(format!("{slice:?} is not a valid slice name")));
            }
            let mut acc = String::new();
            for word in base.split('-') {
                if !acc.is_empty() {
                    acc.push('-');
                }
                acc.push_str(word);
                parts.push(format!("{acc}.slice"));
            }
        }
        let leaf = if name.ends_with(".slice") || prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}-{name}.scope")
        };
        parts.push(leaf);
        for p in &parts {
            check(p)?;
        }
        Ok(parts)
    } else {
        let parts: Vec<String> = raw
            .split('/')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        for p in &parts {
            check(p)?;
        }
        Ok(parts)
    }
}

/// Writes `lxc.cgroup[2].<file> = <value>` lines.
struct Writer<'a> {
    cfg: &'a mut LxcConfig,
    prefix: &'static str,
    mode: CgroupMode,
}

impl Writer<'_> {
    fn set(&mut self, file: &str, value: impl ToString) {
        self.cfg
            .set(format!("{}.{file}", self.prefix), value.to_string());
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

/// v2's "max" for OCI's -1 (unlimited).
fn v2_limit(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

/// The cgroup keys of `linux.resources`. v1 files: `memory.limit_in_bytes`,
/// `memory.soft_limit_in_bytes`, `memory.memsw.limit_in_bytes`, `memory.swappiness`,
/// `cpu.shares`, `cpu.cfs_quota_us`, `cpu.cfs_period_us`, `cpuset.cpus`, `pids.max`,
/// `blkio.weight`, `hugetlb.<size>.limit_in_bytes`, .... v2 files: `memory.max`, `memory.low`,
/// `memory.swap.max`, `cpu.weight`, `cpu.max`, `cpuset.cpus`, `pids.max`, `io.weight`,
/// `hugetlb.<size>.max`, and `unified` as given.
fn configure_resources(w: &mut Writer, r: &LinuxResources) -> Result<(), TranslateError> {
    if let Some(m) = r.memory() {
        let f = "linux.resources.memory";
        if m.kernel().is_some() || m.kernel_tcp().is_some() {
            return Err(TranslateError::unsupported(
                format!("{f}.kernel"),
                "kernel memory limits (deprecated, ignored by current kernels)",
                "remove memory.kernel and memory.kernelTCP",
            ));
        }
        if w.v1() {
            if let Some(v) = m.limit() {
                w.set("memory.limit_in_bytes", v);
            }
            if let Some(v) = m.reservation() {
                w.set("memory.soft_limit_in_bytes", v);
            }
            if let Some(v) = m.swap() {
                w.set("memory.memsw.limit_in_bytes", v);
            }
            if let Some(v) = m.swappiness() {
                if v > 100 {
                    return Err(TranslateError::invalid(
                        format!("{f}.swappiness"),
                        format!("{v} is above 100"),
                        "give a swappiness from 0 to 100",
                    ));
                }
                w.set("memory.swappiness", v);
            }
            if let Some(v) = m.disable_oom_killer() {
                w.set("memory.oom_control", u8::from(v));
            }
            if let Some(v) = m.use_hierarchy() {
                w.set("memory.use_hierarchy", u8::from(v));
            }
        } else {
            if let Some(v) = m.limit() {
                w.set("memory.max", v2_limit(v));
            }
            if let Some(v) = m.reservation() {
                w.set("memory.low", v2_limit(v));
            }
            if let Some(swap) = m.swap() {
                // OCI's swap is memory+swap; v2's memory.swap.max is swap alone.
                let value = match (swap, m.limit()) {
                    (s, _) if s < 0 => "max".to_string(),
                    (0, _) => "0".to_string(),
                    (s, Some(l)) if l < 0 => s.to_string(),
                    (s, Some(l)) if l > 0 && s >= l => (s - l).to_string(),
                    (s, l) => {
                        return Err(TranslateError::invalid(
                            format!("{f}.swap"),
                            format!(
                                "swap (memory+swap) {s} cannot be converted to cgroup v2 with \
                                 memory limit {l:?}"
                            ),
                            "give a memory limit, and a swap at least as large",
                        ))
                    }
                };
                w.set("memory.swap.max", value);
            }
            if m.swappiness().is_some() {
                return Err(w.only_on(&format!("{f}.swappiness"), "v1"));
            }
            if m.disable_oom_killer() == Some(true) {
                return Err(w.only_on(&format!("{f}.disableOOMKiller"), "v1"));
            }
        }
        // checkBeforeUpdate only concerns later updates; nothing to write at create.
    }

    if let Some(c) = r.cpu() {
        let f = "linux.resources.cpu";
        if let Some(shares) = c.shares() {
            if w.v1() {
                w.set("cpu.shares", shares);
            } else if shares != 0 {
                // runc's conversion of the [2, 262144] shares range onto [1, 10000].
                let s = shares.clamp(2, 262_144);
                w.set("cpu.weight", 1 + ((s - 2) * 9999) / 262_142);
            }
        }
        if w.v1() {
            if let Some(p) = c.period() {
                w.set("cpu.cfs_period_us", p);
            }
            if let Some(q) = c.quota() {
                w.set("cpu.cfs_quota_us", q);
            }
            if let Some(b) = c.burst() {
                w.set("cpu.cfs_burst_us", b);
            }
            if let Some(v) = c.realtime_period() {
                w.set("cpu.rt_period_us", v);
            }
            if let Some(v) = c.realtime_runtime() {
                w.set("cpu.rt_runtime_us", v);
            }
            if c.idle().is_some() {
                return Err(w.only_on(&format!("{f}.idle"), "v2"));
            }
        } else {
            if c.quota().is_some() || c.period().is_some() {
                let quota = match c.quota() {
                    Some(q) if q > 0 => q.to_string(),
                    _ => "max".to_string(),
                };
                let period = c.period().unwrap_or(100_000);
                w.set("cpu.max", format!("{quota} {period}"));
            }
            if let Some(b) = c.burst() {
                w.set("cpu.max.burst", b);
            }
            if let Some(v) = c.idle() {
                w.set("cpu.idle", v);
            }
            if c.realtime_period().is_some() || c.realtime_runtime().is_some() {
                return Err(w.only_on(&format!("{f}.realtimeRuntime"), "v1"));
            }
        }
        for (name, value) in [("cpus", c.cpus()), ("mems", c.mems())] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                if v.chars()
                    .any(|ch| !(ch.is_ascii_digit() || ch == ',' || ch == '-'))
                {
                    return Err(TranslateError::invalid(
                        format!("{f}.{name}"),
                        format!("{v:?} is not a list like 0-3,6"),
                        "give CPU or memory node numbers and ranges",
                    ));
                }
                w.set(&format!("cpuset.{name}"), v);
            }
        }
    }

    if let Some(p) = r.pids() {
        let limit = p.limit();
        w.set(
            "pids.max",
            if limit <= 0 {
                "max".to_string()
            } else {
                limit.to_string()
            },
        );
    }

    if let Some(b) = r.block_io() {
        configure_block_io(w, b)?;
    }

    if let Some(limits) = r.hugepage_limits() {
        for (i, h) in limits.iter().enumerate() {
            let size = h.page_size();
            if size.is_empty() || !size.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(TranslateError::invalid(
                    format!("linux.resources.hugepageLimits[{i}].pageSize"),
                    format!("{size:?} is not a page size like 2MB"),
                    "give the size as the hugetlb controller names it (2MB, 1GB)",
                ));
            }
            if w.v1() {
                w.set(&format!("hugetlb.{size}.limit_in_bytes"), h.limit());
            } else {
                w.set(&format!("hugetlb.{size}.max"), v2_limit(h.limit()));
            }
        }
    }

    if let Some(n) = r.network() {
        if !w.v1() {
            return Err(w.only_on("linux.resources.network", "v1"));
        }
        if let Some(id) = n.class_id() {
            w.set("net_cls.classid", id);
        }
        for p in n.priorities().iter().flatten() {
            w.set(
                "net_prio.ifpriomap",
                format!("{} {}", p.name(), p.priority()),
            );
        }
    }

    if let Some(rdma) = r.rdma() {
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
            w.set("rdma.max", v);
        }
    }

    if let Some(unified) = r.unified() {
        let mut keys: Vec<&String> = unified.keys().collect();
        keys.sort();
        for k in keys {
            let field = format!("linux.resources.unified.{k}");
            if w.v1() {
                return Err(w.only_on(&field, "v2"));
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
            w.set(k, v);
        }
    }
    Ok(())
}

fn configure_block_io(
    w: &mut Writer,
    b: &oci_spec::runtime::LinuxBlockIo,
) -> Result<(), TranslateError> {
    let f = "linux.resources.blockIO";
    if let Some(weight) = b.weight() {
        if w.v1() {
            w.set("blkio.weight", weight);
        } else {
            w.set("io.weight", blkio_to_io_weight(weight));
        }
    }
    if let Some(lw) = b.leaf_weight() {
        if !w.v1() {
            return Err(w.only_on(&format!("{f}.leafWeight"), "v1"));
        }
        w.set("blkio.leaf_weight", lw);
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        if let Some(weight) = d.weight() {
            if w.v1() {
                w.set(
                    "blkio.weight_device",
                    format!("{}:{} {weight}", d.major(), d.minor()),
                );
            } else {
                w.set(
                    "io.weight",
                    format!("{}:{} {}", d.major(), d.minor(), blkio_to_io_weight(weight)),
                );
            }
        }
        if d.leaf_weight().is_some() {
            if !w.v1() {
                return Err(w.only_on(&format!("{f}.weightDevice[{i}].leafWeight"), "v1"));
            }
            if let Some(lw) = d.leaf_weight() {
                w.set(
                    "blkio.leaf_weight_device",
                    format!("{}:{} {lw}", d.major(), d.minor()),
                );
            }
        }
    }
    let throttles = [
        (
            b.throttle_read_bps_device(),
            "blkio.throttle.read_bps_device",
            "rbps",
        ),
        (
            b.throttle_write_bps_device(),
            "blkio.throttle.write_bps_device",
            "wbps",
        ),
        (
            b.throttle_read_iops_device(),
            "blkio.throttle.read_iops_device",
            "riops",
        ),
        (
            b.throttle_write_iops_device(),
            "blkio.throttle.write_iops_device",
            "wiops",
        ),
    ];
    for (list, v1_file, v2_key) in throttles {
        for d in list.iter().flatten() {
            if w.v1() {
                w.set(v1_file, format!("{}:{} {}", d.major(), d.minor(), d.rate()));
            } else {
                w.set(
                    "io.max",
                    format!("{}:{} {v2_key}={}", d.major(), d.minor(), d.rate()),
                );
            }
        }
    }
    Ok(())
}

/// runc's conversion of blkio.weight [10, 1000] onto io.weight [1, 10000].
fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    let w = u64::from(w.clamp(10, 1000));
    1 + (w - 10) * 9999 / 990
}

fn device_rule(d: &LinuxDeviceCgroup, field: &str) -> Result<String, TranslateError> {
    let typ = match d.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => "a",
        LinuxDeviceType::B => "b",
        LinuxDeviceType::C | LinuxDeviceType::U => "c",
        LinuxDeviceType::P => {
            return Err(TranslateError::invalid(
                format!("{field}.type"),
                "\"p\" (FIFO) has no device cgroup rule",
                "use a, b or c",
            ))
        }
    };
    let access = d.access().as_deref().unwrap_or("rwm");
    let access = if access.is_empty() { "rwm" } else { access };
    if !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
        return Err(TranslateError::invalid(
            format!("{field}.access"),
            format!("{access:?} is not a combination of r, w and m"),
            "give access as r, w, m or a combination (rwm)",
        ));
    }
    let num = |v: Option<i64>| match v {
        Some(n) if n >= 0 => n.to_string(),
        _ => "*".to_string(),
    };
    if typ == "a" && d.major().is_none() && d.minor().is_none() {
        if !(access.contains('r') && access.contains('w') && access.contains('m')) {
            return Err(TranslateError::unsupported(
                format!("{field}.access"),
                format!("a rule for all devices with partial access {access:?}"),
                "use access rwm for a rule covering all devices",
            ));
        }
        return Ok("a".to_string());
    }
    Ok(format!(
        "{typ} {}:{} {access}",
        num(d.major()),
        num(d.minor())
    ))
}

/// `lxc.cgroup.devices.allow`/`deny` (v1) or `lxc.cgroup2.devices.allow`/`deny` (v2, LXC's
/// BPF device program): the spec's `linux.resources.devices` in order, then an allow rule for
/// each node of `linux.devices`, then runc's default rules ([`DEFAULT_DEVICE_RULES`]). Without
/// `linux.resources.devices` nothing is written (no device cgroup restriction).
fn configure_device_rules(
    cfg: &mut LxcConfig,
    spec: &Spec,
    prefix: &str,
    resources: Option<&LinuxResources>,
) -> Result<(), TranslateError> {
    let Some(rules) = resources.and_then(|r| r.devices().as_ref()) else {
        return Ok(());
    };
    for (i, d) in rules.iter().enumerate() {
        let rule = device_rule(d, &format!("linux.resources.devices[{i}]"))?;
        let key = if d.allow() { "allow" } else { "deny" };
        cfg.set(format!("{prefix}.devices.{key}"), rule);
    }
    let devices = spec.linux().as_ref().and_then(|l| l.devices().as_ref());
    for d in devices.iter().copied().flatten() {
        let t = match d.typ() {
            LinuxDeviceType::B => "b",
            LinuxDeviceType::C | LinuxDeviceType::U => "c",
            // FIFOs and "a" are not governed by the device cgroup.
            _ => continue,
        };
        cfg.set(
            format!("{prefix}.devices.allow"),
            format!("{t} {}:{} rwm", d.major(), d.minor()),
        );
    }
    for rule in DEFAULT_DEVICE_RULES {
        cfg.set(format!("{prefix}.devices.allow"), *rule);
    }
    Ok(())
}
