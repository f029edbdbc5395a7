//! A running container's cgroup: metrics for `Stats` (containerd's cgroups v1 `Metrics` on a v1
//! or hybrid host, its v2 `Metrics` on a unified host) and new limits for `Update`.
//!
//! The cgroup is found from the container's init (`/proc/PID/cgroup`), so it is always the one
//! LXC made from the spec's `cgroupsPath`.

use crate::host;
use crate::lxcconf::CgroupMode;
use containerd_shim_protos::cgroups::metrics as v1;
use containerd_shim_protos::cgroups_v2::metrics as v2;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::MessageField;
use oci_spec::runtime::LinuxResources;
use std::path::{Path, PathBuf};

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file))
        .ok()
        .map(|s| s.trim().to_string())
}

/// A number from a cgroup file; "max" (no limit) is 0, as containerd reports it.
fn num(dir: &Path, file: &str) -> u64 {
    read(dir, file)
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// `key value` lines (memory.stat, cpu.stat, cpuacct.stat).
fn keyed(dir: &Path, file: &str) -> std::collections::HashMap<String, u64> {
    read(dir, file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.parse().ok()?))
        })
        .collect()
}

/// The cgroup directory (among the container's) that holds `file`.
fn dir_with(dirs: &[PathBuf], file: &str) -> Option<PathBuf> {
    dirs.iter().find(|d| d.join(file).exists()).cloned()
}

/// Metrics of the container whose init is `pid`, as the `Any` containerd decodes.
pub fn metrics(pid: i32) -> Result<Any, String> {
    let dirs = host::cgroup_dirs(pid);
    if dirs.is_empty() {
        return Err(format!("process {pid} has no cgroup (has it exited?)"));
    }
    let any = match host::cgroup_mode() {
        CgroupMode::V2 => {
            let d = dir_with(&dirs, "cgroup.controllers").ok_or("no cgroup v2 directory")?;
            containerd_shim::util::convert_to_any(Box::new(metrics_v2(&d)))
        }
        CgroupMode::V1 => containerd_shim::util::convert_to_any(Box::new(metrics_v1(&dirs))),
    };
    any.map_err(|e| format!("encoding metrics: {e}"))
}

fn metrics_v1(dirs: &[PathBuf]) -> v1::Metrics {
    let mut m = v1::Metrics::new();
    if let Some(d) = dir_with(dirs, "pids.current") {
        m.pids = MessageField::some(v1::PidsStat {
            current: num(&d, "pids.current"),
            limit: num(&d, "pids.max"),
            ..Default::default()
        });
    }
    if let Some(d) = dir_with(dirs, "cpuacct.usage") {
        let per_cpu = read(&d, "cpuacct.usage_percpu")
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        let usage = v1::CPUUsage {
            total: num(&d, "cpuacct.usage"),
            user: num(&d, "cpuacct.usage_user"),
            kernel: num(&d, "cpuacct.usage_sys"),
            per_cpu,
            ..Default::default()
        };
        let mut cpu = v1::CPUStat {
            usage: MessageField::some(usage),
            ..Default::default()
        };
        if let Some(c) = dir_with(dirs, "cpu.stat") {
            let st = keyed(&c, "cpu.stat");
            let g = |k: &str| st.get(k).copied().unwrap_or(0);
            cpu.throttling = MessageField::some(v1::Throttle {
                periods: g("nr_periods"),
                throttled_periods: g("nr_throttled"),
                throttled_time: g("throttled_time"),
                ..Default::default()
            });
        }
        m.cpu = MessageField::some(cpu);
    }
    if let Some(d) = dir_with(dirs, "memory.usage_in_bytes") {
        let st = keyed(&d, "memory.stat");
        let g = |k: &str| st.get(k).copied().unwrap_or(0);
        let entry = |prefix: &str| v1::MemoryEntry {
            usage: num(&d, &format!("{prefix}.usage_in_bytes")),
            limit: num(&d, &format!("{prefix}.limit_in_bytes")),
            max: num(&d, &format!("{prefix}.max_usage_in_bytes")),
            failcnt: num(&d, &format!("{prefix}.failcnt")),
            ..Default::default()
        };
        let mut mem = v1::MemoryStat {
            cache: g("cache"),
            rss: g("rss"),
            rss_huge: g("rss_huge"),
            mapped_file: g("mapped_file"),
            dirty: g("dirty"),
            writeback: g("writeback"),
            pg_pg_in: g("pgpgin"),
            pg_pg_out: g("pgpgout"),
            pg_fault: g("pgfault"),
            pg_maj_fault: g("pgmajfault"),
            inactive_anon: g("inactive_anon"),
            active_anon: g("active_anon"),
            inactive_file: g("inactive_file"),
            active_file: g("active_file"),
            unevictable: g("unevictable"),
            hierarchical_memory_limit: g("hierarchical_memory_limit"),
            hierarchical_swap_limit: g("hierarchical_memsw_limit"),
            total_cache: g("total_cache"),
            total_rss: g("total_rss"),
            total_rss_huge: g("total_rss_huge"),
            total_mapped_file: g("total_mapped_file"),
            total_dirty: g("total_dirty"),
            total_writeback: g("total_writeback"),
            total_pg_pg_in: g("total_pgpgin"),
            total_pg_pg_out: g("total_pgpgout"),
            total_pg_fault: g("total_pgfault"),
            total_pg_maj_fault: g("total_pgmajfault"),
            total_inactive_anon: g("total_inactive_anon"),
            total_active_anon: g("total_active_anon"),
            total_inactive_file: g("total_inactive_file"),
            total_active_file: g("total_active_file"),
            total_unevictable: g("total_unevictable"),
            usage: MessageField::some(entry("memory")),
            ..Default::default()
        };
        if d.join("memory.memsw.usage_in_bytes").exists() {
            mem.swap = MessageField::some(entry("memory.memsw"));
        }
        if d.join("memory.kmem.usage_in_bytes").exists() {
            mem.kernel = MessageField::some(entry("memory.kmem"));
        }
        m.memory = MessageField::some(mem);
    }
    if let Some(d) = dir_with(dirs, "blkio.throttle.io_service_bytes_recursive") {
        let entries = |file: &str| -> Vec<v1::BlkIOEntry> {
            read(&d, file)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    let [dev, op, value] = f[..] else { return None };
                    let (major, minor) = dev.split_once(':')?;
                    Some(v1::BlkIOEntry {
                        op: op.to_string(),
                        major: major.parse().ok()?,
                        minor: minor.parse().ok()?,
                        value: value.parse().ok()?,
                        ..Default::default()
                    })
                })
                .collect()
        };
        m.blkio = MessageField::some(v1::BlkIOStat {
            io_service_bytes_recursive: entries("blkio.throttle.io_service_bytes_recursive"),
            io_serviced_recursive: entries("blkio.throttle.io_serviced_recursive"),
            ..Default::default()
        });
    }
    m
}

