//! Channel semantics, one case per argument; each prints "<case> ok" or panics.

use std::time::Duration;

use weft_guest::{
    Receiver, RecvError, RecvTimeoutError, Select, Selected, SendError, SendTimeoutError, Sender,
    TryRecvError, TrySendError, after, channel, generate, parallel_map, spawn, tick,
};

fn send_then_log((tx, log): (Sender<u32>, Sender<String>)) {
    tx.send(1).unwrap();
    log.send("after send".to_string()).unwrap();
}

fn send_one_and_return(tx: Sender<u32>) {
    tx.send(1).unwrap();
}

fn send_one_and_panic(tx: Sender<u32>) {
    tx.send(1).unwrap();
    panic!("the producer broke down");
}

fn answer_on(outer: Receiver<Sender<u32>>) {
    let inner = outer.recv().unwrap();
    inner.send(42).unwrap();
}

fn two_then_boom(tx: Sender<u32>) {
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    panic!("producer boom");
}

fn square(x: u64) -> u64 {
    x * x
}

fn fail_on_13(x: u64) -> u64 {
    assert_ne!(x, 13, "thirteen is unlucky");
    x
}

fn receive_sum(rx: Receiver<u32>) -> u32 {
    rx.into_iter().sum()
}

fn echo_bytes((rx, tx): (Receiver<Vec<u8>>, Sender<Vec<u8>>)) {
    for v in rx {
        tx.send(v).unwrap();
    }
}

fn same(v: Vec<u8>) -> Vec<u8> {
    v
}

fn answer_with((x, tx): (u8, Sender<u8>)) {
    tx.send(x + 1).unwrap();
}

/// Values whose encodings are 1 to 49 bytes long: small messages travel by value
/// up to 24 bytes and as lists past that; every path must carry both alike.
fn message_sizes() {
    let (to_echo, echo_in) = channel::<Vec<u8>>(0);
    let (echo_out, from_echo) = channel::<Vec<u8>>(0);
    let echo = spawn(echo_bytes, (echo_in, echo_out));
    let (btx, brx) = channel::<Vec<u8>>(4);
    for n in 0..=48u8 {
        let v: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37).wrapping_add(n)).collect();
        // Between microthreads, both ways, on rendezvous channels.
        to_echo.send(v.clone()).unwrap();
        assert_eq!(from_echo.recv().unwrap(), v, "rendezvous, {n} bytes");
        // Buffered, without waiting.
        btx.try_send(v.clone()).unwrap();
        assert_eq!(brx.try_recv().unwrap(), v, "buffered, {n} bytes");
        // A spawn's argument and its result.
        assert_eq!(spawn(same, v.clone()).join().unwrap(), v, "spawn, {n} bytes");
        // A select's send and receive.
        let mut sel = Select::new();
        sel.send(&btx, &v);
        assert!(matches!(sel.wait(), Selected::Sent { index: 0 }));
        let mut sel = Select::new();
        sel.recv(&brx);
        match sel.wait() {
            Selected::Received { message, .. } => {
                assert_eq!(message.decode::<Vec<u8>>(), v, "select, {n} bytes")
            }
            other => panic!("select, {n} bytes: {other:?}"),
        }
        // A send that fails gives the value back.
        let (ctx, crx) = channel::<Vec<u8>>(1);
        drop(crx);
        assert_eq!(ctx.send(v.clone()), Err(SendError::Closed(v)));
    }
    drop(to_echo);
    echo.join().unwrap();
    // Two bytes and an endpoint: small, but the endpoint makes it travel as a list.
    let (tx, rx) = channel::<u8>(1);
    spawn(answer_with, (41u8, tx)).join().unwrap();
    assert_eq!(rx.recv(), Ok(42));
}

