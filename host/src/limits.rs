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
    /// Size of a spawn argument (and later of a message), in bytes.
    pub max_message_size: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_microthreads: 10_000,
            max_memory: 256 << 20,
            max_message_size: 16 << 20,
        }
    }
}

/// How many live memory mappings each live microthread costs the process
/// (measured: about 4 with the pooling allocator, see `shared/PEERS.md`).
pub(crate) const MAPPINGS_PER_MICROTHREAD: u64 = 4;

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
