//! The shim's task API called directly, the way containerd calls it: `containerd-shim-lxcri-v2
//! ... start` in the bundle, then Create, Start, State, Kill, Wait, Delete, Shutdown over ttrpc.
//! This shows what `ctr` cannot: the state between Create and Start. A real containerd receives
//! the shim's events.

use containerd_shim_protos::api::Empty;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::MessageField;
use containerd_shim_protos::shim::shim as api;
use containerd_shim_protos::shim::shim_ttrpc::TaskClient;
use containerd_shim_protos::types::task::Status;
use integration::{
    assert_clean, require_root_or_skip, shim_dir, unique_id, Containerd, ContainerdVersion,
};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const NS: &str = "lxcri-api";

fn ctx() -> ttrpc::context::Context {
    ttrpc::context::with_timeout(Duration::from_secs(30).as_nanos() as i64)
}

/// A bundle as containerd lays it out: config.json and the rootfs directory beside it.
fn bundle(dir: &Path, args: &[&str]) -> PathBuf {
    let b = dir.join("bundle");
    image_core::builder::busybox_rootfs(&b.join("rootfs")).unwrap();
    let spec = json!({
        "ociVersion": "1.1.0",
        "process": {
            "args": args, "cwd": "/", "user": {"uid": 0, "gid": 0},
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs"},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}],
            "cgroupsPath": format!("/{NS}/{}", dir.file_name().unwrap().to_string_lossy())
        }
    });
    std::fs::write(b.join("config.json"), serde_json::to_vec(&spec).unwrap()).unwrap();
    b
}

/// A new container id, and its bundle running `args` in a directory of its own under /tmp.
fn new_bundle(prefix: &str, args: &[&str]) -> (String, tempfile::TempDir, PathBuf) {
    let id = unique_id(prefix);
    let dir = tempfile::Builder::new()
        .prefix(&id)
        .tempdir_in("/tmp")
        .unwrap();
    let b = bundle(dir.path(), args);
    (id, dir, b)
}

/// Starts the shim as containerd does (`start` in the bundle) and connects to it.
struct Shim {
    client: TaskClient,
    address: String,
}

impl Shim {
    fn spawn(cd: &Containerd, id: &str, bundle: &Path) -> Shim {
        // containerd makes the shim's log FIFO in the bundle and reads it.
        let log = bundle.join("log");
        let st = Command::new("mkfifo").arg(&log).status().unwrap();
        assert!(st.success());
        std::thread::spawn(move || {
            use std::io::Read;
            let mut f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&log)
                .unwrap();
            let mut buf = [0u8; 4096];
            while let Ok(n) = f.read(&mut buf) {
                if n == 0 {
                    break;
                }
                eprint!("[shim log] {}", String::from_utf8_lossy(&buf[..n]));
            }
        });
        let out = Command::new(shim_dir().join("containerd-shim-lxcri-v2"))
            .args(["-namespace", NS, "-address"])
            .arg(cd.socket())
            .args(["-publish-binary"])
            .arg(cd.version().containerd_bin())
            .args(["-id", id, "start"])
            .current_dir(bundle)
            .env("TTRPC_ADDRESS", format!("{}.ttrpc", cd.socket().display()))
            .output()
            .unwrap();
        let address = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            out.status.success() && address.starts_with("unix://"),
            "shim start: {address:?} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // containerd reads the address back from the bundle after a restart.
        assert_eq!(
            std::fs::read_to_string(bundle.join("address"))
                .unwrap()
                .trim(),
            address
        );
        let client = ttrpc::Client::connect(&address).expect("connect to the shim");
        Shim {
            client: TaskClient::new(client),
            address,
        }
    }
}

/// `fn name(&self, id) -> ttrpc::Result<Response>` for the task API calls that take only the
/// container's id, as containerd sends them.
macro_rules! calls_by_id {
    ($($name:ident($request:ident) -> $response:ty;)*) => {
        $(
            fn $name(&self, id: &str) -> ttrpc::Result<$response> {
                let req = api::$request {
                    id: id.into(),
                    ..Default::default()
                };
                self.client.$name(ctx(), &req)
            }
        )*
    };
}

/// The task API calls the tests make, as containerd sends them.
impl Shim {
    calls_by_id! {
        start(StartRequest) -> api::StartResponse;
        state(StateRequest) -> api::StateResponse;
        connect(ConnectRequest) -> api::ConnectResponse;
        wait(WaitRequest) -> api::WaitResponse;
        delete(DeleteRequest) -> api::DeleteResponse;
        stats(StatsRequest) -> api::StatsResponse;
        pause(PauseRequest) -> Empty;
        resume(ResumeRequest) -> Empty;
    }

