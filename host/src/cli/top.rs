//! `weft top ADDR`: the dashboard's table in the terminal, as `top` shows
//! processes. It reads `http://ADDR/api/snapshot` (a `weft run --dashboard ADDR`)
//! every --interval and redraws; keys sort the table (`s` state, `f` fuel, `a`
//! age, `i` id, `m` messages) and `q` quits. When its output is no terminal, it
//! prints one snapshot and ends (`top -b -n 1`); into a pipe closed early it ends
//! with 141, as SIGPIPE would.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use crossterm::{cursor, execute, queue, style, terminal};
use serde_json::Value;

/// `weft top`'s arguments.
#[derive(clap::Args, Debug)]
pub(super) struct TopArgs {
    /// Where `weft run --dashboard ADDR` serves (127.0.0.1:9465).
    #[arg(value_name = "ADDR")]
    addr: String,

    /// The column the table is sorted by at start.
    #[arg(long, value_enum, default_value_t = SortBy::Id)]
    sort: SortBy,

    /// How often the table is redrawn (e.g. 500ms, 2s).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = humantime::parse_duration)]
    interval: Duration,
}

/// What the table is sorted by.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum SortBy {
    Id,
    State,
    Fuel,
    Age,
    Messages,
}

impl SortBy {
    fn name(self) -> &'static str {
        match self {
            SortBy::Id => "id",
            SortBy::State => "state",
            SortBy::Fuel => "fuel",
            SortBy::Age => "age",
            SortBy::Messages => "messages",
        }
    }
}

pub(super) fn top(args: TopArgs) -> Result<i32> {
    if args.interval < Duration::from_millis(100) {
        bail!("--interval {:?}: at least 100ms", args.interval);
    }
    let url = format!("http://{}/api/snapshot", args.addr.trim_end_matches('/'));
    if !std::io::stdout().is_terminal() {
        let text = screen(&fetch(&url)?, args.sort, usize::MAX, &args.addr);
        let mut out = std::io::stdout().lock();
        return match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Ok(()) => Ok(0),
            // Whoever read it stopped (`| head`): what SIGPIPE would have given.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(141),
            Err(e) => Err(anyhow::Error::from(e).context("cannot write the table")),
        };
    }
    interactive(&url, args)
}

/// The snapshot at `url`.
fn fetch(url: &str) -> Result<Value> {
    let mut response = ureq::get(url)
        .call()
        .with_context(|| format!("cannot read {url}: is `weft run --dashboard` serving there?"))?;
    let text = response
        .body_mut()
        .read_to_string()
        .with_context(|| format!("cannot read {url}"))?;
    serde_json::from_str(&text).with_context(|| format!("{url} answered no weft snapshot"))
}

/// Redraw until `q` (or Ctrl-C), or the run's end.
fn interactive(url: &str, args: TopArgs) -> Result<i32> {
    let mut out = std::io::stdout();
    terminal::enable_raw_mode().context("cannot set the terminal up")?;
    execute!(out, terminal::EnterAlternateScreen, cursor::Hide).context("cannot set the terminal up")?;
    let shown = show(url, &args, &mut out);
    // Restored however the loop ended.
    let restored = execute!(out, cursor::Show, terminal::LeaveAlternateScreen)
        .map_err(anyhow::Error::from)
        .and_then(|()| terminal::disable_raw_mode().map_err(anyhow::Error::from));
    let last = shown?;
    restored.context("cannot restore the terminal")?;
    if let Some(last) = last {
        // What the run ended with stays on the screen.
        out.write_all(last.as_bytes())
            .and_then(|()| out.flush())
            .context("cannot write the table")?;
    }
    Ok(0)
}

