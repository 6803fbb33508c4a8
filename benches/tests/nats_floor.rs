//! The raw NATS floor's measurements run against a real nats-server: every request
//! is answered with its payload and every published message is counted and
//! acknowledged (a lost one fails the measurement), whatever the window.

use std::time::Duration;

use weft_benches::nats_floor::{publish_with_ack_window, request_reply_round_trip};
use weft_tests::nats::NatsServer;

#[test]
fn request_reply_round_trips_are_measured() {
    let server = NatsServer::start();
    assert!(request_reply_round_trip(&server, 50) > Duration::ZERO);
    // Twice on one server: each measurement has clients of its own.
    assert!(request_reply_round_trip(&server, 1) > Duration::ZERO);
}

#[test]
fn windowed_publishing_is_measured_for_any_window_and_count() {
    let server = NatsServer::start();
    // A window of one (an acknowledgement per message), odd windows, counts that are
    // not a multiple of the acknowledgement step, and a message of max_payload.
    for (n, window, size) in [
        (10, 1, 8),
        (101, 5, 64),
        (333, 64, 1024),
        (7, 256, 0),
        (20, 4, 1 << 20),
    ] {
        let per_message = publish_with_ack_window(&server, n, window, size);
        assert!(
            per_message > Duration::ZERO,
            "{n} messages, window {window}, {size} bytes"
        );
    }
    // The server cut no one off as a slow consumer.
    assert!(!server.log().contains("Slow Consumer"), "{}", server.log());
}
