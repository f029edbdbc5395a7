//! OCI runtime-spec hooks (`hooks.*` of config.json), run by the shim.
//!
//! LXC sets the container up (namespaces, mounts, `pivot_root`) in one go before it starts the
//! init, and its own `lxc.hook.*` have neither the OCI arguments, environment, state on stdin,
//! timeouts nor the OCI order, so the shim runs the spec's hooks itself, at these points of the
//! task API (see [`Kind`]):
//!
//! | kind | when | namespaces, root, cwd | state `status` |
//! | --- | --- | --- | --- |
//! | `prestart`, `createRuntime` | Create, once the init reported ready | the shim's (runtime) namespaces; cwd = bundle | `creating` |
//! | `createContainer` | Create, right after those | the container's namespaces with the host's root directory; cwd = bundle | `creating` |
//! | `startContainer` | Start, before the init is released | the container's namespaces and root; cwd = `/` | `created` |
//! | `poststart` | Start, right after the init is released | runtime | `running` |
//! | `poststop` | Delete (and a Create failing in a hook), after the teardown | runtime | `stopped` |
//!
//! The state on stdin is the runtime spec's state JSON: `ociVersion`, `id`, `status`, `pid` (the
//! init's host pid; none for `poststop`), `bundle` (absolute) and `annotations`.
//!
//! One difference from runc: every Create hook runs after LXC's `pivot_root` (the container is
//! complete when the init reports), where runc runs them before. `createContainer` therefore
//! gets the host's root directory back (`chroot` to it inside the container's mount namespace),
//! so its path, `#!` interpreter and shared libraries resolve on the host as the spec asks;
//! the container's file system is at `/proc/<pid>/root` (and `<bundle>/rootfs`).
//!
//! This module is the pure part: which hooks run when, where and with what state
//! ([`Plan`], golden-tested in `tests/hooks_golden.rs`); [`run`] forks and executes them.

pub mod run;

use crate::lxcconf::TranslateError;
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// File in the LXC container directory holding the [`Plan`] between Create, Start and Delete.
pub const PLAN_FILE: &str = "hooks.json";

/// The six kinds of hook, in the order of the lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

/// Where a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The shim's own namespaces and root (the runtime namespace); cwd = the bundle.
    Runtime,
    /// Every namespace of the container (user, mount, pid, network, IPC, UTS, cgroup, time,
    /// where they differ from the shim's), but the host's root directory, so the path resolves
    /// in the runtime namespace; cwd = the bundle.
    ContainerHostRoot,
    /// Every namespace of the container and its root directory: the path resolves in the
    /// container; cwd = `/`.
    Container,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Prestart,
        Kind::CreateRuntime,
        Kind::CreateContainer,
        Kind::StartContainer,
        Kind::Poststart,
        Kind::Poststop,
    ];

    /// The field name under `hooks` in the spec.
    pub fn field(self) -> &'static str {
        match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }

    /// The container's status in the state a hook of this kind reads.
    pub fn status(self) -> &'static str {
        match self {
            Kind::Prestart | Kind::CreateRuntime | Kind::CreateContainer => "creating",
            Kind::StartContainer => "created",
            Kind::Poststart => "running",
            Kind::Poststop => "stopped",
        }
    }

    pub fn place(self) -> Place {
        match self {
            Kind::CreateContainer => Place::ContainerHostRoot,
            Kind::StartContainer => Place::Container,
            _ => Place::Runtime,
        }
    }

    /// Whether a failing hook of this kind fails its operation. `poststart` and `poststop`
    /// failures are logged as warnings and the remaining hooks still run (runtime spec).
    pub fn fails_operation(self) -> bool {
        !matches!(self, Kind::Poststart | Kind::Poststop)
    }

    /// The moment it runs, in words.
    pub fn when(self) -> &'static str {
        match self {
            Kind::Prestart | Kind::CreateRuntime => {
                "Create, once the container's init reported ready (namespaces, mounts, \
                 cgroups and pivot_root done; the user's process not started)"
            }
            Kind::CreateContainer => "Create, after the prestart and createRuntime hooks",
            Kind::StartContainer => "Start, before the init is released to exec the process",
            Kind::Poststart => "Start, after the init was released to exec the process",
            Kind::Poststop => {
                "Delete (or a Create that failed in a hook), after the container is torn down"
            }
        }
    }

    /// What a failure does, in words.
    pub fn on_failure(self) -> &'static str {
        match self {
            Kind::Prestart | Kind::CreateRuntime | Kind::CreateContainer => {
                "Create fails with the hook's output; the container is torn down, then the \
                 poststop hooks run"
            }
            Kind::StartContainer => {
                "Start fails with the hook's output; the container's init is killed"
            }
            Kind::Poststart | Kind::Poststop => "a warning in the shim's log; the rest goes on",
        }
    }
}

