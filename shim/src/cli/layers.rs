//! `lxcri layers ls | gc`: the ZFS base datasets of images and their collection.

use super::{usage, Io, EXIT_OK};
use crate::config::Config;
use clap::{Args, Subcommand};
use layerfs::zfs_config::parse_size;
use layerfs::{KeepPolicy, ZfsProvider};
use std::path::Path;

/// The exit codes of `lxcri layers`.
pub(super) const EXIT: &str = "\
Exit status:
  0  success
  2  usage, config or ZFS error (a message on stderr says what to do)";

#[derive(Subcommand, Debug)]
pub enum LayersCommand {
    /// List the image base datasets (<dataset>/images/<key>) and their clones
    #[command(
        long_about = "One line per image base dataset (<dataset>/images/<key>): its key (the \
                      image's chain id, or a hash of containerd's layer directories), the image \
                      name when it was known, the space it uses, how many containers are cloned \
                      from it, and when it was last used.",
        after_help = EXIT
    )]
    Ls(LsArgs),
    /// Destroy orphan clones, interrupted base builds and unused bases
    #[command(
        long_about = "Destroy clones whose container is gone (its LXC directory no longer \
                      exists), interrupted base builds, and the least recently used bases no \
                      container uses beyond the keep policy: [zfs] keep_bases / keep_bytes of \
                      the config, or --keep / --keep-bytes. A base with clones is never \
                      destroyed.",
        after_help = EXIT
    )]
    Gc(GcArgs),
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Print JSON, with the clones of each base
    #[arg(long)]
    json: bool,
    /// The lxcri config with the [zfs] table (default: $LXCRI_CONFIG, else
    /// /etc/lxcri/config.toml)
    #[arg(long, value_name = "FILE")]
    config: Option<String>,
}

#[derive(Args, Debug)]
pub struct GcArgs {
    /// The lxcri config with the [zfs] table (default: $LXCRI_CONFIG, else
    /// /etc/lxcri/config.toml)
    #[arg(long, value_name = "FILE")]
    config: Option<String>,
    /// Keep this many unused bases (default: [zfs] keep_bases)
    #[arg(long, value_name = "N")]
    keep: Option<String>,
    /// Keep unused bases up to this size in all, bytes or with K, M, G or T (default: [zfs]
    /// keep_bytes)
    #[arg(long, value_name = "SIZE")]
    keep_bytes: Option<String>,
}

/// `lxcri layers ARGS...` (the arguments after `layers`).
pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    super::run_group(&["layers"], args, io)
}

pub(super) fn exec(cmd: LayersCommand, io: &mut Io<'_>) -> i32 {
    match cmd {
        LayersCommand::Ls(a) => ls_cmd(a, io),
        LayersCommand::Gc(a) => gc_cmd(a, io),
    }
}

/// The provider of the config's `[zfs]` table; `Err` is the message for stderr.
fn open(command: &str, config: Option<String>) -> Result<(Config, ZfsProvider), String> {
    let cfg =
        Config::load(config.as_deref().map(Path::new)).map_err(|e| format!("{command}: {e}"))?;
    let file = cfg
        .source
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| {
            format!(
                "no config file (${} unset, {} missing)",
                crate::config::CONFIG_ENV,
                crate::config::DEFAULT_CONFIG_PATH
            )
        });
    let Some(z) = cfg.zfs.clone() else {
        return Err(format!(
            "{command}: ZFS is not configured: {file} has no [zfs] table; add one (see docs/zfs.md) or give --config FILE"
        ));
    };
    let p = ZfsProvider::new(z.clone()).map_err(|e| {
        format!(
            "{command}: `[zfs] dataset = \"{}\"` in {file}: {e}",
            z.dataset
        )
    })?;
    Ok((cfg, p))
}

