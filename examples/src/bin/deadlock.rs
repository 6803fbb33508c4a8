//! Deliberately deadlocks: two microthreads each wait to receive from the other
//! before sending. weft reports who waits on what instead of hanging.
//!
//! With the argument `classic`, the seed's one-liner instead: a channel nobody else
//! can send to, and a receive on it. With `after MS`, it first sleeps MS
//! milliseconds (time to open `weft run --dashboard`'s page and see it happen).

use weft_guest::{Receiver, Sender, channel};

fn left((rx, tx): (Receiver<u32>, Sender<u32>)) {
    let v = rx.recv().unwrap();
    tx.send(v).unwrap();
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("after") {
        let ms: u64 = std::env::args()
            .nth(2)
            .and_then(|ms| ms.parse().ok())
            .expect("after MS: a number of milliseconds");
        weft_guest::sleep(std::time::Duration::from_millis(ms)).expect("not cancelled");
    }
    if std::env::args().nth(1).as_deref() == Some("classic") {
        let (_tx, rx) = channel::<u32>(0);
        let _ = rx.recv();
        return;
    }
    let (a_tx, a_rx) = channel::<u32>(0);
    let (b_tx, b_rx) = channel::<u32>(0);
    let other = weft_guest::Builder::new()
        .name("left")
        .spawn(left, (a_rx, b_tx))
        .unwrap();
    // main waits for "left", which waits for main.
    let v = b_rx.recv().unwrap();
    a_tx.send(v).unwrap();
    other.join().unwrap();
}
