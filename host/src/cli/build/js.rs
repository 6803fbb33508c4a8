//! A JavaScript guest: the program's module, the `weft` module (`sdk/js/weft.js`,
//! which gathers the SDK's modules in `sdk/js/weft/`) and the build script
//! (`sdk/js/build.mjs`), run by node: it bundles the program
//! with what it imports and the SDK, and makes a component of it with
//! componentize-js, which it finds itself (`WEFT_COMPONENTIZE_JS`, the program's
//! `node_modules`, or npm's global root).

use std::path::Path;

use anyhow::Result;

use super::{Tool, write_files};

/// The JavaScript SDK and its build script, by path under the build directory's
/// `js/`.
pub(super) const SDK: &[(&str, &str)] = &[
    ("build.mjs", include_str!("../../../../sdk/js/build.mjs")),
    ("weft.js", include_str!("../../../../sdk/js/weft.js")),
    (
        "weft/bindings.js",
        include_str!("../../../../sdk/js/weft/bindings.js"),
    ),
    ("weft/cbor.js", include_str!("../../../../sdk/js/weft/cbor.js")),
    (
        "weft/channel.js",
        include_str!("../../../../sdk/js/weft/channel.js"),
    ),
    (
        "weft/cluster.js",
        include_str!("../../../../sdk/js/weft/cluster.js"),
    ),
    ("weft/entry.js", include_str!("../../../../sdk/js/weft/entry.js")),
    (
        "weft/errors.js",
        include_str!("../../../../sdk/js/weft/errors.js"),
    ),
    (
        "weft/message.js",
        include_str!("../../../../sdk/js/weft/message.js"),
    ),
    (
        "weft/monitor.js",
        include_str!("../../../../sdk/js/weft/monitor.js"),
    ),
    ("weft/net.js", include_str!("../../../../sdk/js/weft/net.js")),
    (
        "weft/patterns.js",
        include_str!("../../../../sdk/js/weft/patterns.js"),
    ),
    (
        "weft/registry.js",
        include_str!("../../../../sdk/js/weft/registry.js"),
    ),
    (
        "weft/select.js",
        include_str!("../../../../sdk/js/weft/select.js"),
    ),
    (
        "weft/supervisor.js",
        include_str!("../../../../sdk/js/weft/supervisor.js"),
    ),
    (
        "weft/thread.js",
        include_str!("../../../../sdk/js/weft/thread.js"),
    ),
    ("weft/time.js", include_str!("../../../../sdk/js/weft/time.js")),
];

pub(super) fn build(source: &Path, output: &Path, dir: &Path) -> Result<()> {
    let node = Tool::find(
        "WEFT_NODE",
        "node",
        "building a JavaScript guest needs Node.js 20.19 or later (and componentize-js 0.23: \
         npm install @bytecodealliance/componentize-js@0.23.0)",
    );
    let version = node.version()?;
    let js = dir.join("js");
    write_files(&js, SDK)?;
    let mut cmd = node.command();
    cmd.arg(js.join("build.mjs"))
        .arg(source)
        .arg(output)
        .arg(dir.join("wit"));
    node.run(
        &mut cmd,
        &format!(
            "building {} with componentize-js (node {version})",
            source.display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The files under `dir`, by their paths below `root` (with `/`).
    fn files_under(root: &Path, dir: &Path, found: &mut Vec<String>) {
        let listing = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("list {}: {e}", dir.display()));
        for entry in listing {
            let path = entry
                .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
                .path();
            if path.is_dir() {
                files_under(root, &path, found);
            } else {
                let relative = path.strip_prefix(root).expect("a file under the root");
                let parts: Vec<String> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                found.push(parts.join("/"));
            }
        }
    }

    /// Every file of the SDK (its modules in `weft/` too) but its README is embedded.
    #[test]
    fn every_sdk_file_is_embedded() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/js");
        let mut found = Vec::new();
        files_under(&dir, &dir, &mut found);
        found.retain(|name| name != "README.md");
        found.sort();
        let embedded: Vec<String> = super::SDK.iter().map(|(name, _)| name.to_string()).collect();
        assert_eq!(found, embedded);
    }
}
