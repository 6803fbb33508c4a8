//! Builds the guest programs (examples and test guests) for `wasm32-wasip2`, so that
//! `cargo test` and `cargo bench` need nothing but cargo and the target.
//!
//! They are built by a nested cargo into `<target>/guest`, a target directory of their
//! own (the outer cargo holds the lock of the main one).

use std::path::{Path, PathBuf};
use std::process::Command;

const PACKAGES: &[&str] = &["weft-examples", "plain-hello", "weft-test-guests"];

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().unwrap().to_path_buf();
    for dir in ["examples", "guest", "wit", "tests/guests", ".cargo", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => root.join(d),
        None => root.join("target"),
    }
    .join("guest");

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(&target_dir);
    for p in PACKAGES {
        cmd.args(["-p", p]);
    }
    clean_env(&mut cmd);
    let status = cmd
        .status()
        .expect("cannot run cargo to build the guest programs");
    if !status.success() {
        if !target_installed() {
            panic!(
                "building the guest programs needs the wasm32-wasip2 target: \
                 run `rustup target add wasm32-wasip2`"
            );
        }
        panic!("building the guest programs failed (see the output above)");
    }
    let out = target_dir.join("wasm32-wasip2").join("release");
    println!("cargo:rustc-env=WEFT_GUEST_DIR={}", out.display());

    // A real third-party command that knows nothing of weft, from crates.io.
    let thirdparty = target_dir.join("thirdparty");
    let rg = thirdparty.join("bin").join("rg.wasm");
    if !rg.exists() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.arg("install").arg(format!("ripgrep@{RIPGREP_VERSION}"));
        cmd.args(["--locked", "--target", "wasm32-wasip2", "--root"])
            .arg(&thirdparty)
            .arg("--target-dir")
            .arg(thirdparty.join("build"));
        clean_env(&mut cmd);
        let status = cmd.status().expect("cannot run cargo install");
        assert!(
            status.success(),
            "building ripgrep {RIPGREP_VERSION} for wasm32-wasip2 failed"
        );
    }
    println!("cargo:rustc-env=WEFT_RIPGREP={}", rg.display());
}

/// The ripgrep the tests run (`cargo install --locked` makes the build reproducible).
const RIPGREP_VERSION: &str = "15.2.0";

/// What the outer cargo sets for build scripts must not leak into a nested build: its
/// flags would replace the guests' own (`.cargo/config.toml`), and clippy's wrapper
/// would lint them as part of the host's build.
fn clean_env(cmd: &mut Command) {
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
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
