//! Terminals (`ctr run -t`, `ctr task exec -t`, `tty: true`).
//!
//! The pty is made inside the container, in its own devpts instance, so that `tty` names a
//! device the container can see. The process that will exec the user's program (the init, or
//! the attached child of an exec) finds a unix socket on its stdin, put there by the shim: it
//! opens the pty, hands the master end to the shim over that socket (`SCM_RIGHTS`), makes the
//! slave end its controlling terminal and its stdin, stdout and stderr. The shim then copies
//! between the master and containerd's FIFOs and applies ResizePty to the master.
//!
//! Both ends of the hand-over live here ([`send_fd`], [`recv_fd`]), so the shim and the init
//! agree on it by construction.

use crate::apply::{errno, last_err, Res};
use crate::io_text;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// The byte sent along with the descriptor (a message must carry at least one).
const TAG: u8 = b'T';

/// Opens a new pty in the container's devpts instance. Returns (master, slave).
pub fn open_pty() -> Res<(OwnedFd, OwnedFd)> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // /dev/pts/ptmx is the container's own instance; /dev/ptmx may be a symlink or bind of it.
    let mut master = -1;
    for path in [c"/dev/pts/ptmx", c"/dev/ptmx"] {
        // SAFETY: a valid NUL-terminated path.
        master = unsafe { libc::open(path.as_ptr(), flags) };
        if master >= 0 {
            break;
        }
    }
    if master < 0 {
        return Err(format!(
            "terminal: open /dev/pts/ptmx: {}: the spec must mount devpts on /dev/pts for a terminal",
            last_err()
        ));
    }
    // SAFETY: a descriptor we just opened and own.
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    let fd = raw(&master);
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK takes a pointer to an int.
    if unsafe { libc::ioctl(fd, libc::TIOCSPTLCK, &unlock) } != 0 {
        return Err(format!("terminal: unlock the pty: {}", last_err()));
    }
    // SAFETY: TIOCGPTPEER takes open flags and returns a new descriptor.
    let slave = unsafe { libc::ioctl(fd, libc::TIOCGPTPEER, flags) };
    let slave = if slave >= 0 {
        slave
    } else {
        // Kernels before 4.13: open the slave by its number.
        let mut n: libc::c_uint = 0;
        // SAFETY: TIOCGPTN writes an unsigned int.
        if unsafe { libc::ioctl(fd, libc::TIOCGPTN, &mut n) } != 0 {
            return Err(format!("terminal: pty number: {}", last_err()));
        }
        let path = std::ffi::CString::new(format!("/dev/pts/{n}")).expect("no NUL");
        // SAFETY: a valid path.
        let s = unsafe { libc::open(path.as_ptr(), flags) };
        if s < 0 {
            return Err(format!("terminal: open /dev/pts/{n}: {}", last_err()));
        }
        s
    };
    // SAFETY: a descriptor we own.
    Ok((master, unsafe { OwnedFd::from_raw_fd(slave) }))
}

fn raw(fd: &OwnedFd) -> RawFd {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd()
}

/// Sends `fd` over the unix socket `sock` with `SCM_RIGHTS`.
pub fn send_fd(sock: RawFd, fd: RawFd) -> Res<()> {
    let mut byte = [TAG];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr() as *mut libc::c_void,
        iov_len: 1,
    };
    // Room for one descriptor, aligned as cmsghdr requires.
    let mut space = [0u64; 8];
    // SAFETY: msghdr is plain data; the control buffer is large enough for one descriptor
    // (CMSG_SPACE(4) = 24 bytes on 64-bit) and outlives the sendmsg call.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = space.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut RawFd, fd);
        loop {
            if libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) >= 0 {
                return Ok(());
            }
            let e = errno();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(format!(
                    "terminal: hand the pty to the shim: {}",
                    io_text(&e)
                ));
            }
        }
    }
}

