//! `linux.seccomp` through `ctr run --seccomp` with the lxcri shim, on containerd 1.6, 1.7 and
//! 2.1: containerd's default profile, a custom profile's errno values, an argument condition,
//! and a profile feature lxcri cannot apply (refused at Create, nothing left behind).

use integration::run_with_busybox as run;
use integration::{assert_clean, assert_exit, ctr_run_d, ctr_run_rm, stderr, stdout};
use integration::{unique_id, Containerd};
use std::process::Output;

integration::per_containerd_version!(
    default_profile_runs_and_blocks_unshare,
    custom_profile_errno_values,
    argument_condition_blocks_only_sigkill,
    unsupported_profile_feature_fails_create,
    exec_runs_under_the_container_filter,
);

/// A seccomp profile written to a temporary file (removed on drop).
struct Profile(tempfile::NamedTempFile);

impl Profile {
    fn new(json: serde_json::Value) -> Profile {
        let f = tempfile::Builder::new()
            .prefix("lxcri-seccomp-")
            .suffix(".json")
            .tempfile()
            .expect("creating a profile file");
        std::fs::write(f.path(), json.to_string()).expect("writing the profile");
        Profile(f)
    }
    fn path(&self) -> &str {
        self.0.path().to_str().expect("temp path is UTF-8")
    }
}

/// `ctr run --rm [--seccomp [--seccomp-profile FILE]] busybox ID sh -c SCRIPT`.
fn run_sh(cd: &Containerd, id: &str, seccomp: Option<Option<&Profile>>, script: &str) -> Output {
    let mut flags = vec![];
    if let Some(profile) = seccomp {
        flags.push("--seccomp");
        if let Some(p) = profile {
            flags.extend(["--seccomp-profile", p.path()]);
        }
    }
    ctr_run_rm(cd, &flags, id, &["/bin/sh", "-c", script])
}

fn default_profile_runs_and_blocks_unshare(cd: &Containerd) {
    let script = "echo hello; mkdir /tmp/d && echo mkdir=ok; \
                  unshare -U true 2>&1; echo unshare=$?; exit 7";
    // Control: without a profile, creating a user namespace works here.
    let id = unique_id("scnone");
    let o = run_sh(cd, &id, None, script);
    assert_exit(&o, 7);
    assert!(stdout(&o).contains("unshare=0"), "stdout: {}", stdout(&o));
    assert_clean(&id);

    // containerd's default profile: normal work passes, unshare(2) without CAP_SYS_ADMIN is
    // refused with EPERM, the exit status passes through.
    let id = unique_id("scdef");
    let o = run_sh(cd, &id, Some(None), script);
    assert_exit(&o, 7);
    let out = stdout(&o);
    assert!(out.starts_with("hello\nmkdir=ok\n"), "stdout: {out}");
    assert!(out.contains("Operation not permitted"), "stdout: {out}");
    assert!(out.contains("unshare=1"), "stdout: {out}");
    assert_clean(&id);
}

fn custom_profile_errno_values(cd: &Containerd) {
    let profile = Profile::new(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["symlink", "symlinkat"], "action": "SCMP_ACT_ERRNO"}
        ]
    }));
    let id = unique_id("sccust");
    let o = run_sh(
        cd,
        &id,
        Some(Some(&profile)),
        "mkdir /x 2>&1; echo mkdir=$?; rmdir /tmp 2>&1; ln -s a /tmp/l 2>&1; \
         touch /tmp/f && echo touch=ok",
    );
    assert_exit(&o, 0);
    let out = stdout(&o);
    assert!(
        out.contains("mkdir: can't create directory '/x': Function not implemented"),
        "stdout: {out}"
    );
    assert!(out.contains("mkdir=1"), "stdout: {out}");
    assert!(out.contains("Permission denied"), "rmdir: stdout: {out}");
    assert!(
        out.contains("Operation not permitted"),
        "ln -s: stdout: {out}"
    );
    assert!(out.contains("touch=ok"), "stdout: {out}");
    assert_clean(&id);
}

fn argument_condition_blocks_only_sigkill(cd: &Containerd) {
    // kill(pid, 9) fails with EACCES (the rule's condition on argument 1); kill(pid, 15) is
    // allowed.
    let profile = Profile::new(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]}
        ]
    }));
    let id = unique_id("scarg");
    let o = run_sh(
        cd,
        &id,
        Some(Some(&profile)),
        "sleep 30 & p=$!; kill -9 $p 2>&1; echo kill9=$?; kill -15 $p 2>&1; echo kill15=$?; \
         wait $p; echo wait=$?",
    );
    assert_exit(&o, 0);
    let out = stdout(&o);
    assert!(out.contains("Permission denied"), "stdout: {out}");
    assert!(out.contains("kill9=1"), "stdout: {out}");
    assert!(out.contains("kill15=0"), "stdout: {out}");
    // sleep died of SIGTERM (128 + 15), not SIGKILL.
    assert!(out.contains("wait=143"), "stdout: {out}");
    assert_clean(&id);
}

fn unsupported_profile_feature_fails_create(cd: &Containerd) {
    let profile = Profile::new(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
    }));
    let id = unique_id("scbad");
    let o = run_sh(cd, &id, Some(Some(&profile)), "echo should-not-run");
    assert!(!o.status.success(), "stdout: {}", stdout(&o));
    assert!(!stdout(&o).contains("should-not-run"));
    let err = stderr(&o);
    assert!(
        err.contains("linux.seccomp.syscalls[0].action") && err.contains("SCMP_ACT_NOTIFY"),
        "stderr: {err}"
    );
    let _ = cd.ctr(&["container", "rm", &id]);
    assert_clean(&id);
}

fn exec_runs_under_the_container_filter(cd: &Containerd) {
    let profile = Profile::new(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
    }));
    let id = unique_id("scexec");
    let flags = ["--seccomp", "--seccomp-profile", profile.path()];
    ctr_run_d(cd, &flags, &id, &["sleep", "300"]);
    let o = cd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "m",
        &id,
        "sh",
        "-c",
        "mkdir /y 2>&1; echo mkdir=$?",
    ]);
    let out = stdout(&o);
    assert!(
        out.contains("Function not implemented") && out.contains("mkdir=1"),
        "exec not filtered: {out} {}",
        stderr(&o)
    );
    cd.kill_delete_rm(&id);
    assert_clean(&id);
}
