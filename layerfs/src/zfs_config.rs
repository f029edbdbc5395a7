//! The `[zfs]` table of the shim's config.

use std::path::PathBuf;

/// Where and how container root filesystems live on ZFS.
///
/// ```toml
/// [zfs]
/// dataset = "tank/lxcri"          # parent dataset: images/ and containers/ go below it
/// mount_root = "/var/lib/lxcri/zfs"
/// keep_bases = 10                 # unused bases kept by gc (most recently used first)
/// keep_bytes = 10737418240        # ... and at most this many bytes of them
/// quota = "10G"                   # refquota of each container's clone; absent: none
/// gc_interval_secs = 900          # the shim collects at most this often; 0: only `lxcri layers gc`
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ZfsConfig {
    /// Parent dataset, `<pool>/<path>`.
    pub dataset: String,
    /// Directory for the mountpoints of bases and build datasets, and the build locks.
    #[serde(default = "default_mount_root")]
    pub mount_root: PathBuf,
    /// How many bases no container uses `gc` keeps (LRU).
    #[serde(default = "default_keep_bases")]
    pub keep_bases: usize,
    /// At most this many bytes of unused bases kept by `gc`; absent: no bound.
    #[serde(default)]
    pub keep_bytes: Option<u64>,
    /// Default `refquota` of a container's clone (`512M`, `10G`, bytes); absent: none.
    #[serde(default)]
    pub quota: Option<String>,
    /// At a Create, the shim collects orphans and unused bases (in the background) when the last
    /// collection is older than this many seconds; 0: never (only `lxcri layers gc`).
    #[serde(default = "default_gc_interval")]
    pub gc_interval_secs: u64,
}

fn default_mount_root() -> PathBuf {
    PathBuf::from("/var/lib/lxcri/zfs")
}

fn default_keep_bases() -> usize {
    10
}

fn default_gc_interval() -> u64 {
    900
}

/// A config value that cannot work; names the key.
#[derive(Debug, thiserror::Error)]
#[error("layerfs: config key zfs.{key} = {value:?}: {problem}")]
pub struct ConfigError {
    pub key: &'static str,
    pub value: String,
    pub problem: String,
}

impl ZfsConfig {
    /// A config with defaults for everything but the dataset.
    pub fn new(dataset: impl Into<String>, mount_root: impl Into<PathBuf>) -> Self {
        ZfsConfig {
            dataset: dataset.into(),
            mount_root: mount_root.into(),
            keep_bases: default_keep_bases(),
            keep_bytes: None,
            quota: None,
            gc_interval_secs: default_gc_interval(),
        }
    }

    /// The pool: the first component of `dataset`.
    pub fn pool(&self) -> &str {
        self.dataset.split('/').next().unwrap_or(&self.dataset)
    }

    /// Checks every key; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, value: &str, problem: &str| ConfigError {
            key,
            value: value.to_string(),
            problem: problem.to_string(),
        };
        let d = &self.dataset;
        if d.is_empty() {
            return Err(bad(
                "dataset",
                d,
                "empty: give a dataset such as \"tank/lxcri\"",
            ));
        }
        if d.starts_with('/') || d.ends_with('/') || d.contains("//") {
            return Err(bad(
                "dataset",
                d,
                "a dataset name is <pool>/<path> without leading, trailing or double slashes",
            ));
        }
        if let Some(c) = d
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "/_-.:".contains(*c)))
        {
            return Err(bad(
                "dataset",
                d,
                &format!("{c:?} is not allowed in a dataset name (letters, digits, _-.: and /)"),
            ));
        }
        if !self.mount_root.is_absolute() {
            return Err(bad(
                "mount_root",
                &self.mount_root.display().to_string(),
                "must be an absolute path",
            ));
        }
        if let Some(q) = &self.quota {
            parse_size(q).ok_or_else(|| {
                bad(
                    "quota",
                    q,
                    "not a size: use bytes or a number with K, M, G or T (\"10G\")",
                )
            })?;
        }
        Ok(())
    }
}

/// Parses `1234`, `512K`, `10M`, `1.5G`, `2T` into bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return None,
            };
            (&s[..i], m)
        }
        _ => (s, 1),
    };
    if num.is_empty() || num.starts_with('-') {
        return None;
    }
    let v: f64 = num.parse().ok()?;
    let bytes = v * mult as f64;
    (bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("10M"), Some(10 << 20));
        assert_eq!(parse_size("1.5g"), Some(3 << 29));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("-1G"), None);
        assert_eq!(parse_size("10Q"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn validation_names_the_key() {
        let mut c = ZfsConfig::new("tank/lxcri", "/var/lib/lxcri/zfs");
        assert!(c.validate().is_ok());
        assert_eq!(c.pool(), "tank");
        c.dataset = "/tank".into();
        assert_eq!(c.validate().unwrap_err().key, "dataset");
        c.dataset = "tank/a b".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("zfs.dataset"));
        c.dataset = "tank".into();
        c.mount_root = "rel".into();
        assert_eq!(c.validate().unwrap_err().key, "mount_root");
        c.mount_root = "/m".into();
        c.quota = Some("lots".into());
        let e = c.validate().unwrap_err();
        assert_eq!(e.key, "quota");
        assert!(e.to_string().contains("zfs.quota = \"lots\""), "{e}");
    }

    #[test]
    fn deserialises_from_a_toml_table_with_defaults() {
        #[derive(serde::Deserialize)]
        struct Top {
            zfs: ZfsConfig,
        }
        let t: Top = toml::from_str("[zfs]\ndataset = \"tank/lxcri\"\nquota = \"1G\"\n").unwrap();
        assert_eq!(t.zfs.dataset, "tank/lxcri");
        assert_eq!(t.zfs.keep_bases, 10);
        assert_eq!(t.zfs.mount_root, PathBuf::from("/var/lib/lxcri/zfs"));
        assert_eq!(t.zfs.quota.as_deref(), Some("1G"));
        assert!(toml::from_str::<Top>("[zfs]\ndataset = \"t\"\nbogus = 1\n").is_err());
    }
}
