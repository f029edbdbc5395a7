//! `linux.resources.cpu`. v1: `cpu.shares`, `cpu.cfs_period_us`, `cpu.cfs_quota_us`,
//! `cpu.cfs_burst_us`, `cpu.rt_period_us`, `cpu.rt_runtime_us`. v2: `cpu.weight`, `cpu.max`,
//! `cpu.max.burst`, `cpu.idle`. Both: `cpuset.cpus`, `cpuset.mems`.

use oci_spec::runtime::LinuxCpu;

use super::Settings;
use crate::lxcconf::TranslateError;

const F: &str = "linux.resources.cpu";

pub(super) fn convert(s: &mut Settings, c: &LinuxCpu) -> Result<(), TranslateError> {
    // 0 shares is "not set", as runc reads it (the kernel would raise it to 2 on v1).
    if let Some(shares) = c.shares().filter(|&v| v != 0) {
        if s.v1() {
            s.set("cpu.shares", shares);
        } else {
            s.set("cpu.weight", shares_to_weight(shares));
        }
    }
    if s.v1() {
        if let Some(p) = c.period() {
            s.set("cpu.cfs_period_us", p);
        }
        if let Some(q) = c.quota() {
            s.set("cpu.cfs_quota_us", q);
        }
        if let Some(b) = c.burst() {
            s.set("cpu.cfs_burst_us", b);
        }
        if let Some(v) = c.realtime_period() {
            s.set("cpu.rt_period_us", v);
        }
        if let Some(v) = c.realtime_runtime() {
            s.set("cpu.rt_runtime_us", v);
        }
        if c.idle().is_some() {
            return Err(s.only_on(&format!("{F}.idle"), "v2"));
        }
    } else {
        if c.quota().is_some() || c.period().is_some() {
            let quota = match c.quota() {
                Some(q) if q > 0 => q.to_string(),
                _ => "max".to_string(),
            };
            let period = c.period().unwrap_or(100_000);
            s.set("cpu.max", format!("{quota} {period}"));
        }
        if let Some(b) = c.burst() {
            s.set("cpu.max.burst", b);
        }
        if let Some(v) = c.idle() {
            s.set("cpu.idle", v);
        }
        if c.realtime_period().is_some() || c.realtime_runtime().is_some() {
            return Err(s.only_on(&format!("{F}.realtimeRuntime"), "v1"));
        }
    }
    // An empty list is "not set": written, it would leave the cgroup no CPU or node.
    for (name, value) in [("cpus", c.cpus()), ("mems", c.mems())] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            if v.chars()
                .any(|ch| !(ch.is_ascii_digit() || ch == ',' || ch == '-'))
            {
                return Err(TranslateError::invalid(
                    format!("{F}.{name}"),
                    format!("{v:?} is not a list like 0-3,6"),
                    "give CPU or memory node numbers and ranges",
                ));
            }
            s.set(format!("cpuset.{name}"), v);
        }
    }
    Ok(())
}

/// runc's conversion of cgroup v1 shares [2, 262144] onto v2's weight [1, 10000].
pub(super) fn shares_to_weight(shares: u64) -> u64 {
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}
