//! A real browser for the tests of weft's dashboard: a headless Chromium, driven
//! over its DevTools protocol (a WebSocket to the page: evaluate a script, take a
//! screenshot). Chromium is `WEFT_CHROMIUM`, else `chromium`, `chromium-browser`
//! or `google-chrome` on the PATH (`scripts/chromium.sh` installs Debian's); a
//! test that needs one fails without it, saying how to get one.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// Only a guard against a hang: no step waits this long when things work.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// The Chromium to run.
pub fn chromium_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("WEFT_CHROMIUM").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Some(found) = std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
        {
            return found;
        }
    }
    panic!(
        "no Chromium for the dashboard's browser test: install Debian's (apt-get install chromium, \
         or sh scripts/chromium.sh), or set WEFT_CHROMIUM to a Chromium or Chrome binary"
    );
}

/// A headless Chromium showing one page.
pub struct Browser {
    child: Child,
    page: WebSocket<TcpStream>,
    next_id: u64,
    profile: PathBuf,
}

impl Browser {
    /// Open `url` in a new headless Chromium, with a profile of its own under
    /// `dir`.
    pub fn open(url: &str, dir: &Path) -> Browser {
        let profile = dir.join(format!("chromium-profile-{}", std::process::id()));
        // A profile left by an earlier run would hold its port file.
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).expect("a directory for the browser's profile");
        let mut child = Command::new(chromium_binary())
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
                "--window-size=1280,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium_binary().display()));
        // It says where its DevTools listen on stderr; the rest is noise, drained.
        let stderr = BufReader::new(child.stderr.take().expect("piped"));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in stderr.lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("DevTools listening on ws://")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(rest.split('/').next().unwrap_or_default().to_string());
                }
            }
        });
        let Ok(devtools) = rx.recv_timeout(HANG_GUARD) else {
            let _ = child.kill();
            panic!("Chromium never said where its DevTools listen");
        };
        let socket = page_socket(&devtools, url);
        let (page, _) = tungstenite::client(socket.as_str(), connect(&socket))
            .unwrap_or_else(|e| panic!("cannot open the page's DevTools socket {socket}: {e}"));
        page.get_ref()
            .set_read_timeout(Some(HANG_GUARD))
            .expect("a timeout");
        Browser {
            child,
            page,
            next_id: 1,
            profile,
        }
    }

    /// Send DevTools command `method`; its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let command = json!({"id": id, "method": method, "params": params}).to_string();
        self.page
            .send(Message::text(command))
            .expect("send to the browser");
        loop {
            let message = self.page.read().expect("read from the browser");
            let Message::Text(text) = message else { continue };
            let reply: Value = serde_json::from_str(&text).expect("DevTools speaks JSON");
            if reply["id"] == json!(id) {
                if let Some(error) = reply.get("error") {
                    panic!("{method}: {error}");
                }
                return reply["result"].clone();
            }
        }
    }

    /// The value of `expression`, evaluated in the page (a promise is awaited).
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(e) = result.get("exceptionDetails") {
            panic!("{expression}: {e}");
        }
        result["result"]["value"].clone()
    }

    /// Evaluate `expression` until it is true (the page moves on its own);
    /// `what` says what was waited for should it never be.
    pub fn wait_for(&mut self, expression: &str, what: &str) {
        let deadline = Instant::now() + HANG_GUARD;
        while self.eval(expression) != json!(true) {
            assert!(Instant::now() < deadline, "the page never showed {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Save what the page shows now as a PNG at `path`.
    pub fn screenshot(&mut self, path: &Path) {
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        let data = shot["data"].as_str().expect("the screenshot's data");
        use base64::Engine as _;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("DevTools sends base64");
        std::fs::write(path, png).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The DevTools socket of the page showing `url`, from the browser's list of
/// targets at `devtools` (`127.0.0.1:PORT`).
fn page_socket(devtools: &str, url: &str) -> String {
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let list: Value = ureq::get(&format!("http://{devtools}/json/list"))
            .call()
            .and_then(|mut r| r.body_mut().read_to_string())
            .map(|text| serde_json::from_str(&text).expect("DevTools lists its targets in JSON"))
            .unwrap_or(Value::Null);
        let page = list.as_array().into_iter().flatten().find(|t| {
            t["type"] == "page"
                && t["url"]
                    .as_str()
                    .is_some_and(|u| u.starts_with(url.trim_end_matches('/')))
        });
        if let Some(socket) = page.and_then(|p| p["webSocketDebuggerUrl"].as_str()) {
            return socket.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "the browser never listed the page {url}: {list}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A TCP connection to the host and port of WebSocket address `ws`.
fn connect(ws: &str) -> TcpStream {
    let host = ws
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap_or_default();
    TcpStream::connect(host).unwrap_or_else(|e| panic!("cannot reach the browser at {host}: {e}"))
}
