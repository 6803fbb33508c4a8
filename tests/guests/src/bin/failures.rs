//! Failure paths, chosen by the first argument:
//! - `join-panic`: a named child panics; main joins it and prints the failure.
//! - `join-trap`: a child traps (not a panic); main joins it and prints the failure.
//! - `unjoined-panic`: a child panics and nobody joins it: main must fail.
//! - `main-trap`: main itself traps.
//! - `main-panic`: main panics first thing, before any call of the SDK.
//! - `bad-index`: spawn with a function index that names no function.
//! - `join-twice` is not possible through the SDK (join consumes the handle).

fn boom(_: ()) -> u32 {
    panic!("boom in a child");
}

fn trap(_: ()) -> u32 {
    core::arch::wasm32::unreachable()
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
        other => {
            eprintln!("unknown case `{other}`");
            std::process::exit(2);
        }
    }
}
