//! Workers for an application that embeds weft (`host/examples/embed.rs`): the
//! application hands this program a `jobs` receiver and a `results` sender; each of
//! N worker microthreads (first argument, default 4) takes texts from `jobs` and
//! sends back how many words each has, until the application closes `jobs`.

use weft_guest::{Receiver, Sender, host_receiver, host_sender};

/// Counts the words of each text it receives.
fn worker((jobs, results): (Receiver<String>, Sender<(String, usize)>)) -> usize {
    let mut done = 0;
    for text in jobs {
        let words = text.split_whitespace().count();
        if results.send((text, words)).is_err() {
            break; // the application stopped listening
        }
        done += 1;
    }
    done
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(4);
    let Some(jobs) = host_receiver::<String>("jobs") else {
        eprintln!("workers: run me from an application that hands me `jobs` and `results`");
        std::process::exit(2);
    };
    let results = host_sender::<(String, usize)>("results").expect("`results` comes with `jobs`");
    let workers: Vec<_> = (0..n)
        .map(|i| {
            weft_guest::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(worker, (jobs.clone(), results.clone()))
                .expect("spawn a worker")
        })
        .collect();
    drop((jobs, results));
    let done: usize = workers.into_iter().map(|w| w.join().expect("a worker")).sum();
    println!("workers: {done} texts counted");
}
