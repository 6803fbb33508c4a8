//! The host channel against a simple model: random sequences of operations from
//! several parties (non-blocking and blocking sends and receives, timeouts, clones,
//! drops), checked step by step and at the end.
//!
//! Everything runs on a current-thread runtime, so the run is deterministic: after
//! each step the blocked parties get to register before the next one.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;

use super::{
    Budget, Channel, Message, Op, Progress, Ready, ReceiverHandle, Selected, SenderHandle, Unsent, select,
};
use crate::limits::MESSAGE_OVERHEAD;

#[derive(Debug, Clone)]
enum Step {
    TrySend(usize),
    TryRecv(usize),
    SendZeroTimeout(usize),
    BlockingSend(usize),
    BlockingRecv(usize),
    RecvTimeout(usize),
    CloneSender(usize),
    CloneReceiver(usize),
    DropSender(usize),
    DropReceiver(usize),
}

fn step() -> impl Strategy<Value = Step> {
    let i = 0..4usize;
    prop_oneof![
        3 => i.clone().prop_map(Step::TrySend),
        3 => i.clone().prop_map(Step::TryRecv),
        1 => i.clone().prop_map(Step::SendZeroTimeout),
        3 => i.clone().prop_map(Step::BlockingSend),
        3 => i.clone().prop_map(Step::BlockingRecv),
        1 => i.clone().prop_map(Step::RecvTimeout),
        1 => i.clone().prop_map(Step::CloneSender),
        1 => i.clone().prop_map(Step::CloneReceiver),
        1 => i.clone().prop_map(Step::DropSender),
        1 => i.prop_map(Step::DropReceiver),
    ]
}

/// What an operation ended with, in both the model and the real channel.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Out {
    Sent,
    /// The send did not happen; the value came back.
    Unsent(u64),
    Received(u64),
    Closed,
    Empty,
    Timeout,
}

#[derive(Default)]
struct Model {
    capacity: usize,
    queue: VecDeque<u64>,
    send_waiters: VecDeque<(usize, u64)>,
    recv_waiters: VecDeque<usize>,
    senders: usize,
    receivers: usize,
    /// Outcomes of blocked parties, by party number.
    finished: HashMap<usize, Out>,
}

impl Model {
    /// Blocking operation `party` (a send of `send`, else a receive) starts: it
    /// completes now, or waits in its line.
    fn block(&mut self, party: usize, send: Option<u64>) {
        let now = match send {
            Some(v) => match self.send_now(v) {
                Ok(out) => Some(out),
                Err(v) => {
                    self.send_waiters.push_back((party, v));
                    None
                }
            },
            None => self.recv_now().or_else(|| {
                self.recv_waiters.push_back(party);
                None
            }),
        };
        if let Some(out) = now {
            self.finished.insert(party, out);
        }
    }

    /// A send that cannot complete now returns the value.
    fn send_now(&mut self, v: u64) -> Result<Out, u64> {
        if self.receivers == 0 {
            return Ok(Out::Unsent(v));
        }
        if let Some(r) = self.recv_waiters.pop_front() {
            self.finished.insert(r, Out::Received(v));
            return Ok(Out::Sent);
        }
        if self.queue.len() < self.capacity {
            self.queue.push_back(v);
            return Ok(Out::Sent);
        }
        Err(v)
    }

    fn recv_now(&mut self) -> Option<Out> {
        if let Some(v) = self.queue.pop_front() {
            if let Some((s, w)) = self.send_waiters.pop_front() {
                self.queue.push_back(w);
                self.finished.insert(s, Out::Sent);
            }
            return Some(Out::Received(v));
        }
        if let Some((s, w)) = self.send_waiters.pop_front() {
            self.finished.insert(s, Out::Sent);
            return Some(Out::Received(w));
        }
        if self.senders == 0 {
            return Some(Out::Closed);
        }
        None
    }

    fn drop_sender(&mut self) {
        self.senders -= 1;
        if self.senders == 0 {
            for r in self.recv_waiters.drain(..) {
                self.finished.insert(r, Out::Closed);
            }
        }
    }

