//! A running container's cgroup files: metrics for `Stats` (containerd's cgroups v1 `Metrics` on
//! a v1 or hybrid host, its v2 `Metrics` on a unified host), new limits for `Update` (the files
//! and values of [`crate::cgroup_settings`], the conversion Create uses too), and the cpuset
//! parents Create readies.
//!
//! The cgroup is found from the container's init (`/proc/PID/cgroup`), so it is always the one
//! LXC made from the spec's `cgroupsPath`.

use crate::cgroup_settings::{self, Setting};
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
/// container's cgroup: memory, cpu (shares/weight, quota and period, burst, idle, cpuset) and
/// pids, as [`cgroup_settings::settings`] converts them (the values Create gives LXC). Device
/// rules, hugepage and blkio limits are left as they are (see [`not_updated`]); network and RDMA
/// limits are an error naming them.
pub fn update(pid: i32, r: &LinuxResources) -> Result<(), String> {
    let dirs = host::cgroup_dirs(pid);
    if dirs.is_empty() {
        return Err(format!("process {pid} has no cgroup (has it exited?)"));
    }
    update_dirs(&dirs, host::cgroup_mode(), r)
}

/// The fields of an update that [`update`] does not apply: [`cgroup_settings::not_updated`].
pub fn not_updated(r: &LinuxResources) -> Vec<&'static str> {
    cgroup_settings::not_updated(r)
}

const V1_LIMIT: &str = "memory.limit_in_bytes";
const V1_MEMSW: &str = "memory.memsw.limit_in_bytes";

/// cgroup v1's memory limit and memory+swap limit: the kernel keeps the limit at most the
/// memory+swap limit at every step, so when the new memory+swap limit is unlimited or above the
/// `current` memory limit it goes first (raising both), else the memory limit does (lowering
/// both). Moves the memory+swap setting before the memory limit when it must go first.
fn order_v1_memory_and_swap(settings: &mut Vec<Setting>, current: Option<i64>) {
    let pos = |f: &str| settings.iter().position(|s| s.file == f);
    let (Some(limit), Some(memsw)) = (pos(V1_LIMIT), pos(V1_MEMSW)) else {
        return;
    };
    let swap: i64 = settings[memsw].value.parse().unwrap_or(-1);
    let swap_first = swap < 0 || current.unwrap_or(i64::MAX) < swap;
    if swap_first && memsw > limit {
        let s = settings.remove(memsw);
        settings.insert(limit, s);
    }
}

