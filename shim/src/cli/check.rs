//! `lxcri check`: can this node run containers with lxcri? One line per check, `ok` or `FAIL`
//! with what to do; exit 1 when anything failed.

use super::{Io, EXIT_INVALID, EXIT_OK};
use crate::config::Config;
use crate::host;
use crate::lxcconf::CgroupMode;
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
#[command(
    long_about = "Check that this node can run containers with lxcri, one line each, `ok` or \
                  `FAIL` with what to do:
  shim        containerd-shim-lxcri-v2 is in PATH (containerd finds runtime io.containerd.lxcri.v2 there)
  init        lxcri-init and lxcri-monitor are beside it
  liblxc      lxcri-monitor loads liblxc (its version)
  cgroups     the cgroup layout (v1/hybrid or v2)
  config      the lxcri config file parses
  zfs         the [zfs] pool is usable (or: not configured)
  containerd  containerd answers on SOCKET",
    after_help = "\
Exit status:
  0  all ok
  1  something failed (the FAIL line says what to do)
  2  usage error"
)]
pub struct CheckArgs {
    /// containerd's socket
    #[arg(long, value_name = "SOCKET", default_value = DEFAULT_ADDRESS)]
    address: String,
    /// The lxcri config (default: $LXCRI_CONFIG, else /etc/lxcri/config.toml)
    #[arg(long, value_name = "FILE")]
    config: Option<String>,
}

const SHIM: &str = "containerd-shim-lxcri-v2";
const DEFAULT_ADDRESS: &str = "/run/containerd/containerd.sock";

type Check = Result<String, String>;

/// `lxcri check ARGS...` (the arguments after `check`).
pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    super::run_group(&["check"], args, io)
}

pub(super) fn exec(args: CheckArgs, io: &mut Io<'_>) -> i32 {
    let CheckArgs { address, config } = args;
    let shim = find_in_path(SHIM);
    // The shim finds its helpers beside its real executable: /usr/bin/containerd-shim-lxcri-v2 of
    // the Debian package is a symlink into /usr/libexec/lxcri.
    let dir = shim
        .as_ref()
        .ok()
        .and_then(|p| p.canonicalize().ok())
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let cfg = Config::load(config.as_deref().map(Path::new)).map_err(|e| e.to_string());
    let checks: Vec<(&str, Check)> = vec![
        ("shim", shim.clone().map(|p| p.display().to_string())),
        ("init", check_beside(dir.as_deref())),
        ("liblxc", check_liblxc(dir.as_deref())),
        ("cgroups", check_cgroups()),
        (
            "config",
            cfg.as_ref()
                .map(|_| "parses".to_string())
                .map_err(|e| format!("{e}; fix the file or pass --config")),
        ),
        ("zfs", check_zfs(cfg.as_ref().ok())),
        ("containerd", check_containerd(&address)),
    ];
    let mut failed = 0;
    for (name, result) in checks {
        let _ = match result {
            Ok(detail) => writeln!(io.out, "ok   {name:<10} {detail}"),
            Err(fix) => {
                failed += 1;
                writeln!(io.out, "FAIL {name:<10} {fix}")
            }
        };
    }
    if failed == 0 {
        EXIT_OK
    } else {
        let _ = writeln!(io.err, "lxcri check: {failed} check(s) failed");
        EXIT_INVALID
    }
}

/// `name` in `PATH`, as containerd looks up a shim binary.
fn find_in_path(name: &str) -> Result<PathBuf, String> {
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
        .ok_or_else(|| {
            format!(
                "{name} is not in PATH ({path}): install the lxcri Debian package (scripts/package.sh builds it), or put it into /usr/local/bin (scripts/build.sh builds it into target/release), where containerd finds runtime io.containerd.lxcri.v2"
            )
        })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn check_beside(dir: Option<&Path>) -> Check {
    let dir = dir.ok_or("no shim found: see the shim line")?;
    let missing: Vec<&str> = ["lxcri-init", "lxcri-monitor"]
        .into_iter()
        .filter(|b| !is_executable(&dir.join(b)))
        .collect();
    if missing.is_empty() {
        Ok(format!("lxcri-init, lxcri-monitor in {}", dir.display()))
    } else {
        Err(format!(
            "{} missing in {}: install them beside the shim",
            missing.join(" and "),
            dir.display()
        ))
    }
}

fn check_liblxc(dir: Option<&Path>) -> Check {
    let monitor = dir
        .ok_or("no shim found: see the shim line")?
        .join("lxcri-monitor");
    let out = std::process::Command::new(&monitor)
        .arg("version")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", monitor.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} cannot load liblxc ({}): install liblxc1 (apt install liblxc1 lxc)",
            monitor.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn check_cgroups() -> Check {
    if !Path::new("/sys/fs/cgroup").is_dir() {
        return Err("/sys/fs/cgroup is not mounted: mount the cgroup hierarchies".into());
    }
    Ok(match host::cgroup_mode() {
        CgroupMode::V2 => "v2 (unified)".to_string(),
        CgroupMode::V1 if Path::new("/sys/fs/cgroup/unified").is_dir() => {
            "v1 controllers with a v2 hierarchy (hybrid)".to_string()
        }
        CgroupMode::V1 => "v1".to_string(),
    })
}

fn check_zfs(cfg: Option<&Config>) -> Check {
    let Some(cfg) = cfg else {
        return Err("not checked: the config does not parse".into());
    };
    let Some(z) = cfg.zfs.clone() else {
        return Ok("not configured: containers use containerd's mounts as they are".into());
    };
    let dataset = z.dataset.clone();
    layerfs::ZfsProvider::new(z)
        .map(|_| format!("{dataset} usable"))
        .map_err(|e| e.to_string())
}

fn check_containerd(address: &str) -> Check {
    std::os::unix::net::UnixStream::connect(address)
        .map(|_| format!("answers on {address}"))
        .map_err(|e| {
            format!("cannot connect to {address}: {e}: is containerd running (systemctl status containerd)? else pass --address")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(args: &[&str]) -> (i32, String, String) {
        crate::cli::run_captured(run, args)
    }

    #[test]
    fn a_missing_containerd_fails_with_the_fix() {
        let d = tempfile::tempdir().unwrap();
        let sock = d.path().join("nobody.sock");
        let cfg = d.path().join("config.toml");
        std::fs::write(&cfg, "").unwrap();
        let (code, out, err) = check(&[
            "--address",
            sock.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
        ]);
        assert_eq!(code, EXIT_INVALID, "{out}{err}");
        let line = out
            .lines()
            .find(|l| l.starts_with("FAIL containerd"))
            .unwrap_or_else(|| panic!("no failed containerd line: {out}"));
        assert!(line.contains("is containerd running"), "{line}");
        assert!(out.lines().any(|l| l.starts_with("ok   config")), "{out}");
        assert!(
            out.lines()
                .any(|l| l.starts_with("ok   zfs") && l.contains("not configured")),
            "{out}"
        );
    }

    #[test]
    fn a_bad_config_is_named() {
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path().join("config.toml");
        std::fs::write(&cfg, "no_such_key = 1\n").unwrap();
        let (code, out, _) = check(&["--config", cfg.to_str().unwrap()]);
        assert_eq!(code, EXIT_INVALID);
        assert!(out.lines().any(|l| l.starts_with("FAIL config")), "{out}");
    }

    #[test]
    fn usage_errors() {
        assert_eq!(check(&["extra"]).0, crate::cli::EXIT_USAGE);
        assert_eq!(check(&["--help"]).0, EXIT_OK);
    }
}
