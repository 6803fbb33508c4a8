//! An application embedding weft: host channels to and from its guests, channel
//! ends handed to a run, its own host interfaces, its failure handler, and the live
//! view of a run. Real guests, the real host.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weft::{ExitStatus, FailureKind, MicrothreadState, OutputBuffer, RecvError, RunOptions, Runtime};
use weft_tests::guest;

mod common;
use common::{eventually, start};

fn builder() -> weft::RuntimeBuilder {
    Runtime::builder()
        .workers(2)
        .max_microthreads(64)
        .cache_dir(Some(weft_tests::cache_dir()))
}

/// The `embedded` guest's `wait`, handed the receiver of a host channel `jobs`,
/// once its `main` is blocked receiving on it: the host's sender, the run, and its
/// output.
fn waiting_for_jobs(rt: &Runtime) -> (weft::Sender<u64>, weft::RunHandle, OutputBuffer) {
    let (jobs, jobs_for_guest) = weft::channel::<u64>(0);
    let (run, out) = start(
        rt,
        "embedded",
        &["wait"],
        RunOptions::new().receiver("jobs", jobs_for_guest),
    );
    let channel = jobs.channel_id();
    eventually("main is blocked receiving on the host's channel", || {
        run.microthreads()
            .iter()
            .any(|m| m.id == 0 && m.state == MicrothreadState::Receiving { channel })
    });
    (jobs, run, out)
}

