//! The host side of `weft:runtime/thread`: spawn (structured or detached), join,
//! cancel (with the run's grace or the caller's), yield, sleep, atomic sections,
//! identity, monitors, a supervisor's giving up and its restart count, exit.

use std::time::Duration;

use wasmtime::component::Resource;
use wasmtime_wasi::I32Exit;

use super::bindings::channel as wit_channel;
use super::bindings::thread::{self as wit, JoinError, SpawnError};
use super::types::wit_failure;
use crate::channel::{Channel, ReceiverHandle};
use crate::microthread::{self, Microthread, Spawned};
use crate::run::{BlockedOn, JoinHandle, Probe, Refused};

impl Microthread {
    /// A blocking call begins: it ends any atomic section (it gives the others a
    /// turn anyway).
    pub(super) fn begin_blocking(&self) {
        self.member.atomic.end_all();
    }

    async fn join_with(
        &mut self,
        handle: Resource<JoinHandle>,
        timeout: Option<Duration>,
    ) -> wasmtime::Result<Result<wit_channel::Message, JoinError>> {
        self.begin_blocking();
        let completion = self.table.get(&handle)?.completion.clone();
        let finished = {
            let cancel = &self.member.cancel;
            let Ok(_in_call) = cancel.begin() else {
                return Ok(Err(JoinError::Cancelled));
            };
            // A cancellation wakes the join through the probe (see `Probe::interrupt`).
            let _blocked = self.run.members.block(
                &self.member,
                BlockedOn::Join(completion.id()),
                Probe::Completion(completion.clone()),
                timeout.is_some(),
            );
            let wait = completion.finished_unless(|| cancel.interrupts());
            let finished = match timeout {
                None => Some(wait.await),
                Some(d) => tokio::time::timeout(d, wait).await.ok(),
            };
            if finished == Some(false) {
                cancel.deliver();
            }
            finished
        };
        match finished {
            Some(false) => Ok(Err(JoinError::Cancelled)),
            None => Ok(Err(JoinError::Timeout)),
            Some(true) => match completion.take() {
                Ok(m) => Ok(Ok(self.give_message(m)?)),
                Err(f) => Ok(Err(JoinError::Failed(wit_failure(f)))),
            },
        }
    }
}

impl wit::Host for Microthread {
    fn spawn(
        &mut self,
        trampoline: u32,
        function: u32,
        argument: wit_channel::Message,
        name: Option<String>,
        detached: bool,
    ) -> wasmtime::Result<Result<Resource<JoinHandle>, wit::Refused>> {
        if let Some(error) = self.spawn_refusal(&argument) {
            return Ok(Err(wit::Refused { error, argument }));
        }
        let argument = self.take_message(argument)?;
        let spawned = Spawned {
            trampoline,
            function,
            argument,
        };
        let spawn = microthread::spawn(
            &self.run,
            &self.image,
            self.spawn_link(detached),
            spawned,
            self.spawn_name(name, trampoline, function),
        );
        match spawn {
            Ok((completion, member)) => Ok(Ok(self.hand_out(completion, member, detached, None)?)),
            Err((Refused::LimitReached(max), argument)) => Ok(Err(wit::Refused {
                error: SpawnError::LimitReached(max),
                // The refused argument's endpoints return to the guest.
                argument: self.give_message(argument)?,
            })),
        }
    }

    async fn spawn_on(
        &mut self,
        node: Option<String>,
        trampoline: u32,
        function: u32,
        argument: wit_channel::Message,
        name: Option<String>,
        detached: bool,
    ) -> wasmtime::Result<Result<Resource<JoinHandle>, wit::Refused>> {
        #[cfg(feature = "cluster")]
        if let Some(cluster) = self.run.cluster.clone() {
            let spawn = super::spawn_on::Spawn {
                trampoline,
                function,
                name,
                detached,
            };
            return self.spawn_on_cluster(&cluster, node, spawn, argument).await;
        }
        let _where = node;
        Ok(Err(wit::Refused {
            error: SpawnError::NoSuchNode(
                "this program runs in no cluster: start it with `weft run --cluster URL` (or on a runtime \
                 built with RuntimeBuilder::cluster), or spawn it here with `spawn`"
                    .into(),
            ),
            argument,
        }))
    }

    async fn yield_now(&mut self) -> wasmtime::Result<()> {
        // A yield gives the others a turn: it ends an atomic section.
        self.begin_blocking();
        yield_once().await;
        Ok(())
    }

