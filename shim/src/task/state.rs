//! The life of one process (a container's init or an exec) as a state machine:
//!
//! ```text
//!   created ──start──▶ running ──pause──▶ paused
//!      │                 │  ◀──resume──    │
//!      │                exit              exit
//!      └──────exit──────▶ stopped ◀────────┘
//!                           │
//!   created ──delete──▶ deleted ◀──delete── stopped
//! ```
//!
//! Every request checks its transition here; a request in the wrong state gets the error code
//! the runc shim gives: FailedPrecondition for a state that does not allow it, NotFound for a
//! process that is already gone. Pure: no I/O, unit-tested below.

use crate::error::Error;
use containerd_shim::api;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
    Deleted,
}

/// What a request wants to do to a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Start,
    Pause,
    Resume,
    /// Send a signal (Kill).
    Signal,
    /// Add an exec process to a container whose init is in this state.
    Exec,
    /// Delete the process (its exit, for a created one, is forced first).
    Delete,
}

impl Status {
    /// containerd's status for State and the like.
    pub fn to_api(self) -> api::Status {
        match self {
            Status::Created => api::Status::CREATED,
            Status::Running => api::Status::RUNNING,
            Status::Paused => api::Status::PAUSED,
            Status::Stopped | Status::Deleted => api::Status::STOPPED,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
            Status::Deleted => "deleted",
        }
    }

    /// Checks that `op` is allowed in this state; `what` names the process in the error
    /// ("container web", "exec e1 in container web"). Returns the state the operation leads to
    /// once it has succeeded (Signal and Exec leave the state as it is).
    pub fn check(self, op: Op, what: &str) -> Result<Status, Error> {
        use Op::*;
        use Status::*;
        let refuse = |why: &str| Err(Error::FailedPrecondition(format!("{what} {why}")));
        match (op, self) {
            (_, Deleted) => Err(Error::NotFound(format!("{what} was deleted"))),
            (Start, Created) => Ok(Running),
            (Start, Running | Paused) => refuse("is already started"),
            (Start, Stopped) => refuse("has stopped: it cannot be started again"),
            (Pause, Running) => Ok(Paused),
            (Pause, Paused) => refuse("is already paused"),
            (Pause, Created | Stopped) => refuse(&format!(
                "is {}: only a running one can be paused",
                self.name()
            )),
            (Resume, Paused) => Ok(Running),
            (Resume, _) => refuse(&format!(
                "is {}: only a paused one can be resumed",
                self.name()
            )),
            (Signal, Stopped) => Err(Error::NotFound(format!("{what}: process already finished"))),
            (Signal, s) => Ok(s),
            (Exec, Created | Running) => Ok(self),
            (Exec, Paused) => refuse("is paused: resume it before exec"),
            (Exec, Stopped) => refuse("is stopped, not running: cannot exec into it"),
            (Delete, Created | Stopped) => Ok(Deleted),
            (Delete, Running | Paused) => refuse(&format!(
                "is {}: stop it first (ctr task kill), then delete",
                self.name()
            )),
        }
    }

    /// The state after the process exited; `None` when an exit is not expected here (deleted:
    /// the exit was already accounted for).
    pub fn exited(self) -> Option<Status> {
        match self {
            Status::Created | Status::Running | Status::Paused => Some(Status::Stopped),
            Status::Stopped | Status::Deleted => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Op::*;
    use super::Status::*;
    use super::*;

    fn code(r: Result<Status, Error>) -> Result<Status, &'static str> {
        r.map_err(|e| match e {
            Error::NotFound(_) => "NotFound",
            Error::FailedPrecondition(_) => "FailedPrecondition",
            _ => "other",
        })
    }

    #[test]
    fn every_transition() {
        // (state, op) -> the state it leads to, or the error code.
        let table: &[(Status, Op, Result<Status, &str>)] = &[
            (Created, Start, Ok(Running)),
            (Running, Start, Err("FailedPrecondition")),
            (Paused, Start, Err("FailedPrecondition")),
            (Stopped, Start, Err("FailedPrecondition")),
            (Deleted, Start, Err("NotFound")),
            (Running, Pause, Ok(Paused)),
            (Created, Pause, Err("FailedPrecondition")),
            (Paused, Pause, Err("FailedPrecondition")),
            (Stopped, Pause, Err("FailedPrecondition")),
            (Paused, Resume, Ok(Running)),
            (Running, Resume, Err("FailedPrecondition")),
            (Created, Resume, Err("FailedPrecondition")),
            (Stopped, Resume, Err("FailedPrecondition")),
            (Created, Signal, Ok(Created)),
            (Running, Signal, Ok(Running)),
            (Paused, Signal, Ok(Paused)),
            (Stopped, Signal, Err("NotFound")),
            (Deleted, Signal, Err("NotFound")),
            (Created, Exec, Ok(Created)),
            (Running, Exec, Ok(Running)),
            (Paused, Exec, Err("FailedPrecondition")),
            (Stopped, Exec, Err("FailedPrecondition")),
            (Created, Delete, Ok(Deleted)),
            (Stopped, Delete, Ok(Deleted)),
            (Running, Delete, Err("FailedPrecondition")),
            (Paused, Delete, Err("FailedPrecondition")),
            (Deleted, Delete, Err("NotFound")),
        ];
        for (state, op, want) in table {
            assert_eq!(
                code(state.check(*op, "container c")),
                *want,
                "{state:?} {op:?}"
            );
        }
    }

    #[test]
    fn exits() {
        assert_eq!(Created.exited(), Some(Stopped));
        assert_eq!(Running.exited(), Some(Stopped));
        assert_eq!(Paused.exited(), Some(Stopped));
        assert_eq!(Stopped.exited(), None);
        assert_eq!(Deleted.exited(), None);
    }

    #[test]
    fn errors_name_the_process_and_the_fix() {
        let e = Running.check(Delete, "container web").unwrap_err();
        assert_eq!(
            e.to_string(),
            "container web is running: stop it first (ctr task kill), then delete"
        );
        let e = Stopped
            .check(Signal, "exec e1 in container web")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "exec e1 in container web: process already finished"
        );
    }
}
