//! Unit tests of the helpers; whole specs are golden-tested in `tests/lxcconf_golden.rs`.

use std::path::Path;

use super::cgroup_keys::cgroup_path_parts;
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

#[test]
fn destinations_resolve_symlinks_inside_the_rootfs() {
    use super::mounts::resolve_in_root;
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("run")).unwrap();
    std::fs::create_dir_all(root.join("var")).unwrap();
    symlink("/run", root.join("var/run")).unwrap();
    symlink("../../../../etc", root.join("up")).unwrap();
    symlink("loop2", root.join("loop1")).unwrap();
    symlink("loop1", root.join("loop2")).unwrap();
    let r = |p: &str| resolve_in_root(root, Path::new(p));
    assert_eq!(
        r("/var/run/secrets/x").unwrap(),
        Path::new("/run/secrets/x")
    );
    // ".." in a link stops at the rootfs's root.
    assert_eq!(r("/up/passwd").unwrap(), Path::new("/etc/passwd"));
    assert_eq!(r("/a/../../b").unwrap(), Path::new("/b"));
    assert!(r("/loop1/x").unwrap_err().contains("more than 40"));
}
