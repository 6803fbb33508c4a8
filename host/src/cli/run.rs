//! `weft run`: one run of a program, its schedule trace, the table of its
//! microthreads on SIGQUIT, its metrics and its dashboard; and `weft node`, the same run without `main`, which
//! serves spawns from a cluster.

use std::io::Write;

use anyhow::{Context, Result, bail};

use super::args::RunArgs;
use super::report::{report, report_status};

/// A writer shared between the run (which writes the schedule trace) and `weft
/// run` (which flushes it at the end and says if that failed).
#[derive(Clone)]
struct SharedFile(std::sync::Arc<std::sync::Mutex<std::io::BufWriter<std::fs::File>>>);

impl SharedFile {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::io::BufWriter<std::fs::File>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Write for SharedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.lock().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.lock().flush()
    }
}

/// `weft run`, or with `serving` `weft node`.
pub(super) fn run(args: RunArgs, serving: bool) -> Result<i32> {
    let deterministic = args.deterministic || args.seed.is_some();
    if serving && deterministic {
        bail!("a deterministic run cannot serve a cluster: weft node takes no --deterministic or --seed");
    }
    if serving && args.cluster.cluster.is_none() {
        bail!("weft node serves spawns from a cluster: give --cluster nats://HOST:PORT");
    }
    if deterministic && args.workers.is_some_and(|w| w != 1) {
        bail!("a deterministic run has one worker: --workers must be 1 (or left out)");
    }
    if args.trace_schedule.is_some() && !deterministic {
        bail!("--trace-schedule is for deterministic runs: add --deterministic or --seed N");
    }
    let workers = if deterministic { Some(1) } else { args.workers };
    let mut options = args.program.options()?.interrupt_on_ctrl_c(true).inherit_stdio();
    for grant in &args.listen {
        options = options.listen(grant.clone());
    }
    for grant in &args.connect {
        options = options.connect(grant.clone());
    }
    if deterministic {
        options = options.deterministic(args.seed.unwrap_or(0));
    }
    let trace = match &args.trace_schedule {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("--trace-schedule: cannot create {}", path.display()))?;
            let shared = SharedFile(std::sync::Arc::new(std::sync::Mutex::new(
                std::io::BufWriter::new(file),
            )));
            options = options.trace_schedule(shared.clone());
            Some((shared, path))
        }
        None => None,
    };
    let cluster_config = args.cluster.config(deterministic)?;
    let (runtime, program) = args.program.load(workers, deterministic, 1, cluster_config)?;
    let dashboard = super::observe::start(&args.observe, &runtime)?;
    if let Some(cluster) = runtime.cluster() {
        options = args.cluster.attach(cluster, options)?;
    }
    // Listening before the program starts: a SIGQUIT as soon as it prints must not
    // find the default action (ending the process) still there.
    let shown = show_microthreads_on_sigquit();
    let mut run = match serving {
        true => program.start_node(&options)?,
        false => program.start(&options)?,
    };
    shown.get_or_init(|| run.view());
    if let Some(dashboard) = &dashboard {
        dashboard.watch(run.view());
    }
    let status = if args.stats {
        // Awaited by reference: the handle keeps the run, whose counters are read
        // once it has ended (a view does not keep it).
        let status = tokio::runtime::Builder::new_current_thread()
            .build()
            .context("--stats: cannot start a runtime to wait on")?
            .block_on(&mut run);
        report(format_args!("weft: {}", run.stats()));
        status
    } else {
        run.wait()
    };
    if let Some(dashboard) = &dashboard {
        dashboard.ended(&status);
    }
    report_status(&status, args.program.timeout);
    if matches!(status, weft::ExitStatus::Failed(_)) && program.is_http_handler() {
        // wstd's handlers, say, have a `main` that only fails.
        report(format_args!(
            "weft: note: {} handles HTTP requests (it exports wasi:http/incoming-handler): serve them with `weft serve {}`",
            program.name(),
            program.name()
        ));
    }
    if let Some((mut trace, path)) = trace
        && let Err(e) = trace.flush()
    {
        report(format_args!(
            "weft: the schedule trace in {} is incomplete: {e}",
            path.display()
        ));
    }
    if let Some(cluster) = runtime.cluster() {
        super::cluster::leave(cluster);
    }
    // The process ends now: tearing the instance pool down would only cost time
    // (dropping it is prompt and correct too, but unmaps every slot).
    std::mem::forget(program);
    std::mem::forget(runtime);
    Ok(status.code())
}

/// On SIGQUIT (Ctrl-\\), print what every live microthread of the run whose view
/// is put in the returned slot is doing to stderr, as Go does for its goroutines,
/// and carry on.
pub(super) fn show_microthreads_on_sigquit() -> std::sync::Arc<std::sync::OnceLock<weft::RunView>> {
    let slot = std::sync::Arc::new(std::sync::OnceLock::new());
    listen_to_sigquit(slot.clone());
    slot
}

/// Listen to SIGQUIT from now on, on a thread of its own, showing `view`'s table.
fn listen_to_sigquit(view: std::sync::Arc<std::sync::OnceLock<weft::RunView>>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        // Without the listener, SIGQUIT keeps its default: the process ends.
        let cannot =
            |e: std::io::Error| report(format_args!("weft: Ctrl-\\ will not show the microthreads: {e}"));
        let rt = match tokio::runtime::Builder::new_current_thread().enable_io().build() {
            Ok(rt) => rt,
            Err(e) => return cannot(e),
        };
        // Listening from now on, before the program runs far.
        let mut quit = match rt.block_on(async { signal(SignalKind::quit()) }) {
            Ok(quit) => quit,
            Err(e) => return cannot(e),
        };
        let listen = move || {
            // A SIGQUIT before the run has started waits for it (the signal is
            // kept); should it not start, the process ends with its error.
            let view = view.wait();
            rt.block_on(async {
                while quit.recv().await.is_some() {
                    let stats = view.stats();
                    report(format_args!(
                        "weft: {} live microthreads (SIGQUIT; the program carries on):\n{}weft: {stats}",
                        stats.live,
                        view.table()
                    ));
                }
            });
        };
        if let Err(e) = std::thread::Builder::new()
            .name("weft-sigquit".into())
            .spawn(listen)
        {
            cannot(e);
        }
    }
    #[cfg(not(unix))]
    let _ = view;
}
