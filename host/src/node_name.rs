//! The local node's name, when nobody gave one: the host's name (what a NATS
//! subject may hold of it) and the process id. A node of a cluster is named so
//! without `--node`; outside a cluster, it is what `this_node` says.

/// The host's name and the process id: `myhost-4242`.
pub(crate) fn local() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "node".to_string());
    let host: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    format!(
        "{}-{}",
        if host.is_empty() { "node" } else { &host },
        std::process::id()
    )
}
