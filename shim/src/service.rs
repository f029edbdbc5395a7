//! The containerd Task service (task.v2 over ttrpc). One shim serves any number of containers
//! (a pod's, later), keyed by container id. Blocking work (mounts, FIFOs, processes) runs on
//! tokio's blocking pool; liblxc runs only in the monitor processes.

use crate::config::Config;
use crate::container::{self, CreateRequest, Paths};
use crate::error::Error;
use crate::exits::{wait_exit, Exits};
use crate::options;
use async_trait::async_trait;
use containerd_shim::asynchronous::publisher::RemotePublisher;
use containerd_shim::asynchronous::ExitSignal;
use containerd_shim::util::convert_to_timestamp;
use containerd_shim::{api, Task, TtrpcContext};
use containerd_shim_protos::events::task::{TaskCreate, TaskDelete, TaskExit, TaskIO, TaskStart};
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::{MessageDyn, MessageField};
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
    Stopped,
}

#[derive(Debug, Clone, Copy)]
struct Exited {
    status: u32,
    at: OffsetDateTime,
}

struct Container {
    paths: Paths,
    init_pid: i32,
    monitor_pid: i32,
    rootfs: Option<PreparedRootfs>,
    state: State,
    exited: Option<Exited>,
    exit_rx: watch::Receiver<Option<Exited>>,
    stdio: (String, String, String, bool),
}

pub struct Service {
    namespace: String,
    publisher: Arc<RemotePublisher>,
    exit: Arc<ExitSignal>,
    exits: Exits,
    containers: Arc<Mutex<HashMap<String, Container>>>,
}

fn ts(t: OffsetDateTime) -> MessageField<Timestamp> {
    MessageField::some(convert_to_timestamp(Some(t)))
}

