//! A supervisor and its workers, one of which fails.
//!
//! - `weft run supervisor.wasm unjoined`: the supervisor does not join the failed
//!   worker. Its failure cancels the other workers (their cleanup runs, at once, not
//!   after their long jobs) and fails the supervisor with a report that names the
//!   worker, what happened and where: the program exits with 134.
//! - `weft run supervisor.wasm restart`: the supervisor joins each worker, handles
//!   the failure and restarts the failed worker, which succeeds the second time.

use std::time::Duration;

use weft_guest::{Builder, JoinHandle};

/// A job of `ms` milliseconds; job 3 fails on its first attempt.
fn work((job, attempt, ms): (u32, u32, u64)) -> u32 {
    if job == 3 && attempt == 1 {
        weft_guest::sleep(Duration::from_millis(20)).expect("cancelled before failing");
        panic!("job 3 hit a corrupt record");
    }
    match weft_guest::sleep(Duration::from_millis(ms)) {
        Ok(()) => {
            println!("worker {job}: done");
            job * 10
        }
        Err(_) => {
            println!("worker {job}: cancelled, cleaning up");
            0
        }
    }
}

fn start(job: u32, attempt: u32, ms: u64) -> JoinHandle<u32> {
    Builder::new()
        .name(format!("worker-{job}"))
        .spawn(work, (job, attempt, ms))
        .expect("spawn a worker")
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "restart".into());
    let workers: Vec<(u32, JoinHandle<u32>)> = (1..=4).map(|job| (job, start(job, 1, 200))).collect();
    if mode == "unjoined" {
        // The handles go: nobody will join the workers. Worker 3's failure cancels
        // its siblings and fails this supervisor.
        drop(workers);
        if weft_guest::sleep(Duration::from_secs(60)).is_err() {
            println!("supervisor: cancelled, because a worker failed");
        }
        return;
    }
    let mut total = 0;
    for (job, handle) in workers {
        match handle.join() {
            Ok(v) => total += v,
            Err(e) => {
                println!("supervisor: worker {job} failed ({e}); restarting it");
                let again = start(job, 2, 10).join().expect("the second attempt succeeds");
                total += again;
            }
        }
    }
    println!("supervisor: total {total}");
}
