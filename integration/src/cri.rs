//! Playing the kubelet: a private containerd with its CRI plugin (runtime handlers `lxcri` and
//! `runc`, a private CNI bridge, our pause image as the sandbox image) and a blocking CRI client
//! over its unix socket (the `k8s-cri` crate's runtime.v1 API through tonic).

use crate::cni::{CniNetwork, CNI_BIN_DIR};
use crate::{shim_dir, Containerd, ContainerdOptions, ContainerdVersion};
use hyper_util::rt::TokioIo;
use image_core::builder::{busybox_rootfs, ImageBuilder, ImageConfigSpec};
use k8s_cri::v1 as api;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint, Uri};

/// The containerd namespace of the CRI plugin.
pub const CRI_NAMESPACE: &str = "k8s.io";
/// The sandbox image: `lxcri-pause` alone, built by the test-image builder.
pub const PAUSE_IMAGE: &str = "docker.io/lxcri/pause:latest";
/// The busybox test image under a name the CRI plugin resolves (it normalises to docker.io).
pub const CRI_BUSYBOX: &str = "docker.io/lxcri/busybox:latest";
/// The runtime handlers (RuntimeClass `handler`) configured.
pub const LXCRI_HANDLER: &str = "lxcri";
pub const RUNC_HANDLER: &str = "runc";

/// The lxcri config file a node's runtime handler names with `ConfigPath`: the defaults but for
/// `lxc_log_level`, so a test can tell the file was read (`lxc.log.level = NOTICE`).
pub const NODE_LXCRI_CONFIG: &str = "# lxcri config of a CriNode (runtime option ConfigPath)\n\
                                     lxc_log_level = \"NOTICE\"\n";

/// The CRI plugin's configuration for the harness in containerd `v`'s own layout, the form
/// docs/kubernetes.md shows: 1.x `version = 2` (one plugin, `io.containerd.grpc.v1.cri`), 2.x
/// `version = 3` (`io.containerd.cri.v1.images` for the sandbox image, `io.containerd.cri.v1.runtime`
/// for runtimes and CNI). Handlers `lxcri` (with `ConfigPath`) and `runc` (the default).
/// With `systemd_cgroup`, both handlers' options say `SystemdCgroup = true` (what a node whose
/// kubelet uses the systemd cgroup driver is told to set).
pub fn cri_config(
    v: ContainerdVersion,
    cni_conf_dir: &Path,
    lxcri_config: &Path,
    systemd_cgroup: bool,
) -> String {
    let conf_dir = cni_conf_dir.display();
    let config_path = lxcri_config.display();
    let (runtime, images_part, bin_dirs) = match v.config_version() {
        2 => (
            "io.containerd.grpc.v1.cri",
            format!("  sandbox_image = \"{PAUSE_IMAGE}\"\n"),
            format!("bin_dir = \"{CNI_BIN_DIR}\""),
        ),
        _ => (
            "io.containerd.cri.v1.runtime",
            String::new(),
            format!("bin_dirs = [\"{CNI_BIN_DIR}\"]"),
        ),
    };
    let (systemd_lxcri, systemd_runc) = if systemd_cgroup {
        (
            "      SystemdCgroup = true\n".to_string(),
            format!(
                "    [plugins.\"{runtime}\".containerd.runtimes.{RUNC_HANDLER}.options]\n      \
                   SystemdCgroup = true\n"
            ),
        )
    } else {
        (String::new(), String::new())
    };
    let mut t = String::new();
    if v.config_version() >= 3 {
        t.push_str(&format!(
            "[plugins.\"io.containerd.cri.v1.images\".pinned_images]\n  \
               sandbox = \"{PAUSE_IMAGE}\"\n\n"
        ));
    }
    t.push_str(&format!(
        "[plugins.\"{runtime}\"]\n  \
           restrict_oom_score_adj = true\n\
         {images_part}  \
           [plugins.\"{runtime}\".cni]\n    \
             {bin_dirs}\n    \
             conf_dir = \"{conf_dir}\"\n  \
           [plugins.\"{runtime}\".containerd]\n    \
             default_runtime_name = \"{RUNC_HANDLER}\"\n  \
           [plugins.\"{runtime}\".containerd.runtimes.{LXCRI_HANDLER}]\n    \
             runtime_type = \"io.containerd.lxcri.v2\"\n    \
             [plugins.\"{runtime}\".containerd.runtimes.{LXCRI_HANDLER}.options]\n      \
               ConfigPath = \"{config_path}\"\n{systemd_lxcri}  \
           [plugins.\"{runtime}\".containerd.runtimes.{RUNC_HANDLER}]\n    \
             runtime_type = \"io.containerd.runc.v2\"\n{systemd_runc}"
    ));
    t
}

