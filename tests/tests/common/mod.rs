//! What the integration tests share: running a guest and collecting what it printed.

use weft::{ExitStatus, OutputBuffer, RunOptions, Runtime};
use weft_tests::guest;

/// How a guest run ended and what it printed.
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Run the guest program `name` with `args` on `runtime`, collecting its output.
pub fn run_on(runtime: &Runtime, name: &str, args: &[&str]) -> Ran {
    let program = runtime.load(guest(name)).expect("load");
    let (out, err) = (OutputBuffer::new(), OutputBuffer::new());
    let options = RunOptions::new()
        .program_name(name)
        .args(args.iter().copied())
        .stdout(out.clone())
        .stderr(err.clone());
    let status = program.run(&options).expect("run");
    Ran {
        status,
        stdout: out.to_string_lossy(),
        stderr: err.to_string_lossy(),
    }
}
