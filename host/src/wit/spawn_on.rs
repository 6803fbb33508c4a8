//! `thread.spawn-on`: a spawn on another node of the cluster (or on the least
//! loaded live node), translated to the cluster's request and a local stand-in;
//! a spawn that lands on this node is an ordinary `spawn`.

use wasmtime::component::Resource;

use super::bindings::channel as wit_channel;
use super::bindings::thread::{self as wit, SpawnError};
use crate::cluster::{Cluster, Outgoing, Refusal};
use crate::microthread::{self, Microthread, RemoteBody};
use crate::run::JoinHandle;

/// What `spawn-on` starts, but for where and with what.
pub(super) struct Spawn {
    pub(super) trampoline: u32,
    pub(super) function: u32,
    pub(super) name: Option<String>,
    pub(super) detached: bool,
}

impl Microthread {
    /// Spawn on node `to` (none: the least loaded live node that takes it).
    pub(super) async fn spawn_on_cluster(
        &mut self,
        cluster: &Cluster,
        to: Option<String>,
        spawn: Spawn,
        mut argument: wit_channel::Message,
    ) -> wasmtime::Result<Result<Resource<JoinHandle>, wit::Refused>> {
        let refused = |error, argument| Ok(Err(wit::Refused { error, argument }));
        if self.run.schedule().is_some() {
            let why = "a deterministic run spawns on no other node".to_string();
            return refused(SpawnError::NoSuchNode(why), argument);
        }
        if let Some(error) = self.spawn_refusal(&argument) {
            return refused(error, argument);
        }
        // It waits for the other node's answer: a wait, as a blocking call's.
        self.begin_blocking();
        let here = cluster.node_id();
        let any = to.is_none();
        let candidates = match to {
            Some(node) => vec![node],
            None => cluster.candidates(),
        };
        let mut last = None;
        for node in candidates {
            let tried = if node == here {
                let Spawn {
                    trampoline,
                    function,
                    ref name,
                    detached,
                } = spawn;
                match wit::Host::spawn(self, trampoline, function, argument, name.clone(), detached)? {
                    Ok(handle) => return Ok(Ok(handle)),
                    Err(r) => r,
                }
            } else {
                match self.spawn_remote(cluster, &node, &spawn, argument).await? {
                    Ok(handle) => return Ok(Ok(handle)),
                    Err(r) => r,
                }
            };
            // Without a node named, one that is full (or gone) is passed over.
            if !(any
                && matches!(
                    tried.error,
                    SpawnError::LimitReached(_) | SpawnError::NoSuchNode(_)
                ))
            {
                return Ok(Err(tried));
            }
            argument = tried.argument;
            last = Some(tried.error);
        }
        let error = last.unwrap_or_else(|| SpawnError::NoSuchNode("the cluster has no live node".into()));
        refused(error, argument)
    }

    /// Spawn on node `to`, another node: its stand-in here is the child.
    async fn spawn_remote(
        &mut self,
        cluster: &Cluster,
        to: &str,
        spawn: &Spawn,
        argument: wit_channel::Message,
    ) -> wasmtime::Result<Result<Resource<JoinHandle>, wit::Refused>> {
        // Its limits are the other node's: the stand-in here is never refused.
        let slot = self.run.reserve_stand_in();
        let argument = self.take_message(argument)?;
        let name = self.spawn_name(spawn.name.clone(), spawn.trampoline, spawn.function);
        let out = Outgoing {
            program: self.image.program().to_string(),
            trampoline: spawn.trampoline,
            function: spawn.function,
            argument,
            name: name.as_deref().map(str::to_owned),
        };
        match cluster.spawn_on(to, out).await {
            Ok(started) => {
                let node = started.node().to_string();
                tracing::debug!(target: "weft::microthread", node, remote_id = started.remote_id(), "spawned on another node");
                let body: RemoteBody = Box::new(move |member| {
                    Box::pin(async move { started.outcome(member.cancel.requested()).await })
                });
                let link = self.spawn_link(spawn.detached);
                let (completion, member) =
                    microthread::spawn_remote(&self.run, &self.image, link, slot, node.clone(), body, name);
                Ok(Ok(self.hand_out(
                    completion,
                    member,
                    spawn.detached,
                    Some(node),
                )?))
            }
            Err((refusal, argument)) => {
                drop(slot);
                let error = match refusal {
                    Refusal::LimitReached(max) => SpawnError::LimitReached(max),
                    Refusal::NoSuchProgram(why) => SpawnError::NoSuchProgram(why),
                    Refusal::NotSpawnable => SpawnError::NotSpawnable,
                    Refusal::NoSuchNode(why) => SpawnError::NoSuchNode(why),
                    Refusal::CannotMove(why) => SpawnError::CannotMove(why),
                    Refusal::TooLarge(max) => SpawnError::ArgumentTooLarge(max),
                };
                Ok(Err(wit::Refused {
                    error,
                    argument: self.give_message(argument)?,
                }))
            }
        }
    }
}
