//! Time as the host takes it: a [`Duration`] becomes whole nanoseconds (`u64`), the
//! unit of every timeout, sleep and timer in `wit/runtime.wit`. A duration longer
//! than `u64::MAX` nanoseconds (some 584 years) is taken as that: as good as never.

use std::time::Duration;

/// `d` in nanoseconds, saturated at `u64::MAX`.
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
