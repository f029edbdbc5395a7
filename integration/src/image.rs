//! The busybox test image, built once per test process with `image_core::builder`.

use image_core::builder::{busybox_rootfs, ImageBuilder, ImageConfigSpec};
use std::sync::OnceLock;

/// The reference [`crate::Containerd::import_busybox`] returns.
pub const BUSYBOX_REF: &str = "local/busybox:latest";

static BUSYBOX: OnceLock<Result<Vec<u8>, String>> = OnceLock::new();

/// The OCI archive (tar) of the busybox image: built on first use, then kept in memory, so no
/// file outlives the test process. Panics with the builder's error when it cannot be built.
pub fn busybox_archive() -> &'static [u8] {
    match BUSYBOX.get_or_init(build_busybox) {
        Ok(bytes) => bytes,
        Err(e) => panic!("cannot build the busybox test image: {e}"),
    }
}

fn build_busybox() -> Result<Vec<u8>, String> {
    let tmp = tempfile::Builder::new()
        .prefix("lxcri-image-")
        .tempdir()
        .map_err(|e| format!("cannot create a tempdir: {e}"))?;
    let rootfs = tmp.path().join("rootfs");
    busybox_rootfs(&rootfs).map_err(|e| e.to_string())?;
    let tar = tmp.path().join("busybox.tar");
    ImageBuilder::new(BUSYBOX_REF)
        .layer_dir(&rootfs)
        .config(ImageConfigSpec {
            cmd: vec!["/bin/sh".to_string()],
            ..ImageConfigSpec::default()
        })
        .write_archive(&tar)
        .map_err(|e| e.to_string())?;
    std::fs::read(&tar).map_err(|e| format!("cannot read {}: {e}", tar.display()))
}
