//! The shim's side of a process's terminal.
//!
//! The process (the container's init, or an exec's attached child) opens its pty inside the
//! container and sends the master end over a socket pair whose other end is its stdin
//! (`lxcri_init::terminal`). The shim keeps the master: two threads copy containerd's stdin
//! FIFO to it and its output to containerd's stdout FIFO (stderr goes to the terminal too, as
//! with runc), and ResizePty sets its window size. Threads, not async tasks: a pty master and
//! FIFOs are plain blocking descriptors, and a console is long-lived.

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often the copy threads look at the stop flag while idle.
const IDLE_POLL_MS: i32 = 250;

/// A socket pair for the hand-over: (the shim's end, the process's stdin).
pub fn socket_pair() -> Result<(OwnedFd, OwnedFd)> {
    let (a, b) =
        std::os::unix::net::UnixStream::pair().map_err(|e| Error::io("terminal: socketpair", e))?;
    Ok((a.into(), b.into()))
}

/// Waits (up to `limit`, while `alive` says the process may still send it) for the pty master
/// the process sends on `sock`.
pub fn receive_master(
    sock: &OwnedFd,
    limit: Duration,
    alive: impl Fn() -> bool,
    what: &str,
) -> Result<OwnedFd> {
    let deadline = Instant::now() + limit;
    loop {
        if poll(sock.as_raw_fd(), libc::POLLIN, 20).is_some() {
            return lxcri_init::terminal::recv_fd(sock.as_raw_fd())
                .map_err(|e| Error::Internal(format!("{what}: {e}")));
        }
        if !alive() {
            // One last look: it may have sent the pty just before it ended.
            if poll(sock.as_raw_fd(), libc::POLLIN, 0).is_some() {
                continue;
            }
            return Err(Error::Internal(format!(
                "{what}: the process ended before handing over its terminal (see its output)"
            )));
        }
        if Instant::now() > deadline {
            return Err(Error::Internal(format!(
                "{what}: no terminal arrived within {} ms",
                limit.as_millis()
            )));
        }
    }
}

/// A process's terminal, held by the shim.
pub struct Console {
    master: Arc<File>,
    stop: Arc<AtomicBool>,
    stdin_stop: Arc<AtomicBool>,
    drained: watch::Receiver<bool>,
}

impl Console {
    /// Starts copying between `master` and containerd's FIFOs (`stdin` may be empty: no input).
    pub fn start(master: OwnedFd, stdin: &str, stdout: &str, what: &str) -> Result<Console> {
        let master = Arc::new(File::from(master));
        let stop = Arc::new(AtomicBool::new(false));
        let stdin_stop = Arc::new(AtomicBool::new(false));
        let out = crate::container::open_stdio(stdout, true)?;
        let (tx, drained) = watch::channel(false);
        {
            let (master, stop) = (master.clone(), stop.clone());
            std::thread::Builder::new()
                .name("console-out".into())
                .spawn(move || {
                    copy_output(&master, out, &stop);
                    let _ = tx.send(true);
                })
                .map_err(|e| Error::Internal(format!("{what}: terminal thread: {e}")))?;
        }
        if !stdin.is_empty() {
            let input = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(stdin)
                .map_err(|e| Error::io(format!("{what}: opening stdin {stdin}"), e))?;
            let (master, stop) = (master.clone(), stdin_stop.clone());
            std::thread::Builder::new()
                .name("console-in".into())
                .spawn(move || copy_input(input, &master, &stop))
                .map_err(|e| Error::Internal(format!("{what}: terminal thread: {e}")))?;
        }
        Ok(Console {
            master,
            stop,
            stdin_stop,
            drained,
        })
    }

    /// ResizePty: the terminal's new window size.
    pub fn resize(&self, width: u32, height: u32) -> Result<()> {
        let ws = libc::winsize {
            ws_row: height.min(u16::MAX as u32) as u16,
            ws_col: width.min(u16::MAX as u32) as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer.
        if unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } != 0 {
            return Err(Error::io(
                "resizing the terminal",
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// CloseIO on stdin: no more input is copied.
    pub fn close_stdin(&self) {
        self.stdin_stop.store(true, Ordering::Relaxed);
    }

    /// Resolves when the process's output has all been copied (its side of the pty is closed).
    pub fn drained(&self) -> watch::Receiver<bool> {
        self.drained.clone()
    }
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Console(master fd {})", self.master.as_raw_fd())
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.stdin_stop.store(true, Ordering::Relaxed);
    }
}

fn poll(fd: i32, events: i16, ms: i32) -> Option<i16> {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    (n > 0).then_some(pfd.revents)
}

/// Master → stdout until the process's side is closed (EIO) or the console is dropped.
fn copy_output(master: &File, mut out: File, stop: &AtomicBool) {
    let mut buf = [0u8; 32 * 1024];
    while !stop.load(Ordering::Relaxed) {
        let Some(revents) = poll(master.as_raw_fd(), libc::POLLIN, IDLE_POLL_MS) else {
            continue;
        };
        if revents & libc::POLLIN == 0 && revents & (libc::POLLHUP | libc::POLLERR) != 0 {
            return;
        }
        match (&*master).read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if out.write_all(&buf[..n]).is_err() {
                    // Nobody reads any more: keep draining so the process never blocks.
                    continue;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return, // EIO: every slave descriptor is closed
        }
    }
}

/// stdin → master until the writer closes its end, CloseIO, or the console is dropped.
fn copy_input(input: File, master: &File, stop: &AtomicBool) {
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let Some(revents) = poll(input.as_raw_fd(), libc::POLLIN, IDLE_POLL_MS) else {
            continue;
        };
        if revents & libc::POLLIN == 0 {
            if revents & libc::POLLHUP != 0 {
                return; // the writer went away
            }
            continue;
        }
        match (&input).read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if (&*master).write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}
