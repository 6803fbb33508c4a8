//! The `weft` command line: a thin layer over the library, the same API an embedder
//! uses. Its modules, each using only those before it: `args` (the flags, as clap
//! parses them), `report` (what weft says on stderr), `program` (the runtime, the
//! loaded program and the run's options made from the flags), `cluster` (joining
//! a cluster, and the channel ends exported and imported by name), then one module
//! a subcommand: `run` (`weft run` and `weft node`), `serve` (`weft serve`), `explore` (`weft test`), `compile` (`weft compile` and
//! `weft cache`), `build` (`weft build`: a guest from Python or JavaScript source).

use std::ffi::OsString;

use anyhow::Result;
use clap::{Parser, Subcommand};

mod args;
mod build;
mod cluster;
mod compile;
mod explore;
mod observe;
mod program;
mod report;
mod run;
mod serve;
mod top;

use args::{BuildArgs, CacheAction, CompileArgs, RunArgs, ServeArgs, TestArgs};
pub use report::{exit_code, message};

/// Run WebAssembly programs as preemptively scheduled microthreads.
#[derive(Debug, Parser)]
#[command(name = "weft", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a wasm32-wasip2 component: a weft guest, or any plain WASI command.
    ///
    /// The program's `main` runs as microthread 0; the microthreads it spawns are
    /// instances of the same component. The exit code is the guest's: what `main`
    /// returned or passed to `exit`, 134 if `main` failed (trap, panic, or a child's
    /// failure nobody joined, an exhausted fuel budget), 70 on a deadlock, 124 when
    /// --timeout passes, 130 on Ctrl-C, 143 on SIGTERM (after --grace for cleanup),
    /// 141 when its stdout is a pipe nobody reads any more (`| head`), as SIGPIPE.
    /// FILE may also be a precompiled `.cwasm` from
    /// `weft compile`. weft's own options go before FILE; everything after it goes
    /// to the guest, as with `wasmtime run`.
    Run(Box<RunArgs>),
    /// Join a cluster as a node that runs FILE without its `main`: it starts the
    /// microthreads other nodes spawn on it (`spawn_on`), until Ctrl-C or SIGTERM
    /// (130 or 143, after --grace for their cleanup).
    ///
    /// Takes `weft run`'s options; --cluster is required. Every node of a spawn
    /// must run the same FILE (compared by content hash).
    Node(Box<RunArgs>),
    /// Serve HTTP with a `wasi:http/proxy` component (built with wstd, the wasi
    /// crate, componentize-js, componentize-py's http world…): each request is
    /// handled by a fresh instance in a microthread of its own, preempted by fuel,
    /// so a handler that spins does not hold the others up.
    ///
    /// A handler that fails answers 500 (said once on stderr); one that runs past
    /// --request-timeout is stopped (504); past --max-requests in flight, 503.
    /// --max-memory and the fuel budgets hold for each request. Outgoing requests
    /// need --connect grants. Ctrl-C or SIGTERM stop accepting, give the
    /// requests in flight --grace [default: 10s] to finish, then stop (130 or
    /// 143); Ctrl-\ shows the requests in flight.
    Serve(Box<ServeArgs>),
    /// Run a program deterministically under many seeds, in parallel over the
    /// cores, to find a schedule under which it fails.
    ///
    /// Each seed is one `weft run --seed N` of FILE with ARGS: exit 0 passes;
    /// anything else (a non-zero exit, a failure, a deadlock, --timeout) fails. At
    /// the first failure no new seed starts; weft prints the lowest failing seed,
    /// its output and the command that replays it, and exits with its exit code.
    /// All pass: exit 0, with the count.
    Test(TestArgs),
    /// Compile a component ahead of time into a `.cwasm` that `weft run` loads
    /// without compiling. Use the same engine flags as for `run`.
    Compile(CompileArgs),
    /// Build a guest program from source into a component that `weft run` runs: a
    /// Python file (its `main()` is the entry point) with componentize-py 0.25, or
    /// a JavaScript module (it exports `main`) with componentize-js 0.23 (on node).
    ///
    /// The weft SDK and the WIT that match this weft are built in: `import weft`
    /// works with nothing else installed but the tool (componentize-py on PATH or
    /// named by WEFT_COMPONENTIZE_PY; componentize-js in the npm prefix named by
    /// WEFT_COMPONENTIZE_JS, the program's node_modules, or npm's global root). The
    /// program's directory is on the module path.
    Build(BuildArgs),
    /// Watch a run in the terminal: the table of its microthreads, refreshed, as
    /// `top` shows processes, read from a `weft run --dashboard ADDR`. Keys sort
    /// it (s state, f fuel, a age, m messages, i id); q quits. When the output is
    /// no terminal, one snapshot is printed.
    Top(top::TopArgs),
    /// The compilation cache: `weft cache dir` shows where it is, `weft cache clear`
    /// empties it.
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
}

