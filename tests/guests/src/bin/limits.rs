//! Limits, chosen by the first argument:
//! - `spawn-past-max`: spawn sleepers until the host refuses; print how many.
//! - `big-argument BYTES`: spawn with an argument of BYTES bytes.
//! - `exit CODE [child|std]`: exit with CODE from main, from a spawned child, or
//!   through `std::process::exit`.
//! - `grow MIB`: grow linear memory by MIB MiB (`memory.grow`, not the allocator),
//!   in a spawned child; print whether it was granted.

use std::time::Duration;

fn nap(ms: u64) -> u64 {
    // Cancelled or not, the nap is over.
    let _cancelled = weft_guest::sleep(Duration::from_millis(ms));
    ms
}

fn len(v: Vec<u8>) -> usize {
    v.len()
}

/// Grow linear memory by `mib` MiB; true if granted.
fn grow(mib: usize) -> bool {
    core::arch::wasm32::memory_grow(0, mib * 16) != usize::MAX
}

fn exit_with(code: u8) {
    weft_guest::exit(code)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("spawn-past-max") => {
            let mut handles = Vec::new();
            loop {
                match weft_guest::Builder::new().spawn(nap, 200) {
                    Ok(h) => handles.push(h),
                    Err(e) => {
                        println!("spawned {} then: {e}", handles.len());
                        break;
                    }
                }
            }
            let n = handles
                .into_iter()
                .filter(|_| true)
                .map(|h| h.join().unwrap())
                .filter(|&ms| ms == 200)
                .count();
            println!("joined {n}");
        }
        Some("big-argument") => {
            let bytes: usize = args[1].parse().unwrap();
            match weft_guest::Builder::new().spawn(len, vec![7u8; bytes]) {
                Ok(h) => println!("spawned, child saw {} bytes", h.join().unwrap()),
                Err(e) => println!("refused: {e}"),
            }
        }
        Some("exit") => {
            let code: u8 = args[1].parse().unwrap();
            if args.get(2).map(String::as_str) == Some("child") {
                let h = weft_guest::spawn(exit_with, code);
                let _ = h.join();
                // The program ends when the child exits; main never gets here.
                weft_guest::sleep(Duration::from_secs(60)).expect("not cancelled");
                println!("main still running after the child exited");
            } else if args.get(2).map(String::as_str) == Some("std") {
                std::process::exit(i32::from(code));
            } else {
                weft_guest::exit(code);
            }
        }
        Some("grow") => {
            let mib: usize = args[1].parse().unwrap();
            let granted = weft_guest::spawn(grow, mib).join().unwrap();
            println!("grow {mib} MiB: {}", if granted { "granted" } else { "refused" });
        }
        _ => {
            eprintln!("usage: limits spawn-past-max | big-argument BYTES | exit CODE [child] | grow MIB");
            std::process::exit(2);
        }
    }
}
