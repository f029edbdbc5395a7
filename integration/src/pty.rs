//! A terminal for a test to type into, the way a person uses `ctr run -t`: the command runs as
//! the session leader of a new pty (its controlling terminal), the test writes keystrokes to
//! the master and reads what the terminal shows. Resizing the pty makes the kernel send
//! SIGWINCH to the command, as a terminal emulator does.

use std::ffi::CStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct PtySession {
    master: File,
    child: Child,
    /// Everything the terminal showed so far.
    seen: String,
}

fn check(ret: libc::c_int, what: &str) {
    if ret < 0 {
        panic!("pty: {what}: {}", std::io::Error::last_os_error());
    }
}

/// Opens a pty pair on the host: (master, slave).
fn open_pty(rows: u16, cols: u16) -> (File, OwnedFd) {
    // SAFETY: plain libc calls; every descriptor is checked and owned once.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        check(m, "posix_openpt");
        check(libc::grantpt(m), "grantpt");
        check(libc::unlockpt(m), "unlockpt");
        let mut buf = [0 as libc::c_char; 128];
        check(libc::ptsname_r(m, buf.as_mut_ptr(), buf.len()), "ptsname");
        let s = libc::open(
            CStr::from_ptr(buf.as_ptr()).as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        check(s, "open the pty's slave");
        let master = File::from_raw_fd(m);
        set_size(&master, rows, cols);
        (master, OwnedFd::from_raw_fd(s))
    }
}

fn set_size(master: &File, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize.
    check(
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) },
        "TIOCSWINSZ",
    );
}

impl PtySession {
    /// Starts `cmd` on a new terminal of `rows` x `cols`.
    pub fn spawn(mut cmd: Command, rows: u16, cols: u16) -> PtySession {
        let (master, slave) = open_pty(rows, cols);
        let out = slave.try_clone().expect("dup the pty slave");
        let err = slave.try_clone().expect("dup the pty slave");
        cmd.stdin(Stdio::from(slave))
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        // SAFETY: only async-signal-safe syscalls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start the command on a pty");
        // Reads time out instead of blocking the test forever.
        // SAFETY: fcntl on our descriptor.
        unsafe {
            let fl = libc::fcntl(master.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(master.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
        PtySession {
            master,
            child,
            seen: String::new(),
        }
    }

    /// Types `text` (use `\r` for Enter, as a keyboard sends it).
    pub fn send(&mut self, text: &str) {
        self.master
            .write_all(text.as_bytes())
            .expect("write to the pty");
    }

    /// Reads what the terminal shows until it contains `needle` after what `expect` already
    /// consumed, or panics after `limit` with everything seen. Returns the text up to and
    /// including the match.
    pub fn expect(&mut self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(at) = self.seen.find(needle) {
                let end = at + needle.len();
                let upto = self.seen[..end].to_string();
                self.seen.drain(..end);
                return upto;
            }
            if Instant::now() > deadline {
                panic!(
                    "the terminal did not show {needle:?} within {limit:?}; it showed:\n{}",
                    self.seen
                );
            }
            self.pump(50);
        }
    }

    /// Reads what is available within `ms`.
    fn pump(&mut self, ms: i32) {
        let mut pfd = libc::pollfd {
            fd: self.master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, ms) } <= 0 {
            return;
        }
        let mut buf = [0u8; 4096];
        match self.master.read(&mut buf) {
            Ok(n) if n > 0 => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            _ => std::thread::sleep(Duration::from_millis(ms as u64)),
        }
    }

    /// Resizes the terminal; the kernel signals SIGWINCH to the command.
    pub fn resize(&mut self, rows: u16, cols: u16) {
        set_size(&self.master, rows, cols);
    }

    /// Waits for the command to end (reading the terminal meanwhile), or kills it after
    /// `limit`. Returns its status, or None when it had to be killed.
    pub fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                self.pump(0);
                return Some(st);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            self.pump(50);
        }
    }

    /// Everything shown and not yet consumed by [`PtySession::expect`].
    pub fn rest(&self) -> &str {
        &self.seen
    }
}

impl Drop for PtySession {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
