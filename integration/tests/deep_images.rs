//! Images with more layers than one page of mount options can name (containerd's overlayfs
//! snapshotter, `lowerdir=` longer than 4095 bytes): `ctr run` works as with runc, and nothing
//! stays mounted. The ZFS provider's case is in `zfs_rootfs.rs`.

use integration::{assert_clean, assert_exit, require_root_or_skip, stdout, unique_id};
use integration::{deep_image_archive, Containerd, ContainerdVersion, DEEP_IMAGE_REF};
use integration::{process::mount_points, LXCRI_RUNTIME};

integration::per_containerd_version!(a_container_of_a_100_layer_image_runs_and_leaves_nothing);

/// What a shell in the image prints: the file of the deepest layer, the first and last numbered
/// layers, how many there are, and `/top` as the topmost layer wrote it.
const LOOK: &str = "cat /deepest /layers/002 /layers/100 /top; ls /layers | wc -l";

fn run(v: ContainerdVersion, scenario: fn(&Containerd)) {
    if !require_root_or_skip() {
        return;
    }
    let cd = Containerd::start(v);
    let tmp = tempfile::tempdir().unwrap();
    cd.import_archive(&deep_image_archive(tmp.path(), 100), DEEP_IMAGE_REF);
    scenario(&cd);
}

fn a_container_of_a_100_layer_image_runs_and_leaves_nothing(cd: &Containerd) {
    let id = unique_id("deep");
    let out = cd.ctr(&[
        "run",
        "--rm",
        "--runtime",
        LXCRI_RUNTIME,
        DEEP_IMAGE_REF,
        &id,
        "sh",
        "-c",
        LOOK,
    ]);
    assert_exit(&out, 0);
    assert_eq!(
        stdout(&out).split_whitespace().collect::<Vec<_>>(),
        ["deepest", "layer", "2", "100", "100", "99"],
        "{}",
        stdout(&out)
    );
    // The same image under runc prints the same.
    let rid = unique_id("deep-runc");
    let runc = cd.ctr(&[
        "run",
        "--rm",
        "--runtime",
        "io.containerd.runc.v2",
        DEEP_IMAGE_REF,
        &rid,
        "sh",
        "-c",
        LOOK,
    ]);
    assert_exit(&runc, 0);
    assert_eq!(stdout(&out), stdout(&runc), "lxcri vs runc");
    assert_clean(&id);
    // Nothing is left mounted below containerd's directories either (a relative lowerdir would
    // not name the container): with no container left, containerd has nothing mounted there.
    let dir = cd.dir().to_string_lossy().into_owned();
    let left: Vec<_> = mount_points()
        .into_iter()
        .filter(|m| m.starts_with(&dir))
        .collect();
    assert!(left.is_empty(), "left mounted: {left:?}");
}