impl Place {
    pub fn describe(self) -> &'static str {
        match self {
            Place::Runtime => "the runtime namespaces (the shim's); cwd = bundle",
            Place::ContainerHostRoot => {
                "the container's namespaces, root directory = the host's (path resolved on \
                 the host); cwd = bundle"
            }
            Place::Container => {
                "the container's namespaces and root directory (path resolved in the \
                 container); cwd = /"
            }
        }
    }
}

/// One hook of the spec, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hook {
    pub kind: Kind,
    /// Its index in `hooks.<kind>`.
    pub index: usize,
    /// Absolute path of the executable.
    pub path: String,
    /// argv, `args[0]` included (the spec's `args`, or `[path]` when it has none).
    pub args: Vec<String>,
    /// The whole environment (the spec's `env`; empty when it has none).
    pub env: Vec<String>,
    /// Seconds before the hook is killed and counted as failed.
    pub timeout_s: Option<u64>,
}

impl Hook {
    /// `createRuntime hook hooks.createRuntime[0] (/usr/bin/x)`, for messages.
    pub fn name(&self) -> String {
        format!(
            "{} hook hooks.{}[{}] ({})",
            self.kind.field(),
            self.kind.field(),
            self.index,
            self.path
        )
    }
}

/// Everything needed to run a container's hooks at any point of its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub id: String,
    /// The bundle, absolute.
    pub bundle: PathBuf,
    pub annotations: BTreeMap<String, String>,
    /// Every hook, in the order they run.
    pub hooks: Vec<Hook>,
}

/// The runtime spec's state of a container, as hooks read it on stdin.
#[derive(Debug, Serialize)]
struct StateJson<'a> {
    #[serde(rename = "ociVersion")]
    oci_version: &'a str,
    id: &'a str,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<i32>,
    bundle: &'a Path,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

/// The version of the runtime spec whose state format lxcri writes.
pub const STATE_OCI_VERSION: &str = "1.2.0";

