//! Host bindings generated from `wit/` (the `weft:runtime` package). The resources
//! a guest holds are the host's own types: join handles are run completions,
//! senders and receivers are channel endpoints, listeners and streams the host's
//! sockets.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "microthread",
    imports: { default: async | trappable },
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
