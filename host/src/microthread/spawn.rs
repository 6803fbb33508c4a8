//! Starting a microthread: `main`, or a spawned function as a structured child or
//! detached; entering it in its run's members, and what its task does when it ends
//! (however it ends: it leaves the members, releases the names it registered).

use std::sync::{Arc, Weak};

use super::life::{RemoteBody, Start, run_to_end};
use super::store::{Image, Request, Spawned};
use crate::channel::Message;
use crate::deterministic::Traced;
use crate::error::{Failure, FailureKind};
use crate::run::{
    Completion, Ended, Ending, Identity, LiveSlot, Member, MicrothreadState, Refused, Run, Unjoined,
};
use crate::scheduler::Task;

/// Takes a microthread out of its run's members when its task ends, however it
/// ends (returned, failed, or aborted), counts its end, and tells its monitors how
/// it ended: what its completion says (so after its end is settled, and the same
/// as its joiner sees), or for `main`, which has none, what its task found.
struct Membership {
    run: Arc<Run>,
    id: u64,
    failed: Option<FailureKind>,
    completion: Option<Arc<Completion>>,
    /// `main`'s end, once its task has it.
    ended: Option<Ended>,
}

impl Drop for Membership {
    fn drop(&mut self) {
        if let Some(member) = self.run.members.remove(self.id) {
            let fuel = member.fuel.load(std::sync::atomic::Ordering::Relaxed);
            self.run.count_end(
                self.failed,
                member.age(),
                member.sent.load(std::sync::atomic::Ordering::Relaxed),
                (fuel != u64::MAX).then_some(fuel),
            );
            // Worked out only when a monitor watches it: most microthreads end unwatched.
            let (completion, main_ended) = (&self.completion, &mut self.ended);
            member.monitors.end(&member.me, || {
                completion
                    .as_ref()
                    .and_then(|c| c.ended())
                    .or_else(|| main_ended.take())
                    // Its task was aborted before it ended: it was stopped.
                    .unwrap_or_else(|| Err(member.me.failure(FailureKind::Cancelled, "cancelled".into())))
            });
        }
    }
}

/// How `main` ended, as its monitors are told: it returned, or the program exited
/// with 0, is a finish; anything else a failure.
fn main_ended(me: &Identity, ending: &Ending) -> Ended {
    match ending {
        Ending::Returned(_) | Ending::Exit(0) => Ok(()),
        Ending::Exit(code) => Err(me.failure(
            FailureKind::Exited,
            format!("it exited the program with code {code}"),
        )),
        Ending::MainReturnedErr => Err(me.failure(FailureKind::Trap, "it returned an error".into())),
        Ending::Failed(f) => Err(f.clone()),
    }
}

/// Completes a microthread's completion as cancelled if its task is aborted before
/// it finished, so that nothing waits on it forever.
struct CompleteOnDrop {
    done: Arc<Completion>,
    me: Identity,
}

impl Drop for CompleteOnDrop {
    fn drop(&mut self) {
        if !self.done.is_finished() {
            self.done
                .complete(Err(self.me.failure(FailureKind::Cancelled, "cancelled".into())));
        }
    }
}

/// Releases the names a microthread registered (`run::Registry`) when its task
/// ends, however it ends: before its joiner learns of its end, so that the joiner
/// may register them again (a restarted server is found under its old name).
struct Registered {
    run: Arc<Run>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.run.registry.release(self.id);
    }
}

/// How a spawned microthread relates to the one that spawned it.
pub(crate) enum Link<'a> {
    /// A structured child of `parent`: its parent does not finish before it, it is
    /// cancelled with its parent, and its failure, if nobody joins it, cancels its
    /// siblings and fails its parent.
    Child(&'a Arc<Member>),
    /// Detached: nobody waits for it; its failure, if nobody joins it, goes to the
    /// run's failure handler.
    Detached,
    /// Detached, handling an HTTP request: its failure goes to the run's failure
    /// handler as a request's.
    Request,
}

/// Start a microthread of `run` at a `spawned` function, as a task on the run's
/// workers. Returns its completion, where its joiner will find its outcome, and its
/// member, to cancel it; refused, the argument comes back.
pub(crate) fn spawn(
    run: &Arc<Run>,
    image: &Arc<dyn Image>,
    link: Link<'_>,
    spawned: Spawned,
    name: Option<Arc<str>>,
) -> Result<(Arc<Completion>, Arc<Member>), (Refused, Message)> {
    let slot = match run.reserve() {
        Ok(slot) => slot,
        Err(refused) => return Err((refused, spawned.argument)),
    };
    Ok(start_child(run, image, link, slot, Start::Spawned(spawned), name))
}