impl Service {
    pub async fn new(
        namespace: &str,
        publisher: RemotePublisher,
        exit: Arc<ExitSignal>,
    ) -> Service {
        Service {
            namespace: namespace.to_string(),
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

    /// Watches a container's monitor and records its exit.
    fn watch_exit(&self, id: String, monitor_pid: i32, tx: watch::Sender<Option<Exited>>) {
        let mut rx = self.exits.watch(monitor_pid);
        let containers = self.containers.clone();
        let publisher = self.publisher.clone();
        let namespace = self.namespace.clone();
        tokio::spawn(async move {
            let code = wait_exit(&mut rx).await;
            let exited = Exited {
                status: code as u32,
                at: OffsetDateTime::now_utc(),
            };
            // The lock orders this after a Start in progress: /tasks/exit never precedes /tasks/start.
            let mut map = containers.lock().await;
            let Some(c) = map.get_mut(&id) else { return };
            c.state = State::Stopped;
            c.exited = Some(exited);
            info!("container {id} exited with status {code}");
            let ev = TaskExit {
                container_id: id.clone(),
                id: id.clone(),
                pid: c.init_pid as u32,
                exit_status: exited.status,
                exited_at: ts(exited.at),
                ..Default::default()
            };
            let _ = tx.send(Some(exited));
            drop(map);
            Self::publish(&publisher, &namespace, "/tasks/exit", Box::new(ev)).await;
        });
    }
}

fn not_found(id: &str) -> ttrpc::Error {
    Error::NotFound(format!("container {id} not found in this shim")).into()
}

fn exec_unsupported(exec_id: &str) -> ttrpc::Error {
    Error::NotFound(format!(
        "exec process {exec_id} not found: exec is not supported by lxcri yet"
    ))
    .into()
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
        };
        let c = tokio::task::spawn_blocking(move || {
            container::create(&cfg, &creq, &layerfs::PassThrough)
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
        let (tx, rx) = watch::channel(None);
        let pid = c.init_pid;
        self.containers.lock().await.insert(
            req.id.clone(),
            Container {
                paths: c.paths,
                init_pid: c.init_pid,
                monitor_pid: c.monitor_pid,
                rootfs: c.rootfs,
                state: State::Created,
                exited: None,
                exit_rx: rx,
                stdio: (
                    req.stdin.clone(),
                    req.stdout.clone(),
                    req.stderr.clone(),
                    req.terminal,
                ),
            },
        );
        self.watch_exit(req.id.clone(), c.monitor_pid, tx);
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
            return Err(exec_unsupported(&req.exec_id));
        }
        let mut map = self.containers.lock().await;
        let c = map.get_mut(&req.id).ok_or_else(|| not_found(&req.id))?;
        if c.state != State::Created {
            return Err(Error::FailedPrecondition(format!(
                "container {} is {:?}, not created: it cannot be started",
                req.id, c.state
            ))
            .into());
        }
        let paths = c.paths.clone();
        let id = req.id.clone();
        tokio::task::spawn_blocking(move || container::start(&paths, &id))
            .await
            .map_err(|e| Error::Internal(format!("start panicked: {e}")))??;
        c.state = State::Running;
        let pid = c.init_pid;
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
        if !req.exec_id.is_empty() {
            return Err(exec_unsupported(&req.exec_id));
        }
        let map = self.containers.lock().await;
        let c = map.get(&req.id).ok_or_else(|| not_found(&req.id))?;
        let status = match c.state {
            State::Created => api::Status::CREATED,
            State::Running => api::Status::RUNNING,
            State::Stopped => api::Status::STOPPED,
        };
        let mut resp = api::StateResponse {
            id: req.id.clone(),
            bundle: c.paths.bundle.display().to_string(),
            pid: c.init_pid as u32,
            status: status.into(),
            stdin: c.stdio.0.clone(),
            stdout: c.stdio.1.clone(),
            stderr: c.stdio.2.clone(),
            terminal: c.stdio.3,
            ..Default::default()
        };
        if let Some(e) = c.exited {
            resp.exit_status = e.status;
            resp.exited_at = ts(e.at);
        }
        Ok(resp)
    }

    async fn kill(&self, _ctx: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<api::Empty> {
        if !req.exec_id.is_empty() {
            return Err(exec_unsupported(&req.exec_id));
        }
        let map = self.containers.lock().await;
        let c = map.get(&req.id).ok_or_else(|| not_found(&req.id))?;
        if c.state == State::Stopped {
            return Err(
                Error::NotFound(format!("container {}: process already finished", req.id)).into(),
            );
        }
        info!("kill {} signal {} all={}", req.id, req.signal, req.all);
        container::signal(c.init_pid, req.signal as i32, req.all)?;
        Ok(api::Empty::new())
    }

    async fn wait(
        &self,
        _ctx: &TtrpcContext,
        req: api::WaitRequest,
    ) -> TtrpcResult<api::WaitResponse> {
        if !req.exec_id.is_empty() {
            return Err(exec_unsupported(&req.exec_id));
        }
        let mut rx = {
            let map = self.containers.lock().await;
            map.get(&req.id)
                .ok_or_else(|| not_found(&req.id))?
                .exit_rx
                .clone()
        };
        let exited = loop {
            if let Some(e) = *rx.borrow_and_update() {
                break e;
            }
            if rx.changed().await.is_err() {
                return Err(Error::Internal(format!(
                    "container {}: lost track of its exit",
                    req.id
                ))
                .into());
            }
        };
        Ok(api::WaitResponse {
            exit_status: exited.status,
            exited_at: ts(exited.at),
            ..Default::default()
        })
    }

    async fn delete(
        &self,
        _ctx: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> TtrpcResult<api::DeleteResponse> {
        if !req.exec_id.is_empty() {
            return Err(exec_unsupported(&req.exec_id));
        }
        let (state, init_pid, mut rx) = {
            let map = self.containers.lock().await;
            let c = map.get(&req.id).ok_or_else(|| not_found(&req.id))?;
            (c.state, c.init_pid, c.exit_rx.clone())
        };
        match state {
            State::Running => {
                return Err(Error::FailedPrecondition(format!(
                    "container {} is running: stop it first (ctr task kill), then delete",
                    req.id
                ))
                .into())
            }
            State::Created => {
                // Never started: kill the waiting init and let LXC tear the container down.
                let _ = container::signal(init_pid, libc::SIGKILL, false);
                let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                    while rx.borrow_and_update().is_none() {
                        if rx.changed().await.is_err() {
                            break;
                        }
                    }
                })
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
        let exited = c.exited.or(*c.exit_rx.borrow()).unwrap_or(Exited {
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
            pid: c.init_pid as u32,
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
            pid: c.init_pid as u32,
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
        let pids = if c.state == State::Stopped {
            Vec::new()
        } else {
            crate::host::cgroup_pids(c.init_pid)
        };
        Ok(api::PidsResponse {
            processes: pids
                .into_iter()
                .map(|p| ProcessInfo {
                    pid: p as u32,
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
        // stdin is containerd's FIFO itself, held by the container only: the container sees EOF
        // when the client closes its end. Nothing of ours to close.
        let map = self.containers.lock().await;
        map.get(&req.id).ok_or_else(|| not_found(&req.id))?;
        Ok(api::Empty::new())
    }

    async fn connect(
        &self,
        _ctx: &TtrpcContext,
        req: api::ConnectRequest,
    ) -> TtrpcResult<api::ConnectResponse> {
        let map = self.containers.lock().await;
        let task_pid = map.get(&req.id).map(|c| c.init_pid as u32).unwrap_or(0);
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
