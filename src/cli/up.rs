//! `decnet up`: the all-in-one embedded run on one machine. Starts the master
//! (CA, reconcilers, listener, enrollment), applies the manifests, enrolls
//! this host as a worker when none of the workers is local, runs an agent and
//! a forwarder for every local worker, waits until everything converged and
//! prints a status table; then keeps running until SIGTERM/Ctrl-C.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use tokio::process::{Child, Command};

use super::controller::{ControllerArgs, Master};
use super::master_tls::termination;
use super::{ApplyArgs, CliError};
use crate::api::{
    DeckyShard, DeckyShardPhase, Swarm, SwarmPhase, Topology, Worker, WorkerPhase, WorkerSpec,
};
use crate::store::{Api, Selector, Store, StoreError};

#[derive(Args, Debug)]
#[command(
    after_help = "Example (from a checkout):\n  decnet up            # applies ./examples\n  decnet up -f my-fleet/"
)]
pub struct UpArgs {
    /// Manifests to apply (file or directory; repeatable) [default: ./examples if present].
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    pub files: Vec<PathBuf>,
    /// Stop waiting for convergence after this many seconds (keeps running).
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Exit once converged (the master and local agents stop; deckies keep running).
    #[arg(long)]
    pub exit_when_ready: bool,
    #[command(flatten)]
    pub controller: ControllerArgs,
}

