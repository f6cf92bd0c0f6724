//! `decnet swarm …`: thin views over the Worker resources (enroll, list,
//! check, decommission).

use std::path::Path;

use clap::{Args, Subcommand};

use super::CliError;
use super::enroll::EnrollArgs;

#[derive(Args, Debug)]
pub struct SwarmArgs {
    #[command(subcommand)]
    pub command: SwarmCommand,
}

#[derive(Subcommand, Debug)]
pub enum SwarmCommand {
    /// Issue a worker's certificate bundle and create its Worker resource.
    Enroll(EnrollArgs),
}

pub async fn run(home: &Path, args: SwarmArgs) -> Result<(), CliError> {
    match args.command {
        SwarmCommand::Enroll(a) => super::enroll::run(home, a).await,
    }
}
