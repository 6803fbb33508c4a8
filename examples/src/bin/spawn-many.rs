//! Spawns N microthreads (N from the first argument, default 1000), joins them all,
//! and checks every result.

fn double(x: u64) -> u64 {
    2 * x
}

fn main() {
    let n: u64 = match std::env::args().nth(1) {
        Some(a) => a.parse().unwrap_or_else(|_| {
            eprintln!("usage: spawn-many [N]  (N a whole number, got `{a}`)");
            weft_guest::exit(2)
        }),
        None => 1000,
    };
    let handles: Vec<_> = (0..n).map(|i| weft_guest::spawn(double, i)).collect();
    let mut sum = 0u64;
    for (i, h) in handles.into_iter().enumerate() {
        let r = h.join().expect("a microthread failed");
        assert_eq!(r, 2 * i as u64, "microthread {i} returned a wrong result");
        sum += r;
    }
    assert_eq!(sum, n * n.saturating_sub(1));
    println!("spawned and joined {n} microthreads, sum {sum}");
}
