//! lxcri's configuration file (TOML).
//!
//! Found, in order: the path containerd passes as the runtime option `ConfigPath`, the
//! environment variable `LXCRI_CONFIG`, `/etc/lxcri/config.toml`. A missing default file means
//! defaults; a named file that is missing or wrong is an error naming the file and the key.

use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const DEFAULT_CONFIG_PATH: &str = "/etc/lxcri/config.toml";
pub const CONFIG_ENV: &str = "LXCRI_CONFIG";
/// The LXC monitor binary (crate `lxcri-monitor`, the only one that links liblxc).
pub const MONITOR_BIN: &str = "lxcri-monitor";

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where LXC containers live: `<lxc_root>/<containerd namespace>/<id>/config`.
    pub lxc_root: PathBuf,
    /// The static init bind-mounted into containers; empty: `lxcri-init` beside the shim binary.
    pub init_path: Option<PathBuf>,
    /// The shim's own log level: error, warn, info, debug, trace.
    pub log_level: String,
    /// liblxc's log level for each container's `lxc.log.file`: TRACE .. FATAL.
    pub lxc_log_level: String,
    /// How long Create waits for the container's init to report ready.
    pub create_timeout_ms: u64,
    /// Root filesystems as ZFS clones (`[zfs]` table); absent: containerd's mounts as they are.
    pub zfs: Option<layerfs::ZfsConfig>,
    /// Where this configuration came from (not a key of the file).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            lxc_root: PathBuf::from("/run/lxcri"),
            init_path: None,
            log_level: "info".into(),
            lxc_log_level: "WARN".into(),
            create_timeout_ms: 30_000,
            zfs: None,
            source: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {source}; create it or point {CONFIG_ENV} / the runtime option ConfigPath at an existing file")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: {key} = {value:?}: {why}")]
    Value {
        path: PathBuf,
        key: String,
        value: String,
        why: String,
    },
}

