//! containerd's Task service (task.v2 over ttrpc) over the containers this shim holds (one, or
//! every container of a pod).
//!
//! Each request finds its container in the map (locked for the lookup only), checks its
//! transition on the process's state machine (`state`), does the slow part through the
//! [`Backend`] on tokio's blocking pool under the container's own locks at most (`instance`),
//! and queues its event (`events`). Exits come from the helpers' exit watches (`exits`).

use super::backend::{Backend, Lxc, Stdio};
use super::events::Events;
use super::exits::{ExitWatch, Exits};
use super::instance::{Exited, Instance, Process};
use super::state::{Op, Status};
use crate::container::CreateRequest;
use crate::error::{Error, Result};
use crate::options;
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
use containerd_shim_protos::protobuf::{Message, MessageField};
use containerd_shim_protos::shim::oci::ProcessDetails;
use containerd_shim_protos::ttrpc;
use containerd_shim_protos::types::task::ProcessInfo;
use layerfs::MountSpec;
use log::{debug, info, warn};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use time::OffsetDateTime;

type TtrpcResult<T> = std::result::Result<T, ttrpc::Error>;

/// How long Delete of a never-started container waits for its init to die.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How long an exit waits for the process's terminal output to be copied out.
const DRAIN_WAIT: Duration = Duration::from_secs(2);

struct Table<H> {
    containers: HashMap<String, Arc<Instance<H>>>,
    /// Ids whose Create is under way.
    creating: HashSet<String>,
}

pub struct Service<B: Backend = Lxc> {
    namespace: String,
    /// containerd's socket, for questions the task API does not answer (image identity).
    containerd_address: String,
    backend: Arc<B>,
    exits: Exits,
    events: Events,
    exit: Arc<ExitSignal>,
    table: Arc<Mutex<Table<B::Handle>>>,
}

fn ts(t: OffsetDateTime) -> MessageField<Timestamp> {
    MessageField::some(convert_to_timestamp(Some(t)))
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("container {id} not found in this shim"))
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

/// Removes an id from the ids being created when Create ends, however it ends.
struct Reservation<H> {
    table: Arc<Mutex<Table<H>>>,
    id: String,
}

impl<H> Drop for Reservation<H> {
    fn drop(&mut self) {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        t.creating.remove(&self.id);
    }
}

impl Service<Lxc> {
    /// The shim's service on the real host, its events published to containerd.
    pub async fn new(
        namespace: &str,
        containerd_address: &str,
        publisher: RemotePublisher,
        exit: Arc<ExitSignal>,
    ) -> Service<Lxc> {
        let exits = Exits::from_reaper().await;
        let events = Events::forward_to(publisher, namespace.to_string());
        Service::with_backend(Lxc, exits, events, exit, namespace, containerd_address)
    }
}

impl<B: Backend> Service<B> {
    pub fn with_backend(
        backend: B,
        exits: Exits,
        events: Events,
        exit: Arc<ExitSignal>,
        namespace: &str,
        containerd_address: &str,
    ) -> Service<B> {
        Service {
            namespace: namespace.to_string(),
            containerd_address: containerd_address.to_string(),
            backend: Arc::new(backend),
            exits,
            events,
            exit,
            table: Arc::new(Mutex::new(Table {
                containers: HashMap::new(),
                creating: HashSet::new(),
            })),
        }
    }

