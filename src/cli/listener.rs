use std::path::{Path, PathBuf};
use std::time::Duration;

use super::CliError;
use super::master_tls::{MasterTls, termination};
use crate::logplane::listener::{Listener, ListenerConfig};
use crate::pki::RolePolicy;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Admits only worker agent certificates. The worker of every event is taken from \
    the peer certificate's CN, never from the message.\nExample:\n  decnet listener --host 0.0.0.0 --port 6514"
)]
pub struct ListenerArgs {
    #[arg(long, default_value = "0.0.0.0")]
    pub host: String,
    #[arg(long, default_value_t = 6514)]
    pub port: u16,
    /// Verbatim forensic log of every stored line [default: $DECNET_HOME/master.log]
    #[arg(long)]
    pub log_path: Option<PathBuf>,
    /// Also write parsed events as JSON lines here (for SIEM shippers).
    #[arg(long)]
    pub json_path: Option<PathBuf>,
    /// Event database [default: $DECNET_HOME/events.db]
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Largest accepted frame in bytes; bigger ones drop the connection.
    #[arg(long, default_value_t = 64 * 1024)]
    pub max_frame: usize,
    /// fsync the log files before every commit (survives power loss; slower).
    #[arg(long)]
    pub fsync: bool,
    #[arg(long, default_value_t = 4096)]
    pub max_connections: usize,
}

pub async fn run(home: &Path, args: ListenerArgs) -> Result<(), CliError> {
    let addr = super::listen_addr(&args.host, args.port)?;
    let master = MasterTls::load(home, super::open_store(home).await?).await?;
    let tls = master.server_config(RolePolicy::log_listener())?;
    let cfg = ListenerConfig {
        addr,
        log_path: args.log_path.unwrap_or_else(|| home.join("master.log")),
        json_path: args.json_path,
        db_path: args.db.unwrap_or_else(|| home.join("events.db")),
        max_frame: args.max_frame,
        fsync: args.fsync,
        max_connections: args.max_connections,
    };
    let listener = Listener::start(cfg, tls, termination())
        .await
        .map_err(|e| CliError::Other(e.to_string()))?;
    println!("listening on {}", listener.local_addr);
    // Revocations (decommissioned workers) take effect without a restart.
    let refresher = tokio::spawn(async move {
        master
            .follow_revocations(Duration::from_secs(2), std::future::pending())
            .await
    });
    let r = listener
        .wait()
        .await
        .map_err(|e| CliError::Other(e.to_string()));
    refresher.abort();
    r
}
