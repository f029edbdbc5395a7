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

/// Readies the legacy cpuset controller for a container cgroup `dir` (`/a/b/leaf`, from
/// `lxc.cgroup.dir.container`) whose parents someone else made, the kubelet's pod cgroup
/// `/kubepods/.../pod<uid>` above all. LXC initialises cpuset only in the first level of the
/// path and relies on `cgroup.clone_children` for the levels below; a parent made without it
/// (libcontainer copies cpus and mems but leaves clone_children 0) gives the cgroups LXC makes
/// below it empty `cpuset.cpus`/`cpuset.mems`, which no process can enter (ENOSPC). So in the
/// deepest existing parent: cpus and mems copied from its own parent where empty, then
/// clone_children on, what LXC itself does to the first level. No-op on v2 and when no parent
/// below the root exists.
pub fn prepare_cpuset_parents(dir: &str) -> Result<(), String> {
    match cpuset_v1_root() {
        Some(root) => prepare_cpuset_parents_in(&root, dir),
        None => Ok(()),
    }
}

/// The mounted cgroup v1 hierarchy with the cpuset controller.
fn cpuset_v1_root() -> Option<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("cpuset.cpus").is_file() && !p.join("cgroup.controllers").exists())
}

fn prepare_cpuset_parents_in(root: &Path, dir: &str) -> Result<(), String> {
    let parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    let Some((_leaf, parents)) = parts.split_last() else {
        return Ok(());
    };
    let mut cur = root.to_path_buf();
    for part in parents {
        let next = cur.join(part);
        if !next.is_dir() {
            break;
        }
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if read(&next, file).unwrap_or_default().is_empty() {
                let value = read(&cur, file).unwrap_or_default();
                write(&next, file, value)?;
            }
        }
        cur = next;
    }
    if cur != root && read(&cur, "cgroup.clone_children").as_deref() != Some("1") {
        write(&cur, "cgroup.clone_children", 1)?;
    }
    Ok(())
}

fn write(dir: &Path, file: &str, value: impl ToString) -> Result<(), String> {
    let path = dir.join(file);
    std::fs::write(&path, value.to_string())
        .map_err(|e| format!("writing {} to {}: {e}", value.to_string(), path.display()))
}

/// Applies new limits (`ctr task update`, CRI UpdateContainerResources) to the running
/// container's cgroup: memory, cpu (shares/weight, quota and period, cpuset) and pids. Device
/// rules and hugepage limits are left as they are (see [`not_updated`]); network and RDMA limits
/// are an error naming them.
pub fn update(pid: i32, r: &LinuxResources) -> Result<(), String> {
    let dirs = host::cgroup_dirs(pid);
    if dirs.is_empty() {
        return Err(format!("process {pid} has no cgroup (has it exited?)"));
    }
    update_dirs(&dirs, host::cgroup_mode() == CgroupMode::V2, r)
}

/// The fields of an update that [`update`] does not apply (it applies the rest): named so the
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

/// cgroup v1's memory limit and memory+swap limit: the kernel keeps the limit at most the
/// memory+swap limit at every step, so when the new memory+swap limit is above the current memory
/// limit it goes first (raising both), else the memory limit does (lowering both).
fn update_v1_memory_and_swap(
    need: &dyn Fn(&str) -> Result<PathBuf, String>,
    limit: Option<i64>,
    swap: Option<i64>,
) -> Result<(), String> {
    const LIMIT: &str = "memory.limit_in_bytes";
    const MEMSW: &str = "memory.memsw.limit_in_bytes";
    let swap_first = match (limit, swap) {
        (Some(_), Some(sw)) => {
            let current: i64 = read(&need(LIMIT)?, LIMIT)
                .and_then(|v| v.parse().ok())
                .unwrap_or(i64::MAX);
            sw < 0 || current < sw
        }
        _ => false,
    };
    let set_swap = |sw: i64| match need(MEMSW) {
        Ok(d) => write(&d, MEMSW, sw),
        Err(e) => Err(format!(
            "{e} (swap accounting is off: boot with swapaccount=1, or give no swap limit)"
        )),
    };
    if swap_first {
        if let Some(sw) = swap {
            set_swap(sw)?;
        }
    }
    if let Some(l) = limit {
        write(&need(LIMIT)?, LIMIT, l)?;
    }
    if !swap_first {
        if let Some(sw) = swap {
            set_swap(sw)?;
        }
    }
    Ok(())
}