    fn drop_receiver(&mut self) {
        self.receivers -= 1;
        if self.receivers == 0 {
            for (s, v) in self.send_waiters.drain(..) {
                self.finished.insert(s, Out::Unsent(v));
            }
            self.queue.clear();
        }
    }
}

fn message(v: u64) -> Message {
    Message {
        sent_at: None,
        bytes: super::Bytes::copy_from(&v.to_le_bytes()),
        endpoints: Vec::new(),
    }
}

fn value(m: &Message) -> u64 {
    u64::from_le_bytes(m.bytes.as_slice().try_into().unwrap())
}

/// One operation, selected alone as a plain send or receive is: its outcome.
async fn one(op: Op, timeout: Option<Duration>, block: bool, progress: &Progress) -> Out {
    let sending = matches!(op, Op::Send(..));
    outcome(
        select(vec![op], timeout, block, progress, |_, _, _| ()).await,
        sending,
    )
}

/// The live end that step index `i` picks, if any is live.
fn pick<T>(ends: &[Option<T>], i: usize) -> Option<usize> {
    let live: Vec<usize> = (0..ends.len()).filter(|&k| ends[k].is_some()).collect();
    (!live.is_empty()).then(|| live[i % live.len()])
}

fn outcome((selected, mut unsent): (Selected, Unsent), sending: bool) -> Out {
    let back = |unsent: &mut Unsent| Out::Unsent(value(unsent[0].as_ref().unwrap()));
    match selected {
        Selected::Op(_, Ready::Sent) => Out::Sent,
        Selected::Op(_, Ready::Received(m)) => Out::Received(value(&m)),
        Selected::Op(_, Ready::Closed) if sending => back(&mut unsent),
        Selected::Op(_, Ready::Closed | Ready::Failed(_)) => Out::Closed,
        Selected::Timeout if sending => back(&mut unsent),
        Selected::WouldBlock if sending => back(&mut unsent),
        Selected::Timeout => Out::Timeout,
        Selected::WouldBlock => Out::Empty,
        Selected::Interrupted | Selected::Also(_) => unreachable!("nothing interrupts these selects"),
    }
}

async fn settle() {
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
}

/// What one test message costs a budget.
const COST: u64 = 8 + MESSAGE_OVERHEAD;

