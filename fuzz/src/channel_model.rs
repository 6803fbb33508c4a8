//! The application's channels (`weft::channel`, the public API) against a model: a
//! bounded queue (`VecDeque`), FIFO queues of blocked senders and receivers, and
//! counts of the live senders and receivers. The operations come from the input:
//! `try_send`, `send_timeout` of zero, `send` (blocking when the model says it
//! completes at once, else a pending future), the same for receiving, clones and
//! drops of either end, and cancelled (dropped) pending operations.
//!
//! Everything runs on the calling thread: a blocked operation is a future polled
//! by hand after each step, so the outcome of each step is decided, and each is
//! checked against the model. At the end every end is dropped and every blocked
//! operation must be released.
//!
//! Shared by the `channel_model` fuzz target and the regression tests of `tests/`
//! (which include this file): it depends on `weft` and `std` only.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use weft::{Receiver, RecvError, SendError, SendTimeoutError, Sender, TrySendError};

/// How an operation ended, in the model and for real.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Out {
    Sent,
    /// A send found no receiver: the value came back.
    Closed(u64),
    /// `try_send` found the channel full.
    Full(u64),
    /// A send's time ran out.
    SendTimeout(u64),
    Received(u64),
    /// A receive found every sender gone and nothing buffered.
    RecvClosed,
    Empty,
    RecvTimeout,
}

#[derive(Default)]
struct Model {
    capacity: usize,
    queue: VecDeque<u64>,
    send_waiters: VecDeque<(usize, u64)>,
    recv_waiters: VecDeque<usize>,
    senders: usize,
    receivers: usize,
    /// Blocked operations that ended, by party, not yet compared.
    finished: Vec<(usize, Out)>,
}

impl Model {
    fn send_now(&mut self, v: u64) -> Option<Out> {
        if self.receivers == 0 {
            return Some(Out::Closed(v));
        }
        if let Some(r) = self.recv_waiters.pop_front() {
            self.finished.push((r, Out::Received(v)));
            return Some(Out::Sent);
        }
        if self.queue.len() < self.capacity {
            self.queue.push_back(v);
            return Some(Out::Sent);
        }
        None
    }

    fn recv_now(&mut self) -> Option<Out> {
        if let Some(v) = self.queue.pop_front() {
            if let Some((s, w)) = self.send_waiters.pop_front() {
                self.queue.push_back(w);
                self.finished.push((s, Out::Sent));
            }
            return Some(Out::Received(v));
        }
        if let Some((s, w)) = self.send_waiters.pop_front() {
            self.finished.push((s, Out::Sent));
            return Some(Out::Received(w));
        }
        if self.senders == 0 {
            return Some(Out::RecvClosed);
        }
        None
    }

    fn drop_sender(&mut self) {
        self.senders -= 1;
        if self.senders == 0 {
            for r in self.recv_waiters.drain(..) {
                self.finished.push((r, Out::RecvClosed));
            }
        }
    }

    fn drop_receiver(&mut self) {
        self.receivers -= 1;
        if self.receivers == 0 {
            for (s, v) in self.send_waiters.drain(..) {
                self.finished.push((s, Out::Closed(v)));
            }
            self.queue.clear();
        }
    }

    /// A pending operation was dropped: it is no longer waiting (its value, for a
    /// send, is gone with it).
    fn cancel(&mut self, party: usize) {
        self.send_waiters.retain(|(s, _)| *s != party);
        self.recv_waiters.retain(|r| *r != party);
    }
}

type Pending = Pin<Box<dyn Future<Output = Out>>>;

/// An end the harness holds: in its table, or inside a pending operation.
enum End {
    Sender(Rc<Sender<u64>>),
    Receiver(Rc<Receiver<u64>>),
}

struct Party {
    id: usize,
    future: Pending,
    /// The end its future uses (another reference to it).
    end: End,
}

struct Harness {
    model: Model,
    senders: Vec<Rc<Sender<u64>>>,
    receivers: Vec<Rc<Receiver<u64>>>,
    parties: Vec<Party>,
    next_party: usize,
    next_value: u64,
}

/// Poll `f` once, with a waker that does nothing: the harness polls again itself.
fn poll_once(f: &mut Pending) -> Poll<Out> {
    f.as_mut().poll(&mut Context::from_waker(Waker::noop()))
}

