//! The shim's process lifecycle: the `start` and `delete` subcommands and the server.

use crate::container;
use crate::task::Service;
use async_trait::async_trait;
use containerd_shim::asynchronous::publisher::RemotePublisher;
use containerd_shim::asynchronous::{spawn, ExitSignal, Shim};
use containerd_shim::socket_address;
use containerd_shim::util::convert_to_timestamp;
use containerd_shim::{api, Config, Flags, StartOpts};
use containerd_shim_protos::protobuf::MessageField;
use log::{info, warn};
use std::collections::HashMap;
use std::sync::Arc;

pub const RUNTIME_ID: &str = "io.containerd.lxcri.v2";

/// The annotation containerd's CRI plugin puts on every container of a pod (the sandbox's
/// included): the pod sandbox's id.
pub const SANDBOX_ID_ANNOTATION: &str = "io.kubernetes.cri.sandbox-id";

/// The annotations of an OCI spec (`config.json`); empty when it has none or does not parse
/// (then the container gets a shim of its own, as before).
pub fn spec_annotations(config_json: &[u8]) -> HashMap<String, String> {
    #[derive(serde::Deserialize)]
    struct Annotated {
        #[serde(default)]
        annotations: HashMap<String, String>,
    }
    serde_json::from_slice::<Annotated>(config_json)
        .map(|a| a.annotations)
        .unwrap_or_default()
}

/// The id whose shim serves container `id`: its pod sandbox's id when the CRI plugin says it
/// belongs to a pod, else its own. Every container of a pod thus shares one shim process.
pub fn grouping_id<'a>(id: &'a str, annotations: &'a HashMap<String, String>) -> &'a str {
    match annotations.get(SANDBOX_ID_ANNOTATION) {
        Some(sandbox) if !sandbox.trim().is_empty() => sandbox.trim(),
        _ => id,
    }
}

/// True when a shim server answers on `address` (`unix:///run/containerd/s/<hex>`).
fn shim_listens(address: &str) -> bool {
    let path = address.strip_prefix("unix://").unwrap_or(address);
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

pub struct LxcriShim {
    namespace: String,
    /// containerd's socket (`-address`).
    address: String,
    id: String,
    bundle: String,
    exit: Arc<ExitSignal>,
}

#[async_trait]
impl Shim for LxcriShim {
    type T = Service;

    async fn new(_runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        LxcriShim {
            namespace: args.namespace.clone(),
            address: args.address.clone(),
            id: args.id.clone(),
            bundle: args.bundle.clone(),
            exit: Arc::new(ExitSignal::default()),
        }
    }

    async fn start_shim(&mut self, opts: StartOpts) -> containerd_shim::Result<String> {
        // One shim per pod: every container of a CRI pod is grouped under its sandbox's id, so
        // they all get the same socket address. The sandbox's own `start` spawns the server; its
        // containers' find it listening and hand back its address.
        let annotations = std::fs::read("config.json")
            .map(|b| spec_annotations(&b))
            .unwrap_or_default();
        let grouping = grouping_id(&opts.id, &annotations).to_string();
        let address = socket_address(&opts.address, &opts.namespace, &grouping);
        let address = if shim_listens(&address) {
            info!(
                "container {}: joining the shim of pod {grouping} at {address}",
                opts.id
            );
            address
        } else {
            // spawn() starts the server on that address; should another `start` of the same
            // pod win the race, the server it spawns finds the socket in use and answering, and
            // exits: both hand back the same address.
            spawn(opts, &grouping, Vec::new()).await?
        };
        containerd_shim::asynchronous::util::write_str_to_file("address", &address).await?;
        Ok(address)
    }

    async fn delete_shim(&mut self) -> containerd_shim::Result<api::DeleteResponse> {
        let bundle = if self.bundle.is_empty() {
            std::env::current_dir().unwrap_or_default()
        } else {
            self.bundle.clone().into()
        };
        let id = self.id.clone();
        let problems = tokio::task::spawn_blocking(move || container::cleanup_saved(&bundle))
            .await
            .unwrap_or_default();
        for p in problems {
            warn!("delete {id}: {p}");
        }
        Ok(api::DeleteResponse {
            pid: 0,
            exit_status: 137,
            exited_at: MessageField::some(convert_to_timestamp(Some(
                time::OffsetDateTime::now_utc(),
            ))),
            ..Default::default()
        })
    }

    async fn wait(&mut self) {
        self.exit.wait().await;
    }

    async fn create_task_service(&self, publisher: RemotePublisher) -> Service {
        Service::new(&self.namespace, &self.address, publisher, self.exit.clone()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_pod_container_is_grouped_under_its_sandbox() {
        let a = annotations(&[
            ("io.kubernetes.cri.container-type", "container"),
            (SANDBOX_ID_ANNOTATION, "sb1"),
        ]);
        assert_eq!(grouping_id("c1", &a), "sb1");
    }

    #[test]
    fn the_sandbox_is_grouped_under_itself() {
        let a = annotations(&[
            ("io.kubernetes.cri.container-type", "sandbox"),
            (SANDBOX_ID_ANNOTATION, "sb1"),
        ]);
        assert_eq!(grouping_id("sb1", &a), "sb1");
    }

    #[test]
    fn a_plain_container_has_a_shim_of_its_own() {
        assert_eq!(grouping_id("c1", &HashMap::new()), "c1");
        let blank = annotations(&[(SANDBOX_ID_ANNOTATION, " ")]);
        assert_eq!(grouping_id("c1", &blank), "c1");
    }

    #[test]
    fn annotations_come_from_the_spec_and_tolerate_garbage() {
        let spec = br#"{"ociVersion":"1.0.2","annotations":{"io.kubernetes.cri.sandbox-id":"p"}}"#;
        assert_eq!(grouping_id("c", &spec_annotations(spec)), "p");
        assert!(spec_annotations(br#"{"ociVersion":"1.0.2"}"#).is_empty());
        assert!(spec_annotations(b"not json").is_empty());
    }

    #[test]
    fn containers_of_one_pod_share_the_socket_address() {
        let sb = annotations(&[(SANDBOX_ID_ANNOTATION, "sb1")]);
        let a = socket_address("/run/c.sock", "k8s.io", grouping_id("sb1", &sb));
        let b = socket_address("/run/c.sock", "k8s.io", grouping_id("c2", &sb));
        let other = socket_address("/run/c.sock", "k8s.io", grouping_id("c3", &HashMap::new()));
        assert_eq!(a, b);
        assert_ne!(a, other);
        assert!(a.starts_with("unix:///run/containerd/s/"), "{a}");
    }
}
