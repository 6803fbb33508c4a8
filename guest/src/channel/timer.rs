//! Timers as channels: [`after`] (one `()` after a delay) and [`tick`] (one every
//! period), receivers to [`Select`](crate::Select) on beside other channels. The host
//! keeps them; dropping the receiver stops them.

use std::time::Duration;

use super::error::ChannelError;
use super::receiver::Receiver;
use crate::bindings::channel as wit;
use crate::entry::install_panic_hook;
use crate::time::nanos;

/// A timer: a receiver that gets `()` once, `delay` from now, and then sees its
/// channel closed. Use it in a [`Select`](crate::Select) for "this, or that, or
/// give up after 5 s". The timer is a channel, one of the program's open channels
/// until its receiver is dropped: then it stops at once, and its channel is gone.
///
/// # Panics
/// If the program already has its maximum of open channels: see [`try_after`].
pub fn after(delay: Duration) -> Receiver<()> {
    try_after(delay).unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`after`], returning the host's refusal (the program already has its
/// maximum of open channels) instead of panicking.
pub fn try_after(delay: Duration) -> Result<Receiver<()>, ChannelError> {
    timer(delay, None)
}

/// A ticker: a receiver that gets `()` every `period`, from `period` from now. A
/// tick that finds the previous one still unread is dropped, so a slow reader is
/// not flooded; ticks the host could not send on time are skipped, not caught up.
/// The period is at least 1 ms: a shorter one (zero, say) is taken as 1 ms. The
/// ticker is one of the program's open channels until its receiver is dropped:
/// then it stops at once.
///
/// # Panics
/// If the program already has its maximum of open channels: see [`try_tick`].
pub fn tick(period: Duration) -> Receiver<()> {
    try_tick(period).unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`tick`], returning the host's refusal (the program already has its
/// maximum of open channels) instead of panicking.
pub fn try_tick(period: Duration) -> Result<Receiver<()>, ChannelError> {
    timer(period, Some(period))
}

fn timer(delay: Duration, every: Option<Duration>) -> Result<Receiver<()>, ChannelError> {
    install_panic_hook();
    match wit::timer(nanos(delay), every.map(nanos)) {
        Ok(inner) => Ok(Receiver::new(inner)),
        Err(wit::OpenError::TooManyChannels(max)) => Err(ChannelError::TooManyChannels { max }),
        Err(wit::OpenError::CapacityTooLarge(max)) => {
            Err(ChannelError::CapacityTooLarge { capacity: 1, max })
        }
    }
}
