//! A guest that imports its embedding application's own interface, `test:app/calc`
//! (the application adds it with `RuntimeBuilder::host_interfaces`):
//! - `sums`: calls it and prints what it answered;
//! - `overflow`: calls it with arguments its host function refuses.

mod app {
    wit_bindgen::generate!({
        inline: "
            package test:app;
            interface calc {
                add: func(a: u32, b: u32) -> u32;
                fetch: func(key: string) -> result<string, string>;
            }
            world app { import calc; }
        ",
    });
}

use app::test::app::calc;

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("sums") => {
            println!("2 + 3 = {}", calc::add(2, 3));
            println!("fetch(answer) = {:?}", calc::fetch("answer"));
            println!("fetch(nothing) = {:?}", calc::fetch("nothing"));
        }
        Some("overflow") => {
            println!("calling add(u32::MAX, 1)");
            println!("unreachable: {}", calc::add(u32::MAX, 1));
        }
        _ => {
            eprintln!("usage: calc sums | overflow");
            std::process::exit(2);
        }
    }
}
