//! `linux.resources.pids`: `pids.max` (v1 and v2), `max` for a limit of 0 or less.

use oci_spec::runtime::LinuxPids;

use super::Settings;

pub(super) fn convert(s: &mut Settings, p: &LinuxPids) {
    let limit = p.limit();
    s.set(
        "pids.max",
        if limit <= 0 {
            "max".to_string()
        } else {
            limit.to_string()
        },
    );
}
