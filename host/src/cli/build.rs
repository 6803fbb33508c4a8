//! `weft build`: a guest program from source in another language, built by that
//! language's tool against the WIT and the SDK of this weft, both embedded in the
//! binary so that it works outside the repository. What each language needs is in
//! its own module (`python`, `js`); this one holds what they share: the WIT, the build
//! directory, and running the tool.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::args::BuildArgs;
use super::report::report;

mod js;
mod python;

/// The WIT package of this weft and the WASI it links (`wit/`), by path under
/// the build directory's `wit/`.
const WIT: &[(&str, &str)] = &[
    ("runtime.wit", include_str!("../../../wit/runtime.wit")),
    ("deps/cli.wit", include_str!("../../../wit/deps/cli.wit")),
    ("deps/clocks.wit", include_str!("../../../wit/deps/clocks.wit")),
    (
        "deps/filesystem.wit",
        include_str!("../../../wit/deps/filesystem.wit"),
    ),
    ("deps/http.wit", include_str!("../../../wit/deps/http.wit")),
    ("deps/io.wit", include_str!("../../../wit/deps/io.wit")),
    ("deps/random.wit", include_str!("../../../wit/deps/random.wit")),
    ("deps/sockets.wit", include_str!("../../../wit/deps/sockets.wit")),
];

/// The world a guest of another language targets.
const WORLD: &str = "guest";

pub(super) fn build(args: BuildArgs) -> Result<i32> {
    let source = &args.file;
    let metadata = std::fs::metadata(source).with_context(|| format!("cannot read {}", source.display()))?;
    if !metadata.is_file() {
        bail!(
            "{} is not a file: give the program's source file",
            source.display()
        );
    }
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| source.with_extension("wasm"));
    if output == *source {
        bail!(
            "the output {} would overwrite the source: give another with -o",
            output.display()
        );
    }
    let extension = source.extension().and_then(|e| e.to_str()).unwrap_or("");
    let dir = tempfile::Builder::new()
        .prefix("weft-build-")
        .tempdir()
        .context("cannot make a temporary directory for the build")?;
    write_files(&dir.path().join("wit"), WIT)?;
    match extension {
        "py" => python::build(source, &output, dir.path())?,
        "js" | "mjs" => js::build(source, &output, dir.path())?,
        _ => bail!(
            "weft build takes a Python program (.py) or a JavaScript one (.js, .mjs), not {}: \
             build a Rust guest with `cargo build --target wasm32-wasip2`",
            source.display()
        ),
    }
    let size = std::fs::metadata(&output)
        .with_context(|| format!("the build wrote no {}", output.display()))?
        .len();
    report(format_args!(
        "weft: built {} ({:.1} MiB)",
        output.display(),
        size as f64 / f64::from(1 << 20)
    ));
    Ok(0)
}

/// Write `files` (path under `dir`, contents) into `dir`.
fn write_files(dir: &Path, files: &[(&str, &str)]) -> Result<()> {
    for (name, contents) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, contents).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// The directory a source file is in (`.` for a bare file name).
fn source_dir(source: &Path) -> PathBuf {
    match source.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A build tool: the program named by the environment variable `env`, else
/// `default` on PATH. `install` says how to get it, for the error when it is
/// missing.
struct Tool {
    program: PathBuf,
    env: &'static str,
    install: &'static str,
}

impl Tool {
    fn find(env: &'static str, default: &str, install: &'static str) -> Tool {
        let program = std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from);
        Tool {
            program,
            env,
            install,
        }
    }

    fn command(&self) -> Command {
        Command::new(&self.program)
    }

    /// Run `cmd`, made by `command`: its output goes to weft's stderr (what the
    /// tool says is what the user needs to read when it fails).
    fn run(&self, cmd: &mut Command, what: &str) -> Result<()> {
        let out = cmd.output().map_err(|e| self.missing(e))?;
        let mut said = String::from_utf8_lossy(&out.stderr).into_owned();
        said.push_str(&String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            bail!("{what} failed ({}):\n{}", out.status, said.trim_end());
        }
        Ok(())
    }

    /// What the tool prints for `--version`, or why it cannot be run.
    fn version(&self) -> Result<String> {
        let out = self
            .command()
            .arg("--version")
            .output()
            .map_err(|e| self.missing(e))?;
        if !out.status.success() {
            bail!(
                "{} --version failed ({}): {}",
                self.program.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn missing(&self, e: std::io::Error) -> anyhow::Error {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow::anyhow!(
                "cannot find {}: {} (or set {} to the tool's path)",
                self.program.display(),
                self.install,
                self.env
            )
        } else {
            anyhow::anyhow!("cannot run {}: {e}", self.program.display())
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every file of `wit/` is embedded: a WIT file added there and not here would
    /// make the guests' builds fail outside the repository.
    #[test]
    fn every_wit_file_is_embedded() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
        let mut found = Vec::new();
        for dir in [root.clone(), root.join("deps")] {
            for entry in std::fs::read_dir(&dir).expect("list wit/") {
                let path = entry.expect("list wit/").path();
                if path.extension().is_some_and(|e| e == "wit") {
                    let name = path
                        .strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/");
                    found.push(name);
                }
            }
        }
        found.sort();
        let mut embedded: Vec<String> = super::WIT.iter().map(|(name, _)| name.to_string()).collect();
        embedded.sort();
        assert_eq!(found, embedded);
    }
}