fn metrics_v2(d: &Path) -> v2::Metrics {
    let mut m = v2::Metrics::new();
    m.pids = MessageField::some(v2::PidsStat {
        current: num(d, "pids.current"),
        limit: num(d, "pids.max"),
        ..Default::default()
    });
    let cpu = keyed(d, "cpu.stat");
    let c = |k: &str| cpu.get(k).copied().unwrap_or(0);
    m.cpu = MessageField::some(v2::CPUStat {
        usage_usec: c("usage_usec"),
        user_usec: c("user_usec"),
        system_usec: c("system_usec"),
        nr_periods: c("nr_periods"),
        nr_throttled: c("nr_throttled"),
        throttled_usec: c("throttled_usec"),
        ..Default::default()
    });
    let st = keyed(d, "memory.stat");
    let g = |k: &str| st.get(k).copied().unwrap_or(0);
    m.memory = MessageField::some(v2::MemoryStat {
        anon: g("anon"),
        file: g("file"),
        kernel_stack: g("kernel_stack"),
        slab: g("slab"),
        sock: g("sock"),
        shmem: g("shmem"),
        file_mapped: g("file_mapped"),
        file_dirty: g("file_dirty"),
        usage: num(d, "memory.current"),
        usage_limit: num(d, "memory.max"),
        max_usage: num(d, "memory.peak"),
        swap_usage: num(d, "memory.swap.current"),
        swap_limit: num(d, "memory.swap.max"),
        ..Default::default()
    });
    let usage = read(d, "io.stat")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (major, minor) = it.next()?.split_once(':')?;
            let mut e = v2::IOEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                ..Default::default()
            };
            for kv in it {
                let (k, v) = kv.split_once('=')?;
                let v = v.parse().unwrap_or(0);
                match k {
                    "rbytes" => e.rbytes = v,
                    "wbytes" => e.wbytes = v,
                    "rios" => e.rios = v,
                    "wios" => e.wios = v,
                    _ => {}
                }
            }
            Some(e)
        })
        .collect();
    m.io = MessageField::some(v2::IOStat {
        usage,
        ..Default::default()
    });
    m
}

fn write(dir: &Path, file: &str, value: impl ToString) -> Result<(), String> {
    let path = dir.join(file);
    std::fs::write(&path, value.to_string())
        .map_err(|e| format!("writing {} to {}: {e}", value.to_string(), path.display()))
}

/// Applies new limits (`ctr task update`) to the running container's cgroup: memory, cpu
/// (shares/weight, quota and period, cpuset) and pids. Other resources are an error naming them.
pub fn update(pid: i32, r: &LinuxResources) -> Result<(), String> {
    let dirs = host::cgroup_dirs(pid);
    if dirs.is_empty() {
        return Err(format!("process {pid} has no cgroup (has it exited?)"));
    }
    update_dirs(&dirs, host::cgroup_mode() == CgroupMode::V2, r)
}

