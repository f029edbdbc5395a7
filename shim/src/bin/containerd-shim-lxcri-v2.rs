//! containerd-shim-lxcri-v2: containerd runs it for every container whose runtime is
//! `io.containerd.lxcri.v2`. Each container's LXC monitor is a separate binary, `lxcri-monitor`
//! (see `lxcri::monitor`): the shim itself links no liblxc.

use lxcri::shim::{LxcriShim, RUNTIME_ID};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "-v" || a == "--version") {
        println!("containerd-shim-lxcri-v2 {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    // One thread serves the task API; blocking work goes to tokio's blocking pool. This keeps the
    // shim's memory small: one shim per container (or pod) adds up.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{RUNTIME_ID}: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    // The shim's log level comes from lxcri's config file (LXCRI_CONFIG or the default path);
    // containerd's -debug flag still turns on debug. A broken file is reported at Create.
    let log_level = lxcri::config::Config::load(None)
        .map(|c| c.log_level)
        .unwrap_or_else(|_| "info".into());
    let config = containerd_shim::Config {
        default_log_level: log_level,
        ..Default::default()
    };
    rt.block_on(containerd_shim::asynchronous::run::<LxcriShim>(
        RUNTIME_ID,
        Some(config),
    ));
}
