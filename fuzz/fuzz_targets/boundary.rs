//! The WIT host boundary: see `weft_fuzz::boundary`. The guest is the `fuzz_calls`
//! test guest, built by `fuzz/run.sh` (or named by `WEFT_FUZZ_GUEST`).

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn program() -> &'static weft::Program {
    static PROGRAM: OnceLock<weft::Program> = OnceLock::new();
    PROGRAM.get_or_init(|| {
        let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let guest = std::env::var_os("WEFT_FUZZ_GUEST")
            .map(PathBuf::from)
            .unwrap_or_else(|| here.join("target/guest/wasm32-wasip2/release/fuzz_calls.wasm"));
        let runtime = weft_fuzz::boundary::runtime(Some(here.join("target/cache")));
        runtime.load(&guest).unwrap_or_else(|e| {
            panic!(
                "cannot load the fuzz guest {} (build it with fuzz/run.sh, or name it in WEFT_FUZZ_GUEST): {e}",
                guest.display()
            )
        })
    })
}

fuzz_target!(|data: &[u8]| {
    weft_fuzz::boundary::check(program(), data);
});
