//! The application's CBOR channels (`weft::channel_with(.., Codec::Cbor)`) with a
//! Rust guest that reads and writes CBOR (`Receiver::with_codec(Codec::Cbor)`): the
//! same round trip the Python and JavaScript guests make (`host/tests/python.rs`,
//! `host/tests/js.rs`), so that a Rust guest and the others can share a channel.

mod common;

#[test]
fn a_rust_host_channel_feeds_a_rust_guest_in_cbor() {
    common::cbor_round_trips(&weft_tests::guest("hostchan"), "cbor");
}
