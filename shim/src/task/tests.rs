//! The task service in-process, against a fake backend: no root, no LXC. The fake hands out
//! pids above the kernel's limit, turns a SIGKILL into its helper's exit, and can hold any
//! operation of one container at a gate, the way a slow hook or freezer would.

use super::backend::{Backend, Created, Spawned, Stdio};
use super::events::{Event, Events};
use super::exits::Exits;
use super::Service;
use crate::container::CreateRequest;
use crate::error::{Error, Result};
use crate::options::RuntimeOptions;
use containerd_shim::asynchronous::ExitSignal;
use containerd_shim::{api, Task, TtrpcContext};
use containerd_shim_protos::events::task::{TaskExit, TaskStart};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::ttrpc::Code;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// A door an operation waits at until the test opens it.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
    /// Set once the operation arrived at the gate.
    reached: Mutex<bool>,
    reached_cv: Condvar,
}

impl Gate {
    fn pass(&self) {
        *self.reached.lock().unwrap() = true;
        self.reached_cv.notify_all();
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.cv.wait(open).unwrap();
        }
    }
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }
    /// Waits (blocking a thread of its own) until an operation is at the gate.
    async fn reached(self: &Arc<Self>) {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut r = me.reached.lock().unwrap();
            while !*r {
                r = me.reached_cv.wait(r).unwrap();
            }
        })
        .await
        .unwrap();
    }
}

