//! The containerd Task service (task.v2 over ttrpc). One shim serves any number of containers
//! (a pod's, later), keyed by container id, each with its exec processes keyed by exec id.
//! Blocking work (mounts, FIFOs, processes) runs on tokio's blocking pool; liblxc runs only in
//! the helper processes (`lxcri-monitor`).

use crate::config::Config;
use crate::console::Console;
use crate::container::{self, CreateRequest, Paths};
use crate::error::Error;
use crate::exits::{wait_exit, Exits};
use crate::{options, process};
use async_trait::async_trait;
use containerd_shim::asynchronous::publisher::RemotePublisher;
use containerd_shim::asynchronous::ExitSignal;
use containerd_shim::util::convert_to_timestamp;
use containerd_shim::{api, Task, TtrpcContext};
use containerd_shim_protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::{Message, MessageDyn, MessageField};
use containerd_shim_protos::shim::oci::ProcessDetails;
use containerd_shim_protos::ttrpc;
use containerd_shim_protos::types::task::ProcessInfo;
use layerfs::{MountSpec, PreparedRootfs};
use log::{debug, info, warn};
use std::collections::HashMap;
use std::sync::Arc;
use time::OffsetDateTime;
use tokio::sync::{watch, Mutex};

type TtrpcResult<T> = Result<T, ttrpc::Error>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Created,
    Running,
    Paused,
    Stopped,
}

#[derive(Debug, Clone, Copy)]
struct Exited {
    status: u32,
    at: OffsetDateTime,
}

/// containerd's stdio paths of a process.
#[derive(Debug, Clone, Default)]
struct Stdio {
    stdin: String,
    stdout: String,
    stderr: String,
    terminal: bool,
}

/// What init and exec processes share: state, pid, exit.
struct Proc {
    pid: i32,
    state: State,
    exited: Option<Exited>,
    exit_rx: watch::Receiver<Option<Exited>>,
    stdio: Stdio,
    /// The process's terminal, when it has one.
    console: Option<Console>,
}

impl Proc {
    fn new(pid: i32, stdio: Stdio) -> (Proc, watch::Sender<Option<Exited>>) {
        let (tx, rx) = watch::channel(None);
        (
            Proc {
                pid,
                state: State::Created,
                exited: None,
                exit_rx: rx,
                stdio,
                console: None,
            },
            tx,
        )
    }
}

struct Exec {
    proc: Proc,
    tx: Option<watch::Sender<Option<Exited>>>,
    spec: lxcri_init::InitConfig,
}

struct Container {
    cfg: Config,
    paths: Paths,
    monitor_pid: i32,
    rootfs: Option<PreparedRootfs>,
    init: Proc,
    execs: HashMap<String, Exec>,
}

impl Container {
    /// The process an exec id names ("" is the init).
    fn process(&self, id: &str, exec_id: &str) -> Result<&Proc, ttrpc::Error> {
        if exec_id.is_empty() {
            return Ok(&self.init);
        }
        self.execs
            .get(exec_id)
            .map(|e| &e.proc)
            .ok_or_else(|| exec_not_found(id, exec_id))
    }

    /// The process an exec id names, if it (still) exists.
    fn process_mut(&mut self, exec_id: &str) -> Option<&mut Proc> {
        if exec_id.is_empty() {
            Some(&mut self.init)
        } else {
            self.execs.get_mut(exec_id).map(|e| &mut e.proc)
        }
    }
}

pub struct Service {
    namespace: String,
    /// containerd's socket, for questions the task API does not answer (image identity).
    containerd_address: String,
    publisher: Arc<RemotePublisher>,
    exit: Arc<ExitSignal>,
    exits: Exits,
    containers: Arc<Mutex<HashMap<String, Container>>>,
}

fn ts(t: OffsetDateTime) -> MessageField<Timestamp> {
    MessageField::some(convert_to_timestamp(Some(t)))
}

