//! `linux.cgroupsPath` and `linux.resources` as LXC keys: `lxc.cgroup.dir.*`, the limits as
//! `lxc.cgroup.<file>` (v1) / `lxc.cgroup2.<file>` (v2) from the one conversion
//! (`crate::cgroup_settings`, which Update uses too), and the device rules.

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

/// Everything about cgroups: where (`configure_cgroup_dir`), the limits (`lxc.cgroup[2].<file>`
/// for each of [`crate::cgroup_settings::settings`]), and the device rules
/// (`configure_device_rules`).
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
        for s in crate::cgroup_settings::settings(r, opts.cgroup)? {
            cfg.set(format!("{prefix}.{}", s.file), s.value);
        }
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