    async fn sleep(&mut self, nanoseconds: u64) -> wasmtime::Result<Result<(), ()>> {
        self.begin_blocking();
        let d = Duration::from_nanos(nanoseconds);
        // Shown in the live view (a sleep always ends: no deadlock). On tokio's
        // clock: a deterministic run's is virtual, and so is its `until`.
        let _asleep = tokio::time::Instant::now()
            .into_std()
            .checked_add(d)
            .map(|until| {
                self.run
                    .members
                    .block(&self.member, BlockedOn::Sleep(until), Probe::Nothing, true)
            });
        let nap = tokio::time::sleep(d);
        Ok(self
            .member
            .cancel
            .or_cancelled(nap)
            .await
            .map_err(|_cancelled| ()))
    }

    fn cancelled(&mut self) -> wasmtime::Result<bool> {
        Ok(self.member.cancel.is_requested())
    }

    fn own_shutdown(&mut self) -> wasmtime::Result<()> {
        self.member.cancel.own_shutdown();
        Ok(())
    }

    fn atomic_begin(&mut self) -> wasmtime::Result<()> {
        self.member.atomic.begin();
        Ok(())
    }

    async fn atomic_end(&mut self) -> wasmtime::Result<()> {
        if self.member.atomic.end() {
            // The preemption that fell due inside the section.
            yield_once().await;
        }
        Ok(())
    }

    fn current_id(&mut self) -> wasmtime::Result<u64> {
        Ok(self.me.id)
    }

    fn current_name(&mut self) -> wasmtime::Result<Option<String>> {
        Ok(self.me.name.as_deref().map(str::to_owned))
    }

    fn monitor(
        &mut self,
        id: u64,
    ) -> wasmtime::Result<Result<Resource<ReceiverHandle>, wit_channel::OpenError>> {
        let Some((end, rx)) = Channel::open_monitor(self.run.next_channel_id(), &self.run.budget) else {
            return Ok(Err(wit_channel::OpenError::TooManyChannels(
                self.run.budget.max_channels(),
            )));
        };
        // In the table first: past the handle limit, this fails the microthread,
        // and the monitor was never there.
        let rx = self.table.push(rx)?;
        self.run.members.monitor(id, end);
        Ok(Ok(rx))
    }

    fn give_up(&mut self, message: String) -> wasmtime::Result<()> {
        // Copied into the failure, as a panic message is: a long one is cut.
        let message = crate::limits::truncate(message, crate::limits::MAX_PANIC_MESSAGE);
        Err(microthread::GaveUp(message).into())
    }

    fn count_restart(&mut self) -> wasmtime::Result<()> {
        self.run.count_restart();
        Ok(())
    }

    fn exit(&mut self, code: u8) -> wasmtime::Result<()> {
        Err(I32Exit(i32::from(code)).into())
    }

    fn set_panic_message(&mut self, message: String) -> wasmtime::Result<()> {
        // Copied into the failure, which channels clone to every receiver: a
        // long one is cut.
        self.panic_message = Some(crate::limits::truncate(message, crate::limits::MAX_PANIC_MESSAGE));
        Ok(())
    }
}

impl wit::HostJoinHandle for Microthread {
    fn id(&mut self, handle: Resource<JoinHandle>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&handle)?.completion.id())
    }

    fn node(&mut self, handle: Resource<JoinHandle>) -> wasmtime::Result<Option<String>> {
        Ok(self.table.get(&handle)?.node.clone())
    }

    async fn join(
        &mut self,
        handle: Resource<JoinHandle>,
    ) -> wasmtime::Result<Result<wit_channel::Message, JoinError>> {
        self.join_with(handle, None).await
    }

    async fn join_timeout(
        &mut self,
        handle: Resource<JoinHandle>,
        timeout: u64,
    ) -> wasmtime::Result<Result<wit_channel::Message, JoinError>> {
        self.join_with(handle, Some(Duration::from_nanos(timeout))).await
    }

    fn is_finished(&mut self, handle: Resource<JoinHandle>) -> wasmtime::Result<bool> {
        Ok(self.table.get(&handle)?.completion.is_finished())
    }

    fn cancel(&mut self, handle: Resource<JoinHandle>) -> wasmtime::Result<()> {
        let slot = self.table.get(&handle)?;
        if !slot.completion.is_finished() {
            let member = slot.member.clone();
            self.run.cancel_member(&member, true);
        }
        Ok(())
    }

    fn cancel_within(&mut self, handle: Resource<JoinHandle>, grace: u64) -> wasmtime::Result<()> {
        let slot = self.table.get(&handle)?;
        if !slot.completion.is_finished() {
            let member = slot.member.clone();
            self.run
                .cancel_member_within(&member, Some(Duration::from_nanos(grace)));
        }
        Ok(())
    }

    fn drop(&mut self, handle: Resource<JoinHandle>) -> wasmtime::Result<()> {
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
