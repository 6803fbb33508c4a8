//! The fuzz guest: turns its stdin into a sequence of RAW `weft:runtime` calls, made
//! through bindings generated here from `wit/` and not through the `weft-guest` SDK,
//! so that nothing checks them on the guest side: forged handles, small messages
//! whose length is a lie, capacities, sizes and durations of any value, endpoint
//! lists, selects with odd operation lists, spawns of bogus entry points,
//! registrations and lookups of named senders. A spawned child runs the same
//! interpreter on a slice of its parent's input, with the endpoints its argument
//! moved to it.
//!
//! Run by the fuzz target `fuzz/fuzz_targets/boundary.rs` (and its regression test)
//! under the real host. A trap, a panic or an exit of this guest is an expected
//! outcome; a panic, a hang or a leak of the HOST is the bug looked for.
//!
//! Arguments: `real` when the run is not deterministic (its time is real): every
//! duration is then cut to a few milliseconds, so that an input costs little time.

mod raw {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "microthread",
        generate_all,
    });
}

use raw::exports::weft::runtime::entry;
use raw::weft::runtime::channel::{
    self as ch, Endpoint, LargeMessage, Message, Receiver, SelectOp, Sender, SmallMessage,
};
use raw::weft::runtime::net::{self, Shutdown, TcpListener, TcpStream};
use raw::weft::runtime::registry;
use raw::weft::runtime::thread::{self, JoinHandle};

/// How many of each kind of handle one microthread keeps (more are dropped).
const KEEP: usize = 24;
/// The longest duration a run in real time waits, in nanoseconds.
const REAL_MAX_NANOS: u64 = 3_000_000;
/// Guest memory one microthread may hold on purpose (the run's limit is lower).
const MAX_HOARD: usize = 64 << 20;

/// The bytes an interpreter reads its calls from; past the end, zeros.
struct Input {
    data: Vec<u8>,
    pos: usize,
}

impl Input {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }

    fn bool(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// The next `n` bytes (fewer at the end).
    fn take(&mut self, n: usize) -> Vec<u8> {
        let start = self.pos.min(self.data.len());
        let end = start.saturating_add(n).min(self.data.len());
        self.pos = end.max(self.pos);
        self.data[start..end].to_vec()
    }

    /// A text: one of those the host knows, or arbitrary (even not UTF-8, lossily).
    fn text(&mut self) -> String {
        match self.byte() % 5 {
            0 => "in".into(),
            1 => "out".into(),
            2 => String::new(),
            3 => "x".repeat(usize::from(self.byte()) * 64),
            _ => {
                let n = usize::from(self.byte() % 24);
                String::from_utf8_lossy(&self.take(n)).into_owned()
            }
        }
    }

    /// A length, often at a boundary (the small-message size, the run's message
    /// size limit, which the fuzz target sets to 4 KiB).
    fn len(&mut self) -> usize {
        match self.byte() % 10 {
            0 => 0,
            1 => usize::from(self.byte()),
            2 => 24,
            3 => 25,
            4 => 4096,
            5 => 4097,
            6 => 65_536,
            7 => usize::from(u16::from_le_bytes([self.byte(), self.byte()])),
            8 => 8,
            _ => 1,
        }
    }
}

/// One microthread's interpreter: its input and the handles it holds.
struct State {
    input: Input,
    real: bool,
    senders: Vec<Sender>,
    receivers: Vec<Receiver>,
    joins: Vec<JoinHandle>,
    listeners: Vec<TcpListener>,
    streams: Vec<TcpStream>,
    hoard: Vec<Vec<u8>>,
    hoarded: usize,
    /// What this microthread returns (a child's result, endpoints and all).
    result: Option<Message>,
}

fn keep<T>(v: &mut Vec<T>, x: T) {
    if v.len() < KEEP {
        v.push(x);
    }
}

/// Index `b` into a table of `len` entries, if any.
fn at(len: usize, b: u8) -> Option<usize> {
    (len > 0).then(|| usize::from(b) % len)
}