/// The fields of an update that [`update`] does not apply (it applies the rest): named so the
/// shim can log them instead of dropping them silently.
pub fn not_updated(r: &LinuxResources) -> Vec<&'static str> {
    let mut out = Vec::new();
    if r.block_io().is_some() {
        out.push("blockIO");
    }
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        out.push("unified");
    }
    if let Some(m) = r.memory() {
        for (set, name) in [
            (m.swap().is_some(), "memory.swap"),
            (m.kernel().is_some(), "memory.kernel"),
            (m.kernel_tcp().is_some(), "memory.kernelTCP"),
            (m.swappiness().is_some(), "memory.swappiness"),
            (m.disable_oom_killer().is_some(), "memory.disableOOMKiller"),
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

/// [`update`] on the container's cgroup directories (`v2`: the unified hierarchy's files).
fn update_dirs(dirs: &[PathBuf], v2: bool, r: &LinuxResources) -> Result<(), String> {
    let need = |file: &str| {
        dir_with(dirs, file).ok_or_else(|| format!("the container's cgroup has no {file}"))
    };
    if r.devices().as_ref().is_some_and(|d| !d.is_empty())
        || r.hugepage_limits().is_some()
        || r.network().is_some()
        || r.rdma().is_some()
    {
        return Err(
            "only memory, cpu and pids limits can be updated on a running container".into(),
        );
    }
    if let Some(mem) = r.memory() {
        if let Some(limit) = mem.limit() {
            if v2 {
                let value = if limit < 0 {
                    "max".to_string()
                } else {
                    limit.to_string()
                };
                write(&need("memory.max")?, "memory.max", value)?;
            } else {
                write(
                    &need("memory.limit_in_bytes")?,
                    "memory.limit_in_bytes",
                    limit,
                )?;
            }
        }
        if let Some(res) = mem.reservation() {
            if v2 {
                write(&need("memory.low")?, "memory.low", res)?;
            } else {
                write(
                    &need("memory.soft_limit_in_bytes")?,
                    "memory.soft_limit_in_bytes",
                    res,
                )?;
            }
        }
    }
    if let Some(cpu) = r.cpu() {
        if let Some(shares) = cpu.shares() {
            if v2 {
                // runc's conversion of cgroup v1 shares [2, 262144] to v2 weight [1, 10000].
                let weight = 1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142;
                write(&need("cpu.weight")?, "cpu.weight", weight)?;
            } else {
                write(&need("cpu.shares")?, "cpu.shares", shares)?;
            }
        }
        if cpu.quota().is_some() || cpu.period().is_some() {
            if v2 {
                let d = need("cpu.max")?;
                let period = cpu.period().unwrap_or(100_000);
                let quota = match cpu.quota() {
                    Some(q) if q > 0 => q.to_string(),
                    _ => "max".to_string(),
                };
                write(&d, "cpu.max", format!("{quota} {period}"))?;
            } else {
                let d = need("cpu.cfs_quota_us")?;
                if let Some(p) = cpu.period() {
                    write(&d, "cpu.cfs_period_us", p)?;
                }
                if let Some(q) = cpu.quota() {
                    write(&d, "cpu.cfs_quota_us", q)?;
                }
            }
        }
        if let Some(cpus) = cpu.cpus() {
            write(&need("cpuset.cpus")?, "cpuset.cpus", cpus)?;
        }
        if let Some(mems) = cpu.mems() {
            write(&need("cpuset.mems")?, "cpuset.mems", mems)?;
        }
    }
    if let Some(pids) = r.pids() {
        let limit = pids.limit();
        let value = if limit <= 0 {
            "max".to_string()
        } else {
            limit.to_string()
        };
        write(&need("pids.max")?, "pids.max", value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cgroup directory made of files, as the kernel shows them (unit tests of the mapping;
    /// the real cgroups are exercised by the integration tests).
    fn fixture(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (name, content) in files {
            std::fs::write(d.path().join(name), content).unwrap();
        }
        d
    }

    #[test]
    fn v2_metrics_from_the_kernels_files() {
        let d = fixture(&[
            ("cgroup.controllers", "cpu memory pids io\n"),
            ("pids.current", "3\n"),
            ("pids.max", "max\n"),
            (
                "cpu.stat",
                "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 7\nnr_throttled 2\nthrottled_usec 90\n",
            ),
            ("memory.current", "4096000\n"),
            ("memory.max", "67108864\n"),
            ("memory.peak", "5000000\n"),
            ("memory.stat", "anon 1024\nfile 2048\nshmem 16\nslab 8\n"),
            ("memory.swap.current", "0\n"),
            ("memory.swap.max", "max\n"),
            ("io.stat", "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"),
        ]);
        let m = metrics_v2(d.path());
        assert_eq!((m.pids.current, m.pids.limit), (3, 0), "max reads as 0");
        assert_eq!(m.cpu.usage_usec, 1500);
        assert_eq!((m.cpu.user_usec, m.cpu.system_usec), (1000, 500));
        assert_eq!((m.cpu.nr_throttled, m.cpu.throttled_usec), (2, 90));
        assert_eq!(m.memory.usage, 4_096_000);
        assert_eq!(m.memory.usage_limit, 67_108_864);
        assert_eq!(m.memory.max_usage, 5_000_000);
        assert_eq!(
            (m.memory.anon, m.memory.file, m.memory.shmem),
            (1024, 2048, 16)
        );
        assert_eq!(m.io.usage.len(), 1);
        let io = &m.io.usage[0];
        assert_eq!(
            (io.major, io.minor, io.rbytes, io.wbytes, io.rios, io.wios),
            (8, 0, 4096, 8192, 1, 2)
        );
    }

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn file(d: &tempfile::TempDir, name: &str) -> String {
        std::fs::read_to_string(d.path().join(name)).unwrap()
    }

    #[test]
    fn v2_update_writes_the_unified_files() {
        let d = fixture(&[
            ("memory.max", "max"),
            ("memory.low", "0"),
            ("cpu.weight", "100"),
            ("cpu.max", "max 100000"),
            ("pids.max", "max"),
        ]);
        let dirs = vec![d.path().to_path_buf()];
        let r = resources(
            r#"{"memory": {"limit": 33554432, "reservation": 1048576},
                "cpu": {"shares": 1024, "quota": 50000, "period": 100000},
                "pids": {"limit": 64}}"#,
        );
        update_dirs(&dirs, true, &r).unwrap();
        assert_eq!(file(&d, "memory.max"), "33554432");
        assert_eq!(file(&d, "memory.low"), "1048576");
        // runc's conversion: shares 1024 -> weight 39.
        assert_eq!(file(&d, "cpu.weight"), "39");
        assert_eq!(file(&d, "cpu.max"), "50000 100000");
        assert_eq!(file(&d, "pids.max"), "64");

        // No limit: "max".
        let r =
            resources(r#"{"memory": {"limit": -1}, "cpu": {"quota": -1}, "pids": {"limit": 0}}"#);
        update_dirs(&dirs, true, &r).unwrap();
        assert_eq!(file(&d, "memory.max"), "max");
        assert_eq!(file(&d, "cpu.max"), "max 100000");
        assert_eq!(file(&d, "pids.max"), "max");
    }

    #[test]
    fn v1_update_writes_the_controller_files() {
        let mem = fixture(&[
            ("memory.limit_in_bytes", ""),
            ("memory.soft_limit_in_bytes", ""),
        ]);
        let cpu = fixture(&[
            ("cpu.shares", ""),
            ("cpu.cfs_quota_us", ""),
            ("cpu.cfs_period_us", ""),
        ]);
        let dirs = vec![mem.path().to_path_buf(), cpu.path().to_path_buf()];
        let r = resources(
            r#"{"memory": {"limit": 33554432}, "cpu": {"shares": 512, "quota": 20000, "period": 50000}}"#,
        );
        update_dirs(&dirs, false, &r).unwrap();
        assert_eq!(file(&mem, "memory.limit_in_bytes"), "33554432");
        assert_eq!(file(&cpu, "cpu.shares"), "512");
        assert_eq!(file(&cpu, "cpu.cfs_quota_us"), "20000");
        assert_eq!(file(&cpu, "cpu.cfs_period_us"), "50000");
    }

    #[test]
    fn fields_not_applied_are_named() {
        let r = resources(
            r#"{"memory": {"limit": 1, "swap": 2, "swappiness": 10}, "blockIO": {"weight": 10},
                "cpu": {"shares": 2, "realtimeRuntime": 5}}"#,
        );
        assert_eq!(
            not_updated(&r),
            vec![
                "blockIO",
                "memory.swap",
                "memory.swappiness",
                "cpu.realtime"
            ]
        );
        assert!(not_updated(&resources(r#"{"memory": {"limit": 1}}"#)).is_empty());
    }

    #[test]
    fn update_names_what_it_cannot_do() {
        let d = fixture(&[("memory.max", "max")]);
        let dirs = vec![d.path().to_path_buf()];
        let e = update_dirs(&dirs, true, &resources(r#"{"pids": {"limit": 5}}"#)).unwrap_err();
        assert!(e.contains("pids.max"), "{e}");
        let e = update_dirs(&dirs, true, &resources(r#"{"hugepageLimits": []}"#)).unwrap_err();
        assert!(e.contains("only memory, cpu and pids"), "{e}");
    }
}
