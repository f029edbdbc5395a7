//! `ctr run --log-uri`: `file:///path` and `binary:///path?args` (a logging binary, as nerdctl
//! uses) on containerd 1.6, 1.7 and 2.1.

use integration::run_with_busybox as run;
use integration::{assert_exit, ctr_run_rm, unique_id, wait_until, Containerd};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

integration::per_containerd_version!(log_to_a_file, log_through_a_logging_binary);

fn log_to_a_file(cd: &Containerd) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("out.log");
    let id = unique_id("logf");
    let uri = format!("file://{}", log.display());
    let o = ctr_run_rm(
        cd,
        &["--log-uri", &uri],
        &id,
        &["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 4"],
    );
    assert_exit(&o, 4);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("to-stdout\n") && text.contains("to-stderr\n"),
        "{text:?}"
    );
    integration::assert_clean(&id);
}

fn log_through_a_logging_binary(cd: &Containerd) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    // A logging binary: ready once fd 5 is closed, stdout from fd 3, stderr from fd 4.
    let logger = dir.path().join("logger.sh");
    std::fs::write(
        &logger,
        format!(
            "#!/bin/sh\necho \"$CONTAINER_ID $CONTAINER_NAMESPACE $*\" > {d}/env\nexec 5>&-\ncat <&3 > {d}/stdout &\ncat <&4 > {d}/stderr &\nwait\ntouch {d}/done\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&logger, std::fs::Permissions::from_mode(0o755)).unwrap();
    let id = unique_id("logb");
    let uri = format!("binary://{}?--tag=web&--verbose", logger.display());
    let o = ctr_run_rm(
        cd,
        &["--log-uri", &uri],
        &id,
        &["sh", "-c", "echo out-line; echo err-line >&2"],
    );
    assert_exit(&o, 0);
    // The logger sees EOF when the container is gone, then finishes.
    wait_until("the logger to finish", Duration::from_secs(10), || {
        dir.path().join("done").exists()
    });
    assert_eq!(
        std::fs::read_to_string(dir.path().join("stdout")).unwrap(),
        "out-line\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("stderr")).unwrap(),
        "err-line\n"
    );
    let env = std::fs::read_to_string(dir.path().join("env")).unwrap();
    assert_eq!(
        env.trim(),
        format!("{id} {} --tag web --verbose", integration::NAMESPACE)
    );
    integration::assert_clean(&id);
}
