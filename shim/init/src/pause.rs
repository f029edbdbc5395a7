//! lxcri-pause: the process of a Kubernetes pod sandbox (the CRI plugin's "sandbox image").
//!
//! It holds the pod's namespaces open: it sleeps in pause(2), reaps any child that is reparented
//! to it (as PID 1 of a pod that shares its process namespace), and exits 0 on SIGINT or SIGTERM.
//! Static, no allocation after start, nothing but libc.

use std::io::Write;

extern "C" fn on_stop(_sig: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(0) }
}

extern "C" fn on_child(_sig: libc::c_int) {
    // Reap every child that has ended; waitpid is async-signal-safe. errno is saved because
    // the interrupted code (pause) may look at it.
    // SAFETY: __errno_location returns this thread's errno; waitpid has no preconditions.
    unsafe {
        let errno = *libc::__errno_location();
        while libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) > 0 {}
        *libc::__errno_location() = errno;
    }
}

fn install(sig: libc::c_int, handler: extern "C" fn(libc::c_int)) -> std::io::Result<()> {
    // SAFETY: a zeroed sigaction with a plain handler is valid; the handlers only call
    // async-signal-safe functions.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as usize;
        sa.sa_flags = libc::SA_RESTART
            | if sig == libc::SIGCHLD {
                libc::SA_NOCLDSTOP
            } else {
                0
            };
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("-v") {
        println!("lxcri-pause {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    for (sig, handler) in [
        (libc::SIGINT, on_stop as extern "C" fn(libc::c_int)),
        (libc::SIGTERM, on_stop),
        (libc::SIGCHLD, on_child),
    ] {
        if let Err(e) = install(sig, handler) {
            let _ = writeln!(
                std::io::stderr(),
                "lxcri-pause: cannot install the handler of signal {sig}: {e}"
            );
            std::process::exit(1);
        }
    }
    loop {
        // SAFETY: pause has no preconditions; it returns after each handled signal.
        unsafe { libc::pause() };
    }
}
