//! Microthreads and the cluster: a run that takes spawns from other nodes (its
//! [`Serve`], a target of the cluster's), and the microthreads it starts for
//! them, which their parents' nodes join and stop through the cluster.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};

use super::spawn::{Link, spawn};
use super::store::{Image, Spawned};
use crate::channel::Message;
use crate::cluster::{Child, Incoming, Refusal, Target};
use crate::error::Failure;
use crate::run::{Completion, Member, Refused, Run};

/// Spawns from other nodes start in this run, detached (their parent is on
/// another node, which joins them through the cluster).
pub(crate) struct Serve {
    run: Weak<Run>,
    image: Arc<dyn Image>,
}

impl Serve {
    pub(crate) fn new(run: &Arc<Run>, image: &Arc<dyn Image>) -> Arc<Serve> {
        Arc::new(Serve {
            run: Arc::downgrade(run),
            image: image.clone(),
        })
    }
}

impl Target for Serve {
    fn is_live(&self) -> bool {
        self.run.upgrade().is_some_and(|run| !run.is_cancelling())
    }

    fn room(&self) -> Result<(), u32> {
        match self.run.upgrade() {
            Some(run) => run.room(),
            None => Err(0),
        }
    }

    fn start(&self, incoming: Incoming) -> Result<Arc<dyn Child>, (Refusal, Message)> {
        let Some(run) = self.run.upgrade() else {
            let why = "the run of the program on that node has ended".to_string();
            return Err((Refusal::NoSuchProgram(why), incoming.argument));
        };
        if !self.image.can_spawn() {
            return Err((Refusal::NotSpawnable, incoming.argument));
        }
        let spawned = Spawned {
            trampoline: incoming.trampoline,
            function: incoming.function,
            argument: incoming.argument,
        };
        let name = incoming
            .name
            .map(|n| std::sync::Arc::from(crate::limits::truncate(n, crate::limits::MAX_NAME)));
        match spawn(&run, &self.image, Link::Detached, spawned, name) {
            Ok((completion, member)) => {
                run.count_cluster_spawn(false);
                Ok(Arc::new(Spawn {
                    run: Arc::downgrade(&run),
                    completion,
                    member,
                }))
            }
            Err((Refused::LimitReached(max), argument)) => Err((Refusal::LimitReached(max), argument)),
        }
    }
}

/// A microthread started here for another node's spawn.
struct Spawn {
    run: Weak<Run>,
    completion: Arc<Completion>,
    member: Arc<Member>,
}

impl Child for Spawn {
    fn id(&self) -> u64 {
        self.member.me.id
    }

    fn stop(&self, now: bool) {
        if let Some(run) = self.run.upgrade() {
            let grace = match now {
                true => Some(std::time::Duration::ZERO),
                false => Some(run.options.cancel_grace),
            };
            run.cancel_member_within(&self.member, grace);
        }
    }

    fn outcome(&self) -> Pin<Box<dyn Future<Output = Result<Message, Failure>> + Send>> {
        let completion = self.completion.clone();
        Box::pin(async move {
            completion.finished().await;
            // Taken: joined, so never reported here as an unjoined failure; its
            // parent's node has it.
            completion.take()
        })
    }
}
