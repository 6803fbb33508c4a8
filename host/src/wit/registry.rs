//! The host side of `weft:runtime/registry`: a guest's registrations and lookups,
//! in its run's registry of named endpoints.

use wasmtime::component::Resource;

use super::bindings::registry::{self as wit, RegisterError};
use crate::channel::SenderHandle;
use crate::limits::{MAX_FINGERPRINT, MAX_NAME};
use crate::microthread::Microthread;
use crate::run;

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
        let registered = self
            .run
            .registry
            .register(&name, &fingerprint, copy, self.me.id, &self.run.handles);
        Ok(registered.map_err(|e| match e {
            run::RegisterError::Taken { by } => RegisterError::Taken(by),
            run::RegisterError::NameTooLong => RegisterError::NameTooLong(MAX_NAME as u32),
            run::RegisterError::FingerprintTooLong => {
                RegisterError::FingerprintTooLong(MAX_FINGERPRINT as u32)
            }
            run::RegisterError::TooManyHandles(max) => RegisterError::TooManyHandles(max),
        }))
    }

    async fn whereis(&mut self, name: String) -> wasmtime::Result<Option<(Resource<SenderHandle>, String)>> {
        let Some(found) = self.run.registry.whereis(&name) else {
            return Ok(None);
        };
        let mut sender = found.sender;
        sender.set_holder(Some(self.holder.clone()));
        Ok(Some((self.table.push(sender)?, found.fingerprint.to_string())))
    }
}
