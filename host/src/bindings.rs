//! Host bindings generated from `wit/` (the `weft:runtime` package).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "microthread",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "weft:runtime/thread.join-handle": crate::microthread::JoinSlot,
        "weft:runtime/channel.sender": crate::channel::SenderHandle,
        "weft:runtime/channel.receiver": crate::channel::ReceiverHandle,
    },
});

pub(crate) use self::weft::runtime::{channel, thread, types};