impl State {
    fn new(data: Vec<u8>, real: bool) -> Self {
        State {
            input: Input { data, pos: 0 },
            real,
            senders: Vec::new(),
            receivers: Vec::new(),
            joins: Vec::new(),
            listeners: Vec::new(),
            streams: Vec::new(),
            hoard: Vec::new(),
            hoarded: 0,
            result: None,
        }
    }

    fn byte(&mut self) -> u8 {
        self.input.byte()
    }

    /// A duration in nanoseconds, often an edge (0, 1, `u64::MAX`).
    fn nanos(&mut self) -> u64 {
        let n = match self.byte() % 8 {
            0 => 0,
            1 => 1,
            2 => 1_000,
            3 => 1_000_000,
            4 => 20_000_000,
            5 => self.input.u64(),
            6 => u64::MAX,
            _ => 1_000_000_000,
        };
        if self.real { n.min(REAL_MAX_NANOS) } else { n }
    }

    fn maybe_nanos(&mut self) -> Option<u64> {
        if self.input.bool() {
            Some(self.nanos())
        } else {
            None
        }
    }

    /// Move some held endpoints out, for a message or a spawn.
    fn endpoints(&mut self) -> Vec<Endpoint> {
        let n = match self.byte() % 8 {
            0..=3 => 0,
            4 | 5 => 1,
            6 => 2,
            _ => usize::from(self.byte() % 16),
        };
        let mut out = Vec::new();
        for _ in 0..n {
            let b = self.byte();
            let e = match b % 4 {
                0 => at(self.senders.len(), b / 4).map(|i| Endpoint::Sender(self.senders.swap_remove(i))),
                1 => {
                    at(self.receivers.len(), b / 4).map(|i| Endpoint::Receiver(self.receivers.swap_remove(i)))
                }
                2 => at(self.listeners.len(), b / 4)
                    .map(|i| Endpoint::TcpListener(self.listeners.swap_remove(i))),
                _ => at(self.streams.len(), b / 4).map(|i| Endpoint::TcpStream(self.streams.swap_remove(i))),
            };
            out.extend(e);
        }
        out
    }

    /// A message: small (its length possibly a lie), or large with endpoints.
    fn message(&mut self) -> Message {
        match self.byte() % 4 {
            0 => Message::Small(SmallMessage {
                // Any length: the host must refuse one over 24.
                len: self.byte(),
                w0: self.input.u64(),
                w1: self.input.u64(),
                w2: self.input.u64(),
            }),
            1 => {
                let len = self.byte() % 25;
                let mut words = [0u64; 3];
                for (i, b) in self.input.take(usize::from(len)).into_iter().enumerate() {
                    words[i / 8] |= u64::from(b) << (8 * (i % 8));
                }
                Message::Small(SmallMessage {
                    len,
                    w0: words[0],
                    w1: words[1],
                    w2: words[2],
                })
            }
            _ => {
                let len = self.input.len();
                let fill = self.byte();
                Message::Large(LargeMessage {
                    bytes: vec![fill; len],
                    endpoints: self.endpoints(),
                })
            }
        }
    }

    /// Keep what a message moved here (its endpoints).
    fn absorb(&mut self, m: Message) {
        if let Message::Large(m) = m {
            for e in m.endpoints {
                match e {
                    Endpoint::Sender(s) => keep(&mut self.senders, s),
                    Endpoint::Receiver(r) => keep(&mut self.receivers, r),
                    Endpoint::TcpListener(l) => keep(&mut self.listeners, l),
                    Endpoint::TcpStream(s) => keep(&mut self.streams, s),
                }
            }
        }
    }

    fn absorb_send_error(&mut self, e: ch::SendError) {
        match e {
            ch::SendError::Closed(m)
            | ch::SendError::Full(m)
            | ch::SendError::Timeout(m)
            | ch::SendError::TooLarge(m)
            | ch::SendError::Cancelled(m)
            | ch::SendError::Disconnected((m, _)) => self.absorb(m),
        }
    }

    fn absorb_recv(&mut self, r: Result<Message, ch::RecvError>) {
        match r {
            Ok(m) => self.absorb(m),
            Err(e) => {
                core::hint::black_box(e);
            }
        }
    }

