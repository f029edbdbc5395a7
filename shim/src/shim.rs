//! The shim's process lifecycle: the `start` and `delete` subcommands and the server.

use crate::container;
use crate::service::Service;
use async_trait::async_trait;
use containerd_shim::asynchronous::publisher::RemotePublisher;
use containerd_shim::asynchronous::{spawn, ExitSignal, Shim};
use containerd_shim::util::convert_to_timestamp;
use containerd_shim::{api, Config, Flags, StartOpts};
use containerd_shim_protos::protobuf::MessageField;
use log::warn;
use std::sync::Arc;

pub const RUNTIME_ID: &str = "io.containerd.lxcri.v2";

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
        // One shim per container for now; a pod's containers will share their sandbox's shim.
        let grouping = opts.id.clone();
        let address = spawn(opts, &grouping, Vec::new()).await?;
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
