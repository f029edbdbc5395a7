//! Terminals: `ctr run -t` and `ctr task exec -t` on lxcri, typed into from a real pty the way a
//! person uses them, on containerd 1.6, 1.7 and 2.1. The container's process gets a pty of the
//! container's own devpts (`tty` names it), sized through ResizePty, with stderr on it too.

use integration::run_with_busybox as run;
use integration::{unique_id, Containerd, PtySession, Running, BUSYBOX_REF};
use std::time::Duration;

const RUNTIME: &str = "io.containerd.lxcri.v2";
const WAIT: Duration = Duration::from_secs(20);
/// `stty size` once ctr's first ResizePty arrived (it follows Start; busybox's `stty size`
/// prints nothing, and exits 0, on a 0x0 terminal).
const WAIT_FOR_SIZE: &str =
    "until [ -n \"$(stty size 2>/dev/null)\" ]; do sleep 0.05; done; stty size";

integration::per_containerd_version!(
    run_t_interactive_shell,
    run_t_output_and_exit_status,
    exec_t_interactive_shell,
);

/// `ctr run -t --rm --runtime io.containerd.lxcri.v2 local/busybox:latest ID CMD`, to be run
/// on a terminal.
fn ctr_run_t(cd: &Containerd, id: &str, cmd: &[&str]) -> std::process::Command {
    let mut args = vec!["run", "-t", "--rm", "--runtime", RUNTIME, BUSYBOX_REF, id];
    args.extend(cmd);
    cd.ctr_command(&args)
}

/// Types a command line and waits for a marker it prints when done: `echo M$((1+1))` shows
/// as `M2` only in the output, never in the echo of what was typed.
fn type_line(t: &mut PtySession, line: &str, marker: &str) -> String {
    t.send(&format!("{line}; echo {marker}$((1+1))\r"));
    t.expect(&format!("{marker}2"), WAIT)
}

/// Resizes the terminal while the container runs: ctr gets SIGWINCH and resizes the pty, which
/// `stty size` in the container then shows. That path is asynchronous (a signal, then ctr's
/// ResizePty call): ask again, for up to 10 s, until the new size shows.
fn resize_and_check(t: &mut PtySession, rows: u16, cols: u16) {
    t.resize(rows, cols);
    let want = format!("{rows} {cols}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let shown = type_line(t, "stty size", "R");
        if shown.contains(&want) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "stty size after a resize to {want}, for 10 s:\n{shown}"
        );
    }
}

fn run_t_interactive_shell(cd: &Containerd) {
    let id = unique_id("tty");
    let _c = Running::remove_on_drop(cd, &id);
    let cmd = ctr_run_t(cd, &id, &["sh"]);
    let mut t = PtySession::spawn(cmd, 30, 100);

    let shown = type_line(&mut t, "tty", "T");
    assert!(
        shown.contains("/dev/pts/"),
        "tty should name a pty of the container, the terminal showed:\n{shown}"
    );
    // The size ctr read from its terminal at start, through ResizePty.
    let shown = type_line(&mut t, WAIT_FOR_SIZE, "S");
    assert!(shown.contains("30 100"), "stty size:\n{shown}");
    resize_and_check(&mut t, 41, 123);
    // stderr goes to the terminal too.
    let shown = type_line(&mut t, "ls /no-such-dir", "E");
    assert!(shown.contains("No such file"), "stderr:\n{shown}");
    // The pty is the process's controlling terminal: /dev/tty opens (ENXIO without one).
    let shown = type_line(&mut t, "echo V$((3+4))W > /dev/tty", "P");
    assert!(shown.contains("V7W"), "/dev/tty:\n{shown}");

    t.send("exit 3\r");
    let status = t.wait(WAIT);
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(3),
        "ctr run -t should exit with the shell's status; terminal:\n{}",
        t.rest()
    );
}

fn run_t_output_and_exit_status(cd: &Containerd) {
    let id = unique_id("ttyo");
    let _c = Running::remove_on_drop(cd, &id);
    // On Linux, ctr sets the size by ResizePty right after Start (not in the spec's
    // consoleSize): with runc too, the process may run before it. Wait for it, as a script
    // that needs the size would (busybox's `stty size` exits 0 even when it prints nothing).
    let script = "until [ -n \"$(stty size 2>/dev/null)\" ]; do sleep 0.05; done; stty size; tty; echo to-stderr >&2; i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done; exit 4";
    let cmd = ctr_run_t(cd, &id, &["sh", "-c", script]);
    let mut t = PtySession::spawn(cmd, 25, 90);
    let status = t.wait(WAIT);
    let shown = t.rest().to_string();
    assert_eq!(status.and_then(|s| s.code()), Some(4), "terminal:\n{shown}");
    assert!(shown.contains("25 90"), "stty size:\n{shown}");
    assert!(shown.contains("/dev/pts/"), "tty:\n{shown}");
    assert!(
        shown.contains("to-stderr"),
        "stderr on the terminal:\n{shown}"
    );
    // Everything written before the exit reaches the terminal before ctr ends.
    assert!(
        shown.contains("line-199"),
        "the last line is missing:\n{shown}"
    );
}

fn exec_t_interactive_shell(cd: &Containerd) {
    let c = Running::start(cd, "ttyx", &[]);
    let id = &c.id;
    let cmd = cd.ctr_command(&["task", "exec", "-t", "--exec-id", "shell", id, "sh"]);
    let mut t = PtySession::spawn(cmd, 28, 97);
    let shown = type_line(&mut t, "tty", "T");
    assert!(shown.contains("/dev/pts/"), "tty in the exec:\n{shown}");
    let shown = type_line(&mut t, WAIT_FOR_SIZE, "S");
    assert!(shown.contains("28 97"), "stty size in the exec:\n{shown}");
    resize_and_check(&mut t, 50, 132);
    // The exec sees the container's processes: its PID 1 is the container's sleep.
    let shown = type_line(&mut t, "cat /proc/1/cmdline", "C");
    assert!(
        shown.contains("sleep"),
        "PID 1 of the exec's view:\n{shown}"
    );
    t.send("exit 5\r");
    let status = t.wait(WAIT);
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(5),
        "ctr task exec -t should exit with the shell's status; terminal:\n{}",
        t.rest()
    );
    // The container is unaffected by the exec's end.
    let ps = cd.ctr_ok(&["task", "ls"]);
    assert!(
        ps.lines()
            .any(|l| l.contains(id.as_str()) && l.contains("RUNNING")),
        "{ps}"
    );
}
