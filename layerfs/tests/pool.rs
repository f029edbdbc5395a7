//! The pool check on a real pool (zfs-fuse on a file): what `zpool list` says, and what the
//! provider does with it. Run with `--features libzetta` too (scripts/test.sh does): libzetta's
//! zpool engine cannot read zfs-fuse's pool (no `zpool list -p`), so the runner answers there.

use integration::ZfsPool;
use layerfs::{pool_health, Runner, ZfsConfig, ZfsErrorKind, ZfsProvider, ZfsProviderError};
use std::process::Command;

fn can_run() -> bool {
    let reason = if !nix::unistd::geteuid().is_root() {
        Some("not root")
    } else if Command::new("zfs-fuse").arg("--help").output().is_err() {
        Some("zfs-fuse not installed (scripts/setup.sh installs it)")
    } else {
        None
    };
    match reason {
        Some(r) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("layerfs pool tests cannot run in CI: {r}")
        }
        Some(r) => {
            eprintln!("skipped: {r}");
            false
        }
        None => true,
    }
}

#[test]
fn a_fresh_pool_is_online_and_a_missing_one_is_named() {
    if !can_run() {
        return;
    }
    let pool = ZfsPool::create();
    let h = pool_health(&Runner::default(), pool.name()).unwrap();
    assert_eq!(h.health, "ONLINE", "{h:?}");
    assert!(h.usable());
    assert_eq!(
        h.via, "zpool list",
        "zfs-fuse's zpool has no `list -p` for libzetta"
    );
    assert_eq!(
        pool.zpool_ok(&["list", "-H", "-o", "health", pool.name()])
            .trim(),
        "ONLINE"
    );

    let e = pool_health(&Runner::default(), "lxcri-no-such-pool").unwrap_err();
    assert_eq!(e.kind, ZfsErrorKind::PoolMissing, "{e}");
}

#[test]
fn the_provider_refuses_an_unhealthy_pool_naming_it_and_the_config_key() {
    if !can_run() {
        return;
    }
    let pool = ZfsPool::create();
    let dir = tempfile::tempdir().unwrap();
    // A zpool that reports the real pool FAULTED; zfs itself is the real one.
    let fake = dir.path().join("zpool");
    std::fs::write(&fake, "#!/bin/sh\necho FAULTED\n").unwrap();
    std::fs::set_permissions(
        &fake,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755),
    )
    .unwrap();
    let cfg = ZfsConfig::new(pool.dataset("lxcri"), dir.path().join("root"));
    let runner = Runner::default().with_binaries("zfs", fake.to_str().unwrap());
    let e = ZfsProvider::with_runner(cfg, runner).unwrap_err();
    assert!(
        matches!(&e, ZfsProviderError::PoolUnhealthy { health, .. } if health == "FAULTED"),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(text.contains(pool.name()), "{text}");
    assert!(text.contains("zfs.dataset"), "{text}");
    assert!(text.contains("zpool status"), "{text}");
    // Nothing was created under the parent dataset.
    let listed = pool.zfs(&["list", "-H", "-o", "name", &pool.dataset("lxcri")]);
    assert!(
        !listed.status.success(),
        "{} was created",
        pool.dataset("lxcri")
    );
}