fn main() {
    let case = std::env::args().nth(1).unwrap_or_default();
    match case.as_str() {
        "message-sizes" => message_sizes(),
        "rendezvous" => {
            let (tx, rx) = channel::<u32>(0);
            let (log_tx, log_rx) = channel::<String>(4);
            let h = spawn(send_then_log, (tx, log_tx));
            weft_guest::sleep(Duration::from_millis(50)).expect("not cancelled");
            assert_eq!(
                log_rx.try_recv(),
                Err(TryRecvError::Empty),
                "the sender must still wait"
            );
            assert_eq!(rx.recv(), Ok(1));
            assert_eq!(log_rx.recv().as_deref(), Ok("after send"));
            h.join().unwrap();
        }
        "buffered" => {
            let (tx, rx) = channel::<u32>(3);
            for i in 0..3 {
                tx.try_send(i).unwrap();
            }
            assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
            assert_eq!(rx.recv(), Ok(0));
            tx.try_send(3).unwrap();
            let rest: Vec<u32> = (0..3).map(|_| rx.recv().unwrap()).collect();
            assert_eq!(rest, vec![1, 2, 3]);
            assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        }
        "close-on-drop" => {
            let (tx, rx) = channel::<u32>(2);
            tx.send(1).unwrap();
            tx.send(2).unwrap();
            let tx2 = tx.clone();
            drop(tx);
            assert_eq!(tx2.try_send(3), Err(TrySendError::Full(3))); // still open through the clone
            drop(tx2);
            assert_eq!(rx.recv(), Ok(1));
            assert_eq!(rx.recv(), Ok(2));
            assert_eq!(rx.recv(), Err(RecvError::Closed));
            assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
        }
        "close-on-end" => {
            let (tx, rx) = channel::<u32>(0);
            let h = spawn(send_one_and_return, tx);
            assert_eq!(rx.recv(), Ok(1));
            assert_eq!(rx.recv(), Err(RecvError::Closed));
            h.join().unwrap();
        }
        "close-on-trap" => {
            let (tx, rx) = channel::<u32>(0);
            let _h = spawn(send_one_and_panic, tx);
            assert_eq!(rx.recv(), Ok(1));
            match rx.recv() {
                Err(RecvError::Failed(f)) => {
                    assert!(f.message.contains("the producer broke down"), "{f}");
                    println!("failure: {f}");
                }
                other => panic!("expected the producer's failure, got {other:?}"),
            }
            // The failure was delivered: not joining `_h` does not fail main.
        }
        "no-receiver" => {
            let (tx, rx) = channel::<String>(1);
            drop(rx);
            match tx.send("hello".to_string()) {
                Err(SendError::Closed(v)) => assert_eq!(v, "hello"),
                other => panic!("{other:?}"),
            }
            assert!(matches!(tx.try_send("x".into()), Err(TrySendError::Closed(_))));
        }
        "select-fair" => {
            let (a_tx, a_rx) = channel::<u8>(1000);
            let (b_tx, b_rx) = channel::<u8>(1000);
            for _ in 0..1000 {
                a_tx.send(0).unwrap();
                b_tx.send(1).unwrap();
            }
            let mut counts = [0u32; 2];
            for _ in 0..1000 {
                let mut s = Select::new();
                let a = s.recv(&a_rx);
                let b = s.recv(&b_rx);
                match s.wait() {
                    Selected::Received { index, message } => {
                        let v: u8 = message.decode();
                        assert_eq!(
                            v as usize,
                            if index == a {
                                0
                            } else {
                                assert_eq!(index, b);
                                1
                            }
                        );
                        counts[v as usize] += 1;
                    }
                    other => panic!("{other:?}"),
                }
            }
            println!("select chose a {} times, b {} times", counts[0], counts[1]);
            assert!(counts[0] > 300 && counts[1] > 300, "unfair: {counts:?}");
        }
        "select-fair-4" => {
            // Four operations, the first and the last ready: each of those two must
            // complete about half the time (a random rotation would favour the last,
            // 3 times in 4).
            let rounds = 2000u32;
            let chans: Vec<(Sender<u8>, Receiver<u8>)> = (0..4).map(|_| channel::<u8>(2000)).collect();
            for _ in 0..rounds {
                chans[0].0.send(0).unwrap();
                chans[3].0.send(3).unwrap();
            }
            let mut counts = [0u32; 4];
            for _ in 0..rounds {
                let mut s = Select::new();
                let indexes: Vec<usize> = chans.iter().map(|(_, rx)| s.recv(rx)).collect();
                match s.wait() {
                    Selected::Received { index, message } => {
                        let v: u8 = message.decode();
                        assert_eq!(index, indexes[usize::from(v)], "the value came from its channel");
                        counts[usize::from(v)] += 1;
                    }
                    other => panic!("{other:?}"),
                }
            }
            println!("select chose {counts:?}");
            assert_eq!(counts[1] + counts[2], 0);
            let (low, high) = (rounds * 35 / 100, rounds * 65 / 100);
            assert!(
                (low..=high).contains(&counts[0]) && (low..=high).contains(&counts[3]),
                "unfair: {counts:?}"
            );
        }
        "timers-churn" => {
            // "A message, or give up after an hour", many times over: each timer's
            // channel goes with its receiver, so the program's channel limit is
            // never reached however many timers it made.
            let n: u32 = std::env::args()
                .nth(2)
                .and_then(|a| a.parse().ok())
                .unwrap_or(100_000);
            let (tx, rx) = channel::<u32>(1);
            for i in 0..n {
                tx.send(i).unwrap();
                let timeout = after(Duration::from_secs(3600));
                let mut s = Select::new();
                let msg = s.recv(&rx);
                s.recv(&timeout);
                match s.wait() {
                    Selected::Received { index, message } if index == msg => {
                        assert_eq!(message.decode::<u32>(), i)
                    }
                    other => panic!("round {i}: {other:?}"),
                }
            }
            println!("{n} timers made and dropped");
            // What is left open: this one channel, and a timer while it is held.
            let held = after(Duration::from_secs(3600));
            let mut more = Vec::new();
            let refusal = loop {
                match weft_guest::try_channel::<u8>(0) {
                    Ok(c) => more.push(c),
                    Err(e) => break e,
                }
            };
            println!("then {} more channels, then: {refusal}", more.len());
            drop((held, more));
            match weft_guest::try_after(Duration::from_secs(1)) {
                Ok(_) => {}
                Err(e) => panic!("a timer, once channels are free: {e}"),
            }
        }
        "tick-zero" => {
            // A ticker of period zero ticks at most once a millisecond: while a 100 ms
            // timer runs out, it delivers about 100 ticks (fewer on a busy machine,
            // at most a few more), not one per select (3 to 10 a millisecond here).
            let ticks = tick(Duration::ZERO);
            let done = after(Duration::from_millis(100));
            let mut count = 0u32;
            loop {
                let mut s = Select::new();
                let t = s.recv(&ticks);
                let d = s.recv(&done);
                match s.wait() {
                    Selected::Received { index, .. } if index == t => count += 1,
                    Selected::Received { index, .. } if index == d => break,
                    other => panic!("{other:?}"),
                }
            }
            println!("{count} ticks");
            assert!(
                count < 150,
                "a zero period was not clamped: {count} ticks in 100 ms"
            );
        }
        "select-send" => {
            let (tx, rx) = channel::<u32>(0);
            let (_idle_tx, idle_rx) = channel::<u32>(0);
            let h = spawn(receive_sum, rx);
            for i in 0..10 {
                let mut s = Select::new();
                let send = s.send(&tx, &i);
                let _idle = s.recv(&idle_rx);
                match s.wait() {
                    Selected::Sent { index } => assert_eq!(index, send),
                    other => panic!("{other:?}"),
                }
            }
            drop(tx);
            assert_eq!(h.join().unwrap(), 45);
            let mut s = Select::new();
            s.recv(&idle_rx);
            assert!(matches!(s.try_wait(), Selected::WouldBlock));
        }
        "timeouts" => {
            let (tx, rx) = channel::<u32>(1);
            let t = std::time::Instant::now();
            assert_eq!(
                rx.recv_timeout(Duration::from_millis(20)),
                Err(RecvTimeoutError::Timeout)
            );
            assert!(t.elapsed() >= Duration::from_millis(20));
            tx.send(1).unwrap();
            assert_eq!(
                tx.send_timeout(2, Duration::from_millis(20)),
                Err(SendTimeoutError::Timeout(2))
            );
            let mut s = Select::new();
            let (_tx2, rx2) = channel::<u32>(0);
            s.recv(&rx2);
            assert!(matches!(
                s.wait_timeout(Duration::from_millis(10)),
                Selected::Timeout
            ));
            assert_eq!(rx.recv_timeout(Duration::from_millis(20)), Ok(1));
        }
        "channel-of-channels" => {
            let (outer_tx, outer_rx) = channel::<Sender<u32>>(0);
            let h = spawn(answer_on, outer_rx);
            let (inner_tx, inner_rx) = channel::<u32>(0);
            outer_tx.send(inner_tx).unwrap();
            assert_eq!(inner_rx.recv(), Ok(42));
            // The only sender moved to the child, which has ended: closed.
            assert_eq!(inner_rx.recv(), Err(RecvError::Closed));
            h.join().unwrap();
        }
        "generate-failure" => {
            let rx = generate(two_then_boom).unwrap();
            assert_eq!(rx.recv(), Ok(1));
            assert_eq!(rx.recv(), Ok(2));
            match rx.recv() {
                Err(RecvError::Failed(f)) => assert!(f.message.contains("producer boom"), "{f}"),
                other => panic!("expected the producer's failure, got {other:?}"),
            }
        }
        "generate-iter-failure" => {
            // Iterating a failed producer's stream panics with its failure.
            let total: u32 = generate(two_then_boom).unwrap().sum();
            println!("unreachable: {total}");
        }
        "parallel-map" => {
            let squares = parallel_map(square, 0..100u64, 8).unwrap();
            assert_eq!(squares, (0..100u64).map(|x| x * x).collect::<Vec<_>>());
            let e = parallel_map(fail_on_13, 0..40u64, 4).unwrap_err();
            assert!(e.to_string().contains("thirteen is unlucky"), "{e}");
        }
        "too-large" => {
            let (tx, _rx) = channel::<Vec<u8>>(1);
            assert!(matches!(tx.send(vec![0; 4096]), Err(SendError::TooLarge(_))));
            tx.send(vec![0; 100]).unwrap();
        }
        "capacity-too-large" => {
            let _ = channel::<u8>(1_000_000);
        }
        "iterator" => {
            let (tx, rx) = channel::<u32>(0);
            let h = spawn(receive_sum, rx);
            for i in 1..=100 {
                tx.send(i).unwrap();
            }
            drop(tx);
            assert_eq!(h.join().unwrap(), 5050);
        }
        other => {
            eprintln!("unknown case `{other}`");
            weft_guest::exit(2);
        }
    }
    println!("{case} ok");
}