    /// Run the input's calls, one after another, to its end.
    fn run(&mut self) {
        while !self.input.done() {
            self.step();
        }
    }

    fn step(&mut self) {
        let op = self.byte();
        let b = self.byte();
        match op % 32 {
            0 => {
                let capacity = match b % 4 {
                    0 => 0,
                    1 => 1,
                    2 => u32::from(self.byte()),
                    _ => self.input.u32(),
                };
                if let Ok((tx, rx)) = ch::open(capacity) {
                    keep(&mut self.senders, tx);
                    keep(&mut self.receivers, rx);
                }
            }
            1 => {
                if let Some(i) = at(self.senders.len(), b) {
                    let copy = self.senders[i].clone();
                    keep(&mut self.senders, copy);
                }
            }
            2 => {
                if let Some(i) = at(self.receivers.len(), b) {
                    let copy = self.receivers[i].clone();
                    keep(&mut self.receivers, copy);
                }
            }
            3 => {
                if let Some(i) = at(self.senders.len(), b) {
                    drop(self.senders.swap_remove(i));
                }
            }
            4 => {
                if let Some(i) = at(self.receivers.len(), b) {
                    drop(self.receivers.swap_remove(i));
                }
            }
            5 => self.send(b),
            6 => {
                if let Some(i) = at(self.receivers.len(), b) {
                    let r = match self.byte() % 3 {
                        0 => self.receivers[i].recv(),
                        1 => self.receivers[i].try_recv(),
                        _ => {
                            let t = self.nanos();
                            self.receivers[i].recv_timeout(t)
                        }
                    };
                    self.absorb_recv(r);
                }
            }
            7 => self.select(b),
            8 => self.spawn_child(b),
            9 => self.spawn_bogus(b),
            10 => self.join_op(b),
            11 => thread::yield_now(),
            12 => {
                let t = self.nanos();
                let _ = thread::sleep(t);
            }
            13 => {
                let _ = (thread::cancelled(), thread::current_id(), thread::current_name());
                // A supervisor's calls: a restart counted; rarely, giving up (it
                // ends this microthread, failed) with any text.
                if b & 2 == 2 {
                    thread::count_restart();
                }
                if b == 0xff {
                    let text = self.input.text();
                    thread::give_up(&text);
                }
                // A monitor of any id, live, ended or never seen.
                if b & 1 == 1
                    && let Ok(rx) = thread::monitor(u64::from(b >> 1))
                {
                    keep(&mut self.receivers, rx);
                }
            }
            14 => thread::atomic_begin(),
            15 => thread::atomic_end(),
            16 => {
                let name = self.input.text();
                if b & 1 == 0 {
                    if let Some(tx) = ch::host_sender(&name) {
                        keep(&mut self.senders, tx);
                    }
                } else if let Some(rx) = ch::host_receiver(&name) {
                    keep(&mut self.receivers, rx);
                }
            }
            17 => {
                let after = self.nanos();
                let every = self.maybe_nanos();
                if let Ok(rx) = ch::timer(after, every) {
                    keep(&mut self.receivers, rx);
                }
            }
            18 => self.forge(b),
            19 => {
                let address = self.address(b);
                if let Ok(l) = net::bind(&address) {
                    keep(&mut self.listeners, l);
                }
            }
            20 => {
                let address = self.address(b);
                let timeout = self.maybe_nanos();
                if let Ok(s) = net::connect(&address, timeout) {
                    keep(&mut self.streams, s);
                }
            }
            21 => self.listener_op(b),
            22 => self.stream_op(b),
            23 => {
                if self.byte() == 0x5a {
                    thread::exit(b);
                }
            }
            24 => {
                let m = self.input.text();
                thread::set_panic_message(&m);
            }
            25 => {
                if self.byte() == 0x5a {
                    panic!("the fuzz input asked for a panic");
                }
            }
            26 => {
                // Busy work, for fuel preemption to cut.
                let n = u32::from(u16::from_le_bytes([b, self.byte()])) * 16;
                let mut x = 0u64;
                for i in 0..n {
                    x = core::hint::black_box(x.wrapping_mul(31).wrapping_add(u64::from(i)));
                }
                core::hint::black_box(x);
            }
            27 => {
                let n = usize::from(b) << 16;
                if self.hoarded + n <= MAX_HOARD {
                    self.hoarded += n;
                    self.hoard.push(vec![1; n]);
                }
            }
            28 => {
                let m = self.message();
                if let Some(old) = self.result.replace(m) {
                    self.absorb(old);
                }
            }
            29 => {
                if let Some(i) = at(self.senders.len(), b) {
                    core::hint::black_box(self.senders[i].id());
                }
                if let Some(i) = at(self.receivers.len(), b) {
                    core::hint::black_box(self.receivers[i].id());
                }
            }
            30 => match b % 5 {
                0 => self.senders.clear(),
                1 => self.receivers.clear(),
                2 => self.joins.clear(),
                3 => self.listeners.clear(),
                _ => self.streams.clear(),
            },
            _ => match self.byte() {
                0x5a => core::arch::wasm32::unreachable(),
                x if x % 4 == 1 => self.registry_op(b),
                _ => {}
            },
        }
    }

