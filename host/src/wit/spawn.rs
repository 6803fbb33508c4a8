//! What a spawn here and a spawn on another node (`spawn_on`) share: the checks
//! before anything starts, how the new microthread is linked to the caller, its
//! name as kept (by default its function's), and the handle handed to the guest.

use std::sync::Arc;

use wasmtime::component::Resource;

use super::bindings::channel as wit_channel;
use super::bindings::thread::SpawnError;
use crate::microthread::{Link, Microthread};
use crate::run::{Completion, JoinHandle, Member};

impl Microthread {
    /// Why a spawn of this program with `argument` is refused before anything
    /// else: the program cannot be spawned, or the argument is over the message
    /// size limit.
    pub(super) fn spawn_refusal(&self, argument: &wit_channel::Message) -> Option<SpawnError> {
        if !self.image.can_spawn() {
            return Some(SpawnError::NotSpawnable);
        }
        let max = self.run.limits.max_message_size;
        (argument.byte_len() > max as usize).then_some(SpawnError::ArgumentTooLarge(max))
    }

    /// How a spawn links the new microthread to this one.
    pub(super) fn spawn_link(&self, detached: bool) -> Link<'_> {
        match detached {
            true => Link::Detached,
            false => Link::Child(&self.member),
        }
    }

    /// The handle of a microthread just spawned (on `node`, if another node runs
    /// it), for the guest; a structured child is also one this microthread waits
    /// for.
    pub(super) fn hand_out(
        &mut self,
        completion: Arc<Completion>,
        member: Arc<Member>,
        detached: bool,
        node: Option<String>,
    ) -> wasmtime::Result<Resource<JoinHandle>> {
        if !detached {
            self.push_child(completion.clone());
        }
        Ok(self.table.push(JoinHandle {
            completion,
            member,
            node,
        })?)
    }
}

impl Microthread {
    /// A spawned microthread's name, as kept: the one given, else its function's
    /// (a Rust guest's, from the program's name section); copied into every
    /// failure and report of it, a long one is cut.
    pub(super) fn spawn_name(
        &self,
        name: Option<String>,
        trampoline: u32,
        function: u32,
    ) -> Option<Arc<str>> {
        match name {
            Some(given) => Some(Arc::from(crate::limits::truncate(given, crate::limits::MAX_NAME))),
            // Shared, not copied: one spawn of many.
            None => self.image.entry_name(trampoline, function).cloned(),
        }
    }
}
