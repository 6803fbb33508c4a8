//! The wasmtime engine a runtime builds: async fibers, fuel or epochs, and the
//! pooling allocator (its sizes, the address space each memory slot reserves, and
//! how a freed slot's memory is reset: [`MemoryReset`]).

use wasmtime::{Config, Enabled, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::limits::{Footprint, Limits};

/// How many component instances the pool holds: the live microthreads', the
/// spare ones ([`SPARE_INSTANCES`](crate::limits::SPARE_INSTANCES)), and a few
/// for runs starting while others end.
pub(super) fn pool_instances(limits: &Limits) -> u32 {
    limits
        .max_microthreads
        .saturating_add(8 + crate::limits::SPARE_INSTANCES)
}

/// The wasmtime configuration: async fibers, fuel if preempting, and a pooling
/// allocator sized for `limits.max_microthreads` instances of `each` core
/// instances and tables, with copy-on-write images.
pub(super) fn engine_config(
    limits: &Limits,
    each: Footprint,
    fuel: bool,
    epochs: bool,
    address_space: u64,
    reset: MemoryReset,
) -> Config {
    // A component built by Rust for wasm32-wasip2 holds a few core instances (the
    // program and small adapter shims) and tables, and one memory; one built by
    // componentize-py, 14 core instances. The pool holds `each` per instance (the
    // runtime's admission counts what each program really takes: `Pool`), and
    // compiles any program of up to 4x the default.
    let instances = pool_instances(limits);
    let most = Footprint {
        core_instances: Footprint::DEFAULT.core_instances * 4,
        tables: Footprint::DEFAULT.tables * 4,
    }
    .max(each);

    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(each.core_instances))
        .max_core_instances_per_component(most.core_instances)
        .total_memories(instances)
        .max_memories_per_component(1)
        .total_tables(instances.saturating_mul(each.tables))
        .max_tables_per_component(most.tables)
        .table_elements(crate::limits::MAX_TABLE_ELEMENTS)
        .total_stacks(instances)
        .max_memory_size(limits.max_memory as usize)
        // A freed slot keeps its pages and is reset in place, so a spawn that
        // reuses it takes no page faults: without this, spawn is 2-3x slower.
        // `PAGEMAP_SCAN` (Linux 6.7+, and only without swap: see `MemoryReset`)
        // makes the reset touch only the pages the microthread dirtied; without it
        // the whole kept range is zeroed, and a burst of microthreads leaves every
        // slot it used that much resident: keep less there.
        .linear_memory_keep_resident(match reset {
            MemoryReset::PagemapScan => 1 << 20,
            MemoryReset::Plain => 128 << 10,
        })
        .table_keep_resident(64 << 10)
        .pagemap_scan(match reset {
            MemoryReset::PagemapScan => Enabled::Auto,
            MemoryReset::Plain => Enabled::No,
        });

    let mut config = Config::new();
    config
        .consume_fuel(fuel)
        // Without fuel nothing yields: epoch checks are what stop a busy microthread.
        .epoch_interruption(epochs)
        .max_wasm_stack(512 << 10)
        .async_stack_size(1 << 20)
        .memory_reservation(memory_reservation(limits, address_space))
        .memory_guard_size(64 << 10)
        .memory_reservation_for_growth(0)
        // weft drives components with `call_async`, not the component model's
        // async ABI: without its bookkeeping every call and instance is cheaper.
        .concurrency_support(false)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// Address space each linear memory's slot reserves: 4 GiB when that fits in the
/// runtime's `address_space` for every slot (see
/// [`RuntimeBuilder::address_space`](crate::RuntimeBuilder::address_space)),
/// else `max_memory`.
fn memory_reservation(limits: &Limits, address_space: u64) -> u64 {
    const FULL: u64 = 4 << 30;
    let slots = u64::from(limits.max_microthreads) + 8 + u64::from(crate::limits::SPARE_INSTANCES);
    if slots.saturating_mul(FULL) <= address_space {
        FULL.max(limits.max_memory)
    } else {
        limits.max_memory
    }
}

/// How a freed slot of the instance pool has its linear memory reset before the
/// next microthread uses it (see [`Runtime::memory_reset`](crate::Runtime::memory_reset)). Either way a
/// microthread never sees what an earlier one left in its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemoryReset {
    /// Linux's `PAGEMAP_SCAN` finds the pages the last microthread wrote: those
    /// are reset in place (up to 1 MiB, kept resident), the rest given back to
    /// the kernel. Cheapest for a microthread that wrote little.
    PagemapScan,
    /// The first 128 KiB are reset in place (kept resident), and the rest of what
    /// the microthread could have written is given back to the kernel, whatever
    /// it wrote.
    Plain,
}

