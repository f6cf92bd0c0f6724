//! The `decnet` command line: kubectl habits over the embedded store.

pub mod agent;
mod apply;
mod collector;
pub mod controller;
pub mod crds;
mod daemon;
pub mod decky;
mod delete;
mod describe;
pub mod enroll;
mod forwarder;
mod get;
mod listener;
mod logs;
pub mod master_tls;
mod output;
pub mod swarm;
mod up;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use apply::ApplyArgs;
pub use delete::DeleteArgs;
pub use describe::DescribeArgs;
pub use get::GetArgs;

use crate::store::{Store, StoreError};

#[derive(Parser, Debug)]
#[command(
    name = "decnet",
    version,
    about = "Deception-network orchestrator: declarative decoy fleets over mutual TLS",
    long_about = "decnet turns Swarm, Worker, Topology and DeckyShard specs into decoy hosts \
                  spread over worker agents, and keeps them converged.\n\n\
                  State lives in $DECNET_HOME (default ~/.decnet)."
)]
pub struct Cli {
    /// State directory (store, CA, bundles).
    #[arg(long, global = true, env = "DECNET_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create or update resources from files, directories or stdin (-f -).
    Apply(ApplyArgs),
    /// List resources, or show one.
    Get(GetArgs),
    /// Show one resource in detail: spec, status, conditions, recent events.
    Describe(DescribeArgs),
    /// Delete resources by name or by the files that define them.
    Delete(DeleteArgs),
    /// Print the CustomResourceDefinitions (for `kubectl apply -f -`).
    Crds,
    /// Master: receive decky events over RFC 5425 + mTLS and store them.
    Listener(listener::ListenerArgs),
    /// Worker: append every decky container's log lines to the local log file.
    Collector(collector::CollectorArgs),
    /// Worker: ship the local decky log to the master, exactly once.
    Forwarder(forwarder::ForwarderArgs),
    /// Show decky events stored on the master.
    Logs(logs::LogsArgs),
    /// Run the worker agent: HTTPS + mTLS API that converges Docker to DeckyShards.
    Agent(agent::AgentArgs),
    /// Decky container entrypoints and the decky image.
    Decky(decky::DeckyArgs),
    /// Workers of the swarm: enroll, list, check, decommission.
    Swarm(swarm::SwarmArgs),
    /// Master: run the reconcilers, the log listener and the enrollment endpoint.
    Controller(controller::ControllerArgs),
    /// All-in-one on this machine: master + this host as a worker; apply, converge, show.
    Up(up::UpArgs),
}

/// A CLI failure, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Already reported in detail on stderr (e.g. every manifest error).
    #[error("{0}")]
    Reported(String),
    #[error("{0}")]
    Usage(String),
    /// Missing or broken credentials bundle (the message names the file and the fix).
    #[error("{0}")]
    Bundle(String),
    #[error("{0}")]
    Other(String),
}

impl From<crate::master::MasterError> for CliError {
    fn from(e: crate::master::MasterError) -> Self {
        CliError::Other(e.to_string())
    }
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) | CliError::Bundle(_) => 2,
            _ => 1,
        }
    }
}

impl Cli {
    pub fn home(&self) -> PathBuf {
        self.home.clone().unwrap_or_else(crate::store::default_home)
    }
}

/// `host:port` to bind, for IPv4 and IPv6 hosts; a usage error names the flag.
pub(crate) fn listen_addr(host: &str, port: u16) -> Result<std::net::SocketAddr, CliError> {
    format!("{host}:{port}")
        .parse()
        .or_else(|_| format!("[{host}]:{port}").parse())
        .map_err(|_| CliError::Usage(format!("--host {host:?} is not an IP address to listen on")))
}

pub async fn open_store(home: &std::path::Path) -> Result<Store, CliError> {
    Ok(Store::open(&crate::store::db_path(home)).await?)
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let home = cli.home();
    match cli.command {
        Command::Apply(args) => apply::run(&home, args).await,
        Command::Get(args) => get::run(&home, args).await,
        Command::Describe(args) => describe::run(&home, args).await,
        Command::Delete(args) => delete::run(&home, args).await,
        Command::Listener(args) => listener::run(&home, args).await,
        Command::Forwarder(args) => forwarder::run(&home, args).await,
        Command::Collector(args) => collector::run(args).await,
        Command::Logs(args) => logs::run(&home, args).await,
        Command::Agent(args) => agent::run(args).await,
        Command::Decky(args) => decky::run(args).await,
        Command::Swarm(args) => swarm::run(&home, args).await,
        Command::Controller(args) => controller::run(&home, args).await,
        Command::Up(args) => up::run(&home, args).await,
        Command::Crds => {
            print!("{}", crds::render_all().map_err(CliError::Other)?);
            Ok(())
        }
    }
}
