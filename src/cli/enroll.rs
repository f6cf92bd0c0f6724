//! `decnet swarm enroll`: a thin wrapper over [`crate::enroll`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;

use super::CliError;
use crate::enroll::{self, BootstrapOptions, EnrollError, WorkerRequest};
use crate::master::MasterTls;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    decnet swarm enroll --name w1 --address 10.0.0.5 --out-dir ./w1-bundle\n  \
    decnet swarm enroll --name w2 --address 10.0.0.6 --label zone=dmz --bootstrap\n\n\
    With --bootstrap, only the one-line command is printed on stdout; run it on the worker \
    before the token expires (Swarm spec.ca.enrollmentTokenTtlSeconds, default 300 s).")]
pub struct EnrollArgs {
    /// Worker name (DNS label); becomes the certificate CN.
    #[arg(long)]
    pub name: String,
    /// Address the master uses to reach the worker's agent (IP or DNS name).
    #[arg(long)]
    pub address: String,
    /// Extra SANs for the worker certificate (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub sans: Vec<String>,
    /// Where to write ca.crt, worker.crt, worker.key.
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "bootstrap",
        conflicts_with = "bootstrap"
    )]
    pub out_dir: Option<PathBuf>,
    /// Print a one-shot `curl … | sudo bash` command instead of writing files.
    #[arg(long)]
    pub bootstrap: bool,
    /// Agent port on the worker [default: the Swarm's agentPort, else 8765].
    #[arg(long, value_name = "PORT")]
    pub agent_port: Option<u16>,
    /// Label of the Worker resource (repeatable), matched by nodeSelectors.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// With --bootstrap: master address in the URL [default: the Swarm's masterAddress].
    #[arg(long, value_name = "ADDR", requires = "bootstrap")]
    pub master_address: Option<String>,
    /// With --bootstrap: enrollment port in the URL [default: the Swarm's enrollPort, else 8443].
    #[arg(long, value_name = "PORT", requires = "bootstrap")]
    pub enroll_port: Option<u16>,
}

impl From<EnrollError> for CliError {
    fn from(e: EnrollError) -> Self {
        match e {
            EnrollError::AlreadyExists { .. }
            | EnrollError::Invalid(_)
            | EnrollError::NoMasterAddress => CliError::Usage(e.to_string()),
            other => CliError::Other(other.to_string()),
        }
    }
}

pub async fn run(home: &Path, args: EnrollArgs) -> Result<(), CliError> {
    let mut labels = BTreeMap::new();
    for l in &args.labels {
        let (k, v) = enroll::parse_label(l)?;
        labels.insert(k, v);
    }
    let req = WorkerRequest {
        name: args.name.clone(),
        address: args.address.clone(),
        sans: args.sans.clone(),
        agent_port: args.agent_port,
        labels,
    };
    let master = MasterTls::load(home, super::open_store(home).await?).await?;

    if args.bootstrap {
        let opts = BootstrapOptions {
            master_address: args.master_address,
            enroll_port: args.enroll_port,
        };
        let b = enroll::bootstrap(&master, &req, &opts).await?;
        eprintln!(
            "worker {:?} created (phase Pending, certificate sha256 {}).\n\
             Run this on the worker within {} s (it works once; the master's enrollment \
             endpoint must be running):\n",
            req.name, b.fingerprint, b.ttl_seconds
        );
        println!("{}", b.command);
        return Ok(());
    }

    let Some(dir) = args.out_dir else {
        return Err(CliError::Usage(
            "--out-dir DIR or --bootstrap is required".into(),
        ));
    };
    let e = enroll::enroll(&master, &req, &dir).await?;
    println!(
        "worker {:?} enrolled (certificate sha256 {})\n\
         bundle written to {}: ca.crt, worker.crt, worker.key (0600)\n\
         copy it to the worker (e.g. /etc/decnet/agent, keep the key private) and start the agent:\n  \
         decnet agent --agent-dir /etc/decnet/agent --host {} --port {}",
        req.name,
        e.fingerprint,
        e.out_dir.display(),
        enroll::script::sh_word(&e.worker.spec.address),
        e.worker.spec.agent_port,
    );
    Ok(())
}
