//! What the tests and benchmarks share: the guest programs they run, built from
//! source for `wasm32-wasip2` the first time a test asks for one (the examples
//! `hello`, `spawn-many`, `fairness`, …, the plain WASI command `plain-hello`, the
//! test guests `failures`, `limits`, …), ripgrep built from crates.io, and a
//! compilation cache of their own; and a real `nats-server` for the cluster's tests
//! ([`nats`]).
//!
//! The guests are built by a nested cargo into `<target>/guest`, a target directory of
//! their own, at most once per test process (cargo itself makes it a quick no-op when
//! nothing changed).

pub mod browser;
pub mod nats;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const PACKAGES: &[&str] = &[
    "weft-examples",
    "plain-hello",
    "weft-test-guests",
    "weft-http-guests",
];

/// The ripgrep the tests run (`cargo install --locked` makes the build reproducible).
const RIPGREP_VERSION: &str = "15.2.0";

/// The workspace root. Nothing is baked in at build time that a target directory
/// copied to another checkout would carry along: cargo sets `CARGO_MANIFEST_DIR`
/// for the test or bench process it runs (the package whose tests run, in this
/// workspace); run by hand, this crate's own (as compiled) stands in. The root is
/// the nearest directory above it whose `Cargo.toml` has a `[workspace]` table.
fn workspace() -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let package = std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
        package
            .ancestors()
            .find(|dir| is_workspace_root(dir))
            .unwrap_or_else(|| {
                panic!(
                    "no workspace root (a Cargo.toml with a [workspace] table) above {}",
                    package.display()
                )
            })
            .to_path_buf()
    })
    .clone()
}

fn is_workspace_root(dir: &Path) -> bool {
    match std::fs::read_to_string(dir.join("Cargo.toml")) {
        Ok(manifest) => manifest.lines().any(|l| l.trim() == "[workspace]"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => panic!("cannot read {}: {e}", dir.join("Cargo.toml").display()),
    }
}

/// The target directory: `CARGO_TARGET_DIR` as cargo runs the tests with it (a
/// relative one is taken from the workspace root: cargo takes it from where it was
/// run, which a test cannot see), else `<workspace>/target`.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace().join(dir),
        None => workspace().join("target"),
    }
}

/// The directory holding the built guests (building them first if needed).
///
/// # Panics
/// If they cannot be built: the message says why (the wasm32-wasip2 target
/// missing, say).
pub fn guest_dir() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(build_guests).clone()
}

/// The `.wasm` component of the guest program `name` (e.g. `"hello"`).
///
/// # Panics
/// If no such guest was built.
pub fn guest(name: &str) -> PathBuf {
    let path = guest_dir().join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "no guest program {} (looked for {})",
        name,
        path.display()
    );
    path
}

/// ripgrep, built from crates.io for wasm32-wasip2 the first time it is asked for: a
/// real command that knows nothing of weft.
pub fn ripgrep() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(build_ripgrep).clone()
}

/// A guest program built from Python or JavaScript source (`source`, from the
/// workspace's root, e.g. `"tests/python/sdk.py"`) by `weft build`, with the
/// release `weft` of this workspace (`cargo build --release -p weft` first): what
/// the benchmarks run. See [`built_from_source_by`].
///
/// # Panics
/// If the binary is not built, or the build fails: the message says why.
pub fn built_from_source(source: &str) -> PathBuf {
    let weft = target_dir().join("release").join("weft");
    assert!(
        weft.exists(),
        "{} is not built: run `cargo build --release -p weft` first",
        weft.display()
    );
    built_from_source_by(&weft, source)
}

