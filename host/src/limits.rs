//! Limits: what a program may use. What a guest can make the host hold is bounded:
//! live microthreads, linear memory, tables, the bytes its channels, its results waiting
//! to be joined and its partial lines of output hold (one budget), the size of a
//! message, an argument or a result, channels, handles (per microthread and per
//! run), sockets, panic messages and names; a guest that reaches a bound gets an
//! error it can handle (or fails alone), never the host. This module owns the
//! bounds themselves ([`Limits`]), the counters that hold a bound shared by several
//! parties (`Quota`), and the check of the kernel's mapping limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// The bounds a [`Runtime`](crate::Runtime) puts on every program it runs, and the
/// defaults of each run's own limits. Each field is the one place that says what
/// its bound means, its default and what happens at it; the runtime's builder sets
/// it for all runs ([`RuntimeBuilder::max_microthreads`](crate::RuntimeBuilder::max_microthreads)
/// and its siblings) and one run may lower it for itself
/// ([`RunOptions::max_microthreads`](crate::RunOptions::max_microthreads) and its
/// siblings: asking for more than the runtime's is an error).
///
/// The pooling allocator reserves address space for `max_microthreads` instances of
/// `max_memory` bytes each up front: raising either costs virtual address space (not
/// resident memory).
///
/// ```
/// let mut limits = weft::Limits::default();
/// limits.max_buffered_bytes = 16 << 20;
/// assert_eq!(limits.max_microthreads, 10_000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Live microthreads, `main` included. The runtime's bounds every run together
    /// (they share its instance pool, which holds this many); a run's bounds that
    /// run. A spawn past it fails with an error the guest can handle. Default
    /// 10,000; at least 1.
    pub max_microthreads: u32,
    /// Linear memory per microthread, in bytes. Growing past it fails in the guest
    /// (`memory.grow` returns -1, an allocation fails), which ends that microthread.
    /// Default 256 MiB; at least 64 KiB (one wasm page).
    pub max_memory: u64,
    /// Size of a message, a spawn argument or a spawned function's result (its
    /// bytes), in bytes. A send over it fails with the message given back; a spawn
    /// is refused; a microthread whose result is over it fails, with a message
    /// that names the limit. Default 16 MiB.
    pub max_message_size: u32,
    /// Capacity of a buffered channel, in messages: opening a larger channel fails
    /// in the guest with an error that names the limit. Default 2^20. (The runtime's
    /// only: a run cannot lower it.)
    pub max_channel_capacity: u32,
    /// Bytes a run may hold buffered, all together: in its channels (each message
    /// counts its bytes plus [`MESSAGE_OVERHEAD`]), in the results of its finished
    /// microthreads that wait to be joined (counted the same way), and in the
    /// partial lines its microthreads have written to stdout and stderr. A send
    /// that would go over it waits as if its channel were full (`try_send` fails at
    /// once); a microthread whose result would go over it fails, with a message
    /// that names the limit; a partial line that would is written out. A
    /// monitor's one `Down` is buffered even past it, never lost: it is small (a
    /// failure's message and backtrace are cut), and there is at most one per
    /// open channel. Default 256 MiB.
    pub max_buffered_bytes: u64,
    /// Channels a run may have open at once; opening one more fails in the guest
    /// with an error that names the limit. Default 2^20.
    pub max_channels: u32,
}

impl Limits {
    /// Check each bound against the least it may be: the message names the first
    /// one under it. The runtime's limits and each run's are checked here alike.
    pub(crate) fn check_floors(&self) -> Result<(), String> {
        if self.max_microthreads == 0 {
            return Err("max_microthreads must be at least 1".into());
        }
        if self.max_memory < 64 << 10 {
            return Err("max_memory must be at least 64 KiB (one wasm page)".into());
        }
        Ok(())
    }
}

/// What a buffered message costs a run's [`Limits::max_buffered_bytes`] on top of
/// its bytes: the host's bookkeeping of one message.
pub const MESSAGE_OVERHEAD: u64 = 64;

