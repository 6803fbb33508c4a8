//! `weft test`: one program under many seeds of deterministic mode, in parallel
//! over the cores, until a seed makes it fail.

use std::ffi::OsString;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use weft::{ExitStatus, OutputBuffer};

use super::args::TestArgs;
use super::report::report;

/// A seed under which the program did not exit with 0.
struct Failing {
    seed: u64,
    status: ExitStatus,
    stdout: OutputBuffer,
    stderr: OutputBuffer,
}

pub(super) fn test(args: TestArgs) -> Result<i32> {
    let seeds = args.seeds.clone();
    let count = seeds.end - seeds.start;
    let jobs = match args.jobs {
        Some(0) => bail!("--jobs must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let jobs = jobs.min(usize::try_from(count).unwrap_or(usize::MAX));
    // Every seed reads the same stdin from its start, as its replay reads it.
    let stdin = read_stdin()?;
    let options = args.program.options()?.stdin_bytes(stdin.clone());
    // Each seed has a live-microthread limit of its own, as under `weft run --seed
    // N`: the runtime holds one for every seed running at once, and a run may take
    // only its share, so a seed never fails for what the seeds beside it use.
    let at_once = u32::try_from(jobs).context("--jobs: too many")?;
    let (runtime, program) = args.program.load(Some(1), true, at_once, None)?;
    let per_seed = runtime.limits().max_microthreads / at_once;
    let options = options.max_microthreads(per_seed);
    // What `weft run --seed N` would not give by itself.
    let replay_limit =
        (args.program.engine.max_microthreads.is_none() && program.is_spawnable() && at_once > 1)
            .then_some(per_seed);

    let started = Instant::now();
    let next = AtomicU64::new(seeds.start);
    let stop = AtomicBool::new(false);
    let passed = AtomicU64::new(0);
    let failing: Mutex<Vec<Failing>> = Mutex::new(Vec::new());
    let refused: Mutex<Option<weft::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                while !stop.load(Ordering::Acquire) {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= seeds.end {
                        return;
                    }
                    let (stdout, stderr) = (OutputBuffer::new(), OutputBuffer::new());
                    let options = options
                        .clone()
                        .deterministic(seed)
                        .stdout(stdout.clone())
                        .stderr(stderr.clone());
                    match program.start(&options) {
                        Ok(run) => match run.wait() {
                            ExitStatus::Exited(0) => {
                                passed.fetch_add(1, Ordering::Relaxed);
                            }
                            status => {
                                stop.store(true, Ordering::Release);
                                let failed = Failing {
                                    seed,
                                    status,
                                    stdout,
                                    stderr,
                                };
                                failing
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .push(failed);
                            }
                        },
                        Err(e) => {
                            stop.store(true, Ordering::Release);
                            refused
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .get_or_insert(e);
                        }
                    }
                }
            });
        }
    });
    let elapsed = started.elapsed();
    if let Some(e) = refused.into_inner().unwrap_or_else(PoisonError::into_inner) {
        return Err(anyhow::Error::new(e).context("weft test: a run could not start"));
    }
    let passed = passed.into_inner();
    let mut failing = failing.into_inner().unwrap_or_else(PoisonError::into_inner);
    failing.sort_by_key(|f| f.seed);
    let Some(first) = failing.into_iter().next() else {
        println!(
            "weft test: all {count} seeds passed ({}..{}) in {:.1} s, {:.0} seeds/s",
            seeds.start,
            seeds.end,
            elapsed.as_secs_f64(),
            count as f64 / elapsed.as_secs_f64().max(1e-9)
        );
        std::mem::forget(program);
        std::mem::forget(runtime);
        return Ok(0);
    };
    report(format_args!(
        "weft test: seed {} fails ({passed} other seeds passed): {}",
        first.seed,
        describe(&first.status)
    ));
    for (name, buffer) in [("stdout", &first.stdout), ("stderr", &first.stderr)] {
        let text = buffer.to_string_lossy();
        if !text.is_empty() {
            report(format_args!("--- its {name} ---\n{}", text.trim_end()));
        }
    }
    report(format_args!(
        "replay it with:\n  {}{}",
        replay(first.seed, replay_limit, &args.program.file_and_args[0]),
        if stdin.is_empty() {
            ""
        } else {
            "  (with the same stdin)"
        }
    ));
    std::mem::forget(program);
    std::mem::forget(runtime);
    Ok(match first.status.code() {
        0 => 1,
        code => code,
    })
}

/// The host's stdin, read to its end, for every seed to read from its start; empty
/// when it is a terminal (nobody typing for a hundred runs).
fn read_stdin() -> Result<Vec<u8>> {
    use std::io::{IsTerminal, Read};
    let mut stdin = std::io::stdin();
    let mut bytes = Vec::new();
    if !stdin.is_terminal() {
        stdin
            .read_to_end(&mut bytes)
            .context("weft test: cannot read stdin, which every seed gets")?;
    }
    Ok(bytes)
}

/// How a run ended, in words.
fn describe(status: &ExitStatus) -> String {
    match status {
        ExitStatus::Exited(code) => format!("it exited with {code}"),
        ExitStatus::Failed(failure) => format!("it failed: {failure}"),
        ExitStatus::Deadlocked(report) => format!("it deadlocked:\n{}", report.trim_end()),
        ExitStatus::DeadlineExceeded => "it ran past --timeout".into(),
        other => format!("{other:?}"),
    }
}

/// The command that replays `seed`: this one, with `run --seed N` (and
/// `--max-microthreads M`, the seed's `limit` when given) for `test` and its own
/// options (--seeds, --jobs) left out.
fn replay(seed: u64, limit: Option<u32>, file: &OsString) -> String {
    let mut out = Vec::new();
    let mut args = std::env::args_os();
    out.push(args.next().unwrap_or_else(|| "weft".into()));
    let mut in_options = false;
    let mut skip_value = false;
    for arg in args {
        if skip_value {
            skip_value = false;
            continue;
        }
        if !in_options && arg == "test" {
            out.push("run".into());
            out.push("--seed".into());
            out.push(seed.to_string().into());
            if let Some(limit) = limit {
                out.push("--max-microthreads".into());
                out.push(limit.to_string().into());
            }
            in_options = true;
            continue;
        }
        if in_options {
            if arg == *file {
                in_options = false;
            } else if arg == "--seeds" || arg == "--jobs" {
                skip_value = true;
                continue;
            } else if arg
                .to_str()
                .is_some_and(|a| a.starts_with("--seeds=") || a.starts_with("--jobs="))
            {
                continue;
            }
        }
        out.push(arg);
    }
    out.iter()
        .map(|a| quote(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `arg` as a shell would need it.
fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./=:,+@%".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quoting() {
        assert_eq!(quote("app.wasm"), "app.wasm");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }
}
