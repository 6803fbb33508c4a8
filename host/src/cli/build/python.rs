//! A Python guest: the program's file, the `weft` package (`sdk/python/weft`) and
//! a module that wraps the program (`weft_program`: it imports the program, whose
//! top level registers the entries, and exports what starts it), built by
//! componentize-py, which bundles CPython and runs the imports ahead of time.

use std::path::Path;

use anyhow::{Result, bail};

use super::{Tool, WORLD, source_dir, write_files};

/// The componentize-py this SDK is written against (the names of the bindings
/// it generates).
const VERSION: &str = "0.25";

/// The Python SDK, by path under the build directory's `sdk/weft/`.
pub(super) const SDK: &[(&str, &str)] = &[
    (
        "__init__.py",
        include_str!("../../../../sdk/python/weft/__init__.py"),
    ),
    (
        "_channel.py",
        include_str!("../../../../sdk/python/weft/_channel.py"),
    ),
    (
        "_cluster.py",
        include_str!("../../../../sdk/python/weft/_cluster.py"),
    ),
    ("_entry.py", include_str!("../../../../sdk/python/weft/_entry.py")),
    (
        "_errors.py",
        include_str!("../../../../sdk/python/weft/_errors.py"),
    ),
    (
        "_message.py",
        include_str!("../../../../sdk/python/weft/_message.py"),
    ),
    (
        "_monitor.py",
        include_str!("../../../../sdk/python/weft/_monitor.py"),
    ),
    (
        "_patterns.py",
        include_str!("../../../../sdk/python/weft/_patterns.py"),
    ),
    (
        "_program.py",
        include_str!("../../../../sdk/python/weft/_program.py"),
    ),
    (
        "_registry.py",
        include_str!("../../../../sdk/python/weft/_registry.py"),
    ),
    (
        "_select.py",
        include_str!("../../../../sdk/python/weft/_select.py"),
    ),
    (
        "_thread.py",
        include_str!("../../../../sdk/python/weft/_thread.py"),
    ),
    ("_time.py", include_str!("../../../../sdk/python/weft/_time.py")),
    ("net.py", include_str!("../../../../sdk/python/weft/net.py")),
    (
        "supervisor.py",
        include_str!("../../../../sdk/python/weft/supervisor.py"),
    ),
];

/// The module componentize-py builds: the program's, wrapped.
const WRAPPER: &str = "weft_program";

pub(super) fn build(source: &Path, output: &Path, dir: &Path) -> Result<()> {
    let module = module_name(source)?;
    let tool = Tool::find(
        "WEFT_COMPONENTIZE_PY",
        "componentize-py",
        "building a Python guest needs componentize-py 0.25: pip install componentize-py==0.25.1",
    );
    let version = tool.version()?;
    if !version
        .strip_prefix("componentize-py ")
        .is_some_and(|v| v.starts_with(&format!("{VERSION}.")))
    {
        bail!(
            "{} is {version}; this weft's Python SDK needs componentize-py {VERSION}: \
             pip install componentize-py==0.25.1 (or set WEFT_COMPONENTIZE_PY to that one)",
            tool.program.display()
        );
    }
    let sdk = dir.join("sdk");
    write_files(&sdk.join("weft"), SDK)?;
    let wrapper = dir.join("program");
    let code = format!("from weft._program import load as _load\n\nRun, Entry = _load({module:?})\n");
    write_files(&wrapper, &[(&format!("{WRAPPER}.py"), &code)])?;
    let mut cmd = tool.command();
    cmd.arg("-d")
        .arg(dir.join("wit"))
        .args(["-w", WORLD, "componentize", "-p"])
        .arg(&sdk)
        .arg("-p")
        .arg(source_dir(source))
        .arg("-p")
        .arg(&wrapper)
        .arg(WRAPPER)
        .arg("-o")
        .arg(output);
    tool.run(
        &mut cmd,
        &format!("building {} with componentize-py", source.display()),
    )
}

/// The program's module name: its file's stem, which must be a Python identifier
/// that does not hide the SDK's.
fn module_name(source: &Path) -> Result<String> {
    let stem = source.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let identifier = stem.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && stem.chars().all(|c| c.is_alphanumeric() || c == '_');
    if !identifier {
        bail!(
            "{} cannot be imported as a Python module: name the file as an identifier \
             (letters, digits and _, not starting with a digit), e.g. my_app.py",
            source.display()
        );
    }
    if stem == "weft" || stem == WRAPPER {
        bail!(
            "{} would hide weft's own module {stem}: name the program's file otherwise",
            source.display()
        );
    }
    Ok(stem.to_string())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every file of the SDK is embedded.
    #[test]
    fn every_sdk_file_is_embedded() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/python/weft");
        let mut found: Vec<String> = std::fs::read_dir(&dir)
            .expect("list sdk/python/weft")
            .map(|e| {
                e.expect("list sdk/python/weft")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|name| name.ends_with(".py"))
            .collect();
        found.sort();
        let embedded: Vec<String> = super::SDK.iter().map(|(name, _)| name.to_string()).collect();
        assert_eq!(found, embedded);
    }

    #[test]
    fn module_names() {
        assert_eq!(super::module_name(Path::new("dir/app.py")).unwrap(), "app");
        assert_eq!(
            super::module_name(Path::new("lost_update.py")).unwrap(),
            "lost_update"
        );
        for bad in ["echo-server.py", "1st.py", "weft.py", "weft_program.py", ".py"] {
            assert!(super::module_name(Path::new(bad)).is_err(), "{bad}");
        }
    }
}