/// Start a microthread of `run` that handles an HTTP `request` with the
/// program's handler, detached ([`Link::Request`]). Returns its completion and its
/// member, to stop it; refused, the request is dropped (the caller answers it).
pub(crate) fn spawn_request(
    run: &Arc<Run>,
    image: &Arc<dyn Image>,
    request: Request,
    name: Option<Arc<str>>,
) -> Result<(Arc<Completion>, Arc<Member>), Refused> {
    let slot = run.reserve()?;
    Ok(start_child(
        run,
        image,
        Link::Request,
        slot,
        Start::Request(request),
        name,
    ))
}

/// Start the stand-in of a microthread that runs on node `node` (it holds `slot`
/// of its run): it ends as `body` says. Linked as a microthread of this node's
/// would be.
pub(crate) fn spawn_remote(
    run: &Arc<Run>,
    image: &Arc<dyn Image>,
    link: Link<'_>,
    slot: LiveSlot,
    node: String,
    body: RemoteBody,
    name: Option<Arc<str>>,
) -> (Arc<Completion>, Arc<Member>) {
    run.count_cluster_spawn(true);
    start_child(run, image, link, slot, Start::Remote { node, body }, name)
}

/// Start a microthread at `start`, linked to its spawner by `link`, in `slot`.
fn start_child(
    run: &Arc<Run>,
    image: &Arc<dyn Image>,
    link: Link<'_>,
    slot: LiveSlot,
    start: Start,
    name: Option<Arc<str>>,
) -> (Arc<Completion>, Arc<Member>) {
    let me = run.identify(name);
    let unjoined: Unjoined = match link {
        Link::Child(parent) => {
            let (run, parent) = (Arc::downgrade(run), Arc::downgrade(parent));
            Box::new(move |f| child_failed(&run, &parent, f))
        }
        Link::Detached => {
            let run = Arc::downgrade(run);
            Box::new(move |f| {
                if let Some(run) = run.upgrade() {
                    run.report_failure(&f);
                }
            })
        }
        Link::Request => {
            let run = Arc::downgrade(run);
            Box::new(move |f| {
                if let Some(run) = run.upgrade() {
                    run.report_request_failure(&f);
                }
            })
        }
    };
    let completion = Arc::new(Completion::new(&me, unjoined, run.budget.clone()));
    let done = completion.clone();
    let parent = match link {
        Link::Child(parent) => Some(parent),
        Link::Detached | Link::Request => None,
    };
    let (member, _task) = launch(
        run,
        image,
        slot,
        me,
        parent,
        start,
        Some(completion.clone()),
        move |run, me, ending| {
            let outcome = match ending {
                Ending::Returned(message) => Ok(message),
                Ending::Failed(f) => Err(f),
                Ending::Exit(code) => {
                    run.request_exit(code);
                    Err(me.failure(
                        FailureKind::Exited,
                        format!("it exited the program with code {code}"),
                    ))
                }
                Ending::MainReturnedErr => Err(me.failure(FailureKind::Trap, "it returned an error".into())),
            };
            done.complete(outcome);
        },
    );
    (completion, member)
}

/// A structured child failed and nobody can join it any more: its parent fails with
/// that failure, and is cancelled, and its other children with it.
fn child_failed(run: &Weak<Run>, parent: &Weak<Member>, failure: Failure) {
    let (Some(run), Some(parent)) = (run.upgrade(), parent.upgrade()) else {
        return;
    };
    let doom = parent.me.failure(
        FailureKind::ChildFailed,
        format!("a child failed and nobody joined it: {failure}"),
    );
    if parent.doom(doom) {
        run.cancel_member(&parent, true);
    }
}

/// Start the run's `main` (microthread 0) as a task on the run's workers.
pub(crate) fn start_main(run: &Arc<Run>, image: &Arc<dyn Image>) -> Result<Task<Ending>, Refused> {
    start_first(run, image, Start::Main)
}

/// Start a node's run without `main`: its microthread 0 (named `main`) runs no
/// code, and serves spawns from the cluster until it is cancelled.
pub(crate) fn start_serving(run: &Arc<Run>, image: &Arc<dyn Image>) -> Result<Task<Ending>, Refused> {
    start_first(run, image, Start::Serving)
}

