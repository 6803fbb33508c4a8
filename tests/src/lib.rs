//! Where the guest programs built by this crate's build script are: the examples
//! (`hello`, `spawn-many`, `fairness`, …), the plain WASI command `plain-hello`, and
//! the test guests (`failures`, `limits`).

use std::path::PathBuf;

/// The directory holding the built guests.
pub fn guest_dir() -> PathBuf {
    PathBuf::from(env!("WEFT_GUEST_DIR"))
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

/// ripgrep, built from crates.io for wasm32-wasip2 by the build script: a real
/// command that knows nothing of weft.
pub fn ripgrep() -> PathBuf {
    PathBuf::from(env!("WEFT_RIPGREP"))
}
