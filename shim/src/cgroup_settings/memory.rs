//! `linux.resources.memory`. v1: `memory.limit_in_bytes`, `memory.soft_limit_in_bytes`,
//! `memory.memsw.limit_in_bytes`, `memory.swappiness`, `memory.oom_control`,
//! `memory.use_hierarchy`. v2: `memory.max`, `memory.low`, `memory.swap.max`.

use oci_spec::runtime::LinuxMemory;

use super::{v2_limit, Settings};
use crate::lxcconf::TranslateError;

const F: &str = "linux.resources.memory";

pub(super) fn convert(s: &mut Settings, m: &LinuxMemory) -> Result<(), TranslateError> {
    if m.kernel().is_some() || m.kernel_tcp().is_some() {
        return Err(TranslateError::unsupported(
            format!("{F}.kernel"),
            "kernel memory limits (deprecated, ignored by current kernels)",
            "remove memory.kernel and memory.kernelTCP",
        ));
    }
    // The kernel refuses a memory+swap limit below the memory limit (v1), and v2 cannot express
    // it: refused on both, naming the two values.
    if let (Some(l), Some(sw)) = (m.limit(), m.swap()) {
        if l > 0 && sw > 0 && sw < l {
            return Err(TranslateError::invalid(
                format!("{F}.swap"),
                format!("swap (memory+swap) {sw} is below the memory limit {l}"),
                "give a swap at least as large as the limit (equal: no swap), or -1 for unlimited",
            ));
        }
    }
    if s.v1() {
        if let Some(v) = m.limit() {
            s.set("memory.limit_in_bytes", v);
        }
        if let Some(v) = m.reservation() {
            s.set("memory.soft_limit_in_bytes", v);
        }
        if let Some(v) = m.swap() {
            s.set("memory.memsw.limit_in_bytes", v);
        }
        if let Some(v) = m.swappiness() {
            if v > 100 {
                return Err(TranslateError::invalid(
                    format!("{F}.swappiness"),
                    format!("{v} is above 100"),
                    "give a swappiness from 0 to 100",
                ));
            }
            s.set("memory.swappiness", v);
        }
        if let Some(v) = m.disable_oom_killer() {
            s.set("memory.oom_control", u8::from(v));
        }
        if let Some(v) = m.use_hierarchy() {
            s.set("memory.use_hierarchy", u8::from(v));
        }
        return Ok(());
    }
    if let Some(v) = m.limit() {
        s.set("memory.max", v2_limit(v));
    }
    if let Some(v) = m.reservation() {
        s.set("memory.low", v2_limit(v));
    }
    if let Some(swap) = m.swap() {
        s.set("memory.swap.max", v2_swap(swap, m.limit())?);
    }
    if m.swappiness().is_some() {
        return Err(s.only_on(&format!("{F}.swappiness"), "v1"));
    }
    if m.disable_oom_killer() == Some(true) {
        return Err(s.only_on(&format!("{F}.disableOOMKiller"), "v1"));
    }
    // checkBeforeUpdate and useHierarchy have no v2 file (v2 is always hierarchical).
    Ok(())
}

/// OCI's swap is memory+swap; v2's `memory.swap.max` is swap alone: the difference.
fn v2_swap(swap: i64, limit: Option<i64>) -> Result<String, TranslateError> {
    Ok(match (swap, limit) {
        (s, _) if s < 0 => "max".to_string(),
        (0, _) => "0".to_string(),
        (s, Some(l)) if l < 0 => s.to_string(),
        (s, Some(l)) if l > 0 && s >= l => (s - l).to_string(),
        (s, l) => {
            return Err(TranslateError::invalid(
                format!("{F}.swap"),
                format!(
                    "swap (memory+swap) {s} cannot be converted to cgroup v2 with memory limit \
                     {l:?}"
                ),
                "give a memory limit, and a swap at least as large",
            ))
        }
    })
}
