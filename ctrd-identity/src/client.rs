//! The containerd side: the four v1 services asked over gRPC (tonic, containerd-client's
//! generated bindings), with the container's namespace in every request.

use crate::verify::{self, Content, Subject};
use crate::{IdentifyError, Identity, Request};
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::StatSnapshotRequest;
use containerd_client::services::v1::{GetContainerRequest, GetImageRequest, ReadContentRequest};
use containerd_client::tonic::transport::Channel;
use containerd_client::tonic::{self, Code, Status};
use image_core::layout::MAX_JSON_BYTES;

/// Identifies the image of `req.container_id` (see the crate documentation). Everything,
/// connecting included, must finish within `req.timeout`.
pub async fn identify(req: &Request) -> Result<Identity, IdentifyError> {
    match tokio::time::timeout(req.timeout, ask(req)).await {
        Ok(r) => r,
        Err(_) => Err(unavailable(
            req,
            format!(
                "containerd at {} did not answer within {} ms",
                req.address.display(),
                req.timeout.as_millis()
            ),
        )),
    }
}

/// [`identify`] on a runtime of its own (one thread), for callers without one.
pub fn identify_blocking(req: &Request) -> Result<Identity, IdentifyError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| unavailable(req, format!("cannot start a tokio runtime: {e}")))?;
    rt.block_on(identify(req))
}

fn unavailable(req: &Request, reason: String) -> IdentifyError {
    IdentifyError::Unavailable {
        container: req.container_id.clone(),
        reason,
    }
}

/// A gRPC status as text: `NotFound: container "x" in namespace "y": not found`.
fn status_text(s: &Status) -> String {
    format!("{:?}: {}", s.code(), s.message())
}

fn namespaced<T>(
    ns: &tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
    msg: T,
) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    // The header containerd reads the namespace from (its namespaces package, gRPC side).
    r.metadata_mut().insert("containerd-namespace", ns.clone());
    r
}

async fn ask(req: &Request) -> Result<Identity, IdentifyError> {
    if req.address.as_os_str().is_empty() {
        return Err(unavailable(req, "no containerd address was given".into()));
    }
    if req.container_id.is_empty() {
        return Err(unavailable(req, "the container id is empty".into()));
    }
    let ns = req
        .namespace
        .parse()
        .ok()
        .filter(|_| !req.namespace.is_empty())
        .ok_or_else(|| {
            unavailable(
                req,
                format!("{:?} is not a containerd namespace name", req.namespace),
            )
        })?;
    if !req.address.exists() {
        return Err(unavailable(
            req,
            format!(
                "there is no socket at {}: containerd is not running there (check the shim's \
                 -address)",
                req.address.display()
            ),
        ));
    }
    let channel: Channel = containerd_client::connect(&req.address)
        .await
        .map_err(|e| {
            let mut text = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                text.push_str(": ");
                text.push_str(&s.to_string());
                src = s.source();
            }
            unavailable(
                req,
                format!(
                    "cannot connect to containerd at {}: {text}",
                    req.address.display()
                ),
            )
        })?;

    // 1. The container: image, snapshotter, snapshot key.
    let container = ContainersClient::new(channel.clone())
        .get(namespaced(
            &ns,
            GetContainerRequest {
                id: req.container_id.clone(),
            },
        ))
        .await
        .map_err(|s| {
            unavailable(
                req,
                if s.code() == Code::NotFound {
                    format!(
                        "containerd has no container {:?} in namespace {:?}",
                        req.container_id, req.namespace
                    )
                } else {
                    format!("Containers.Get failed: {}", status_text(&s))
                },
            )
        })?
        .into_inner()
        .container
        .ok_or_else(|| unavailable(req, "Containers.Get returned no container".into()))?;
    if container.image.is_empty() {
        return Err(unavailable(
            req,
            "the container was not created from an image (it has no image name)".into(),
        ));
    }
    if container.snapshot_key.is_empty() || container.snapshotter.is_empty() {
        return Err(unavailable(
            req,
            format!(
                "the container has no snapshot (snapshotter {:?}, key {:?}): its rootfs was not \
                 prepared by containerd from image {:?}",
                container.snapshotter, container.snapshot_key, container.image
            ),
        ));
    }

    // 2. Its snapshot's parent: the chain ID of the image's top layer.
    let info = SnapshotsClient::new(channel.clone())
        .stat(namespaced(
            &ns,
            StatSnapshotRequest {
                snapshotter: container.snapshotter.clone(),
                key: container.snapshot_key.clone(),
            },
        ))
        .await
        .map_err(|s| {
            unavailable(
                req,
                format!(
                    "cannot stat its snapshot {:?} in snapshotter {:?}: {}",
                    container.snapshot_key,
                    container.snapshotter,
                    status_text(&s)
                ),
            )
        })?
        .into_inner()
        .info
        .ok_or_else(|| unavailable(req, "Snapshots.Stat returned no info".into()))?;

    // 3. The image's target.
    let image = ImagesClient::new(channel.clone())
        .get(namespaced(
            &ns,
            GetImageRequest {
                name: container.image.clone(),
            },
        ))
        .await
        .map_err(|s| {
            unavailable(
                req,
                if s.code() == Code::NotFound {
                    format!(
                        "its image {:?} no longer exists in namespace {:?} (removed after the \
                         container was created)",
                        container.image, req.namespace
                    )
                } else {
                    format!(
                        "Images.Get({:?}) failed: {}",
                        container.image,
                        status_text(&s)
                    )
                },
            )
        })?
        .into_inner()
        .image
        .ok_or_else(|| unavailable(req, "Images.Get returned no image".into()))?;
    let target = image.target.ok_or_else(|| {
        unavailable(
            req,
            format!("image {:?} has no target descriptor", container.image),
        )
    })?;

    // 4. and 5. Read and check index, manifest and config; compare the chain ID.
    let subject = Subject {
        container: req.container_id.clone(),
        image: container.image,
        snapshotter: container.snapshotter,
        snapshot_key: container.snapshot_key,
        parent: info.parent,
        target_media_type: target.media_type,
        target_digest: target.digest,
        target_size: target.size,
    };
    let mut content = GrpcContent {
        client: ContentClient::new(channel),
        ns,
    };
    verify::verify(&mut content, &subject, &req.platform).await
}

/// containerd's content service as a [`Content`] store.
struct GrpcContent {
    client: ContentClient<Channel>,
    ns: tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
}

impl Content for GrpcContent {
    async fn read(&mut self, digest: &str, size: u64) -> Result<Vec<u8>, String> {
        let mut stream = self
            .client
            .read(namespaced(
                &self.ns,
                ReadContentRequest {
                    digest: digest.to_string(),
                    offset: 0,
                    size: 0,
                },
            ))
            .await
            .map_err(|s| status_text(&s))?
            .into_inner();
        let mut out = Vec::with_capacity(size.min(MAX_JSON_BYTES) as usize);
        while let Some(chunk) = stream.message().await.map_err(|s| status_text(&s))? {
            if chunk.offset != out.len() as i64 {
                return Err(format!(
                    "a chunk at offset {} after {} bytes",
                    chunk.offset,
                    out.len()
                ));
            }
            out.extend_from_slice(&chunk.data);
            // More than the descriptor says: stop early, the size check reports it.
            if out.len() as u64 > size {
                break;
            }
        }
        Ok(out)
    }
}
