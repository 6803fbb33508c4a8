//! The queues on their own: output, timers, aborts, panics, hand-offs, seeds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::{Ended, Scheduler, Seeded};

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
    assert!(matches!(rt.block_on(t), Err(Ended::Aborted)));
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn a_panicking_task_ends_alone() {
    let (rt, s) = scheduler(1);
    let t = s.spawn(async { panic!("on purpose") });
    assert!(matches!(rt.block_on(t), Err(Ended::Panicked(m)) if m == "on purpose"));
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
    let tasks: Vec<_> = (0..10u32)
        .map(|i| {
            let order = order.clone();
            queue.spawn(async move { order.lock().unwrap().push(i) })
        })
        .collect();
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
