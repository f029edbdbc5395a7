//! Golden tests of the one conversion of OCI `linux.resources` into cgroup settings
//! (`lxcri::cgroup_settings`), which Create renders as `lxc.cgroup[2].*` keys and Update writes
//! as files.
//!
//! For each `tests/golden/cgroup_settings/NAME.json` (a spec with only `linux.resources`),
//! `NAME.txt` holds, for cgroup v1 then v2, the settings Create gives LXC and those Update
//! writes (or the error of each), and the fields Update leaves alone. `UPDATE_GOLDEN=1 cargo
//! test -p lxcri --test cgroup_settings_golden` rewrites the `.txt` files; review the diff.

mod common;

use lxcri::cgroup_settings::{not_updated, settings, update_settings, Setting};
use lxcri::lxcconf::CgroupMode;
use oci_spec::runtime::Spec;

fn render_list(out: &mut String, list: Result<Vec<Setting>, String>) {
    match list {
        Ok(l) if l.is_empty() => out.push_str("(nothing)\n"),
        Ok(l) => {
            for s in l {
                out.push_str(&format!("{} = {}\n", s.file, s.value));
            }
        }
        Err(e) => out.push_str(&format!("error: {e}\n")),
    }
}

fn render(name: &str, spec: &Spec) -> String {
    let r = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .unwrap_or_else(|| panic!("{name}.json has no linux.resources"));
    let mut out = String::new();
    for (mode, v) in [(CgroupMode::V1, "v1"), (CgroupMode::V2, "v2")] {
        out.push_str(&format!(
            "# {v}: Create (lxc.cgroup{}.<file>)\n",
            if v == "v1" { "" } else { "2" }
        ));
        render_list(&mut out, settings(r, mode).map_err(|e| e.to_string()));
        out.push_str(&format!("# {v}: Update (files written)\n"));
        render_list(&mut out, update_settings(r, mode));
    }
    let ignored = not_updated(r);
    if !ignored.is_empty() {
        out.push_str(&format!("# Update leaves alone: {}\n", ignored.join(", ")));
    }
    out
}

#[test]
fn golden_cgroup_settings_match() {
    let required = [
        "unlimited",
        "unset-values",
        "swap-below-limit",
        "cpu-quota-period",
        "cpuset",
        "pids",
        "blkio",
        "hugetlb",
        "cri-update",
    ];
    common::check_all(
        "cgroup_settings",
        &required,
        "txt",
        "rendered settings",
        render,
    );
}
