//! What the tests of the `weft` binary share: running it, with the tests' own
//! compilation cache, and reading what it printed.
// Each test binary uses its own part of this.
#![allow(dead_code)]

use std::process::{Command, Output};

/// The `weft` binary, with the tests' own compilation cache.
pub fn weft_cmd() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
    cmd.env("WEFT_CACHE_DIR", weft_tests::cache_dir());
    cmd
}

/// `weft ARGS`, run to its end.
pub fn weft(args: &[&str]) -> Output {
    weft_cmd().args(args).output().expect("run weft")
}

/// Bytes a program printed, as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An error of weft's own: exit code `code`, a message that starts with `error: `
/// and is no panic. Returns stderr.
pub fn error_exit(o: &Output, code: i32) -> String {
    let err = text(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout: {} stderr: {err}",
        text(&o.stdout)
    );
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}