/// `budget` is in messages: a budget smaller than the capacity makes the buffer
/// smaller, so the model is the same with the smaller of the two as its capacity.
async fn check(capacity: usize, budget: usize, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let progress = Progress::default();
    let accounting = Arc::new(Budget::new(budget as u64 * COST, 1));
    let (tx, rx) = Channel::open(1, capacity, &accounting).unwrap();
    let mut senders: Vec<Option<SenderHandle>> = vec![Some(tx)];
    let mut receivers: Vec<Option<ReceiverHandle>> = vec![Some(rx)];
    let mut model = Model {
        capacity: capacity.min(budget),
        senders: 1,
        receivers: 1,
        ..Model::default()
    };
    let finished: Arc<Mutex<HashMap<usize, Out>>> = Arc::default();
    let mut parties = 0usize;

    for (v, step) in (1u64..).zip(steps) {
        match step {
            Step::TrySend(i) | Step::SendZeroTimeout(i) => {
                let Some(k) = pick(&senders, i) else {
                    continue;
                };
                let chan = senders[k].as_ref().unwrap().channel().clone();
                let timeout = matches!(step, Step::SendZeroTimeout(_)).then_some(Duration::ZERO);
                let got = one(
                    Op::Send(chan, message(v), None),
                    timeout,
                    timeout.is_some(),
                    &progress,
                )
                .await;
                let want = model.send_now(v).unwrap_or(Out::Unsent(v));
                prop_assert_eq!(got, want, "{:?}", step);
            }
            Step::TryRecv(i) | Step::RecvTimeout(i) => {
                let Some(k) = pick(&receivers, i) else {
                    continue;
                };
                let chan = receivers[k].as_ref().unwrap().channel().clone();
                let (timeout, nothing) = match step {
                    Step::RecvTimeout(_) => (Some(Duration::from_millis(5)), Out::Timeout),
                    _ => (None, Out::Empty),
                };
                let got = one(Op::Recv(chan), timeout, timeout.is_some(), &progress).await;
                let want = model.recv_now().unwrap_or(nothing);
                prop_assert_eq!(got, want, "{:?}", step);
            }
            Step::BlockingSend(i) | Step::BlockingRecv(i) => {
                let sending = matches!(step, Step::BlockingSend(_));
                let chan = if sending {
                    pick(&senders, i).map(|k| senders[k].as_ref().unwrap().channel().clone())
                } else {
                    pick(&receivers, i).map(|k| receivers[k].as_ref().unwrap().channel().clone())
                };
                let Some(chan) = chan else {
                    continue;
                };
                let party = parties;
                parties += 1;
                model.block(party, sending.then_some(v));
                let op = if sending {
                    Op::Send(chan, message(v), None)
                } else {
                    Op::Recv(chan)
                };
                let (finished, progress) = (finished.clone(), progress.clone());
                tokio::spawn(async move {
                    let got = one(op, None, true, &progress).await;
                    finished.lock().unwrap().insert(party, got);
                });
            }
            Step::CloneSender(i) => {
                let Some(k) = pick(&senders, i) else {
                    continue;
                };
                let copy = senders[k].as_ref().unwrap().clone_for(None);
                senders.push(Some(copy));
                model.senders += 1;
            }
            Step::CloneReceiver(i) => {
                let Some(k) = pick(&receivers, i) else {
                    continue;
                };
                let copy = receivers[k].as_ref().unwrap().clone();
                receivers.push(Some(copy));
                model.receivers += 1;
            }
            Step::DropSender(i) => {
                let Some(k) = pick(&senders, i) else {
                    continue;
                };
                senders[k] = None;
                model.drop_sender();
            }
            Step::DropReceiver(i) => {
                let Some(k) = pick(&receivers, i) else {
                    continue;
                };
                receivers[k] = None;
                model.drop_receiver();
            }
        }
        settle().await;
        // Every party the model says has finished has finished the same way.
        let real = finished.lock().unwrap().clone();
        for (party, want) in &model.finished {
            prop_assert_eq!(real.get(party), Some(want), "party {} after {:?}", party, step);
        }
        prop_assert_eq!(real.len(), model.finished.len(), "parties finished: {:?}", real);
        prop_assert_eq!(accounting.buffered(), model.queue.len() as u64 * COST);
    }

    // The end: every endpoint goes; every blocked party must be released.
    senders.clear();
    receivers.clear();
    while model.senders > 0 {
        model.drop_sender();
    }
    while model.receivers > 0 {
        model.drop_receiver();
    }
    settle().await;
    let real = finished.lock().unwrap().clone();
    prop_assert_eq!(real.len(), parties, "every blocked party was released");
    for (party, want) in &model.finished {
        prop_assert_eq!(real.get(party), Some(want), "party {} at the end", party);
    }
    prop_assert_eq!(accounting.buffered(), 0, "nothing is left buffered");
    prop_assert_eq!(accounting.open_channels(), 0, "the channel is gone");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn channel_matches_the_model(
        capacity in 0usize..4,
        budget in prop_oneof![Just(usize::MAX / COST as usize), 0usize..4],
        steps in prop::collection::vec(step(), 1..60),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        rt.block_on(check(capacity, budget, steps))?;
    }
}

fn try_send(chan: &Arc<Channel>, v: u64) -> Option<Ready> {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    match rt
        .block_on(select(
            vec![Op::Send(chan.clone(), message(v), None)],
            None,
            false,
            &Progress::default(),
            |_, _, _| (),
        ))
        .0
    {
        Selected::Op(_, ready) => Some(ready),
        _ => None,
    }
}

