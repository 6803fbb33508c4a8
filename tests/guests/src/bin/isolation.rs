//! Memory isolation between microthreads that reuse a slot of the instance pool,
//! chosen by the first argument:
//! - `reuse ROUNDS MIB`: ROUNDS times in a row, spawn a child (joined before the
//!   next) that grows its linear memory by MIB MiB with `memory.grow`, counts the
//!   bytes of the new pages that are not zero (what an earlier microthread left in
//!   the same slot), fills them with a pattern, and ends. Prints each round's count
//!   and the total.

/// Grow memory by `mib` MiB; count the non-zero bytes found there, then dirty them.
fn dirty(mib: usize) -> u64 {
    const PAGE: usize = 64 << 10;
    let pages = mib * 16;
    let first = core::arch::wasm32::memory_grow(0, pages);
    assert!(first != usize::MAX, "memory.grow of {mib} MiB refused");
    let words = pages * PAGE / 8;
    let base = (first * PAGE) as *mut u64;
    let mut not_zero = 0u64;
    for i in 0..words {
        // SAFETY: the pages just granted by `memory.grow`, 8-byte aligned, which
        // nothing else in this program uses.
        unsafe {
            let word = base.add(i);
            not_zero += bytes_not_zero(word.read_volatile());
            word.write_volatile(0xa5a5_a5a5_0000_0000 | i as u64);
        }
    }
    not_zero
}

/// How many of the 8 bytes of `word` are not zero.
fn bytes_not_zero(word: u64) -> u64 {
    word.to_le_bytes().iter().filter(|&&b| b != 0).count() as u64
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("reuse") => {
            let rounds: u32 = args[1].parse().expect("ROUNDS");
            let mib: usize = args[2].parse().expect("MIB");
            let mut total = 0;
            for round in 0..rounds {
                let found = weft_guest::spawn(dirty, mib).join().expect("the child ends");
                println!("round {round}: {found} bytes not zero");
                total += found;
            }
            println!("not zero in all rounds: {total}");
        }
        other => {
            eprintln!("isolation: unknown mode {other:?}; expected `reuse ROUNDS MIB`");
            std::process::exit(2);
        }
    }
}