/// Receives one descriptor sent by [`send_fd`] on `sock`. Blocks; poll `sock` first to bound
/// the wait.
pub fn recv_fd(sock: RawFd) -> Res<OwnedFd> {
    let mut byte = [0u8];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr() as *mut libc::c_void,
        iov_len: 1,
    };
    let mut space = [0u64; 8];
    // SAFETY: as in send_fd; the kernel fills at most msg_controllen bytes of `space`, and the
    // descriptor is read only from a SCM_RIGHTS message of the right length.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = space.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = std::mem::size_of_val(&space) as _;
        let n = loop {
            let n = libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC);
            if n >= 0 || errno().raw_os_error() != Some(libc::EINTR) {
                break n;
            }
        };
        if n < 0 {
            return Err(format!("terminal: receive the pty: {}", last_err()));
        }
        if n == 0 {
            return Err(
                "terminal: the process ended before handing over its pty (see its stderr)".into(),
            );
        }
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null()
            || (*cmsg).cmsg_level != libc::SOL_SOCKET
            || (*cmsg).cmsg_type != libc::SCM_RIGHTS
            || ((*cmsg).cmsg_len as usize)
                < libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize
        {
            return Err("terminal: a message without a pty descriptor arrived".into());
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const RawFd);
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// In the process that will exec the user's program, with the shim's socket on `sock`: opens
/// a pty, sends its master to the shim, and makes the slave the controlling terminal and fds
/// 0, 1 and 2 (the socket on `sock` is closed when it is one of them). The slave is owned by
/// `uid`, as login does, and gets the first window size `size` (rows, columns) when known.
pub fn attach_terminal(sock: RawFd, uid: u32, size: Option<(u16, u16)>) -> Res<()> {
    let (master, slave) = open_pty()?;
    let s = raw(&slave);
    if let Some((rows, cols)) = size {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize.
        if unsafe { libc::ioctl(s, libc::TIOCSWINSZ, &ws) } != 0 {
            return Err(format!(
                "terminal: set its size {rows}x{cols}: {}",
                last_err()
            ));
        }
    }
    // SAFETY: plain syscalls on descriptors we own.
    unsafe {
        if uid != 0 && libc::fchown(s, uid, u32::MAX) != 0 {
            return Err(format!(
                "terminal: chown the pty to uid {uid}: {}",
                last_err()
            ));
        }
    }
    send_fd(sock, raw(&master))?;
    drop(master);
    // SAFETY: plain syscalls. setsid fails when the process already leads a group or session
    // (the container's init may); TIOCSCTTY then tells whether it can take the terminal.
    unsafe {
        libc::setsid();
        if libc::ioctl(s, libc::TIOCSCTTY, 0) != 0 {
            return Err(format!(
                "terminal: make the pty the controlling terminal: {}",
                last_err()
            ));
        }
        for target in 0..3 {
            if libc::dup2(s, target) < 0 {
                return Err(format!(
                    "terminal: dup the pty onto fd {target}: {}",
                    last_err()
                ));
            }
        }
    }
    if s > 2 {
        drop(slave);
    } else {
        std::mem::forget(slave);
    }
    if sock > 2 {
        // SAFETY: the caller's socket, no longer needed.
        unsafe { libc::close(sock) };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{recv_fd, send_fd};
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_descriptor_crosses_the_socket() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut r, w) = std::io::pipe().unwrap();
        send_fd(a.as_raw_fd(), w.as_raw_fd()).unwrap();
        drop(w);
        let got = recv_fd(b.as_raw_fd()).unwrap();
        std::fs::File::from(got).write_all(b"through").unwrap();
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "through");
    }

    #[test]
    fn a_closed_peer_is_an_error_not_a_hang() {
        let (a, b) = UnixStream::pair().unwrap();
        drop(a);
        let e = recv_fd(b.as_raw_fd()).unwrap_err();
        assert!(e.contains("ended before handing over"), "{e}");
    }
}