    /// Register a held sender under a name (often one already taken, sometimes
    /// over the limit) with any fingerprint, or look a name up.
    fn registry_op(&mut self, b: u8) {
        let name = match self.byte() % 4 {
            0 => "a".to_string(),
            1 => "b".to_string(),
            2 => "n".repeat(257),
            _ => self.input.text(),
        };
        if b.is_multiple_of(2) {
            if let Some(i) = at(self.senders.len(), b / 2) {
                let fingerprint = self.input.text();
                core::hint::black_box(registry::register(&name, &fingerprint, &self.senders[i]).is_ok());
            }
        } else if let Some((tx, fingerprint)) = registry::whereis(&name) {
            core::hint::black_box(fingerprint);
            keep(&mut self.senders, tx);
        }
    }

    fn send(&mut self, b: u8) {
        let Some(i) = at(self.senders.len(), b) else {
            return;
        };
        let mode = self.byte() % 3;
        let m = self.message();
        // The message may have moved senders out: the index may be gone.
        let Some(i) = at(self.senders.len(), i as u8) else {
            self.absorb(m);
            return;
        };
        let r = match mode {
            0 => self.senders[i].send(m),
            1 => self.senders[i].try_send(m),
            _ => {
                let t = self.nanos();
                self.senders[i].send_timeout(m, t)
            }
        };
        if let Err(e) = r {
            self.absorb_send_error(e);
        }
    }

    fn select(&mut self, b: u8) {
        let n = match b % 8 {
            0 => 0,
            1..=5 => usize::from(b % 8),
            _ => usize::from(self.byte() % 48),
        };
        // First what each operation is (its message made, endpoints moved), then the
        // borrows.
        let mut plan: Vec<(u8, u8, Option<Message>)> = Vec::with_capacity(n);
        for _ in 0..n {
            let kind = self.byte() % 5;
            let index = self.byte();
            let m = (kind == 1).then(|| self.message());
            plan.push((kind, index, m));
        }
        let timeout = self.maybe_nanos();
        let block = self.input.bool();
        let mut leftover = Vec::new();
        let mut ops = Vec::with_capacity(n);
        for (kind, index, m) in plan {
            let op = match kind {
                0 => at(self.receivers.len(), index).map(|i| SelectOp::Recv(&self.receivers[i])),
                1 => match at(self.senders.len(), index) {
                    Some(i) => Some(SelectOp::Send((
                        &self.senders[i],
                        m.expect("a send has a message"),
                    ))),
                    None => {
                        leftover.extend(m);
                        None
                    }
                },
                2 => at(self.listeners.len(), index).map(|i| SelectOp::Accept(&self.listeners[i])),
                3 => at(self.streams.len(), index).map(|i| SelectOp::Readable(&self.streams[i])),
                _ => at(self.streams.len(), index).map(|i| SelectOp::Writable(&self.streams[i])),
            };
            ops.extend(op);
        }
        let (selected, unsent) = ch::select(&ops, timeout, block);
        drop(ops);
        for m in leftover.into_iter().chain(unsent.into_iter().flatten()) {
            self.absorb(m);
        }
        match selected {
            ch::Selected::Received((_, m)) => self.absorb(m),
            ch::Selected::Failed((_, f)) => {
                core::hint::black_box(f);
            }
            _ => {}
        }
    }

