//! The shim's view of one container ([`Instance`]) and of each of its processes ([`Process`]:
//! the init and every exec, one type).
//!
//! Locks, from outside in (never taken in the other order):
//!
//! | lock | held by | never held across |
//! | --- | --- | --- |
//! | the service's map (std) | lookups, insert, remove | anything else |
//! | `Instance::lifecycle` (async) | Start of the init, Pause, Resume, Delete of the container | nothing of another container |
//! | `Process::order` (async) | a process's Start and the recording of its exit | the exit wait itself |
//! | `Process::state` (std) | reading or changing status, pid, exit | any await or I/O |
//!
//! Slow work (hooks, the freezer, an exec helper, `zfs`) runs under at most the first two of the
//! container it concerns: another container's requests and exits never wait for it.

use super::backend::Stdio;
use super::state::{Op, Status};
use crate::console::Console;
use crate::error::Error;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use time::OffsetDateTime;
use tokio::sync::watch;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exited {
    pub status: u32,
    pub at: OffsetDateTime,
}

pub struct ProcState {
    pub status: Status,
    /// The process's host pid; 0 for an exec not started yet.
    pub pid: i32,
    pub exited: Option<Exited>,
    pub console: Option<Console>,
}

/// A container's init or one of its exec processes.
pub struct Process {
    /// The container's id.
    pub container_id: String,
    /// Empty for the init.
    pub exec_id: String,
    pub stdio: Stdio,
    /// An exec's process spec, as its helper applies it (`None` for the init).
    pub spec: Option<lxcri_init::InitConfig>,
    state: Mutex<ProcState>,
    /// Orders a Start before the exit it may cause: the exit is recorded, and `/tasks/exit`
    /// queued, only once the Start that produced `/tasks/start` is through.
    pub order: tokio::sync::Mutex<()>,
    exit_tx: watch::Sender<Option<Exited>>,
}

impl Process {
    pub fn new(
        container_id: &str,
        exec_id: &str,
        pid: i32,
        stdio: Stdio,
        spec: Option<lxcri_init::InitConfig>,
    ) -> Process {
        Process {
            container_id: container_id.to_string(),
            exec_id: exec_id.to_string(),
            stdio,
            spec,
            state: Mutex::new(ProcState {
                status: Status::Created,
                pid,
                exited: None,
                console: None,
            }),
            order: tokio::sync::Mutex::new(()),
            exit_tx: watch::channel(None).0,
        }
    }

    pub fn is_init(&self) -> bool {
        self.exec_id.is_empty()
    }

    /// containerd's id of the process: the container's id for the init, else the exec id.
    pub fn id(&self) -> &str {
        if self.is_init() {
            &self.container_id
        } else {
            &self.exec_id
        }
    }

    /// The process in words, for errors and logs: "container web", "exec e1 in container web".
    pub fn what(&self) -> String {
        if self.is_init() {
            format!("container {}", self.container_id)
        } else {
            format!("exec {} in container {}", self.exec_id, self.container_id)
        }
    }

    pub fn state(&self) -> MutexGuard<'_, ProcState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn status(&self) -> Status {
        self.state().status
    }

    pub fn pid(&self) -> i32 {
        self.state().pid
    }

    /// Checks that `op` is allowed now.
    pub fn check(&self, op: Op) -> Result<Status, Error> {
        self.state().status.check(op, &self.what())
    }

    /// Moves the process on by `op`, if its state allows it.
    pub fn apply(&self, op: Op) -> Result<Status, Error> {
        let what = self.what();
        let mut s = self.state();
        let next = s.status.check(op, &what)?;
        s.status = next;
        Ok(next)
    }

    /// Records the exit; `then` runs under the state lock once it is recorded (to queue the
    /// exit event in order). Returns false when the process had already exited or was deleted.
    pub fn set_exited(&self, status: u32, then: impl FnOnce(&ProcState)) -> bool {
        let mut s = self.state();
        let Some(next) = s.status.exited() else {
            return false;
        };
        let exited = Exited {
            status,
            at: OffsetDateTime::now_utc(),
        };
        s.status = next;
        s.exited = Some(exited);
        then(&s);
        self.exit_tx.send_replace(Some(exited));
        true
    }

    /// Waits until the process has exited (at once when it already has).
    pub async fn wait(&self) -> Exited {
        let mut rx = self.exit_tx.subscribe();
        loop {
            if let Some(e) = *rx.borrow_and_update() {
                return e;
            }
            // The sender lives as long as `self`, which the caller holds.
            let _ = rx.changed().await;
        }
    }

    /// The exit, once there is one.
    pub fn exited(&self) -> Option<Exited> {
        self.state().exited
    }
}

/// One container held by the shim.
pub struct Instance<H> {
    pub id: String,
    pub bundle: String,
    /// What the backend keeps of it.
    pub handle: Arc<H>,
    pub init: Arc<Process>,
    execs: Mutex<HashMap<String, Arc<Process>>>,
    /// Serialises the container's own lifecycle requests (see the module's table).
    pub lifecycle: tokio::sync::Mutex<()>,
}

impl<H> Instance<H> {
    pub fn new(id: &str, bundle: &str, handle: H, init: Process) -> Instance<H> {
        Instance {
            id: id.to_string(),
            bundle: bundle.to_string(),
            handle: Arc::new(handle),
            init: Arc::new(init),
            execs: Mutex::new(HashMap::new()),
            lifecycle: tokio::sync::Mutex::new(()),
        }
    }

    fn execs(&self) -> MutexGuard<'_, HashMap<String, Arc<Process>>> {
        self.execs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The process an exec id names ("" is the init).
    pub fn process(&self, exec_id: &str) -> Result<Arc<Process>, Error> {
        if exec_id.is_empty() {
            return Ok(self.init.clone());
        }
        self.execs().get(exec_id).cloned().ok_or_else(|| {
            Error::NotFound(format!(
                "exec process {exec_id} not found in container {}",
                self.id
            ))
        })
    }

    /// Adds an exec process; AlreadyExists when its id is taken.
    pub fn add_exec(&self, p: Process) -> Result<Arc<Process>, Error> {
        let mut execs = self.execs();
        if execs.contains_key(&p.exec_id) {
            return Err(Error::AlreadyExists(format!(
                "exec {} already exists in container {}",
                p.exec_id, self.id
            )));
        }
        let p = Arc::new(p);
        execs.insert(p.exec_id.clone(), p.clone());
        Ok(p)
    }

    pub fn remove_exec(&self, exec_id: &str) {
        self.execs().remove(exec_id);
    }

    /// The exec processes, with their ids.
    pub fn exec_list(&self) -> Vec<Arc<Process>> {
        self.execs().values().cloned().collect()
    }
}