pub async fn run(home: &Path, args: UpArgs) -> Result<(), CliError> {
    if args.controller.daemon {
        std::fs::create_dir_all(home)
            .map_err(|e| CliError::Other(format!("cannot create {}: {e}", home.display())))?;
        let (pid, log) = super::controller::pid_and_log(home);
        return super::daemon::daemonize("up", &log, &pid);
    }
    let master = Master::start(home, &args.controller).await?;
    let store = master.store.clone();
    eprintln!("master up: CA {}", master.tls.ca.fingerprint());

    let mut files = args.files.clone();
    if files.is_empty() && Path::new("examples").is_dir() {
        files.push(PathBuf::from("examples"));
    }
    if !files.is_empty() {
        super::apply::run(
            home,
            ApplyArgs {
                files,
                recursive: false,
                selector: None,
                prune: false,
                dry_run: false,
            },
        )
        .await?;
    }
    ensure_local_worker(&store).await?;

    let listener_port = master.listener_addr.map(|a| a.port());
    let mut agents = LocalAgents::new(home.to_path_buf(), listener_port);
    let converged = wait_converged(&store, &mut agents, Duration::from_secs(args.timeout)).await?;
    print!("{}", status_table(&store).await?);
    if !converged {
        eprintln!(
            "not converged after {} s; still running — see `decnet describe` for the conditions",
            args.timeout
        );
    }
    if args.exit_when_ready && converged {
        agents.stop().await;
        return master.shutdown().await;
    }
    eprintln!("decnet is running; Ctrl-C to stop (deckies keep running)");
    let supervise = async {
        loop {
            if let Err(e) = agents.supervise(&store).await {
                tracing::warn!(error = %e, "local agent supervision");
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    };
    tokio::select! {
        _ = termination() => {}
        _ = supervise => {}
    }
    agents.stop().await;
    master.shutdown().await
}

/// An address assigned to this host (binding to it works).
pub fn is_local_address(addr: &str) -> bool {
    match addr.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback() || std::net::UdpSocket::bind((ip, 0)).is_ok(),
        Err(_) => addr == "localhost",
    }
}

/// With no local worker among the manifests, this host enrolls itself as `local`.
async fn ensure_local_worker(store: &Store) -> Result<(), CliError> {
    let api: Api<Worker> = Api::new(store.clone());
    let workers = api.list(&Selector::default()).await?;
    if workers.iter().any(|w| is_local_address(&w.spec.address)) {
        return Ok(());
    }
    let w = Worker::new(
        "local",
        WorkerSpec {
            address: "127.0.0.1".into(),
            agent_port: 8765,
            sans: vec!["localhost".into()],
            capacity: None,
            weight: 1,
            unschedulable: false,
        },
    );
    match api.create(&w).await {
        Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The agent + forwarder processes of the workers that live on this host.
struct LocalAgents {
    home: PathBuf,
    listener_port: Option<u16>,
    running: BTreeMap<String, (Child, Option<Child>)>,
}

impl LocalAgents {
    fn new(home: PathBuf, listener_port: Option<u16>) -> Self {
        LocalAgents {
            home,
            listener_port,
            running: BTreeMap::new(),
        }
    }

    /// Starts an agent (and a forwarder) for every local worker whose bundle exists;
    /// restarts ones that died.
    async fn supervise(&mut self, store: &Store) -> Result<(), CliError> {
        let exe = std::env::current_exe()
            .map_err(|e| CliError::Other(format!("cannot locate this binary: {e}")))?;
        let workers = Api::<Worker>::new(store.clone())
            .list(&Selector::default())
            .await?;
        for w in workers
            .iter()
            .filter(|w| w.metadata.deletion_timestamp.is_none())
        {
            let name = w.metadata.name.clone().unwrap_or_default();
            if !is_local_address(&w.spec.address) {
                continue;
            }
            let dir = self.home.join("workers").join(&name);
            if !dir.join("worker.crt").exists() {
                continue;
            }
            if let Some((agent, _)) = self.running.get_mut(&name) {
                match agent.try_wait() {
                    Ok(None) => continue,
                    Ok(Some(code)) => {
                        tracing::warn!(worker = %name, %code, "local agent exited; restarting")
                    }
                    Err(e) => {
                        tracing::warn!(worker = %name, error = %e, "local agent state unknown; restarting")
                    }
                }
                if let Some((mut a, f)) = self.running.remove(&name) {
                    let _ = a.kill().await;
                    if let Some(mut f) = f {
                        let _ = f.kill().await;
                    }
                }
            }
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("agent.log"))
                .map_err(|e| {
                    CliError::Other(format!(
                        "cannot open {}: {e}",
                        dir.join("agent.log").display()
                    ))
                })?;
            let agent = Command::new(&exe)
                .arg("agent")
                .arg("--agent-dir")
                .arg(&dir)
                .args([
                    "--host",
                    &w.spec.address,
                    "--port",
                    &w.spec.agent_port.to_string(),
                ])
                .stdin(std::process::Stdio::null())
                .stdout(
                    log.try_clone()
                        .map_err(|e| CliError::Other(e.to_string()))?,
                )
                .stderr(
                    log.try_clone()
                        .map_err(|e| CliError::Other(e.to_string()))?,
                )
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| CliError::Other(format!("cannot start the agent of {name}: {e}")))?;
            let forwarder = match self.listener_port {
                Some(port) => Some(
                    Command::new(&exe)
                        .arg("forwarder")
                        .args([
                            "--master-host",
                            "127.0.0.1",
                            "--master-port",
                            &port.to_string(),
                        ])
                        .arg("--log-path")
                        .arg(dir.join("deckies.log"))
                        .arg("--state-db")
                        .arg(dir.join("forwarder.db"))
                        .arg("--agent-dir")
                        .arg(&dir)
                        .stdin(std::process::Stdio::null())
                        .stdout(
                            log.try_clone()
                                .map_err(|e| CliError::Other(e.to_string()))?,
                        )
                        .stderr(log)
                        .kill_on_drop(true)
                        .spawn()
                        .map_err(|e| {
                            CliError::Other(format!("cannot start the forwarder of {name}: {e}"))
                        })?,
                ),
                None => None,
            };
            eprintln!(
                "started the agent of worker {name} on {}:{} (log {})",
                w.spec.address,
                w.spec.agent_port,
                dir.join("agent.log").display()
            );
            self.running.insert(name, (agent, forwarder));
        }
        Ok(())
    }

    async fn stop(&mut self) {
        for (_, (mut a, f)) in std::mem::take(&mut self.running) {
            let _ = a.kill().await;
            if let Some(mut f) = f {
                let _ = f.kill().await;
            }
        }
    }
}

/// Counts toward convergence (pure over the listed objects).
#[derive(Debug, Default, PartialEq)]
struct Progress {
    workers: usize,
    active: usize,
    shards: usize,
    ready_shards: usize,
    deckies: u32,
    ready_deckies: u32,
    swarms_pending: usize,
}

impl Progress {
    fn of(workers: &[Worker], shards: &[DeckyShard], swarms: &[Swarm]) -> Progress {
        let live_shards = shards
            .iter()
            .filter(|s| s.metadata.deletion_timestamp.is_none());
        let mut p = Progress {
            workers: workers.len(),
            active: workers
                .iter()
                .filter(|w| w.status.as_ref().and_then(|s| s.phase) == Some(WorkerPhase::Active))
                .count(),
            swarms_pending: swarms
                .iter()
                .filter(|s| {
                    s.spec.fleet.is_some()
                        && s.status.as_ref().and_then(|st| st.phase) != Some(SwarmPhase::Ready)
                })
                .count(),
            ..Default::default()
        };
        for s in live_shards {
            p.shards += 1;
            let st = s.status.as_ref();
            if st.and_then(|st| st.phase) == Some(DeckyShardPhase::Ready)
                && st.and_then(|st| st.observed_generation) == s.metadata.generation
            {
                p.ready_shards += 1;
            }
            p.deckies += s.spec.deckies.len() as u32;
            p.ready_deckies += st.and_then(|st| st.ready_deckies).unwrap_or(0);
        }
        p
    }

    fn converged(&self) -> bool {
        self.workers > 0
            && self.active == self.workers
            && self.ready_shards == self.shards
            && self.swarms_pending == 0
    }

    fn line(&self) -> String {
        format!(
            "workers {}/{} active · shards {}/{} ready · deckies {}/{} ready",
            self.active,
            self.workers,
            self.ready_shards,
            self.shards,
            self.ready_deckies,
            self.deckies
        )
    }
}

async fn wait_converged(
    store: &Store,
    agents: &mut LocalAgents,
    timeout: Duration,
) -> Result<bool, CliError> {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(Duration::from_millis(120));
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        agents.supervise(store).await?;
        let workers = Api::<Worker>::new(store.clone())
            .list(&Selector::default())
            .await?;
        let shards = Api::<DeckyShard>::new(store.clone())
            .list(&Selector::default())
            .await?;
        let swarms = Api::<Swarm>::new(store.clone())
            .list(&Selector::default())
            .await?;
        let p = Progress::of(&workers, &shards, &swarms);
        let line = p.line();
        if line != last {
            if bar.is_hidden() {
                eprintln!("{line}");
            }
            bar.set_message(line.clone());
            last = line;
        }
        if p.converged() {
            finish(&bar, format!("converged: {last}"));
            return Ok(true);
        }
        if Instant::now() > deadline {
            finish(&bar, format!("timed out: {last}"));
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The spinner's last word, also on a non-terminal (where the bar is hidden).
fn finish(bar: &indicatif::ProgressBar, msg: String) {
    if bar.is_hidden() {
        eprintln!("{msg}");
    }
    bar.finish_with_message(msg);
}

/// The table `decnet up` prints once converged.
pub async fn status_table(store: &Store) -> Result<String, CliError> {
    use std::fmt::Write;
    let workers = Api::<Worker>::new(store.clone())
        .list(&Selector::default())
        .await?;
    let shards = Api::<DeckyShard>::new(store.clone())
        .list(&Selector::default())
        .await?;
    let topologies = Api::<Topology>::new(store.clone())
        .list(&Selector::default())
        .await?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:<22} {:<18} {:<14} {:>7}",
        "WORKER", "ADDRESS", "PHASE", "DECKIES"
    );
    for w in &workers {
        let st = w.status.clone().unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<22} {:<18} {:<14} {:>7}",
            w.metadata.name.as_deref().unwrap_or(""),
            format!("{}:{}", w.spec.address, w.spec.agent_port),
            st.phase.map_or("-", WorkerPhase::as_str),
            // From the shards (desired), not the last heartbeat, which may predate the deploy.
            shards
                .iter()
                .filter(|s| s.metadata.deletion_timestamp.is_none()
                    && Some(&s.spec.worker) == w.metadata.name.as_ref())
                .map(|s| s.spec.deckies.len())
                .sum::<usize>()
        );
    }
    let _ = writeln!(
        out,
        "\n{:<22} {:<22} {:<10} {:>7}",
        "SHARD", "WORKER", "PHASE", "READY"
    );
    for s in &shards {
        let st = s.status.clone().unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<22} {:<22} {:<10} {:>7}",
            s.metadata.name.as_deref().unwrap_or(""),
            s.spec.worker,
            st.phase.map_or("-".into(), |p| format!("{p:?}")),
            format!("{}/{}", st.ready_deckies.unwrap_or(0), s.spec.deckies.len())
        );
        for d in &st.deckies {
            let _ = writeln!(
                out,
                "  {:<20} {}",
                d.name,
                if d.ready {
                    "ready"
                } else {
                    d.message.as_deref().unwrap_or("not ready")
                }
            );
        }
    }
    if !topologies.is_empty() {
        let _ = writeln!(out, "\n{:<22} {:<14}", "TOPOLOGY", "PHASE");
        for t in &topologies {
            let phase = t.status.as_ref().and_then(|s| s.phase).map_or(
                "pending (MazeNET controller not in this release)".into(),
                |p| format!("{p:?}"),
            );
            let _ = writeln!(
                out,
                "{:<22} {phase}",
                t.metadata.name.as_deref().unwrap_or("")
            );
        }
    }
    Ok(out)
}
