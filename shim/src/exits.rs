//! Exit statuses of our child processes (LXC monitors, later attach helpers).
//!
//! containerd-shim's reaper waits for every child of the shim and publishes `(pid, status)`; this
//! table hands each status to whoever registered the pid, also when the exit arrived first.

use containerd_shim::monitor::{monitor_subscribe, Subject, Topic};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

#[derive(Default)]
struct Table {
    watchers: HashMap<i32, watch::Sender<Option<i32>>>,
    early: HashMap<i32, i32>,
}

#[derive(Clone, Default)]
pub struct Exits {
    table: Arc<Mutex<Table>>,
}

impl Exits {
    /// Subscribes to the reaper's exit events; call once, before any child is spawned.
    pub async fn start() -> Exits {
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
                    me.exited(pid, ev.exit_code);
                }
            }
        });
        exits
    }

    fn exited(&self, pid: i32, code: i32) {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        match t.watchers.remove(&pid) {
            Some(tx) => {
                let _ = tx.send(Some(code));
            }
            None => {
                // Not registered yet (a child that died at once), or not ours to track.
                if t.early.len() > 4096 {
                    t.early.clear();
                }
                t.early.insert(pid, code);
            }
        }
    }

    /// A receiver that holds `Some(status)` once `pid` has exited.
    pub fn watch(&self, pid: i32) -> watch::Receiver<Option<i32>> {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(code) = t.early.remove(&pid) {
            let (_tx, rx) = watch::channel(Some(code));
            return rx;
        }
        let (tx, rx) = watch::channel(None);
        t.watchers.insert(pid, tx);
        rx
    }
}

/// Waits until the receiver holds an exit status.
pub async fn wait_exit(rx: &mut watch::Receiver<Option<i32>>) -> i32 {
    loop {
        if let Some(code) = *rx.borrow_and_update() {
            return code;
        }
        if rx.changed().await.is_err() {
            // Sender dropped without a status: the table was torn down.
            return rx.borrow().unwrap_or(255);
        }
    }
}