/// A node: containerd `v` with the CRI plugin, a private CNI bridge, the pause and busybox
/// images in `k8s.io`, and a CRI client. Dropping it stops and removes every pod sandbox
/// (best-effort), then stops containerd (see [`Containerd`]'s Drop), then deletes the bridge.
pub struct CriNode {
    pub cri: Cri,
    pub containerd: Containerd,
    pub net: CniNetwork,
    /// Where the pods' log directories go.
    pub log_root: PathBuf,
    /// Every pod and container id created, for the last-resort cleanup in Drop.
    created: std::sync::Mutex<Vec<String>>,
    /// Pod cgroups made for pods (removed in Drop, after the pods).
    pod_cgroups: std::sync::Mutex<Vec<PodCgroup>>,
    /// The lxcri config file the `lxcri` handler's `ConfigPath` names.
    pub lxcri_config: PathBuf,
    /// Holds the CNI config and state and the lxcri config.
    _node_dir: tempfile::TempDir,
}

impl CriNode {
    /// The host pid of a container's init (the verbose ContainerStatus info).
    pub fn container_pid(&self, id: &str) -> i32 {
        let info = self
            .cri
            .call(|mut c| async move {
                c.container_status(api::ContainerStatusRequest {
                    container_id: id.to_string(),
                    verbose: true,
                })
                .await
            })
            .unwrap_or_else(|e| panic!("ContainerStatus {id}: {}", e.message()))
            .info;
        let text = info.get("info").cloned().unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("container {id}: verbose info is not JSON ({e}): {text}"));
        v["pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("container {id}: no pid in the verbose info: {text}"))
            as i32
    }

    pub fn start(v: ContainerdVersion) -> CriNode {
        Self::start_with(v, false)
    }

