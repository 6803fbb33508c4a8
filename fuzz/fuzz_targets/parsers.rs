//! The grant and command-line value parsers: see `weft_fuzz::parsers`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    weft_fuzz::parsers::check(data);
});
