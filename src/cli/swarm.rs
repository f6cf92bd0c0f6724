//! `decnet swarm …`: thin views over the Worker resources (enroll, list,
//! check, decommission). The controller does the work; these read and write
//! the same objects `decnet get/apply/delete` do.

use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};

use super::enroll::EnrollArgs;
use super::{CliError, open_store};
use crate::api::{Worker, WorkerPhase};
use crate::controller::worker::KEEP_DECKIES;
use crate::master::MasterTls;
use crate::store::{Api, Selector, StoreError};

#[derive(Args, Debug)]
pub struct SwarmArgs {
    #[command(subcommand)]
    pub command: SwarmCommand,
}

#[derive(Subcommand, Debug)]
pub enum SwarmCommand {
    /// Issue a worker's certificate bundle and create its Worker resource.
    Enroll(EnrollArgs),
    /// List workers with their phase, heartbeat and deckies.
    List {
        /// Only workers in this phase (Pending, Enrolled, Active, Unreachable, Decommissioning).
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Probe every worker's agent now over mTLS; exit code 1 if any is unreachable.
    Check,
    /// Tear down a worker's deckies, revoke its certificate and remove it.
    Decommission {
        #[arg(long, required_unless_present = "uuid", conflicts_with = "uuid")]
        name: Option<String>,
        /// The Worker's metadata.uid.
        #[arg(long)]
        uuid: Option<String>,
        /// Don't ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// Leave its deckies running on the host (only the certificate is revoked).
        #[arg(long)]
        keep_deckies: bool,
        /// How long to wait for the controller to finish, in seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
}

pub async fn run(home: &Path, args: SwarmArgs) -> Result<(), CliError> {
    match args.command {
        SwarmCommand::Enroll(a) => super::enroll::run(home, a).await,
        SwarmCommand::List { status, json } => list(home, status, json).await,
        SwarmCommand::Check => check(home).await,
        SwarmCommand::Decommission {
            name,
            uuid,
            yes,
            keep_deckies,
            timeout,
        } => {
            decommission(
                home,
                name,
                uuid,
                yes,
                keep_deckies,
                Duration::from_secs(timeout),
            )
            .await
        }
    }
}

fn phase(w: &Worker) -> &'static str {
    w.status
        .as_ref()
        .and_then(|s| s.phase)
        .map_or("-", WorkerPhase::as_str)
}

async fn list(home: &Path, status: Option<String>, json: bool) -> Result<(), CliError> {
    let store = open_store(home).await?;
    let mut workers = Api::<Worker>::new(store).list(&Selector::default()).await?;
    if let Some(s) = &status {
        let all = [
            "Pending",
            "Enrolled",
            "Active",
            "Unreachable",
            "Decommissioning",
        ];
        let Some(want) = all.iter().find(|p| p.eq_ignore_ascii_case(s)) else {
            return Err(CliError::Usage(format!(
                "--status {s:?}: one of {}",
                all.join(", ")
            )));
        };
        workers.retain(|w| phase(w) == *want);
    }
    if json {
        let v =
            serde_json::to_string_pretty(&workers).map_err(|e| CliError::Other(e.to_string()))?;
        println!("{v}");
        return Ok(());
    }
    println!(
        "{:<20} {:<22} {:<15} {:<26} {:>7}  CERT",
        "NAME", "ADDRESS", "PHASE", "LAST HEARTBEAT", "DECKIES"
    );
    for w in &workers {
        let st = w.status.clone().unwrap_or_default();
        println!(
            "{:<20} {:<22} {:<15} {:<26} {:>7}  {}",
            w.metadata.name.as_deref().unwrap_or(""),
            format!("{}:{}", w.spec.address, w.spec.agent_port),
            phase(w),
            st.last_heartbeat.map_or("-".into(), |t| t
                .0
                .round(jiff::Unit::Second)
                .map_or_else(|_| t.0.to_string(), |t| t.to_string())),
            st.deckies.map_or("-".into(), |d| d.to_string()),
            st.cert_fingerprint
                .as_deref()
                .map_or("-", |f| &f[..f.len().min(16)]),
        );
    }
    Ok(())
}

async fn check(home: &Path) -> Result<(), CliError> {
    let store = open_store(home).await?;
    let master = MasterTls::load(home, store.clone()).await?;
    let workers = Api::<Worker>::new(store).list(&Selector::default()).await?;
    let mut down = 0;
    for w in &workers {
        let name = w.metadata.name.clone().unwrap_or_default();
        let started = Instant::now();
        let result = async {
            let tls = master.agent_client_config(&name)?;
            let mut client =
                crate::agent::client::AgentClient::new(&w.spec.address, w.spec.agent_port, tls)
                    .map_err(|e| CliError::Other(e.to_string()))?;
            client.timeout = Duration::from_secs(5);
            client
                .status()
                .await
                .map_err(|e| CliError::Other(e.to_string()))
        }
        .await;
        match result {
            Ok(s) => println!(
                "{name:<20} ok    {:>5} ms  agent {}  {} deckies",
                started.elapsed().as_millis(),
                s.version,
                s.shards.iter().map(|s| s.deckies.len()).sum::<usize>()
            ),
            Err(e) => {
                down += 1;
                println!("{name:<20} FAIL  {e}");
            }
        }
    }
    if down > 0 {
        return Err(CliError::Reported(format!(
            "{down} of {} workers unreachable",
            workers.len()
        )));
    }
    Ok(())
}

async fn decommission(
    home: &Path,
    name: Option<String>,
    uuid: Option<String>,
    yes: bool,
    keep_deckies: bool,
    timeout: Duration,
) -> Result<(), CliError> {
    let store = open_store(home).await?;
    let api: Api<Worker> = Api::new(store);
    let worker = match (&name, &uuid) {
        (Some(n), _) => api.get_opt(n).await?,
        (None, Some(u)) => api
            .list(&Selector::default())
            .await?
            .into_iter()
            .find(|w| w.metadata.uid.as_deref() == Some(u.as_str())),
        (None, None) => None,
    };
    let Some(worker) = worker else {
        let what = name.map_or_else(
            || format!("uid {}", uuid.unwrap_or_default()),
            |n| format!("name {n:?}"),
        );
        return Err(CliError::Usage(format!(
            "no worker with {what}; see `decnet swarm list`"
        )));
    };
    let wname = worker.metadata.name.clone().unwrap_or_default();
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(CliError::Usage(format!(
                "decommissioning {wname} needs confirmation: add --yes"
            )));
        }
        eprint!(
            "Decommission worker {wname} ({}): {}revoke its certificate? [y/N] ",
            worker.spec.address,
            if keep_deckies {
                ""
            } else {
                "tear down its deckies and "
            }
        );
        let mut answer = String::new();
        std::io::stdin()
            .read_line(&mut answer)
            .map_err(|e| CliError::Other(e.to_string()))?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Err(CliError::Reported("aborted".into()));
        }
    }
    if keep_deckies {
        let mut next = worker.clone();
        next.metadata
            .annotations
            .get_or_insert_default()
            .insert(KEEP_DECKIES.into(), "true".into());
        api.replace(&next).await?;
    }
    match api.delete(&wname).await {
        Ok(_) | Err(StoreError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(Duration::from_millis(120));
    bar.set_message(format!("decommissioning {wname}"));
    let deadline = Instant::now() + timeout;
    loop {
        match api.get_opt(&wname).await? {
            None => {
                bar.finish_with_message(format!(
                    "{wname} decommissioned: deckies torn down, certificate revoked"
                ));
                return Ok(());
            }
            Some(w) => bar.set_message(format!("decommissioning {wname} ({})", phase(&w))),
        }
        if Instant::now() > deadline {
            bar.abandon();
            return Err(CliError::Other(format!(
                "{wname} is marked for deletion but the controller has not finished; is `decnet controller` running?"
            )));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
