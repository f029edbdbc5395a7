//! The task service: what containerd's Task API (task.v2) does to the containers this shim
//! holds, and the rules that keep it right over weeks.
//!
//! | module | what |
//! | --- | --- |
//! | `service` | the Task API: each request looked up, checked, done, its event queued |
//! | `state` | one process's state machine (created, running, paused, stopped, deleted) |
//! | `instance` | one container and its processes (init and execs), and who holds which lock |
//! | `backend` | what the service asks of the host (LXC, ZFS, cgroups), behind a trait |
//! | `exits` | helper exits, accepted only by whoever listened before the spawn |
//! | `events` | the event queue to containerd: in order, with a deadline, never blocking |
//!
//! `docs/architecture.md` shows one container's life and one exec's through these.
pub mod backend;
pub mod events;
pub mod exits;
pub mod instance;
pub mod service;
pub mod state;
#[cfg(test)]
mod tests;

pub use service::Service;
