//! The queues on their own: output, timers, aborts, panics, hand-offs, seeds.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Scheduler, Seeded, TaskError};

/// An upper bound on waits that only guards against a hang.
const HANG: Duration = Duration::from_secs(30);

fn scheduler(workers: usize) -> (tokio::runtime::Runtime, Scheduler) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let s = Scheduler::new(workers, "test-worker", rt.handle().clone()).unwrap();
    (rt, s)
}

#[test]
fn tasks_run_and_give_their_output() {
    let (rt, s) = scheduler(2);
    let tasks: Vec<_> = (0..100u64).map(|i| s.spawn(async move { i * 2 })).collect();
    let sum: u64 = tasks.into_iter().map(|t| rt.block_on(t).expect("finished")).sum();
    assert_eq!(sum, 9900);
}

#[test]
fn timers_of_tokio_wake_tasks_here() {
    let (rt, s) = scheduler(1);
    let t = s.spawn(async {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        7
    });
    assert_eq!(rt.block_on(t).ok(), Some(7));
}

#[test]
fn an_aborted_task_gives_none_and_drops_its_future() {
    struct Dropped(Arc<AtomicU64>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let (rt, s) = scheduler(1);
    let drops = Arc::new(AtomicU64::new(0));
    let held = Dropped(drops.clone());
    let t = s.spawn(async move {
        let _held = held;
        std::future::pending::<()>().await
    });
    t.abort_handle().abort();
    assert!(matches!(rt.block_on(t), Err(TaskError::Aborted)));
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn a_panicking_task_ends_alone() {
    let (rt, s) = scheduler(1);
    let t = s.spawn(async { panic!("on purpose") });
    assert!(matches!(rt.block_on(t), Err(TaskError::Panicked(m)) if m == "on purpose"));
    assert_eq!(rt.block_on(s.spawn(async { 1 })).ok(), Some(1));
}

#[test]
fn a_chain_of_hand_offs_completes_on_two_workers() {
    // A ring of tasks on tokio's channels: each wakes the next.
    let (rt, s) = scheduler(2);
    let n = 50;
    let (first_tx, mut rx) = tokio::sync::mpsc::channel::<u64>(1);
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (tx, next_rx) = tokio::sync::mpsc::channel::<u64>(1);
        let mut my_rx = std::mem::replace(&mut rx, next_rx);
        tasks.push(s.spawn(async move {
            while let Some(v) = my_rx.recv().await {
                if tx.send(v + 1).await.is_err() {
                    break;
                }
            }
        }));
    }
    let hops = rt.block_on(s.spawn(async move {
        let mut last = 0;
        for lap in 0..100u64 {
            first_tx.send(lap * n).await.unwrap();
            last = rx.recv().await.unwrap();
        }
        last
    }));
    assert_eq!(hops.ok(), Some(99 * n + n));
}

/// The order in which a seeded queue runs ten tasks that are all ready at once.
fn seeded_order(seed: u64) -> Vec<u32> {
    let (lane, schedule) = crate::deterministic::Lane::start(seed, None).unwrap();
    let queue = Seeded::start(lane.handle(), schedule);
    let order = Arc::new(Mutex::new(Vec::new()));
    // All ten are spawned by one task on the lane: the queue's task, on the same
    // thread, cannot run any of them before all ten are ready.
    let (spawned_tx, spawned) = std::sync::mpsc::channel();
    let theirs = order.clone();
    lane.handle().spawn(async move {
        let tasks: Vec<_> = (0..10u32)
            .map(|i| {
                let order = theirs.clone();
                queue.spawn(async move { order.lock().unwrap().push(i) })
            })
            .collect();
        spawned_tx.send((queue, tasks)).unwrap();
    });
    let (_queue, tasks) = spawned.recv_timeout(HANG).expect("the lane spawned the tasks");
    // The test thread waits on a runtime of its own, not the run's lane.
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    for t in tasks {
        rt.block_on(t).expect("finished");
    }
    let done = order.lock().unwrap();
    done.clone()
}

#[test]
fn a_seeded_queue_picks_by_its_seed() {
    assert_eq!(seeded_order(7), seeded_order(7));
    let orders: std::collections::HashSet<_> = (0..8).map(seeded_order).collect();
    assert!(orders.len() > 1, "eight seeds, one order: {orders:?}");
    assert!(orders.iter().all(|o| o.len() == 10));
}

/// Await `rx`, saying on `waiting` once the wait is registered (the first poll
/// that finds nothing).
async fn wait_telling<T>(
    mut rx: tokio::sync::oneshot::Receiver<T>,
    waiting: std::sync::mpsc::Sender<()>,
) -> Option<T> {
    let mut waiting = Some(waiting);
    std::future::poll_fn(|cx| {
        let poll = Pin::new(&mut rx).poll(cx);
        if poll.is_pending()
            && let Some(w) = waiting.take()
        {
            w.send(()).unwrap();
        }
        poll
    })
    .await
    .ok()
}

struct PanicsOnDrop(Option<tokio::sync::oneshot::Sender<()>>);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        // A wake from inside the drop, then the panic (as an application's
        // `on_failure` may do from a microthread's drop).
        if let Some(tx) = self.0.take() {
            tx.send(()).unwrap();
        }
        panic!("in a drop, on purpose");
    }
}

