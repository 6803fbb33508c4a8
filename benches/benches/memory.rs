//! Memory per blocked microthread alone, quicker than the goal table: `n`
//! microthreads blocked in `sleep` (the `bench` guest's `sleepers`), their Pss and
//! page tables per microthread, and where the Pss is, by mapping.
//!
//! `cargo bench -p weft-benches --bench memory -- 100000` (default 10,000; the
//! runtime's `max_microthreads` is `n` + 10). `WEFT_MEM_TOP=k` prints the k groups of
//! mappings that grew most (default 12).

use weft::{Preemption, Runtime};
use weft_benches::{kib_per_blocked_microthread_and, smaps_by_mapping};

fn main() {
    let n: u32 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(|a| a.parse().expect("the number of microthreads"))
        .unwrap_or(10_000);
    let top: usize = std::env::var("WEFT_MEM_TOP")
        .ok()
        .map(|t| t.parse().expect("WEFT_MEM_TOP, a number"))
        .unwrap_or(12);
    let runtime = Runtime::builder()
        .cache_dir(Some(weft_tests::cache_dir()))
        .workers(1)
        .preemption(Preemption::Fuel {
            slice: weft::DEFAULT_FUEL_SLICE,
        })
        .max_microthreads(n + 10)
        .build()
        .expect("a runtime for the microthreads");
    let (per, before, peak) = kib_per_blocked_microthread_and(&runtime, n, smaps_by_mapping);
    println!(
        "{n} blocked microthreads: {:.1} KiB by Pss + {:.1} KiB of page tables = {:.1} KiB each (VmRSS {:.1})",
        per.proportional,
        per.page_tables,
        per.proportional + per.page_tables,
        per.resident
    );
    let mut grown: Vec<(String, f64, f64, i64)> = peak
        .iter()
        .map(|(key, g)| {
            let b = before.get(key).copied().unwrap_or_default();
            (
                key.clone(),
                (g.pss as f64 - b.pss as f64) / f64::from(n),
                (g.private as f64 - b.private as f64) / f64::from(n),
                g.mappings as i64 - b.mappings as i64,
            )
        })
        .collect();
    grown.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!("{:>10} {:>10} {:>10}  mappings", "Pss/each", "priv/each", "+maps");
    for (key, pss, private, maps) in grown.iter().take(top) {
        println!("{pss:>10.2} {private:>10.2} {maps:>10}  {key}");
    }
}
