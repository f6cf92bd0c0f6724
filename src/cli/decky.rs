//! `decnet decky …`: what runs inside decky containers, and the image they run from.

use clap::{Args, Subcommand};

use crate::api::Service;
use crate::cli::CliError;

#[derive(Args, Debug)]
pub struct DeckyArgs {
    #[command(subcommand)]
    pub command: DeckyCommand,
}

#[derive(Subcommand, Debug)]
pub enum DeckyCommand {
    /// Hold a decky's network namespace until SIGTERM (entrypoint of the base container).
    Base {
        /// Decky name (informational).
        #[arg(long)]
        decky: Option<String>,
    },
    /// Run one fake service (minimal listener until issue #7 brings the full services).
    Serve {
        #[arg(long, value_parser = parse_service)]
        service: Service,
        /// Decky name: the HOSTNAME of every event line.
        #[arg(long)]
        decky: String,
        /// Listen port (default: the service's standard port).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Build (or find) the local decky image from this binary and print its tag.
    Image,
}

fn parse_service(s: &str) -> Result<Service, String> {
    Service::ALL
        .into_iter()
        .find(|x| x.as_str() == s)
        .ok_or_else(|| {
            let all: Vec<&str> = Service::ALL.iter().map(|s| s.as_str()).collect();
            format!("unknown service {s:?}; one of: {}", all.join(", "))
        })
}

pub async fn run(args: DeckyArgs) -> Result<(), CliError> {
    match args.command {
        DeckyCommand::Base { .. } => crate::decky::base::run()
            .await
            .map_err(|e| CliError::Other(format!("decky base: {e}"))),
        DeckyCommand::Serve {
            service,
            decky,
            port,
        } => crate::decky::serve::run(service, decky, port)
            .await
            .map_err(|e| CliError::Other(format!("decky serve {service}: {e}"))),
        DeckyCommand::Image => {
            let exe = std::env::current_exe()
                .map_err(|e| CliError::Other(format!("cannot locate this binary: {e}")))?;
            let executor = crate::agent::Executor::connect(exe)
                .await
                .map_err(|e| CliError::Other(e.to_string()))?;
            let tag = executor
                .ensure_image()
                .await
                .map_err(|e| CliError::Other(e.to_string()))?;
            println!("{tag}");
            Ok(())
        }
    }
}
