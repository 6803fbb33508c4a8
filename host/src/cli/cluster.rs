//! `weft run --cluster`: joining a cluster over NATS, and the channel ends the
//! node exports and imports by name, which the guest takes with `host_receiver` /
//! `host_sender` as it takes the application's.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;

use weft::RunOptions;
use weft::cli_values::parse_duration;
use weft::cluster::{Cluster, ClusterConfig};

/// How long leaving the cluster at the end waits for the remote ends of this
/// node's channels to finish (a channel exported here drains to the nodes that
/// receive from it) and for the last frames to go out.
const LEAVE_GRACE: Duration = Duration::from_secs(10);

/// The capacity of an exported channel when the flag gives none.
const DEFAULT_EXPORT_CAPACITY: usize = 16;

/// Joining a cluster, and the channels across it.
#[derive(Debug, Args)]
pub(super) struct ClusterArgs {
    /// Join the cluster whose NATS server is at URL (nats://HOST:PORT; credentials
    /// may be in it: nats://USER:PASSWORD@HOST:PORT). The program's channels can
    /// then have ends on other nodes: see --export-receiver and --import-sender.
    #[arg(long, value_name = "URL")]
    pub(super) cluster: Option<String>,

    /// The cluster's name: its traffic is under the subjects weft.NAME.
    #[arg(long, value_name = "NAME", requires = "cluster", default_value = "default")]
    pub(super) cluster_name: String,

    /// This node's name [default: the host's name and the process id]. Each start
    /// adds a random incarnation, so a restarted node is a new member.
    #[arg(long, value_name = "NAME", requires = "cluster")]
    pub(super) node: Option<String>,

    /// How long a node may stay silent before it is declared down and the channel
    /// ends that ran over it fail with `disconnected` [default: 3s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "cluster")]
    pub(super) node_timeout: Option<Duration>,

    /// How long an import waits for its name to be exported by some node
    /// [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "cluster")]
    pub(super) import_timeout: Option<Duration>,

    /// Authenticate to the NATS server with this credentials file (a JWT and an
    /// nkey seed).
    #[arg(long, value_name = "FILE", requires = "cluster")]
    pub(super) nats_creds: Option<PathBuf>,

    /// Also watch the server's reports of clients that disconnect, as this user of
    /// the deployment's system account (USER:PASSWORD): a node that crashes is
    /// declared down at once, not after --node-timeout.
    #[arg(long, value_name = "USER:PASSWORD", requires = "cluster")]
    pub(super) nats_system: Option<String>,

    /// Trust the certificates in this PEM file for a tls:// server.
    #[arg(long, value_name = "FILE", requires = "cluster")]
    pub(super) nats_ca: Option<PathBuf>,

    /// Make a channel homed on this node, of CAPACITY (default 16; 0 for a
    /// rendezvous, where a remote send returns once the guest took its value),
    /// exported as NAME: the guest receives from it (`host_receiver(NAME)`), other
    /// nodes send to it (--import-sender NAME). Repeatable.
    #[arg(
        long = "export-receiver",
        value_name = "NAME[=CAPACITY]",
        requires = "cluster"
    )]
    pub(super) export_receivers: Vec<String>,

    /// Make a channel homed on this node, of CAPACITY (default 16; 0 for a
    /// rendezvous, where the guest's send returns once a remote receiver took its
    /// value), exported as NAME: the guest sends on it (`host_sender(NAME)`), other
    /// nodes receive from it (--import-receiver NAME). Repeatable.
    #[arg(long = "export-sender", value_name = "NAME[=CAPACITY]", requires = "cluster")]
    pub(super) export_senders: Vec<String>,

    /// Send on the channel another node exports as NAME (--export-receiver NAME):
    /// the guest takes the sender with `host_sender(NAME)`. Waits for the name
    /// (--import-timeout). Repeatable.
    #[arg(long = "import-sender", value_name = "NAME", requires = "cluster")]
    pub(super) import_senders: Vec<String>,

    /// Receive from the channel another node exports as NAME (--export-sender
    /// NAME): the guest takes the receiver with `host_receiver(NAME)`. Repeatable.
    #[arg(long = "import-receiver", value_name = "NAME", requires = "cluster")]
    pub(super) import_receivers: Vec<String>,
}

impl ClusterArgs {
    /// The cluster to join, if any (refused for a deterministic run, whose
    /// schedule nothing outside it may decide).
    pub(super) fn config(&self, deterministic: bool) -> Result<Option<ClusterConfig>> {
        let Some(url) = &self.cluster else {
            return Ok(None);
        };
        if deterministic {
            bail!(
                "a deterministic run cannot join a cluster: other nodes would decide what it \
                 receives and when; leave out --cluster, or --deterministic and --seed"
            );
        }
        let mut config = ClusterConfig::new(url.clone()).cluster_name(self.cluster_name.clone());
        if let Some(node) = &self.node {
            config = config.node_name(node.clone());
        }
        if let Some(t) = self.node_timeout {
            config = config.node_timeout(t);
        }
        if let Some(t) = self.import_timeout {
            config = config.import_timeout(t);
        }
        if let Some(creds) = &self.nats_creds {
            config = config.creds_file(creds.clone());
        }
        if let Some(system) = &self.nats_system {
            let Some((user, password)) = system.split_once(':') else {
                bail!("--nats-system: expected USER:PASSWORD");
            };
            config = config.system_user(user, password);
        }
        if let Some(ca) = &self.nats_ca {
            config = config.root_certificates(ca.clone());
        }
        Ok(Some(config))
    }

    /// Export and import the channel ends the flags name, and hand them to the run.
    pub(super) fn attach(&self, cluster: &Cluster, mut options: RunOptions) -> Result<RunOptions> {
        for spec in &self.export_receivers {
            let (name, capacity) = name_and_capacity(spec, "--export-receiver")?;
            let rx = cluster
                .export_receiver::<()>(name, capacity)
                .with_context(|| format!("--export-receiver {spec}"))?;
            options = options.receiver(name, rx);
        }
        for spec in &self.export_senders {
            let (name, capacity) = name_and_capacity(spec, "--export-sender")?;
            let tx = cluster
                .export_sender::<()>(name, capacity)
                .with_context(|| format!("--export-sender {spec}"))?;
            options = options.sender(name, tx);
        }
        for name in &self.import_senders {
            let tx = cluster
                .import_sender::<()>(name)
                .with_context(|| format!("--import-sender {name}"))?;
            options = options.sender(name, tx);
        }
        for name in &self.import_receivers {
            let rx = cluster
                .import_receiver::<()>(name)
                .with_context(|| format!("--import-receiver {name}"))?;
            options = options.receiver(name, rx);
        }
        Ok(options)
    }
}

/// `NAME[=CAPACITY]`.
fn name_and_capacity<'a>(spec: &'a str, flag: &str) -> Result<(&'a str, usize)> {
    match spec.split_once('=') {
        None => Ok((spec, DEFAULT_EXPORT_CAPACITY)),
        Some((name, capacity)) => {
            let capacity = capacity
                .parse::<usize>()
                .with_context(|| format!("{flag} {spec}: the capacity {capacity:?} is not a whole number"))?;
            Ok((name, capacity))
        }
    }
}

/// Leave the cluster at the end of the run: the remote ends finish, the last
/// frames go out.
pub(super) fn leave(cluster: &Cluster) {
    let cut = cluster.leave(LEAVE_GRACE);
    if cut > 0 {
        super::report::report(format_args!(
            "weft: left the cluster with {cut} remote channel end(s) still attached after {LEAVE_GRACE:?}: \
             their nodes see them fail with `disconnected`"
        ));
    }
}