/// The most elements a table of a microthread may hold (a `table.grow` past it
/// returns -1 in the guest; a microthread that then traps fails with a message
/// that names this limit). Each element costs the host a pointer, reserved up
/// front in the instance pool for every table a live microthread may have.
pub const MAX_TABLE_ELEMENTS: usize = 20_000;

/// The longest panic message a failure keeps, in bytes: a longer one is cut there
/// (at a character boundary) and ends with [`TRUNCATED`].
pub const MAX_PANIC_MESSAGE: usize = 4 << 10;

/// The longest name a microthread keeps, in bytes: a longer one is cut there (at a
/// character boundary) and ends with [`TRUNCATED`].
pub const MAX_NAME: usize = 256;

/// The longest type fingerprint a registration of a named endpoint keeps, in
/// bytes (`weft_guest::register`; a longer one is refused, as a name longer than
/// [`MAX_NAME`] is).
pub const MAX_FINGERPRINT: usize = 1 << 10;

/// What ends a panic message or a name that was cut.
pub const TRUNCATED: &str = "…[truncated]";

/// Cut `text` to `max` bytes at most (at a character boundary), and mark the cut.
pub(crate) fn truncate(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(TRUNCATED);
    text
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_microthreads: 10_000,
            max_memory: 256 << 20,
            max_message_size: 16 << 20,
            max_channel_capacity: 1 << 20,
            max_buffered_bytes: 256 << 20,
            max_channels: 1 << 20,
        }
    }
}

/// A count held under a maximum by several parties at once (the live microthreads
/// of a runtime or a run, the open channels of a run): taking a unit fails once the
/// maximum is reached, and nothing ever goes over it.
#[derive(Debug)]
pub(crate) struct Quota {
    used: AtomicU32,
    max: u32,
}

impl Quota {
    pub(crate) fn new(max: u32) -> Self {
        Quota {
            used: AtomicU32::new(0),
            max,
        }
    }

    /// Take one unit, unless the maximum is reached.
    pub(crate) fn take(&self) -> bool {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            if used >= self.max {
                return false;
            }
            match self
                .used
                .compare_exchange_weak(used, used + 1, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => used = now,
            }
        }
    }

    /// Take `n` units, unless that would pass the maximum.
    pub(crate) fn take_n(&self, n: u32) -> bool {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            match used.checked_add(n) {
                Some(after) if after <= self.max => {}
                _ => return false,
            }
            match self
                .used
                .compare_exchange_weak(used, used + n, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => used = now,
            }
        }
    }

    /// Take one unit, unless the maximum is reached, as a [`QuotaUnit`] that gives
    /// itself back when dropped.
    pub(crate) fn unit(self: &Arc<Self>) -> Option<QuotaUnit> {
        self.take().then(|| QuotaUnit(self.clone()))
    }

    /// Take one unit even past the maximum (what is counted elsewhere: a
    /// stand-in, whose microthread counts against another node's limits).
    pub(crate) fn take_anyway(&self) {
        self.used.fetch_add(1, Ordering::AcqRel);
    }

    /// Give back a unit taken earlier; returns how many are still taken.
    pub(crate) fn give_back(&self) -> u32 {
        self.used.fetch_sub(1, Ordering::AcqRel) - 1
    }

    /// Give back `n` units taken earlier.
    pub(crate) fn give_back_many(&self, n: u32) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }

    pub(crate) fn used(&self) -> u32 {
        self.used.load(Ordering::Acquire)
    }

    pub(crate) fn max(&self) -> u32 {
        self.max
    }
}

/// One unit of a [`Quota`] ([`Quota::unit`]), given back when dropped.
pub(crate) struct QuotaUnit(Arc<Quota>);

impl Drop for QuotaUnit {
    fn drop(&mut self) {
        self.0.give_back();
    }
}

/// What one microthread of a program takes from the runtime's instance pool
/// besides its component instance, its memory and its stack: its core instances
/// (the program's modules and the adapters its tools added) and its tables.
/// Counted when the program is loaded: a Rust program holds a few of each, a
/// Python one (componentize-py) 14 core instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footprint {
    pub(crate) core_instances: u32,
    pub(crate) tables: u32,
}

