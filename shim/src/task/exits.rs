//! Exit statuses of the shim's own helper children: the LXC monitor of each container and the
//! helper of each exec. Both exit with the exact status of the process they stand for.
//!
//! containerd-shim's reaper waits for every child of the shim (helpers, the `sh` around `zfs`,
//! hook runners, logging binaries) and reports `(pid, status)`. A pid alone does not name a
//! process for long: once pids wrap around, a new helper can get the pid of a child that exited
//! earlier. So an exit is accepted only by someone who was listening before the child existed:
//!
//! 1. [`Exits::window`] opens a window *before* the spawn; it collects every exit from then on.
//! 2. After the spawn, [`Window::claim`] names the helper's pid: an exit the window already saw
//!    for it is taken (the helper died at once), else a watcher waits for the next one.
//! 3. An exit nobody claimed is dropped, never kept for a later process with the same pid.
//!
//! A watcher also remembers its child's start time (`/proc/PID/stat`): an exit reported for its
//! pid while that very child is still there (alive or a zombie not yet reaped) belongs to an
//! older process and is ignored. What remains is the case the runc shims leave open too: an
//! exit reaped before the spawn but delivered after a child that lived only microseconds.

use containerd_shim::monitor::{monitor_subscribe, Subject, Topic};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

struct Watcher {
    tx: watch::Sender<Option<i32>>,
    /// The child's start time (clock ticks since boot), when it could be read at claim time.
    started: Option<u64>,
}

#[derive(Default)]
struct Table {
    watchers: HashMap<i32, Watcher>,
    /// Open windows and the exits each has seen, in order.
    windows: HashMap<u64, Vec<(i32, i32)>>,
    next_window: u64,
}

/// The shim's table of helper exits. Cheap to clone; every clone is the same table.
#[derive(Clone, Default)]
pub struct Exits {
    table: Arc<Mutex<Table>>,
}

