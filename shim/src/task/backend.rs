//! What the task service asks of the host, behind one trait: [`Lxc`] does it with LXC, ZFS and
//! cgroups (through `crate::container` and friends); the service's in-process tests use a fake.
//!
//! Every method may block (files, FIFOs, processes, `zfs`): the service calls them on tokio's
//! blocking pool and never under a lock that another container needs. Methods that spawn a
//! helper whose exit stands for a process (the LXC monitor, an exec's helper) return its pid;
//! the service opened an exit window before calling them (see `exits`).

use crate::config::Config;
use crate::console::Console;
use crate::container::{self, CreateRequest, Paths};
use crate::error::{Error, Result};
use crate::options::RuntimeOptions;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use layerfs::PreparedRootfs;

/// containerd's stdio of a process.
#[derive(Debug, Clone, Default)]
pub struct Stdio {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// A created container, as the backend made it.
pub struct Created<H> {
    /// The container's init (PID 1), waiting for Start.
    pub init_pid: i32,
    /// The helper whose exit status is the init's (the LXC monitor).
    pub helper_pid: i32,
    pub console: Option<Console>,
    /// What the backend needs later about this container.
    pub handle: H,
}

/// A started exec process.
pub struct Spawned {
    /// The exec's process in the container.
    pub pid: i32,
    /// The helper whose exit status is the exec's.
    pub helper_pid: i32,
    pub console: Option<Console>,
}

pub trait Backend: Send + Sync + 'static {
    /// What the backend keeps about one container.
    type Handle: Send + Sync + 'static;

    /// Creates the container: its init runs and waits for Start.
    fn create(
        &self,
        req: &CreateRequest,
        options: &RuntimeOptions,
    ) -> Result<Created<Self::Handle>>;
    /// Starts the init's process (the startContainer and poststart hooks around it).
    fn start(&self, h: &Self::Handle, id: &str, init_pid: i32) -> Result<()>;
    /// The exec's process spec, in the form the helper applies.
    fn exec_spec(
        &self,
        h: &Self::Handle,
        exec_id: &str,
        process: &oci_spec::runtime::Process,
        terminal: bool,
    ) -> Result<lxcri_init::InitConfig>;
    /// Starts an exec process in the running container whose init is `init_pid`.
    fn start_exec(
        &self,
        h: &Self::Handle,
        id: &str,
        exec_id: &str,
        spec: &lxcri_init::InitConfig,
        stdio: &Stdio,
        init_pid: i32,
    ) -> Result<Spawned>;
    /// An exec process exited or was deleted: forget its files.
    fn exec_gone(&self, h: &Self::Handle, exec_id: &str);
    /// Sends a signal to `pid`, or with `all` to every process of the container of init `pid`.
    fn signal(&self, pid: i32, signal: u32, all: bool) -> Result<()>;
    /// Freezes or thaws every process of the container of init `pid`.
    fn set_frozen(&self, pid: i32, frozen: bool) -> Result<()>;
    /// The processes of the container of init `pid`.
    fn pids(&self, pid: i32) -> Vec<i32>;
    /// The container's cgroup metrics, as containerd's `Any`.
    fn metrics(&self, pid: i32) -> Result<Any>;
    /// Changes the container's resource limits.
    fn update(&self, pid: i32, resources: &oci_spec::runtime::LinuxResources) -> Result<()>;
    /// Removes everything the container had on the host; returns what could not be removed.
    fn cleanup(&self, h: &Self::Handle, init_pid: i32) -> Vec<String>;
    /// Publishes OOM kills of the container of init `pid` through `oom` until it is gone.
    fn watch_oom(&self, id: &str, pid: i32, oom: Box<dyn Fn() + Send + Sync>);
}

/// The real host: LXC containers, their rootfs (ZFS clones or containerd's mounts), cgroups.
#[derive(Default)]
pub struct Lxc;

/// What [`Lxc`] keeps of a container.
pub struct LxcContainer {
    pub cfg: Config,
    pub paths: Paths,
    pub monitor_pid: i32,
    pub rootfs: Option<PreparedRootfs>,
}

