//! The application's channels against a model: see `weft_fuzz::channel_model`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    weft_fuzz::channel_model::check(data);
});
