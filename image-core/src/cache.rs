//! An LRU cache of parsed, validated documents keyed by digest.
//!
//! Bounded twice: by the number of entries and by the total byte size of the JSON the entries
//! were parsed from. Inserting evicts least-recently-used entries until both bounds hold. A
//! document larger than the byte bound is returned but not kept. Content is checked against
//! its digest before it is parsed, so a key always names what it holds.

use crate::digest;
use crate::problem::{Problem, Problems};
use crate::validate::{self, Document, Kind};
use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};

/// Counters since the cache was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    /// Entries now held.
    pub entries: usize,
    /// Source-JSON bytes now held.
    pub bytes: usize,
}

struct Entry {
    doc: Arc<Document>,
    bytes: usize,
}

struct Inner {
    lru: LruCache<String, Entry>,
    max_bytes: usize,
    bytes: usize,
    stats: CacheStats,
}

/// A thread-safe cache of validated documents.
pub struct MetadataCache {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for MetadataCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataCache")
            .field("stats", &self.stats())
            .finish()
    }
}

impl MetadataCache {
    /// A cache holding at most `max_entries` documents (at least 1) and `max_bytes` of source
    /// JSON.
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        let cap = NonZeroUsize::new(max_entries.max(1)).unwrap_or(NonZeroUsize::MIN);
        MetadataCache {
            inner: Mutex::new(Inner {
                lru: LruCache::new(cap),
                max_bytes,
                bytes: 0,
                stats: CacheStats::default(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the cache inconsistent in a way that
        // matters (worst case: counters off); keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counters and current size.
    pub fn stats(&self) -> CacheStats {
        let inner = self.lock();
        CacheStats {
            entries: inner.lru.len(),
            bytes: inner.bytes,
            ..inner.stats
        }
    }

    /// The cached document for `digest`, if any (counts a hit or a miss).
    pub fn get(&self, digest: &str) -> Option<Arc<Document>> {
        let mut inner = self.lock();
        let found = inner.lru.get(digest).map(|e| e.doc.clone());
        if found.is_some() {
            inner.stats.hits += 1;
        } else {
            inner.stats.misses += 1;
        }
        found
    }

    /// Is `digest` cached? (Counts nothing, does not refresh its recency.)
    pub fn contains(&self, digest: &str) -> bool {
        self.lock().lru.contains(digest)
    }

    /// The cached document for `digest`, or: `load` its bytes, check them against `digest`,
    /// validate them as `kind` (with the media type of the descriptor that pointed at them),
    /// cache and return the document. Problems (a digest mismatch, invalid content) are
    /// returned and nothing is cached.
    pub fn get_or_insert_with<F>(
        &self,
        digest: &str,
        kind: Kind,
        expected_media_type: Option<&str>,
        load: F,
    ) -> Result<Arc<Document>, Problems>
    where
        F: FnOnce() -> Vec<u8>,
    {
        self.try_get_or_insert_with(digest, kind, expected_media_type, || Ok(load()))
    }

    /// [`get_or_insert_with`](Self::get_or_insert_with) with a loader that can fail.
    pub fn try_get_or_insert_with<F>(
        &self,
        digest: &str,
        kind: Kind,
        expected_media_type: Option<&str>,
        load: F,
    ) -> Result<Arc<Document>, Problems>
    where
        F: FnOnce() -> Result<Vec<u8>, Problems>,
    {
        if let Some(doc) = self.get(digest) {
            return Ok(doc);
        }
        // Load and validate without holding the lock.
        let bytes = load()?;
        if let Err(e) = digest::verify(digest, &bytes) {
            return Err(Problems(vec![Problem::new(
                kind.name(),
                "",
                format!(
                    "{e}: not cached; the source holds different content than its digest names"
                ),
            )]));
        }
        let doc = Arc::new(validate::validate(kind, expected_media_type, &bytes)?);
        self.insert(digest, doc.clone(), bytes.len());
        Ok(doc)
    }

    fn insert(&self, digest: &str, doc: Arc<Document>, size: usize) {
        let mut inner = self.lock();
        if size > inner.max_bytes {
            return;
        }
        if let Some(old) = inner.lru.pop(digest) {
            inner.bytes -= old.bytes;
        }
        while inner.bytes + size > inner.max_bytes || inner.lru.len() >= inner.lru.cap().get() {
            match inner.lru.pop_lru() {
                Some((_, e)) => {
                    inner.bytes -= e.bytes;
                    inner.stats.evictions += 1;
                }
                None => break,
            }
        }
        inner
            .lru
            .put(digest.to_string(), Entry { doc, bytes: size });
        inner.bytes += size;
    }

    /// Drops every entry (counters are kept).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.lru.clear();
        inner.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid `oci-layout` document, different for each `pad` (trailing blanks).
    fn layout_doc(pad: usize) -> (String, Vec<u8>) {
        let b = format!("{{\"imageLayoutVersion\":\"1.0.0\"}}{}", " ".repeat(pad)).into_bytes();
        (digest::sha256(&b), b)
    }

    #[test]
    fn entry_bound_evicts_least_recently_used() {
        let c = MetadataCache::new(2, 1 << 20);
        let (d1, b1) = layout_doc(1);
        let (d2, b2) = layout_doc(2);
        let (d3, b3) = layout_doc(3);
        c.get_or_insert_with(&d1, Kind::Layout, None, || b1.clone())
            .unwrap();
        c.get_or_insert_with(&d2, Kind::Layout, None, || b2.clone())
            .unwrap();
        // Touch d1 so d2 is the least recently used.
        assert!(c.get(&d1).is_some());
        c.get_or_insert_with(&d3, Kind::Layout, None, || b3.clone())
            .unwrap();
        assert!(c.contains(&d1));
        assert!(!c.contains(&d2));
        assert!(c.contains(&d3));
        let s = c.stats();
        assert_eq!((s.entries, s.evictions), (2, 1));
        assert_eq!(s.bytes, b1.len() + b3.len());
    }

    #[test]
    fn byte_bound_evicts_until_it_fits() {
        let (d1, b1) = layout_doc(1);
        let (d2, b2) = layout_doc(2);
        let (d3, b3) = layout_doc(3);
        // Room for two documents of this size, not three, whatever the entry bound.
        let c = MetadataCache::new(100, b3.len() * 2);
        for (d, b) in [(&d1, &b1), (&d2, &b2), (&d3, &b3)] {
            c.get_or_insert_with(d, Kind::Layout, None, || b.clone())
                .unwrap();
        }
        let s = c.stats();
        assert_eq!(s.entries, 2);
        assert_eq!(s.evictions, 1);
        assert_eq!(s.bytes, b2.len() + b3.len());
        assert!(!c.contains(&d1));
    }

    #[test]
    fn oversized_document_is_returned_not_kept() {
        let (d1, b1) = layout_doc(1);
        let c = MetadataCache::new(10, b1.len() - 1);
        let doc = c
            .get_or_insert_with(&d1, Kind::Layout, None, || b1.clone())
            .unwrap();
        assert!(matches!(*doc, Document::Layout(_)));
        assert_eq!(c.stats().entries, 0);
        assert_eq!(c.stats().bytes, 0);
    }

    #[test]
    fn counters_count_hits_misses_and_loads() {
        let c = MetadataCache::new(4, 1 << 20);
        let (d1, b1) = layout_doc(1);
        let mut loads = 0;
        for _ in 0..3 {
            c.get_or_insert_with(&d1, Kind::Layout, None, || {
                loads += 1;
                b1.clone()
            })
            .unwrap();
        }
        assert_eq!(loads, 1);
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.evictions, s.entries), (2, 1, 0, 1));
        assert!(c.get("sha256:0000").is_none());
        assert_eq!(c.stats().misses, 2);
    }

    #[test]
    fn digest_mismatch_is_a_problem_and_not_cached() {
        let c = MetadataCache::new(4, 1 << 20);
        let (d1, _) = layout_doc(1);
        let (_, other) = layout_doc(2);
        let err = c
            .get_or_insert_with(&d1, Kind::Layout, None, || other.clone())
            .unwrap_err();
        assert_eq!(err.len(), 1);
        assert!(err.0[0].reason.contains("expected"), "{err}");
        assert!(!c.contains(&d1));
    }

    #[test]
    fn invalid_document_is_not_cached() {
        let c = MetadataCache::new(4, 1 << 20);
        let bad = b"{\"schemaVersion\": \"two\"}".to_vec();
        let d = digest::sha256(&bad);
        assert!(c
            .get_or_insert_with(&d, Kind::Manifest, None, || bad.clone())
            .is_err());
        assert_eq!(c.stats().entries, 0);
    }

    #[test]
    fn loader_errors_pass_through() {
        let c = MetadataCache::new(4, 1 << 20);
        let (d1, _) = layout_doc(1);
        let err = c
            .try_get_or_insert_with(&d1, Kind::Layout, None, || {
                Err(Problems(vec![Problem::new("oci-layout", "", "gone")]))
            })
            .unwrap_err();
        assert_eq!(err.0[0].reason, "gone");
    }
}
