//! Task events (`/tasks/create`, `/tasks/exit`, ...) on their way to containerd.
//!
//! Requests only put an event in a queue, which never blocks them; one forwarder publishes the
//! queue in order, each event with a deadline, so a containerd that does not answer delays
//! events, never requests or exit handling. One queue keeps every container's events in the
//! order the task service produced them (create, start, exec-added, exec-started, exit, delete).

use containerd_shim::asynchronous::publisher::RemotePublisher;
use containerd_shim_protos::protobuf::MessageDyn;
use containerd_shim_protos::ttrpc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long one event may take to publish (the runc shim's deadline too).
pub const PUBLISH_DEADLINE: Duration = Duration::from_secs(5);

/// One event: its topic and message.
pub struct Event {
    pub topic: &'static str,
    pub message: Box<dyn MessageDyn>,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}", self.topic, self.message)
    }
}

/// The sending end of the queue. Cheap to clone.
#[derive(Clone)]
pub struct Events {
    tx: mpsc::UnboundedSender<Event>,
}

impl Events {
    /// A queue and its receiving end (the forwarder, or a test).
    pub fn channel() -> (Events, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Events { tx }, rx)
    }

    /// A queue whose events a task publishes to containerd through `publisher`.
    pub fn forward_to(publisher: RemotePublisher, namespace: String) -> Events {
        let (events, mut rx) = Events::channel();
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                let ctx = ttrpc::context::with_timeout(PUBLISH_DEADLINE.as_nanos() as i64);
                let publish = publisher.publish(ctx, ev.topic, &namespace, ev.message);
                match tokio::time::timeout(PUBLISH_DEADLINE, publish).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => log::warn!("publishing {}: {e}", ev.topic),
                    Err(_) => log::warn!(
                        "publishing {}: containerd did not take it within {} s; dropped",
                        ev.topic,
                        PUBLISH_DEADLINE.as_secs()
                    ),
                }
            }
        });
        events
    }

    /// Queues an event; never blocks.
    pub fn send(&self, topic: &'static str, message: impl MessageDyn) {
        let _ = self.tx.send(Event {
            topic,
            message: Box::new(message),
        });
    }
}
