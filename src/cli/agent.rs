//! `decnet agent`: the worker agent (HTTPS + mTLS control API converging Docker).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use crate::agent::{Agent, Executor, server};
use crate::cli::CliError;
use crate::logplane::collector::{self, CollectorConfig};
use crate::pki::{Bundle, RevocationList, RolePolicy};

/// Revoked fingerprints (one per line), optional, in the agent directory.
pub const REVOKED_FILE: &str = "revoked.txt";
pub const PID_FILE: &str = "agent.pid";
pub const LOG_FILE: &str = "agent.log";

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// Directory holding the enrollment bundle (ca.crt, worker.crt, worker.key).
    #[arg(long, value_name = "DIR")]
    pub agent_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub host: String,
    #[arg(long, default_value_t = 8765)]
    pub port: u16,
    /// Detach: re-run in the background, logging to DIR/agent.log, pid in DIR/agent.pid.
    #[arg(long)]
    pub daemon: bool,
    /// Decky log file the collector appends to (and the forwarder ships)
    /// [default: DIR/deckies.log].
    #[arg(long, value_name = "FILE")]
    pub log_path: Option<PathBuf>,
    /// Do not collect the deckies' logs (e.g. when `decnet collector` runs separately).
    #[arg(long)]
    pub no_collector: bool,
}

/// The collector's state next to its log file's default place.
pub const COLLECTOR_DB: &str = "collector.db";
pub const DECKY_LOG: &str = "deckies.log";

/// Loads the bundle and the revocation list, and builds the mTLS server config that admits
/// only the master. Errors name the file and the enroll command (exit code 2).
pub fn tls_config(dir: &Path) -> Result<Arc<rustls::ServerConfig>, CliError> {
    let bundle = Bundle::load(dir).map_err(|e| CliError::Bundle(e.to_string()))?;
    let revoked_path = dir.join(REVOKED_FILE);
    let revoked = if revoked_path.exists() {
        RevocationList::load(&revoked_path).map_err(|e| CliError::Bundle(e.to_string()))?
    } else {
        RevocationList::new()
    };
    crate::pki::server_config(&bundle, RolePolicy::agent_endpoint(), revoked)
        .map_err(|e| CliError::Bundle(e.to_string()))
}

pub async fn run(args: AgentArgs) -> Result<(), CliError> {
    // Check the bundle before detaching, so a broken one fails in the operator's terminal.
    let tls = tls_config(&args.agent_dir)?;
    if args.daemon {
        return daemonize(&args);
    }
    let listener = std::net::TcpListener::bind((args.host.as_str(), args.port)).map_err(|e| {
        CliError::Other(format!("cannot listen on {}:{}: {e}", args.host, args.port))
    })?;
    let exe = std::env::current_exe()
        .map_err(|e| CliError::Other(format!("cannot locate this binary: {e}")))?;
    // The worker's name (its certificate CN) scopes every Docker object it manages, so
    // agents sharing one Docker daemon never touch each other's deckies.
    let bundle = Bundle::load(&args.agent_dir).map_err(|e| CliError::Bundle(e.to_string()))?;
    let mut executor = Executor::connect(exe)
        .await
        .map_err(|e| CliError::Other(e.to_string()))?;
    if let Some(worker) = bundle.role().worker() {
        executor = executor.with_owner(worker.as_str());
    }
    // Build the decky image ahead of the first deploy (reused when the tag exists).
    let prebuild = executor.clone();
    tokio::spawn(async move {
        if let Err(e) = prebuild.ensure_image().await {
            tracing::warn!(error = %e, "decky image not ready yet (will retry at first deploy)");
        }
    });
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::Other(e.to_string()))?;
    if !args.no_collector {
        let mut cfg = CollectorConfig::new(
            args.log_path
                .clone()
                .unwrap_or_else(|| args.agent_dir.join(DECKY_LOG)),
            args.agent_dir.join(COLLECTOR_DB),
        );
        cfg.owner = executor.owner().map(str::to_owned);
        let docker = executor.docker().clone();
        tokio::spawn(async move {
            // The agent has no graceful shutdown; the collector is crash-safe.
            if let Err(e) = collector::run(docker, cfg, std::future::pending()).await {
                tracing::error!(error = %e, "decky log collector stopped");
            }
        });
    }
    tracing::info!(%addr, "agent listening (mTLS, master only)");
    eprintln!("decnet agent listening on https://{addr} (mTLS, master only)");
    server::serve(listener, tls, Arc::new(Agent::new(executor)))
        .await
        .map_err(|e| CliError::Other(format!("agent server: {e}")))
}

/// Re-spawns this binary without `--daemon`, detached from the terminal.
fn daemonize(args: &AgentArgs) -> Result<(), CliError> {
    let dir = &args.agent_dir;
    super::daemon::daemonize("agent", &dir.join(LOG_FILE), &dir.join(PID_FILE))
}
