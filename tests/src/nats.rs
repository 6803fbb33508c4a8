//! A real `nats-server` as a child process, for the cluster's tests and the raw NATS
//! floor of the benchmarks.
//!
//! [`NatsServer::start`] runs the server on a free loopback port that the server
//! picks itself (`listen: 127.0.0.1:-1`, so there is no race for a free port), with a
//! configuration file, a log file and a ports file (`--ports_file_dir`) in a fresh
//! directory of its own. The configuration detects a dead or hung client quickly
//! (`ping_interval: "1s"`, `ping_max: 2`) and cuts a consumer that does not read
//! within `write_deadline: "2s"`; [`NatsServer::log`] is the server's log, where such a
//! cut reads `Slow Consumer Detected`.
//!
//! [`NatsServer::kill`] is a crash (SIGKILL), [`NatsServer::restart`] brings the
//! server back on the same port with the same configuration. Dropping a
//! [`NatsServer`] kills it, reaps it and removes its directory, also when the test
//! panicked (the server's log is then printed to stderr).
//!
//! A missing `nats-server` fails the test: `apt-get install nats-server`, or set
//! `WEFT_NATS_SERVER` to the binary.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The environment variable naming the `nats-server` binary to run.
pub const BINARY_VAR: &str = "WEFT_NATS_SERVER";

/// Where Debian's package installs the server.
const SYSTEM_BINARY: &str = "/usr/sbin/nats-server";

/// How long the server may take to write its ports file (it takes ~10 ms).
const READY_WITHIN: Duration = Duration::from_secs(10);

/// How often [`NatsServer::restart`] tries the port again while it is still taken.
const BIND_ATTEMPTS: u32 = 50;

/// A `nats-server` child process on a loopback port, with its own directory.
///
/// ```no_run
/// let server = weft_tests::nats::NatsServer::start();
/// let url = server.url(); // nats://127.0.0.1:PORT
/// ```
#[derive(Debug)]
pub struct NatsServer {
    binary: PathBuf,
    dir: PathBuf,
    user: Option<(String, String)>,
    extra: String,
    port: u16,
    /// `None` once killed (and reaped).
    child: Option<Child>,
}

/// Options of a [`NatsServer`] before it starts: [`NatsServer::builder`].
#[derive(Clone, Debug, Default)]
pub struct NatsServerBuilder {
    user: Option<(String, String)>,
    extra: String,
}

impl NatsServerBuilder {
    /// Require this user and password of every client (the server's INFO then says
    /// `"auth_required":true`, and a client with other credentials is refused).
    ///
    /// # Panics
    /// If either contains a character that would need quoting in the configuration
    /// (`"`, `\`, a control character).
    pub fn user(mut self, user: &str, password: &str) -> Self {
        for (what, s) in [("user", user), ("password", password)] {
            assert!(
                !s.is_empty() && !s.chars().any(|c| c == '"' || c == '\\' || c.is_control()),
                "NatsServer: the {what} {s:?} must be non-empty, without quotes, backslashes \
                 or control characters"
            );
        }
        self.user = Some((user.into(), password.into()));
        self
    }

    /// Lines appended to the configuration file as they are (e.g. `max_payload: 4096`,
    /// or `accounts { … }` with a `system_account`).
    pub fn config(mut self, lines: &str) -> Self {
        self.extra.push_str(lines);
        self.extra.push('\n');
        self
    }

    /// Start the server and wait until it listens.
    ///
    /// # Panics
    /// If no `nats-server` is found (see [`nats_server_binary`]), or it does not
    /// start: the message holds its output and log.
    pub fn start(self) -> NatsServer {
        let binary = nats_server_binary();
        let dir = fresh_dir();
        let mut server = NatsServer {
            binary,
            dir,
            user: self.user,
            extra: self.extra,
            port: 0,
            child: None,
        };
        match server.spawn(None) {
            Ok(port) => server.port = port,
            Err(e) => panic!("{e}"),
        }
        server
    }
}

impl NatsServer {
    /// Start a server with the default configuration (no authentication).
    ///
    /// # Panics
    /// As [`NatsServerBuilder::start`].
    pub fn start() -> NatsServer {
        Self::builder().start()
    }

    /// Start a server that requires `user` and `password` of every client.
    ///
    /// # Panics
    /// As [`NatsServerBuilder::user`] and [`NatsServerBuilder::start`].
    pub fn with_user(user: &str, password: &str) -> NatsServer {
        Self::builder().user(user, password).start()
    }

    /// Options before starting: a user, lines of configuration.
    pub fn builder() -> NatsServerBuilder {
        NatsServerBuilder::default()
    }