    /// [`CriNode::start`]; with `systemd_cgroup` the handlers' options say `SystemdCgroup =
    /// true`, as on a node whose kubelet uses the systemd cgroup driver ([`cri_config`]).
    pub fn start_with(v: ContainerdVersion, systemd_cgroup: bool) -> CriNode {
        let node_dir = tempfile::Builder::new()
            .prefix("lxcri-node-")
            .tempdir_in("/tmp")
            .unwrap_or_else(|e| panic!("cannot create a tempdir in /tmp: {e}"));
        let net = CniNetwork::create(node_dir.path());
        let lxcri_config = node_dir.path().join("lxcri.toml");
        fs::write(&lxcri_config, NODE_LXCRI_CONFIG)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", lxcri_config.display()));
        let containerd = Containerd::start_with(
            v,
            ContainerdOptions {
                cri: true,
                cri_config: cri_config(v, net.conf_dir(), &lxcri_config, systemd_cgroup),
                ..ContainerdOptions::default()
            },
        );
        let log_root = containerd.dir().join("pod-logs");
        fs::create_dir_all(&log_root)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_root.display()));
        import_cri_images(&containerd);
        let cri = Cri::connect(containerd.socket());
        let node = CriNode {
            cri,
            containerd,
            net,
            log_root,
            created: std::sync::Mutex::new(Vec::new()),
            pod_cgroups: std::sync::Mutex::new(Vec::new()),
            lxcri_config,
            _node_dir: node_dir,
        };
        node.wait_network_ready();
        node
    }

    /// Restarts containerd under the running pods (a clean stop with SIGTERM, or with `crash`
    /// a SIGKILL), connects a new CRI client and waits until the CRI plugin is ready again.
    pub fn restart_containerd(&mut self, crash: bool) {
        if crash {
            self.containerd.crash_and_restart();
        } else {
            self.containerd.restart();
        }
        self.cri = Cri::connect(self.containerd.socket());
        self.wait_network_ready();
    }

    /// Waits until the CRI plugin reports its network ready (it loads the CNI config
    /// asynchronously).
    fn wait_network_ready(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let status = self.cri.status();
            let ready = status
                .status
                .as_ref()
                .map(|s| s.conditions.iter().all(|c| c.status))
                .unwrap_or(false);
            if ready {
                return;
            }
            if std::time::Instant::now() >= deadline {
                panic!(
                    "{}: the CRI plugin is not ready after 20 s: {status:?}\ncontainerd log:\n{}",
                    self.containerd.version(),
                    self.containerd.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A pod sandbox config named `name` (unique uid), logging into its own directory under
    /// [`CriNode::log_root`], with its own network, IPC and UTS namespaces and, unless
    /// `share_pid`, a PID namespace per container (what the kubelet asks for by default).
    pub fn pod_config(&self, name: &str, share_pid: bool) -> api::PodSandboxConfig {
        let uid = crate::unique_id("uid");
        let log_directory = self.log_root.join(&uid);
        api::PodSandboxConfig {
            metadata: Some(api::PodSandboxMetadata {
                name: name.to_string(),
                uid,
                namespace: "default".to_string(),
                attempt: 0,
            }),
            hostname: name.to_string(),
            log_directory: log_directory.to_string_lossy().into_owned(),
            linux: Some(api::LinuxPodSandboxConfig {
                security_context: Some(api::LinuxSandboxSecurityContext {
                    namespace_options: Some(api::NamespaceOption {
                        network: api::NamespaceMode::Pod as i32,
                        ipc: api::NamespaceMode::Pod as i32,
                        pid: if share_pid {
                            api::NamespaceMode::Pod as i32
                        } else {
                            api::NamespaceMode::Container as i32
                        },
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Makes a pod cgroup for pod config `config` as the kubelet does ([`PodCgroup`]) and sets
    /// it as the pod's `cgroup_parent`; returns its path. It is removed when the node is
    /// dropped, after the pods.
    pub fn make_pod_cgroup(&self, config: &mut api::PodSandboxConfig) -> String {
        let uid = config
            .metadata
            .as_ref()
            .map(|m| m.uid.clone())
            .unwrap_or_default();
        let pc = PodCgroup::create(&uid);
        let path = pc.path.clone();
        config
            .linux
            .get_or_insert_with(Default::default)
            .cgroup_parent = path.clone();
        if let Ok(mut v) = self.pod_cgroups.lock() {
            v.push(pc);
        }
        path
    }

    fn remember(&self, id: &str) -> String {
        if let Ok(mut v) = self.created.lock() {
            v.push(id.to_string());
        }
        id.to_string()
    }

    /// RunPodSandbox with runtime handler `handler`; returns the sandbox id.
    pub fn run_pod(&self, config: &api::PodSandboxConfig, handler: &str) -> String {
        let id = self
            .cri
            .call(|mut c| {
                let config = config.clone();
                async move {
                    c.run_pod_sandbox(api::RunPodSandboxRequest {
                        config: Some(config),
                        runtime_handler: handler.to_string(),
                    })
                    .await
                }
            })
            .unwrap_or_else(|e| self.fail("RunPodSandbox", e))
            .pod_sandbox_id;
        self.remember(&id)
    }

    /// CreateContainer of busybox running `args` in pod `pod`, logging to `<name>.log`.
    pub fn create_container(
        &self,
        pod: &str,
        pod_config: &api::PodSandboxConfig,
        name: &str,
        args: &[&str],
    ) -> String {
        let config = self.container_config(name, args);
        self.create_container_with(pod, pod_config, config)
    }

    /// A busybox container config named `name` running `args` (`/bin/sh -c ...` and the like).
    pub fn container_config(&self, name: &str, args: &[&str]) -> api::ContainerConfig {
        api::ContainerConfig {
            metadata: Some(api::ContainerMetadata {
                name: name.to_string(),
                attempt: 0,
            }),
            image: Some(api::ImageSpec {
                image: CRI_BUSYBOX.to_string(),
                ..Default::default()
            }),
            args: args.iter().map(|s| s.to_string()).collect(),
            log_path: format!("{name}.log"),
            linux: Some(api::LinuxContainerConfig::default()),
            ..Default::default()
        }
    }

    /// CreateContainer with `config`. As the kubelet does, a container without namespace
    /// options gets its pod's (the CRI default would put it into the sandbox's PID namespace).
    pub fn create_container_with(
        &self,
        pod: &str,
        pod_config: &api::PodSandboxConfig,
        mut config: api::ContainerConfig,
    ) -> String {
        let pod_ns = pod_config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.clone());
        let sc = config
            .linux
            .get_or_insert_with(Default::default)
            .security_context
            .get_or_insert_with(Default::default);
        if sc.namespace_options.is_none() {
            sc.namespace_options = pod_ns;
        }
        let id = self
            .cri
            .call(|mut c| {
                let req = api::CreateContainerRequest {
                    pod_sandbox_id: pod.to_string(),
                    config: Some(config.clone()),
                    sandbox_config: Some(pod_config.clone()),
                };
                async move { c.create_container(req).await }
            })
            .unwrap_or_else(|e| self.fail("CreateContainer", e))
            .container_id;
        self.remember(&id)
    }

    pub fn start_container(&self, id: &str) {
        self.rpc(
            "StartContainer",
            api::StartContainerRequest {
                container_id: id.to_string(),
            },
            |mut c, r| async move { c.start_container(r).await },
        );
    }

    /// CreateContainer + StartContainer; returns the container id.
    pub fn run_container(
        &self,
        pod: &str,
        pod_config: &api::PodSandboxConfig,
        name: &str,
        args: &[&str],
    ) -> String {
        let id = self.create_container(pod, pod_config, name, args);
        self.start_container(&id);
        id
    }

    pub fn container_status(&self, id: &str) -> api::ContainerStatus {
        self.rpc(
            "ContainerStatus",
            api::ContainerStatusRequest {
                container_id: id.to_string(),
                verbose: false,
            },
            |mut c, r| async move { c.container_status(r).await },
        )
        .status
        .unwrap_or_else(|| panic!("ContainerStatus of {id} has no status"))
    }

    /// Polls ContainerStatus until the container is EXITED (or `limit` passes: panics).
    pub fn wait_exited(&self, id: &str, limit: Duration) -> api::ContainerStatus {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let s = self.container_status(id);
            if s.state == api::ContainerState::ContainerExited as i32 {
                return s;
            }
            if std::time::Instant::now() >= deadline {
                panic!("container {id} did not exit within {limit:?}: {s:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// ExecSync: (stdout, stderr, exit code).
    pub fn exec_sync(&self, id: &str, cmd: &[&str], timeout_s: i64) -> (String, String, i32) {
        let r = self
            .cri
            .call(|mut c| {
                let req = api::ExecSyncRequest {
                    container_id: id.to_string(),
                    cmd: cmd.iter().map(|s| s.to_string()).collect(),
                    timeout: timeout_s,
                };
                async move { c.exec_sync(req).await }
            })
            .unwrap_or_else(|e| self.fail("ExecSync", e));
        (
            String::from_utf8_lossy(&r.stdout).into_owned(),
            String::from_utf8_lossy(&r.stderr).into_owned(),
            r.exit_code,
        )
    }

    /// CRI `Exec`: the URL of the streaming server to run `cmd` in container `id` through
    /// (see [`crate::StreamSession`]). With `tty`, stderr is merged into stdout (the CRI plugin
    /// refuses both at once).
    pub fn exec_url(&self, id: &str, cmd: &[&str], stdin: bool, tty: bool) -> String {
        self.cri
            .call(|mut c| {
                let req = api::ExecRequest {
                    container_id: id.to_string(),
                    cmd: cmd.iter().map(|s| s.to_string()).collect(),
                    tty,
                    stdin,
                    stdout: true,
                    stderr: !tty,
                };
                async move { c.exec(req).await }
            })
            .unwrap_or_else(|e| self.fail("Exec", e))
            .url
    }

    /// CRI `Attach` to container `id`'s own stdio: the streaming server's URL. With `tty`
    /// (the container must have been created with one) there is no stderr channel.
    pub fn attach_url(&self, id: &str, stdin: bool, tty: bool) -> String {
        self.rpc(
            "Attach",
            api::AttachRequest {
                container_id: id.to_string(),
                stdin,
                tty,
                stdout: true,
                stderr: !tty,
            },
            |mut c, r| async move { c.attach(r).await },
        )
        .url
    }

    /// ListPodSandbox: every pod sandbox containerd knows.
    pub fn list_pods(&self) -> Vec<api::PodSandbox> {
        self.rpc(
            "ListPodSandbox",
            api::ListPodSandboxRequest { filter: None },
            |mut c, r| async move { c.list_pod_sandbox(r).await },
        )
        .items
    }

    /// ListContainers of pod `pod`.
    pub fn list_containers(&self, pod: &str) -> Vec<api::Container> {
        self.rpc(
            "ListContainers",
            api::ListContainersRequest {
                filter: Some(api::ContainerFilter {
                    pod_sandbox_id: pod.to_string(),
                    ..Default::default()
                }),
            },
            |mut c, r| async move { c.list_containers(r).await },
        )
        .containers
    }

    /// UpdateContainerResources with new Linux limits.
    pub fn update_resources(&self, id: &str, linux: api::LinuxContainerResources) {
        self.cri
            .call(|mut c| {
                let req = api::UpdateContainerResourcesRequest {
                    container_id: id.to_string(),
                    linux: Some(linux.clone()),
                    ..Default::default()
                };
                async move { c.update_container_resources(req).await }
            })
            .unwrap_or_else(|e| self.fail("UpdateContainerResources", e));
    }

    /// PodSandboxStats; the error as it came (a runtime may not implement it).
    pub fn pod_stats(&self, pod: &str) -> Result<api::PodSandboxStats, tonic::Status> {
        self.cri
            .call(|mut c| async move {
                c.pod_sandbox_stats(api::PodSandboxStatsRequest {
                    pod_sandbox_id: pod.to_string(),
                })
                .await
            })
            .map(|r| {
                r.stats
                    .unwrap_or_else(|| panic!("PodSandboxStats of {pod} has no stats"))
            })
    }

    /// ListPodSandboxStats of every pod; the error as it came.
    pub fn list_pod_stats(&self) -> Result<Vec<api::PodSandboxStats>, tonic::Status> {
        self.cri
            .call(|mut c| async move {
                c.list_pod_sandbox_stats(api::ListPodSandboxStatsRequest { filter: None })
                    .await
            })
            .map(|r| r.stats)
    }

    /// The CRI plugin's effective configuration (the verbose `Status`'s `config`, what
    /// `crictl info` shows).
    pub fn cri_config_json(&self) -> serde_json::Value {
        let info = self
            .cri
            .call(|mut c| async move { c.status(api::StatusRequest { verbose: true }).await })
            .unwrap_or_else(|e| self.fail("Status", e))
            .info;
        let text = info
            .get("config")
            .unwrap_or_else(|| panic!("the verbose Status has no config: {info:?}"));
        serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("the verbose Status's config is not JSON ({e}): {text}"))
    }

    pub fn stop_container(&self, id: &str, timeout_s: i64) {
        self.rpc(
            "StopContainer",
            api::StopContainerRequest {
                container_id: id.to_string(),
                timeout: timeout_s,
            },
            |mut c, r| async move { c.stop_container(r).await },
        );
    }

    pub fn remove_container(&self, id: &str) {
        self.rpc(
            "RemoveContainer",
            api::RemoveContainerRequest {
                container_id: id.to_string(),
            },
            |mut c, r| async move { c.remove_container(r).await },
        );
    }

    pub fn container_stats(&self, id: &str) -> api::ContainerStats {
        self.rpc(
            "ContainerStats",
            api::ContainerStatsRequest {
                container_id: id.to_string(),
            },
            |mut c, r| async move { c.container_stats(r).await },
        )
        .stats
        .unwrap_or_else(|| panic!("ContainerStats of {id} has no stats"))
    }

    pub fn pod_status(&self, pod: &str) -> api::PodSandboxStatusResponse {
        self.rpc(
            "PodSandboxStatus",
            api::PodSandboxStatusRequest {
                pod_sandbox_id: pod.to_string(),
                verbose: true,
            },
            |mut c, r| async move { c.pod_sandbox_status(r).await },
        )
    }

    /// The pod's IP from PodSandboxStatus.
    pub fn pod_ip(&self, pod: &str) -> String {
        let status = self.pod_status(pod);
        status
            .status
            .as_ref()
            .and_then(|s| s.network.as_ref())
            .map(|n| n.ip.clone())
            .filter(|ip| !ip.is_empty())
            .unwrap_or_else(|| panic!("pod {pod} has no IP: {status:?}"))
    }

    /// The pid of the sandbox's process (from the verbose PodSandboxStatus info).
    pub fn sandbox_pid(&self, pod: &str) -> i32 {
        let status = self.pod_status(pod);
        let info = status.info.get("info").cloned().unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&info)
            .unwrap_or_else(|e| panic!("pod {pod}: verbose info is not JSON ({e}): {info}"));
        v["pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("pod {pod}: no pid in the verbose info: {info}"))
            as i32
    }

    pub fn stop_pod(&self, pod: &str) {
        self.rpc(
            "StopPodSandbox",
            api::StopPodSandboxRequest {
                pod_sandbox_id: pod.to_string(),
            },
            |mut c, r| async move { c.stop_pod_sandbox(r).await },
        );
    }

    pub fn remove_pod(&self, pod: &str) {
        self.rpc(
            "RemovePodSandbox",
            api::RemovePodSandboxRequest {
                pod_sandbox_id: pod.to_string(),
            },
            |mut c, r| async move { c.remove_pod_sandbox(r).await },
        );
    }

    /// StopPodSandbox + RemovePodSandbox.
    pub fn remove_pod_fully(&self, pod: &str) {
        self.stop_pod(pod);
        self.remove_pod(pod);
    }

    /// One CRI call: `f` sends `req` on a client; a failure panics with containerd's log.
    fn rpc<Req, T, F, Fut>(&self, what: &str, req: Req, f: F) -> T
    where
        F: FnOnce(RuntimeServiceClient<Channel>, Req) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.cri
            .call(|c| f(c, req))
            .unwrap_or_else(|e| self.fail(what, e))
    }

    fn fail(&self, what: &str, e: tonic::Status) -> ! {
        panic!(
            "{}: {what} failed: {} ({:?})\n--- containerd log (end):\n{}",
            self.containerd.version(),
            e.message(),
            e.code(),
            tail(&self.containerd.log(), 60)
        )
    }
}

impl Drop for CriNode {
    fn drop(&mut self) {
        let pods = self
            .cri
            .call(|mut c| async move {
                c.list_pod_sandbox(api::ListPodSandboxRequest { filter: None })
                    .await
            })
            .map(|r| r.items)
            .unwrap_or_default();
        for p in pods {
            let id = p.id.clone();
            let _ = self.cri.call(|mut c| {
                let id = id.clone();
                async move {
                    c.stop_pod_sandbox(api::StopPodSandboxRequest { pod_sandbox_id: id })
                        .await
                }
            });
            let _ = self.cri.call(|mut c| {
                let id = id.clone();
                async move {
                    c.remove_pod_sandbox(api::RemovePodSandboxRequest { pod_sandbox_id: id })
                        .await
                }
            });
        }
        // After a failed test: an LXC monitor (and the container under it) survives the
        // shim that containerd's Drop kills; its command line names the container.
        let ids = self.created.lock().map(|v| v.clone()).unwrap_or_default();
        for id in ids {
            for p in crate::process::kill_processes_mentioning(&id) {
                eprintln!("[harness] killed leftover process {}: {}", p.pid, p.cmdline);
            }
        }
        // The pod cgroups, now that nothing runs in them.
        if let Ok(mut v) = self.pod_cgroups.lock() {
            v.clear();
        }
    }
}

/// A blocking CRI runtime-service client (its own single-thread tokio runtime).
pub struct Cri {
    rt: tokio::runtime::Runtime,
    client: RuntimeServiceClient<Channel>,
}

/// Time limit of one CRI call.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

impl Cri {
    /// Connects to containerd's gRPC socket. Panics when it cannot.
    pub fn connect(socket: &Path) -> Cri {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("cannot start a tokio runtime for the CRI client: {e}"));
        let path = socket.to_path_buf();
        let channel = rt
            .block_on(async move {
                Endpoint::try_from("http://[::]:50051")?
                    .timeout(CALL_TIMEOUT)
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let path = path.clone();
                        async move {
                            Ok::<_, std::io::Error>(TokioIo::new(
                                tokio::net::UnixStream::connect(path).await?,
                            ))
                        }
                    }))
                    .await
            })
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", socket.display()));
        Cri {
            rt,
            client: RuntimeServiceClient::new(channel),
        }
    }

    /// Runs one call on a clone of the client.
    pub fn call<T, F, Fut>(&self, f: F) -> Result<T, tonic::Status>
    where
        F: FnOnce(RuntimeServiceClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.rt
            .block_on(f(self.client.clone()))
            .map(tonic::Response::into_inner)
    }

    /// The CRI `Status` (runtime and network conditions).
    pub fn status(&self) -> api::StatusResponse {
        self.call(|mut c| async move { c.status(api::StatusRequest { verbose: false }).await })
            .unwrap_or_else(|e| panic!("CRI Status failed: {}", e.message()))
    }
}

/// Imports the pause image (`lxcri-pause` alone) and busybox into the CRI namespace, both
/// built by the test-image builder under the docker.io names the CRI plugin resolves.
fn import_cri_images(c: &Containerd) {
    let dir = c.dir().join("cri-images");
    let pause_root = dir.join("pause-rootfs");
    fs::create_dir_all(&pause_root)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", pause_root.display()));
    let pause_bin = shim_dir().join("lxcri-pause");
    fs::copy(&pause_bin, pause_root.join("pause")).unwrap_or_else(|e| {
        panic!(
            "cannot copy {}: {e}; build it with scripts/build.sh",
            pause_bin.display()
        )
    });
    let busybox_root = dir.join("busybox-rootfs");
    busybox_rootfs(&busybox_root).unwrap_or_else(|e| panic!("cannot make a busybox rootfs: {e}"));
    for (name, root, config) in [
        (
            PAUSE_IMAGE,
            &pause_root,
            ImageConfigSpec {
                entrypoint: vec!["/pause".to_string()],
                ..ImageConfigSpec::default()
            },
        ),
        (
            CRI_BUSYBOX,
            &busybox_root,
            ImageConfigSpec {
                cmd: vec!["/bin/sh".to_string()],
                ..ImageConfigSpec::default()
            },
        ),
    ] {
        let tar = dir.join("image.tar");
        ImageBuilder::new(name)
            .layer_dir(root)
            .config(config)
            .write_archive(&tar)
            .unwrap_or_else(|e| panic!("cannot build {name}: {e}"));
        c.ctr_ns_ok(CRI_NAMESPACE, &["images", "import", &tar.to_string_lossy()]);
    }
    let _ = fs::remove_dir_all(&dir);
}

/// The lines of a CRI log file: (stream, tag, message) per line, panicking on a line that is
/// not `<RFC3339Nano timestamp> <stdout|stderr> <F|P> <message>`.
pub fn parse_cri_log(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .map(|line| {
            let mut parts = line.splitn(4, ' ');
            let (ts, stream, tag) = (parts.next(), parts.next(), parts.next());
            let msg = parts.next().unwrap_or("");
            let ts = ts.unwrap_or("");
            let ok_ts = ts.len() >= 20 && ts.as_bytes()[4] == b'-' && ts.contains('T');
            let stream = stream.unwrap_or("");
            let tag = tag.unwrap_or("");
            assert!(
                ok_ts && (stream == "stdout" || stream == "stderr") && (tag == "F" || tag == "P"),
                "not a CRI log line: {line:?}"
            );
            (stream.to_string(), tag.to_string(), msg.to_string())
        })
        .collect()
}

/// Processes named `containerd-shim-lxcri-v2` started for this containerd (their command line
/// names its socket).
pub fn lxcri_shims(c: &Containerd) -> Vec<crate::process::ProcInfo> {
    let sock = c.socket().to_string_lossy().into_owned();
    crate::process::processes_mentioning(&sock)
        .into_iter()
        .filter(|p| p.cmdline.contains("containerd-shim-lxcri-v2"))
        .collect()
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A pod-level cgroup as the kubelet's cgroupfs driver makes it before RunPodSandbox
/// (`/kubepods/besteffort/pod<uid>` on a node; here `/<unique>/pod<uid>`), given to the pod
/// as `linux.cgroup_parent`: containerd puts the sandbox and every container below it and reads
/// PodSandboxStats from it. Made in every cgroup v1 hierarchy (cpuset with its parent's cpus
/// and mems, as libcontainer does); dropping it removes it, with whatever LXC made under the
/// same name in the other hierarchies, once the pod is gone.
pub struct PodCgroup {
    /// The `cgroup_parent` path, `/<top>/pod<uid>`.
    pub path: String,
    top: String,
}

impl PodCgroup {
    pub fn create(uid: &str) -> PodCgroup {
        let top = crate::unique_id("kubepods");
        let path = format!("/{top}/pod{uid}");
        let pc = PodCgroup { path, top };
        if crate::cgroup_v2_only() {
            // One hierarchy; each level hands its controllers on to the next, as the kubelet's
            // cgroupfs driver does on a cgroup v2 node.
            let mut dir = PathBuf::from("/sys/fs/cgroup");
            for part in [pc.top.as_str(), &format!("pod{uid}")] {
                dir.push(part);
                fs::create_dir(&dir)
                    .unwrap_or_else(|e| panic!("cannot create cgroup {}: {e}", dir.display()));
                let ctrls = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
                let enable: Vec<String> =
                    ctrls.split_whitespace().map(|c| format!("+{c}")).collect();
                fs::write(dir.join("cgroup.subtree_control"), enable.join(" ")).unwrap_or_else(
                    |e| panic!("cannot enable {ctrls:?} in {}: {e}", dir.display()),
                );
            }
            return pc;
        }
        for h in v1_hierarchies() {
            let mut dir = h.clone();
            for part in [pc.top.as_str(), &format!("pod{uid}")] {
                let parent = dir.clone();
                dir.push(part);
                fs::create_dir(&dir)
                    .unwrap_or_else(|e| panic!("cannot create cgroup {}: {e}", dir.display()));
                if parent.join("cpuset.cpus").exists() {
                    for f in ["cpuset.cpus", "cpuset.mems"] {
                        let v = fs::read_to_string(parent.join(f)).unwrap_or_default();
                        fs::write(dir.join(f), v.trim())
                            .unwrap_or_else(|e| panic!("cannot write {}/{f}: {e}", dir.display()));
                    }
                }
            }
        }
        pc
    }
}

/// Pod cgroup `path`'s directory in hierarchy `controller` (`memory`, `cpuacct`, ...); on a
/// cgroup v2 host the one directory, whatever the controller.
pub fn pod_cgroup_dir(path: &str, controller: &str) -> PathBuf {
    let root = Path::new("/sys/fs/cgroup");
    if crate::cgroup_v2_only() {
        return root.join(path.trim_start_matches('/'));
    }
    root.join(controller).join(path.trim_start_matches('/'))
}

impl Drop for PodCgroup {
    fn drop(&mut self) {
        // Every hierarchy, v2 included: LXC makes the path where the kubelet did not. On a
        // cgroup v2 host the one hierarchy is /sys/fs/cgroup itself.
        let Ok(entries) = fs::read_dir("/sys/fs/cgroup") else {
            return;
        };
        let roots = entries
            .flatten()
            .map(|e| e.path())
            .chain([PathBuf::from("/sys/fs/cgroup")]);
        for root in roots {
            let top = root.join(&self.top);
            if !top.is_dir() {
                continue;
            }
            // Deepest first; a cgroup directory goes with rmdir alone.
            let mut dirs = Vec::new();
            collect_dirs(&top, &mut dirs);
            dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
            for d in dirs {
                // LXC may still be releasing a container's cgroup below: retry briefly.
                let last = crate::process::retry_removal(
                    20,
                    |_| Duration::from_millis(100),
                    || fs::remove_dir(&d),
                );
                if let Some(err) = last {
                    eprintln!("[harness] cannot remove cgroup {}: {err}", d.display());
                }
            }
        }
    }
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&e.path(), out);
            }
        }
    }
}

/// The mounted cgroup v1 hierarchies (`/sys/fs/cgroup/<name>` with a `cgroup.procs`, not the
/// v2 `unified` one, not the cpu,cpuacct symlinks).
fn v1_hierarchies() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir("/sys/fs/cgroup") {
        for e in entries.flatten() {
            let p = e.path();
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            if is_dir && p.join("cgroup.procs").exists() && !p.join("cgroup.controllers").exists() {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
