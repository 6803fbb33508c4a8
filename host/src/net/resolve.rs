//! Name resolution for guests' sockets: through a [`Resolve`] the runtime holds (the
//! system's resolver unless the embedder gives another), bounded in time and in
//! lookups at once, so that guests cannot fill the runtime's blocking threads.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::tcp::NetError;

/// How many lookups a runtime makes at once, all its runs together; more wait
/// for a turn (within their time).
pub const MAX_LOOKUPS: usize = 16;

/// How long a guest's lookup may take, its wait for a turn included.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// A future that a [`Resolve`] returns.
pub type Lookup = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'static>>;

/// Resolves host names for the sockets of a runtime's guests
/// ([`RuntimeBuilder::resolver`](crate::RuntimeBuilder::resolver)); the default is
/// [`SystemResolver`].
///
/// weft asks only for names that one of the run's grants could cover (the
/// grant's host is `*`, or that same name), never for others, and at most
/// [`MAX_LOOKUPS`] at once, each for at most [`LOOKUP_TIMEOUT`] (a lookup that
/// takes longer fails for the guest, and keeps its turn until its future ends).
///
/// ```
/// use std::net::SocketAddr;
/// struct Fixed(SocketAddr);
/// impl weft::net::Resolve for Fixed {
///     fn resolve(&self, _host: &str, port: u16) -> weft::net::Lookup {
///         let addr = SocketAddr::new(self.0.ip(), port);
///         Box::pin(async move { Ok(vec![addr]) })
///     }
/// }
/// # fn main() -> Result<(), weft::Error> {
/// let runtime = weft::Runtime::builder()
///     .resolver(Fixed("127.0.0.1:0".parse().unwrap()))
///     .build()?;
/// # Ok(()) }
/// ```
pub trait Resolve: Send + Sync + 'static {
    /// The socket addresses `host` (a name, never an IP address) names, with `port`.
    fn resolve(&self, host: &str, port: u16) -> Lookup;
}

/// The system's resolver (`getaddrinfo`, on tokio's blocking threads).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> Lookup {
        let host = host.to_string();
        Box::pin(async move { Ok(tokio::net::lookup_host((host.as_str(), port)).await?.collect()) })
    }
}

/// A runtime's resolver and its bounds.
#[derive(Clone)]
pub(crate) struct Resolver {
    resolve: Arc<dyn Resolve>,
    turns: Arc<Semaphore>,
    timeout: Duration,
}

impl Default for Resolver {
    fn default() -> Self {
        Resolver::new(Arc::new(SystemResolver))
    }
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("lookups_at_once", &MAX_LOOKUPS)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Resolver {
    pub(crate) fn new(resolve: Arc<dyn Resolve>) -> Resolver {
        Resolver {
            resolve,
            turns: Arc::new(Semaphore::new(MAX_LOOKUPS)),
            timeout: LOOKUP_TIMEOUT,
        }
    }

    /// The addresses of `host`, with `port`, within the bounds. The lookup runs as a
    /// task of its own holding its turn: a lookup that times out keeps it until it
    /// ends (the blocking thread it occupies is not free before).
    pub(crate) async fn lookup(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, NetError> {
        let failed = |why: String| NetError::InvalidAddress(format!("`{host}:{port}`: {why}"));
        let looked_up = tokio::time::timeout(self.timeout, async {
            let turn =
                self.turns.clone().acquire_owned().await.map_err(|_closed| {
                    NetError::Io(io::Error::other("the runtime's resolver is shut down"))
                })?;
            let lookup = self.resolve.resolve(host, port);
            tokio::spawn(async move {
                let found = lookup.await;
                drop(turn);
                found
            })
            .await
            .map_err(|e| NetError::Io(io::Error::other(format!("the lookup failed: {e}"))))?
            .map_err(|e| failed(format!("does not resolve: {e}")))
        })
        .await;
        let addrs = match looked_up {
            Ok(found) => found?,
            Err(_elapsed) => {
                return Err(NetError::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "looking up `{host}` took longer than {:?} (or waited that long for a \
                         turn: a runtime makes {MAX_LOOKUPS} lookups at once)",
                        self.timeout
                    ),
                )));
            }
        };
        if addrs.is_empty() {
            return Err(failed("resolves to no address".into()));
        }
        Ok(addrs)
    }

    /// Lookups under way now (finished ones and timed-out ones still running count).
    #[cfg(test)]
    pub(crate) fn busy(&self) -> usize {
        MAX_LOOKUPS - self.turns.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lookups that end only when told to.
    struct Held(tokio::sync::watch::Receiver<bool>);

    impl Resolve for Held {
        fn resolve(&self, _host: &str, port: u16) -> Lookup {
            let mut go = self.0.clone();
            Box::pin(async move {
                go.wait_for(|go| *go).await.map_err(io::Error::other)?;
                Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))])
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lookup_that_times_out_keeps_its_turn_until_it_ends() {
        let (go, held) = tokio::sync::watch::channel(false);
        let resolver = Resolver::new(Arc::new(Held(held)));
        let late = resolver.lookup("slow.example", 80).await.unwrap_err();
        assert!(
            matches!(&late, NetError::Io(e) if e.kind() == io::ErrorKind::TimedOut
                && e.to_string().contains("looking up `slow.example`")),
            "{late:?}"
        );
        assert_eq!(resolver.busy(), 1, "the timed-out lookup still runs");
        go.send(true).unwrap();
        while resolver.busy() > 0 {
            tokio::task::yield_now().await;
        }
        let found = resolver.lookup("slow.example", 81).await.unwrap();
        assert_eq!(found, vec![SocketAddr::from(([127, 0, 0, 1], 81))]);
    }

    #[tokio::test(start_paused = true)]
    async fn at_most_max_lookups_run_at_once() {
        let (_go, held) = tokio::sync::watch::channel(false);
        let resolver = Resolver::new(Arc::new(Held(held)));
        let lookups: Vec<_> = (0..MAX_LOOKUPS + 5)
            .map(|i| {
                let resolver = resolver.clone();
                tokio::spawn(async move { resolver.lookup("slow.example", i as u16).await })
            })
            .collect();
        for lookup in lookups {
            assert!(lookup.await.unwrap().is_err());
        }
        assert_eq!(resolver.busy(), MAX_LOOKUPS);
    }
}