impl std::fmt::Display for MemoryReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MemoryReset::PagemapScan => "PAGEMAP_SCAN (the pages written)",
            MemoryReset::Plain => "plain (zero the kept pages, give back the rest)",
        })
    }
}

/// Which reset this host allows: `PAGEMAP_SCAN` only on a kernel that has it
/// (Linux 6.7 and later: `kernel_release`, from `/proc/sys/kernel/osrelease`) and
/// with no swap active (`swaps`, the contents of `/proc/swaps`; `None` when it
/// cannot be read, which counts as swap). wasmtime 48's scan looks only at pages
/// present in memory, so a page a microthread wrote that was then swapped out
/// would be neither reset nor given back, and the next microthread in the slot
/// could read it (fixed upstream in wasmtime 50). Swap turned on after the
/// runtime was built is not seen: build runtimes after `swapon`.
pub(super) fn memory_reset_for(kernel_release: Option<&str>, swaps: Option<&str>) -> MemoryReset {
    let has_scan = kernel_release.is_some_and(|release| {
        let mut parts = release
            .trim()
            .split(['.', '-'])
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        (major, minor) >= (6, 7)
    });
    // The first line of `/proc/swaps` is a header; each further line, an active
    // swap area.
    let no_swap = swaps.is_some_and(|s| s.lines().skip(1).all(|l| l.trim().is_empty()));
    if has_scan && no_swap {
        MemoryReset::PagemapScan
    } else {
        MemoryReset::Plain
    }
}

/// [`memory_reset_for`] this host.
pub(super) fn memory_reset() -> MemoryReset {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    memory_reset_for(
        read("/proc/sys/kernel/osrelease").as_deref(),
        read("/proc/swaps").as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_SWAP: &str = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";
    const SWAP: &str = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n\
                        /swapfile                               file\t\t2097148\t\t0\t\t-2\n";

    #[test]
    fn pagemap_scan_only_without_swap_on_a_kernel_that_has_it() {
        use MemoryReset::{PagemapScan, Plain};
        let zram =
            format!("{NO_SWAP}/dev/zram0                              partition\t8388604\t\t0\t\t100\n");
        let cases = [
            (Some("6.7.0\n"), Some(NO_SWAP), PagemapScan),
            (Some("6.18.44-fc-v1272\n"), Some(NO_SWAP), PagemapScan),
            // Swap on (a file, a partition, zram): a written page may be swapped
            // out, and wasmtime 48's scan would skip it.
            (Some("6.18.44"), Some(SWAP), Plain),
            (Some("6.18.44"), Some(zram.as_str()), Plain),
            // Unknown swap counts as swap.
            (Some("6.18.44"), None, Plain),
            // A kernel without the ioctl, or none known.
            (Some("6.6.30"), Some(NO_SWAP), Plain),
            (Some("5.15.0-91-generic"), Some(NO_SWAP), Plain),
            (None, Some(NO_SWAP), Plain),
        ];
        for (kernel, swaps, expected) in cases {
            assert_eq!(
                memory_reset_for(kernel, swaps),
                expected,
                "kernel {kernel:?}, swaps {swaps:?}"
            );
        }
    }
}