fn try_recv(chan: &Arc<Channel>) -> Option<u64> {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    match rt
        .block_on(select(
            vec![Op::Recv(chan.clone())],
            None,
            false,
            &Progress::default(),
            |_, _, _| (),
        ))
        .0
    {
        Selected::Op(_, Ready::Received(m)) => Some(value(&m)),
        _ => None,
    }
}

#[test]
fn channels_of_a_run_share_its_budget() {
    let budget = Arc::new(Budget::new(3 * COST, 2));
    let (a_tx, a_rx) = Channel::open(1, 10, &budget).unwrap();
    let (b_tx, b_rx) = Channel::open(2, 10, &budget).unwrap();
    assert!(Channel::open(3, 10, &budget).is_none(), "two channels at most");
    for v in 0..3 {
        assert!(matches!(try_send(a_tx.channel(), v), Some(Ready::Sent)));
    }
    // A's buffer has room, but the run's budget has none, for A or for B.
    assert!(try_send(a_tx.channel(), 3).is_none());
    assert!(try_send(b_tx.channel(), 4).is_none());
    assert_eq!(budget.buffered(), 3 * COST);
    assert_eq!(try_recv(a_rx.channel()), Some(0));
    assert!(matches!(try_send(b_tx.channel(), 5), Some(Ready::Sent)));
    assert_eq!(try_recv(b_rx.channel()), Some(5));
    // Dropping the last receiver drops what is buffered, and frees its bytes.
    drop(a_rx);
    assert_eq!(budget.buffered(), 0);
    drop((a_tx, b_tx, b_rx));
    assert_eq!(budget.open_channels(), 0);
    assert!(Channel::open(4, 0, &budget).is_some());
}

#[test]
fn the_end_of_a_run_frees_a_channel_that_carries_its_own_receiver() {
    let budget = Arc::new(Budget::new(1 << 20, 10));
    let (tx, rx) = Channel::open(1, 4, &budget).unwrap();
    let chan = tx.channel().clone();
    let carrier = Message {
        sent_at: None,
        bytes: vec![0; 100].into(),
        endpoints: vec![super::Endpoint::Receiver(rx)],
    };
    assert!(matches!(try_send(&chan, 0).map(|_| ()), Some(())));
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let (sel, _) = rt.block_on(select(
        vec![Op::Send(chan.clone(), carrier, None)],
        None,
        false,
        &Progress::default(),
        |_, _, _| (),
    ));
    assert!(matches!(sel, Selected::Op(_, Ready::Sent)));
    drop((tx, chan));
    // The only receiver is inside the channel's own buffer: a cycle.
    assert_eq!(budget.open_channels(), 1);
    assert_eq!(budget.buffered(), 8 + 100 + 2 * MESSAGE_OVERHEAD);
    budget.empty_all();
    assert_eq!(budget.open_channels(), 0);
    assert_eq!(budget.buffered(), 0);
}

#[test]
fn the_applications_values_of_every_size_arrive_whole() {
    let (tx, rx) = super::channel::<Vec<u8>>(1);
    for n in 0..=48u8 {
        let v: Vec<u8> = (0..n).collect();
        tx.try_send(v.clone())
            .unwrap_or_else(|_| panic!("{n} bytes: not sent"));
        assert_eq!(rx.try_recv().ok(), Some(v), "{n} bytes");
    }
}

#[test]
fn a_run_sending_on_another_budgets_channel_pays_for_it() {
    let run = Arc::new(Budget::new(2 * COST, 10));
    let app = Arc::new(Budget::unbounded());
    let (tx, rx) = Channel::open(super::HOST_CHANNEL_IDS + 1, 10, &app).unwrap();
    let chan = tx.channel().clone();
    let from_run = |v| Op::Send(chan.clone(), message(v), super::charge(&chan, &run));
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let send = |op| {
        rt.block_on(select(vec![op], None, false, &Progress::default(), |_, _, _| ()))
            .0
    };
    assert!(matches!(send(from_run(1)), Selected::Op(_, Ready::Sent)));
    assert!(matches!(send(from_run(2)), Selected::Op(_, Ready::Sent)));
    // The channel has room; the sending run's budget has none.
    assert!(matches!(send(from_run(3)), Selected::WouldBlock));
    assert_eq!((run.buffered(), app.buffered()), (2 * COST, 0));
    // The application's own sends count against no run.
    assert!(matches!(try_send(&chan, 4), Some(Ready::Sent)));
    assert_eq!((run.buffered(), app.buffered()), (2 * COST, COST));
    assert_eq!(try_recv(rx.channel()), Some(1));
    assert_eq!(run.buffered(), COST);
    drop(rx);
    assert_eq!((run.buffered(), app.buffered()), (0, 0));
    // A charge only where the budgets differ.
    assert!(super::charge(&chan, &app).is_none());
}

