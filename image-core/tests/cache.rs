//! The metadata cache over the documents of a real (built) layout, shared between threads.

use image_core::builder::ImageBuilder;
use image_core::cache::MetadataCache;
use image_core::validate::{Document, Kind};
use std::fs;
use std::sync::Arc;

#[test]
fn caches_manifest_and_config_of_a_layout_across_threads() {
    let t = tempfile::tempdir().unwrap();
    let l = t.path().join("l");
    fs::create_dir_all(&l).unwrap();
    fs::write(l.join("f"), "x").unwrap();
    let out = t.path().join("layout");
    let built = ImageBuilder::new("local/c")
        .layer_dir(&l)
        .write_layout(&out)
        .unwrap();
    let path = |d: &str| {
        out.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest_bytes = fs::read(path(&built.manifest_digest)).unwrap();
    let config_bytes = fs::read(path(&built.config_digest)).unwrap();
    let total = manifest_bytes.len() + config_bytes.len();

    let l2 = t.path().join("l2");
    fs::create_dir_all(&l2).unwrap();
    let out2 = t.path().join("layout2");
    let b2 = ImageBuilder::new("local/d")
        .layer_dir(&l2)
        .write_layout(&out2)
        .unwrap();
    let m2 = fs::read(
        out2.join("blobs/sha256")
            .join(b2.manifest_digest.trim_start_matches("sha256:")),
    )
    .unwrap();
    // Room for the first image's two documents, and for its manifest with the second
    // manifest, never for all three.
    let bound = total.max(manifest_bytes.len() + m2.len());
    let cache = Arc::new(MetadataCache::new(8, bound));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let cache = cache.clone();
            let (m, c) = (manifest_bytes.clone(), config_bytes.clone());
            let (md, cd) = (built.manifest_digest.clone(), built.config_digest.clone());
            std::thread::spawn(move || {
                for _ in 0..10 {
                    let doc = cache
                        .get_or_insert_with(&md, Kind::Manifest, None, || m.clone())
                        .unwrap();
                    assert!(matches!(*doc, Document::Manifest(_)));
                    let doc = cache
                        .get_or_insert_with(&cd, Kind::Config, None, || c.clone())
                        .unwrap();
                    assert!(matches!(*doc, Document::Config(_)));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let s = cache.stats();
    assert_eq!(s.entries, 2);
    assert_eq!(s.bytes, total);
    assert_eq!(s.evictions, 0);
    assert_eq!(s.hits + s.misses, 80);
    // Two threads may both miss the same digest before either inserts; never more than 4 each.
    assert!(s.misses >= 2 && s.misses <= 8, "{s:?}");

    // A third document does not fit in the byte bound: the least recently used one goes.
    assert!(cache.get(&built.manifest_digest).is_some());
    cache
        .get_or_insert_with(&b2.manifest_digest, Kind::Manifest, None, || m2.clone())
        .unwrap();
    assert!(!cache.contains(&built.config_digest));
    assert!(cache.contains(&built.manifest_digest));
    assert!(cache.stats().evictions >= 1);
    assert!(cache.stats().bytes <= bound);
}