#[derive(Default)]
struct FakeState {
    next_pid: i32,
    /// A process's pid -> its helper's pid.
    helper_of: HashMap<i32, i32>,
    /// (operation, container id) -> the gate that operation waits at.
    gates: HashMap<(&'static str, String), Arc<Gate>>,
    /// Operations that fail: (operation, container id) -> the error's text.
    failures: HashMap<(&'static str, String), String>,
    signals: Vec<(i32, u32, bool)>,
    frozen: HashMap<i32, bool>,
    cleaned: Vec<i32>,
    /// Create: the init dies at once with this status.
    die_at_create: Option<i32>,
}

#[derive(Clone)]
struct Fake {
    exits: Exits,
    state: Arc<Mutex<FakeState>>,
}

impl Fake {
    fn new(exits: Exits) -> Fake {
        Fake {
            exits,
            state: Arc::new(Mutex::new(FakeState {
                next_pid: 5_000_000,
                ..Default::default()
            })),
        }
    }
    fn st(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap()
    }
    /// A new process and its helper.
    fn spawn(&self) -> (i32, i32) {
        let mut s = self.st();
        s.next_pid += 2;
        let (pid, helper) = (s.next_pid, s.next_pid + 1);
        s.helper_of.insert(pid, helper);
        (pid, helper)
    }
    fn gate(&self, op: &'static str, id: &str) -> Arc<Gate> {
        let g = Arc::new(Gate::default());
        self.st().gates.insert((op, id.to_string()), g.clone());
        g
    }
    fn fail(&self, op: &'static str, id: &str, why: &str) {
        self.st()
            .failures
            .insert((op, id.to_string()), why.to_string());
    }
    /// Waits at the operation's gate, if there is one; fails it if told to.
    fn arrive(&self, op: &'static str, id: &str) -> Result<()> {
        let gate = self.st().gates.get(&(op, id.to_string())).cloned();
        if let Some(g) = gate {
            g.pass();
        }
        match self.st().failures.get(&(op, id.to_string())) {
            Some(why) => Err(Error::Internal(why.clone())),
            None => Ok(()),
        }
    }
    /// The process `pid` ends with `status`: its helper exits so (the reaper's report).
    fn exit(&self, pid: i32, status: i32) {
        let helper = self.st().helper_of[&pid];
        self.exits.notify(helper, status);
    }
}

impl Backend for Fake {
    type Handle = String;

    fn create(&self, req: &CreateRequest, _o: &RuntimeOptions) -> Result<Created<String>> {
        self.arrive("create", &req.id)?;
        let (pid, helper) = self.spawn();
        if let Some(status) = self.st().die_at_create {
            self.exits.notify(helper, status);
        }
        Ok(Created {
            init_pid: pid,
            helper_pid: helper,
            console: None,
            handle: req.id.clone(),
        })
    }
    fn start(&self, id: &String, _: &str, _pid: i32) -> Result<()> {
        self.arrive("start", id)
    }
    fn exec_spec(
        &self,
        _: &String,
        _: &str,
        p: &oci_spec::runtime::Process,
        terminal: bool,
    ) -> Result<lxcri_init::InitConfig> {
        Ok(lxcri_init::InitConfig {
            args: p.args().clone().unwrap_or_default(),
            terminal,
            ..Default::default()
        })
    }
    fn start_exec(
        &self,
        id: &String,
        _: &str,
        exec_id: &str,
        _: &lxcri_init::InitConfig,
        _: &Stdio,
        _: i32,
    ) -> Result<Spawned> {
        self.arrive("exec", &format!("{id}/{exec_id}"))?;
        let (pid, helper) = self.spawn();
        Ok(Spawned {
            pid,
            helper_pid: helper,
            console: None,
        })
    }
    fn exec_gone(&self, _: &String, _: &str) {}
    fn signal(&self, pid: i32, signal: u32, all: bool) -> Result<()> {
        self.st().signals.push((pid, signal, all));
        if signal == libc::SIGKILL as u32 {
            self.exit(pid, 128 + libc::SIGKILL);
        }
        Ok(())
    }
    fn set_frozen(&self, pid: i32, frozen: bool) -> Result<()> {
        let id = format!("pid{pid}");
        self.arrive("freeze", &id)?;
        self.st().frozen.insert(pid, frozen);
        Ok(())
    }
    fn pids(&self, pid: i32) -> Vec<i32> {
        vec![pid]
    }
    fn metrics(&self, _: i32) -> Result<Any> {
        Ok(Any::new())
    }
    fn update(&self, _: i32, _: &oci_spec::runtime::LinuxResources) -> Result<()> {
        Ok(())
    }
    fn cleanup(&self, _: &String, pid: i32) -> Vec<String> {
        self.st().cleaned.push(pid);
        Vec::new()
    }
    fn watch_oom(&self, _: &str, _: i32, _: Box<dyn Fn() + Send + Sync>) {}
}

/// A service over the fake, and the events it queues.
struct Harness {
    svc: Arc<Service<Fake>>,
    fake: Fake,
    events: UnboundedReceiver<Event>,
}

fn ctx() -> TtrpcContext {
    TtrpcContext {
        mh: Default::default(),
        metadata: Default::default(),
        timeout_nano: 0,
    }
}

/// The ttrpc code of an error.
fn code<T: std::fmt::Debug>(
    r: std::result::Result<T, containerd_shim_protos::ttrpc::Error>,
) -> Code {
    match r {
        Err(containerd_shim_protos::ttrpc::Error::RpcStatus(s)) => s.code(),
        other => panic!("expected an error status, got {other:?}"),
    }
}

/// Panics unless `r` failed with `want`; `what` names the request.
fn expect_code<T: std::fmt::Debug>(
    r: std::result::Result<T, containerd_shim_protos::ttrpc::Error>,
    want: Code,
    what: &str,
) {
    assert_eq!(code(r), want, "{what}");
}

/// Bounds every wait of a test: a hang is a failure, not a stuck test run.
async fn soon<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within 5 s"))
}

impl Harness {
    fn new() -> Harness {
        let exits = Exits::default();
        let fake = Fake::new(exits.clone());
        let (events, rx) = Events::channel();
        let svc = Service::with_backend(
            fake.clone(),
            exits,
            events,
            Arc::new(ExitSignal::default()),
            "default",
            "",
        );
        Harness {
            svc: Arc::new(svc),
            fake,
            events: rx,
        }
    }