    fn create(&self, req: &api::CreateTaskRequest) -> ttrpc::Result<api::CreateTaskResponse> {
        self.client.create(ctx(), req)
    }

    fn kill(&self, id: &str, signal: u32) -> ttrpc::Result<Empty> {
        let req = api::KillRequest {
            id: id.into(),
            signal,
            ..Default::default()
        };
        self.client.kill(ctx(), &req)
    }

    /// Update with `resources` as containerd sends them: the spec's LinuxResources in an Any.
    fn update(&self, id: &str, resources: Any) -> ttrpc::Result<Empty> {
        let req = api::UpdateTaskRequest {
            id: id.into(),
            resources: MessageField::some(resources),
            ..Default::default()
        };
        self.client.update(ctx(), &req)
    }
}

impl Drop for Shim {
    fn drop(&mut self) {
        let _ = self
            .client
            .shutdown(ctx(), &api::ShutdownRequest::default());
        let path = self.address.trim_start_matches("unix://").to_string();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Path::new(&path).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn create_req(id: &str, bundle: &Path) -> api::CreateTaskRequest {
    api::CreateTaskRequest {
        id: id.into(),
        bundle: bundle.display().to_string(),
        ..Default::default()
    }
}

fn ns(pid: u32, kind: &str) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap()
}

#[test]
fn create_gives_a_live_init_and_runs_nothing_until_start() {
    if !require_root_or_skip() {
        return;
    }
    let cd = Containerd::start(ContainerdVersion::V1_6);
    let (id, _dir, b) = new_bundle("api", &["sh", "-c", "echo ran > /marker; exec sleep 300"]);
    let shim = Shim::spawn(&cd, &id, &b);

    // Runtime options containerd sends for a runtime not named runc are accepted.
    let mut req = create_req(&id, &b);
    req.options = MessageField::some(Any {
        type_url: "containerd.runc.v1.Options".into(),
        value: vec![0x32, 4, b'r', b'u', b'n', b'c'],
        ..Default::default()
    });
    let created = shim.create(&req).expect("Create");
    let pid = created.pid;
    assert!(pid > 1);
    // A live process, inside the container's own namespaces...
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    for kind in ["pid", "net", "mnt", "uts", "ipc"] {
        assert_ne!(
            ns(pid, kind),
            std::fs::read_link(format!("/proc/self/ns/{kind}")).unwrap(),
            "{kind} namespace is the host's"
        );
    }
    // ...which is still our init: the user's command has not run.
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(cmdline.starts_with("/.lxcri/init"), "{cmdline:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !b.join("rootfs/marker").exists(),
        "the user's process ran before Start"
    );
    let st = shim.state(&id).unwrap();
    assert_eq!(st.status.enum_value(), Ok(Status::CREATED));
    assert_eq!(st.pid, pid);
    let connect = shim.connect(&id).unwrap();
    assert_eq!(connect.task_pid, pid);
    assert!(connect.shim_pid > 0);

    // Start: the same pid becomes the user's process.
    let started = shim.start(&id).expect("Start");
    assert_eq!(started.pid, pid);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !b.join("rootfs/marker").exists() {
        assert!(
            Instant::now() < deadline,
            "the user's process did not run after Start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // The same pid becomes `sleep` once sh has exec'd it (just after writing the marker).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
        if cmdline.starts_with("sleep") {
            break;
        }
        assert!(Instant::now() < deadline, "{cmdline:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    let st = shim.state(&id).unwrap();
    assert_eq!(st.status.enum_value(), Ok(Status::RUNNING));

    // A second Start, and Delete while running, are refused.
    assert!(shim.start(&id).is_err());
    assert!(shim.delete(&id).is_err());

    shim.kill(&id, 9).expect("Kill");
    let waited = shim.wait(&id).expect("Wait");
    assert_eq!(waited.exit_status, 137);
    assert!(waited.exited_at.is_some());
    let st = shim.state(&id).unwrap();
    assert_eq!(st.status.enum_value(), Ok(Status::STOPPED));
    assert_eq!(st.exit_status, 137);
    // Kill of an exited process: NOT_FOUND, as containerd expects.
    let err = shim.kill(&id, 9).unwrap_err();
    assert!(format!("{err:?}").contains("NOT_FOUND"), "{err:?}");
    let deleted = shim.delete(&id).expect("Delete");
    assert_eq!(deleted.exit_status, 137);
    assert_eq!(deleted.pid, pid);
    drop(shim);
    assert_clean(&id);
}

#[test]
fn create_then_delete_without_start_and_bad_ids() {
    if !require_root_or_skip() {
        return;
    }
    let cd = Containerd::start(ContainerdVersion::V1_6);
    let (id, _dir, b) = new_bundle("apid", &["sh", "-c", "echo ran > /marker"]);
    let shim = Shim::spawn(&cd, &id, &b);

    // Container ids that would name other directories are refused before anything is made.
    for bad in ["../escape", "a/b", ".."] {
        let err = shim.create(&create_req(bad, &b)).unwrap_err();
        let text = format!("{err:?}");
        assert!(
            text.contains("INVALID_ARGUMENT") && text.contains("is not valid"),
            "{bad}: {text}"
        );
    }
    assert!(!Path::new(&format!("/run/lxcri/{NS}/escape")).exists());

    // Created, never started, then deleted: the init is killed and nothing ran or remains.
    let created = shim.create(&create_req(&id, &b)).expect("Create");
    let deleted = shim.delete(&id).expect("Delete of a created task");
    assert_eq!(deleted.pid, created.pid);
    assert!(!b.join("rootfs/marker").exists());
    assert!(
        !Path::new(&format!("/proc/{}", created.pid)).exists()
            || std::fs::read_to_string(format!("/proc/{}/stat", created.pid))
                .map(|s| s.contains(") Z"))
                .unwrap_or(true)
    );
    // Not found after delete.
    let err = shim.state(&id).unwrap_err();
    assert!(format!("{err:?}").contains("NOT_FOUND"), "{err:?}");
    drop(shim);
    assert_clean(&id);
}

#[test]
fn update_stats_and_pause_over_the_task_api() {
    if !require_root_or_skip() {
        return;
    }
    let cd = Containerd::start(ContainerdVersion::V1_6);
    let (id, dir, b) = new_bundle("apiu", &["sleep", "300"]);
    let cgroup = format!("{NS}/{}", dir.path().file_name().unwrap().to_string_lossy());
    let shim = Shim::spawn(&cd, &id, &b);
    shim.create(&create_req(&id, &b)).expect("Create");
    shim.start(&id).expect("Start");

    // Update, as containerd sends it: the spec's LinuxResources as JSON in an Any.
    let resources = json!({"memory": {"limit": 33554432}, "cpu": {"quota": 20000, "period": 100000}, "pids": {"limit": 40}});
    let any = Any {
        type_url: "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources".into(),
        value: serde_json::to_vec(&resources).unwrap(),
        ..Default::default()
    };
    shim.update(&id, any).expect("Update");
    let read = |ctl: &str, file: &str| {
        let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let p = if v2 {
            format!("/sys/fs/cgroup/{cgroup}/{file}")
        } else {
            format!("/sys/fs/cgroup/{ctl}/{cgroup}/{file}")
        };
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .trim()
            .to_string()
    };
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        assert_eq!(read("", "memory.max"), "33554432");
        assert_eq!(read("", "cpu.max"), "20000 100000");
    } else {
        assert_eq!(read("memory", "memory.limit_in_bytes"), "33554432");
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "20000");
    }
    assert_eq!(read("pids", "pids.max"), "40");
    // Resources that cannot change on a running container are refused, naming them (device
    // rules are not: CRI resends them with every update; the CRI test covers that).
    let bad = Any {
        value: serde_json::to_vec(&json!({"network": {"classID": 1}})).unwrap(),
        ..Default::default()
    };
    let err = shim.update(&id, bad).unwrap_err();
    assert!(
        format!("{err:?}").contains("network and RDMA limits cannot be updated"),
        "{err:?}"
    );

    // Stats: containerd's cgroup metrics type, with the new limit in it.
    let stats = shim.stats(&id).expect("Stats");
    let any = stats.stats.into_option().expect("stats present");
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        assert_eq!(any.type_url, "io.containerd.cgroups.v2.Metrics");
    } else {
        assert_eq!(any.type_url, "io.containerd.cgroups.v1.Metrics");
        use containerd_shim_protos::protobuf::Message;
        let m = containerd_shim_protos::cgroups::metrics::Metrics::parse_from_bytes(&any.value)
            .unwrap();
        assert_eq!(m.memory.usage.limit, 33554432);
        assert!(m.memory.usage.usage > 0);
        assert_eq!(m.pids.limit, 40);
        assert!(m.pids.current >= 1);
    }

    // Pause: State says PAUSED; Resume: RUNNING again.
    shim.pause(&id).expect("Pause");
    let st = shim.state(&id).unwrap();
    assert_eq!(st.status.enum_value(), Ok(Status::PAUSED));
    shim.resume(&id).expect("Resume");
    let st = shim.state(&id).unwrap();
    assert_eq!(st.status.enum_value(), Ok(Status::RUNNING));

    shim.kill(&id, 9).expect("Kill");
    shim.wait(&id).expect("Wait");
    shim.delete(&id).expect("Delete");
    drop(shim);
    assert_clean(&id);
}