    fn spawn_child(&mut self, b: u8) {
        let n = usize::from(self.byte()) + usize::from(b % 4) * 256;
        let program = self.input.take(n);
        let argument = Message::Large(LargeMessage {
            bytes: program,
            endpoints: self.endpoints(),
        });
        let name = if self.input.bool() {
            Some(self.input.text())
        } else {
            None
        };
        let detached = b & 0x80 != 0;
        let trampoline = child as fn(u32, Message) -> Message as usize as u32;
        let function = u32::from(self.real);
        match thread::spawn(trampoline, function, argument, name.as_deref(), detached) {
            Ok(h) => keep(&mut self.joins, h),
            Err(refused) => self.absorb(refused.argument),
        }
    }

    fn spawn_bogus(&mut self, b: u8) {
        let good = child as fn(u32, Message) -> Message as usize as u32;
        let trampoline = match b % 6 {
            0 => 0,
            1 => u32::MAX,
            2 => good.wrapping_add(1),
            3 => main as fn() as usize as u32,
            4 => self.input.u32(),
            _ => good,
        };
        let function = self.input.u32();
        let argument = self.message();
        let detached = self.input.bool();
        match thread::spawn(trampoline, function, argument, None, detached) {
            Ok(h) => keep(&mut self.joins, h),
            Err(refused) => self.absorb(refused.argument),
        }
    }

    fn join_op(&mut self, b: u8) {
        let Some(i) = at(self.joins.len(), b) else {
            return;
        };
        match self.byte() % 6 {
            0 => {
                if let Ok(m) = self.joins[i].join() {
                    self.absorb(m);
                }
            }
            1 => {
                let t = self.nanos();
                if let Ok(m) = self.joins[i].join_timeout(t) {
                    self.absorb(m);
                }
            }
            2 => {
                core::hint::black_box(self.joins[i].is_finished());
            }
            3 if b & 1 == 0 => self.joins[i].cancel(),
            // A supervisor's cancel, with a grace of any length (none, or past
            // any clock's end).
            3 => {
                let t = self.nanos();
                self.joins[i].cancel_within(t);
            }
            4 => drop(self.joins.swap_remove(i)),
            _ => {
                core::hint::black_box(self.joins[i].id());
            }
        }
    }

    /// Use a handle number the guest does not own (or owns as another type): the
    /// canonical ABI must trap this microthread, never harm the host.
    fn forge(&mut self, b: u8) {
        let handle = match self.byte() % 4 {
            0 => self.input.u32(),
            1 => u32::from(self.byte()),
            2 => 0,
            _ => u32::MAX,
        };
        // SAFETY: not at all, on purpose: a forged handle must fail this microthread
        // only. Each object is forgotten so that its drop does not call the host again.
        unsafe {
            match b % 6 {
                0 => {
                    let s = Sender::from_handle(handle);
                    core::hint::black_box(s.id());
                    core::mem::forget(s);
                }
                1 => {
                    let r = Receiver::from_handle(handle);
                    core::hint::black_box(r.try_recv().is_ok());
                    core::mem::forget(r);
                }
                2 => {
                    let j = JoinHandle::from_handle(handle);
                    core::hint::black_box(j.is_finished());
                    core::mem::forget(j);
                }
                3 => {
                    let l = TcpListener::from_handle(handle);
                    core::hint::black_box(l.local_address());
                    core::mem::forget(l);
                }
                4 => drop(TcpStream::from_handle(handle)),
                _ => {
                    // Send a forged sender inside a message: the host must refuse
                    // the endpoint it cannot take.
                    if let Some(tx) = self.senders.first() {
                        let forged = Sender::from_handle(handle);
                        let m = Message::Large(LargeMessage {
                            bytes: Vec::new(),
                            endpoints: vec![Endpoint::Sender(forged)],
                        });
                        if let Err(e) = tx.try_send(m) {
                            self.absorb_send_error(e);
                        }
                    }
                }
            }
        }
    }

