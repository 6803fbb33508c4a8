//! Channels across nodes, with two runtimes in this process joined to a real
//! nats-server on loopback (`weft_tests::nats`): a guest on one node consumes what
//! a guest (or the application) on another produces. Order per producer, no loss,
//! no duplicate, close after draining, a producer's failure carried across,
//! capacity held at the home whatever the number of remote senders, a select over
//! local and remote ends and a timer, the live nodes, and the errors of a bad
//! setup.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft::cluster::{ClusterConfig, ClusterError};
use weft::{ExitStatus, OutputBuffer, RunOptions, Runtime};
use weft_tests::guest;
use weft_tests::nats::NatsServer;

mod common;
use common::{eventually, lines, node_with_timeout};

/// The guest's job (tests/guests/src/bin/cluster.rs).
#[derive(Serialize, Deserialize)]
struct Job {
    from: u32,
    seq: u64,
    payload: Vec<u8>,
}

/// The payload the guest expects of producer `from`'s message `seq` (its
/// `payload`, for the sizes below 600 KiB).
fn payload(from: u32, seq: u64) -> Vec<u8> {
    let size = [0, 8, 64, 512, 4096][(seq % 5) as usize];
    (0..size)
        .map(|i| {
            (seq as usize)
                .wrapping_mul(31)
                .wrapping_add(i)
                .wrapping_add(from as usize) as u8
        })
        .collect()
}

/// A runtime that is node `name` of the cluster at `server`, with the default
/// node timeout (3 s: a loaded test machine does not make a node look silent).
fn node(server: &NatsServer, name: &str) -> Runtime {
    node_with_timeout(server, name, Duration::from_secs(3))
}

/// Start guest mode `args` of the cluster guest on `runtime` with `options`; its
/// stdout is collected.
fn start(
    runtime: &Runtime,
    args: &[&str],
    options: RunOptions,
) -> (weft::RunHandle, OutputBuffer, OutputBuffer) {
    let program = runtime.load(guest("cluster")).expect("load");
    let (out, err) = (OutputBuffer::new(), OutputBuffer::new());
    let options = options
        .args(args.iter().copied())
        .stdout(out.clone())
        .stderr(err.clone())
        // A hang guard only.
        .deadline(Duration::from_secs(300));
    (program.start(&options).expect("start"), out, err)
}

#[test]
fn a_channel_across_two_nodes_carries_100000_messages_in_order_none_lost_none_twice_then_closes() {
    let server = NatsServer::start();
    let (a, b) = (node(&server, "a"), node(&server, "b"));
    let jobs = a.cluster().unwrap().export_receiver::<Job>("jobs", 64).unwrap();
    let (consumer, consumed, consumer_err) =
        start(&a, &["consume"], RunOptions::new().receiver("jobs", jobs));
    let jobs = b.cluster().unwrap().import_sender::<Job>("jobs").unwrap();
    let (producer, produced, producer_err) = start(
        &b,
        &["produce", "1", "100000"],
        RunOptions::new().sender("jobs", jobs),
    );
    let status = producer.wait();
    assert_eq!(
        status,
        ExitStatus::Exited(0),
        "{}",
        producer_err.to_string_lossy()
    );
    // The last message larger than a link carries came back `too-large`.
    assert_eq!(
        produced.to_string_lossy(),
        "produced 1 100000, refused 1 too large\n"
    );
    // The producer is gone: its sender's lease is released, and the channel closes
    // once the consumer has drained it.
    let status = consumer.wait();
    assert_eq!(
        status,
        ExitStatus::Exited(0),
        "{}",
        consumer_err.to_string_lossy()
    );
    assert_eq!(
        lines(&consumed.to_string_lossy()),
        [
            "receiving from 1",
            "received 100000 from 1 producers, in order",
            "closed"
        ]
    );
    assert!(!server.log().contains("Slow Consumer"), "{}", server.log());
}