fn start_first(run: &Arc<Run>, image: &Arc<dyn Image>, start: Start) -> Result<Task<Ending>, Refused> {
    let slot = run.reserve()?;
    let me = run.identify(Some(Arc::from("main")));
    let (_, task) = launch(run, image, slot, me, None, start, None, |run, _, ending| {
        if let Ending::Exit(code) = ending {
            // An exit from `main` ends the program at once, as one from any other
            // microthread does: no cleanup for the detached ones. The supervisor
            // learns of it from the task's end, which comes right after.
            run.note_exit(code);
        }
        ending
    });
    Ok(task)
}

/// Enter microthread `me` in its run (and as a child of `parent`) and start its
/// task, which runs it to its end and hands how it ended to `finish`. The task frees
/// its slot and leaves the run's members however it ends; aborted before it
/// finished, it completes `completion` as cancelled. A microthread born into a
/// cancellation (its run's, or its parent's) starts cancelled.
#[allow(clippy::too_many_arguments)]
fn launch<T: Send + 'static>(
    run: &Arc<Run>,
    image: &Arc<dyn Image>,
    slot: LiveSlot,
    me: Identity,
    parent: Option<&Arc<Member>>,
    start: Start,
    completion: Option<Arc<Completion>>,
    finish: impl FnOnce(&Run, &Identity, Ending) -> T + Send + 'static,
) -> (Arc<Member>, Task<T>) {
    let member = run.members.insert(me.clone(), parent.map(|p| p.me.id));
    tracing::debug!(target: "weft::microthread", id = me.id, name = ?me.name, parent = ?member.parent, "spawn");
    if let Some(parent) = parent {
        parent.adopt(&member);
    }
    if run.is_cancelling() {
        // The run's end enforces the grace period.
        member.cancel.request();
    } else if parent.is_some_and(|p| p.cancel.is_requested() && !p.cancel.owns_shutdown()) {
        // Born into its parent's cancellation: it gets the grace period the
        // others got, and is stopped at its end. (A parent that owns its shutdown
        // stops its children itself.)
        run.cancel_member(&member, true);
    }
    let membership = Membership {
        run: run.clone(),
        id: me.id,
        // Until it ends otherwise: an aborted microthread was cancelled.
        failed: Some(FailureKind::Cancelled),
        completion: completion.clone(),
        ended: None,
    };
    let cancelled = completion
        .clone()
        .map(|done| CompleteOnDrop { done, me: me.clone() });
    let main = completion.is_none();
    let (task_run, image, task_member) = (run.clone(), image.clone(), member.clone());
    let id = me.id;
    let task = async move {
        let mut slot = slot;
        let mut membership = membership;
        let _cancelled = cancelled;
        // Declared last, so dropped first should the task be aborted.
        let registered = Registered {
            run: task_run.clone(),
            id,
        };
        let pool = slot.pool_units();
        let ending = run_to_end(task_run.clone(), image, task_member, completion, start, pool).await;
        membership.failed = match &ending {
            Ending::Failed(f) => Some(f.kind),
            _ => None,
        };
        if main {
            membership.ended = Some(main_ended(&me, &ending));
        }
        match &ending {
            Ending::Failed(f) => {
                tracing::debug!(target: "weft::microthread", id = me.id, kind = ?f.kind, failure = %f.summary(), "failure")
            }
            _ => tracing::debug!(target: "weft::microthread", id = me.id, "finish"),
        }
        drop(registered);
        // Its place is free before its joiner learns of its end.
        slot.free();
        let done = finish(&task_run, &me, ending);
        drop(membership);
        task_run.ended_in_schedule(main);
        done
    };
    let schedule = run.schedule().cloned();
    let traced = Arc::downgrade(&member);
    let task = run.spawn_microthread(task, move |task| {
        // Only a deterministic run has a queue of its own, and it has a schedule.
        let schedule = schedule.expect("a deterministic run has a schedule");
        let why = move || match traced.upgrade() {
            Some(m) => traced_state(&m.info().state),
            None => "ended".into(),
        };
        Traced::new(task, schedule, id, why)
    });
    run.set_abort(id, &task.abort_handle());
    (member, task)
}

/// Why a microthread's slice ended, for a schedule trace: what it now waits for,
/// in words that do not depend on the host's clock.
fn traced_state(state: &MicrothreadState) -> String {
    match state {
        MicrothreadState::Running | MicrothreadState::Ready => "yielded".into(),
        MicrothreadState::Sleeping { .. } => "blocked: sleeping".into(),
        other => format!("blocked: {other}"),
    }
}