#[test]
fn host_channels_carry_ten_thousand_items_through_guest_workers() {
    let rt = builder().build().unwrap();
    let (jobs, jobs_for_guest) = weft::channel::<u64>(64);
    let (results_for_guest, results) = weft::channel::<u64>(64);
    let options = RunOptions::new()
        .receiver("jobs", jobs_for_guest)
        .sender("results", results_for_guest);
    let (run, out) = start(&rt, "embedded", &["workers", "4"], options);
    // A plain thread feeds the work; this one collects it.
    let feeder = std::thread::spawn(move || {
        for x in 0..10_000u64 {
            jobs.send_blocking(x).expect("the guest receives");
        }
        // Dropped here: the workers' iteration ends.
    });
    let mut got = Vec::new();
    loop {
        match results.recv_blocking() {
            Ok(y) => got.push(y),
            Err(RecvError::Closed) => break,
            Err(e) => panic!("{e}"),
        }
    }
    feeder.join().unwrap();
    assert_eq!(run.wait(), ExitStatus::Exited(0));
    assert_eq!(out.to_string_lossy(), "workers answered 10000 jobs\n");
    got.sort_unstable();
    assert_eq!(got, (0..10_000u64).map(|x| 2 * x).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_channels_from_async_code() {
    let rt = builder().build().unwrap();
    let (jobs, jobs_for_guest) = weft::channel::<u64>(0);
    let (results_for_guest, results) = weft::channel::<u64>(0);
    let options = RunOptions::new()
        .receiver("jobs", jobs_for_guest)
        .sender("results", results_for_guest);
    let (run, _) = start(&rt, "embedded", &["workers", "2"], options);
    let feeder = tokio::spawn(async move {
        for x in 0..500u64 {
            jobs.send(x).await.expect("the guest receives");
        }
    });
    let mut sum = 0;
    while let Ok(y) = results.recv().await {
        sum += y;
    }
    feeder.await.unwrap();
    assert_eq!(sum, 2 * (0..500u64).sum::<u64>());
    assert_eq!(run.await, ExitStatus::Exited(0));
    // Timeout forms, in async code and from a plain thread.
    let (tx, rx) = weft::channel::<u8>(1);
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(10)).await,
        Err(RecvError::Timeout)
    );
    tx.try_send(1).unwrap();
    assert!(matches!(tx.try_send(2), Err(weft::TrySendError::Full(2))));
    assert!(matches!(
        tx.send_timeout(3, Duration::from_millis(10)).await,
        Err(weft::SendTimeoutError::Timeout(3))
    ));
    let got = tokio::task::spawn_blocking(move || rx.recv_timeout_blocking(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(got, Ok(1));
}

#[test]
fn host_channels_without_any_runtime() {
    // Blocking and async forms from plain threads, a timeout with no tokio anywhere.
    let (tx, rx) = weft::channel::<String>(0);
    let sender = std::thread::spawn(move || tx.send_blocking("hi".to_string()));
    assert_eq!(rx.recv_blocking(), Ok("hi".to_string()));
    sender.join().unwrap().unwrap();
    assert_eq!(rx.recv_blocking(), Err(RecvError::Closed), "the sender is gone");
    let (_tx, rx) = weft::channel::<u8>(0);
    let t = Instant::now();
    let got = futures_lite_block_on(rx.recv_timeout(Duration::from_millis(30)));
    assert_eq!(got, Err(RecvError::Timeout));
    assert!(t.elapsed() >= Duration::from_millis(30));
    let (tx, rx) = weft::channel::<u8>(0);
    drop(rx);
    assert_eq!(
        tx.send_blocking(9).unwrap_err().into_inner(),
        9,
        "the value comes back"
    );
}

/// The smallest executor: poll on this thread, park between polls.
fn futures_lite_block_on<F: std::future::Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

#[test]
fn the_live_view_shows_a_guest_blocked_on_a_host_channel() {
    let rt = builder().build().unwrap();
    let (jobs, run, out) = waiting_for_jobs(&rt);
    let view = run.microthreads();
    assert_eq!(view.len(), 1);
    assert_eq!(view[0].name.as_deref(), Some("main"));
    assert_eq!(view[0].parent, None);
    // The host holds the sender: waiting on it is not a deadlock, however long.
    // The deadlock detector looks at the blocked guest several times over and
    // leaves it be.
    eventually("the guest is blocked", || {
        run.microthreads()
            .first()
            .is_some_and(|m| !matches!(m.state, MicrothreadState::Running | MicrothreadState::Ready))
    });
    let checks = run.stats().deadlock_checks;
    eventually("the deadlock detector has looked three more times", || {
        run.stats().deadlock_checks >= checks + 3
    });
    assert!(!run.is_finished(), "{:?}", run.status());
    jobs.send_blocking(7).unwrap();
    assert_eq!(run.wait(), ExitStatus::Exited(0));
    assert_eq!(out.to_string_lossy(), "received 7\n");
}

#[test]
fn the_live_view_and_counters_of_a_busy_run() {
    let rt = builder().build().unwrap();
    let (run, out) = start(&rt, "control", &["hold", "3", "60000"], RunOptions::new());
    eventually("the sleepers are up", || {
        out.to_string_lossy().contains("holding 3")
    });
    eventually("all four are blocked", || {
        run.microthreads()
            .iter()
            .filter(|m| !matches!(m.state, MicrothreadState::Running | MicrothreadState::Ready))
            .count()
            == 4
    });
    let view = run.microthreads();
    assert_eq!(view.iter().map(|m| m.id).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert_eq!(view[0].state, MicrothreadState::Joining { id: 1 });
    for child in &view[1..] {
        assert_eq!(child.parent, Some(0));
        assert!(
            matches!(child.state, MicrothreadState::Sleeping { .. }),
            "{child:?}"
        );
        assert!(child.fuel.is_some_and(|f| f > 0), "fuel is metered: {child:?}");
    }
    let table = run.view().table();
    assert!(
        table.contains("microthread 0 (main): joining microthread 1"),
        "{table}"
    );
    let stats = run.stats();
    assert_eq!((stats.spawned, stats.live, stats.peak_live), (4, 4, 4));
    run.cancel();
    assert_eq!(run.wait(), ExitStatus::Cancelled);

    // Counters of a run that sends.
    let (run, _) = start(
        &rt,
        "control",
        &["fill", "100"],
        RunOptions::new().max_buffered_bytes(4096),
    );
    // Awaited by reference: the handle keeps the run, whose counters are read once
    // it has ended (a view would not keep it).
    let mut run = run;
    let status = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(&mut run);
    assert_eq!(status, ExitStatus::Exited(0));
    assert!(
        run.microthreads().is_empty(),
        "no live microthreads once it ended"
    );
    let stats = run.stats();
    assert_eq!(
        (stats.spawned, stats.live, stats.finished, stats.failed),
        (2, 0, 2, 0)
    );
    // 4096 bytes hold 24 messages of 100 (+64) bytes, and one more is sent after.
    assert_eq!(stats.messages_sent, 25);
}

#[test]
fn a_guest_asking_for_ends_it_was_not_given_gets_none() {
    let rt = builder().build().unwrap();
    let (_jobs, jobs_for_guest) = weft::channel::<u64>(0);
    let (run, out) = start(
        &rt,
        "embedded",
        &["missing"],
        RunOptions::new().receiver("jobs", jobs_for_guest),
    );
    assert_eq!(run.wait(), ExitStatus::Exited(0));
    assert_eq!(
        out.to_string_lossy(),
        "nope: false\njobs as a sender: false\njobs as a receiver: true\njobs again: false\n"
    );
}

#[test]
fn a_message_of_the_wrong_type_fails_the_guest_not_the_host() {
    let rt = builder().build().unwrap();
    let (words, words_for_guest) = weft::channel::<String>(1);
    words.try_send("hello world".into()).unwrap();
    let (run, _) = start(
        &rt,
        "embedded",
        &["words"],
        RunOptions::new().receiver("words", words_for_guest),
    );
    let ExitStatus::Failed(f) = run.wait() else {
        panic!("the guest should fail")
    };
    assert_eq!(f.kind, FailureKind::Panic);
    assert!(f.message.contains("cannot deserialize a received message"), "{f}");
    // A string where a number is expected: postcard would read the string's length
    // as the number; the bytes left over give it away.
    let (jobs, jobs_for_guest) = weft::channel::<String>(1);
    jobs.try_send("hello world".into()).unwrap();
    let (run, _) = start(
        &rt,
        "embedded",
        &["wait"],
        RunOptions::new().receiver("jobs", jobs_for_guest),
    );
    let ExitStatus::Failed(f) = run.wait() else {
        panic!("the guest should fail")
    };
    assert!(f.message.contains("11 bytes left over"), "{f}");
    // The host carries on.
    let (run, _) = start(&rt, "embedded", &["missing"], RunOptions::new());
    assert_eq!(run.wait(), ExitStatus::Exited(0));
}

#[test]
fn a_failed_guest_producer_hands_its_failure_to_the_host_receiver() {
    let rt = builder().build().unwrap();
    let (results_for_guest, results) = weft::channel::<u64>(4);
    let (run, _) = start(
        &rt,
        "embedded",
        &["fail"],
        RunOptions::new().sender("results", results_for_guest),
    );
    assert_eq!(results.recv_blocking(), Ok(7));
    match results.recv_blocking() {
        Err(RecvError::Failed(f)) => {
            assert_eq!(f.kind, FailureKind::Panic);
            assert!(f.message.contains("the producer gives up"), "{f}");
        }
        other => panic!("expected the producer's failure, got {other:?}"),
    }
    assert_eq!(run.wait(), ExitStatus::Exited(0));
}

#[test]
fn a_guest_message_of_the_wrong_type_is_an_error_for_the_host_receiver() {
    let rt = builder().build().unwrap();
    let (results_for_guest, results) = weft::channel::<u64>(4);
    let (run, _) = start(
        &rt,
        "embedded",
        &["wrong"],
        RunOptions::new().sender("results", results_for_guest),
    );
    match results.recv_blocking() {
        Err(RecvError::Malformed(why)) => assert!(why.contains("left over"), "{why}"),
        other => panic!("expected a malformed message, got {other:?}"),
    }
    assert_eq!(run.wait(), ExitStatus::Exited(0));
    // The channel is still usable: it is closed now that the guest is gone.
    assert_eq!(results.recv_blocking(), Err(RecvError::Closed));
}

#[test]
fn the_host_dropping_its_end_closes_the_channel_for_a_waiting_guest() {
    let rt = builder().build().unwrap();
    let (jobs, run, out) = waiting_for_jobs(&rt);
    drop(jobs);
    assert_eq!(run.wait(), ExitStatus::Exited(0));
    assert_eq!(out.to_string_lossy(), "closed\n");
}

#[test]
fn a_cancelled_guest_lets_go_of_the_host_channel_it_waited_on() {
    let rt = builder().build().unwrap();
    let (jobs, run, out) = waiting_for_jobs(&rt);
    run.cancel();
    assert_eq!(run.wait(), ExitStatus::Cancelled);
    assert!(
        out.to_string_lossy().contains("cancelled"),
        "{}",
        out.to_string_lossy()
    );
    // The guest's receiver went with it: the host's send fails at once, its value back.
    assert_eq!(jobs.send_blocking(1).map_err(|e| e.into_inner()), Err(1));
    // And when the runtime goes while a guest waits, the waiting task goes with it.
    let (jobs, run, _out) = waiting_for_jobs(&rt);
    drop(rt);
    run.cancel();
    assert_eq!(run.wait(), ExitStatus::Cancelled);
    assert_eq!(jobs.send_blocking(2).map_err(|e| e.into_inner()), Err(2));
}

#[test]
fn an_end_goes_to_the_first_run_and_names_must_differ() {
    let rt = builder().build().unwrap();
    let program = rt.load(guest("embedded")).unwrap();
    let (_jobs, rx) = weft::channel::<u64>(0);
    let (_jobs2, rx2) = weft::channel::<u64>(0);
    let twice = RunOptions::new().receiver("jobs", rx).receiver("jobs", rx2);
    match program.start(&twice.args(["missing"])) {
        Err(weft::Error::InvalidOptions(why)) => assert!(why.contains("`jobs`"), "{why}"),
        other => panic!("{other:?}"),
    }
    let (_jobs, rx) = weft::channel::<u64>(0);
    let options = RunOptions::new().receiver("jobs", rx).args(["missing"]);
    let out = OutputBuffer::new();
    let first = program.start(&options.clone().stdout(out.clone())).unwrap();
    assert_eq!(first.wait(), ExitStatus::Exited(0));
    assert!(out.to_string_lossy().contains("jobs as a receiver: true"));
    let out = OutputBuffer::new();
    let second = program.start(&options.stdout(out.clone())).unwrap();
    assert_eq!(second.wait(), ExitStatus::Exited(0));
    assert!(
        out.to_string_lossy().contains("jobs as a receiver: false"),
        "taken by the first run"
    );
}

#[test]
fn a_start_refused_at_the_limit_keeps_the_ends_for_a_retry() {
    let rt = builder().max_microthreads(1).build().unwrap();
    let program = rt.load(guest("embedded")).unwrap();
    // The one microthread there is room for, blocked on a host channel.
    let (first_jobs, first_rx) = weft::channel::<u64>(0);
    let first = program
        .start(&RunOptions::new().arg("wait").receiver("jobs", first_rx))
        .unwrap();
    let (jobs, rx) = weft::channel::<u64>(0);
    let out = OutputBuffer::new();
    let options = RunOptions::new()
        .arg("wait")
        .receiver("jobs", rx)
        .stdout(out.clone());
    match program.start(&options) {
        Err(weft::Error::LimitReached { max: 1 }) => {}
        other => panic!("{other:?}"),
    }
    first_jobs.send_blocking(1).unwrap();
    assert_eq!(first.wait(), ExitStatus::Exited(0));
    // The retry with the same options: its guest gets the receiver, and the
    // application's sender still reaches it.
    let retry = program.start(&options).unwrap();
    jobs.send_blocking(7).unwrap();
    assert_eq!(retry.wait(), ExitStatus::Exited(0));
    assert_eq!(out.to_string_lossy(), "received 7\n");
}

/// What the application's `test:app/calc` functions share.
struct Store {
    answers: Mutex<std::collections::HashMap<String, String>>,
}

fn with_calc() -> Runtime {
    builder()
        .data(Store {
            answers: Mutex::new([("answer".to_string(), "42".to_string())].into()),
        })
        .host_interfaces(|linker| {
            let mut calc = linker.instance("test:app/calc")?;
            calc.func_wrap(
                "add",
                |_: weft::wasmtime::StoreContextMut<'_, weft::Microthread>, (a, b): (u32, u32)| match a
                    .checked_add(b)
                {
                    Some(sum) => Ok((sum,)),
                    None => Err(weft::wasmtime::format_err!("add: {a} + {b} overflows")),
                },
            )?;
            calc.func_wrap_async(
                "fetch",
                |store: weft::wasmtime::StoreContextMut<'_, weft::Microthread>, (key,): (String,)| {
                    let found = store
                        .data()
                        .data::<Store>()
                        .map(|s| s.answers.lock().unwrap().get(&key).cloned());
                    Box::new(async move {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        Ok((match found {
                            Some(Some(v)) => Ok(v),
                            _ => Err(format!("no {key}")),
                        },))
                    })
                },
            )?;
            Ok(())
        })
        .build()
        .unwrap()
}

#[test]
fn a_guest_calls_the_applications_own_host_interface() {
    let rt = with_calc();
    let (run, out) = start(&rt, "calc", &["sums"], RunOptions::new());
    assert_eq!(run.wait(), ExitStatus::Exited(0));
    assert_eq!(
        out.to_string_lossy(),
        "2 + 3 = 5\nfetch(answer) = Ok(\"42\")\nfetch(nothing) = Err(\"no nothing\")\n"
    );
    // A host function's error traps the microthread that called it; the host
    // carries on.
    let (run, out) = start(&rt, "calc", &["overflow"], RunOptions::new());
    let ExitStatus::Failed(f) = run.wait() else {
        panic!("the guest should fail")
    };
    assert!(f.message.contains("add: 4294967295 + 1 overflows"), "{f}");
    assert_eq!(out.to_string_lossy(), "calling add(u32::MAX, 1)\n");
    let (run, _) = start(&rt, "calc", &["sums"], RunOptions::new());
    assert_eq!(run.wait(), ExitStatus::Exited(0));
    // Without the interface, the guest does not link: a clear error at load.
    let e = builder().build().unwrap().load(guest("calc")).unwrap_err();
    assert!(e.to_string().contains("test:app/calc"), "{e}");
}

#[test]
fn the_applications_failure_handler_gets_the_unhandled_failures() {
    let rt = builder().build().unwrap();
    let seen: Arc<Mutex<Vec<weft::Failure>>> = Arc::default();
    let handler = seen.clone();
    let err = OutputBuffer::new();
    let options = RunOptions::new()
        .on_failure(move |f| handler.lock().unwrap().push(f.clone()))
        .stderr(err.clone());
    let (run, out) = start(&rt, "structure", &["detached-failure"], options);
    assert_eq!(run.wait(), ExitStatus::Exited(0));
    assert_eq!(out.to_string_lossy(), "main: carries on\n");
    assert_eq!(
        err.to_string_lossy(),
        "",
        "the handler took it: no default report"
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].id, seen[0].kind), (1, FailureKind::Panic));
    assert!(seen[0].message.contains("detached boom"), "{}", seen[0]);
}
