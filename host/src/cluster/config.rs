//! How a node joins its cluster: the NATS server, the cluster's and the node's
//! names, credentials, and the timings of failure detection.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::ClusterError;

/// Default silence after which a node is declared down.
pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_secs(3);

/// Default name of a cluster.
pub const DEFAULT_CLUSTER_NAME: &str = "default";

/// How long connecting to the NATS server may take before it is an error.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Default time an import waits for its name to be exported somewhere.
pub const DEFAULT_IMPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// How a node joins a cluster ([`RuntimeBuilder::cluster`](crate::RuntimeBuilder::cluster)).
///
/// ```
/// use std::time::Duration;
/// let config = weft::cluster::ClusterConfig::new("nats://127.0.0.1:4222")
///     .cluster_name("shop")
///     .node_name("worker-1")
///     .node_timeout(Duration::from_secs(3));
/// ```
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub(super) url: String,
    pub(super) cluster: String,
    pub(super) node: Option<String>,
    pub(super) node_timeout: Duration,
    pub(super) connect_timeout: Duration,
    pub(super) import_timeout: Duration,
    pub(super) auth: Auth,
    pub(super) root_certificates: Option<PathBuf>,
    /// A user of the deployment's system account, to watch the server's reports.
    pub(super) system: Option<(String, String)>,
}

/// How the node authenticates to the NATS server.
#[derive(Clone, Default)]
pub(super) enum Auth {
    /// As the URL says (`nats://user:password@host:port`), or not at all.
    #[default]
    Url,
    UserPassword(String, String),
    Token(String),
    CredsFile(PathBuf),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets are not shown.
        match self {
            Auth::Url => f.write_str("Url"),
            Auth::UserPassword(user, _) => write!(f, "UserPassword({user:?}, ***)"),
            Auth::Token(_) => f.write_str("Token(***)"),
            Auth::CredsFile(path) => write!(f, "CredsFile({})", path.display()),
        }
    }
}

impl ClusterConfig {
    /// Join the cluster whose NATS server is at `url` (`nats://HOST:PORT`, or
    /// `tls://…`; credentials may be in it: `nats://user:password@HOST:PORT`).
    pub fn new(url: impl Into<String>) -> Self {
        ClusterConfig {
            url: url.into(),
            cluster: DEFAULT_CLUSTER_NAME.to_string(),
            node: None,
            node_timeout: DEFAULT_NODE_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            import_timeout: DEFAULT_IMPORT_TIMEOUT,
            auth: Auth::Url,
            root_certificates: None,
            system: None,
        }
    }

    /// The cluster's name (default `default`): all its traffic is under the
    /// subjects `weft.<name>.`, so clusters of other names share a server unseen.
    pub fn cluster_name(mut self, name: impl Into<String>) -> Self {
        self.cluster = name.into();
        self
    }

    /// This node's name (default: the host's name and the process id). Each start
    /// of a node adds a random incarnation to it, so a restarted node is a new
    /// member and never receives its predecessor's traffic.
    pub fn node_name(mut self, name: impl Into<String>) -> Self {
        self.node = Some(name.into());
        self
    }

    /// How long a node may stay silent before it is declared down (default 3 s):
    /// its remote ends then fail with a failure of kind
    /// [`Disconnected`](crate::FailureKind::Disconnected). Heartbeats go out three
    /// times as often. At least 300 ms.
    pub fn node_timeout(mut self, timeout: Duration) -> Self {
        self.node_timeout = timeout;
        self
    }

    /// How long connecting to the server may take at the start (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long an import waits for its name to be exported by some node (default
    /// 30 s): nodes may start in any order.
    pub fn import_timeout(mut self, timeout: Duration) -> Self {
        self.import_timeout = timeout;
        self
    }

    /// Authenticate with a user and password.
    pub fn user_password(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Auth::UserPassword(user.into(), password.into());
        self
    }

    /// Authenticate with a token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.auth = Auth::Token(token.into());
        self
    }

    /// Authenticate with a NATS credentials file (a JWT and an nkey seed).
    pub fn creds_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.auth = Auth::CredsFile(path.into());
        self
    }

    /// Also watch the server's own reports of clients that disconnect
    /// (`$SYS.ACCOUNT.*.DISCONNECT`), with this user of the deployment's system
    /// account: a node whose connection closes (a crash, a kill) is declared down
    /// as soon as the server says so, not after the node timeout. Without it,
    /// heartbeats decide.
    pub fn system_user(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.system = Some((user.into(), password.into()));
        self
    }

    /// Trust the certificates in this PEM file for a `tls://` server.
    pub fn root_certificates(mut self, path: impl Into<PathBuf>) -> Self {
        self.root_certificates = Some(path.into());
        self
    }

    /// Check the settings: names are subject tokens, timings are sane.
    pub(super) fn check(&self) -> Result<(), ClusterError> {
        check_token("cluster name", &self.cluster)?;
        if let Some(node) = &self.node {
            check_token("node name", node)?;
        }
        if self.node_timeout < Duration::from_millis(300) {
            return Err(ClusterError::Config(format!(
                "the node timeout {:?} is too short: at least 300ms",
                self.node_timeout
            )));
        }
        Ok(())
    }
}

/// `url` without the credentials it may carry (`nats://user:password@host` →
/// `nats://host`), to be shown in messages.
pub(super) fn shown(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").map_or(("", url), |(s, r)| (s, r));
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    if scheme.is_empty() {
        rest.to_string()
    } else {
        format!("{scheme}://{rest}")
    }
}

/// The credentials a URL carries (`nats://user:password@host`, or
/// `nats://token@host`), and the URL without them.
pub(super) fn url_credentials(url: &str) -> (String, Option<(String, Option<String>)>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None);
    };
    match rest.rsplit_once('@') {
        None => (url.to_string(), None),
        Some((userinfo, host)) => {
            let creds = match userinfo.split_once(':') {
                Some((user, password)) => (user.to_string(), Some(password.to_string())),
                None => (userinfo.to_string(), None),
            };
            (format!("{scheme}://{host}"), Some(creds))
        }
    }
}

/// A name that goes into a NATS subject: letters, digits, `-` and `_`, at most 64.
pub(super) fn check_token(what: &str, name: &str) -> Result<(), ClusterError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ClusterError::Config(format!(
            "the {what} {name:?} is not valid: use 1 to 64 letters, digits, '-' and '_'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::{shown, url_credentials};

    #[test]
    fn credentials_come_out_of_the_url_and_are_never_shown() {
        let url = "nats://app:s3cret@127.0.0.1:4222";
        assert_eq!(shown(url), "nats://127.0.0.1:4222");
        assert_eq!(
            url_credentials(url),
            (
                "nats://127.0.0.1:4222".to_string(),
                Some(("app".to_string(), Some("s3cret".to_string())))
            )
        );
        assert_eq!(
            url_credentials("tls://tok@host:1"),
            ("tls://host:1".to_string(), Some(("tok".to_string(), None)))
        );
        assert_eq!(
            url_credentials("nats://host:1"),
            ("nats://host:1".to_string(), None)
        );
        assert_eq!(shown("host:1"), "host:1");
    }
}
