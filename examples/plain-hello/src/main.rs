//! An ordinary `wasm32-wasip2` command that knows nothing of weft: it must run under
//! `weft run` as a single microthread. (`plain-hello spin` loops forever without a
//! system call, for the tests of `--timeout`; `plain-hello flood` prints numbered
//! lines forever, for the tests of a closed stdout; `plain-hello open PATH` opens the
//! file at PATH to read and says so, for the tests of file I/O that blocks.)
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("open") {
        match std::fs::File::open(&args[1]) {
            Ok(_) => println!("opened"),
            Err(e) => println!("error: {e}"),
        }
        return;
    }
    if args.first().map(String::as_str) == Some("spin") {
        println!("spinning");
        let mut x = std::hint::black_box(1u64);
        loop {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
    }
    if args.first().map(String::as_str) == Some("flood") {
        for i in 0u64.. {
            println!("plain line {i}");
        }
    }
    println!("hello from a plain wasip2 command");
    if !args.is_empty() {
        println!("args: {}", args.join(" "));
    }
    let keys: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
    println!("env keys: [{}]", keys.join(", "));
    if let Ok(v) = std::env::var("GREETING") {
        println!("GREETING={v}");
    }
}