impl Exits {
    /// A table fed by containerd-shim's reaper; call once, before any child is spawned.
    pub async fn from_reaper() -> Exits {
        let exits = Exits::default();
        let mut sub = match monitor_subscribe(Topic::Pid).await {
            Ok(s) => s,
            Err(e) => {
                log::error!("cannot subscribe to child exits: {e}");
                return exits;
            }
        };
        let me = exits.clone();
        tokio::spawn(async move {
            while let Some(ev) = sub.rx.recv().await {
                if let Subject::Pid(pid) = ev.subject {
                    me.notify(pid, ev.exit_code);
                }
            }
        });
        exits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A child `pid` exited with `status` (the reaper's report).
    pub fn notify(&self, pid: i32, status: i32) {
        let mut t = self.lock();
        if let Some(w) = t.watchers.get(&pid) {
            if w.started.is_some() && start_time(pid) == w.started {
                // The watched child is still there: this exit is an older process's.
                log::debug!("exit of an earlier process with pid {pid} ignored");
            } else if let Some(w) = t.watchers.remove(&pid) {
                w.tx.send_replace(Some(status));
                return;
            }
        }
        for seen in t.windows.values_mut() {
            seen.push((pid, status));
        }
    }

    /// Opens a window: call it before spawning a child whose exit you want.
    pub fn window(&self) -> Window {
        let mut t = self.lock();
        let id = t.next_window;
        t.next_window += 1;
        t.windows.insert(id, Vec::new());
        Window {
            exits: self.clone(),
            id,
        }
    }

    /// How many exits are waited for (watchers) and windows open: for tests.
    #[cfg(test)]
    pub fn pending(&self) -> (usize, usize) {
        let t = self.lock();
        (t.watchers.len(), t.windows.len())
    }
}

/// Exits seen since before a spawn; see the module's doc. Dropping it closes it.
pub struct Window {
    exits: Exits,
    id: u64,
}

impl Window {
    /// The exit of `pid`, a child spawned while this window was open.
    pub fn claim(self, pid: i32) -> ExitWatch {
        let mut t = self.exits.lock();
        let seen = t.windows.remove(&self.id).unwrap_or_default();
        let started = start_time(pid);
        // The child's own exit is the last one reported for its pid, and only once the child
        // is gone from /proc (reaped).
        let early = seen
            .iter()
            .rev()
            .find(|(p, _)| *p == pid)
            .map(|&(_, status)| status)
            .filter(|_| started.is_none());
        let (tx, rx) = watch::channel(early);
        if early.is_none() {
            t.watchers.insert(pid, Watcher { tx, started });
        }
        ExitWatch(rx)
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        self.exits.lock().windows.remove(&self.id);
    }
}

/// The exit status of one claimed child, once it comes.
#[derive(Clone)]
pub struct ExitWatch(watch::Receiver<Option<i32>>);

impl ExitWatch {
    /// Waits for the exit status. 255 when the table was torn down without one.
    pub async fn wait(&mut self) -> i32 {
        loop {
            if let Some(code) = *self.0.borrow_and_update() {
                return code;
            }
            if self.0.changed().await.is_err() {
                return self.0.borrow().unwrap_or(255);
            }
        }
    }
}

/// Field 22 of `/proc/PID/stat`: when the process started, in clock ticks since boot. `None`
/// when there is no such process (or it was reaped).
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain anything: skip past it.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pids above the kernel's limit (2^22): never a real process.
    const P: i32 = 5_000_001;

    #[tokio::test]
    async fn an_exit_nobody_claimed_is_never_handed_to_a_later_process() {
        let exits = Exits::default();
        // A helper nobody waits for (the `sh` around `zfs`) exits with pid P.
        exits.notify(P, 1);
        // Later, after pids wrapped, a new child gets pid P.
        let w = exits.window();
        let mut watch = w.claim(P);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), watch.wait())
                .await
                .is_err(),
            "the stale status was handed out"
        );
        exits.notify(P, 42);
        assert_eq!(watch.wait().await, 42);
        assert_eq!(exits.pending(), (0, 0));
    }

    #[tokio::test]
    async fn an_exit_before_the_claim_is_kept_by_the_window() {
        let exits = Exits::default();
        let w = exits.window();
        exits.notify(P + 1, 3); // someone else's child
        exits.notify(P, 7); // ours, dead before the claim
        let mut watch = w.claim(P);
        assert_eq!(watch.wait().await, 7);
        assert_eq!(exits.pending(), (0, 0));
    }

    #[tokio::test]
    async fn the_last_exit_of_a_pid_in_the_window_is_the_childs() {
        let exits = Exits::default();
        let w = exits.window();
        exits.notify(P, 1); // an older process with the same pid, reaped before the spawn
        exits.notify(P, 9); // the child itself
        assert_eq!(w.claim(P).wait().await, 9);
    }

    #[tokio::test]
    async fn a_dropped_window_collects_nothing() {
        let exits = Exits::default();
        drop(exits.window());
        exits.notify(P, 1);
        assert_eq!(exits.pending(), (0, 0));
    }

    #[tokio::test]
    async fn an_exit_reported_for_a_live_child_is_ignored() {
        let exits = Exits::default();
        let w = exits.window();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let mut watch = w.claim(pid);
        // An exit for this pid arrives while the child still runs: an older process's.
        exits.notify(pid, 1);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), watch.wait())
                .await
                .is_err(),
            "an exit was accepted while the child still ran"
        );
        child.kill().unwrap();
        let status = child.wait().unwrap();
        exits.notify(pid, 128 + 9);
        assert_eq!(watch.wait().await, 137, "{status:?}");
    }

    #[test]
    fn start_time_reads_past_a_command_name_with_blanks_and_parens() {
        assert!(start_time(std::process::id() as i32).is_some());
        assert!(start_time(P).is_none());
    }
}