/// The loop: the last screen, if the run ended.
fn show(url: &str, args: &TopArgs, out: &mut std::io::Stdout) -> Result<Option<String>> {
    let mut sort = args.sort;
    loop {
        let snapshot = fetch(url)?;
        // A terminal that does not say its size (0 rows) is taken as 24 rows.
        let rows = match terminal::size() {
            Ok((_, h)) if h > 0 => h as usize,
            _ => 24,
        };
        let text = screen(&snapshot, sort, rows.saturating_sub(4), &args.addr);
        queue!(
            out,
            cursor::MoveTo(0, 0),
            terminal::Clear(terminal::ClearType::All)
        )?;
        for line in text.lines() {
            queue!(out, style::Print(line), cursor::MoveToNextLine(1))?;
        }
        out.flush()?;
        if snapshot["status"].is_string() {
            return Ok(Some(text));
        }
        if crossterm::event::poll(args.interval)?
            && let Event::Key(KeyEvent { code, modifiers, .. }) = crossterm::event::read()?
        {
            match code {
                KeyCode::Char('q') | KeyCode::Esc => return Ok(None),
                KeyCode::Char('c') if modifiers.contains(KeyModifiers::CONTROL) => return Ok(None),
                KeyCode::Char('s') => sort = SortBy::State,
                KeyCode::Char('f') => sort = SortBy::Fuel,
                KeyCode::Char('a') => sort = SortBy::Age,
                KeyCode::Char('i') => sort = SortBy::Id,
                KeyCode::Char('m') => sort = SortBy::Messages,
                _ => {}
            }
        }
    }
}

/// The screen for `snapshot`: a header, then at most `rows` microthreads sorted
/// by `sort`, a line each (`\n`-separated).
fn screen(snapshot: &Value, sort: SortBy, rows: usize, addr: &str) -> String {
    let stats = &snapshot["stats"];
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let status = snapshot["status"]
        .as_str()
        .map_or("running".to_string(), |s| format!("ended: {s}"));
    let mut out = format!(
        "weft top {addr}: {status} · live {} · spawned {} · finished {} · failed {} · messages {} · restarts {}\n",
        n(&stats["live"]),
        n(&stats["spawned"]),
        n(&stats["finished"]),
        n(&stats["failed"]),
        n(&stats["messages_sent"]),
        n(&stats["restarts"]),
    );
    out.push_str(&format!(
        "sorted by {} (keys: s state, f fuel, a age, m messages, i id, q quit)\n",
        sort.name()
    ));
    out.push_str(&format!(
        "{:>6} {:<16} {:>6} {:<10} {:<36} {:>9} {:>12} {:>8}\n",
        "ID", "NAME", "PARENT", "STATE", "WAITS ON", "AGE", "FUEL", "SENT"
    ));
    let mut list: Vec<&Value> = snapshot["microthreads"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let num = |m: &Value, k: &str| m[k].as_f64().unwrap_or(0.0);
    list.sort_by(|a, b| {
        let by = match sort {
            SortBy::Id => num(a, "id").total_cmp(&num(b, "id")),
            SortBy::State => a["state"].as_str().cmp(&b["state"].as_str()),
            SortBy::Fuel => num(b, "fuel").total_cmp(&num(a, "fuel")),
            SortBy::Age => num(b, "age").total_cmp(&num(a, "age")),
            SortBy::Messages => num(b, "sent").total_cmp(&num(a, "sent")),
        };
        by.then(num(a, "id").total_cmp(&num(b, "id")))
    });
    for m in list.iter().take(rows) {
        let text = |k: &str| m[k].as_str().unwrap_or("").to_string();
        let parent = m["parent"].as_u64().map(|p| p.to_string()).unwrap_or_default();
        let fuel = m["fuel"].as_u64().map(|f| f.to_string()).unwrap_or_default();
        out.push_str(&format!(
            "{:>6} {:<16} {:>6} {:<10} {:<36} {:>9} {:>12} {:>8}\n",
            n(&m["id"]),
            cut(&text("name"), 16),
            parent,
            cut(&text("state"), 10),
            cut(&text("waits"), 36),
            age(num(m, "age")),
            fuel,
            n(&m["sent"]),
        ));
    }
    let total = n(&snapshot["total"]) as usize;
    if total > rows.min(list.len()) {
        out.push_str(&format!("… {} more\n", total - rows.min(list.len())));
    }
    if let Some(report) = snapshot["report"].as_str() {
        out.push_str(report);
        out.push('\n');
    }
    out
}

fn cut(s: &str, width: usize) -> String {
    match s.chars().count() > width {
        true => s.chars().take(width - 1).chain(['…']).collect(),
        false => s.to_string(),
    }
}

fn age(seconds: f64) -> String {
    match seconds {
        s if s < 1.0 => format!("{:.0}ms", s * 1000.0),
        s if s < 120.0 => format!("{s:.1}s"),
        s => format!("{:.0}min", s / 60.0),
    }
}
