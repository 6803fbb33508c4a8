//! Tells the test helpers where the target directory is. Nothing else: the guest
//! programs are built when a test first asks for one (see `src/lib.rs`), so that
//! building the host (a plain `cargo build` at the root) needs neither the network
//! nor the wasm32-wasip2 target.

use std::path::PathBuf;

fn main() {
    let manifest =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf();
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");
    println!("cargo:rerun-if-changed=build.rs");
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => root.join(d),
        None => root.join("target"),
    };
    println!("cargo:rustc-env=WEFT_WORKSPACE={}", root.display());
    println!("cargo:rustc-env=WEFT_TARGET_DIR={}", target_dir.display());
}