#[test]
fn a_producer_that_fails_on_another_node_fails_the_receivers_after_they_drained() {
    let server = NatsServer::start();
    let (a, b) = (node(&server, "a"), node(&server, "b"));
    let jobs = a.cluster().unwrap().export_receiver::<Job>("jobs", 4).unwrap();
    let (consumer, consumed, _) = start(&a, &["consume"], RunOptions::new().receiver("jobs", jobs));
    let jobs = b.cluster().unwrap().import_sender::<Job>("jobs").unwrap();
    let (producer, _, _) = start(
        &b,
        &["fail-after", "7", "10"],
        RunOptions::new().sender("jobs", jobs),
    );
    assert!(matches!(producer.wait(), ExitStatus::Failed(_)));
    assert_eq!(consumer.wait(), ExitStatus::Exited(0));
    let out = consumed.to_string_lossy();
    let got = lines(&out);
    assert_eq!(
        got[..2],
        ["receiving from 7", "received 10 from 1 producers, in order"]
    );
    assert!(
        got[2].starts_with("failed Panic: ") && got[2].contains("producer 7 fails after 10 messages"),
        "{out}"
    );
}

#[test]
fn a_channel_of_capacity_8_fed_by_three_remote_senders_never_holds_more_than_8() {
    let server = NatsServer::start();
    let (a, b) = (node(&server, "a"), node(&server, "b"));
    let rx = a.cluster().unwrap().export_receiver::<u64>("jobs", 8).unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let senders: Vec<_> = (0..3)
        .map(|i| {
            let tx = b.cluster().unwrap().import_sender::<u64>("jobs").unwrap();
            let sent = sent.clone();
            std::thread::spawn(move || {
                // Until the channel is closed (the test drops its receiver).
                for n in 0.. {
                    if tx.send_blocking(i * 1_000_000 + n).is_err() {
                        return;
                    }
                    sent.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    // A send completes only on a slot reserved at the home: 8 complete, no more.
    eventually("8 sends complete", || sent.load(Ordering::SeqCst) == 8);
    eventually("the home buffers them", || rx.buffered() == 8);
    for _ in 0..200 {
        assert!(rx.buffered() <= 8);
        assert_eq!(
            sent.load(Ordering::SeqCst),
            8,
            "a remote send completed past the capacity"
        );
        std::thread::yield_now();
    }
    // Each value received frees one slot: one more send completes.
    for more in 1..=20u64 {
        rx.recv_blocking().unwrap();
        eventually("a blocked sender goes on", || {
            sent.load(Ordering::SeqCst) == 8 + more
        });
        assert!(rx.buffered() <= 8);
    }
    drop(rx);
    for s in senders {
        s.join().unwrap();
    }
    // The receiver that stopped reading held the senders back: NATS never had to
    // drop anything for it.
    assert!(!server.log().contains("Slow Consumer"), "{}", server.log());
}

#[test]
fn a_select_takes_a_local_receive_a_remote_receive_and_a_timer() {
    let server = NatsServer::start();
    let (a, b) = (node(&server, "a"), node(&server, "b"));
    let tx = a.cluster().unwrap().export_sender::<Job>("jobs", 4).unwrap();
    tx.send_blocking(Job {
        from: 9,
        seq: 0,
        payload: vec![1, 2, 3],
    })
    .unwrap();
    let jobs = b.cluster().unwrap().import_receiver::<Job>("jobs").unwrap();
    let (run, out, err) = start(&b, &["select-mixed"], RunOptions::new().receiver("jobs", jobs));
    assert_eq!(run.wait(), ExitStatus::Exited(0), "{}", err.to_string_lossy());
    assert_eq!(
        lines(&out.to_string_lossy()),
        ["remote job 9 0", "select: local remote timer"]
    );
    drop(tx);
}

#[test]
fn each_node_sees_the_live_nodes_and_a_node_gone_silent_leaves_the_list() {
    let server = NatsServer::start();
    let second = Duration::from_secs(1);
    let (a, b) = (
        node_with_timeout(&server, "a", second),
        node_with_timeout(&server, "b", second),
    );
    let (run, out, _) = start(&a, &["nodes", "2"], RunOptions::new());
    assert_eq!(run.wait(), ExitStatus::Exited(0));
    assert_eq!(lines(&out.to_string_lossy()), ["me: a", "nodes: a b"]);
    let names = |rt: &Runtime| -> Vec<String> {
        rt.cluster()
            .unwrap()
            .nodes()
            .into_iter()
            .map(|n| n.name)
            .collect()
    };
    eventually("b sees a", || names(&b) == ["a", "b"]);
    drop(b);
    // Silent past the node timeout (1 s): declared down.
    eventually("a no longer lists b", || names(&a) == ["a"]);
}

#[test]
fn a_bad_setup_is_a_clear_error() {
    let server = NatsServer::start();
    let a = node(&server, "a");
    let cluster = a.cluster().unwrap();
    cluster.export_receiver::<u8>("jobs", 1).unwrap();
    assert!(matches!(
        cluster.export_sender::<u8>("jobs", 1),
        Err(ClusterError::NameTaken(n)) if n == "jobs"
    ));
    assert!(matches!(
        cluster.export_receiver::<u8>("no.dots", 1),
        Err(ClusterError::Config(_))
    ));
    // Nobody exports it: the import gives up after its timeout.
    let quick = Runtime::builder()
        .workers(1)
        .max_microthreads(4)
        .cluster(
            ClusterConfig::new(server.url())
                .node_name("q")
                .import_timeout(Duration::from_millis(300)),
        )
        .build()
        .unwrap();
    match quick.cluster().unwrap().import_sender::<u8>("nobody") {
        Err(e @ ClusterError::NoSuchName { .. }) => assert!(e.to_string().contains("\"nobody\""), "{e}"),
        other => panic!("an import of a name nobody exports: {other:?}"),
    }
    // A server that is not there.
    let mut gone = NatsServer::start();
    let url = gone.url();
    gone.kill();
    let e = Runtime::builder()
        .workers(1)
        .max_microthreads(4)
        .cluster(ClusterConfig::new(url).connect_timeout(Duration::from_secs(2)))
        .build()
        .expect_err("no server to join");
    let text = e.to_string();
    assert!(
        text.contains("cannot join the cluster at nats://127.0.0.1:"),
        "{text}"
    );
    // Wrong credentials.
    let guarded = NatsServer::with_user("app", "secret");
    let e = Runtime::builder()
        .workers(1)
        .max_microthreads(4)
        .cluster(ClusterConfig::new(guarded.url()).user_password("app", "wrong"))
        .build()
        .expect_err("refused credentials");
    assert!(e.to_string().contains("refused the credentials"), "{e}");
    // The right ones.
    Runtime::builder()
        .workers(1)
        .max_microthreads(4)
        .cluster(ClusterConfig::new(guarded.url()).user_password("app", "secret"))
        .build()
        .expect("the right credentials");
}

#[test]
fn when_the_server_dies_remote_ends_fail_local_ones_go_on_and_after_it_returns_the_nodes_work_together_again()
{
    let mut server = NatsServer::start();
    let second = Duration::from_secs(1);
    let (a, b) = (
        node_with_timeout(&server, "a", second),
        node_with_timeout(&server, "b", second),
    );
    let rx = a.cluster().unwrap().export_receiver::<u64>("before", 4).unwrap();
    let tx = b.cluster().unwrap().import_sender::<u64>("before").unwrap();
    tx.send_blocking(1).unwrap();
    assert_eq!(rx.recv_blocking().unwrap(), 1);
    let (a_before, b_before) = (a.cluster().unwrap().node_id(), b.cluster().unwrap().node_id());
    server.kill();
    // Past the node timeout, each node fails the ends that ran over the server: the
    // receiver gets a `disconnected` failure, the sender's sends fail with their
    // value back.
    match rx.recv_blocking() {
        Err(weft::RecvError::Failed(f)) => {
            assert_eq!(f.kind, weft::FailureKind::Disconnected, "{f}");
            assert!(f.message.contains("the link to node b."), "{f}");
        }
        other => panic!("the remote sender's failure, not {other:?}"),
    }
    eventually("the remote sender fails its sends", || {
        matches!(tx.try_send(2), Err(weft::TrySendError::Disconnected(2, _)))
    });
    // A node's own channels go on.
    let (local_tx, local_rx) = weft::channel::<u64>(1);
    local_tx.send_blocking(3).unwrap();
    assert_eq!(local_rx.recv_blocking().unwrap(), 3);
    server.restart();
    // Back, each node is a new incarnation; new channels across them work.
    eventually("both nodes took a new incarnation", || {
        a.cluster().unwrap().node_id() != a_before && b.cluster().unwrap().node_id() != b_before
    });
    let rx = a.cluster().unwrap().export_receiver::<u64>("after", 4).unwrap();
    let tx = b.cluster().unwrap().import_sender::<u64>("after").unwrap();
    tx.send_blocking(4).unwrap();
    assert_eq!(rx.recv_blocking().unwrap(), 4);
}

#[test]
fn a_name_registered_on_one_node_is_found_on_another_taken_there_and_released_at_its_end() {
    let server = NatsServer::start();
    let (a, b, c) = (node(&server, "a"), node(&server, "b"), node(&server, "c"));
    let (registrant, registered, _) = start(&a, &["register", "inbox", "3"], RunOptions::new());
    eventually("the name is registered", || {
        registered.to_string_lossy().starts_with("registered inbox")
    });
    // Another node cannot take it while it is held …
    let (taker, took, _) = start(&c, &["register", "inbox", "0"], RunOptions::new());
    assert_eq!(taker.wait(), ExitStatus::Exited(0));
    assert_eq!(took.to_string_lossy(), "refused: inbox is taken on a\n");
    // … a wrong type is the asker's error, naming both types …
    let (wrong, _, _) = start(&c, &["lookup-wrong-type", "inbox"], RunOptions::new());
    match wrong.wait() {
        ExitStatus::Failed(f) => assert!(
            f.message.contains("alloc::string::String") && f.message.contains("u64"),
            "{f}"
        ),
        other => panic!("a lookup of the wrong type must fail the asker: {other:?}"),
    }
    // … and another finds it: a sender of its channel, across the cluster.
    let (sender, sent, err) = start(&b, &["lookup", "inbox", "3"], RunOptions::new());
    assert_eq!(sender.wait(), ExitStatus::Exited(0), "{}", err.to_string_lossy());
    assert_eq!(sent.to_string_lossy(), "sent 3\n");
    assert_eq!(registrant.wait(), ExitStatus::Exited(0));
    assert_eq!(
        lines(&registered.to_string_lossy()),
        [
            "registered inbox",
            "got hello 0 from b",
            "got hello 1 from b",
            "got hello 2 from b"
        ]
    );
    // Once its registrant has ended, the name is free again.
    let (looked, found, _) = start(&b, &["lookup-once", "inbox"], RunOptions::new());
    assert_eq!(looked.wait(), ExitStatus::Exited(0));
    assert_eq!(found.to_string_lossy(), "not found: inbox\n");
    let (again, again_out, _) = start(&c, &["register", "inbox", "0"], RunOptions::new());
    assert_eq!(again.wait(), ExitStatus::Exited(0));
    assert_eq!(again_out.to_string_lossy(), "registered inbox\n");
}

#[test]
fn a_remote_send_on_a_rendezvous_channel_returns_only_once_a_receiver_took_the_value() {
    let server = NatsServer::start();
    let (a, b) = (node(&server, "a"), node(&server, "b"));
    let rx = a
        .cluster()
        .unwrap()
        .export_receiver::<u64>("rendezvous", 0)
        .unwrap();
    let tx = b.cluster().unwrap().import_sender::<u64>("rendezvous").unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let sending = {
        let sent = sent.clone();
        std::thread::spawn(move || {
            for v in 1..=3u64 {
                tx.send_blocking(v).unwrap();
                sent.store(v, Ordering::SeqCst);
            }
        })
    };
    for v in 1..=3u64 {
        // Until a receiver here takes it, the remote send has not returned.
        let got = loop {
            assert_eq!(
                sent.load(Ordering::SeqCst),
                v - 1,
                "a rendezvous send returned before its value was taken"
            );
            match rx.try_recv() {
                Ok(got) => break got,
                Err(weft::RecvError::Empty) => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(got, v);
        eventually("the send returns once its value is taken", || {
            sent.load(Ordering::SeqCst) == v
        });
    }
    sending.join().unwrap();
    // And guests: every value across, in order, then the close.
    let jobs = a.cluster().unwrap().export_receiver::<Job>("jobs", 0).unwrap();
    let (consumer, consumed, _) = start(&a, &["consume"], RunOptions::new().receiver("jobs", jobs));
    let jobs = b.cluster().unwrap().import_sender::<Job>("jobs").unwrap();
    let (producer, produced, err) = start(
        &b,
        &["produce", "3", "300"],
        RunOptions::new().sender("jobs", jobs),
    );
    assert_eq!(
        producer.wait(),
        ExitStatus::Exited(0),
        "{}",
        err.to_string_lossy()
    );
    assert_eq!(
        produced.to_string_lossy(),
        "produced 3 300, refused 1 too large\n"
    );
    assert_eq!(consumer.wait(), ExitStatus::Exited(0));
    assert_eq!(
        lines(&consumed.to_string_lossy()),
        [
            "receiving from 3",
            "received 300 from 1 producers, in order",
            "closed"
        ]
    );
}

#[test]
fn a_sender_carried_in_a_message_to_another_node_carries_the_answer_back() {
    let server = NatsServer::start();
    let (a, b) = (node(&server, "a"), node(&server, "b"));
    // From the sending node to the home (a remote sender's message): b asks, a answers.
    let asks = a.cluster().unwrap().export_receiver::<()>("asks", 4).unwrap();
    let (answering, answered, _) = start(&a, &["answer"], RunOptions::new().receiver("asks", asks));
    let asks = b.cluster().unwrap().import_sender::<()>("asks").unwrap();
    let (asking, asked, err) = start(&b, &["ask", "ping"], RunOptions::new().sender("asks", asks));
    assert_eq!(asking.wait(), ExitStatus::Exited(0), "{}", err.to_string_lossy());
    assert_eq!(answering.wait(), ExitStatus::Exited(0));
    assert_eq!(asked.to_string_lossy(), "answer: a says pong to ping\n");
    assert_eq!(answered.to_string_lossy(), "answered ping\n");
    // From the home to a remote receiver (a delivery): a asks, b answers.
    let asks = a.cluster().unwrap().export_sender::<()>("asks-back", 4).unwrap();
    let (asking, asked, err) = start(&a, &["ask", "pong"], RunOptions::new().sender("asks", asks));
    let asks = b.cluster().unwrap().import_receiver::<()>("asks-back").unwrap();
    let (answering, answered, _) = start(&b, &["answer"], RunOptions::new().receiver("asks", asks));
    assert_eq!(asking.wait(), ExitStatus::Exited(0), "{}", err.to_string_lossy());
    assert_eq!(answering.wait(), ExitStatus::Exited(0));
    assert_eq!(asked.to_string_lossy(), "answer: b says pong to pong\n");
    assert_eq!(answered.to_string_lossy(), "answered pong\n");
}

#[test]
fn a_receiver_carried_in_a_message_to_another_node_receives_there_until_its_channel_closes() {
    let server = NatsServer::start();
    let (a, b) = (node(&server, "a"), node(&server, "b"));
    let boxes = a.cluster().unwrap().export_receiver::<()>("boxes", 4).unwrap();
    let (taking, took, _) = start(&a, &["take-receiver"], RunOptions::new().receiver("boxes", boxes));
    let boxes = b.cluster().unwrap().import_sender::<()>("boxes").unwrap();
    // The giver's run lasts until the taker is done: the end of a run empties its
    // channels, wherever their receivers are.
    let (done, done_rx) = weft::channel::<()>(1);
    let (giving, gave, err) = start(
        &b,
        &["give-receiver"],
        RunOptions::new().sender("boxes", boxes).receiver("done", done_rx),
    );
    assert_eq!(taking.wait(), ExitStatus::Exited(0));
    drop(done);
    assert_eq!(giving.wait(), ExitStatus::Exited(0), "{}", err.to_string_lossy());
    assert_eq!(gave.to_string_lossy(), "gave\n");
    assert_eq!(
        lines(&took.to_string_lossy()),
        [
            "took one",
            "took two",
            "then the channel is closed: every sender is gone"
        ]
    );
}

#[test]
fn with_the_system_account_a_node_that_goes_away_is_declared_down_when_the_server_says_so() {
    let server = NatsServer::builder()
        .config(
            "accounts {\n  APP: { users: [ { user: app, password: app } ] }\n  \
             SYS: { users: [ { user: sys, password: sys } ] }\n}\nsystem_account: SYS",
        )
        .start();
    let url = server.url().replace("nats://", "nats://app:app@");
    // An hour of node timeout: heartbeats cannot be what declares the node down.
    let node = |name: &str| {
        Runtime::builder()
            .workers(1)
            .max_microthreads(8)
            .cluster(
                ClusterConfig::new(url.clone())
                    .node_name(name)
                    .node_timeout(Duration::from_secs(3600))
                    .system_user("sys", "sys"),
            )
            .build()
            .expect("the node joins, watching the server's reports")
    };
    let refused = Runtime::builder()
        .workers(1)
        .max_microthreads(8)
        .cluster(ClusterConfig::new(url.clone()).system_user("sys", "wrong"))
        .build()
        .expect_err("a refused system user");
    assert!(
        refused.to_string().contains("as the system account's user"),
        "{refused}"
    );
    let (a, b) = (node("a"), node("b"));
    let rx = a.cluster().unwrap().export_receiver::<u64>("jobs", 4).unwrap();
    let tx = b.cluster().unwrap().import_sender::<u64>("jobs").unwrap();
    tx.send_blocking(7).unwrap();
    assert_eq!(rx.recv_blocking().unwrap(), 7);
    // The node goes away with its sender still held (its runtime, and so its
    // connection, closes; nothing releases the lease).
    drop(b);
    match rx.recv_blocking() {
        Err(weft::RecvError::Failed(f)) => {
            assert_eq!(f.kind, weft::FailureKind::Disconnected, "{f}");
            assert!(
                f.message
                    .contains("the server reports its connection closed (Client Closed)"),
                "{f}"
            );
        }
        other => panic!("the remote sender's failure, not {other:?}"),
    }
    drop(tx);
}

#[test]
fn a_send_on_a_rendezvous_channel_whose_receiver_is_on_another_node_returns_once_it_took_the_value() {
    let server = NatsServer::start();
    let (a, b) = (node(&server, "a"), node(&server, "b"));
    let tx = a
        .cluster()
        .unwrap()
        .export_sender::<u64>("rendezvous-out", 0)
        .unwrap();
    let rx = b
        .cluster()
        .unwrap()
        .import_receiver::<u64>("rendezvous-out")
        .unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let sending = {
        let sent = sent.clone();
        std::thread::spawn(move || {
            for v in 1..=3u64 {
                tx.send_blocking(v).unwrap();
                sent.store(v, Ordering::SeqCst);
            }
            tx
        })
    };
    for v in 1..=3u64 {
        // Nobody on the other node has taken `v` yet: its send has not returned.
        assert!(
            sent.load(Ordering::SeqCst) < v,
            "a rendezvous send returned before its value was taken"
        );
        assert_eq!(rx.recv_blocking().unwrap(), v);
        eventually("the send returns once its value is taken", || {
            sent.load(Ordering::SeqCst) == v
        });
    }
    let tx = sending.join().unwrap();
    // A receiver that gives up before the value arrives does not lose it: the
    // send waits on until a receive takes it, once.
    let sending = std::thread::spawn(move || tx.send_blocking(42).unwrap());
    let got = loop {
        match rx.recv_timeout_blocking(Duration::from_millis(1)) {
            Ok(v) => break v,
            Err(weft::RecvError::Timeout) => continue,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(got, 42);
    sending.join().unwrap();
    // Once only: what comes next is the channel's end (the sender is gone), not
    // the value again.
    match rx.recv_timeout_blocking(Duration::from_secs(30)) {
        Err(weft::RecvError::Closed) => {}
        other => panic!("after the one value, the close: {other:?}"),
    }
    // And a guest receiving on the other node: every value, in order, then the close.
    let jobs = a.cluster().unwrap().export_sender::<Job>("jobs-out", 0).unwrap();
    let feeding = std::thread::spawn(move || {
        for seq in 0..300 {
            let job = Job {
                from: 5,
                seq,
                payload: payload(5, seq),
            };
            jobs.send_blocking(job).expect("the guest receives");
        }
    });
    let jobs = b.cluster().unwrap().import_receiver::<Job>("jobs-out").unwrap();
    let (consumer, consumed, err) = start(&b, &["consume"], RunOptions::new().receiver("jobs", jobs));
    feeding.join().unwrap();
    assert_eq!(
        consumer.wait(),
        ExitStatus::Exited(0),
        "{}",
        err.to_string_lossy()
    );
    assert_eq!(
        lines(&consumed.to_string_lossy()),
        [
            "receiving from 5",
            "received 300 from 1 producers, in order",
            "closed"
        ]
    );
}