#[test]
fn a_panic_in_a_tasks_drop_leaves_the_workers_running() {
    let (rt, s) = scheduler(1);
    // Finished: its future is dropped after its output, and that drop panics.
    let held = PanicsOnDrop(None);
    let t = s.spawn(async move {
        let _held = held;
        1
    });
    assert!(matches!(rt.block_on(t), Err(TaskError::Panicked(m)) if m.contains("in a drop, on purpose")));
    // Aborted: dropped at its next poll; the drop wakes another task on the same
    // worker first.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (waiting_tx, waiting) = std::sync::mpsc::channel();
    let woken = s.spawn(wait_telling(rx, waiting_tx));
    waiting.recv_timeout(HANG).expect("the woken task waits");
    let held = PanicsOnDrop(Some(tx));
    let t = s.spawn(async move {
        let _held = held;
        std::future::pending::<()>().await
    });
    t.abort_handle().abort();
    assert!(matches!(rt.block_on(t), Err(TaskError::Panicked(m)) if m.contains("in a drop, on purpose")));
    assert_eq!(rt.block_on(woken).ok(), Some(Some(())));
    // The one worker still runs tasks.
    assert_eq!(rt.block_on(s.spawn(async { 2 })).ok(), Some(2));
}

/// A microthread woken into the hand-off of a worker that stays busy (no
/// preemption here) runs on the other, idle worker.
#[test]
fn a_task_woken_into_a_busy_workers_handoff_runs_on_an_idle_worker() {
    let (rt, s) = scheduler(2);
    let events = Arc::new(Mutex::new(Vec::new()));
    let b_done = Arc::new(AtomicBool::new(false));
    let (wake_b, b_rx) = tokio::sync::oneshot::channel::<()>();
    let (waiting_tx, waiting) = std::sync::mpsc::channel();
    let b = {
        let (events, b_done) = (events.clone(), b_done.clone());
        s.spawn(async move {
            wait_telling(b_rx, waiting_tx).await.expect("woken by A");
            events.lock().unwrap().push("B ran");
            b_done.store(true, Ordering::SeqCst);
        })
    };
    waiting.recv_timeout(HANG).expect("B waits");
    let a = {
        let events = events.clone();
        s.spawn(async move {
            // B is woken from this worker while it runs A: into its hand-off.
            wake_b.send(()).unwrap();
            // Busy until B has run elsewhere (the bound only guards a hang).
            let give_up = Instant::now() + HANG;
            while !b_done.load(Ordering::SeqCst) && Instant::now() < give_up {
                std::hint::spin_loop();
            }
            let saw = if b_done.load(Ordering::SeqCst) {
                "A saw B done"
            } else {
                "A gave up"
            };
            events.lock().unwrap().push(saw);
        })
    };
    rt.block_on(a).expect("A finished");
    rt.block_on(b).expect("B finished");
    assert_eq!(*events.lock().unwrap(), ["B ran", "A saw B done"]);
}

#[cfg(target_os = "linux")]
#[test]
fn tasks_woken_after_their_queue_stopped_are_dropped_on_one_thread() {
    struct Dropped(std::sync::mpsc::Sender<()>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.send(()).unwrap();
        }
    }
    let (rt, s) = scheduler(2);
    let n = 200;
    let (dropped_tx, dropped) = std::sync::mpsc::channel();
    let (waiting_tx, waiting) = std::sync::mpsc::channel();
    let mut wakes = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let held = Dropped(dropped_tx.clone());
        let waiting_tx = waiting_tx.clone();
        tasks.push(s.spawn(async move {
            let _held = held;
            wait_telling(rx, waiting_tx).await
        }));
        wakes.push(tx);
    }
    for _ in 0..n {
        waiting.recv_timeout(HANG).expect("every task waits");
    }
    s.shutdown(HANG);
    // Each wake now finds the queue stopped: the task is dropped elsewhere.
    for tx in wakes {
        tx.send(()).unwrap();
    }
    for _ in 0..n {
        dropped.recv_timeout(HANG).expect("every task is dropped");
    }
    assert_eq!(weft_tests::threads_named("weft-drop"), 1);
    for t in tasks {
        assert!(matches!(rt.block_on(t), Err(TaskError::Aborted)));
    }
}
