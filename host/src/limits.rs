//! Limits: what a program may use. Everything is bounded, and a guest that reaches a
//! bound gets an error it can handle (or fails alone), never the host.

/// The bounds a [`Runtime`](crate::Runtime) puts on every program it runs.
///
/// The pooling allocator reserves address space for `max_microthreads` instances of
/// `max_memory` bytes each up front: raising either costs virtual address space (not
/// resident memory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Live microthreads per program, `main` included. A spawn past it fails with an
    /// error the guest can handle.
    pub max_microthreads: u32,
    /// Linear memory per microthread, in bytes. Growing past it fails in the guest
    /// (`memory.grow` returns -1, an allocation fails), which ends that microthread.
    pub max_memory: u64,
    /// Size of a message or spawn argument (its bytes), in bytes. A send over it
    /// fails with the message given back.
    pub max_message_size: u32,
    /// Capacity of a buffered channel, in messages.
    pub max_channel_capacity: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_microthreads: 10_000,
            max_memory: 256 << 20,
            max_message_size: 16 << 20,
            max_channel_capacity: 1 << 20,
        }
    }
}

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
