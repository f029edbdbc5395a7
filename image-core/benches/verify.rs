//! Streaming blob verification against `sha256sum`, on the same file.
//!
//! `cargo bench -p image-core --bench verify` generates a pseudo-random blob (500 MB; set
//! `LXCRI_BENCH_MB` for another size) in a temporary directory under /var/tmp, removed at the
//! end, then times `layout::hash_file` and `sha256sum` three times each and prints the medians:
//! `verify: X MB/s, sha256sum: Y MB/s, ratio X/Y`.

use image_core::digest::Algorithm;
use image_core::layout::hash_file;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const MIB: usize = 1 << 20;

fn generate(path: &Path, mb: usize) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(MIB, File::create(path)?);
    let mut chunk = vec![0u8; MIB];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let total = mb * 1_000_000;
    let mut written = 0;
    while written < total {
        // xorshift64*: fast, and not compressible by any cache layer.
        for word in chunk.chunks_exact_mut(8) {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            word.copy_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        let n = chunk.len().min(total - written);
        w.write_all(&chunk[..n])?;
        written += n;
    }
    w.flush()?;
    w.get_ref().sync_all()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let mb: usize = std::env::var("LXCRI_BENCH_MB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let dir = tempfile::Builder::new()
        .prefix("lxcri-bench-verify")
        .tempdir_in("/var/tmp")
        .expect("a temporary directory under /var/tmp");
    let blob = dir.path().join("blob");
    let t = Instant::now();
    generate(&blob, mb).expect("write the benchmark blob");
    let size = std::fs::metadata(&blob).expect("stat blob").len() as f64;
    eprintln!(
        "generated {} MB in {:.2}s at {}",
        mb,
        t.elapsed().as_secs_f64(),
        blob.display()
    );

    let mut ours = Vec::new();
    let mut digest = String::new();
    for _ in 0..3 {
        let t = Instant::now();
        let h = hash_file(&blob, Algorithm::Sha256).expect("hash the blob");
        ours.push(size / 1e6 / t.elapsed().as_secs_f64());
        assert_eq!(h.size as f64, size);
        digest = h.digest;
    }

    let mut theirs = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let out = Command::new("sha256sum")
            .arg(&blob)
            .output()
            .expect("run sha256sum (coreutils)");
        theirs.push(size / 1e6 / t.elapsed().as_secs_f64());
        let text = String::from_utf8_lossy(&out.stdout);
        let hex = text.split_whitespace().next().unwrap_or("");
        assert_eq!(
            format!("sha256:{hex}"),
            digest,
            "both must agree on the digest"
        );
    }
    let (x, y) = (median(ours), median(theirs));
    println!(
        "verify: {x:.0} MB/s, sha256sum: {y:.0} MB/s, ratio {:.2}",
        x / y
    );
}
