use clap::Parser;
use tracing_subscriber::EnvFilter;

use decnet::cli::{self, Cli, CliError};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // One crypto provider for the whole process (see ARCHITECTURE.md).
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("DECNET_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // A decky is I/O bound and there are many per host: one thread keeps each one small (no
    // worker threads, stacks or allocator arenas per core).
    let mut builder = if matches!(cli.command, cli::Command::Decky(_)) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(cli::run(cli)) {
        match &e {
            CliError::Reported(summary) => eprintln!("{summary}"),
            other => eprintln!("error: {other}"),
        }
        std::process::exit(e.exit_code());
    }
}