#[test]
fn the_end_of_a_run_frees_an_applications_channel_that_carries_its_own_receiver() {
    let run = Arc::new(Budget::new(1 << 20, 10));
    let app = Arc::new(Budget::unbounded());
    let (tx, rx) = Channel::open(super::HOST_CHANNEL_IDS + 1, 4, &app).unwrap();
    let chan = tx.channel().clone();
    let weak = Arc::downgrade(&chan);
    let carrier = Message {
        sent_at: None,
        bytes: vec![0; 100].into(),
        endpoints: vec![super::Endpoint::Receiver(rx)],
    };
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let plain = Op::Send(chan.clone(), message(7), super::charge(&chan, &run));
    let (sel, _) = rt.block_on(select(
        vec![plain],
        None,
        false,
        &Progress::default(),
        |_, _, _| (),
    ));
    assert!(matches!(sel, Selected::Op(_, Ready::Sent)));
    assert_eq!(run.registered(), 0, "no endpoints, nothing to break");
    let op = Op::Send(chan.clone(), carrier, super::charge(&chan, &run));
    let (sel, _) = rt.block_on(select(vec![op], None, false, &Progress::default(), |_, _, _| ()));
    assert!(matches!(sel, Selected::Op(_, Ready::Sent)));
    assert_eq!(run.registered(), 1);
    drop((tx, chan));
    // The only receiver is inside the channel's own buffer: a cycle.
    assert!(weak.upgrade().is_some());
    assert_eq!(run.buffered(), 8 + 100 + 2 * MESSAGE_OVERHEAD);
    run.empty_all();
    assert!(weak.upgrade().is_none(), "the cycle is broken");
    assert_eq!(run.buffered(), 0);
    assert_eq!(app.open_channels(), 0);
}

#[test]
fn a_select_tells_channels_of_two_runs_with_equal_ids_apart() {
    let (a, b) = (
        Arc::new(Budget::new(1 << 20, 10)),
        Arc::new(Budget::new(1 << 20, 10)),
    );
    let (a_tx, a_rx) = Channel::open(3, 4, &a).unwrap();
    let (b_tx, b_rx) = Channel::open(3, 4, &b).unwrap();
    assert_eq!(a_rx.channel().id(), b_rx.channel().id());
    assert!(matches!(try_send(a_tx.channel(), 10), Some(Ready::Sent)));
    assert!(matches!(try_send(b_tx.channel(), 20), Some(Ready::Sent)));
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        let ops = vec![Op::Recv(a_rx.channel().clone()), Op::Recv(b_rx.channel().clone())];
        match rt
            .block_on(select(ops, None, false, &Progress::default(), |_, _, _| ()))
            .0
        {
            Selected::Op(i, Ready::Received(m)) => got.push((i, value(&m))),
            _ => panic!("a value is ready"),
        }
    }
    got.sort();
    assert_eq!(got, vec![(0, 10), (1, 20)]);
}

