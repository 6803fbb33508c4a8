//! Host bindings generated from `wit/` (the `weft:runtime` package). The resources
//! a guest holds are the host's own types: join handles are run completions,
//! senders and receivers are channel endpoints, listeners and streams the host's
//! sockets.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "microthread",
    // Only a call that may wait (for a channel, a socket, a join, a timer, the
    // scheduler or another node) is `async`: the others are bound synchronously,
    // and pay no boxed future and no async host-call machinery. A new function is
    // `async` until it is listed here.
    imports: {
        "weft:runtime/thread.spawn": trappable,
        "weft:runtime/thread.cancelled": trappable,
        "weft:runtime/thread.own-shutdown": trappable,
        "weft:runtime/thread.atomic-begin": trappable,
        "weft:runtime/thread.current-id": trappable,
        "weft:runtime/thread.current-name": trappable,
        "weft:runtime/thread.monitor": trappable,
        "weft:runtime/thread.give-up": trappable,
        "weft:runtime/thread.count-restart": trappable,
        "weft:runtime/thread.exit": trappable,
        "weft:runtime/thread.set-panic-message": trappable,
        "weft:runtime/thread.[method]join-handle.id": trappable,
        "weft:runtime/thread.[method]join-handle.node": trappable,
        "weft:runtime/thread.[method]join-handle.is-finished": trappable,
        "weft:runtime/thread.[method]join-handle.cancel": trappable,
        "weft:runtime/thread.[method]join-handle.cancel-within": trappable,
        "weft:runtime/thread.[drop]join-handle": trappable,
        "weft:runtime/channel.open": trappable,
        "weft:runtime/channel.host-sender": trappable,
        "weft:runtime/channel.host-receiver": trappable,
        "weft:runtime/channel.timer": trappable,
        "weft:runtime/channel.[method]sender.clone": trappable,
        "weft:runtime/channel.[method]sender.id": trappable,
        "weft:runtime/channel.[method]sender.try-send": trappable,
        "weft:runtime/channel.[drop]sender": trappable,
        "weft:runtime/channel.[method]receiver.clone": trappable,
        "weft:runtime/channel.[method]receiver.id": trappable,
        "weft:runtime/channel.[method]receiver.try-recv": trappable,
        "weft:runtime/channel.[drop]receiver": trappable,
        "weft:runtime/net.[method]tcp-listener.share": trappable,
        "weft:runtime/net.[method]tcp-listener.local-address": trappable,
        "weft:runtime/net.[drop]tcp-listener": trappable,
        "weft:runtime/net.[method]tcp-stream.share": trappable,
        "weft:runtime/net.[method]tcp-stream.local-address": trappable,
        "weft:runtime/net.[method]tcp-stream.peer-address": trappable,
        "weft:runtime/net.[method]tcp-stream.shutdown": trappable,
        "weft:runtime/net.[method]tcp-stream.set-nodelay": trappable,
        "weft:runtime/net.[drop]tcp-stream": trappable,
        "weft:runtime/cluster.node-id": trappable,
        "weft:runtime/cluster.this-node": trappable,
        "weft:runtime/cluster.nodes": trappable,
        default: async | trappable,
    },
    exports: { default: async },
    with: {
        "weft:runtime/thread.join-handle": crate::run::JoinHandle,
        "weft:runtime/channel.sender": crate::channel::SenderHandle,
        "weft:runtime/channel.receiver": crate::channel::ReceiverHandle,
        "weft:runtime/net.tcp-listener": crate::net::tcp::ListenerHandle,
        "weft:runtime/net.tcp-stream": crate::net::tcp::StreamHandle,
    },
});

pub(super) use self::weft::runtime::{channel, cluster, net, registry, thread, types};

/// The version of the `weft:runtime` package this host implements.
pub(super) const WIT_PACKAGE: &str = "weft:runtime@0.6.0";

#[cfg(test)]
mod tests {
    /// `WIT_PACKAGE` is written out by hand: it must say what `wit/runtime.wit`
    /// declares, which the bindings are generated from.
    #[test]
    fn wit_package_matches_the_wit() {
        let wit = include_str!("../../../wit/runtime.wit");
        let declared = wit
            .lines()
            .find_map(|l| l.trim().strip_prefix("package "))
            .and_then(|rest| rest.strip_suffix(';'))
            .expect("wit/runtime.wit declares its package");
        assert_eq!(super::WIT_PACKAGE, declared);
    }
}
