//! The host side of `weft:runtime/registry`: a guest's registrations and lookups,
//! in its run's registry of named endpoints.

use std::sync::Arc;

use wasmtime::component::Resource;

use super::bindings::registry::{self as wit, RegisterError};
use crate::channel::{Channel, SenderHandle};
use crate::limits::{MAX_FINGERPRINT, MAX_NAME};
use crate::microthread::Microthread;
use crate::run::{self, Run};

impl wit::Host for Microthread {
    async fn register(
        &mut self,
        name: String,
        fingerprint: String,
        sender: Resource<SenderHandle>,
    ) -> wasmtime::Result<Result<(), RegisterError>> {
        // The registry's sender is held by nobody: the registrant's own senders
        // carry its failure to the receivers.
        let copy = self.table.get(&sender)?.clone_for(None);
        let chan = copy.channel().clone();
        let registered = self
            .run
            .registry
            .register(&name, &fingerprint, copy, self.me.id, &self.run.handles);
        if let Err(e) = registered {
            return Ok(Err(match e {
                run::RegisterError::Taken { by } => RegisterError::Taken(by),
                run::RegisterError::NameTooLong => RegisterError::NameTooLong(MAX_NAME as u32),
                run::RegisterError::FingerprintTooLong => {
                    RegisterError::FingerprintTooLong(MAX_FINGERPRINT as u32)
                }
                run::RegisterError::TooManyHandles(max) => RegisterError::TooManyHandles(max),
            }));
        }
        Ok(publish(self.run.clone(), self.me.id, &name, &fingerprint, chan).await)
    }

    async fn whereis(&mut self, name: String) -> wasmtime::Result<Option<(Resource<SenderHandle>, String)>> {
        let (mut sender, fingerprint) = match self.run.registry.whereis(&name) {
            Some(found) => (found.sender, found.fingerprint.to_string()),
            None => match look_up_in_cluster(self.run.clone(), &name).await {
                Some(found) => found,
                None => return Ok(None),
            },
        };
        sender.set_holder(Some(self.holder.clone()));
        Ok(Some((self.table.push(sender)?, fingerprint)))
    }
}

/// In a cluster, publish the name microthread `me` just registered, unless
/// another node holds it (then the registration is undone). A deterministic run
/// keeps its names to itself.
#[cfg_attr(not(feature = "cluster"), allow(clippy::unused_async))]
async fn publish(
    run: Arc<Run>,
    me: u64,
    name: &str,
    fingerprint: &str,
    chan: Arc<Channel>,
) -> Result<(), RegisterError> {
    #[cfg(feature = "cluster")]
    if let Some(cluster) = run.cluster.as_ref().filter(|_| run.schedule().is_none()) {
        match cluster.publish_name(name, fingerprint, chan).await {
            Ok(crate::cluster::Publish::Done(published)) => {
                run.registry.keep(name, me, Box::new(published));
            }
            Ok(crate::cluster::Publish::Taken(node)) => {
                run.registry.unregister(name, me);
                return Err(RegisterError::TakenOn(node));
            }
            // Registered on this node, not across the cluster: it is said, and the
            // name is found here.
            Err(e) => tracing::warn!("the name {name:?} is registered on this node only: {e}"),
        }
    }
    #[cfg(not(feature = "cluster"))]
    let _only_in_a_cluster = (run, me, name, fingerprint, chan);
    Ok(())
}

/// In a cluster, a sender of the channel registered under `name` on another node,
/// and its fingerprint.
#[cfg_attr(not(feature = "cluster"), allow(clippy::unused_async))]
async fn look_up_in_cluster(run: Arc<Run>, name: &str) -> Option<(SenderHandle, String)> {
    #[cfg(feature = "cluster")]
    if let Some(cluster) = run.cluster.as_ref().filter(|_| run.schedule().is_none()) {
        match cluster.lookup_name(name).await {
            Ok(found) => return found,
            // Not found while the cluster cannot be asked: it is said.
            Err(e) => tracing::warn!("cannot look {name:?} up across the cluster: {e}"),
        }
    }
    #[cfg(not(feature = "cluster"))]
    let _only_in_a_cluster = (run, name);
    None
}