fn not_found(id: &str) -> ttrpc::Error {
    Error::NotFound(format!("container {id} not found in this shim")).into()
}

fn exec_not_found(id: &str, exec_id: &str) -> ttrpc::Error {
    Error::NotFound(format!(
        "exec process {exec_id} not found in container {id}"
    ))
    .into()
}

/// containerd's `ProcessDetails` for an exec's process, as an `Any`.
fn process_details(exec_id: &str) -> Option<Any> {
    let details = ProcessDetails {
        exec_id: exec_id.to_string(),
        ..Default::default()
    };
    Some(Any {
        type_url: "containerd.runc.v1.ProcessDetails".to_string(),
        value: details.write_to_bytes().ok()?,
        ..Default::default()
    })
}

fn status_of(s: State) -> api::Status {
    match s {
        State::Created => api::Status::CREATED,
        State::Running => api::Status::RUNNING,
        State::Paused => api::Status::PAUSED,
        State::Stopped => api::Status::STOPPED,
    }
}

async fn wait_for(rx: &mut watch::Receiver<Option<Exited>>) -> Option<Exited> {
    loop {
        if let Some(e) = *rx.borrow_and_update() {
            return Some(e);
        }
        if rx.changed().await.is_err() {
            return *rx.borrow();
        }
    }
}

