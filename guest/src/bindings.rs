//! The bindings generated from `wit/` and the `entry` export through which a spawned
//! microthread starts.

wit_bindgen::generate!({
    path: "../wit",
    world: "microthread",
    generate_all,
});

pub(crate) use weft::runtime::{channel, net, thread, types};

struct Entry;

impl exports::weft::runtime::entry::Guest for Entry {
    fn run(trampoline: u32, function: u32, argument: channel::Message) -> channel::Message {
        crate::thread::install_panic_hook();
        // SAFETY: `trampoline` is the table index of a `Trampoline` taken in `spawn`,
        // in an instance of this same component, whose table is identical. A forged
        // index that is out of bounds or of another signature traps in
        // `call_indirect`, which fails this microthread only.
        let trampoline: crate::thread::Trampoline = unsafe { core::mem::transmute(trampoline as usize) };
        trampoline(function as usize, argument)
    }
}

export!(Entry);