impl Backend for Lxc {
    type Handle = LxcContainer;

    fn create(
        &self,
        req: &CreateRequest,
        options: &RuntimeOptions,
    ) -> Result<Created<LxcContainer>> {
        let cfg = Config::load(options.config_path.as_deref())
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let provider = crate::rootfs::provider(&cfg)?;
        let c = container::create(&cfg, req, provider.as_ref())?;
        Ok(Created {
            init_pid: c.init_pid,
            helper_pid: c.monitor_pid,
            console: c.console,
            handle: LxcContainer {
                cfg,
                paths: c.paths,
                monitor_pid: c.monitor_pid,
                rootfs: c.rootfs,
            },
        })
    }

    fn start(&self, h: &LxcContainer, id: &str, init_pid: i32) -> Result<()> {
        container::start(&h.paths, id, init_pid)
    }

    fn exec_spec(
        &self,
        h: &LxcContainer,
        exec_id: &str,
        process: &oci_spec::runtime::Process,
        terminal: bool,
    ) -> Result<lxcri_init::InitConfig> {
        let mut spec = crate::process_spec::from_process(process)
            .map_err(|e| Error::InvalidArgument(format!("exec {exec_id}: {e}")))?;
        // containerd's request decides, as for the init.
        spec.terminal = terminal;
        // An exec runs under the container's seccomp filter, as runc does.
        spec.seccomp = container::init_seccomp(&h.paths);
        Ok(spec)
    }

    fn start_exec(
        &self,
        h: &LxcContainer,
        id: &str,
        exec_id: &str,
        spec: &lxcri_init::InitConfig,
        stdio: &Stdio,
        init_pid: i32,
    ) -> Result<Spawned> {
        let (helper_pid, pid, console) = container::start_exec(
            &h.cfg,
            &h.paths,
            id,
            exec_id,
            spec,
            (&stdio.stdin, &stdio.stdout, &stdio.stderr),
            Some(init_pid),
        )?;
        Ok(Spawned {
            pid,
            helper_pid,
            console,
        })
    }

    fn exec_gone(&self, h: &LxcContainer, exec_id: &str) {
        container::remove_exec_files(&h.paths, exec_id);
    }

    fn signal(&self, pid: i32, signal: u32, all: bool) -> Result<()> {
        container::signal(pid, signal as i32, all)
    }

    fn set_frozen(&self, pid: i32, frozen: bool) -> Result<()> {
        crate::host::set_frozen(pid, frozen).map_err(Error::Internal)
    }

    fn pids(&self, pid: i32) -> Vec<i32> {
        crate::host::cgroup_pids(pid)
    }

    fn metrics(&self, pid: i32) -> Result<Any> {
        crate::cgroup_files::metrics(pid).map_err(|e| Error::Internal(format!("metrics: {e}")))
    }

    fn update(&self, pid: i32, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
        let ignored = crate::cgroup_files::not_updated(resources);
        if !ignored.is_empty() {
            log::warn!(
                "not applied (lxcri updates memory limit/reservation/swap, cpu shares/quota/period/cpuset and pids only): {}",
                ignored.join(", ")
            );
        }
        crate::cgroup_files::update(pid, resources).map_err(Error::InvalidArgument)
    }

    fn cleanup(&self, h: &LxcContainer, init_pid: i32) -> Vec<String> {
        container::cleanup(&h.paths, init_pid, h.monitor_pid, h.rootfs.as_ref())
    }

    fn watch_oom(&self, id: &str, pid: i32, oom: Box<dyn Fn() + Send + Sync>) {
        let mut watcher = match crate::oom::OomWatcher::new(pid) {
            Ok(w) => w,
            Err(e) => {
                log::warn!("container {id}: OOM kills will not be reported: {e}");
                return;
            }
        };
        let id = id.to_string();
        tokio::spawn(async move {
            while watcher.next().await.is_some() {
                log::info!("container {id}: OOM kill");
                oom();
            }
        });
    }
}
