//! `decnet collector`: the worker's decky log collector on its own (the agent
//! runs the same collector unless started with `--no-collector`).

use std::path::PathBuf;

use super::CliError;
use super::master_tls::termination;
use crate::logplane::collector::{self, CollectorConfig};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Appends the stdout lines of every decky container (label decnet.io/managed=true) \
    to the log file, exactly once across restarts; the forwarder ships that file.\nExample:\n  \
    decnet collector --log-path /var/log/decnet/deckies.log --state-db /var/lib/decnet/collector.db"
)]
pub struct CollectorArgs {
    /// The local log file to append to.
    #[arg(long)]
    pub log_path: PathBuf,
    /// Where per-container progress is kept.
    #[arg(long)]
    pub state_db: PathBuf,
}

pub async fn run(args: CollectorArgs) -> Result<(), CliError> {
    let docker = connect_docker().await?;
    collector::run(
        docker,
        CollectorConfig::new(args.log_path, args.state_db),
        termination(),
    )
    .await
    .map_err(|e| CliError::Other(e.to_string()))
}

/// The local Docker daemon, API version negotiated.
pub async fn connect_docker() -> Result<bollard::Docker, CliError> {
    let fail = |e: bollard::errors::Error| CliError::Other(format!("docker: {e}"));
    bollard::Docker::connect_with_socket_defaults()
        .map_err(fail)?
        .negotiate_version()
        .await
        .map_err(fail)
}
