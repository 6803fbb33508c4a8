//! The host side of `weft:runtime/thread`: spawn, join, yield, sleep, identity,
//! exit.

use std::time::Duration;

use wasmtime::component::Resource;
use wasmtime_wasi::I32Exit;

use super::wit_failure;
use crate::bindings::channel as wit_channel;
use crate::bindings::thread::{self as wit, SpawnError};
use crate::microthread::{self, MtState};
use crate::run::{JoinSlot, Probe, Refused, Waiting};

impl MtState {
    /// A refused spawn gives its argument back: its endpoints return to the guest.
    fn refuse(
        &mut self,
        error: SpawnError,
        argument: crate::channel::Message,
    ) -> wasmtime::Result<Result<Resource<JoinSlot>, wit::Refused>> {
        Ok(Err(wit::Refused {
            error,
            argument: self.give_message(argument)?,
        }))
    }
}

impl wit::Host for MtState {
    async fn spawn(
        &mut self,
        trampoline: u32,
        function: u32,
        argument: wit_channel::Message,
        name: Option<String>,
    ) -> wasmtime::Result<Result<Resource<JoinSlot>, wit::Refused>> {
        if self.image.entry.is_none() {
            return Ok(Err(wit::Refused {
                error: SpawnError::NotSpawnable,
                argument,
            }));
        }
        let max = self.run.limits.max_message_size;
        if argument.bytes.len() > max as usize {
            return Ok(Err(wit::Refused {
                error: SpawnError::ArgumentTooLarge(max),
                argument,
            }));
        }
        let argument = self.take_message(argument)?;
        match microthread::spawn(&self.run, &self.image, trampoline, function, argument, name) {
            Ok(completion) => {
                self.push_child(completion.clone());
                Ok(Ok(self.table.push(JoinSlot { completion })?))
            }
            Err((Refused::LimitReached(max), argument)) => {
                self.refuse(SpawnError::LimitReached(max), argument)
            }
        }
    }

    async fn yield_now(&mut self) -> wasmtime::Result<()> {
        yield_once().await;
        Ok(())
    }

    async fn sleep(&mut self, nanoseconds: u64) -> wasmtime::Result<()> {
        tokio::time::sleep(Duration::from_nanos(nanoseconds)).await;
        Ok(())
    }

    async fn current_id(&mut self) -> wasmtime::Result<u64> {
        Ok(self.me.id)
    }

    async fn current_name(&mut self) -> wasmtime::Result<Option<String>> {
        Ok(self.me.name.as_deref().map(str::to_owned))
    }

    async fn exit(&mut self, code: u8) -> wasmtime::Result<()> {
        Err(I32Exit(i32::from(code)).into())
    }

    async fn set_panic_message(&mut self, message: String) -> wasmtime::Result<()> {
        self.panic_message = Some(message);
        Ok(())
    }
}

impl wit::HostJoinHandle for MtState {
    async fn id(&mut self, handle: Resource<JoinSlot>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&handle)?.completion.id())
    }

    async fn join(
        &mut self,
        handle: Resource<JoinSlot>,
    ) -> wasmtime::Result<Result<wit_channel::Message, crate::bindings::types::Failure>> {
        let completion = self.table.get(&handle)?.completion.clone();
        let outcome = {
            let _blocked = self.run.members.block(
                &self.member,
                Waiting::Join(completion.id()),
                Probe::Completion(completion.clone()),
            );
            completion.join().await
        };
        match outcome {
            Ok(m) => Ok(Ok(self.give_message(m)?)),
            Err(f) => Ok(Err(wit_failure(f))),
        }
    }

    async fn drop(&mut self, handle: Resource<JoinSlot>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        Ok(())
    }
}

/// Give the other microthreads of this worker a turn: wake this task and return
/// `Pending` once, so that it goes to the back of the worker's run queue. (Cheaper
/// than `tokio::task::yield_now`, which defers the wake-up until the worker has
/// polled its I/O driver, a system call per yield; timers and I/O are still polled
/// every `event_interval` ticks.)
async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return std::task::Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await
}
