//! Unit tests of the helpers; whole specs are golden-tested in `tests/lxcconf_golden.rs`.

use std::path::Path;

use super::cgroups::cgroup_path_parts;
use super::mounts::{fstab_escape, normalize_destination};

#[test]
fn destinations_become_relative_and_dotdot_is_refused() {
    assert_eq!(
        normalize_destination(Path::new("/dev/pts")).as_deref(),
        Ok("dev/pts")
    );
    assert_eq!(
        normalize_destination(Path::new("//a/./b/")).as_deref(),
        Ok("a/b")
    );
    assert!(normalize_destination(Path::new("/a/../../etc")).is_err());
    assert!(normalize_destination(Path::new("/")).is_err());
}

#[test]
fn fstab_fields_escape_blanks_and_backslashes() {
    assert_eq!(fstab_escape("/a b\\c\td"), "/a\\040b\\134c\\011d");
}

#[test]
fn systemd_cgroup_paths_expand_like_systemd() {
    assert_eq!(
        cgroup_path_parts("kubepods-besteffort-pod1.slice:cri-containerd:abc").unwrap(),
        vec![
            "kubepods.slice",
            "kubepods-besteffort.slice",
            "kubepods-besteffort-pod1.slice",
            "cri-containerd-abc.scope"
        ]
    );
    assert_eq!(cgroup_path_parts(":p:n").unwrap(), vec!["p-n.scope"]);
    assert!(cgroup_path_parts("a--b.slice:p:n").is_err());
    assert!(cgroup_path_parts("a.slice:n").is_err());
    assert!(cgroup_path_parts("/a/../b").is_err());
    assert_eq!(
        cgroup_path_parts("/default/c1").unwrap(),
        vec!["default", "c1"]
    );
}
