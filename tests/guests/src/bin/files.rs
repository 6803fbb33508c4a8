//! Plain WASI file system and stdio use, chosen by the first argument:
//! - `write PATH TEXT`: write TEXT to PATH; prints "wrote" or "error: …".
//! - `read PATH`: print the file, or "error: …".
//! - `upper`: copy stdin to stdout in upper case.

use std::io::Read;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("write") => match std::fs::write(&args[1], &args[2]) {
            Ok(()) => println!("wrote"),
            Err(e) => println!("error: {e}"),
        },
        Some("read") => match std::fs::read_to_string(&args[1]) {
            Ok(text) => print!("{text}"),
            Err(e) => println!("error: {e}"),
        },
        Some("upper") => {
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input).expect("stdin");
            print!("{}", input.to_uppercase());
        }
        _ => {
            eprintln!("usage: files write PATH TEXT | read PATH | upper");
            std::process::exit(2);
        }
    }
}