impl Footprint {
    /// What the pool gives each microthread unless told otherwise
    /// ([`RuntimeBuilder::pool_for`](crate::RuntimeBuilder::pool_for)): enough for
    /// any Rust program.
    pub(crate) const DEFAULT: Footprint = Footprint {
        core_instances: 8,
        tables: 8,
    };

    /// The larger of the two, item by item.
    pub(crate) fn max(self, other: Footprint) -> Footprint {
        Footprint {
            core_instances: self.core_instances.max(other.core_instances),
            tables: self.tables.max(other.tables),
        }
    }
}

/// The core instances and tables of the runtime's instance pool, all runs
/// together: a microthread (or a spare instance) takes its program's
/// [`Footprint`] before it is instantiated, so that a pool too small for one more
/// is a refused spawn (`limit-reached`), not a failed instantiation.
#[derive(Debug)]
pub(crate) struct Pool {
    core_instances: Quota,
    tables: Quota,
}

impl Pool {
    /// A pool of `instances` component instances, each with room for `each`.
    pub(crate) fn new(instances: u32, each: Footprint) -> Pool {
        Pool {
            core_instances: Quota::new(instances.saturating_mul(each.core_instances)),
            tables: Quota::new(instances.saturating_mul(each.tables)),
        }
    }

    /// Take `footprint`, unless the pool has not that much left.
    pub(crate) fn take(&self, footprint: Footprint) -> bool {
        if !self.core_instances.take_n(footprint.core_instances) {
            return false;
        }
        if !self.tables.take_n(footprint.tables) {
            self.core_instances.give_back_many(footprint.core_instances);
            return false;
        }
        true
    }

    /// Whether `footprint` would fit now (taking nothing).
    pub(crate) fn fits(&self, footprint: Footprint) -> bool {
        let fits = |q: &Quota, n: u32| q.used().saturating_add(n) <= q.max();
        fits(&self.core_instances, footprint.core_instances) && fits(&self.tables, footprint.tables)
    }

    /// Give back what [`take`](Pool::take) took.
    pub(crate) fn give_back(&self, footprint: Footprint) {
        self.core_instances.give_back_many(footprint.core_instances);
        self.tables.give_back_many(footprint.tables);
    }

    /// How many microthreads of `footprint` the whole pool holds.
    pub(crate) fn holds(&self, footprint: Footprint) -> u32 {
        let per = |max: u32, n: u32| max.checked_div(n).unwrap_or(u32::MAX);
        per(self.core_instances.max(), footprint.core_instances).min(per(self.tables.max(), footprint.tables))
    }

    /// Take `footprint` as [`PoolUnits`] that give themselves back when dropped.
    pub(crate) fn units(self: &Arc<Self>, footprint: Footprint) -> Option<PoolUnits> {
        self.take(footprint).then(|| PoolUnits(self.clone(), footprint))
    }
}

/// What [`Pool::units`] took, given back when dropped.
pub(crate) struct PoolUnits(Arc<Pool>, Footprint);

impl Drop for PoolUnits {
    fn drop(&mut self) {
        self.0.give_back(self.1);
    }
}

/// How many instances the pool holds beyond the live microthreads', for all
/// the runtime's runs together: fresh instances made ahead of need (a few per run
/// that spawns) and the stores of ended microthreads waiting for an idle worker to
/// drop them. Past them, a spawn instantiates, and an end drops, in place.
pub(crate) const SPARE_INSTANCES: u32 = 16;

/// How many memory mappings each live microthread costs the process (measured:
/// about 4 with the pooling allocator, see `shared/PEERS.md`).
pub(crate) const MAPPINGS_PER_MICROTHREAD: u64 = 4;

/// The pooling allocator creates every fiber stack of the pool up front, each with
/// its guard page: two mappings per possible microthread, live or not.
const MAPPINGS_PER_POOLED_STACK: u64 = 2;

/// Mappings the rest of the process may hold (code, heap arenas, thread stacks).
const MAPPINGS_FOR_THE_PROCESS: u64 = 2_048;

