//! The registry across nodes: in a cluster, a name a microthread registers
//! (`weft_guest::register`) is the cluster's. It is published on the subject
//! `weft.<cluster>.reg.<the name in hex>`, where its home answers: whether it is
//! held (a second node's registration of it is refused), and attachments of
//! remote senders, with the fingerprint of its type. A name is withdrawn when its
//! registrant ends ([`Published`] is dropped), or when its node goes down (the
//! server drops the node's subscriptions): a lookup then finds nothing.
//!
//! Two nodes that register one name at the same moment may both succeed: the
//! probe is not a lock. A lookup then attaches to one of them.

use std::sync::Arc;
use std::time::Duration;

use super::home::{Export, answer_requests};
use super::node::{AttachFailed, Node};
use super::wire::{self, Held, RegistryRequest, Side};
use crate::channel::{Channel, SenderHandle};
use crate::error::ClusterError;

/// How long a registry request may take before the name counts as not held
/// (answers come within milliseconds; no responders come at once).
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// A name published to the cluster: withdrawn when dropped.
pub struct Published {
    answering: tokio::task::AbortHandle,
}

impl Drop for Published {
    fn drop(&mut self) {
        // The task's subscription goes with it: the server forgets the name.
        self.answering.abort();
    }
}

impl std::fmt::Debug for Published {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Published")
    }
}

/// How publishing a name went.
pub(crate) enum Publish {
    /// Published, until the guard is dropped.
    Done(Published),
    /// Another node holds it: its id.
    Taken(String),
}

/// The subject of registry name `name`.
fn subject(node: &Node, name: &str) -> String {
    let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
    format!("weft.{}.reg.{hex}", node.cluster_name())
}

/// Publish `name`, registered on this node for `chan` with `fingerprint`,
/// unless another node holds it.
pub(super) async fn publish(
    node: &Arc<Node>,
    name: &str,
    fingerprint: &str,
    chan: Arc<Channel>,
) -> Result<Publish, ClusterError> {
    let subject = subject(node, name);
    let client = node.client();
    let probe = wire::encode(&RegistryRequest::Probe);
    match tokio::time::timeout(ASK_TIMEOUT, client.request(subject.clone(), probe)).await {
        Ok(Ok(reply)) => {
            if let Ok(held) = wire::decode::<Held>(&reply.payload) {
                return Ok(Publish::Taken(held.node));
            }
        }
        Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => {}
        Ok(Err(e)) => {
            return Err(ClusterError::Lost(format!(
                "cannot ask whether {name:?} is held: {e}"
            )));
        }
        Err(_) => {
            return Err(ClusterError::Lost(format!(
                "nobody answered whether {name:?} is held in {ASK_TIMEOUT:?}"
            )));
        }
    }
    let requests = client
        .subscribe(subject)
        .await
        .map_err(|e| ClusterError::Lost(format!("cannot publish {name:?}: {e}")))?;
    // Published once the server has the subscription.
    match tokio::time::timeout(ASK_TIMEOUT, client.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(ClusterError::Lost(format!("cannot publish {name:?}: {e}"))),
        Err(_) => {
            return Err(ClusterError::Lost(format!(
                "the server did not confirm {name:?} in {ASK_TIMEOUT:?}"
            )));
        }
    }
    let export = Arc::new(Export::registered(chan, fingerprint));
    let answering = node
        .handle()
        .spawn(answer_requests(node.clone(), export, requests))
        .abort_handle();
    Ok(Publish::Done(Published { answering }))
}

/// Attach a sender of the channel registered under `name` on another node, and
/// the fingerprint of its type; `None` if no node holds the name.
pub(super) async fn lookup(
    node: &Arc<Node>,
    name: &str,
) -> Result<Option<(SenderHandle, String)>, ClusterError> {
    match node
        .attach_once(subject(node, name), Side::Sender, ASK_TIMEOUT)
        .await
    {
        Ok(a) => {
            let tx = super::proxy::sender_end::<()>(node, a.lease, a.home, a.capacity, a.inbox);
            Ok(Some((tx.into_handle(), a.fingerprint.unwrap_or_default())))
        }
        Err(AttachFailed::NoResponders) => Ok(None),
        Err(AttachFailed::Refused(reason)) => Err(ClusterError::Refused {
            name: name.to_string(),
            reason,
        }),
        Err(AttachFailed::Lost(why)) => Err(ClusterError::Lost(format!("cannot look {name:?} up: {why}"))),
    }
}
