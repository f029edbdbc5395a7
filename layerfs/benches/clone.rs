//! Run by hand (root, zfs-fuse): `cargo bench -p layerfs --bench clone`. Not in CI.
//!
//! Prints: the median time to clone and mount a container's rootfs from a 10 MB and a 500 MB
//! base (and their ratio), the base build rate in MB/s, and the pool space used by 20 clones of
//! the 500 MB base against the base alone.

use integration::ZfsPool;
use layerfs::{ImageSource, RootfsProvider, RootfsRequest, ZfsConfig, ZfsProvider};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

fn image(dir: &Path, tag: &str, mb: usize) -> ImageSource {
    let src = dir.join(format!("src-{tag}"));
    fs::create_dir_all(&src).expect("image dir");
    // Files of 1 MB with distinct contents (no compression or dedup can shortcut them).
    for i in 0..mb {
        let mut data = vec![0u8; 1 << 20];
        for (j, b) in data.iter_mut().enumerate() {
            *b = (j as u32)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(i as u32) as u8;
        }
        fs::write(src.join(format!("f{i}")), data).expect("image file");
    }
    use sha2::Digest;
    ImageSource {
        chain_id: hex::encode(sha2::Sha256::digest(tag.as_bytes())),
        source: src,
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn request(dir: &Path, id: &str) -> RootfsRequest {
    let target = dir.join(format!("bundles/{id}/rootfs"));
    fs::create_dir_all(&target).expect("target");
    RootfsRequest {
        namespace: "bench".into(),
        id: id.into(),
        mounts: Vec::new(),
        target,
        ..Default::default()
    }
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("clone bench: needs root and zfs-fuse; skipped");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("layerfs-bench-")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let pool = ZfsPool::create();
    let p = ZfsProvider::new(ZfsConfig::new(
        pool.dataset("lxcri"),
        dir.path().join("root"),
    ))
    .expect("provider");
    let mut clone_medians = Vec::new();
    for (tag, mb) in [("small", 10usize), ("large", 500)] {
        let img = image(dir.path(), tag, mb);
        let t = Instant::now();
        let base = p.ensure_base(&img).expect("base build");
        let build = t.elapsed();
        println!(
            "base build {mb} MB: {:.2} s, {:.1} MB/s",
            build.as_secs_f64(),
            mb as f64 / build.as_secs_f64()
        );
        let mut times = Vec::new();
        for i in 0..11 {
            let req = request(dir.path(), &format!("{tag}{i}"));
            let t = Instant::now();
            let prepared = p.prepare_image(&req, &img, None).expect("clone");
            times.push(t.elapsed());
            p.release(&prepared).expect("release");
        }
        let m = median(times);
        println!(
            "clone+mount from {mb} MB base: median {:.1} ms",
            m.as_secs_f64() * 1e3
        );
        clone_medians.push(m);
        if mb == 500 {
            let one = p.runner().get_bytes(&base, "used").expect("used");
            let parent = p.config().dataset.clone();
            let before = p.runner().get_bytes(&parent, "used").expect("used");
            let mut held = Vec::new();
            for i in 0..20 {
                let req = request(dir.path(), &format!("space{i}"));
                held.push(p.prepare_image(&req, &img, None).expect("clone"));
            }
            let after = p.runner().get_bytes(&parent, "used").expect("used");
            println!(
                "pool space: base {:.1} MB; 20 clones add {:.2} MB; total / base = {:.3}",
                one as f64 / 1e6,
                after.saturating_sub(before) as f64 / 1e6,
                after as f64 / one as f64
            );
            for h in &held {
                p.release(h).expect("release");
            }
        }
    }
    println!(
        "clone time ratio 500 MB / 10 MB: {:.2}",
        clone_medians[1].as_secs_f64() / clone_medians[0].as_secs_f64()
    );
    drop(p);
    drop(pool);
}
