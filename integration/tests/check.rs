//! `lxcri check` on a node where containerd runs and lxcri is installed beside each other (the
//! built binaries first in PATH, as an operator installs them), on containerd 1.6, 1.7 and 2.1:
//! every check passes; pointed at a socket where nothing listens, the containerd check fails
//! with what to do, and the exit status says so.

use integration::run_with_busybox as run;
use integration::{shim_dir, stdout, Containerd};
use std::process::Command;

integration::per_containerd_version!(a_ready_node_passes_every_check);

fn lxcri_check(address: &str) -> std::process::Output {
    let path = format!(
        "{}:{}",
        shim_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let config = tempfile::NamedTempFile::new().unwrap();
    Command::new(shim_dir().join("lxcri"))
        .args(["check", "--address", address, "--config"])
        .arg(config.path())
        .env("PATH", path)
        .output()
        .expect("run lxcri check")
}

fn a_ready_node_passes_every_check(cd: &Containerd) {
    let o = lxcri_check(&cd.socket().display().to_string());
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    for name in [
        "shim",
        "init",
        "liblxc",
        "cgroups",
        "config",
        "zfs",
        "containerd",
    ] {
        assert!(
            out.lines()
                .any(|l| l.starts_with("ok") && l.split_whitespace().nth(1) == Some(name)),
            "no passing {name} check:\n{out}"
        );
    }
    assert!(out.contains("liblxc 5."), "the liblxc version:\n{out}");

    let gone = cd.dir().join("nobody-listens.sock");
    let o = lxcri_check(&gone.display().to_string());
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("FAIL containerd") && l.contains("is containerd running")),
        "{out}"
    );
}