#[test]
fn a_select_picks_uniformly_among_ready_operations() {
    let budget = Arc::new(Budget::new(1 << 30, 10));
    let chans: Vec<_> = (1..=4)
        .map(|id| Channel::open(id, 10_000, &budget).unwrap())
        .collect();
    // Ready: the first and the last; the two between are empty.
    let rounds = 4000;
    for v in 0..rounds {
        assert!(matches!(try_send(chans[0].0.channel(), v), Some(Ready::Sent)));
        assert!(matches!(try_send(chans[3].0.channel(), v), Some(Ready::Sent)));
    }
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut wins = [0u32; 4];
    for _ in 0..rounds {
        let ops: Vec<_> = chans
            .iter()
            .map(|(_, rx)| Op::Recv(rx.channel().clone()))
            .collect();
        match rt
            .block_on(select(ops, None, false, &Progress::default(), |_, _, _| ()))
            .0
        {
            Selected::Op(i, Ready::Received(_)) => wins[i] += 1,
            _ => panic!("two values are ready"),
        }
    }
    // Half each, expected; a rotation would give the last 3/4.
    assert_eq!(wins[1] + wins[2], 0);
    assert!((1400..=2600).contains(&wins[0]), "{wins:?}");
    assert!((1400..=2600).contains(&wins[3]), "{wins:?}");
}

/// A value postcard cannot serialize: a sequence of unknown length.
struct UnknownLength(Vec<u8>);

impl serde::Serialize for UnknownLength {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().filter(|_| true))
    }
}

