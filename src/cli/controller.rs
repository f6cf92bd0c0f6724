//! `decnet controller`: the master. Runs the Swarm, Worker and DeckyShard
//! reconcilers, the log listener and the one-shot enrollment endpoint in one
//! process, until SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::master_tls::termination;
use super::{CliError, open_store};
use crate::api::Swarm;
use crate::controller::{Context, ManagerOptions, Settings, manager};
use crate::logplane::listener::{Listener, ListenerConfig};
use crate::master::MasterTls;
use crate::pki::RolePolicy;
use crate::store::{Api, Store};

pub const PID_FILE: &str = "controller.pid";
pub const LOG_FILE: &str = "controller.log";

#[derive(Args, Debug, Clone)]
#[command(
    after_help = "Examples:\n  decnet controller\n  decnet controller --daemon\n  decnet up   # all-in-one: also enrolls this host and starts its agent"
)]
pub struct ControllerArgs {
    /// Address the listener and the enrollment endpoint bind to.
    #[arg(long, default_value = "0.0.0.0")]
    pub host: String,
    /// Log listener port [default: the Swarm's listenerPort, else 6514].
    #[arg(long)]
    pub listener_port: Option<u16>,
    /// Enrollment endpoint port [default: the Swarm's enrollPort, else 8443].
    #[arg(long)]
    pub enroll_port: Option<u16>,
    /// Don't run the log listener (e.g. it runs as its own `decnet listener`).
    #[arg(long)]
    pub no_listener: bool,
    /// Don't serve one-shot enrollment URLs.
    #[arg(long)]
    pub no_enroll: bool,
    /// Detach: run in the background, logging to $DECNET_HOME/controller.log.
    #[arg(long)]
    pub daemon: bool,
}

/// A running master: reconcilers, listener, enrollment endpoint.
pub struct Master {
    pub store: Store,
    pub tls: MasterTls,
    pub listener_addr: Option<SocketAddr>,
    pub enroll_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<Result<(), String>>)>,
}

impl Master {
    /// Starts everything; returns once the sockets are bound.
    pub async fn start(home: &Path, args: &ControllerArgs) -> Result<Master, CliError> {
        let store = open_store(home).await?;
        let tls = MasterTls::load(home, store.clone()).await?;
        let swarm = Api::<Swarm>::new(store.clone()).first().await?;
        let (stop, stop_rx) = watch::channel(false);
        let stopped = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        let mut tasks: Vec<(&'static str, JoinHandle<Result<(), String>>)> = Vec::new();

        let mut listener_addr = None;
        if !args.no_listener {
            let port = args
                .listener_port
                .or(swarm.as_ref().map(|s| s.spec.listener_port))
                .unwrap_or(6514);
            let cfg = ListenerConfig {
                addr: super::listen_addr(&args.host, port)?,
                log_path: home.join("master.log"),
                json_path: None,
                db_path: home.join("events.db"),
                max_frame: 64 * 1024,
                fsync: false,
                max_connections: 4096,
            };
            let listener = Listener::start(
                cfg,
                tls.server_config(RolePolicy::log_listener())?,
                stopped(),
            )
            .await
            .map_err(|e| CliError::Other(format!("log listener: {e}")))?;
            listener_addr = Some(listener.local_addr);
            tasks.push((
                "listener",
                tokio::spawn(async move { listener.wait().await.map_err(|e| e.to_string()) }),
            ));
        }

        let mut enroll_addr = None;
        if !args.no_enroll {
            let port = args
                .enroll_port
                .or(swarm.as_ref().map(|s| s.spec.enroll_port))
                .unwrap_or(8443);
            let sock = tokio::net::TcpListener::bind(super::listen_addr(&args.host, port)?)
                .await
                .map_err(|e| {
                    CliError::Other(format!("enrollment endpoint on {}:{port}: {e}", args.host))
                })?;
            enroll_addr = sock.local_addr().ok();
            let (t, s) = (tls.clone(), stopped());
            tasks.push((
                "enroll",
                tokio::spawn(async move {
                    crate::enroll::serve(sock, t, s)
                        .await
                        .map_err(|e| e.to_string())
                }),
            ));
        }

        // Revocations written by other processes (the CLI) reach the verifiers.
        let (t, s) = (tls.clone(), stopped());
        tasks.push((
            "revocations",
            tokio::spawn(async move {
                t.follow_revocations(Duration::from_secs(2), s).await;
                Ok(())
            }),
        ));

        let ctx = Arc::new(Context::new(
            store.clone(),
            tls.clone(),
            home.to_path_buf(),
            Settings::default(),
        ));
        let s = stopped();
        tasks.push((
            "reconcilers",
            tokio::spawn(async move {
                manager::run(ctx, ManagerOptions::default(), s)
                    .await
                    .map_err(|e| e.to_string())
            }),
        ));
        Ok(Master {
            store,
            tls,
            listener_addr,
            enroll_addr,
            stop,
            tasks,
        })
    }

    /// Stops everything (in-flight reconciles finish) and reports the first failure.
    pub async fn shutdown(self) -> Result<(), CliError> {
        let _ = self.stop.send(true);
        let mut first = None;
        for (what, t) in self.tasks {
            match t.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first.get_or_insert_with(|| format!("{what}: {e}"));
                }
                Err(e) => {
                    first.get_or_insert_with(|| format!("{what}: {e}"));
                }
            }
        }
        first.map_or(Ok(()), |e| Err(CliError::Other(e)))
    }

    /// Waits for SIGTERM/SIGINT or for a part to fail, then shuts down.
    pub async fn run_until_signal(mut self) -> Result<(), CliError> {
        let failed = async {
            loop {
                if let Some(i) = self.tasks.iter().position(|(_, t)| t.is_finished()) {
                    return i;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        tokio::select! {
            _ = termination() => self.shutdown().await,
            i = failed => {
                let (what, t) = self.tasks.remove(i);
                let why = match t.await {
                    Ok(Ok(())) => "stopped".to_string(),
                    Ok(Err(e)) => e,
                    Err(e) => e.to_string(),
                };
                let _ = self.shutdown().await;
                Err(CliError::Other(format!("{what} failed: {why}")))
            }
        }
    }
}

pub fn pid_and_log(home: &Path) -> (PathBuf, PathBuf) {
    (home.join(PID_FILE), home.join(LOG_FILE))
}

pub async fn run(home: &Path, args: ControllerArgs) -> Result<(), CliError> {
    if args.daemon {
        std::fs::create_dir_all(home)
            .map_err(|e| CliError::Other(format!("cannot create {}: {e}", home.display())))?;
        let (pid, log) = pid_and_log(home);
        return super::daemon::daemonize("controller", &log, &pid);
    }
    let master = Master::start(home, &args).await?;
    if let Some(a) = master.listener_addr {
        eprintln!("log listener on {a} (RFC 5425 over mTLS, agent certificates only)");
    }
    if let Some(a) = master.enroll_addr {
        eprintln!("enrollment endpoint on https://{a}");
    }
    eprintln!("controller running (Swarm, Worker, DeckyShard reconcilers); SIGTERM to stop");
    master.run_until_signal().await
}
