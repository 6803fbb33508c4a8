//! A guest that talks to the application that embeds it, chosen by the first
//! argument:
//! - `workers N`: takes the application's `jobs` receiver and `results` sender,
//!   and has N worker microthreads answer every job `x` with `2x`.
//! - `missing`: asks for ends that were not given, or not of that kind.
//! - `wait`: receives one `u64` from `jobs` and prints how that went.
//! - `words`: receives a `bool` from `words`, where the application sends strings.
//! - `fail`: a microthread takes the application's `results`, sends 7 on it and
//!   panics.
//! - `wrong`: sends a string on `results`, where the application receives numbers.

use weft_guest::{Receiver, RecvError, Sender, host_receiver, host_sender, spawn};

fn worker((jobs, results): (Receiver<u64>, Sender<u64>)) -> u32 {
    let mut done = 0;
    for x in jobs {
        if results.send(2 * x).is_err() {
            break;
        }
        done += 1;
    }
    done
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("workers") => {
            let n: u32 = args[1].parse().expect("a number of workers");
            let jobs = host_receiver::<u64>("jobs").expect("the application gives `jobs`");
            let results = host_sender::<u64>("results").expect("the application gives `results`");
            let handles: Vec<_> = (0..n)
                .map(|_| spawn(worker, (jobs.clone(), results.clone())))
                .collect();
            drop((jobs, results));
            let done: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
            println!("workers answered {done} jobs");
        }
        Some("missing") => {
            println!("nope: {:?}", host_receiver::<u64>("nope").is_some());
            // `jobs` is a receiver: asked for as a sender, it is not there.
            println!("jobs as a sender: {:?}", host_sender::<u64>("jobs").is_some());
            println!("jobs as a receiver: {:?}", host_receiver::<u64>("jobs").is_some());
            println!("jobs again: {:?}", host_receiver::<u64>("jobs").is_some());
        }
        Some("wait") => {
            let jobs = host_receiver::<u64>("jobs").expect("the application gives `jobs`");
            match jobs.recv() {
                Ok(x) => println!("received {x}"),
                Err(RecvError::Closed) => println!("closed"),
                Err(e) => println!("error: {e}"),
            }
        }
        Some("words") => {
            // The application sends strings: not one of these.
            let words = host_receiver::<bool>("words").expect("the application gives `words`");
            println!("received {:?}", words.recv());
        }
        Some("fail") => {
            let results = host_sender::<u64>("results").expect("the application gives `results`");
            let producer = spawn(
                |results: Sender<u64>| -> u32 {
                    results.send(7).unwrap();
                    panic!("the producer gives up");
                },
                results,
            );
            // Its failure is handled here; the application sees it on `results`.
            assert!(producer.join().is_err());
        }
        Some("wrong") => {
            // The application receives numbers: not one of these.
            let results = host_sender::<String>("results").expect("the application gives `results`");
            results.send("not a number".into()).unwrap();
        }
        _ => {
            eprintln!("usage: embedded workers N | missing | wait | words | fail | wrong");
            std::process::exit(2);
        }
    }
}