    fn table(&self) -> MutexGuard<'_, Table<B::Handle>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, id: &str) -> Result<Arc<Instance<B::Handle>>> {
        self.table()
            .containers
            .get(id)
            .cloned()
            .ok_or_else(|| not_found(id))
    }

    /// Runs backend work on tokio's blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        what: &str,
        f: impl FnOnce(&B) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let backend = self.backend.clone();
        tokio::task::spawn_blocking(move || f(&backend))
            .await
            .map_err(|e| Error::Internal(format!("{what} panicked: {e}")))?
    }

    /// Waits for a helper's exit and records it as its process's: after any Start of that
    /// process is through (so `/tasks/exit` follows `/tasks/start`), with the terminal's output
    /// copied out first.
    fn watch_exit(&self, c: Arc<Instance<B::Handle>>, p: Arc<Process>, mut watch: ExitWatch) {
        let events = self.events.clone();
        let backend = self.backend.clone();
        tokio::spawn(async move {
            let code = watch.wait().await;
            let drained = p.state().console.as_ref().map(|c| c.drained());
            if let Some(mut drained) = drained {
                let _ = tokio::time::timeout(DRAIN_WAIT, drained.wait_for(|done| *done)).await;
            }
            let _order = p.order.lock().await;
            let recorded = p.set_exited(code as u32, |s| {
                let exited = s.exited.expect("set by set_exited");
                events.send(
                    "/tasks/exit",
                    TaskExit {
                        container_id: p.container_id.clone(),
                        id: p.id().to_string(),
                        pid: s.pid as u32,
                        exit_status: exited.status,
                        exited_at: ts(exited.at),
                        ..Default::default()
                    },
                );
            });
            if recorded {
                info!("{} exited with status {code}", p.what());
            }
            if !p.is_init() {
                backend.exec_gone(&c.handle, &p.exec_id);
            }
        });
    }

    async fn create_task(&self, req: api::CreateTaskRequest) -> Result<api::CreateTaskResponse> {
        info!("create {} (bundle {})", req.id, req.bundle);
        let opts = req
            .options
            .as_ref()
            .map(|any| options::decode(&any.type_url, &any.value))
            .unwrap_or_default();
        for what in &opts.ignored {
            debug!("runtime options: ignoring {what}");
        }
        let _reservation = {
            let mut t = self.table();
            if t.containers.contains_key(&req.id) || !t.creating.insert(req.id.clone()) {
                return Err(Error::AlreadyExists(format!(
                    "container {} already exists",
                    req.id
                )));
            }
            Reservation {
                table: self.table.clone(),
                id: req.id.clone(),
            }
        };
        let stdio = Stdio {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
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
            stdin: stdio.stdin.clone(),
            stdout: stdio.stdout.clone(),
            stderr: stdio.stderr.clone(),
            terminal: stdio.terminal,
            containerd_address: Some(self.containerd_address.clone()),
        };
        // Open before the monitor is spawned: its exit is ours even if it comes at once.
        let window = self.exits.window();
        let created = self
            .blocking("create", move |b| b.create(&creq, &opts))
            .await
            .inspect_err(|e| warn!("create {}: {e}", req.id))?;
        let pid = created.init_pid;
        let init = Process::new(&req.id, "", pid, stdio, None);
        init.state().console = created.console;
        let c = Arc::new(Instance::new(&req.id, &req.bundle, created.handle, init));
        self.table().containers.insert(req.id.clone(), c.clone());
        self.events.send(
            "/tasks/create",
            TaskCreate {
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
            },
        );
        self.watch_exit(c.clone(), c.init.clone(), window.claim(created.helper_pid));
        let (events, id) = (self.events.clone(), req.id.clone());
        self.backend.watch_oom(
            &req.id,
            pid,
            Box::new(move || {
                events.send(
                    "/tasks/oom",
                    TaskOOM {
                        container_id: id.clone(),
                        ..Default::default()
                    },
                )
            }),
        );
        info!("created {} with init pid {pid}", req.id);
        Ok(api::CreateTaskResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    async fn start_init(&self, c: Arc<Instance<B::Handle>>) -> Result<api::StartResponse> {
        let _lifecycle = c.lifecycle.lock().await;
        let p = c.init.clone();
        let _order = p.order.lock().await;
        p.check(Op::Start)?;
        let pid = p.pid();
        let (handle, id) = (c.handle.clone(), c.id.clone());
        self.blocking("start", move |b| b.start(&handle, &id, pid))
            .await?;
        p.apply(Op::Start)?;
        self.events.send(
            "/tasks/start",
            TaskStart {
                container_id: c.id.clone(),
                pid: pid as u32,
                ..Default::default()
            },
        );
        info!("started {}", c.id);
        Ok(api::StartResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    async fn start_exec(
        &self,
        c: Arc<Instance<B::Handle>>,
        p: Arc<Process>,
    ) -> Result<api::StartResponse> {
        let _order = p.order.lock().await;
        p.check(Op::Start)?;
        let (init_status, init_pid) = {
            let init = c.init.state();
            (init.status, init.pid)
        };
        if init_status != Status::Running {
            return Err(Error::FailedPrecondition(format!(
                "container {} is {init_status:?}, not running: cannot start exec {} in it",
                c.id, p.exec_id
            )));
        }
        // Open before the helper is spawned: its exit is ours even if it comes at once.
        let window = self.exits.window();
        let (handle, id, exec_id) = (c.handle.clone(), c.id.clone(), p.exec_id.clone());
        let (spec, stdio) = (p.spec.clone().unwrap_or_default(), p.stdio.clone());
        let spawned = self
            .blocking("exec start", move |b| {
                b.start_exec(&handle, &id, &exec_id, &spec, &stdio, init_pid)
            })
            .await?;
        let pid = spawned.pid;
        {
            let mut s = p.state();
            s.pid = pid;
            s.console = spawned.console;
            s.status = Status::Running;
        }
        self.events.send(
            "/tasks/exec-started",
            TaskExecStarted {
                container_id: c.id.clone(),
                exec_id: p.exec_id.clone(),
                pid: pid as u32,
                ..Default::default()
            },
        );
        self.watch_exit(c.clone(), p.clone(), window.claim(spawned.helper_pid));
        info!("started exec {} in {} with pid {pid}", p.exec_id, c.id);
        Ok(api::StartResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    async fn delete_exec(
        &self,
        c: Arc<Instance<B::Handle>>,
        p: Arc<Process>,
    ) -> Result<api::DeleteResponse> {
        {
            let _order = p.order.lock().await;
            p.apply(Op::Delete)?;
        }
        c.remove_exec(&p.exec_id);
        self.backend.exec_gone(&c.handle, &p.exec_id);
        let exited = p.exited().unwrap_or(Exited {
            status: 0,
            at: OffsetDateTime::now_utc(),
        });
        info!("deleted {}", p.what());
        Ok(api::DeleteResponse {
            pid: p.pid() as u32,
            exit_status: exited.status,
            exited_at: ts(exited.at),
            ..Default::default()
        })
    }

    async fn delete_container(&self, c: Arc<Instance<B::Handle>>) -> Result<api::DeleteResponse> {
        let _lifecycle = c.lifecycle.lock().await;
        let p = c.init.clone();
        let pid = p.pid();
        p.check(Op::Delete)?;
        if p.status() == Status::Created {
            // Never started: kill the waiting init and let LXC tear the container down.
            let _ = self.backend.signal(pid, libc::SIGKILL as u32, false);
            if tokio::time::timeout(KILL_WAIT, p.wait()).await.is_err() {
                warn!(
                    "delete {}: its init did not exit within {KILL_WAIT:?} of SIGKILL",
                    c.id
                );
            }
        }
        {
            let _order = p.order.lock().await;
            p.apply(Op::Delete)?;
        }
        self.table().containers.remove(&c.id);
        let exited = p.exited().unwrap_or(Exited {
            status: 137,
            at: OffsetDateTime::now_utc(),
        });
        let handle = c.handle.clone();
        let problems = self
            .blocking("delete", move |b| Ok(b.cleanup(&handle, pid)))
            .await
            .unwrap_or_else(|e| vec![e.to_string()]);
        for problem in &problems {
            warn!("delete {}: {problem}", c.id);
        }
        self.events.send(
            "/tasks/delete",
            TaskDelete {
                container_id: c.id.clone(),
                id: c.id.clone(),
                pid: pid as u32,
                exit_status: exited.status,
                exited_at: ts(exited.at),
                ..Default::default()
            },
        );
        info!("deleted {}", c.id);
        Ok(api::DeleteResponse {
            pid: pid as u32,
            exit_status: exited.status,
            exited_at: ts(exited.at),
            ..Default::default()
        })
    }

    /// Pause (freeze) or resume (thaw) every process of a container through its cgroup.
    async fn freeze(&self, id: &str, frozen: bool) -> Result<api::Empty> {
        let c = self.get(id)?;
        let _lifecycle = c.lifecycle.lock().await;
        let op = if frozen { Op::Pause } else { Op::Resume };
        c.init.check(op)?;
        let pid = c.init.pid();
        self.blocking("freeze", move |b| b.set_frozen(pid, frozen))
            .await
            .map_err(|e| Error::Internal(format!("container {id}: {e}")))?;
        c.init.apply(op)?;
        if frozen {
            let ev = TaskPaused {
                container_id: id.to_string(),
                ..Default::default()
            };
            self.events.send("/tasks/paused", ev);
        } else {
            let ev = TaskResumed {
                container_id: id.to_string(),
                ..Default::default()
            };
            self.events.send("/tasks/resumed", ev);
        }
        info!("{} {id}", if frozen { "paused" } else { "resumed" });
        Ok(api::Empty::new())
    }

    async fn kill_process(&self, req: api::KillRequest) -> Result<api::Empty> {
        let c = self.get(&req.id)?;
        let p = c.process(&req.exec_id)?;
        let status = p.check(Op::Signal)?;
        if status == Status::Created && !p.is_init() {
            return Err(Error::FailedPrecondition(format!(
                "{} is not started",
                p.what()
            )));
        }
        info!("kill {} signal {} all={}", p.what(), req.signal, req.all);
        let all = req.all && p.is_init();
        self.backend.signal(p.pid(), req.signal, all)?;
        Ok(api::Empty::new())
    }

    async fn add_exec(&self, req: api::ExecProcessRequest) -> Result<api::Empty> {
        let c = self.get(&req.id)?;
        c.init.check(Op::Exec)?;
        let value = req
            .spec
            .as_ref()
            .map(|a| a.value.as_slice())
            .unwrap_or_default();
        let process: oci_spec::runtime::Process = serde_json::from_slice(value).map_err(|e| {
            Error::InvalidArgument(format!(
                "exec {}: the process spec is not valid: {e}",
                req.exec_id
            ))
        })?;
        let spec = self
            .backend
            .exec_spec(&c.handle, &req.exec_id, &process, req.terminal)?;
        let stdio = Stdio {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        c.add_exec(Process::new(&req.id, &req.exec_id, 0, stdio, Some(spec)))?;
        self.events.send(
            "/tasks/exec-added",
            TaskExecAdded {
                container_id: req.id.clone(),
                exec_id: req.exec_id.clone(),
                ..Default::default()
            },
        );
        info!("exec {} added to {}", req.exec_id, req.id);
        Ok(api::Empty::new())
    }

    fn state_of(&self, req: &api::StateRequest) -> Result<api::StateResponse> {
        let c = self.get(&req.id)?;
        let p = c.process(&req.exec_id)?;
        let s = p.state();
        let mut resp = api::StateResponse {
            id: p.id().to_string(),
            bundle: c.bundle.clone(),
            pid: s.pid as u32,
            status: s.status.to_api().into(),
            stdin: p.stdio.stdin.clone(),
            stdout: p.stdio.stdout.clone(),
            stderr: p.stdio.stderr.clone(),
            terminal: p.stdio.terminal,
            exec_id: req.exec_id.clone(),
            ..Default::default()
        };
        if let Some(e) = s.exited {
            resp.exit_status = e.status;
            resp.exited_at = ts(e.at);
        }
        Ok(resp)
    }

    async fn pids_of(&self, id: &str) -> Result<api::PidsResponse> {
        let c = self.get(id)?;
        let pid = c.init.pid();
        let pids = if c.init.status() == Status::Stopped {
            Vec::new()
        } else {
            self.blocking("pids", move |b| Ok(b.pids(pid))).await?
        };
        // An exec's process carries its exec id, the way runc's shim marks it (`ctr task ps`
        // shows it in its INFO column).
        let exec_of: HashMap<u32, String> = c
            .exec_list()
            .iter()
            .filter_map(|e| {
                let s = e.state();
                (s.status == Status::Running && s.pid > 0)
                    .then(|| (s.pid as u32, e.exec_id.clone()))
            })
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

    /// The init's pid of a container that has not stopped; `doing` names the request.
    fn live_pid(&self, id: &str, doing: &str) -> Result<i32> {
        let c = self.get(id)?;
        let s = c.init.state();
        if s.status == Status::Stopped {
            return Err(Error::FailedPrecondition(format!(
                "container {id} is stopped: {doing}"
            )));
        }
        Ok(s.pid)
    }
}

#[async_trait]
impl<B: Backend> Task for Service<B> {
    async fn create(
        &self,
        _ctx: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        Ok(self.create_task(req).await?)
    }

    async fn start(
        &self,
        _ctx: &TtrpcContext,
        req: api::StartRequest,
    ) -> TtrpcResult<api::StartResponse> {
        let c = self.get(&req.id)?;
        let p = c.process(&req.exec_id)?;
        Ok(if p.is_init() {
            self.start_init(c).await?
        } else {
            self.start_exec(c, p).await?
        })
    }

    async fn state(
        &self,
        _ctx: &TtrpcContext,
        req: api::StateRequest,
    ) -> TtrpcResult<api::StateResponse> {
        Ok(self.state_of(&req)?)
    }

    async fn kill(&self, _ctx: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<api::Empty> {
        Ok(self.kill_process(req).await?)
    }

    async fn wait(
        &self,
        _ctx: &TtrpcContext,
        req: api::WaitRequest,
    ) -> TtrpcResult<api::WaitResponse> {
        let p = self.get(&req.id)?.process(&req.exec_id)?;
        let exited = p.wait().await;
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
        Ok(self.add_exec(req).await?)
    }

    async fn delete(
        &self,
        _ctx: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> TtrpcResult<api::DeleteResponse> {
        let c = self.get(&req.id)?;
        let p = c.process(&req.exec_id)?;
        Ok(if p.is_init() {
            self.delete_container(c).await?
        } else {
            self.delete_exec(c, p).await?
        })
    }

    async fn pids(
        &self,
        _ctx: &TtrpcContext,
        req: api::PidsRequest,
    ) -> TtrpcResult<api::PidsResponse> {
        Ok(self.pids_of(&req.id).await?)
    }

    async fn close_io(
        &self,
        _ctx: &TtrpcContext,
        req: api::CloseIORequest,
    ) -> TtrpcResult<api::Empty> {
        // Without a terminal, stdin is containerd's FIFO itself, held by the process only: it
        // sees EOF when the client closes its end. With one, the shim stops copying input.
        let p = self.get(&req.id)?.process(&req.exec_id)?;
        if req.stdin {
            if let Some(console) = &p.state().console {
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
        let p = self.get(&req.id)?.process(&req.exec_id)?;
        let s = p.state();
        // A process without a terminal has nothing to resize: accepted and ignored, as the
        // runc shim does (clients resize by default).
        if let Some(console) = &s.console {
            console
                .resize(req.width, req.height)
                .map_err(|e| Error::Internal(format!("{}: {e}", p.what())))?;
        }
        Ok(api::Empty::new())
    }

    async fn connect(
        &self,
        _ctx: &TtrpcContext,
        req: api::ConnectRequest,
    ) -> TtrpcResult<api::ConnectResponse> {
        let task_pid = self.get(&req.id).map(|c| c.init.pid() as u32).unwrap_or(0);
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
        let empty = {
            let t = self.table();
            t.containers.is_empty() && t.creating.is_empty()
        };
        if empty {
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
        let pid = self.live_pid(&req.id, "it has no metrics")?;
        let id = req.id.clone();
        let any = self
            .blocking("stats", move |b| b.metrics(pid))
            .await
            .map_err(|e| Error::Internal(format!("container {id}: {e}")))?;
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
        let pid = self.live_pid(&req.id, "nothing to update")?;
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
        let id = req.id.clone();
        self.blocking("update", move |b| b.update(pid, &resources))
            .await
            .map_err(|e| Error::InvalidArgument(format!("container {id}: update: {e}")))?;
        info!("updated the resources of {}", req.id);
        Ok(api::Empty::new())
    }

    async fn pause(&self, _ctx: &TtrpcContext, req: api::PauseRequest) -> TtrpcResult<api::Empty> {
        Ok(self.freeze(&req.id, true).await?)
    }

    async fn resume(
        &self,
        _ctx: &TtrpcContext,
        req: api::ResumeRequest,
    ) -> TtrpcResult<api::Empty> {
        Ok(self.freeze(&req.id, false).await?)
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
