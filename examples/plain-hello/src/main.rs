//! An ordinary `wasm32-wasip2` command that knows nothing of weft: it must run under
//! `weft run` as a single microthread.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
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