    fn address(&mut self, b: u8) -> String {
        match b % 8 {
            0 | 1 => "127.0.0.1:0".into(),
            2 => "[::1]:0".into(),
            3 => "localhost:0".into(),
            4 | 5 => match at(self.listeners.len(), self.byte()) {
                Some(i) => self.listeners[i].local_address(),
                None => "127.0.0.1:1".into(),
            },
            6 => "0.0.0.0:0".into(),
            _ => self.input.text(),
        }
    }

    fn listener_op(&mut self, b: u8) {
        let Some(i) = at(self.listeners.len(), b) else {
            return;
        };
        match self.byte() % 4 {
            0 => {
                let copy = self.listeners[i].share();
                keep(&mut self.listeners, copy);
            }
            1 => {
                core::hint::black_box(self.listeners[i].local_address());
            }
            2 => {
                let t = self.maybe_nanos();
                if let Ok(s) = self.listeners[i].accept(t) {
                    keep(&mut self.streams, s);
                }
            }
            _ => drop(self.listeners.swap_remove(i)),
        }
    }

    fn stream_op(&mut self, b: u8) {
        let Some(i) = at(self.streams.len(), b) else {
            return;
        };
        match self.byte() % 8 {
            0 => {
                let copy = self.streams[i].share();
                keep(&mut self.streams, copy);
            }
            1 => {
                core::hint::black_box((self.streams[i].local_address(), self.streams[i].peer_address()));
            }
            2 => {
                let max = match self.byte() % 3 {
                    0 => 0,
                    1 => u32::from(self.byte()),
                    _ => u32::MAX,
                };
                let t = self.maybe_nanos();
                core::hint::black_box(self.streams[i].read(max, t).is_ok());
            }
            3 => {
                let bytes = vec![b'x'; self.input.len()];
                let t = self.maybe_nanos();
                core::hint::black_box(self.streams[i].write(&bytes, t).is_ok());
            }
            4 => {
                let how = match self.byte() % 3 {
                    0 => Shutdown::Read,
                    1 => Shutdown::Write,
                    _ => Shutdown::Both,
                };
                core::hint::black_box(self.streams[i].shutdown(how).is_ok());
            }
            5 => {
                let on = self.input.bool();
                core::hint::black_box(self.streams[i].set_nodelay(on).is_ok());
            }
            _ => drop(self.streams.swap_remove(i)),
        }
    }
}

/// Where a spawned child starts (through `entry::run`): `argument`'s bytes are its
/// program, its endpoints its first handles; `real` is 1 in a run in real time.
fn child(real: u32, argument: Message) -> Message {
    let mut st = State::new(Vec::new(), real == 1);
    match argument {
        Message::Large(m) => {
            st.input.data = m.bytes;
            st.absorb(Message::Large(LargeMessage {
                bytes: Vec::new(),
                endpoints: m.endpoints,
            }));
        }
        Message::Small(m) => {
            let words = [m.w0, m.w1, m.w2];
            st.input.data = (0..usize::from(m.len.min(24)))
                .map(|i| words[i / 8].to_le_bytes()[i % 8])
                .collect();
        }
    }
    st.run();
    st.result.take().unwrap_or(Message::Small(SmallMessage {
        len: 0,
        w0: 0,
        w1: 0,
        w2: 0,
    }))
}

struct Entry;

impl entry::Guest for Entry {
    fn run(trampoline: u32, function: u32, argument: Message) -> Message {
        // SAFETY: none, on purpose: `trampoline` is whatever the spawning input
        // asked for. A bad index traps in `call_indirect` (out of the table, or a
        // function of another type), which fails this microthread only.
        let f: fn(u32, Message) -> Message = unsafe { core::mem::transmute(trampoline as usize) };
        f(function, argument)
    }
}

raw::export!(Entry with_types_in raw);

fn main() {
    use std::io::Read;
    let real = std::env::args().nth(1).as_deref() == Some("real");
    let mut data = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut data) {
        eprintln!("fuzz_calls: cannot read stdin: {e}");
        std::process::exit(2);
    }
    State::new(data, real).run();
}