impl Command {
    /// The subcommand's name on the command line.
    fn name(&self) -> &'static str {
        match self {
            Command::Run(_) => "run",
            Command::Node(_) => "node",
            Command::Serve(_) => "serve",
            Command::Test(_) => "test",
            Command::Compile(_) => "compile",
            Command::Build(_) => "build",
            Command::Top(_) => "top",
            Command::Cache { .. } => "cache",
        }
    }
}

impl Cli {
    /// The command line of this process, parsed; a usage error ends the process
    /// as clap does (the message, then exit code 2).
    pub fn parse_args() -> Cli {
        let args: Vec<OsString> = std::env::args_os().collect();
        let cli = Cli::try_parse_from(&args).unwrap_or_else(|e| e.exit());
        if let Some(flag) = cli.flag_as_file() {
            // FILE takes values that start with `-` (those after it are the
            // guest's), so a mistyped weft flag before it was read as the file. Parse
            // again without that, for clap's own error and its "similar argument" tip.
            let subcommand = cli.command.name();
            let strict = <Cli as clap::CommandFactory>::command().mut_subcommand(subcommand, |c| {
                c.mut_arg("file_and_args", |a| a.allow_hyphen_values(false))
            });
            if let Err(e) = strict.clone().try_get_matches_from(&args) {
                e.exit();
            }
            strict
                .clone()
                .error(
                    clap::error::ErrorKind::UnknownArgument,
                    format!("unexpected argument '{flag}' where FILE was expected"),
                )
                .exit();
        }
        cli
    }

    /// The program's "file", when it is a flag.
    fn flag_as_file(&self) -> Option<String> {
        let program = match &self.command {
            Command::Run(args) | Command::Node(args) => &args.program,
            Command::Test(args) => &args.program,
            Command::Serve(args) => &args.program,
            _ => return None,
        };
        let file = program.file_and_args.first()?.to_string_lossy();
        (file.starts_with('-') && file.len() > 1).then(|| file.into_owned())
    }

    /// Run the command; returns the process exit code.
    pub fn run(self) -> Result<i32> {
        match self.command {
            Command::Run(args) => run::run(*args, false),
            Command::Node(args) => run::run(*args, true),
            Command::Serve(args) => serve::serve(*args),
            Command::Test(args) => explore::test(args),
            Command::Compile(args) => compile::compile(args),
            Command::Build(args) => build::build(args),
            Command::Top(args) => top::top(args),
            Command::Cache { action } => compile::cache(action),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use weft::cli_values::{parse_duration, parse_size};

    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999999GiB").is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1").is_err());
    }

    #[test]
    fn guest_arguments_follow_the_file() {
        let parse = |args: &[&str]| -> Vec<String> {
            let cli = Cli::try_parse_from(args).unwrap();
            let Command::Run(run) = cli.command else { panic!() };
            run.program
                .guest_args()
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(parse(&["weft", "run", "rg.wasm", "needle", "-"]), ["needle", "-"]);
        assert_eq!(
            parse(&["weft", "run", "--workers", "1", "a.wasm", "--workers", "2"]),
            ["--workers", "2"]
        );
        assert_eq!(
            parse(&["weft", "run", "a.wasm", "-x", "--", "y"]),
            ["-x", "--", "y"]
        );
        assert_eq!(parse(&["weft", "run", "a.wasm", "--", "-x"]), ["-x"]);
        assert_eq!(parse(&["weft", "run", "a.wasm"]), Vec::<String>::new());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