fn sent(r: Result<(), SendError<u64>>) -> Out {
    match r {
        Ok(()) => Out::Sent,
        Err(SendError::Closed(v)) => Out::Closed(v),
        Err(e) => panic!("a u64 always serializes: {e}"),
    }
}

fn received(r: Result<u64, RecvError>) -> Out {
    match r {
        Ok(v) => Out::Received(v),
        Err(RecvError::Closed) => Out::RecvClosed,
        Err(RecvError::Empty) => Out::Empty,
        Err(RecvError::Timeout) => Out::RecvTimeout,
        Err(e) => panic!("an application channel gave {e:?}"),
    }
}

fn pick(len: usize, i: u8) -> Option<usize> {
    (len > 0).then(|| usize::from(i) % len)
}

impl Harness {
    /// Let go of one reference to an end; the model hears of it if it was the last.
    fn release(&mut self, end: End) {
        match end {
            End::Sender(s) => {
                if Rc::strong_count(&s) == 1 {
                    drop(s);
                    self.model.drop_sender();
                }
            }
            End::Receiver(r) => {
                if Rc::strong_count(&r) == 1 {
                    drop(r);
                    self.model.drop_receiver();
                }
            }
        }
    }

    fn value(&mut self) -> u64 {
        self.next_value += 1;
        self.next_value
    }

    /// Start a blocked operation: `immediate` is what the model says it ends with
    /// at once, if it does.
    fn party(&mut self, future: Pending, end: End, immediate: Option<Out>, sending: Option<u64>) {
        let id = self.next_party;
        self.next_party += 1;
        match (immediate, sending) {
            (Some(out), _) => self.model.finished.push((id, out)),
            (None, Some(v)) => self.model.send_waiters.push_back((id, v)),
            (None, None) => self.model.recv_waiters.push_back(id),
        }
        self.parties.push(Party { id, future, end });
    }

    fn step(&mut self, op: u8, i: u8) {
        let sender = pick(self.senders.len(), i);
        let receiver = pick(self.receivers.len(), i);
        match op % 13 {
            0 => {
                let Some(k) = sender else { return };
                let v = self.value();
                let want = self.model.send_now(v).unwrap_or(Out::Full(v));
                let got = match self.senders[k].try_send(v) {
                    Ok(()) => Out::Sent,
                    Err(TrySendError::Full(v)) => Out::Full(v),
                    Err(TrySendError::Closed(v)) => Out::Closed(v),
                    Err(e) => panic!("a u64 always serializes: {e}"),
                };
                assert_eq!(got, want, "try_send");
            }
            1 => {
                let Some(k) = sender else { return };
                let v = self.value();
                let want = self.model.send_now(v).unwrap_or(Out::SendTimeout(v));
                let got = match self.senders[k].send_timeout_blocking(v, Duration::ZERO) {
                    Ok(()) => Out::Sent,
                    Err(SendTimeoutError::Timeout(v)) => Out::SendTimeout(v),
                    Err(SendTimeoutError::Closed(v)) => Out::Closed(v),
                    Err(e) => panic!("a u64 always serializes: {e}"),
                };
                assert_eq!(got, want, "send_timeout_blocking(0)");
            }
            2 | 11 => {
                let Some(k) = sender else { return };
                let v = self.value();
                let now = self.model.send_now(v);
                if op % 13 == 2
                    && let Some(want) = now
                {
                    assert_eq!(sent(self.senders[k].send_blocking(v)), want, "send_blocking");
                    return;
                }
                let tx = self.senders[k].clone();
                let future: Pending = Box::pin({
                    let tx = tx.clone();
                    async move { sent(tx.send(v).await) }
                });
                self.party(future, End::Sender(tx), now, Some(v));
            }
            3 => {
                let Some(k) = receiver else { return };
                let want = self.model.recv_now().unwrap_or(Out::Empty);
                assert_eq!(received(self.receivers[k].try_recv()), want, "try_recv");
            }
            4 => {
                let Some(k) = receiver else { return };
                let want = self.model.recv_now().unwrap_or(Out::RecvTimeout);
                let got = received(self.receivers[k].recv_timeout_blocking(Duration::ZERO));
                assert_eq!(got, want, "recv_timeout_blocking(0)");
            }
            5 | 12 => {
                let Some(k) = receiver else { return };
                let now = self.model.recv_now();
                if op % 13 == 5
                    && let Some(want) = now
                {
                    assert_eq!(received(self.receivers[k].recv_blocking()), want, "recv_blocking");
                    return;
                }
                let rx = self.receivers[k].clone();
                let future: Pending = Box::pin({
                    let rx = rx.clone();
                    async move { received(rx.recv().await) }
                });
                self.party(future, End::Receiver(rx), now, None);
            }
            6 => {
                let Some(k) = sender else { return };
                let copy = Sender::clone(&self.senders[k]);
                self.senders.push(Rc::new(copy));
                self.model.senders += 1;
            }
            7 => {
                let Some(k) = receiver else { return };
                let copy = Receiver::clone(&self.receivers[k]);
                self.receivers.push(Rc::new(copy));
                self.model.receivers += 1;
            }
            8 => {
                let Some(k) = sender else { return };
                let s = self.senders.swap_remove(k);
                self.release(End::Sender(s));
            }
            9 => {
                let Some(k) = receiver else { return };
                let r = self.receivers.swap_remove(k);
                self.release(End::Receiver(r));
            }
            _ => {
                let Some(k) = pick(self.parties.len(), i) else {
                    return;
                };
                let party = self.parties.remove(k);
                self.model.cancel(party.id);
                drop(party.future);
                self.release(party.end);
            }
        }
    }

