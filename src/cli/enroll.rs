//! `decnet swarm enroll`. STUB: filled in by the enrollment work.

use std::path::{Path, PathBuf};

use clap::Args;

use super::CliError;

#[derive(Args, Debug)]
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
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Print a one-shot `curl … | sudo bash` command instead of writing files.
    #[arg(long)]
    pub bootstrap: bool,
}

pub async fn run(home: &Path, args: EnrollArgs) -> Result<(), CliError> {
    let _ = (home, args);
    Err(CliError::Other("swarm enroll: not implemented yet".into()))
}
