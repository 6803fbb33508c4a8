//! Memory per blocked microthread alone, quicker than the goal table: `n`
//! microthreads blocked in `sleep` (the `bench` guest's `sleepers`), their Pss and
//! page tables per microthread, and where the Pss is, by mapping.
//!
//! `cargo bench -p weft-benches --bench memory -- 100000` (default 10,000; the
//! runtime's `max_microthreads` is `n` + 10). `WEFT_MEM_TOP=k` prints the k groups of
//! mappings that grew most (default 12), and the k sizes of heap allocation that
//! grew most: this binary counts its live allocations by size. `WEFT_MEM_TRACE=8928,3168`
//! prints where the first allocation of each of these sizes (bytes, as the table
//! prints them: the least of a bucket of 16) made after the microthreads start comes
//! from (a backtrace).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use weft::{Preemption, Runtime};
use weft_benches::{kib_per_blocked_microthread_and, smaps_by_mapping};

/// Live heap allocations by size: sizes below `EXACT` bytes each in a bucket of 16
/// bytes, larger ones by power of two.
struct Counting;

const EXACT: usize = 16 << 10;
const BUCKETS: usize = EXACT / 16 + 64;
static LIVE: [AtomicI64; BUCKETS] = [const { AtomicI64::new(0) }; BUCKETS];

fn bucket(size: usize) -> usize {
    if size < EXACT {
        size / 16
    } else {
        EXACT / 16 + (usize::BITS - size.leading_zeros()) as usize
    }
}

/// The smallest size a bucket holds.
fn bucket_size(b: usize) -> usize {
    if b < EXACT / 16 {
        b * 16
    } else {
        1 << (b - EXACT / 16 - 1)
    }
}

/// Whether allocations of the sizes in `TRACE` are traced now.
static TRACING: AtomicBool = AtomicBool::new(false);
/// The sizes still to trace (`WEFT_MEM_TRACE`).
static TRACE: Mutex<Vec<usize>> = Mutex::new(Vec::new());

thread_local! {
    /// Set while this thread traces an allocation: what tracing allocates is not traced.
    static IN_TRACE: Cell<bool> = const { Cell::new(false) };
}

fn trace(size: usize) {
    if !TRACING.load(Ordering::Relaxed) || IN_TRACE.with(|t| t.replace(true)) {
        return;
    }
    let wanted = {
        let mut sizes = TRACE.lock().expect("the sizes to trace");
        let at = sizes.iter().position(|s| bucket(*s) == bucket(size));
        at.map(|i| sizes.swap_remove(i)).is_some()
    };
    if wanted {
        let trace = std::backtrace::Backtrace::force_capture();
        eprintln!("== an allocation of {size} bytes:\n{trace}");
    }
    IN_TRACE.with(|t| t.set(false));
}

// SAFETY: every call goes to `System` as it came; the counters are only counters.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE[bucket(layout.size())].fetch_add(1, Ordering::Relaxed);
        trace(layout.size());
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE[bucket(layout.size())].fetch_add(1, Ordering::Relaxed);
        trace(layout.size());
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE[bucket(layout.size())].fetch_sub(1, Ordering::Relaxed);
        // SAFETY: the caller's pointer and layout, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE[bucket(layout.size())].fetch_sub(1, Ordering::Relaxed);
        LIVE[bucket(new_size)].fetch_add(1, Ordering::Relaxed);
        trace(new_size);
        // SAFETY: the caller's pointer, layout and size, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn live() -> Vec<i64> {
    LIVE.iter().map(|c| c.load(Ordering::Relaxed)).collect()
}

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
    if let Ok(sizes) = std::env::var("WEFT_MEM_TRACE") {
        let sizes = sizes
            .split(',')
            .map(|s| s.trim().parse::<usize>().expect("WEFT_MEM_TRACE, sizes in bytes"));
        TRACE.lock().expect("the sizes to trace").extend(sizes);
    }
    // Allocations are traced between the first probe (before) and the second (all asleep).
    let (per, (before, live_before), (peak, live_peak)) =
        kib_per_blocked_microthread_and(&runtime, n, || {
            let probed = (smaps_by_mapping(), live());
            TRACING.fetch_xor(true, Ordering::Relaxed);
            probed
        });
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
    // Allocations per microthread by size; those above 0.01 per microthread.
    let mut sizes: Vec<(usize, f64)> = live_peak
        .iter()
        .zip(&live_before)
        .enumerate()
        .map(|(b, (p, q))| (bucket_size(b), (p - q) as f64 / f64::from(n)))
        .filter(|(_, count)| count.abs() >= 0.01)
        .collect();
    let bytes: f64 = sizes
        .iter()
        .map(|(size, count)| (*size as f64 + 8.0) * count)
        .sum();
    println!(
        "heap: about {:.1} KiB allocated per microthread, by size (from):",
        bytes / 1024.0
    );
    sizes.sort_by(|a, b| (b.0 as f64 * b.1).total_cmp(&(a.0 as f64 * a.1)));
    println!("{:>10} {:>10}  size, bytes", "allocs", "KiB");
    for (size, count) in sizes.iter().take(top * 3) {
        println!("{count:>10.2} {:>10.2}  {size}", *size as f64 * count / 1024.0);
    }
}
