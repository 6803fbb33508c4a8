//! How a microthread starts: the WIT `entry` export, which the host calls in a fresh
//! instance with a *trampoline* (the table index of a [`Trampoline`], one per pair of
//! argument and result types), the spawned function's table index and its
//! serialized argument; and the panic hook, installed before anything else runs,
//! that routes a panic's message to the host.

use std::sync::Once;

use serde::{Serialize, de::DeserializeOwned};

use crate::bindings::channel::Message;
use crate::bindings::exports::weft::runtime::entry::Guest;
use crate::bindings::thread as wit;
use crate::message::{decode, encode};

/// What the entry export calls: deserializes the argument, calls the function at the
/// given table index, serializes its result.
pub(crate) type Trampoline = fn(usize, Message) -> Message;

/// The trampoline for functions `fn(T) -> R`: `trampoline::<T, R> as Trampoline` is
/// what a spawn passes beside the function.
pub(crate) fn trampoline<T: DeserializeOwned, R: Serialize>(function: usize, argument: Message) -> Message {
    // SAFETY: `function` is the table index of an `fn(T) -> R` taken in `Builder::spawn`
    // together with this very instantiation of the trampoline.
    let function: fn(T) -> R = unsafe { core::mem::transmute(function) };
    let argument: T =
        decode(argument).unwrap_or_else(|e| panic!("weft: cannot deserialize the spawn argument: {e}"));
    let result = function(argument);
    encode(&result).unwrap_or_else(|e| panic!("weft: cannot serialize the microthread's result: {e}"))
}

struct Entry;

impl Guest for Entry {
    fn run(trampoline: u32, function: u32, argument: Message) -> Message {
        install_panic_hook();
        // SAFETY: `trampoline` is the table index of a `Trampoline` taken in `spawn`,
        // in an instance of this same component, whose table is identical. A forged
        // index that is out of bounds or of another signature traps in
        // `call_indirect`, which fails this microthread only.
        let trampoline: Trampoline = unsafe { core::mem::transmute(trampoline as usize) };
        trampoline(function as usize, argument)
    }
}

crate::bindings::export!(Entry with_types_in crate::bindings);

/// Route panic messages to the host, so that a panicking microthread's failure says
/// why it panicked. A panic aborts the microthread (`panic = abort` on wasm).
pub(crate) fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            // On one line: `panicked at src/main.rs:3:5: the message`.
            wit::set_panic_message(&info.to_string().replace('\n', " "));
        }));
    });
}

/// The hook is installed before `main` runs, as a constructor of the instance (the
/// linker calls what `.init_array` lists before the command's `main`, and before
/// each export a spawned microthread starts in): a panic in `main` before any call
/// of this SDK is reported as a panic too, not as the trap that ends it.
#[cfg(target_family = "wasm")]
#[used]
#[unsafe(link_section = ".init_array")]
static INSTALL_PANIC_HOOK: extern "C" fn() = {
    extern "C" fn install() {
        install_panic_hook();
    }
    install
};
