//! Plain WASI file system and stdio use, chosen by the first argument:
//! - `write PATH TEXT`: write TEXT to PATH; prints "wrote" or "error: …".
//! - `read PATH`: print the file, or "error: …".
//! - `upper`: copy stdin to stdout in upper case.
//! - `expect TEXT`: read stdin; exit 0 if it is TEXT, else say what came and exit 1.
//! - `child-read PATH`: read the file in a spawned microthread (grants apply to every
//!   microthread of the program).

use std::io::Read;

fn read(path: String) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| format!("error: {e}"))
}

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
        Some("child-read") => print!("{}", weft_guest::spawn(read, args[1].clone()).join().unwrap()),
        Some("upper") => {
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input).expect("stdin");
            print!("{}", input.to_uppercase());
        }
        Some("expect") => {
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input).expect("stdin");
            if input != args[1] {
                println!("stdin was {input:?}, not {:?}", args[1]);
                std::process::exit(1);
            }
        }
        _ => {
            eprintln!("usage: files write PATH TEXT | read PATH | upper");
            std::process::exit(2);
        }
    }
}