#[test]
fn a_value_that_cannot_be_serialized_is_an_error_not_a_panic() {
    use super::{SendError, SendTimeoutError, TrySendError};
    let (tx, rx) = super::channel::<UnknownLength>(4);
    match tx.try_send(UnknownLength(vec![1, 2])) {
        Err(TrySendError::Serialize(v, why)) => {
            assert_eq!(v.0, [1, 2], "the value comes back");
            assert!(why.contains("length"), "{why}");
        }
        other => panic!("{:?}", other.map_err(|e| e.to_string())),
    }
    let e = tx.send_blocking(UnknownLength(vec![3])).unwrap_err();
    assert!(
        e.to_string().starts_with("cannot serialize the value to send: "),
        "{e}"
    );
    assert!(matches!(e, SendError::Serialize(..)));
    assert_eq!(e.into_inner().0, [3]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let e = rt.block_on(tx.send(UnknownLength(vec![4]))).unwrap_err();
    assert!(matches!(e, SendError::Serialize(..)));
    let e = rt
        .block_on(tx.send_timeout(UnknownLength(vec![5]), Duration::from_secs(1)))
        .unwrap_err();
    assert!(matches!(e, SendTimeoutError::Serialize(..)));
    // Nothing was sent.
    assert_eq!(rx.handle.channel().lock().queue.len(), 0);
}

/// A rendezvous channel with a send waiting on it (a spawned task), on a
/// current-thread runtime with paused time; `timeout` is the send's.
async fn waiting_send(
    timeout: Option<Duration>,
) -> (
    Arc<Channel>,
    SenderHandle,
    ReceiverHandle,
    tokio::task::JoinHandle<Out>,
) {
    let budget = Arc::new(Budget::unbounded());
    let (tx, rx) = Channel::open(1, 0, &budget).unwrap();
    let chan = tx.channel().clone();
    let send_chan = chan.clone();
    let sending = tokio::spawn(async move {
        let progress = Progress::default();
        one(Op::Send(send_chan, message(7), None), timeout, true, &progress).await
    });
    settle().await;
    (chan, tx, rx, sending)
}

#[tokio::test(start_paused = true)]
async fn a_claimed_send_completes_when_the_claim_is_taken() {
    let (chan, _tx, _rx, sending) = waiting_send(None).await;
    let claim = chan.claim_send().expect("a send waits");
    assert_eq!(value(&claim.message), 7);
    settle().await;
    assert!(!sending.is_finished(), "a claimed send waits for the claim");
    claim.taken();
    assert_eq!(sending.await.unwrap(), Out::Sent);
}

#[tokio::test(start_paused = true)]
async fn a_claim_given_up_leaves_the_send_waiting_first_in_line_and_a_receive_takes_it_once() {
    let (chan, _tx, rx, sending) = waiting_send(None).await;
    let claim = chan.claim_send().expect("a send waits");
    assert!(chan.claim_send().is_none(), "one send, claimed once");
    chan.unclaim(claim);
    settle().await;
    assert!(!sending.is_finished(), "the send waits on");
    let progress = Progress::default();
    let got = one(Op::Recv(rx.channel().clone()), None, false, &progress).await;
    assert_eq!(got, Out::Received(7));
    assert_eq!(sending.await.unwrap(), Out::Sent);
}

#[tokio::test(start_paused = true)]
async fn a_send_whose_time_ran_out_while_claimed_ends_so_when_the_claim_is_given_up() {
    let (chan, _tx, _rx, sending) = waiting_send(Some(Duration::from_millis(10))).await;
    let claim = chan.claim_send().expect("a send waits");
    tokio::time::sleep(Duration::from_millis(50)).await;
    settle().await;
    assert!(!sending.is_finished(), "a claim holds the wait past its timeout");
    chan.unclaim(claim);
    assert_eq!(sending.await.unwrap(), Out::Unsent(7));
}

#[tokio::test(start_paused = true)]
async fn a_claim_refused_gives_the_message_back() {
    let (chan, _tx, _rx, sending) = waiting_send(None).await;
    let claim = chan.claim_send().expect("a send waits");
    claim.refused(Ready::Closed);
    assert_eq!(sending.await.unwrap(), Out::Unsent(7));
}

#[tokio::test(start_paused = true)]
async fn a_send_cancelled_while_claimed_ends_cancelled_when_the_claim_is_given_up() {
    let budget = Arc::new(Budget::unbounded());
    let (tx, _rx) = Channel::open(1, 0, &budget).unwrap();
    let chan = tx.channel().clone();
    let send_chan = chan.clone();
    let parked: Arc<Mutex<Option<Arc<super::Waiter>>>> = Arc::default();
    let seen = parked.clone();
    let sending = tokio::spawn(async move {
        let progress = Progress::default();
        select(
            vec![Op::Send(send_chan, message(9), None)],
            None,
            true,
            &progress,
            |w, _, _| {
                *seen.lock().unwrap() = Some(w.clone());
            },
        )
        .await
    });
    settle().await;
    let waiter = parked.lock().unwrap().clone().expect("the send waits");
    let claim = chan.claim_send().expect("a send waits");
    // The cancellation waits for the claim …
    waiter.interrupt();
    settle().await;
    assert!(!sending.is_finished(), "a claimed send is not interrupted");
    // … and ends the send when the claim is given up.
    chan.unclaim(claim);
    let (selected, mut unsent) = sending.await.unwrap();
    assert!(matches!(selected, Selected::Interrupted));
    assert_eq!(value(unsent[0].as_ref().unwrap()), 9);
    assert!(unsent.pop().is_some());
}

/// Counts the allocations of each thread, for the tests that a plain send or
/// receive allocates nothing when it completes at once.
struct Counting;

thread_local! {
    static ALLOCATIONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn count_allocation() {
    match ALLOCATIONS.try_with(|n| n.set(n.get() + 1)) {
        Ok(()) => {}
        // The thread is ending and its counter is gone: no test reads it any more.
        Err(_gone) => {}
    }
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: the caller's guarantees, passed on.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: the caller's guarantees, passed on.
        unsafe { std::alloc::System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: the caller's guarantees, passed on.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: the caller's guarantees, passed on.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// What `f` returns, and how many allocations this thread made meanwhile.
fn allocations_in<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = ALLOCATIONS.with(std::cell::Cell::get);
    let r = f();
    (r, ALLOCATIONS.with(std::cell::Cell::get) - before)
}

/// The first half of a select of `op` alone (as every plain send and receive is),
/// blocking, and how many allocations it made.
fn begin_one(op: Op) -> (super::Begun, usize) {
    let progress = Progress::default();
    allocations_in(|| super::begin([op], None, true, &progress, None))
}

/// A blocked select of one operation, which something completed meanwhile: how
/// it ended.
fn waited(begun: super::Begun) -> Selected {
    let super::Begun::Registered(pending) = begun else {
        panic!("the operation should have waited");
    };
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(pending.wait(None, |_, _, _| ())).0
}

#[test]
fn a_send_or_receive_that_completes_at_once_allocates_nothing() {
    let budget = Arc::new(Budget::new(1 << 20, 10));
    // Room in the buffer, then a value ready. A first round grows the buffer,
    // which keeps its room.
    let (tx, rx) = Channel::open(1, 1, &budget).unwrap();
    let (chan, rx_chan) = (tx.channel().clone(), rx.channel().clone());
    assert!(matches!(try_send(&chan, 1), Some(Ready::Sent)));
    assert_eq!(try_recv(&chan), Some(1));
    let (begun, n) = begin_one(Op::Send(chan.clone(), message(2), None));
    assert!(matches!(
        begun,
        super::Begun::Complete(Selected::Op(0, Ready::Sent), _)
    ));
    assert_eq!(n, 0, "a send into room in the buffer allocated");
    let (begun, n) = begin_one(Op::Recv(rx_chan.clone()));
    let super::Begun::Complete(Selected::Op(0, Ready::Received(m)), _) = begun else {
        panic!("the buffered value should have been received");
    };
    assert_eq!(value(&m), 2);
    assert_eq!(n, 0, "a receive of a buffered value allocated");

    // A rendezvous: a send to a waiting receiver, a receive from a waiting sender.
    let (tx, rx) = Channel::open(2, 0, &budget).unwrap();
    let (chan, rx_chan) = (tx.channel().clone(), rx.channel().clone());
    let (receiving, _) = begin_one(Op::Recv(rx_chan.clone()));
    let (begun, n) = begin_one(Op::Send(chan.clone(), message(3), None));
    assert!(matches!(
        begun,
        super::Begun::Complete(Selected::Op(0, Ready::Sent), _)
    ));
    assert_eq!(n, 0, "a send to a waiting receiver allocated");
    let Selected::Op(0, Ready::Received(m)) = waited(receiving) else {
        panic!("the waiting receiver should have got the value");
    };
    assert_eq!(value(&m), 3);
    let (sending, _) = begin_one(Op::Send(chan.clone(), message(4), None));
    let (begun, n) = begin_one(Op::Recv(rx_chan.clone()));
    let super::Begun::Complete(Selected::Op(0, Ready::Received(m)), _) = begun else {
        panic!("the waiting sender's value should have been received");
    };
    assert_eq!(value(&m), 4);
    assert_eq!(n, 0, "a receive from a waiting sender allocated");
    assert!(matches!(waited(sending), Selected::Op(0, Ready::Sent)));
    drop((tx, rx));
}

#[test]
fn a_send_or_receive_that_waits_allocates_its_waiter_only() {
    let budget = Arc::new(Budget::new(1 << 20, 10));
    let (tx, rx) = Channel::open(1, 0, &budget).unwrap();
    let (chan, rx_chan) = (tx.channel().clone(), rx.channel().clone());
    // A first round grows the channel's lists of waiters, which keep their room.
    let (receiving, _) = begin_one(Op::Recv(rx_chan.clone()));
    assert!(matches!(try_send(&chan, 1), Some(Ready::Sent)));
    assert!(matches!(waited(receiving), Selected::Op(0, Ready::Received(_))));
    let (sending, _) = begin_one(Op::Send(chan.clone(), message(2), None));
    assert_eq!(try_recv(&chan), Some(2));
    assert!(matches!(waited(sending), Selected::Op(0, Ready::Sent)));

    let (receiving, n) = begin_one(Op::Recv(rx_chan.clone()));
    assert_eq!(n, 1, "a receive that waits allocated more than its waiter");
    assert!(matches!(try_send(&chan, 3), Some(Ready::Sent)));
    assert!(matches!(waited(receiving), Selected::Op(0, Ready::Received(_))));
    let (sending, n) = begin_one(Op::Send(chan.clone(), message(4), None));
    assert_eq!(n, 1, "a send that waits allocated more than its waiter");
    assert_eq!(try_recv(&chan), Some(4));
    assert!(matches!(waited(sending), Selected::Op(0, Ready::Sent)));
    drop((tx, rx));
}
