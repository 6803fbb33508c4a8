//! How a microthread's call is driven. Each time its fiber gives control back (a
//! fuel yield, or a host call that waits), the driver decides what happens next: a
//! microthread cancelled while busy is stopped there, and inside an atomic section
//! a fuel yield is skipped (the preemption is owed, and taken when the section
//! ends).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use crate::run::Member;
use crate::sync::Unpoisoned;

/// A cancelled microthread was stopped where it was busy.
#[derive(Debug, thiserror::Error)]
#[error("cancelled")]
pub(crate) struct Stopped;

/// An atomic section ran past the run's cap.
#[derive(Debug, thiserror::Error)]
#[error("an atomic section ran longer than {0:?}, the cap (RunOptions::atomic_cap)")]
pub(crate) struct AtomicTooLong(pub(crate) Duration);

/// A waker that notes whether it was woken during a poll: a fuel yield wakes its
/// own task before it returns `Pending`, a wait for something else does not.
struct RecordingWaker {
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Wake for RecordingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        if let Some(w) = self.task.locked().as_ref() {
            w.wake_by_ref();
        }
    }
}

/// Drive `call` to its end for `member`: stop it (with [`Stopped`]) where it gives
/// control back once it must stop, and keep it running through fuel yields inside
/// an atomic section (failing it with [`AtomicTooLong`] past `cap`).
pub(crate) async fn drive<T>(
    call: impl Future<Output = wasmtime::Result<T>>,
    member: &Member,
    cap: Duration,
) -> wasmtime::Result<T> {
    let mut call = std::pin::pin!(call);
    let mut recorder: Option<Arc<RecordingWaker>> = None;
    std::future::poll_fn(move |cx| {
        member.running.store(true, Ordering::Relaxed);
        let poll = drive_once(&mut call, cx, member, &mut recorder, cap);
        member.running.store(false, Ordering::Relaxed);
        poll
    })
    .await
}

/// One poll of the driver (see [`drive`]).
fn drive_once<T>(
    call: &mut std::pin::Pin<&mut impl Future<Output = wasmtime::Result<T>>>,
    cx: &mut Context<'_>,
    member: &Member,
    recorder: &mut Option<Arc<RecordingWaker>>,
    cap: Duration,
) -> Poll<wasmtime::Result<T>> {
    let atomic = &member.atomic;
    {
        loop {
            if !atomic.active() {
                let poll = call.as_mut().poll(cx);
                if poll.is_pending() && member.cancel.must_abort() {
                    return Poll::Ready(Err(Stopped.into()));
                }
                if poll.is_ready() || !atomic.active() {
                    return poll;
                }
                // A section began during this poll, and the call gave control back
                // already: poll it again, watching for a fuel yield (if it was a
                // real wait, it says so again at once).
                continue;
            }
            // Inside an atomic section: note whether the call wakes itself (a fuel
            // yield) before it returns `Pending`.
            let recorder = recorder.get_or_insert_with(|| {
                Arc::new(RecordingWaker {
                    woken: AtomicBool::new(false),
                    task: Mutex::new(None),
                })
            });
            {
                let mut task = recorder.task.locked();
                match task.as_ref() {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *task = Some(cx.waker().clone()),
                }
            }
            recorder.woken.store(false, Ordering::Release);
            let waker = Waker::from(recorder.clone());
            let poll = call.as_mut().poll(&mut Context::from_waker(&waker));
            if poll.is_ready() {
                return poll;
            }
            if member.cancel.must_abort() {
                return Poll::Ready(Err(Stopped.into()));
            }
            if !recorder.woken.load(Ordering::Acquire) || !atomic.active() {
                // A real wait (or the section ended meanwhile).
                return Poll::Pending;
            }
            // A fuel yield inside the section: skipped, and owed.
            if atomic.owe(cap) {
                return Poll::Ready(Err(AtomicTooLong(cap).into()));
            }
        }
    }
}