/// Checks the spec's hooks and returns them in the order they run (empty: no hook).
pub fn check(spec: &Spec) -> Result<Vec<Hook>, TranslateError> {
    let Some(hooks) = spec.hooks() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for kind in Kind::ALL {
        let list = match kind {
            Kind::Prestart => hooks.prestart(),
            Kind::CreateRuntime => hooks.create_runtime(),
            Kind::CreateContainer => hooks.create_container(),
            Kind::StartContainer => hooks.start_container(),
            Kind::Poststart => hooks.poststart(),
            Kind::Poststop => hooks.poststop(),
        };
        for (index, h) in list.iter().flatten().enumerate() {
            let field = |f: &str| format!("hooks.{}[{index}]{f}", kind.field());
            let path = match h.path().to_str() {
                Some(p) if h.path().is_absolute() && !p.contains('\0') => p.to_string(),
                _ => {
                    return Err(TranslateError::invalid(
                        field(".path"),
                        format!("{:?} is not an absolute path", h.path()),
                        "give the hook's executable as an absolute path (the runtime spec \
                         requires it; there is no PATH lookup)",
                    ))
                }
            };
            let args = match h.args() {
                Some(a) if !a.is_empty() => a.clone(),
                _ => vec![path.clone()],
            };
            let env = h.env().clone().unwrap_or_default();
            for (what, list) in [("args", &args), ("env", &env)] {
                if let Some(i) = list.iter().position(|s| s.contains('\0')) {
                    return Err(TranslateError::invalid(
                        field(&format!(".{what}[{i}]")),
                        "contains a NUL byte",
                        "remove the NUL byte",
                    ));
                }
            }
            if let Some(i) = env.iter().position(|e| !e.contains('=')) {
                return Err(TranslateError::invalid(
                    field(&format!(".env[{i}]")),
                    format!("{:?} is not of the form NAME=VALUE", env[i]),
                    "write each environment variable as NAME=VALUE",
                ));
            }
            let timeout_s = match h.timeout() {
                None => None,
                Some(t) if t > 0 => Some(t as u64),
                Some(t) => {
                    return Err(TranslateError::invalid(
                        field(".timeout"),
                        format!("{t} is not a number of seconds greater than zero"),
                        "give a positive timeout in seconds, or leave it out (no limit)",
                    ))
                }
            };
            out.push(Hook {
                kind,
                index,
                path,
                args,
                env,
                timeout_s,
            });
        }
    }
    Ok(out)
}

impl Plan {
    /// The plan of a container's hooks; `None` when the spec has none. `bundle` must be
    /// absolute (containerd's always is).
    pub fn from_spec(spec: &Spec, id: &str, bundle: &Path) -> Result<Option<Plan>, TranslateError> {
        let hooks = check(spec)?;
        if hooks.is_empty() {
            return Ok(None);
        }
        Ok(Some(Plan {
            id: id.to_string(),
            bundle: bundle.to_path_buf(),
            annotations: spec
                .annotations()
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            hooks,
        }))
    }

    /// The hooks of one kind, in spec order.
    pub fn of(&self, kind: Kind) -> impl Iterator<Item = &Hook> {
        self.hooks.iter().filter(move |h| h.kind == kind)
    }

    /// The state JSON a hook of `kind` reads on stdin. `pid` is the init's host pid; it is
    /// left out for `poststop` (the container is gone).
    pub fn state_json(&self, kind: Kind, pid: i32) -> String {
        let state = StateJson {
            oci_version: STATE_OCI_VERSION,
            id: &self.id,
            status: kind.status(),
            pid: (kind != Kind::Poststop).then_some(pid),
            bundle: &self.bundle,
            annotations: &self.annotations,
        };
        serde_json::to_string(&state).unwrap_or_default()
    }

    /// The plan in words, one block per hook in the order they run, with the state each one
    /// reads for an init of host pid `pid` (the golden files show this).
    pub fn describe(&self, pid: i32) -> String {
        let mut out = format!(
            "# hooks of container {} (bundle {}), in the order they run\n",
            self.id,
            self.bundle.display()
        );
        for h in &self.hooks {
            out.push_str(&format!(
                "\nhooks.{}[{}]: {}\n",
                h.kind.field(),
                h.index,
                h.path
            ));
            out.push_str(&format!("  argv: {:?}\n", h.args));
            out.push_str(&format!("  env: {:?}\n", h.env));
            match h.timeout_s {
                Some(t) => out.push_str(&format!("  timeout: {t} s, then killed\n")),
                None => out.push_str("  timeout: none\n"),
            }
            out.push_str(&format!("  when: {}\n", h.kind.when()));
            out.push_str(&format!("  where: {}\n", h.kind.place().describe()));
            out.push_str(&format!("  stdin: {}\n", self.state_json(h.kind, pid)));
            out.push_str(&format!("  on failure: {}\n", h.kind.on_failure()));
        }
        out
    }

