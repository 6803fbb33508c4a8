//! Spawns workers that compute and return values; main prints the combined result.

fn sum_of_squares(range: (u64, u64)) -> u64 {
    (range.0..range.1).map(|x| x * x).sum()
}

fn main() {
    let workers = 4u64;
    let n = 1000u64;
    let chunk = n / workers;
    let handles: Vec<_> = (0..workers)
        .map(|i| {
            weft_guest::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(sum_of_squares, (i * chunk + 1, (i + 1) * chunk + 1))
                .expect("spawn")
        })
        .collect();
    let total: u64 = handles
        .into_iter()
        .map(|h| h.join().expect("worker failed"))
        .sum();
    println!("hello from weft: {workers} microthreads computed the sum of squares 1..={n} = {total}");
}
