//! The `weft` binary: `weft run app.wasm [-- ARGS…]`.

mod cli;

use std::io::IsTerminal;

fn main() {
    tracing_subscriber::fmt()
        // Errors only, unless WEFT_LOG says otherwise; the NATS client's own are
        // weft's to say (as errors that tell what to do), not its.
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEFT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error,async_nats=off")),
        )
        .with_writer(std::io::stderr)
        // Colours for a terminal only, not for a pipe or a file.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let code = match cli::Cli::parse_args().run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", cli::message(&e));
            cli::exit_code(&e)
        }
    };
    std::process::exit(code);
}
