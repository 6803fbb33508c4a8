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

use super::{Budget, Channel, Message, Op, Progress, Ready, ReceiverHandle, Selected, SenderHandle, select};
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
        bytes: super::Bytes::copy_from(&v.to_le_bytes()),
        endpoints: Vec::new(),
    }
}

fn value(m: &Message) -> u64 {
    u64::from_le_bytes(m.bytes.as_slice().try_into().unwrap())
}

fn outcome((selected, mut unsent): (Selected, Vec<Option<Message>>), sending: bool) -> Out {
    let back = |unsent: &mut Vec<Option<Message>>| Out::Unsent(value(unsent[0].as_ref().unwrap()));
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

    let pick_s = |senders: &Vec<Option<SenderHandle>>, i: usize| {
        let live: Vec<usize> = (0..senders.len()).filter(|&k| senders[k].is_some()).collect();
        (!live.is_empty()).then(|| live[i % live.len()])
    };
    let pick_r = |receivers: &Vec<Option<ReceiverHandle>>, i: usize| {
        let live: Vec<usize> = (0..receivers.len()).filter(|&k| receivers[k].is_some()).collect();
        (!live.is_empty()).then(|| live[i % live.len()])
    };

    for (v, step) in (1u64..).zip(steps) {
        match step {
            Step::TrySend(i) | Step::SendZeroTimeout(i) => {
                let Some(k) = pick_s(&senders, i) else {
                    continue;
                };
                let chan = senders[k].as_ref().unwrap().channel().clone();
                let timeout = matches!(step, Step::SendZeroTimeout(_)).then_some(Duration::ZERO);
                let got = outcome(
                    select(
                        vec![Op::Send(chan, message(v))],
                        timeout,
                        timeout.is_some(),
                        &progress,
                        |_, _, _| (),
                    )
                    .await,
                    true,
                );
                let want = model.send_now(v).unwrap_or(Out::Unsent(v));
                prop_assert_eq!(got, want, "{:?}", step);
            }
            Step::TryRecv(i) => {
                let Some(k) = pick_r(&receivers, i) else {
                    continue;
                };
                let chan = receivers[k].as_ref().unwrap().channel().clone();
                let got = outcome(
                    select(vec![Op::Recv(chan)], None, false, &progress, |_, _, _| ()).await,
                    false,
                );
                let want = model.recv_now().unwrap_or(Out::Empty);
                prop_assert_eq!(got, want, "{:?}", step);
            }
            Step::RecvTimeout(i) => {
                let Some(k) = pick_r(&receivers, i) else {
                    continue;
                };
                let chan = receivers[k].as_ref().unwrap().channel().clone();
                let got = outcome(
                    select(
                        vec![Op::Recv(chan)],
                        Some(Duration::from_millis(5)),
                        true,
                        &progress,
                        |_, _, _| (),
                    )
                    .await,
                    false,
                );
                let want = model.recv_now().unwrap_or(Out::Timeout);
                prop_assert_eq!(got, want, "{:?}", step);
            }
            Step::BlockingSend(i) => {
                let Some(k) = pick_s(&senders, i) else {
                    continue;
                };
                let chan = senders[k].as_ref().unwrap().channel().clone();
                let party = parties;
                parties += 1;
                match model.send_now(v) {
                    Ok(out) => {
                        model.finished.insert(party, out);
                    }
                    Err(v) => model.send_waiters.push_back((party, v)),
                }
                let (finished, progress) = (finished.clone(), progress.clone());
                tokio::spawn(async move {
                    let got = outcome(
                        select(
                            vec![Op::Send(chan, message(v))],
                            None,
                            true,
                            &progress,
                            |_, _, _| (),
                        )
                        .await,
                        true,
                    );
                    finished.lock().unwrap().insert(party, got);
                });
            }
            Step::BlockingRecv(i) => {
                let Some(k) = pick_r(&receivers, i) else {
                    continue;
                };
                let chan = receivers[k].as_ref().unwrap().channel().clone();
                let party = parties;
                parties += 1;
                match model.recv_now() {
                    Some(out) => {
                        model.finished.insert(party, out);
                    }
                    None => model.recv_waiters.push_back(party),
                }
                let (finished, progress) = (finished.clone(), progress.clone());
                tokio::spawn(async move {
                    let got = outcome(
                        select(vec![Op::Recv(chan)], None, true, &progress, |_, _, _| ()).await,
                        false,
                    );
                    finished.lock().unwrap().insert(party, got);
                });
            }
            Step::CloneSender(i) => {
                let Some(k) = pick_s(&senders, i) else {
                    continue;
                };
                let copy = senders[k].as_ref().unwrap().clone_for(None);
                senders.push(Some(copy));
                model.senders += 1;
            }
            Step::CloneReceiver(i) => {
                let Some(k) = pick_r(&receivers, i) else {
                    continue;
                };
                let copy = receivers[k].as_ref().unwrap().clone();
                receivers.push(Some(copy));
                model.receivers += 1;
            }
            Step::DropSender(i) => {
                let Some(k) = pick_s(&senders, i) else {
                    continue;
                };
                senders[k] = None;
                model.drop_sender();
            }
            Step::DropReceiver(i) => {
                let Some(k) = pick_r(&receivers, i) else {
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
            vec![Op::Send(chan.clone(), message(v))],
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
        bytes: vec![0; 100].into(),
        endpoints: vec![super::Endpoint::Receiver(rx)],
    };
    assert!(matches!(try_send(&chan, 0).map(|_| ()), Some(())));
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let (sel, _) = rt.block_on(select(
        vec![Op::Send(chan.clone(), carrier)],
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
