//! Guests on the application's channels (`weft::channel`), chosen by the first
//! argument; each waits at the end until the application closes `stop`:
//! - `flood SIZE`: `try_send`s SIZE-byte values on the host channel `sink` until
//!   refused; prints `flooded N, then: <error>`.
//! - `pass`: opens a channel of its own, buffers 7 in it, sends its receiver on
//!   the host channel `pass`; prints `passed channel <id>`.
//! - `collide`: receives a receiver from `pass` (another run's channel), opens a
//!   channel of its own with the same id, buffers 8 in it, and selects over both
//!   twice: each must give its own value; prints `collide ok`.
//! - `failing-producer`: hands a clone of the host sender `results` to a detached
//!   microthread, drops its handle, then lets it fail while holding the sender;
//!   prints `detached`.
//! - `failures`: for each number n received on the host channel `go`, starts a
//!   detached microthread that panics with `detached failure n` (nobody joins
//!   it); when `go` closes, prints `failures done` and returns (no `stop`).
//! - `cbor`: reads jobs from the host channel `jobs` in CBOR and answers each on
//!   `results` in CBOR (the name upper-cased, the area, the tags sorted, the width
//!   over the height, the bytes reversed), until `jobs` closes: what the Python and
//!   JavaScript test programs do in their `host-cbor` modes.

use weft_guest::{
    Codec, Receiver, Select, Selected, Sender, TrySendError, channel, host_receiver, host_sender,
};

#[derive(serde::Deserialize)]
struct Job {
    name: String,
    width: u32,
    height: u32,
    tags: Vec<String>,
    #[serde(with = "serde_bytes")]
    raw: Vec<u8>,
}

#[derive(serde::Serialize)]
struct Done {
    name: String,
    area: u64,
    tags: Vec<String>,
    ratio: f64,
    #[serde(with = "serde_bytes")]
    raw: Vec<u8>,
}

/// Wait until the application closes `stop`.
fn wait_for_stop() {
    let stop = host_receiver::<u8>("stop").expect("the application hands `stop`");
    while stop.recv().is_ok() {}
}

fn fail_holding((results, go): (Sender<u64>, Receiver<()>)) {
    go.recv().expect("main says go");
    let _held = results;
    panic!("the producer fails while holding the host sender");
}

fn fail_with(n: u32) {
    panic!("detached failure {n}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("cbor") => {
            let jobs = host_receiver::<Job>("jobs")
                .expect("the application hands `jobs`")
                .with_codec(Codec::Cbor);
            let results = host_sender::<Done>("results")
                .expect("the application hands `results`")
                .with_codec(Codec::Cbor);
            for job in jobs {
                let mut tags = job.tags;
                tags.sort();
                let mut raw = job.raw;
                raw.reverse();
                let done = Done {
                    name: job.name.to_uppercase(),
                    area: u64::from(job.width) * u64::from(job.height),
                    tags,
                    ratio: f64::from(job.width) / f64::from(job.height),
                    raw,
                };
                results.send(done).expect("the application reads the results");
            }
        }
        Some("flood") => {
            let size: usize = args.get(2).and_then(|a| a.parse().ok()).expect("flood SIZE");
            let sink = host_sender::<Vec<u8>>("sink").expect("the application hands `sink`");
            let mut n = 0u64;
            let refusal = loop {
                match sink.try_send(vec![(n % 251) as u8; size]) {
                    Ok(()) => n += 1,
                    Err(e @ TrySendError::Full(_)) => break e,
                    Err(e) => panic!("send {n}: {e}"),
                }
            };
            println!("flooded {n}, then: {refusal}");
            wait_for_stop();
        }
        Some("pass") => {
            let pass = host_sender::<Receiver<u32>>("pass").expect("the application hands `pass`");
            let (tx, rx) = channel::<u32>(4);
            tx.send(7).unwrap();
            println!("passed channel {}", rx.channel_id());
            pass.send(rx).expect("the other run receives");
            // `tx` lives on: the other run's receives see the 7, then nothing.
            wait_for_stop();
            drop(tx);
        }
        Some("collide") => {
            let pass = host_receiver::<Receiver<u32>>("pass").expect("the application hands `pass`");
            let theirs = pass.recv().expect("the other run passes its receiver");
            let (tx, mine) = channel::<u32>(4);
            tx.send(8).unwrap();
            assert_eq!(
                theirs.channel_id(),
                mine.channel_id(),
                "the two runs' channels were to have equal ids"
            );
            println!("both channels have id {}", mine.channel_id());
            let mut got = Vec::new();
            for _ in 0..2 {
                let mut s = Select::new();
                let t = s.recv(&theirs);
                let m = s.recv(&mine);
                match s.try_wait() {
                    Selected::Received { index, message } => {
                        let v: u32 = message.decode();
                        let want = if index == t {
                            7
                        } else {
                            assert_eq!(index, m);
                            8
                        };
                        assert_eq!(v, want, "operation {index} received another channel's value");
                        got.push(v);
                    }
                    other => panic!("both channels hold a value, and the select says {other:?}"),
                }
            }
            got.sort();
            assert_eq!(got, [7, 8]);
            println!("collide ok");
            wait_for_stop();
        }
        Some("failing-producer") => {
            let results = host_sender::<u64>("results").expect("the application hands `results`");
            let (go_tx, go_rx) = channel::<()>(1);
            let handle = weft_guest::spawn_detached(fail_holding, (results.clone(), go_rx));
            // Nobody can join it now: its failure is for the channel's receiver, or,
            // if none takes it, for the run's failure handler.
            drop(handle);
            drop(results);
            go_tx.send(()).unwrap();
            println!("detached");
            wait_for_stop();
        }
        Some("failures") => {
            let go = host_receiver::<u32>("go").expect("the application hands `go`");
            while let Ok(n) = go.recv() {
                // Dropped: nobody can join it, its failure is the run's handler's.
                drop(weft_guest::spawn_detached(fail_with, n));
            }
            println!("failures done");
        }
        _ => {
            eprintln!("usage: hostchan flood SIZE | pass | collide | failing-producer | failures");
            std::process::exit(2);
        }
    }
}