/// The component the `weft` binary `weft` builds (`weft build`) of `source`, into
/// `<target>/guests-from-source/` (`sdk.py` as `sdk.py.wasm`): once per process,
/// one build at a time (each takes a core for seconds), with the tools
/// `scripts/guest-tools.sh` names.
///
/// # Panics
/// If the build fails: the message says why.
pub fn built_from_source_by(weft: &Path, source: &str) -> PathBuf {
    static BUILT: Built = OnceLock::new();
    once_per_process(&BUILT, source, || {
        let name = Path::new(source)
            .file_name()
            .expect("a file name")
            .to_string_lossy()
            .into_owned();
        let wasm = target_subdir("guests-from-source").join(format!("{name}.wasm"));
        let out = Command::new(weft)
            .arg("build")
            .arg(workspace().join(source))
            .arg("-o")
            .arg(&wasm)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", weft.display()));
        assert!(
            out.status.success(),
            "weft build {source} failed (scripts/test.sh installs componentize-py and componentize-js, \
         and names them in WEFT_COMPONENTIZE_PY and WEFT_COMPONENTIZE_JS: \
         eval \"$(sh scripts/guest-tools.sh)\" does the same):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        wasm
    })
}

/// The component componentize-js's default build makes of the JavaScript
/// module `source` (from the workspace's root) for the `wasi:http/proxy` world:
/// the features it has by default (`fetch`, and the `fetch` event, which handles
/// the requests), as anyone builds a JavaScript handler. Built once per process,
/// with the componentize-js that `WEFT_COMPONENTIZE_JS` names (an npm prefix:
/// `scripts/guest-tools.sh` installs it).
///
/// componentize-js 0.23's engine (StarlingMonkey) exports
/// `wasi:http/incoming-handler@0.2.10`, so the WIT it is built against is WASI's
/// at 0.2.10: `wit/deps` (0.2.12, as the host links it) with that version, made
/// in the target directory (the packages are the same but for `exit-with-code`,
/// which the handler does not use).
///
/// # Panics
/// If componentize-js is not named or not there, or the build fails.
pub fn componentized_js(source: &str) -> PathBuf {
    static BUILT: Built = OnceLock::new();
    once_per_process(&BUILT, source, || {
        let prefix = std::env::var_os("WEFT_COMPONENTIZE_JS").unwrap_or_else(|| {
            panic!(
                "WEFT_COMPONENTIZE_JS names no componentize-js: run the tests with scripts/test.sh, \
             or eval \"$(sh scripts/guest-tools.sh)\" first"
            )
        });
        let module =
            Path::new(&prefix).join("node_modules/@bytecodealliance/componentize-js/src/componentize.js");
        assert!(module.exists(), "no componentize-js at {}", module.display());
        let name = Path::new(source)
            .file_name()
            .expect("a file name")
            .to_string_lossy()
            .into_owned();
        let wasm = target_subdir("guests-from-source").join(format!("{name}.default.wasm"));
        let wit = wasi_http_wit("0.2.10");
        let script = "const [module, source, wit, out] = process.argv.slice(1); \
        const { componentize } = await import(module); \
        const { component } = await componentize({ sourcePath: source, witPath: wit, worldName: 'handler' }); \
        (await import('node:fs')).writeFileSync(out, component);";
        let out = Command::new("node")
            .args(["--input-type=module", "-e", script])
            .arg(url_of(&module))
            .arg(workspace().join(source))
            .arg(&wit)
            .arg(&wasm)
            .output()
            .unwrap_or_else(|e| panic!("cannot run node (apt-get install nodejs): {e}"));
        assert!(
            out.status.success(),
            "componentize-js failed on {source}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        wasm
    })
}

/// A WIT directory whose world `handler` is `wasi:http/proxy` at `version` (of
/// 0.2): `wit/deps` with their version set to it.
fn wasi_http_wit(version: &str) -> PathBuf {
    let dir = target_subdir(&format!("wasi-http-{version}"));
    let deps = dir.join("deps");
    std::fs::create_dir_all(&deps).unwrap_or_else(|e| panic!("cannot create {}: {e}", deps.display()));
    let source = workspace().join("wit").join("deps");
    let entries =
        std::fs::read_dir(&source).unwrap_or_else(|e| panic!("cannot read {}: {e}", source.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_none_or(|e| e != "wit") {
            continue;
        }
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let text = text
            .replace("@0.2.12", &format!("@{version}"))
            .replace("version = 0.2.12", &format!("version = {version}"));
        let out = deps.join(path.file_name().expect("a file name"));
        std::fs::write(&out, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
    }
    let world = format!(
        "package weft:wasi-http-test;\n\nworld handler {{\n  include wasi:http/proxy@{version};\n}}\n"
    );
    std::fs::write(dir.join("world.wit"), world).unwrap_or_else(|e| panic!("cannot write its world: {e}"));
    dir
}

/// A file's `file://` URL, for node's `import()`.
fn url_of(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// What a builder of guests from source has built in this process: the source,
/// the component.
type Built = OnceLock<std::sync::Mutex<Vec<(String, PathBuf)>>>;

/// The component `build` makes of `source`, once per process (`built` keeps
/// them); one build at a time.
fn once_per_process(built: &'static Built, source: &str, build: impl FnOnce() -> PathBuf) -> PathBuf {
    let mut built = built
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some((_, wasm)) = built.iter().find(|(s, _)| s == source) {
        return wasm.clone();
    }
    let wasm = build();
    built.push((source.to_string(), wasm.clone()));
    wasm
}

/// A directory of the tests' own in the target directory (e.g. for the guests
/// they build from Python or JavaScript source), made if missing.
fn target_subdir(name: &str) -> PathBuf {
    let dir = target_dir().join(name);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// A compilation cache for the tests, in the target directory: tests must not fill
/// the user's own cache.
pub fn cache_dir() -> PathBuf {
    target_dir().join("test-cache")
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace());
    clean_env(&mut cmd);
    cmd
}

fn build_guests() -> PathBuf {
    let dir = target_dir().join("guest");
    let mut cmd = cargo();
    cmd.args(["build", "--release", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(&dir);
    for p in PACKAGES {
        cmd.args(["-p", p]);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the guest programs: {e}"));
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !target_installed() {
            panic!(
                "building the guest programs needs the wasm32-wasip2 target: \
                 run `rustup target add wasm32-wasip2`\n{stderr}"
            );
        }
        panic!("building the guest programs failed:\n{stderr}");
    }
    dir.join("wasm32-wasip2").join("release")
}

fn build_ripgrep() -> PathBuf {
    let thirdparty = target_dir().join("guest").join("thirdparty");
    let rg = thirdparty.join("bin").join("rg.wasm");
    if rg.exists() {
        return rg;
    }
    let mut cmd = cargo();
    cmd.arg("install")
        .arg(format!("ripgrep@{RIPGREP_VERSION}"))
        .args(["--locked", "--target", "wasm32-wasip2", "--root"])
        .arg(&thirdparty)
        .arg("--target-dir")
        .arg(thirdparty.join("build"));
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo install: {e}"));
    assert!(
        out.status.success() && rg.exists(),
        "building ripgrep {RIPGREP_VERSION} for wasm32-wasip2 failed (it needs crates.io):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    rg
}

/// What the outer cargo sets for the tests must not leak into a nested build: its
/// flags would replace the guests' own (`.cargo/config.toml`), and a wrapper would
/// lint or instrument them.
fn clean_env(cmd: &mut Command) {
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
    ] {
        cmd.env_remove(var);
    }
}

fn target_installed() -> bool {
    let sysroot = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .args(["--print", "sysroot"])
        .output();
    match sysroot {
        Ok(o) => {
            let root = String::from_utf8_lossy(&o.stdout).trim().to_string();
            Path::new(&root).join("lib/rustlib/wasm32-wasip2").exists()
        }
        Err(_) => false,
    }
}

/// The threads of this process named `name` (Linux keeps the first 15 bytes of a
/// thread's name, so a longer `name` is compared by those).
#[cfg(target_os = "linux")]
pub fn threads_named(name: &str) -> usize {
    let name = &name.as_bytes()[..name.len().min(15)];
    std::fs::read_dir("/proc/self/task")
        .expect("list /proc/self/task")
        .filter(|task| {
            let comm = task.as_ref().map(|t| std::fs::read(t.path().join("comm")));
            // A thread that ended while being listed has no name to read.
            matches!(comm, Ok(Ok(c)) if c.strip_suffix(b"\n").unwrap_or(&c) == name)
        })
        .count()
}