    /// The clients' URL, `nats://127.0.0.1:PORT` (the same after [`restart`](Self::restart)).
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id of the running server (e.g. to SIGSTOP it).
    ///
    /// # Panics
    /// If it was [`kill`](Self::kill)ed and not restarted: its id may already name
    /// another process.
    pub fn pid(&self) -> u32 {
        match &self.child {
            Some(child) => child.id(),
            None => panic!("NatsServer::pid: the server was killed; restart() it first"),
        }
    }

    /// Whether the server process is running (not killed, and not exited by itself).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            None => false,
            Some(child) => match child.try_wait() {
                Ok(None) => true,
                Ok(Some(_)) => false,
                Err(e) => panic!("NatsServer: cannot poll nats-server {}: {e}", child.id()),
            },
        }
    }

    /// The directory holding its configuration, log and ports files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's log so far (of every start of it, in order).
    ///
    /// # Panics
    /// If the log exists but cannot be read.
    pub fn log(&self) -> String {
        read_if_any(&self.dir.join("server.log"))
    }

    /// Crash the server: SIGKILL, then reap it. Its clients see the connection drop;
    /// nothing listens on [`port`](Self::port) afterwards.
    ///
    /// # Panics
    /// If it was already killed, or the signal cannot be sent.
    pub fn kill(&mut self) {
        let mut child = self
            .child
            .take()
            .expect("NatsServer::kill: the server was already killed");
        stop(&mut child).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Start the server again on the same port with the same configuration (killing it
    /// first if it runs), so that clients can reconnect. While the port is still taken
    /// (e.g. just after a kill) the start is tried again, a bounded number of times.
    ///
    /// # Panics
    /// If it cannot listen on its port again, or does not start.
    pub fn restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop(&mut child).unwrap_or_else(|e| panic!("{e}"));
        }
        let mut last = String::new();
        for _ in 0..BIND_ATTEMPTS {
            match self.spawn(Some(self.port)) {
                Ok(_) => return,
                Err(SpawnError::PortTaken(e)) => {
                    last = e;
                    // Polling the port: it is freed by whoever holds it, not by us.
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("{e}"),
            }
        }
        panic!(
            "NatsServer::restart: port {} stayed taken over {BIND_ATTEMPTS} attempts:\n{last}",
            self.port
        );
    }

    /// Write the configuration (with `port`, or `-1` for one the server picks), spawn
    /// the server and wait for its ports file. Returns the port it listens on.
    fn spawn(&mut self, port: Option<u16>) -> Result<u16, SpawnError> {
        let config = self.dir.join("nats.conf");
        std::fs::write(&config, self.config_text(port))
            .map_err(|e| SpawnError::Other(format!("NatsServer: cannot write {}: {e}", config.display())))?;
        let console = self.dir.join("console.log");
        let out = File::create(&console).map_err(|e| {
            SpawnError::Other(format!("NatsServer: cannot create {}: {e}", console.display()))
        })?;
        let err = out
            .try_clone()
            .map_err(|e| SpawnError::Other(format!("NatsServer: cannot share {}: {e}", console.display())))?;
        let mut child = Command::new(&self.binary)
            .arg("-c")
            .arg(&config)
            .arg("--ports_file_dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| {
                SpawnError::Other(format!(
                    "NatsServer: cannot run {}: {e} (apt-get install nats-server, or set \
                     {BINARY_VAR})",
                    self.binary.display()
                ))
            })?;
        match self.wait_ready(&mut child) {
            Ok(found) => {
                if let Some(wanted) = port
                    && found != wanted
                {
                    stop(&mut child).map_err(SpawnError::Other)?;
                    return Err(SpawnError::Other(format!(
                        "NatsServer: asked for port {wanted}, the server listens on {found}"
                    )));
                }
                self.child = Some(child);
                Ok(found)
            }
            Err(e) => {
                // Whatever happened, no process is left behind.
                stop(&mut child).map_err(SpawnError::Other)?;
                Err(e)
            }
        }
    }

    fn config_text(&self, port: Option<u16>) -> String {
        let mut c = String::new();
        let listen = port.map_or_else(|| "-1".to_string(), |p| p.to_string());
        let log = self.dir.join("server.log");
        writeln!(c, "listen: \"127.0.0.1:{listen}\"").unwrap();
        writeln!(c, "ping_interval: \"1s\"").unwrap();
        writeln!(c, "ping_max: 2").unwrap();
        writeln!(c, "write_deadline: \"2s\"").unwrap();
        writeln!(c, "log_file: \"{}\"", config_path(&log)).unwrap();
        if let Some((user, password)) = &self.user {
            writeln!(
                c,
                "authorization {{ user: \"{user}\", password: \"{password}\" }}"
            )
            .unwrap();
        }
        c.push_str(&self.extra);
        c
    }

    /// Poll (every 2 ms, at most [`READY_WITHIN`]) for the ports file of `child`.
    fn wait_ready(&self, child: &mut Child) -> Result<u16, SpawnError> {
        let ports = self.dir.join(ports_file_name(&self.binary, child.id()));
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            // A file being written may be read half-way: only a complete one counts.
            match std::fs::read_to_string(&ports) {
                Ok(text) => {
                    if let Some(port) = port_of_ports_file(&text) {
                        return Ok(port);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(SpawnError::Other(format!(
                        "NatsServer: cannot read {}: {e}",
                        ports.display()
                    )));
                }
            }
            match child.try_wait() {
                Ok(None) => {}
                Ok(Some(status)) => {
                    let report = self.report(&format!("nats-server exited at start ({status})"));
                    return Err(if report.contains("address already in use") {
                        SpawnError::PortTaken(report)
                    } else {
                        SpawnError::Other(report)
                    });
                }
                Err(e) => {
                    return Err(SpawnError::Other(format!(
                        "NatsServer: cannot poll nats-server {}: {e}",
                        child.id()
                    )));
                }
            }
            if Instant::now() > deadline {
                return Err(SpawnError::Other(self.report(&format!(
                    "nats-server wrote no ports file ({}) within {READY_WITHIN:?}",
                    ports.display()
                ))));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// `what`, with the server's console output and log.
    fn report(&self, what: &str) -> String {
        format!(
            "NatsServer: {what} ({})\n--- output:\n{}\n--- log:\n{}",
            self.binary.display(),
            read_if_any(&self.dir.join("console.log")),
            self.log()
        )
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let stopped = self.child.take().map(|mut child| stop(&mut child));
        if std::thread::panicking() {
            eprintln!(
                "NatsServer on port {}: the server's log:\n{}",
                self.port,
                self.log()
            );
        }
        let removed = std::fs::remove_dir_all(&self.dir);
        // No panic while panicking (it would abort): report instead.
        let problems = [
            stopped.and_then(Result::err),
            removed
                .err()
                .map(|e| format!("NatsServer: cannot remove {}: {e}", self.dir.display())),
        ];
        for problem in problems.into_iter().flatten() {
            if std::thread::panicking() {
                eprintln!("{problem}");
            } else {
                panic!("{problem}");
            }
        }
    }
}

enum SpawnError {
    /// The port was still taken: worth another try.
    PortTaken(String),
    Other(String),
}

impl std::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpawnError::PortTaken(e) | SpawnError::Other(e) => f.write_str(e),
        }
    }
}

