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
    // Made inside the task: a sleep belongs to the runtime it is made on. The task
    // is aborted when the wait ends first, not left to sleep out its time.
    let mut sleep = AbortOnDrop(timer.spawn(async move { tokio::time::sleep(d).await }));
    tokio::select! {
        biased;
        v = f => Ok(v),
        _ = &mut sleep.0 => Err(()),
    }
}

/// Aborts its task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Poll `f` to its end on this thread, which is in no tokio runtime.
    fn block_on<F: Future>(f: F) -> F::Output {
        struct Unpark(std::thread::Thread);
        impl std::task::Wake for Unpark {
            fn wake(self: std::sync::Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
        let mut cx = std::task::Context::from_waker(&waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
            std::thread::park();
        }
    }

    #[test]
    fn a_wait_that_ends_first_leaves_no_sleeping_task_behind() {
        assert!(tokio::runtime::Handle::try_current().is_err());
        for i in 0..100 {
            assert_eq!(block_on(timeout(Duration::from_secs(60), async { i })), Ok(i));
        }
        let timer = timer().expect("the timer runtime starts");
        // The aborted tasks are gone once the timer thread has seen the aborts.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while timer.metrics().num_alive_tasks() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "{} sleeping tasks left behind",
                timer.metrics().num_alive_tasks()
            );
            std::thread::yield_now();
        }
        // And a wait that runs out still times out.
        assert_eq!(
            block_on(timeout(Duration::from_millis(1), std::future::pending::<()>())),
            Err(())
        );
    }
}
