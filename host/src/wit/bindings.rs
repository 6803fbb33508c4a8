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

    /// `wit/deps/` is what the host links: the WASI WIT files of the
    /// `wasmtime-wasi` this workspace builds with, byte for byte (found through
    /// `cargo metadata`, in the crate's source as cargo unpacked it).
    #[test]
    fn wit_deps_are_the_linked_wasi() {
        // Only this platform's packages: the others may not have been downloaded.
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let version = std::process::Command::new(rustc)
            .arg("-vV")
            .output()
            .expect("run rustc -vV");
        let version = String::from_utf8(version.stdout).expect("rustc prints UTF-8");
        let host = version
            .lines()
            .find_map(|l| l.strip_prefix("host: "))
            .expect("rustc -vV names the host");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = std::process::Command::new(cargo)
            .args([
                "metadata",
                "--format-version",
                "1",
                "--offline",
                "--filter-platform",
                host,
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run cargo metadata");
        assert!(
            out.status.success(),
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let metadata = String::from_utf8(out.stdout).expect("cargo metadata prints UTF-8");
        // Each package's `"manifest_path":"…/Cargo.toml"`: the directory of `name`'s.
        let source_of = |name: &str| {
            let manifest = metadata
                .split("\"manifest_path\":\"")
                .skip(1)
                .filter_map(|rest| rest.split('"').next())
                .find(|path| {
                    let dir = std::path::Path::new(path).parent().and_then(|d| d.file_name());
                    dir.and_then(|d| d.to_str())
                        .and_then(|d| d.strip_prefix(name))
                        .and_then(|d| d.strip_prefix('-'))
                        .is_some_and(|version| version.starts_with(|c: char| c.is_ascii_digit()))
                })
                .unwrap_or_else(|| panic!("cargo metadata lists {name}"));
            std::path::Path::new(manifest).parent().unwrap().to_path_buf()
        };
        let linked = source_of("wasmtime-wasi").join("src/p2/wit/deps");
        // And wasi:http, from wasmtime-wasi-http.
        let http = source_of("wasmtime-wasi-http").join("wit/deps/http.wit");
        let ours = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit/deps");
        let wit_files = |dir: &std::path::Path| {
            let mut names: Vec<_> = std::fs::read_dir(dir)
                .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
                .map(|entry| entry.expect("list a WIT directory").file_name())
                .filter(|name| name.to_string_lossy().ends_with(".wit"))
                .collect();
            names.sort();
            names
        };
        let mut expected = wit_files(&linked);
        expected.push("http.wit".into());
        expected.sort();
        assert_eq!(
            wit_files(&ours),
            expected,
            "wit/deps/ against {}",
            linked.display()
        );
        assert!(
            std::fs::read(ours.join("http.wit")).expect("read wit/deps/http.wit")
                == std::fs::read(&http).expect("read wasmtime-wasi-http's http.wit"),
            "wit/deps/http.wit differs from {}: copy it",
            http.display()
        );
        for name in wit_files(&linked) {
            let read = |dir: &std::path::Path| std::fs::read(dir.join(&name)).expect("read a WIT file");
            assert!(
                read(&ours) == read(&linked),
                "wit/deps/{} differs from {}: copy the linked WASI's WIT files into wit/deps/",
                name.to_string_lossy(),
                linked.display()
            );
        }
    }
}