impl Config {
    /// Loads the configuration: `explicit` (containerd's `ConfigPath`) first, then
    /// `LXCRI_CONFIG`, then the default path if it exists, else defaults.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let env = std::env::var_os(CONFIG_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        match explicit.map(Path::to_path_buf).or(env) {
            Some(path) => Self::from_file(&path),
            None if Path::new(DEFAULT_CONFIG_PATH).exists() => {
                Self::from_file(Path::new(DEFAULT_CONFIG_PATH))
            }
            None => Ok(Config::default()),
        }
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut cfg = Self::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })?;
        cfg.source = Some(path.to_path_buf());
        cfg.check(path)?;
        Ok(cfg)
    }

    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str::<Config>(text).map_err(|e| e.to_string().trim().replace('\n', " "))
    }

    fn check(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |key: &str, value: String, why: &str| ConfigError::Value {
            path: path.to_path_buf(),
            key: key.to_string(),
            value,
            why: why.into(),
        };
        if !self.lxc_root.is_absolute() {
            return Err(bad(
                "lxc_root",
                self.lxc_root.display().to_string(),
                "must be an absolute path",
            ));
        }
        if let Some(p) = &self.init_path {
            if !p.is_absolute() {
                return Err(bad(
                    "init_path",
                    p.display().to_string(),
                    "must be an absolute path",
                ));
            }
        }
        if !["error", "warn", "info", "debug", "trace"].contains(&self.log_level.as_str()) {
            return Err(bad(
                "log_level",
                self.log_level.clone(),
                "use one of error, warn, info, debug, trace",
            ));
        }
        let lxc_levels = [
            "TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "ERROR", "CRIT", "ALERT", "FATAL",
        ];
        if !lxc_levels.contains(&self.lxc_log_level.to_ascii_uppercase().as_str()) {
            return Err(bad(
                "lxc_log_level",
                self.lxc_log_level.clone(),
                "use one of TRACE, DEBUG, INFO, NOTICE, WARN, ERROR, CRIT, ALERT, FATAL",
            ));
        }
        if let Some(z) = &self.zfs {
            z.validate()
                .map_err(|e| bad(&format!("zfs.{}", e.key), e.value, &e.problem))?;
        }
        Ok(())
    }

    /// The static init to bind-mount into containers.
    pub fn init_path(&self) -> PathBuf {
        if let Some(p) = &self.init_path {
            return p.clone();
        }
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|d| d.join("lxcri-init")))
            .unwrap_or_else(|| PathBuf::from("/usr/local/bin/lxcri-init"))
    }

    /// The LXC monitor binary: `lxcri-monitor` beside the shim binary (or beside `init_path`).
    pub fn monitor_path(&self) -> PathBuf {
        let name = MONITOR_BIN;
        let beside_exe = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|d| d.join(name)));
        match beside_exe {
            Some(p) if p.is_file() => p,
            _ => self.init_path().with_file_name(name),
        }
    }

    /// The `lxcri` CLI (it asks containerd for image identities): beside the shim's executable,
    /// else beside `init_path`.
    pub fn cli_path(&self) -> PathBuf {
        let beside_exe = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|d| d.join("lxcri")));
        match beside_exe {
            Some(p) if p.is_file() => p,
            _ => self.init_path().with_file_name("lxcri"),
        }
    }

    /// The LXC path of a containerd namespace.
    pub fn lxc_path(&self, namespace: &str) -> PathBuf {
        self.lxc_root.join(namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Debian package's /etc/lxcri/config.toml: as installed it changes nothing, and with its
    /// commented keys uncommented it still gives the defaults (its comments do not lie). Not
    /// compared: `init_path` (the package's path, not a default), `keep_bytes` and `quota` (examples
    /// of keys that have no default).
    #[test]
    fn the_packaged_config_shows_the_defaults() {
        let text = include_str!("../../packaging/config.toml");
        assert_eq!(Config::from_toml(text).unwrap(), Config::default());
        let uncommented: String = text
            .lines()
            .filter_map(|l| {
                let key = l.strip_prefix('#')?;
                let is_key = key.starts_with('[') || key.contains(" = ");
                let example = ["init_path", "keep_bytes", "quota"]
                    .iter()
                    .any(|k| key.starts_with(k));
                (is_key && !example).then(|| format!("{key}\n"))
            })
            .collect();
        assert!(uncommented.contains("[zfs]"), "{uncommented}");
        let c = Config::from_toml(&uncommented).unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
        let z = c.zfs.clone().expect("the [zfs] table");
        assert_eq!(
            Config {
                zfs: None,
                ..c.clone()
            },
            Config::default()
        );
        assert_eq!(
            z,
            layerfs::ZfsConfig::new(z.dataset.clone(), "/var/lib/lxcri/zfs")
        );
    }

    #[test]
    fn empty_file_is_defaults() {
        assert_eq!(Config::from_toml("").unwrap(), Config::default());
    }

    #[test]
    fn keys_are_read() {
        let c =
            Config::from_toml("lxc_root = \"/var/lib/lxcri\"\nlog_level = \"debug\"\n").unwrap();
        assert_eq!(c.lxc_root, PathBuf::from("/var/lib/lxcri"));
        assert_eq!(c.log_level, "debug");
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::from_toml("lxc_rot = \"/x\"").unwrap_err();
        assert!(e.contains("lxc_rot"), "{e}");
    }

    #[test]
    fn bad_values_name_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "lxc_root = \"relative\"").unwrap();
        let e = Config::from_file(&p).unwrap_err().to_string();
        assert!(
            e.contains("c.toml") && e.contains("lxc_root") && e.contains("absolute"),
            "{e}"
        );
        std::fs::write(&p, "log_level = \"loud\"").unwrap();
        let e = Config::from_file(&p).unwrap_err().to_string();
        assert!(e.contains("log_level") && e.contains("debug"), "{e}");
    }

    #[test]
    fn the_zfs_table_is_read_and_checked() {
        let c = Config::from_toml("[zfs]\ndataset = \"tank/lxcri\"\nquota = \"1G\"\n").unwrap();
        let z = c.zfs.expect("zfs table");
        assert_eq!(
            (z.dataset.as_str(), z.quota.as_deref()),
            ("tank/lxcri", Some("1G"))
        );
        assert_eq!(Config::from_toml("").unwrap().zfs, None);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[zfs]\ndataset = \"/tank\"\n").unwrap();
        let e = Config::from_file(&p).unwrap_err().to_string();
        assert!(
            e.contains("c.toml") && e.contains("zfs.dataset = \"/tank\""),
            "{e}"
        );
        std::fs::write(&p, "[zfs]\ndataset = \"tank\"\nquota = \"lots\"\n").unwrap();
        let e = Config::from_file(&p).unwrap_err().to_string();
        assert!(e.contains("zfs.quota = \"lots\""), "{e}");
    }

    #[test]
    fn missing_named_file_is_an_error() {
        let e = Config::from_file(Path::new("/nonexistent/lxcri.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/nonexistent/lxcri.toml") && e.contains("ConfigPath"),
            "{e}"
        );
    }
}