/// Check that `max_microthreads` live microthreads fit under the kernel's limit on
/// memory mappings, before the pool is created (where going over fails with an opaque
/// "Cannot allocate memory").
pub(crate) fn check_map_count(max_microthreads: u32) -> Result<(), String> {
    let Some(limit) = max_map_count() else {
        return Ok(());
    };
    let per = MAPPINGS_PER_MICROTHREAD + MAPPINGS_PER_POOLED_STACK;
    let needed = u64::from(max_microthreads) * per + MAPPINGS_FOR_THE_PROCESS;
    if needed <= limit {
        return Ok(());
    }
    let fits = limit.saturating_sub(MAPPINGS_FOR_THE_PROCESS) / per;
    Err(format!(
        "{max_microthreads} live microthreads need about {needed} memory mappings, but the \
         kernel allows {limit} per process (vm.max_map_count): raise it, e.g. \
         `sysctl -w vm.max_map_count={}`, or allow at most {fits} microthreads",
        needed.next_power_of_two()
    ))
}

/// The kernel's limit on memory mappings per process (`vm.max_map_count`), if it can
/// be read.
pub(crate) fn max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A hint to add to an allocation failure when the mapping limit is the likely cause.
pub(crate) fn map_count_hint(live: u32) -> String {
    match max_map_count() {
        Some(max) if u64::from(live) * MAPPINGS_PER_MICROTHREAD * 10 >= max * 9 => format!(
            " (with {live} live microthreads the process is near the kernel's limit of {max} \
             memory mappings, vm.max_map_count; raise it, e.g. \
             `sysctl -w vm.max_map_count={}`)",
            (u64::from(live) * MAPPINGS_PER_MICROTHREAD * 2).max(1 << 20)
        ),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::Quota;

    #[test]
    fn truncation_keeps_short_texts_and_cuts_at_a_character_boundary() {
        use super::{TRUNCATED, truncate};
        assert_eq!(truncate("short".into(), 8), "short");
        assert_eq!(truncate("abcdefgh".into(), 4), format!("abcd{TRUNCATED}"));
        // "é" is two bytes: a cut inside it moves back before it.
        assert_eq!(truncate("aéé".into(), 2), format!("a{TRUNCATED}"));
    }

    #[test]
    fn a_pool_admits_whole_footprints_only() {
        use super::{Footprint, Pool};
        let python = Footprint {
            core_instances: 14,
            tables: 2,
        };
        // 4 instances of the default room: 32 core instances, 32 tables.
        let pool = std::sync::Arc::new(Pool::new(4, Footprint::DEFAULT));
        assert_eq!(pool.holds(python), 2);
        assert_eq!(pool.holds(Footprint::DEFAULT), 4);
        let first = pool.units(python).expect("room for one");
        let second = pool.units(python).expect("room for two");
        // 28 of 32 core instances taken: a third does not fit, and takes nothing.
        assert!(!pool.fits(python));
        assert!(pool.units(python).is_none());
        let small = Footprint {
            core_instances: 4,
            tables: 28,
        };
        assert!(
            pool.units(small).is_some(),
            "the 4 core instances left, and tables"
        );
        // Its units went back when dropped: the same again fits.
        assert!(pool.units(small).is_some());
        drop((first, second));
        assert!(pool.take(python) && pool.take(python) && !pool.take(python));
        pool.give_back(python);
        assert!(pool.take(python));
    }

    #[test]
    fn a_quota_never_goes_over_its_maximum() {
        let q = std::sync::Arc::new(Quota::new(1000));
        let taken: u32 = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..600).filter(|_| q.take()).count() as u32))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(taken, 1000);
        assert_eq!(q.used(), 1000);
        assert!(!q.take());
        assert_eq!(q.give_back(), 999);
        assert!(q.take());
    }

    #[test]
    fn a_quota_unit_gives_itself_back_when_dropped() {
        let q = std::sync::Arc::new(Quota::new(2));
        let (a, b) = (q.unit().expect("room"), q.unit().expect("room"));
        assert!(q.unit().is_none(), "the maximum holds");
        drop(a);
        assert_eq!(q.used(), 1);
        drop(b);
        assert_eq!(q.used(), 0);
    }
}
