//! `weft compile` (a program compiled ahead of time) and `weft cache` (the
//! compilation cache).

use std::io::Write;

use anyhow::{Context, Result, bail};

use weft::Runtime;

use super::args::{CacheAction, CompileArgs};
use super::program::runtime;

pub(super) fn compile(args: CompileArgs) -> Result<i32> {
    let bytes = std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let runtime = runtime(&args.engine, Some(1), Some(&bytes), false, 1, None, false)?;
    let compiled = runtime.precompile(&bytes, &args.file.display().to_string())?;
    std::fs::write(&args.output, compiled)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    Ok(0)
}

pub(super) fn cache(action: CacheAction) -> Result<i32> {
    let runtime = Runtime::builder()
        .workers(1)
        .max_microthreads(1)
        .build()
        .context("cannot set up the runtime")?;
    let Some(dir) = runtime.cache_dir() else {
        bail!("there is no cache directory: set WEFT_CACHE_DIR, XDG_CACHE_HOME or HOME");
    };
    let mut out = std::io::stdout();
    let written = match action {
        CacheAction::Dir => writeln!(out, "{}", dir.display()),
        CacheAction::Clear => {
            let n = runtime.clear_cache()?;
            writeln!(out, "removed {n} compiled programs from {}", dir.display())
        }
    };
    written.context("cannot write to stdout")?;
    Ok(0)
}