    /// Writes the plan into the LXC container directory `dir`, for Start and Delete.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let data = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(PLAN_FILE), data)
    }

    /// The plan saved in `dir`, if the container has hooks.
    pub fn load(dir: &Path) -> Option<Plan> {
        let path = dir.join(PLAN_FILE);
        let data = std::fs::read(&path).ok()?;
        match serde_json::from_slice(&data) {
            Ok(p) => Some(p),
            Err(e) => {
                log::warn!(
                    "{}: {e}: the container's hooks will not run",
                    path.display()
                );
                None
            }
        }
    }

    /// Runs the Create hooks (`prestart`, `createRuntime`, `createContainer`) in order; the
    /// first failure stops them and is returned.
    pub fn run_create(&self, init_pid: i32) -> Result<(), String> {
        for kind in [Kind::Prestart, Kind::CreateRuntime, Kind::CreateContainer] {
            self.run_kind(kind, init_pid)?;
        }
        Ok(())
    }

    /// Runs the hooks of one kind in spec order. For kinds that fail their operation the first
    /// failure stops them and is returned; for `poststart` and `poststop` every failure is
    /// logged as a warning and the next hook runs.
    pub fn run_kind(&self, kind: Kind, init_pid: i32) -> Result<(), String> {
        for h in self.of(kind) {
            let state = self.state_json(kind, init_pid);
            let pid = (kind.place() != Place::Runtime).then_some(init_pid);
            let outcome = run::run_hook(h, &self.bundle, pid, state.as_bytes());
            match outcome.failure(h) {
                None => log::info!("container {}: {} done", self.id, h.name()),
                Some(msg) if kind.fails_operation() => return Err(msg),
                Some(msg) => log::warn!("container {}: {msg}", self.id),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(kind: Kind, index: usize, script: &str) -> Hook {
        Hook {
            kind,
            index,
            path: "/bin/sh".into(),
            args: vec!["sh".into(), "-c".into(), script.into()],
            env: vec!["PATH=/usr/bin:/bin".into()],
            timeout_s: Some(10),
        }
    }

    fn plan(dir: &Path, hooks: Vec<Hook>) -> Plan {
        Plan {
            id: "c1".into(),
            bundle: dir.to_path_buf(),
            annotations: BTreeMap::new(),
            hooks,
        }
    }

    #[test]
    fn a_failing_create_hook_stops_the_rest_and_is_returned() {
        let dir = tempfile::tempdir().unwrap();
        let p = plan(
            dir.path(),
            vec![
                sh(Kind::Prestart, 0, "echo prestart >> order"),
                sh(Kind::CreateRuntime, 0, "echo bad; exit 4"),
                sh(Kind::CreateRuntime, 1, "echo second >> order"),
                sh(Kind::CreateContainer, 0, "echo cc >> order"),
            ],
        );
        let err = p.run_create(1).unwrap_err();
        assert!(
            err.starts_with("createRuntime hook hooks.createRuntime[0] (/bin/sh) exited with status 4; its stdout: bad"),
            "{err}"
        );
        let order = std::fs::read_to_string(dir.path().join("order")).unwrap();
        assert_eq!(order, "prestart\n");
    }

    #[test]
    fn failing_poststop_hooks_are_warnings_and_the_next_ones_run() {
        let dir = tempfile::tempdir().unwrap();
        let p = plan(
            dir.path(),
            vec![
                sh(Kind::Poststop, 0, "exit 1"),
                sh(Kind::Poststop, 1, "cat > state.json"),
            ],
        );
        p.run_kind(Kind::Poststop, 42).unwrap();
        let state = std::fs::read_to_string(dir.path().join("state.json")).unwrap();
        assert_eq!(state, p.state_json(Kind::Poststop, 42));
        assert!(!state.contains("\"pid\""), "{state}");
    }

    #[test]
    fn the_plan_survives_save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let p = plan(dir.path(), vec![sh(Kind::Poststart, 0, "true")]);
        assert_eq!(Plan::load(dir.path()), None);
        p.save(dir.path()).unwrap();
        assert_eq!(Plan::load(dir.path()), Some(p));
    }
}
