//! A JavaScript guest: the program's module, the `weft` module (`sdk/js/weft.js`)
//! and the build script (`sdk/js/build.mjs`), run by node: it bundles the program
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
    /// Every file of the SDK but its README is embedded.
    #[test]
    fn every_sdk_file_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/js");
        let mut found: Vec<String> = std::fs::read_dir(&dir)
            .expect("list sdk/js")
            .map(|e| e.expect("list sdk/js").file_name().to_string_lossy().into_owned())
            .filter(|name| name != "README.md")
            .collect();
        found.sort();
        let embedded: Vec<String> = super::SDK.iter().map(|(name, _)| name.to_string()).collect();
        assert_eq!(found, embedded);
    }
}