impl Service {
    pub async fn new(
        namespace: &str,
        containerd_address: &str,
        publisher: RemotePublisher,
        exit: Arc<ExitSignal>,
    ) -> Service {
        Service {
            namespace: namespace.to_string(),
            containerd_address: containerd_address.to_string(),
            publisher: Arc::new(publisher),
            exit,
            exits: Exits::start().await,
            containers: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    async fn publish(
        publisher: &RemotePublisher,
        namespace: &str,
        topic: &str,
        event: Box<dyn MessageDyn>,
    ) {
        let ctx = ttrpc::context::with_timeout(0);
        if let Err(e) = publisher.publish(ctx, topic, namespace, event).await {
            warn!("publishing {topic}: {e}");
        }
    }

    /// Watches a helper process (a container's monitor, or an exec's helper: both exit with
    /// their process's exact status) and records the exit of the process it stands for.
    fn watch_exit(
        &self,
        id: String,
        exec_id: String,
        helper_pid: i32,
        tx: watch::Sender<Option<Exited>>,
    ) {
        let mut rx = self.exits.watch(helper_pid);
        let containers = self.containers.clone();
        let publisher = self.publisher.clone();
        let namespace = self.namespace.clone();
        tokio::spawn(async move {
            let code = wait_exit(&mut rx).await;
            // With a terminal, the output the process wrote before it ended is still in the
            // pty: publish the exit once it is copied out (bounded: a background process may
            // keep the terminal open).
            let drained = containers
                .lock()
                .await
                .get_mut(&id)
                .and_then(|c| c.process_mut(&exec_id))
                .and_then(|p| p.console.as_ref().map(|c| c.drained()));
            if let Some(mut drained) = drained {
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(2),
                    drained.wait_for(|done| *done),
                )
                .await;
            }
            let exited = Exited {
                status: code as u32,
                at: OffsetDateTime::now_utc(),
            };
            // The lock orders this after a Start in progress: /tasks/exit never precedes
            // /tasks/start (or /tasks/exec-started).
            let mut map = containers.lock().await;
            let Some(c) = map.get_mut(&id) else { return };
            let Some(proc) = c.process_mut(&exec_id) else {
                return;
            };
            proc.state = State::Stopped;
            proc.exited = Some(exited);
            let pid = proc.pid;
            if exec_id.is_empty() {
                info!("container {id} exited with status {code}");
            } else {
                info!("exec {exec_id} in {id} exited with status {code}");
                container::remove_exec_files(&c.paths, &exec_id);
            }
            let ev = TaskExit {
                container_id: id.clone(),
                id: if exec_id.is_empty() {
                    id.clone()
                } else {
                    exec_id.clone()
                },
                pid: pid as u32,
                exit_status: exited.status,
                exited_at: ts(exited.at),
                ..Default::default()
            };
            let _ = tx.send(Some(exited));
            drop(map);
            Self::publish(&publisher, &namespace, "/tasks/exit", Box::new(ev)).await;
        });
    }

    /// Pause (freeze) or resume (thaw) every process of a container through its cgroup.
    async fn freeze(&self, id: &str, frozen: bool) -> TtrpcResult<api::Empty> {
        let mut map = self.containers.lock().await;
        let c = map.get_mut(id).ok_or_else(|| not_found(id))?;
        let (from, to) = if frozen {
            (State::Running, State::Paused)
        } else {
            (State::Paused, State::Running)
        };
        if c.init.state != from {
            return Err(Error::FailedPrecondition(format!(
                "container {id} is {:?}: only a {from:?} container can be {}",
                c.init.state,
                if frozen { "paused" } else { "resumed" }
            ))
            .into());
        }
        let pid = c.init.pid;
        tokio::task::spawn_blocking(move || crate::host::set_frozen(pid, frozen))
            .await
            .map_err(|e| Error::Internal(format!("freeze panicked: {e}")))?
            .map_err(|e| Error::Internal(format!("container {id}: {e}")))?;
        c.init.state = to;
        drop(map);
        if frozen {
            let ev = TaskPaused {
                container_id: id.to_string(),
                ..Default::default()
            };
            Self::publish(
                &self.publisher,
                &self.namespace,
                "/tasks/paused",
                Box::new(ev),
            )
            .await;
        } else {
            let ev = TaskResumed {
                container_id: id.to_string(),
                ..Default::default()
            };
            Self::publish(
                &self.publisher,
                &self.namespace,
                "/tasks/resumed",
                Box::new(ev),
            )
            .await;
        }
        info!("{} {id}", if frozen { "paused" } else { "resumed" });
        Ok(api::Empty::new())
    }

    /// Publishes `/tasks/oom` for every OOM kill in the container's memory cgroup.
    fn watch_oom(&self, id: String, pid: i32) {
        let mut watcher = match crate::oom::OomWatcher::new(pid) {
            Ok(w) => w,
            Err(e) => {
                warn!("container {id}: OOM kills will not be reported: {e}");
                return;
            }
        };
        let publisher = self.publisher.clone();
        let namespace = self.namespace.clone();
        tokio::spawn(async move {
            while watcher.next().await.is_some() {
                info!("container {id}: OOM kill");
                let ev = TaskOOM {
                    container_id: id.clone(),
                    ..Default::default()
                };
                Self::publish(&publisher, &namespace, "/tasks/oom", Box::new(ev)).await;
            }
        });
    }

    async fn start_exec(&self, id: &str, exec_id: &str) -> TtrpcResult<api::StartResponse> {
        let mut map = self.containers.lock().await;
        let c = map.get_mut(id).ok_or_else(|| not_found(id))?;
        if c.init.state != State::Running {
            return Err(Error::FailedPrecondition(format!(
                "container {id} is not running: cannot start exec {exec_id} in it"
            ))
            .into());
        }
        let e = c
            .execs
            .get_mut(exec_id)
            .ok_or_else(|| exec_not_found(id, exec_id))?;
        if e.proc.state != State::Created {
            return Err(Error::FailedPrecondition(format!(
                "exec {exec_id} in {id} was already started"
            ))
            .into());
        }
        let init_pid = Some(c.init.pid);
        let e = c
            .execs
            .get_mut(exec_id)
            .ok_or_else(|| exec_not_found(id, exec_id))?;
        let (spec, stdio) = (e.spec.clone(), e.proc.stdio.clone());
        let (cfg, paths) = (c.cfg.clone(), c.paths.clone());
        let (cid, eid) = (id.to_string(), exec_id.to_string());
        let (helper, pid, console) = tokio::task::spawn_blocking(move || {
            container::start_exec(
                &cfg,
                &paths,
                &cid,
                &eid,
                &spec,
                (&stdio.stdin, &stdio.stdout, &stdio.stderr),
                init_pid,
            )
        })
        .await
        .map_err(|e| Error::Internal(format!("exec start panicked: {e}")))??;
        let e = c
            .execs
            .get_mut(exec_id)
            .ok_or_else(|| exec_not_found(id, exec_id))?;
        e.proc.pid = pid;
        e.proc.state = State::Running;
        e.proc.console = console;
        if let Some(tx) = e.tx.take() {
            self.watch_exit(id.to_string(), exec_id.to_string(), helper, tx);
        }
        let ev = TaskExecStarted {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
            pid: pid as u32,
            ..Default::default()
        };
        Self::publish(
            &self.publisher,
            &self.namespace,
            "/tasks/exec-started",
            Box::new(ev),
        )
        .await;
        info!("started exec {exec_id} in {id} with pid {pid}");
        Ok(api::StartResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }
}

#[async_trait]
impl Task for Service {
    async fn create(
        &self,
        _ctx: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        info!("create {} (bundle {})", req.id, req.bundle);
        let opts = req
            .options
            .as_ref()
            .map(|any| options::decode(&any.type_url, &any.value))
            .unwrap_or_default();
        for what in &opts.ignored {
            debug!("runtime options: ignoring {what}");
        }
        let cfg = Config::load(opts.config_path.as_deref())
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        if self.containers.lock().await.contains_key(&req.id) {
            return Err(
                Error::AlreadyExists(format!("container {} already exists", req.id)).into(),
            );
        }
        let creq = CreateRequest {
            id: req.id.clone(),
            namespace: self.namespace.clone(),
            bundle: req.bundle.clone().into(),
            mounts: req
                .rootfs
                .iter()
                .map(|m| MountSpec {
                    kind: m.type_.clone(),
                    source: m.source.clone(),
                    options: m.options.clone(),
                })
                .collect(),
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
            containerd_address: Some(self.containerd_address.clone()),
        };
        let cfg2 = cfg.clone();
        let c = tokio::task::spawn_blocking(move || {
            let provider = crate::rootfs::provider(&cfg2)?;
            container::create(&cfg2, &creq, provider.as_ref())
        })
        .await
        .map_err(|e| Error::Internal(format!("create task panicked: {e}")))?;
        let c = match c {
            Ok(c) => c,
            Err(e) => {
                warn!("create {}: {e}", req.id);
                return Err(e.into());
            }
        };
        let pid = c.init_pid;
        let stdio = Stdio {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let (mut init, tx) = Proc::new(pid, stdio);
        init.console = c.console;
        self.containers.lock().await.insert(
            req.id.clone(),
            Container {
                cfg,
                paths: c.paths,
                monitor_pid: c.monitor_pid,
                rootfs: c.rootfs,
                init,
                execs: HashMap::new(),
            },
        );
        self.watch_exit(req.id.clone(), String::new(), c.monitor_pid, tx);
        self.watch_oom(req.id.clone(), pid);
        let ev = TaskCreate {
            container_id: req.id.clone(),
            bundle: req.bundle.clone(),
            rootfs: req.rootfs.clone(),
            io: MessageField::some(TaskIO {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
                ..Default::default()
            }),
            checkpoint: req.checkpoint.clone(),
            pid: pid as u32,
            ..Default::default()
        };
        Self::publish(
            &self.publisher,
            &self.namespace,
            "/tasks/create",
            Box::new(ev),
        )
        .await;
        info!("created {} with init pid {pid}", req.id);
        Ok(api::CreateTaskResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    async fn start(
        &self,
        _ctx: &TtrpcContext,
        req: api::StartRequest,
    ) -> TtrpcResult<api::StartResponse> {
        if !req.exec_id.is_empty() {
            return self.start_exec(&req.id, &req.exec_id).await;
        }
        let mut map = self.containers.lock().await;
        let c = map.get_mut(&req.id).ok_or_else(|| not_found(&req.id))?;
        if c.init.state != State::Created {
            return Err(Error::FailedPrecondition(format!(
                "container {} is {:?}, not created: it cannot be started",
                req.id, c.init.state
            ))
            .into());
        }
        let (paths, init_pid) = (c.paths.clone(), c.init.pid);
        let id = req.id.clone();
        tokio::task::spawn_blocking(move || container::start(&paths, &id, init_pid))
            .await
            .map_err(|e| Error::Internal(format!("start panicked: {e}")))??;
        c.init.state = State::Running;
        let pid = c.init.pid;
        // Published under the lock: the exit watcher waits for it.
        let ev = TaskStart {
            container_id: req.id.clone(),
            pid: pid as u32,
            ..Default::default()
        };
        Self::publish(
            &self.publisher,
            &self.namespace,
            "/tasks/start",
            Box::new(ev),
        )
        .await;
        info!("started {}", req.id);
        Ok(api::StartResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    async fn state(
        &self,
        _ctx: &TtrpcContext,
        req: api::StateRequest,
    ) -> TtrpcResult<api::StateResponse> {
        let map = self.containers.lock().await;
        let c = map.get(&req.id).ok_or_else(|| not_found(&req.id))?;
        let p = c.process(&req.id, &req.exec_id)?;
        let mut resp = api::StateResponse {
            id: if req.exec_id.is_empty() {
                req.id.clone()
            } else {
                req.exec_id.clone()
            },
            bundle: c.paths.bundle.display().to_string(),
            pid: p.pid as u32,
            status: status_of(p.state).into(),
            stdin: p.stdio.stdin.clone(),
            stdout: p.stdio.stdout.clone(),
            stderr: p.stdio.stderr.clone(),
            terminal: p.stdio.terminal,
            exec_id: req.exec_id.clone(),
            ..Default::default()
        };
        if let Some(e) = p.exited {
            resp.exit_status = e.status;
            resp.exited_at = ts(e.at);
        }
        Ok(resp)
    }

    async fn kill(&self, _ctx: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<api::Empty> {
        let map = self.containers.lock().await;
        let c = map.get(&req.id).ok_or_else(|| not_found(&req.id))?;
        let p = c.process(&req.id, &req.exec_id)?;
        if p.state == State::Stopped {
            return Err(Error::NotFound(format!(
                "{} {}: process already finished",
                req.id, req.exec_id
            ))
            .into());
        }
        if p.state == State::Created && !req.exec_id.is_empty() {
            return Err(Error::FailedPrecondition(format!(
                "exec {} in {} is not started",
                req.exec_id, req.id
            ))
            .into());
        }
        info!(
            "kill {} {} signal {} all={}",
            req.id, req.exec_id, req.signal, req.all
        );
        container::signal(p.pid, req.signal as i32, req.all && req.exec_id.is_empty())?;
        Ok(api::Empty::new())
    }

    async fn wait(
        &self,
        _ctx: &TtrpcContext,
        req: api::WaitRequest,
    ) -> TtrpcResult<api::WaitResponse> {
        let mut rx = {
            let map = self.containers.lock().await;
            let c = map.get(&req.id).ok_or_else(|| not_found(&req.id))?;
            c.process(&req.id, &req.exec_id)?.exit_rx.clone()
        };
        let exited = wait_for(&mut rx).await.ok_or_else(|| {
            Error::Internal(format!(
                "{} {}: lost track of its exit",
                req.id, req.exec_id
            ))
        })?;
        Ok(api::WaitResponse {
            exit_status: exited.status,
            exited_at: ts(exited.at),
            ..Default::default()
        })
    }

    async fn exec(
        &self,
        _ctx: &TtrpcContext,
        req: api::ExecProcessRequest,
    ) -> TtrpcResult<api::Empty> {
        let mut map = self.containers.lock().await;
        let c = map.get_mut(&req.id).ok_or_else(|| not_found(&req.id))?;
        if c.init.state != State::Running {
            return Err(Error::FailedPrecondition(format!(
                "container {} is not running: cannot exec into it",
                req.id
            ))
            .into());
        }
        if c.execs.contains_key(&req.exec_id) {
            return Err(Error::AlreadyExists(format!(
                "exec {} already exists in container {}",
                req.exec_id, req.id
            ))
            .into());
        }
        let value = req
            .spec
            .as_ref()
            .map(|a| a.value.as_slice())
            .unwrap_or_default();
        let p: oci_spec::runtime::Process = serde_json::from_slice(value).map_err(|e| {
            Error::InvalidArgument(format!(
                "exec {}: the process spec is not valid: {e}",
                req.exec_id
            ))
        })?;
        let mut spec = process::from_process(&p)
            .map_err(|e| Error::InvalidArgument(format!("exec {}: {e}", req.exec_id)))?;
        // containerd's request decides, as for the init.
        spec.terminal = req.terminal;
        // An exec runs under the container's seccomp filter, as runc does.
        spec.seccomp = container::init_seccomp(&c.paths);
        let stdio = Stdio {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let (proc, tx) = Proc::new(0, stdio);
        c.execs.insert(
            req.exec_id.clone(),
            Exec {
                proc,
                tx: Some(tx),
                spec,
            },
        );
        drop(map);
        let ev = TaskExecAdded {
            container_id: req.id.clone(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        };
        Self::publish(
            &self.publisher,
            &self.namespace,
            "/tasks/exec-added",
            Box::new(ev),
        )
        .await;
        info!("exec {} added to {}", req.exec_id, req.id);
        Ok(api::Empty::new())
    }

    async fn delete(
        &self,
        _ctx: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> TtrpcResult<api::DeleteResponse> {
        if !req.exec_id.is_empty() {
            let mut map = self.containers.lock().await;
            let c = map.get_mut(&req.id).ok_or_else(|| not_found(&req.id))?;
            let e = c
                .execs
                .get(&req.exec_id)
                .ok_or_else(|| exec_not_found(&req.id, &req.exec_id))?;
            if e.proc.state == State::Running {
                return Err(Error::FailedPrecondition(format!(
                    "exec {} in {} is running: kill it first",
                    req.exec_id, req.id
                ))
                .into());
            }
            let e = c
                .execs
                .remove(&req.exec_id)
                .ok_or_else(|| exec_not_found(&req.id, &req.exec_id))?;
            container::remove_exec_files(&c.paths, &req.exec_id);
            let exited = e.proc.exited.unwrap_or(Exited {
                status: 0,
                at: OffsetDateTime::now_utc(),
            });
            return Ok(api::DeleteResponse {
                pid: e.proc.pid as u32,
                exit_status: exited.status,
                exited_at: ts(exited.at),
                ..Default::default()
            });
        }
        let (state, init_pid, mut rx) = {
            let map = self.containers.lock().await;
            let c = map.get(&req.id).ok_or_else(|| not_found(&req.id))?;
            (c.init.state, c.init.pid, c.init.exit_rx.clone())
        };
        match state {
            State::Running | State::Paused => {
                return Err(Error::FailedPrecondition(format!(
                    "container {} is running: stop it first (ctr task kill), then delete",
                    req.id
                ))
                .into())
            }
            State::Created => {
                // Never started: kill the waiting init and let LXC tear the container down.
                let _ = container::signal(init_pid, libc::SIGKILL, false);
                let _ = tokio::time::timeout(std::time::Duration::from_secs(5), wait_for(&mut rx))
                    .await;
            }
            State::Stopped => {}
        }
        let c = self
            .containers
            .lock()
            .await
            .remove(&req.id)
            .ok_or_else(|| not_found(&req.id))?;
        let exited = c
            .init
            .exited
            .or(*c.init.exit_rx.borrow())
            .unwrap_or(Exited {
                status: 137,
                at: OffsetDateTime::now_utc(),
            });
        let (paths, rootfs, monitor_pid) = (c.paths.clone(), c.rootfs.clone(), c.monitor_pid);
        let problems = tokio::task::spawn_blocking(move || {
            container::cleanup(&paths, init_pid, monitor_pid, rootfs.as_ref())
        })
        .await
        .unwrap_or_default();
        for p in &problems {
            warn!("delete {}: {p}", req.id);
        }
        let ev = TaskDelete {
            container_id: req.id.clone(),
            id: req.id.clone(),
            pid: init_pid as u32,
            exit_status: exited.status,
            exited_at: ts(exited.at),
            ..Default::default()
        };
        Self::publish(
            &self.publisher,
            &self.namespace,
            "/tasks/delete",
            Box::new(ev),
        )
        .await;
        info!("deleted {}", req.id);
        Ok(api::DeleteResponse {
            pid: init_pid as u32,
            exit_status: exited.status,
            exited_at: ts(exited.at),
            ..Default::default()
        })
    }

    async fn pids(
        &self,
        _ctx: &TtrpcContext,
        req: api::PidsRequest,
    ) -> TtrpcResult<api::PidsResponse> {
        let map = self.containers.lock().await;
        let c = map.get(&req.id).ok_or_else(|| not_found(&req.id))?;
        let pids = if c.init.state == State::Stopped {
            Vec::new()
        } else {
            crate::host::cgroup_pids(c.init.pid)
        };
        // An exec's process carries its exec id, the way runc's shim marks it (`ctr task ps`
        // shows it in its INFO column).
        let exec_of: HashMap<u32, &str> = c
            .execs
            .iter()
            .filter(|(_, e)| e.proc.state == State::Running && e.proc.pid > 0)
            .map(|(id, e)| (e.proc.pid as u32, id.as_str()))
            .collect();
        Ok(api::PidsResponse {
            processes: pids
                .into_iter()
                .map(|p| ProcessInfo {
                    pid: p as u32,
                    info: exec_of
                        .get(&(p as u32))
                        .and_then(|exec_id| process_details(exec_id))
                        .into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    }

    async fn close_io(
        &self,
        _ctx: &TtrpcContext,
        req: api::CloseIORequest,
    ) -> TtrpcResult<api::Empty> {
        // Without a terminal, stdin is containerd's FIFO itself, held by the process only: it
        // sees EOF when the client closes its end. With one, the shim stops copying input.
        let map = self.containers.lock().await;
        let c = map.get(&req.id).ok_or_else(|| not_found(&req.id))?;
        let p = c.process(&req.id, &req.exec_id)?;
        if req.stdin {
            if let Some(console) = &p.console {
                console.close_stdin();
            }
        }
        Ok(api::Empty::new())
    }

    async fn resize_pty(
        &self,
        _ctx: &TtrpcContext,
        req: api::ResizePtyRequest,
    ) -> TtrpcResult<api::Empty> {
        let map = self.containers.lock().await;
        let c = map.get(&req.id).ok_or_else(|| not_found(&req.id))?;
        let p = c.process(&req.id, &req.exec_id)?;
        let Some(console) = &p.console else {
            return Err(Error::FailedPrecondition(format!(
                "{} {}: the process has no terminal to resize (run it with -t)",
                req.id, req.exec_id
            ))
            .into());
        };
        console
            .resize(req.width, req.height)
            .map_err(|e| Error::Internal(format!("{} {}: {e}", req.id, req.exec_id)))?;
        Ok(api::Empty::new())
    }

    async fn connect(
        &self,
        _ctx: &TtrpcContext,
        req: api::ConnectRequest,
    ) -> TtrpcResult<api::ConnectResponse> {
        let map = self.containers.lock().await;
        let task_pid = map.get(&req.id).map(|c| c.init.pid as u32).unwrap_or(0);
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        })
    }

    async fn shutdown(
        &self,
        _ctx: &TtrpcContext,
        _req: api::ShutdownRequest,
    ) -> TtrpcResult<api::Empty> {
        if self.containers.lock().await.is_empty() {
            info!("shutdown: no container left, exiting");
            self.exit.signal();
        }
        Ok(api::Empty::new())
    }

    async fn stats(
        &self,
        _ctx: &TtrpcContext,
        req: api::StatsRequest,
    ) -> TtrpcResult<api::StatsResponse> {
        let pid = {
            let map = self.containers.lock().await;
            let c = map.get(&req.id).ok_or_else(|| not_found(&req.id))?;
            if c.init.state == State::Stopped {
                return Err(Error::FailedPrecondition(format!(
                    "container {} is stopped: it has no metrics",
                    req.id
                ))
                .into());
            }
            c.init.pid
        };
        let any = tokio::task::spawn_blocking(move || crate::cgroups::metrics(pid))
            .await
            .map_err(|e| Error::Internal(format!("stats panicked: {e}")))?
            .map_err(|e| Error::Internal(format!("container {}: metrics: {e}", req.id)))?;
        Ok(api::StatsResponse {
            stats: MessageField::some(any),
            ..Default::default()
        })
    }

    async fn update(
        &self,
        _ctx: &TtrpcContext,
        req: api::UpdateTaskRequest,
    ) -> TtrpcResult<api::Empty> {
        let pid = {
            let map = self.containers.lock().await;
            let c = map.get(&req.id).ok_or_else(|| not_found(&req.id))?;
            if c.init.state == State::Stopped {
                return Err(Error::FailedPrecondition(format!(
                    "container {} is stopped: nothing to update",
                    req.id
                ))
                .into());
            }
            c.init.pid
        };
        let value = req
            .resources
            .as_ref()
            .map(|a| a.value.clone())
            .unwrap_or_default();
        let resources: oci_spec::runtime::LinuxResources =
            serde_json::from_slice(&value).map_err(|e| {
                Error::InvalidArgument(format!(
                    "container {}: update: the resources are not valid: {e}",
                    req.id
                ))
            })?;
        let ignored = crate::cgroups::not_updated(&resources);
        if !ignored.is_empty() {
            warn!(
                "update {}: not applied (lxcri updates memory limit/reservation/swap, cpu shares/quota/period/cpuset and pids only): {}",
                req.id,
                ignored.join(", ")
            );
        }
        let id = req.id.clone();
        tokio::task::spawn_blocking(move || crate::cgroups::update(pid, &resources))
            .await
            .map_err(|e| Error::Internal(format!("update panicked: {e}")))?
            .map_err(|e| Error::InvalidArgument(format!("container {id}: update: {e}")))?;
        info!("updated the resources of {}", req.id);
        Ok(api::Empty::new())
    }

    async fn pause(&self, _ctx: &TtrpcContext, req: api::PauseRequest) -> TtrpcResult<api::Empty> {
        self.freeze(&req.id, true).await
    }

    async fn resume(
        &self,
        _ctx: &TtrpcContext,
        req: api::ResumeRequest,
    ) -> TtrpcResult<api::Empty> {
        self.freeze(&req.id, false).await
    }

    async fn checkpoint(
        &self,
        _ctx: &TtrpcContext,
        req: api::CheckpointTaskRequest,
    ) -> TtrpcResult<api::Empty> {
        Err(Error::Unimplemented(format!(
            "container {}: checkpoint is not supported by lxcri yet",
            req.id
        ))
        .into())
    }
}
