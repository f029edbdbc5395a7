//! OCI hooks with the lxcri shim on containerd 1.6, 1.7 and 2.1, through `ctr run --config
//! SPEC ID`: containerd's default spec (`ctr oci spec`) with a busybox rootfs directory, plus hooks that are small shell scripts
//! recording what they see (argv, environment, namespaces, root directory, host name, the state
//! JSON on stdin) into a directory the test reads; the container sees that directory at
//! `/hooklog`.
//!
//! Checked: every hook runs once, in lifecycle order, at its point, in the namespaces the
//! runtime spec says, with the right state; a failing createRuntime hook fails `ctr run` with its
//! output and leaves nothing behind (the poststop hook still runs); a hook running past its
//! timeout is killed and fails clearly; a failing startContainer hook fails the start.

use integration::{
    assert_clean, require_root_or_skip, stderr, stdout, unique_id, Containerd, ContainerdVersion,
    NAMESPACE,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

const RUNTIME: &str = "io.containerd.lxcri.v2";

/// A private containerd `v` (no image: `ctr run --config` takes a rootfs directory).
fn run(v: ContainerdVersion, scenario: fn(&Containerd)) {
    if !require_root_or_skip() {
        return;
    }
    scenario(&Containerd::start(v));
}

integration::per_containerd_version!(
    every_hook_runs_once_in_order_where_the_spec_says,
    failing_create_runtime_hook_fails_run_and_leaves_nothing,
    hook_past_its_timeout_is_killed_and_fails_create,
    failing_start_container_hook_fails_start,
);

/// What every hook runs: `sh -c '. DIR/record.sh' KIND DIR`. It writes `DIR/KIND.rec` (one
/// `key=value` per line) and appends KIND to `DIR/order`. Only what the shell opens itself
/// names the shell in `/proc/self` (`exec 3<`), and `/proc/self` is right in every PID
/// namespace where `$$` is not.
const RECORD_SH: &str = r#"kind=$0; dir=$1
exec 3< /proc/self/cmdline 4< /proc/self/environ 5< /proc/self/exe
state=$(cat)
{
  echo "cmdline=$(tr '\0' ' ' <&3)"
  echo "environ=$(tr '\0' ' ' <&4)"
  echo "exe=$(readlink /proc/self/fd/5)"
  for n in mnt uts pid net; do echo "$n=$(readlink /proc/self/ns/$n)"; done
  echo "hostname=$(hostname)"
  echo "cwd=$(pwd)"
  if [ -d /hooklog ]; then echo "root=container"; else echo "root=host"; fi
  echo "state=$state"
  pid=$(echo "$state" | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
  if [ "$kind" = createRuntime ]; then
    for n in mnt uts pid net; do echo "init_$n=$(readlink /proc/$pid/ns/$n)"; done
  fi
} > "$dir/$kind.rec"
echo "$kind" >> "$dir/order"
"#;

const HOOK_PATH_ENV: &str = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";

/// A hook's argv[0]: `argv0-KIND` (the host's dash does not mind), but `sh` for startContainer,
/// whose /bin/sh is the container's busybox (which runs the applet argv[0] names).
fn argv0(kind: &str) -> String {
    if kind == "startContainer" {
        "sh".into()
    } else {
        format!("argv0-{kind}")
    }
}

/// A test's hook directory (host side of `/hooklog`) and spec file.
struct Hooked {
    dir: tempfile::TempDir,
}

impl Hooked {
    fn new(id: &str) -> Hooked {
        let dir = tempfile::Builder::new()
            .prefix(&format!("hooks-{id}-"))
            .tempdir_in("/tmp")
            .expect("temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.path().join("record.sh"), RECORD_SH).unwrap();
        Hooked { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn host_dir(&self) -> String {
        self.path().display().to_string()
    }

    /// A hook running the recording script as KIND, reading the script from `dir`; argv[0] is
    /// [`argv0`].
    fn recording_hook(&self, kind: &str, dir: &str) -> Value {
        json!({
            "path": "/bin/sh",
            "args": [argv0(kind), "-c", format!(". {dir}/record.sh"), kind, dir],
            "env": [HOOK_PATH_ENV, format!("HOOK_KIND={kind}")],
            "timeout": 20
        })
    }

    /// A hook running `script` with `sh -c` (on the host).
    fn script_hook(script: &str, timeout: u64) -> Value {
        json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", script],
            "env": [HOOK_PATH_ENV],
            "timeout": timeout
        })
    }

    /// containerd's default spec for container `id` running `args` with `hooks`, a busybox
    /// rootfs of its own (`ctr run --config` takes no image), the hook directory mounted at
    /// `/hooklog`, host name `hooked`; written to the hook directory. Returns its path.
    fn spec(&self, cd: &Containerd, id: &str, hooks: Value, args: &[&str]) -> String {
        let mut spec: Value =
            serde_json::from_str(&cd.ctr_ok(&["oci", "spec"])).expect("ctr oci spec is JSON");
        let rootfs = self.path().join("rootfs");
        image_core::builder::busybox_rootfs(&rootfs).expect("busybox rootfs");
        spec["root"] = json!({"path": rootfs.display().to_string()});
        spec["process"]["args"] = json!(args);
        spec["process"]["env"] = json!([HOOK_PATH_ENV]);
        spec["hooks"] = hooks;
        spec["hostname"] = json!("hooked");
        spec["annotations"] = json!({"org.example.hooks/test": id});
        spec["linux"]["cgroupsPath"] = json!(format!("/{NAMESPACE}/{id}"));
        spec["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/hooklog", "type": "bind", "source": self.host_dir(),
            "options": ["rbind", "rw"]
        }));
        let path = self.path().join("spec.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
        path.display().to_string()
    }

    /// The kinds in `order`, one per line.
    fn order(&self) -> Vec<String> {
        std::fs::read_to_string(self.path().join("order"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// KIND.rec as a map; panics if the hook did not run.
    fn record(&self, kind: &str) -> BTreeMap<String, String> {
        let path = self.path().join(format!("{kind}.rec"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("the {kind} hook left no record ({e})"));
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ran(&self, kind: &str) -> bool {
        self.path().join(format!("{kind}.rec")).exists()
    }
}

/// `ctr run --rm --config SPEC ID`.
fn ctr_run(cd: &Containerd, spec: &str, id: &str) -> Output {
    cd.ctr(&["run", "--rm", "--runtime", RUNTIME, "--config", spec, id])
}

fn own_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .display()
        .to_string()
}

fn state_of(rec: &BTreeMap<String, String>) -> Value {
    serde_json::from_str(&rec["state"]).unwrap_or_else(|e| panic!("state {:?}: {e}", rec["state"]))
}

const KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

fn every_hook_runs_once_in_order_where_the_spec_says(cd: &Containerd) {
    let id = unique_id("hooks");
    let h = Hooked::new(&id);
    let host = h.host_dir();
    let mut hooks = serde_json::Map::new();
    for kind in KINDS {
        // startContainer's path and script resolve in the container: through /hooklog.
        let dir = if kind == "startContainer" {
            "/hooklog"
        } else {
            &host
        };
        hooks.insert(kind.to_string(), json!([h.recording_hook(kind, dir)]));
    }
    let spec = h.spec(
        cd,
        &id,
        Value::Object(hooks),
        &["sh", "-c", "echo process >> /hooklog/order; echo ran"],
    );
    let o = ctr_run(cd, &spec, &id);
    assert!(
        o.status.success(),
        "ctr run failed: {}\n{}",
        stdout(&o),
        stderr(&o)
    );
    assert_eq!(stdout(&o), "ran\n");
    assert_clean(&id);

    // Each hook once, in lifecycle order; the process between startContainer and poststop.
    let order = h.order();
    let hooks_only: Vec<&str> = order
        .iter()
        .map(String::as_str)
        .filter(|k| *k != "process")
        .collect();
    assert_eq!(hooks_only, KINDS, "order: {order:?}");
    let at = |k: &str| order.iter().position(|x| x == k).unwrap();
    assert!(
        at("startContainer") < at("process") && at("process") < at("poststop"),
        "order: {order:?}"
    );

    let recs: BTreeMap<&str, BTreeMap<String, String>> =
        KINDS.iter().map(|k| (*k, h.record(k))).collect();
    let cr = &recs["createRuntime"];
    let init_pid = state_of(cr)["pid"]
        .as_i64()
        .expect("createRuntime state has a pid");
    assert!(init_pid > 1, "{init_pid}");
    // The init's namespaces as the host sees them, read by createRuntime through the state's
    // pid (what nerdctl's CNI hook does): the container's own, not the host's.
    for n in ["mnt", "uts", "pid", "net"] {
        assert_ne!(cr[&format!("init_{n}")], own_ns(n), "init {n} namespace");
    }
    let host_sh = std::fs::canonicalize("/bin/sh")
        .unwrap()
        .display()
        .to_string();
    for kind in KINDS {
        let r = &recs[kind];
        let state = state_of(r);
        // The state JSON of the runtime spec.
        let status = match kind {
            "prestart" | "createRuntime" | "createContainer" => "creating",
            "startContainer" => "created",
            "poststart" => "running",
            _ => "stopped",
        };
        assert_eq!(state["status"], status, "{kind}: {state}");
        assert_eq!(state["id"], id.as_str(), "{kind}: {state}");
        assert_eq!(state["ociVersion"], "1.2.0", "{kind}: {state}");
        assert_eq!(
            state["annotations"],
            json!({"org.example.hooks/test": id}),
            "{kind}: {state}"
        );
        let bundle = state["bundle"].as_str().unwrap_or_default();
        assert!(
            bundle.starts_with('/') && bundle.ends_with(&format!("/{id}")),
            "{kind}: bundle {bundle}"
        );
        if kind == "poststop" {
            assert!(state.get("pid").is_none(), "{kind}: {state}");
        } else {
            assert_eq!(state["pid"], init_pid, "{kind}: {state}");
        }
        // argv[0] and exactly the hook's environment.
        assert!(
            r["cmdline"].starts_with(&format!("{} -c ", argv0(kind))),
            "{kind}: {}",
            r["cmdline"]
        );
        assert_eq!(
            r["environ"].trim_end(),
            format!("{HOOK_PATH_ENV} HOOK_KIND={kind}"),
            "{kind}"
        );
        // Where it ran.
        let (in_container, root, exe, cwd) = match kind {
            "createContainer" => (true, "host", host_sh.as_str(), bundle),
            "startContainer" => (true, "container", "/bin/busybox", "/"),
            _ => (false, "host", host_sh.as_str(), bundle),
        };
        for n in ["mnt", "uts", "pid", "net"] {
            let want = if in_container {
                cr[&format!("init_{n}")].clone()
            } else {
                own_ns(n)
            };
            assert_eq!(r[n], want, "{kind}: {n} namespace");
        }
        let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        let want_name = if in_container {
            "hooked"
        } else {
            host_name.trim()
        };
        assert_eq!(r["hostname"], want_name, "{kind}: host name");
        assert_eq!(r["root"], root, "{kind}: root directory");
        assert_eq!(r["exe"], exe, "{kind}: which /bin/sh ran");
        assert_eq!(r["cwd"], cwd, "{kind}: working directory");
    }
}

fn failing_create_runtime_hook_fails_run_and_leaves_nothing(cd: &Containerd) {
    let id = unique_id("hookfail");
    let h = Hooked::new(&id);
    let host = h.host_dir();
    let hooks = json!({
        "createRuntime": [
            h.recording_hook("createRuntime", &host),
            Hooked::script_hook("echo boom-out; echo boom-err >&2; exit 3", 10)
        ],
        "createContainer": [h.recording_hook("createContainer", &host)],
        "poststop": [h.recording_hook("poststop", &host)]
    });
    let spec = h.spec(cd, &id, hooks, &["echo", "should-not-run"]);
    let t = Instant::now();
    let o = ctr_run(cd, &spec, &id);
    assert!(!o.status.success(), "ctr run succeeded: {}", stdout(&o));
    assert!(!stdout(&o).contains("should-not-run"));
    let err = stderr(&o);
    for needle in [
        "createRuntime hook hooks.createRuntime[1] (/bin/sh) exited with status 3",
        "its stdout: boom-out",
        "its stderr: boom-err",
    ] {
        assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    }
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    // The hooks before it ran, the later Create hooks did not, poststop did (runtime spec:
    // a failed Create continues with the teardown and the poststop hooks).
    assert_eq!(h.order(), ["createRuntime", "poststop"]);
    assert!(!h.ran("createContainer"));
    assert_eq!(state_of(&h.record("poststop"))["status"], "stopped");
    cd.remove_container(&id);
    assert_clean(&id);
}

fn hook_past_its_timeout_is_killed_and_fails_create(cd: &Containerd) {
    let id = unique_id("hooktmo");
    let h = Hooked::new(&id);
    // The hook's child carries the container id in its command line, so a survivor shows up
    // in the leak check.
    let sleeper = h.path().join(format!("sleep-{id}"));
    std::os::unix::fs::symlink("/bin/sleep", &sleeper).unwrap();
    let script = format!("echo waiting; {} 60", sleeper.display());
    let hooks = json!({"prestart": [Hooked::script_hook(&script, 1)]});
    let spec = h.spec(cd, &id, hooks, &["echo", "should-not-run"]);
    let t = Instant::now();
    let o = ctr_run(cd, &spec, &id);
    let took = t.elapsed();
    assert!(!o.status.success(), "ctr run succeeded: {}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains(
            "prestart hook hooks.prestart[0] (/bin/sh) did not finish within its timeout of 1 s"
        ) && err.contains("its stdout: waiting"),
        "stderr: {err}"
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
    cd.remove_container(&id);
    assert_clean(&id);
}

fn failing_start_container_hook_fails_start(cd: &Containerd) {
    let id = unique_id("hookstart");
    let h = Hooked::new(&id);
    let host = h.host_dir();
    let hooks = json!({
        "startContainer": [{
            "path": "/bin/sh",
            "args": ["sh", "-c", "echo no-start-today >&2; exit 9"],
            "env": [HOOK_PATH_ENV]
        }],
        "poststart": [h.recording_hook("poststart", &host)],
        "poststop": [h.recording_hook("poststop", &host)]
    });
    let spec = h.spec(
        cd,
        &id,
        hooks,
        &["sh", "-c", "echo process >> /hooklog/order"],
    );
    let o = ctr_run(cd, &spec, &id);
    assert!(!o.status.success(), "ctr run succeeded: {}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("startContainer hook hooks.startContainer[0] (/bin/sh) exited with status 9")
            && err.contains("its stderr: no-start-today"),
        "stderr: {err}"
    );
    // ctr deletes the task after the failed start: the process never ran, poststart did not
    // run, poststop did.
    cd.remove_container(&id);
    assert_clean(&id);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !h.ran("poststop") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(h.order(), ["poststop"]);
}