/// SIGKILL `child` (a no-op if it has exited) and reap it: no zombie is left.
fn stop(child: &mut Child) -> Result<(), String> {
    let pid = child.id();
    child
        .kill()
        .map_err(|e| format!("NatsServer: cannot kill nats-server {pid}: {e}"))?;
    child
        .wait()
        .map_err(|e| format!("NatsServer: cannot reap nats-server {pid}: {e}"))?;
    Ok(())
}

/// The `nats-server` to run: `$WEFT_NATS_SERVER`, else Debian's `/usr/sbin/nats-server`,
/// else `nats-server` on the `PATH`.
///
/// # Panics
/// If there is none ("nats-server is not installed: …"), or `WEFT_NATS_SERVER` names
/// no file: the tests that need a server fail rather than skip.
pub fn nats_server_binary() -> PathBuf {
    locate(
        std::env::var_os(BINARY_VAR).as_deref(),
        Path::new(SYSTEM_BINARY),
        std::env::var_os("PATH").as_deref(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// [`nats_server_binary`] with its inputs given.
fn locate(var: Option<&OsStr>, system: &Path, path: Option<&OsStr>) -> Result<PathBuf, String> {
    if let Some(var) = var.filter(|v| !v.is_empty()) {
        let named = PathBuf::from(var);
        return if named.is_file() {
            Ok(named)
        } else {
            Err(format!(
                "{BINARY_VAR}={} names no file: point it to a nats-server binary, or unset it",
                named.display()
            ))
        };
    }
    if system.is_file() {
        return Ok(system.to_path_buf());
    }
    path.into_iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            "nats-server is not installed: apt-get install nats-server, or set WEFT_NATS_SERVER".to_string()
        })
}

/// The server names its ports file `<executable name>_<pid>.ports`.
fn ports_file_name(binary: &Path, pid: u32) -> String {
    let exe = binary
        .file_name()
        .map_or_else(|| "nats-server".into(), |n| n.to_string_lossy());
    format!("{exe}_{pid}.ports")
}

/// The client port in a ports file, `{"nats":["nats://127.0.0.1:41039"], …}`; `None`
/// unless the file is complete (it may be read while being written).
fn port_of_ports_file(text: &str) -> Option<u16> {
    let text = text.trim();
    if !text.starts_with('{') || !text.ends_with('}') {
        return None;
    }
    let after = &text[text.find("\"nats\"")? + "\"nats\"".len()..];
    let after = after.trim_start().strip_prefix(':')?.trim_start();
    let after = after.strip_prefix('[')?.trim_start().strip_prefix('"')?;
    let url = &after[..after.find('"')?];
    let (_, port) = url.strip_prefix("nats://")?.rsplit_once(':')?;
    port.parse().ok().filter(|&p| p != 0)
}

/// A path as a quoted string of the configuration file holds it.
fn config_path(path: &Path) -> String {
    let s = path.to_str().unwrap_or_else(|| {
        panic!(
            "NatsServer: the path {} is not UTF-8: set TMPDIR to a plain directory",
            path.display()
        )
    });
    assert!(
        !s.contains('"') && !s.contains('\\'),
        "NatsServer: the path {s} holds a quote or backslash: set TMPDIR to a plain directory"
    );
    s.to_string()
}

/// A new, empty directory of this server: `weft-nats-<pid>-<n>-<nanos>` in the
/// system's temporary directory.
fn fresh_dir() -> PathBuf {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir();
    loop {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("weft-nats-{}-{n}-{nanos}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return dir,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("NatsServer: cannot create {}: {e}", dir.display()),
        }
    }
}

/// The file's text, or an empty string if it does not exist (yet).
fn read_if_any(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => panic!("NatsServer: cannot read {}: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ports_file_gives_its_port() {
        assert_eq!(
            port_of_ports_file(r#"{"nats":["nats://127.0.0.1:41039"]}"#),
            Some(41039)
        );
        assert_eq!(
            port_of_ports_file(
                "{\"nats\": [ \"nats://127.0.0.1:4222\", \"nats://[::1]:4222\"], \"monitoring\":[\"http://127.0.0.1:8222\"]}\n"
            ),
            Some(4222)
        );
        // Half written, empty, or not the client port.
        for partial in [
            "",
            r#"{"nats":["nats://127.0.0.1:41"#,
            r#"{"monitoring":["http://127.0.0.1:8222"]}"#,
            r#"{"nats":["nats://127.0.0.1:0"]}"#,
        ] {
            assert_eq!(port_of_ports_file(partial), None, "{partial:?}");
        }
    }

    #[test]
    fn the_binary_is_found_in_order_and_its_absence_is_an_error() {
        let dir = fresh_dir();
        let bin_dir = dir.join("bin");
        std::fs::create_dir(&bin_dir).unwrap();
        let on_path = bin_dir.join("nats-server");
        std::fs::write(&on_path, "").unwrap();
        let system = dir.join("sbin-nats-server");
        let missing = dir.join("missing");
        let path = std::env::join_paths([missing.clone(), bin_dir.clone()]).unwrap();

        // The variable first, then the system's binary, then the PATH.
        assert_eq!(
            locate(Some(on_path.as_os_str()), &system, None),
            Ok(on_path.clone())
        );
        assert_eq!(locate(None, &system, Some(&path)), Ok(on_path.clone()));
        std::fs::write(&system, "").unwrap();
        assert_eq!(locate(None, &system, Some(&path)), Ok(system.clone()));

        // A variable naming nothing is an error, not a fall-back.
        let e = locate(Some(missing.as_os_str()), &system, Some(&path)).unwrap_err();
        assert!(
            e.contains("WEFT_NATS_SERVER=") && e.contains("names no file"),
            "{e}"
        );
        // None anywhere: the message says what to install.
        let e = locate(None, &missing, Some(missing.as_os_str())).unwrap_err();
        assert_eq!(
            e,
            "nats-server is not installed: apt-get install nats-server, or set WEFT_NATS_SERVER"
        );
        let e = locate(None, &missing, None).unwrap_err();
        assert!(e.starts_with("nats-server is not installed"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_ports_file_is_named_after_the_executable() {
        assert_eq!(
            ports_file_name(Path::new("/usr/sbin/nats-server"), 42),
            "nats-server_42.ports"
        );
        assert_eq!(
            ports_file_name(Path::new("/opt/nats/bin/nats-server-2.10"), 7),
            "nats-server-2.10_7.ports"
        );
    }
}
