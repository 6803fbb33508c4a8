//! Timeouts for channel waits anywhere: on a tokio runtime (weft's workers, or an
//! application's), with its timer; elsewhere (an application's own executor), with
//! a small timer runtime of its own, started on first use.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

/// Run `f` for at most `d`: `Err(())` if the time ran out first.
pub(crate) async fn timeout<F: Future>(d: Duration, f: F) -> Result<F::Output, ()> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return tokio::time::timeout(d, f).await.map_err(|_| ());
    }
    let Some(timer) = timer() else {
        // No timer can be started: wait without one rather than not at all.
        return Ok(f.await);
    };
    // Made inside the task: a sleep belongs to the runtime it is made on.
    let sleep = timer.spawn(async move { tokio::time::sleep(d).await });
    tokio::select! {
        biased;
        v = f => Ok(v),
        _ = sleep => Err(()),
    }
}

/// The timer runtime for waits outside any tokio runtime: one thread, started once.
fn timer() -> Option<&'static tokio::runtime::Handle> {
    static TIMER: OnceLock<Option<tokio::runtime::Handle>> = OnceLock::new();
    TIMER
        .get_or_init(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .ok()?;
            let handle = rt.handle().clone();
            std::thread::Builder::new()
                .name("weft-channel-timer".into())
                .spawn(move || rt.block_on(std::future::pending::<()>()))
                .ok()?;
            Some(handle)
        })
        .as_ref()
}
