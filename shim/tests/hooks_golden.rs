//! Golden tests of the hook plan: which OCI hook runs when, where, with which argv, environment,
//! timeout and state JSON on stdin.
//!
//! For each `tests/golden/hooks/NAME.json` (an OCI runtime spec) the plan of container `c1`
//! with bundle `/run/containerd/io.containerd.runtime.v2.task/default/c1` and init pid 4242
//! must equal `NAME.plan` (`none` for a spec without hooks).
//! `UPDATE_GOLDEN=1 cargo test -p lxcri --test hooks_golden` rewrites the `.plan` files; review
//! the diff before committing them.

mod common;

use std::path::Path;

use lxcri::hooks::{check, Kind, Plan};
use lxcri::lxcconf::TranslateError;
use oci_spec::runtime::Spec;

const BUNDLE: &str = "/run/containerd/io.containerd.runtime.v2.task/default/c1";
const PID: i32 = 4242;

fn load(name: &str) -> Spec {
    common::load("hooks", name)
}

fn plan(spec: &Spec) -> Result<Option<Plan>, TranslateError> {
    Plan::from_spec(spec, "c1", Path::new(BUNDLE))
}

#[test]
fn golden_plans_match() {
    let required = ["all-kinds", "nerdctl", "no-hooks"];
    common::check_all(
        "hooks",
        &required,
        "plan",
        "plan",
        |name, spec| match plan(spec).unwrap_or_else(|e| panic!("{name}.json: {e}")) {
            Some(p) => p.describe(PID),
            None => "none\n".to_string(),
        },
    );
}

#[test]
fn hooks_run_in_lifecycle_order_and_spec_order() {
    let p = plan(&load("all-kinds")).unwrap().unwrap();
    let order: Vec<(Kind, usize)> = p.hooks.iter().map(|h| (h.kind, h.index)).collect();
    assert_eq!(
        order,
        vec![
            (Kind::Prestart, 0),
            (Kind::CreateRuntime, 0),
            (Kind::CreateRuntime, 1),
            (Kind::CreateContainer, 0),
            (Kind::StartContainer, 0),
            (Kind::Poststart, 0),
            (Kind::Poststop, 0),
            (Kind::Poststop, 1),
        ]
    );
    // No args: argv is the path; no env: the environment is empty, not the shim's.
    let bare = &p.hooks[2];
    assert_eq!(bare.args, vec!["/usr/bin/true"]);
    assert!(bare.env.is_empty());
}

/// The state JSON is the runtime spec's: exactly these fields, the init's pid while it lives,
/// none once the container is stopped.
#[test]
fn state_json_follows_the_runtime_spec() {
    let p = plan(&load("nerdctl")).unwrap().unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&p.state_json(Kind::CreateRuntime, PID)).unwrap();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["annotations", "bundle", "id", "ociVersion", "pid", "status"]
    );
    assert_eq!(v["pid"], PID);
    assert_eq!(v["status"], "creating");
    assert_eq!(v["bundle"], BUNDLE);
    assert_eq!(v["annotations"]["nerdctl/name"], "web");
    for (kind, status) in [
        (Kind::Prestart, "creating"),
        (Kind::CreateContainer, "creating"),
        (Kind::StartContainer, "created"),
        (Kind::Poststart, "running"),
        (Kind::Poststop, "stopped"),
    ] {
        let v: serde_json::Value = serde_json::from_str(&p.state_json(kind, PID)).unwrap();
        assert_eq!(v["status"], status, "{kind:?}");
        assert_eq!(v.get("pid").is_none(), kind == Kind::Poststop, "{kind:?}");
    }
    // No annotations: the field is left out.
    let mut spec = load("nerdctl");
    spec.set_annotations(None);
    let p = plan(&spec).unwrap().unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&p.state_json(Kind::CreateRuntime, PID)).unwrap();
    assert!(v.get("annotations").is_none(), "{v}");
}

/// A bad hook fails with the field and what to do.
fn assert_error(hooks: serde_json::Value, field: &str, needle: &str) {
    let spec: Spec =
        serde_json::from_value(serde_json::json!({"ociVersion": "1.1.0", "hooks": hooks}))
            .expect("spec parses");
    let err = match check(&spec) {
        Ok(h) => panic!("expected an error on {field}, got {h:?}"),
        Err(e) => e,
    };
    let msg = err.to_string();
    assert_eq!(err.field(), field, "{msg}");
    assert!(msg.contains(needle), "message lacks {needle:?}: {msg}");
}

#[test]
fn bad_hooks_are_refused_naming_the_field() {
    assert_error(
        serde_json::json!({"createRuntime": [{"path": "/bin/true"}, {"path": "hook.sh"}]}),
        "hooks.createRuntime[1].path",
        "is not an absolute path",
    );
    assert_error(
        serde_json::json!({"poststop": [{"path": "/bin/true", "timeout": 0}]}),
        "hooks.poststop[0].timeout",
        "0 is not a number of seconds greater than zero",
    );
    assert_error(
        serde_json::json!({"startContainer": [{"path": "/bin/true", "env": ["A=1", "JUNK"]}]}),
        "hooks.startContainer[0].env[1]",
        "is not of the form NAME=VALUE",
    );
    assert_error(
        serde_json::json!({"prestart": [{"path": "/bin/true", "args": ["x", "a\u{0}b"]}]}),
        "hooks.prestart[0].args[1]",
        "NUL",
    );
}
