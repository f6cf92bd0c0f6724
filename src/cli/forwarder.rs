use std::path::{Path, PathBuf};

use super::CliError;
use super::master_tls::termination;
use crate::logplane::forwarder::{self, ForwarderConfig};
use crate::pki::{self, Bundle, RevocationList, RolePolicy, ServerNameCheck};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Ships every complete line of the log file to the master, exactly once: \
    it resumes from the master's acknowledgements and follows rotation.\nExample:\n  \
    decnet forwarder --master-host 10.0.0.1 --log-path /var/log/decnet/deckies.log \\\n    \
    --state-db /var/lib/decnet/forwarder.db --agent-dir /etc/decnet/agent"
)]
pub struct ForwarderArgs {
    #[arg(long)]
    pub master_host: String,
    #[arg(long, default_value_t = 6514)]
    pub master_port: u16,
    /// The local log file to ship.
    #[arg(long)]
    pub log_path: PathBuf,
    /// Where shipping progress is kept.
    #[arg(long)]
    pub state_db: PathBuf,
    /// The worker's bundle: ca.crt, worker.crt, worker.key.
    #[arg(long)]
    pub agent_dir: PathBuf,
}

pub async fn run(_home: &Path, args: ForwarderArgs) -> Result<(), CliError> {
    let dir = args.agent_dir.clone();
    let bundle = tokio::task::spawn_blocking(move || Bundle::load(&dir))
        .await
        .map_err(|e| CliError::Other(e.to_string()))?
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let tls = pki::client_config(
        &bundle,
        RolePolicy::master(),
        RevocationList::new(),
        ServerNameCheck::Verify,
    )
    .map_err(|e| CliError::Other(e.to_string()))?;
    let cfg = ForwarderConfig::new(
        &args.master_host,
        args.master_port,
        args.log_path,
        args.state_db,
    );
    forwarder::run(cfg, tls, termination())
        .await
        .map_err(|e| CliError::Other(e.to_string()))
}