    /// Poll every blocked operation until nothing changes; the ones that ended must
    /// be those the model says ended, the same way.
    fn settle(&mut self, after: &str) {
        loop {
            // Passes until one ends nothing: an operation polled for the first time
            // (a send) may complete one polled before it (a receive).
            let mut real = Vec::new();
            loop {
                let before = real.len();
                let mut k = 0;
                while k < self.parties.len() {
                    match poll_once(&mut self.parties[k].future) {
                        Poll::Ready(out) => {
                            let party = self.parties.remove(k);
                            real.push((party.id, out, party.end));
                        }
                        Poll::Pending => k += 1,
                    }
                }
                if real.len() == before {
                    break;
                }
            }
            let mut want = std::mem::take(&mut self.model.finished);
            want.sort_by_key(|(id, _)| *id);
            real.sort_by_key(|(id, _, _)| *id);
            let got: Vec<(usize, Out)> = real.iter().map(|(id, out, _)| (*id, out.clone())).collect();
            assert_eq!(got, want, "blocked operations that ended, after {after}");
            if real.is_empty() {
                return;
            }
            for (_, _, end) in real {
                self.release(end);
            }
        }
    }
}

/// Run the operations `data` describes on a channel and on the model. Panics at the
/// first difference.
pub fn check(data: &[u8]) {
    let Some((&first, ops)) = data.split_first() else {
        return;
    };
    let capacity = match first % 8 {
        c @ 0..=4 => usize::from(c),
        5 => 8,
        6 => 64,
        _ => 1 << 20,
    };
    let (tx, rx) = weft::channel::<u64>(capacity);
    let mut h = Harness {
        model: Model {
            capacity,
            senders: 1,
            receivers: 1,
            ..Model::default()
        },
        senders: vec![Rc::new(tx)],
        receivers: vec![Rc::new(rx)],
        parties: Vec::new(),
        next_party: 0,
        next_value: 0,
    };
    for pair in ops.chunks(2) {
        let (op, i) = (pair[0], pair.get(1).copied().unwrap_or(0));
        h.step(op, i);
        h.settle(&format!("op {op} ({i})"));
        assert!(
            h.parties.len() <= 4096,
            "too many blocked operations for one input"
        );
    }
    // The end: every end the harness holds goes; every blocked operation must end.
    for s in std::mem::take(&mut h.senders) {
        h.release(End::Sender(s));
        h.settle("dropping a sender");
    }
    for r in std::mem::take(&mut h.receivers) {
        h.release(End::Receiver(r));
        h.settle("dropping a receiver");
    }
    assert!(
        h.parties.is_empty(),
        "{} blocked operations were never released once every end was gone",
        h.parties.len()
    );
    assert_eq!((h.model.senders, h.model.receivers), (0, 0));
}
