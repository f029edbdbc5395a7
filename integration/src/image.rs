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

/// The reference of the image [`deep_image_archive`] builds.
pub const DEEP_IMAGE_REF: &str = "local/deep:latest";

/// Writes into `dir` the OCI archive of an image of `layers` layers (at least 2): busybox with a
/// file `/deepest` in the first, then one layer per number `n` (2 to `layers`) adding
/// `/layers/<n>` (three digits) and rewriting `/top` to `n`. Its overlay's `lowerdir=` at
/// containerd's snapshot paths is longer than a page from about 60 layers on. Returns the
/// archive's path.
pub fn deep_image_archive(dir: &std::path::Path, layers: usize) -> std::path::PathBuf {
    assert!(layers >= 2, "a deep image has at least 2 layers");
    let base = dir.join("layer-001");
    busybox_rootfs(&base).expect("busybox rootfs for the deep image");
    std::fs::write(base.join("deepest"), "deepest layer\n").unwrap();
    let mut builder = ImageBuilder::new(DEEP_IMAGE_REF).layer_dir(&base);
    for n in 2..=layers {
        let l = dir.join(format!("layer-{n:03}"));
        std::fs::create_dir_all(l.join("layers")).unwrap();
        std::fs::write(l.join("layers").join(format!("{n:03}")), format!("{n}\n")).unwrap();
        std::fs::write(l.join("top"), format!("{n}\n")).unwrap();
        builder = builder.layer_dir(&l);
    }
    let tar = dir.join("deep.tar");
    builder
        .config(ImageConfigSpec {
            cmd: vec!["/bin/sh".to_string()],
            ..ImageConfigSpec::default()
        })
        .write_archive(&tar)
        .unwrap_or_else(|e| panic!("cannot build the {layers}-layer image: {e}"));
    tar
}
