//! `weft serve`: a `wasi:http/proxy` component served over HTTP, each request in
//! a microthread of its own, until Ctrl-C or SIGTERM (after the requests in
//! flight have had --grace to finish).

use anyhow::{Context, Result};

use super::args::ServeArgs;
use super::report::report;

/// How the server was asked to stop.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Signal {
    Interrupt,
    Terminate,
}

/// `weft serve`.
pub(super) fn serve(args: ServeArgs) -> Result<i32> {
    let mut options = args.program.options()?.inherit_stdio();
    for grant in &args.connect {
        options = options.connect(grant.clone());
    }
    let (runtime, program) = args.program.load_to_serve(args.workers)?;
    let dashboard = super::observe::start(&args.observe, &runtime)?;
    let mut serve = weft::ServeOptions::new().listen(args.listen).run_options(options);
    if let Some(timeout) = args.request_timeout {
        serve = serve.request_timeout(timeout);
    }
    if let Some(n) = args.max_requests {
        serve = serve.max_requests(n);
    }
    if let Some(grace) = args.program.grace {
        serve = serve.grace(grace);
    }
    // Listening before the server starts: a SIGQUIT then must not end the process.
    let shown = super::run::show_microthreads_on_sigquit();
    let signals = listen_to_stop_signals()?;
    let server = program.serve(&serve)?;
    shown.get_or_init(|| server.view());
    if let Some(dashboard) = &dashboard {
        dashboard.watch(server.view());
    }
    report(format_args!(
        "weft: serving {} on http://{}/",
        program.name(),
        server.local_addr()
    ));
    let stopper = server.stopper();
    let asked = std::sync::Arc::new(std::sync::OnceLock::new());
    {
        let asked = asked.clone();
        std::thread::Builder::new()
            .name("weft-signals".into())
            .spawn(move || {
                if let Some(signal) = signals() {
                    let _first = asked.set(signal);
                    stopper.stop();
                }
            })
            .context("cannot start the thread that waits for Ctrl-C and SIGTERM")?;
    }
    let weft::Stopped { status, stats, .. } = server.wait();
    let status = match asked.get() {
        Some(Signal::Interrupt) => weft::ExitStatus::Interrupted,
        Some(Signal::Terminate) => weft::ExitStatus::Terminated,
        // Its run ended: --timeout, or a spent --fuel-budget.
        None => status,
    };
    if args.stats {
        report(format_args!("weft: {stats}"));
    }
    if let Some(dashboard) = &dashboard {
        dashboard.ended(&status);
    }
    super::report::report_status(&status, args.program.timeout);
    std::mem::forget(program);
    std::mem::forget(runtime);
    Ok(status.code())
}

/// Listen to SIGINT and SIGTERM from now on; the returned function waits for
/// the first (`None`: it cannot any more).
fn listen_to_stop_signals() -> Result<impl FnOnce() -> Option<Signal> + Send> {
    use tokio::signal::unix::{SignalKind, signal};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("cannot start a runtime to wait for Ctrl-C and SIGTERM on")?;
    let (mut interrupt, mut terminate) = rt
        .block_on(async {
            Ok::<_, std::io::Error>((signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?))
        })
        .context("cannot listen to Ctrl-C and SIGTERM")?;
    Ok(move || {
        rt.block_on(async {
            tokio::select! {
                got = interrupt.recv() => got.map(|()| Signal::Interrupt),
                got = terminate.recv() => got.map(|()| Signal::Terminate),
            }
        })
    })
}