    async fn create(&self, id: &str) -> u32 {
        let req = api::CreateTaskRequest {
            id: id.to_string(),
            bundle: format!("/run/bundles/{id}"),
            ..Default::default()
        };
        soon("create", self.svc.create(&ctx(), req))
            .await
            .unwrap()
            .pid
    }

    async fn start(
        &self,
        id: &str,
        exec_id: &str,
    ) -> std::result::Result<u32, containerd_shim_protos::ttrpc::Error> {
        let req = api::StartRequest {
            id: id.to_string(),
            exec_id: exec_id.to_string(),
            ..Default::default()
        };
        soon("start", self.svc.start(&ctx(), req))
            .await
            .map(|r| r.pid)
    }

    async fn exec(
        &self,
        id: &str,
        exec_id: &str,
    ) -> std::result::Result<api::Empty, containerd_shim_protos::ttrpc::Error> {
        let spec = serde_json::json!({"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}});
        let req = api::ExecProcessRequest {
            id: id.to_string(),
            exec_id: exec_id.to_string(),
            spec: Some(Any {
                value: serde_json::to_vec(&spec).unwrap(),
                ..Default::default()
            })
            .into(),
            ..Default::default()
        };
        soon("exec", self.svc.exec(&ctx(), req)).await
    }

    async fn state(&self, id: &str, exec_id: &str) -> api::StateResponse {
        let req = api::StateRequest {
            id: id.to_string(),
            exec_id: exec_id.to_string(),
            ..Default::default()
        };
        soon("state", self.svc.state(&ctx(), req)).await.unwrap()
    }

    async fn status(&self, id: &str, exec_id: &str) -> api::Status {
        self.state(id, exec_id).await.status.enum_value().unwrap()
    }

    async fn kill(
        &self,
        id: &str,
        exec_id: &str,
        signal: i32,
    ) -> std::result::Result<api::Empty, containerd_shim_protos::ttrpc::Error> {
        let req = api::KillRequest {
            id: id.to_string(),
            exec_id: exec_id.to_string(),
            signal: signal as u32,
            ..Default::default()
        };
        soon("kill", self.svc.kill(&ctx(), req)).await
    }

    async fn wait(&self, id: &str, exec_id: &str) -> u32 {
        let req = api::WaitRequest {
            id: id.to_string(),
            exec_id: exec_id.to_string(),
            ..Default::default()
        };
        soon("wait", self.svc.wait(&ctx(), req))
            .await
            .unwrap()
            .exit_status
    }

    async fn delete(
        &self,
        id: &str,
        exec_id: &str,
    ) -> std::result::Result<api::DeleteResponse, containerd_shim_protos::ttrpc::Error> {
        let req = api::DeleteRequest {
            id: id.to_string(),
            exec_id: exec_id.to_string(),
            ..Default::default()
        };
        soon("delete", self.svc.delete(&ctx(), req)).await
    }

    async fn pause(
        &self,
        id: &str,
    ) -> std::result::Result<api::Empty, containerd_shim_protos::ttrpc::Error> {
        let req = api::PauseRequest {
            id: id.to_string(),
            ..Default::default()
        };
        soon("pause", self.svc.pause(&ctx(), req)).await
    }

    async fn resume(
        &self,
        id: &str,
    ) -> std::result::Result<api::Empty, containerd_shim_protos::ttrpc::Error> {
        let req = api::ResumeRequest {
            id: id.to_string(),
            ..Default::default()
        };
        soon("resume", self.svc.resume(&ctx(), req)).await
    }

    /// The topics queued so far, each with the id of the process or container it is about.
    fn topics(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(ev) = self.events.try_recv() {
            let m = ev.message.as_ref();
            let about = if let Some(e) = m.downcast_ref::<TaskExit>() {
                format!("{}/{}", e.container_id, e.id)
            } else {
                let text = format!("{m:?}");
                text.split("container_id: \"")
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .unwrap_or("")
                    .to_string()
            };
            out.push(format!("{} {about}", ev.topic));
        }
        out
    }

    /// Waits until a queued exit event is there, then returns every topic so far.
    async fn topics_until_exit_of(&mut self, about: &str) -> Vec<String> {
        let mut seen = Vec::new();
        soon("the exit event", async {
            loop {
                seen.extend(self.topics());
                if seen.iter().any(|t| t == &format!("/tasks/exit {about}")) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        seen
    }
}

#[tokio::test]
async fn a_container_and_an_exec_through_every_state_with_events_in_order() {
    let mut h = Harness::new();
    let pid = h.create("c").await as i32;
    assert_eq!(h.status("c", "").await, api::Status::CREATED);
    h.start("c", "").await.unwrap();
    assert_eq!(h.status("c", "").await, api::Status::RUNNING);

    h.exec("c", "e").await.unwrap();
    assert_eq!(h.status("c", "e").await, api::Status::CREATED);
    let epid = h.start("c", "e").await.unwrap() as i32;
    assert_eq!(h.status("c", "e").await, api::Status::RUNNING);
    h.fake.exit(epid, 3);
    assert_eq!(h.wait("c", "e").await, 3);
    assert_eq!(h.status("c", "e").await, api::Status::STOPPED);
    assert_eq!(h.delete("c", "e").await.unwrap().exit_status, 3);
    assert_eq!(code(h.delete("c", "e").await), Code::NOT_FOUND);

    h.pause("c").await.unwrap();
    assert_eq!(h.status("c", "").await, api::Status::PAUSED);
    h.resume("c").await.unwrap();
    assert_eq!(h.status("c", "").await, api::Status::RUNNING);

    h.fake.exit(pid, 0);
    assert_eq!(h.wait("c", "").await, 0);
    let st = h.state("c", "").await;
    assert_eq!(st.status.enum_value().unwrap(), api::Status::STOPPED);
    assert!(st.exited_at.is_some());
    let d = h.delete("c", "").await.unwrap();
    assert_eq!((d.pid as i32, d.exit_status), (pid, 0));
    assert_eq!(h.fake.st().cleaned, vec![pid]);
    assert_eq!(
        code(
            h.svc
                .state(
                    &ctx(),
                    api::StateRequest {
                        id: "c".into(),
                        ..Default::default()
                    }
                )
                .await
        ),
        Code::NOT_FOUND
    );
    assert_eq!(
        h.topics(),
        [
            "/tasks/create c",
            "/tasks/start c",
            "/tasks/exec-added c",
            "/tasks/exec-started c",
            "/tasks/exit c/e",
            "/tasks/paused c",
            "/tasks/resumed c",
            "/tasks/exit c/c",
            "/tasks/delete c",
        ]
    );
}

#[tokio::test]
async fn requests_in_the_wrong_state_get_the_runc_shims_codes() {
    let mut h = Harness::new();
    h.create("c").await;
    assert_eq!(
        code(
            h.svc
                .create(
                    &ctx(),
                    api::CreateTaskRequest {
                        id: "c".into(),
                        ..Default::default()
                    }
                )
                .await
        ),
        Code::ALREADY_EXISTS
    );
    expect_code(
        h.pause("c").await,
        Code::FAILED_PRECONDITION,
        "pause a created container",
    );
    expect_code(
        h.resume("c").await,
        Code::FAILED_PRECONDITION,
        "resume a created container",
    );
    expect_code(
        h.start("c", "nope").await,
        Code::NOT_FOUND,
        "start an unknown exec",
    );
    expect_code(
        h.start("nope", "").await,
        Code::NOT_FOUND,
        "start an unknown container",
    );
    h.start("c", "").await.unwrap();
    expect_code(
        h.start("c", "").await,
        Code::FAILED_PRECONDITION,
        "start twice",
    );
    expect_code(
        h.resume("c").await,
        Code::FAILED_PRECONDITION,
        "resume a running container",
    );
    expect_code(
        h.delete("c", "").await,
        Code::FAILED_PRECONDITION,
        "delete a running container",
    );

    h.exec("c", "e").await.unwrap();
    expect_code(
        h.exec("c", "e").await,
        Code::ALREADY_EXISTS,
        "the same exec id twice",
    );
    expect_code(
        h.kill("c", "e", 15).await,
        Code::FAILED_PRECONDITION,
        "kill an exec not started",
    );
    let epid = h.start("c", "e").await.unwrap() as i32;
    expect_code(
        h.start("c", "e").await,
        Code::FAILED_PRECONDITION,
        "start an exec twice",
    );
    expect_code(
        h.delete("c", "e").await,
        Code::FAILED_PRECONDITION,
        "delete a running exec",
    );
    h.fake.exit(epid, 0);
    h.wait("c", "e").await;
    expect_code(
        h.kill("c", "e", 15).await,
        Code::NOT_FOUND,
        "kill an exited exec",
    );

    h.pause("c").await.unwrap();
    expect_code(h.pause("c").await, Code::FAILED_PRECONDITION, "pause twice");
    expect_code(
        h.exec("c", "e2").await,
        Code::FAILED_PRECONDITION,
        "exec into a paused container",
    );
    expect_code(
        h.delete("c", "").await,
        Code::FAILED_PRECONDITION,
        "delete a paused container",
    );
    h.resume("c").await.unwrap();

    h.kill("c", "", 9).await.unwrap();
    assert_eq!(h.wait("c", "").await, 137);
    expect_code(
        h.kill("c", "", 9).await,
        Code::NOT_FOUND,
        "kill an exited container",
    );
    expect_code(
        h.start("c", "").await,
        Code::FAILED_PRECONDITION,
        "start a stopped container",
    );
    expect_code(
        h.exec("c", "e3").await,
        Code::FAILED_PRECONDITION,
        "exec into a stopped container",
    );
    expect_code(
        h.pause("c").await,
        Code::FAILED_PRECONDITION,
        "pause a stopped container",
    );
    h.delete("c", "").await.unwrap();
    expect_code(h.delete("c", "").await, Code::NOT_FOUND, "delete twice");
    let _ = h.topics();
}

#[tokio::test]
async fn an_exit_during_start_is_published_after_start() {
    let mut h = Harness::new();
    let pid = h.create("c").await as i32;
    let gate = h.fake.gate("start", "c");
    let svc = h.svc.clone();
    let start = tokio::spawn(async move {
        svc.start(
            &ctx(),
            api::StartRequest {
                id: "c".into(),
                ..Default::default()
            },
        )
        .await
    });
    gate.reached().await;
    // The process ends while Start is still in its hooks.
    h.fake.exit(pid, 7);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        h.topics(),
        ["/tasks/create c"],
        "an exit was published before the start"
    );
    gate.open();
    soon("start", start).await.unwrap().unwrap();
    assert_eq!(h.wait("c", "").await, 7);
    assert_eq!(
        h.topics_until_exit_of("c/c").await,
        ["/tasks/start c", "/tasks/exit c/c"]
    );
}

#[tokio::test]
async fn an_init_that_dies_during_create_is_reported_once_created() {
    let mut h = Harness::new();
    h.fake.st().die_at_create = Some(1);
    h.create("c").await;
    assert_eq!(h.wait("c", "").await, 1);
    assert_eq!(h.status("c", "").await, api::Status::STOPPED);
    assert_eq!(
        h.topics_until_exit_of("c/c").await,
        ["/tasks/create c", "/tasks/exit c/c"]
    );
}

#[tokio::test]
async fn kill_during_create_does_not_wait_and_create_completes() {
    let mut h = Harness::new();
    let gate = h.fake.gate("create", "c");
    let svc = h.svc.clone();
    let create = tokio::spawn(async move {
        svc.create(
            &ctx(),
            api::CreateTaskRequest {
                id: "c".into(),
                ..Default::default()
            },
        )
        .await
    });
    gate.reached().await;
    assert_eq!(code(h.kill("c", "", 9).await), Code::NOT_FOUND);
    assert_eq!(
        code(
            h.svc
                .create(
                    &ctx(),
                    api::CreateTaskRequest {
                        id: "c".into(),
                        ..Default::default()
                    }
                )
                .await
        ),
        Code::ALREADY_EXISTS,
        "a second Create of an id being created"
    );
    // Shutdown while a Create is under way does not end the shim.
    h.svc
        .shutdown(&ctx(), api::ShutdownRequest::default())
        .await
        .unwrap();
    gate.open();
    soon("create", create).await.unwrap().unwrap();
    h.kill("c", "", 9).await.unwrap();
    assert_eq!(h.wait("c", "").await, 137);
    h.delete("c", "").await.unwrap();
    let _ = h.topics();
}

#[tokio::test]
async fn a_failed_create_leaves_the_id_free() {
    let mut h = Harness::new();
    h.fake.fail("create", "c", "no such image");
    let r = h
        .svc
        .create(
            &ctx(),
            api::CreateTaskRequest {
                id: "c".into(),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(code(r), Code::INTERNAL);
    h.fake.st().failures.clear();
    h.create("c").await;
    assert_eq!(h.topics(), ["/tasks/create c"]);
}

#[tokio::test]
async fn delete_of_a_created_container_kills_its_init() {
    let mut h = Harness::new();
    let pid = h.create("c").await as i32;
    let d = h.delete("c", "").await.unwrap();
    assert_eq!(d.exit_status, 137);
    assert!(h.fake.st().signals.contains(&(pid, 9, false)));
    assert_eq!(
        h.topics(),
        ["/tasks/create c", "/tasks/exit c/c", "/tasks/delete c"]
    );
}

#[tokio::test]
async fn a_never_started_exec_can_be_deleted() {
    let mut h = Harness::new();
    h.create("c").await;
    h.start("c", "").await.unwrap();
    h.exec("c", "e").await.unwrap();
    h.delete("c", "e").await.unwrap();
    assert_eq!(code(h.start("c", "e").await), Code::NOT_FOUND);
    let _ = h.topics();
}

#[tokio::test]
async fn a_blocked_container_does_not_stall_its_neighbours() {
    let mut h = Harness::new();
    // Ten containers in one shim, as in a pod; "slow" is stuck in a hook of its Start, "frozen"
    // in its freezer.
    for i in 0..10 {
        h.create(&format!("c{i}")).await;
    }
    let slow_gate = h.fake.gate("start", "c0");
    let svc = h.svc.clone();
    let slow = tokio::spawn(async move {
        svc.start(
            &ctx(),
            api::StartRequest {
                id: "c0".into(),
                ..Default::default()
            },
        )
        .await
    });
    slow_gate.reached().await;
    h.start("c1", "").await.unwrap();
    let frozen_pid = h.state("c1", "").await.pid;
    let freeze_gate = h.fake.gate("freeze", &format!("pid{frozen_pid}"));
    let svc = h.svc.clone();
    let pause = tokio::spawn(async move {
        svc.pause(
            &ctx(),
            api::PauseRequest {
                id: "c1".into(),
                ..Default::default()
            },
        )
        .await
    });
    freeze_gate.reached().await;

    // Meanwhile, everything on the others goes at once (`soon` bounds each to 5 s; a shim-wide
    // lock would hold them until the gates open).
    let t0 = std::time::Instant::now();
    let pid = h.start("c2", "").await.unwrap() as i32;
    h.exec("c2", "e").await.unwrap();
    let epid = h.start("c2", "e").await.unwrap() as i32;
    h.fake.exit(epid, 5);
    assert_eq!(h.wait("c2", "e").await, 5);
    h.fake.exit(pid, 0);
    assert_eq!(h.wait("c2", "").await, 0);
    h.delete("c2", "").await.unwrap();
    for i in 3..10 {
        h.start(&format!("c{i}"), "").await.unwrap();
        h.status(&format!("c{i}"), "").await;
    }
    // Even the blocked containers answer State and Kill.
    assert_eq!(h.status("c0", "").await, api::Status::CREATED);
    assert_eq!(h.status("c1", "").await, api::Status::RUNNING);
    h.kill("c1", "", 15).await.unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "the neighbours took {:?}",
        t0.elapsed()
    );
    assert!(!slow.is_finished() && !pause.is_finished());
    slow_gate.open();
    freeze_gate.open();
    soon("the slow start", slow).await.unwrap().unwrap();
    soon("the slow pause", pause).await.unwrap().unwrap();
    assert_eq!(h.status("c1", "").await, api::Status::PAUSED);
    let _ = h.topics();
}

#[tokio::test]
async fn an_exit_during_a_slow_pause_is_recorded_and_the_pause_fails_cleanly() {
    let mut h = Harness::new();
    let pid = h.create("c").await as i32;
    h.start("c", "").await.unwrap();
    let gate = h.fake.gate("freeze", &format!("pid{pid}"));
    let svc = h.svc.clone();
    let pause = tokio::spawn(async move {
        svc.pause(
            &ctx(),
            api::PauseRequest {
                id: "c".into(),
                ..Default::default()
            },
        )
        .await
    });
    gate.reached().await;
    h.fake.exit(pid, 9);
    // The exit is recorded while the freeze is still stuck.
    assert_eq!(h.wait("c", "").await, 9);
    gate.open();
    assert_eq!(
        code(soon("pause", pause).await.unwrap()),
        Code::FAILED_PRECONDITION
    );
    assert_eq!(h.status("c", "").await, api::Status::STOPPED);
    h.delete("c", "").await.unwrap();
    let topics = h.topics();
    assert!(
        !topics.iter().any(|t| t.starts_with("/tasks/paused")),
        "{topics:?}"
    );
}

#[tokio::test]
async fn a_stale_exit_of_a_reused_pid_is_not_an_exec_exit() {
    let mut h = Harness::new();
    h.create("c").await;
    h.start("c", "").await.unwrap();
    // Some child of the shim nobody waits for (the `sh` around a `zfs` command) exits with the
    // pid the next exec's helper will get.
    let next_helper = h.fake.st().next_pid + 3;
    h.fake.exits.notify(next_helper, 0);
    h.exec("c", "e").await.unwrap();
    let epid = h.start("c", "e").await.unwrap() as i32;
    assert_eq!(h.fake.st().helper_of[&epid], next_helper);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        h.status("c", "e").await,
        api::Status::RUNNING,
        "the exec took a stale exit"
    );
    h.fake.exit(epid, 4);
    assert_eq!(h.wait("c", "e").await, 4);
    let _ = h.topics();
}

#[tokio::test]
async fn resize_without_a_terminal_is_accepted() {
    let h = Harness::new();
    h.create("c").await;
    let req = api::ResizePtyRequest {
        id: "c".into(),
        width: 80,
        height: 24,
        ..Default::default()
    };
    h.svc.resize_pty(&ctx(), req).await.unwrap();
}

#[tokio::test]
async fn events_are_typed_for_containerd() {
    let mut h = Harness::new();
    let pid = h.create("c").await;
    h.start("c", "").await.unwrap();
    let mut start = None;
    while let Ok(ev) = h.events.try_recv() {
        if let Some(s) = ev.message.as_ref().downcast_ref::<TaskStart>() {
            start = Some(s.clone());
        }
    }
    let start = start.expect("a /tasks/start event");
    assert_eq!((start.container_id.as_str(), start.pid), ("c", pid));
}
