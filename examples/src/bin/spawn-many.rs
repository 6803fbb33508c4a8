//! Spawns N microthreads (N from the first argument, default 1000), joins them all,
//! and checks every result. With a second argument W, spawns in waves of W (spawn W,
//! join W), so that at most W + 1 are live at once.

fn double(x: u64) -> u64 {
    2 * x
}

fn arg(i: usize, default: u64) -> u64 {
    match std::env::args().nth(i) {
        Some(a) => a.parse().unwrap_or_else(|_| {
            eprintln!("usage: spawn-many [N [W]]  (whole numbers, got `{a}`)");
            weft_guest::exit(2)
        }),
        None => default,
    }
}

fn main() {
    let n = arg(1, 1000);
    let wave = arg(2, n).max(1);
    let mut sum = 0u64;
    let mut first = 0;
    while first < n {
        let last = (first + wave).min(n);
        let handles: Vec<_> = (first..last).map(|i| weft_guest::spawn(double, i)).collect();
        for (i, h) in (first..last).zip(handles) {
            let r = h.join().expect("a microthread failed");
            assert_eq!(r, 2 * i, "microthread {i} returned a wrong result");
            sum += r;
        }
        first = last;
    }
    assert_eq!(sum, n * n.saturating_sub(1));
    println!("spawned and joined {n} microthreads, sum {sum}");
}
