//! lxcri-monitor: the LXC monitor of one container. The shim starts it as
//! `lxcri-monitor LXCPATH NAME` with the container's stdio; it runs liblxc's `start` in the
//! foreground and exits with the container init's exact status.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    lxcri_monitor::main(&args);
}