/// [`update`] on the container's cgroup directories.
fn update_dirs(dirs: &[PathBuf], mode: CgroupMode, r: &LinuxResources) -> Result<(), String> {
    let need = |file: &str| {
        dir_with(dirs, file).ok_or_else(|| format!("the container's cgroup has no {file}"))
    };
    let mut settings = cgroup_settings::update_settings(r, mode)?;
    if mode == CgroupMode::V1 && settings.iter().any(|s| s.file == V1_MEMSW) {
        let current = need(V1_LIMIT)
            .ok()
            .and_then(|d| read(&d, V1_LIMIT))
            .and_then(|v| v.parse().ok());
        order_v1_memory_and_swap(&mut settings, current);
    }
    for s in &settings {
        let dir = need(&s.file).map_err(|e| {
            if s.file == V1_MEMSW {
                format!(
                    "{e} (swap accounting is off: boot with swapaccount=1, or give no swap limit)"
                )
            } else {
                e
            }
        })?;
        write(&dir, &s.file, &s.value)?;
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
        update_dirs(&dirs, CgroupMode::V2, &r).unwrap();
        assert_eq!(file(&d, "memory.max"), "33554432");
        assert_eq!(file(&d, "memory.low"), "1048576");
        // runc's conversion: shares 1024 -> weight 39.
        assert_eq!(file(&d, "cpu.weight"), "39");
        assert_eq!(file(&d, "cpu.max"), "50000 100000");
        assert_eq!(file(&d, "pids.max"), "64");

        // No limit: "max".
        let r =
            resources(r#"{"memory": {"limit": -1}, "cpu": {"quota": -1}, "pids": {"limit": 0}}"#);
        update_dirs(&dirs, CgroupMode::V2, &r).unwrap();
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
        update_dirs(&dirs, CgroupMode::V1, &r).unwrap();
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
        let e = update_dirs(
            &dirs,
            CgroupMode::V2,
            &resources(r#"{"pids": {"limit": 5}}"#),
        )
        .unwrap_err();
        assert!(e.contains("pids.max"), "{e}");
        let e = update_dirs(
            &dirs,
            CgroupMode::V2,
            &resources(r#"{"network": {"classID": 1}}"#),
        )
        .unwrap_err();
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
        let list = |limit: i64, swap: i64| {
            let r = resources(&format!(
                r#"{{"memory": {{"limit": {limit}, "swap": {swap}}}}}"#
            ));
            cgroup_settings::settings(&r, CgroupMode::V1).unwrap()
        };
        let files = |l: &[Setting]| l.iter().map(|s| s.file.clone()).collect::<Vec<_>>();
        // Raising 64M -> 96M: memory+swap first.
        let mut l = list(100663296, 100663296);
        order_v1_memory_and_swap(&mut l, Some(67108864));
        assert_eq!(files(&l), [V1_MEMSW, V1_LIMIT]);
        // Lowering 64M -> 32M: the limit first.
        let mut l = list(33554432, 33554432);
        order_v1_memory_and_swap(&mut l, Some(67108864));
        assert_eq!(files(&l), [V1_LIMIT, V1_MEMSW]);
        // Unlimited swap goes first whatever the current limit.
        let mut l = list(33554432, -1);
        order_v1_memory_and_swap(&mut l, Some(1 << 40));
        assert_eq!(files(&l), [V1_MEMSW, V1_LIMIT]);

        // The writes in that order, on files.
        let d = fixture(&[(V1_LIMIT, "67108864"), (V1_MEMSW, "67108864")]);
        let dirs = vec![d.path().to_path_buf()];
        let r = resources(r#"{"memory": {"limit": 100663296, "swap": 134217728}}"#);
        update_dirs(&dirs, CgroupMode::V1, &r).unwrap();
        assert_eq!(file(&d, V1_LIMIT), "100663296");
        assert_eq!(file(&d, V1_MEMSW), "134217728");

        // Without swap accounting a swap limit is an error that says so.
        let d = fixture(&[(V1_LIMIT, "0")]);
        let dirs = vec![d.path().to_path_buf()];
        let e = update_dirs(
            &dirs,
            CgroupMode::V1,
            &resources(r#"{"memory": {"swap": 1}}"#),
        )
        .unwrap_err();
        assert!(e.contains("swapaccount=1"), "{e}");
    }

    /// What the two paths disagreed on before they shared the conversion: an unlimited
    /// reservation (v2 refuses `-1`), `shares: 0` (unset), an empty cpuset list.
    #[test]
    fn update_writes_what_create_writes_for_unset_and_unlimited_values() {
        let d = fixture(&[
            ("memory.low", "0"),
            ("cpu.weight", "100"),
            ("cpuset.cpus", "0-1"),
        ]);
        let dirs = vec![d.path().to_path_buf()];
        let r = resources(r#"{"memory": {"reservation": -1}, "cpu": {"shares": 0, "cpus": ""}}"#);
        update_dirs(&dirs, CgroupMode::V2, &r).unwrap();
        assert_eq!(file(&d, "memory.low"), "max");
        assert_eq!(file(&d, "cpu.weight"), "100", "shares 0 is unset");
        assert_eq!(file(&d, "cpuset.cpus"), "0-1", "an empty list is unset");
        // A swap below the limit is refused before anything is written.
        let e = update_dirs(
            &dirs,
            CgroupMode::V2,
            &resources(r#"{"memory": {"reservation": 5, "limit": 100, "swap": 50}}"#),
        )
        .unwrap_err();
        assert!(e.contains("below the memory limit"), "{e}");
        assert_eq!(file(&d, "memory.low"), "max");
    }

    /// Update writes exactly the values Create gives LXC (`lxc.cgroup[2].<file>`), for every
    /// field it applies, on both cgroup versions.
    #[test]
    fn update_and_create_agree() {
        let json = r#"{"memory": {"limit": 536870912, "reservation": -1, "swap": 1073741824},
                       "cpu": {"shares": 512, "quota": 150000, "period": 100000, "burst": 1000,
                               "cpus": "0-1", "mems": "0"},
                       "pids": {"limit": -1}}"#;
        for mode in [CgroupMode::V1, CgroupMode::V2] {
            let spec: oci_spec::runtime::Spec = serde_json::from_value(serde_json::json!({
                "ociVersion": "1.1.0",
                "linux": {
                    "namespaces": [{"type": "mount"}],
                    "resources": serde_json::from_str::<serde_json::Value>(json).unwrap()
                }
            }))
            .unwrap();
            let opts = crate::lxcconf::Options {
                rootfs: "/r".into(),
                cgroup: mode,
                ..Default::default()
            };
            let cfg = crate::lxcconf::translate(&spec, &opts).unwrap();
            let prefix = if mode == CgroupMode::V1 {
                "lxc.cgroup."
            } else {
                "lxc.cgroup2."
            };
            let keys: Vec<(String, String)> = cfg
                .items()
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_string(), v.clone())))
                .filter(|(k, _)| !k.starts_with("dir."))
                .collect();
            assert!(keys.len() >= 6, "{mode:?}: {keys:?}");
            let d = fixture(&[]);
            for (f, _) in &keys {
                std::fs::write(d.path().join(f), "").unwrap();
            }
            update_dirs(&[d.path().to_path_buf()], mode, &resources(json)).unwrap();
            for (f, v) in &keys {
                assert_eq!(&file(&d, f), v, "{mode:?}: {f}");
            }
        }
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
        update_dirs(&dirs, CgroupMode::V1, &r).unwrap();
        assert_eq!(
            std::fs::read_to_string(d.path().join("memory.limit_in_bytes")).unwrap(),
            "100663296"
        );
        assert_eq!(not_updated(&r), vec!["devices"]);
    }
}