/// [`update`] on the container's cgroup directories (`v2`: the unified hierarchy's files).
fn update_dirs(dirs: &[PathBuf], v2: bool, r: &LinuxResources) -> Result<(), String> {
    let need = |file: &str| {
        dir_with(dirs, file).ok_or_else(|| format!("the container's cgroup has no {file}"))
    };
    if r.network().is_some() || r.rdma().is_some() {
        return Err(
            "network and RDMA limits cannot be updated on a running container (memory, cpu \
             and pids can)"
                .into(),
        );
    }
    if let Some(mem) = r.memory() {
        if v2 {
            if let Some(limit) = mem.limit() {
                let value = if limit < 0 {
                    "max".to_string()
                } else {
                    limit.to_string()
                };
                write(&need("memory.max")?, "memory.max", value)?;
            }
            if let Some(swap) = mem.swap() {
                // OCI's swap is memory+swap; v2's memory.swap.max is swap alone.
                let value = match (swap, mem.limit()) {
                    (s, _) if s < 0 => "max".to_string(),
                    (0, _) => "0".to_string(),
                    (s, Some(l)) if l < 0 => s.to_string(),
                    (s, Some(l)) if l > 0 && s >= l => (s - l).to_string(),
                    (s, l) => {
                        return Err(format!(
                            "swap (memory+swap) {s} cannot be converted to cgroup v2 with memory \
                             limit {l:?}: give a memory limit, and a swap at least as large"
                        ))
                    }
                };
                write(&need("memory.swap.max")?, "memory.swap.max", value)?;
            }
        } else {
            update_v1_memory_and_swap(&need, mem.limit(), mem.swap())?;
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
            vec!["blockIO", "memory.swappiness", "cpu.realtime"]
        );
        assert!(not_updated(&resources(r#"{"memory": {"limit": 1}}"#)).is_empty());
    }

    #[test]
    fn update_names_what_it_cannot_do() {
        let d = fixture(&[("memory.max", "max")]);
        let dirs = vec![d.path().to_path_buf()];
        let e = update_dirs(&dirs, true, &resources(r#"{"pids": {"limit": 5}}"#)).unwrap_err();
        assert!(e.contains("pids.max"), "{e}");
        let e = update_dirs(&dirs, true, &resources(r#"{"network": {"classID": 1}}"#)).unwrap_err();
        assert!(e.contains("network and RDMA"), "{e}");
    }

    #[test]
    fn cpuset_parents_made_by_a_kubelet_get_clone_children() {
        let root = fixture(&[
            ("cpuset.cpus", "0-3\n"),
            ("cpuset.mems", "0\n"),
            ("cgroup.clone_children", "0\n"),
        ]);
        // kubepods: initialised, no clone_children; pod: made but empty (the kernel's state
        // of a new cpuset cgroup).
        let kubepods = root.path().join("kubepods");
        let pod = kubepods.join("pod1");
        std::fs::create_dir_all(&pod).unwrap();
        for (d, cpus, mems) in [(&kubepods, "0-3", "0"), (&pod, "", "")] {
            std::fs::write(d.join("cpuset.cpus"), cpus).unwrap();
            std::fs::write(d.join("cpuset.mems"), mems).unwrap();
            std::fs::write(d.join("cgroup.clone_children"), "0").unwrap();
        }
        prepare_cpuset_parents_in(root.path(), "/kubepods/pod1/abc/ctr").unwrap();
        let get = |d: &Path, f: &str| read(d, f).unwrap();
        assert_eq!(get(&pod, "cpuset.cpus"), "0-3");
        assert_eq!(get(&pod, "cpuset.mems"), "0");
        assert_eq!(get(&pod, "cgroup.clone_children"), "1");
        assert_eq!(
            get(&kubepods, "cgroup.clone_children"),
            "0",
            "only the deepest"
        );
        assert_eq!(get(root.path(), "cgroup.clone_children"), "0");

        // No parent below the root exists: nothing is written.
        let fresh = fixture(&[("cpuset.cpus", "0-3"), ("cgroup.clone_children", "0")]);
        prepare_cpuset_parents_in(fresh.path(), "/k8s.io/ctr").unwrap();
        assert_eq!(read(fresh.path(), "cgroup.clone_children").unwrap(), "0");
        prepare_cpuset_parents_in(fresh.path(), "ctr").unwrap();
    }

    #[test]
    fn v1_swap_goes_first_when_raising_and_last_when_lowering() {
        // A fixture cannot enforce limit <= memsw: record the order of the writes instead.
        let d = fixture(&[
            ("memory.limit_in_bytes", "67108864"),
            ("memory.memsw.limit_in_bytes", "67108864"),
        ]);
        let dir = d.path().to_path_buf();
        let order = std::cell::RefCell::new(Vec::new());
        let need = |f: &str| {
            order.borrow_mut().push(f.to_string());
            Ok(dir.clone())
        };
        update_v1_memory_and_swap(&need, Some(100663296), Some(100663296)).unwrap();
        assert_eq!(file(&d, "memory.limit_in_bytes"), "100663296");
        assert_eq!(file(&d, "memory.memsw.limit_in_bytes"), "100663296");
        // The first lookup reads the current limit; then the writes in their order.
        assert_eq!(
            order.borrow()[1..],
            ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
        );
        order.borrow_mut().clear();
        update_v1_memory_and_swap(&need, Some(33554432), Some(33554432)).unwrap();
        assert_eq!(
            order.borrow()[1..],
            ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
        );
        assert_eq!(file(&d, "memory.memsw.limit_in_bytes"), "33554432");
        // Without swap accounting a swap limit is an error that says so.
        let no_memsw = |f: &str| {
            if f.contains("memsw") {
                Err(format!("the container's cgroup has no {f}"))
            } else {
                Ok(dir.clone())
            }
        };
        let e = update_v1_memory_and_swap(&no_memsw, None, Some(1)).unwrap_err();
        assert!(e.contains("swapaccount=1"), "{e}");
    }

    #[test]
    fn cri_updates_carry_device_rules_that_are_left_alone() {
        // What containerd's CRI plugin sends: the whole resources, device rules included.
        let d = fixture(&[("memory.limit_in_bytes", "0")]);
        let dirs = vec![d.path().to_path_buf()];
        let r = resources(
            r#"{"devices": [{"allow": false, "access": "rwm"}], "hugepageLimits": [],
                "memory": {"limit": 100663296}}"#,
        );
        update_dirs(&dirs, false, &r).unwrap();
        assert_eq!(
            std::fs::read_to_string(d.path().join("memory.limit_in_bytes")).unwrap(),
            "100663296"
        );
        assert_eq!(not_updated(&r), vec!["devices"]);
    }
}
