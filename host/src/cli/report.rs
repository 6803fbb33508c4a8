//! What `weft` itself says on stderr: a line, an error with its causes, how a run
//! ended.

use std::io::Write;
use std::time::Duration;

use weft::ExitStatus;

/// Write a line to stderr. A closed stderr (`weft run … 2>&1 | head`) is not
/// weft's failure: the line is dropped, and the exit code stays the program's.
pub(super) fn report(line: std::fmt::Arguments<'_>) {
    let _closed = writeln!(std::io::stderr(), "{line}");
}

/// An error and its causes on one line, each said once: a cause whose text the
/// message before it already holds (`cannot read x: No such file…`) is not repeated.
pub fn message(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// The exit code of a command that failed with `error`: 2 for a setup that cannot
/// work (a cluster that cannot be joined, a name no node exports), as for bad
/// flags; 1 otherwise.
pub fn exit_code(error: &anyhow::Error) -> i32 {
    let setup = error.chain().any(|cause| {
        cause.downcast_ref::<weft::cluster::ClusterError>().is_some()
            || matches!(cause.downcast_ref::<weft::Error>(), Some(weft::Error::Cluster(_)))
    });
    if setup { 2 } else { 1 }
}

/// Say how a run ended, on stderr, when it did not end well.
pub(super) fn report_status(status: &ExitStatus, timeout: Option<Duration>) {
    match status {
        ExitStatus::Failed(failure) => report(format_args!("error: {failure}")),
        ExitStatus::Interrupted => report(format_args!("weft: interrupted")),
        ExitStatus::Terminated => report(format_args!("weft: terminated")),
        ExitStatus::DeadlineExceeded => report(format_args!(
            "weft: timed out after {}",
            humantime::format_duration(timeout.unwrap_or_default())
        )),
        ExitStatus::Deadlocked(lines) => {
            report(format_args!(
                "error: deadlock: every microthread is blocked and nothing can wake any of them:"
            ));
            const SHOWN: usize = 40;
            for line in lines.lines().take(SHOWN) {
                report(format_args!("  {line}"));
            }
            let more = lines.lines().count().saturating_sub(SHOWN);
            if more > 0 {
                report(format_args!("  … and {more} more microthreads"));
            }
        }
        _ => {}
    }
}