fn ls_cmd(args: LsArgs, io: &mut Io<'_>) -> i32 {
    let (_, p) = match open("lxcri layers ls", args.config) {
        Ok(x) => x,
        Err(e) => return usage(io, &e),
    };
    let mut bases = match p.list_bases() {
        Ok(b) => b,
        Err(e) => return usage(io, &format!("lxcri layers ls: {e}")),
    };
    bases.sort_by_key(|b| std::cmp::Reverse(b.last_used));
    if args.json {
        let list: Vec<serde_json::Value> = bases
            .iter()
            .map(|b| {
                serde_json::json!({
                    "dataset": b.dataset,
                    "key": b.chain_id,
                    "image": b.image,
                    "bytes": b.bytes,
                    "clones": b.clones,
                    "last_used": b.last_used,
                })
            })
            .collect();
        let _ = writeln!(
            io.out,
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
        return EXIT_OK;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let _ = writeln!(
        io.out,
        "{:<14} {:<32} {:>8} {:>6} {:>10}  DATASET",
        "KEY", "IMAGE", "SIZE", "CLONES", "LAST USED"
    );
    for b in &bases {
        let _ = writeln!(
            io.out,
            "{:<14} {:<32} {:>8} {:>6} {:>10}  {}",
            &b.chain_id[..b.chain_id.len().min(12)],
            b.image.as_deref().unwrap_or("-"),
            human_bytes(b.bytes),
            b.clones.len(),
            ago(now.saturating_sub(b.last_used)),
            b.dataset
        );
    }
    EXIT_OK
}

fn gc_cmd(args: GcArgs, io: &mut Io<'_>) -> i32 {
    let (keep, keep_bytes) = (args.keep, args.keep_bytes);
    let (cfg, p) = match open("lxcri layers gc", args.config) {
        Ok(x) => x,
        Err(e) => return usage(io, &e),
    };
    let mut policy: KeepPolicy = p.keep_policy();
    if let Some(k) = keep {
        match k.parse() {
            Ok(n) => policy.count = n,
            Err(_) => {
                return usage(
                    io,
                    &format!("lxcri layers gc: --keep {k:?}: give a number of bases"),
                )
            }
        }
    }
    if let Some(b) = keep_bytes {
        match parse_size(&b) {
            Some(n) => policy.bytes = Some(n),
            None => {
                return usage(
                    io,
                    &format!(
                    "lxcri layers gc: --keep-bytes {b:?}: give bytes or a number with K, M, G or T"
                ),
                )
            }
        }
    }
    let report = match p.gc(policy, &crate::rootfs::container_gone(&cfg.lxc_root)) {
        Ok(r) => r,
        Err(e) => return usage(io, &format!("lxcri layers gc: {e}")),
    };
    for d in &report.containers {
        let _ = writeln!(io.out, "destroyed orphan clone {d}");
    }
    for d in &report.builds {
        let _ = writeln!(io.out, "destroyed interrupted build {d}");
    }
    for d in &report.bases {
        let _ = writeln!(io.out, "destroyed unused base {d}");
    }
    let _ = writeln!(
        io.out,
        "gc: {} orphan clones, {} interrupted builds, {} unused bases destroyed (keep {} unused bases{})",
        report.containers.len(),
        report.builds.len(),
        report.bases.len(),
        policy.count,
        policy
            .bytes
            .map(|b| format!(", at most {}", human_bytes(b)))
            .unwrap_or_default()
    );
    EXIT_OK
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b}B")
    } else {
        format!("{v:.1}{}", UNITS[i])
    }
}

fn ago(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs}s ago"),
        60..=3599 => format!("{}m ago", secs / 60),
        3600..=86_399 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::EXIT_USAGE;

    #[test]
    fn sizes_and_ages() {
        assert_eq!(human_bytes(512), "512B");
        assert_eq!(human_bytes(1536), "1.5K");
        assert_eq!(human_bytes(500 << 20), "500.0M");
        assert_eq!(ago(5), "5s ago");
        assert_eq!(ago(7200), "2h ago");
        assert_eq!(ago(3 * 86_400), "3d ago");
    }

    fn run_cli(args: &[&str]) -> (i32, String, String) {
        crate::cli::run_captured(run, args)
    }

    #[test]
    fn without_a_zfs_table_it_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        std::fs::write(&cfg, "").unwrap();
        let cfg = cfg.display().to_string();
        let (code, _, err) = run_cli(&["ls", "--config", &cfg]);
        assert_eq!(code, EXIT_USAGE);
        assert!(
            err.contains("no [zfs] table") && err.contains(&cfg),
            "{err}"
        );
        let (code, _, err) = run_cli(&["gc", "--keep", "x", "--config", &cfg]);
        assert_eq!(code, EXIT_USAGE);
        assert!(err.contains("no [zfs] table"), "{err}");
        let (code, out, _) = run_cli(&["--help"]);
        assert_eq!(code, EXIT_OK);
        assert!(out.contains("lxcri layers"));
    }
}
