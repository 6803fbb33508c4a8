//! Failure paths, chosen by the first argument:
//! - `join-panic`: a named child panics; main joins it and prints the failure.
//! - `join-trap`: a child traps (not a panic); main joins it and prints the failure.
//! - `unjoined-panic`: a child panics and nobody joins it: main must fail.
//! - `main-trap`: main itself traps.
//! - `main-panic`: main panics first thing, before any call of the SDK.
//! - `bad-index`: spawn with a function index that names no function.
//! - `wrong-endpoint`: a message that carries a sender is decoded, in a child each,
//!   as a sender, a receiver, a TCP stream and a TCP listener; main prints each outcome.
//! - `join-twice` is not possible through the SDK (join consumes the handle).

fn boom(_: ()) -> u32 {
    panic!("boom in a child");
}

fn trap(_: ()) -> u32 {
    core::arch::wasm32::unreachable()
}

/// Decode a message that carries a `Sender<u32>` as what `kind` names (a
/// `Select` hands the message over undecoded, so any type can be asked for).
fn decode_as(kind: String) -> String {
    use weft_guest::{Receiver, Select, Selected, Sender, net};
    let (tx, rx) = weft_guest::channel::<Sender<u32>>(1);
    let (carried, _carried_rx) = weft_guest::channel::<u32>(1);
    tx.send(carried).unwrap();
    let mut select = Select::new();
    select.recv(&rx);
    let Selected::Received { message, .. } = select.wait() else {
        panic!("the message was sent: the select must receive it")
    };
    match kind.as_str() {
        "sender" => format!("{:?}", message.decode::<Sender<u32>>()),
        "receiver" => format!("{:?}", message.decode::<Receiver<u32>>()),
        "tcp-stream" => format!("{:?}", message.decode::<net::TcpStream>()),
        "tcp-listener" => format!("{:?}", message.decode::<net::TcpListener>()),
        other => panic!("no such kind {other}"),
    }
}

fn main() {
    let what = std::env::args().nth(1).unwrap_or_default();
    match what.as_str() {
        "join-panic" => {
            let h = weft_guest::Builder::new().name("boomer").spawn(boom, ()).unwrap();
            let id = h.id();
            match h.join() {
                Ok(v) => println!("unexpected success {v}"),
                Err(weft_guest::JoinError::Failed(f)) => {
                    assert_eq!(f.id, id);
                    println!("joined failure: id={} name={:?} kind={:?}", f.id, f.name, f.kind);
                    println!("message: {}", f.message);
                }
                Err(e) => println!("unexpected join error {e}"),
            }
        }
        "join-trap" => match weft_guest::spawn(trap, ()).join() {
            Ok(v) => println!("unexpected success {v}"),
            Err(f) => println!("joined failure: {f}"),
        },
        "unjoined-panic" => {
            let _ = weft_guest::Builder::new().name("lost").spawn(boom, ()).unwrap();
            println!("main returns without joining");
        }
        "main-panic" => panic!("main gives up before calling weft"),
        "main-trap" => {
            println!("main is about to trap");
            core::arch::wasm32::unreachable()
        }
        // SAFETY: not at all: the point is that a forged index fails only the new
        // microthread, never the host.
        "bad-index" => match unsafe { weft_guest::__private::spawn_raw(0xffff_ff00, 0xffff_ff01, vec![]) } {
            Ok(h) => match h.join() {
                Ok(v) => println!("unexpected success {v:?}"),
                Err(f) => println!("joined failure: {f}"),
            },
            Err(e) => println!("spawn refused: {e}"),
        },
        "forged-small" => {
            let (tx, rx) = weft_guest::channel::<Vec<u8>>(1);
            let h = weft_guest::spawn(
                |tx: weft_guest::Sender<Vec<u8>>| weft_guest::__private::send_small(&tx, 200, [1, 2, 3]),
                tx,
            );
            match h.join() {
                Ok(()) => println!("unexpected success"),
                Err(f) => println!("joined failure: {f}"),
            }
            drop(rx);
        }
        "wrong-endpoint" => {
            for kind in ["sender", "receiver", "tcp-stream", "tcp-listener"] {
                match weft_guest::spawn(decode_as, kind.to_string()).join() {
                    Ok(decoded) => println!("{kind}: decoded {decoded}"),
                    Err(f) => println!("{kind}: joined failure: {f}"),
                }
            }
        }
        other => {
            eprintln!("unknown case `{other}`");
            std::process::exit(2);
        }
    }
}
