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
    /// Test helper: print COUNT numbered RFC 5424 event lines on stdout.
    #[command(hide = true)]
    Emit {
        #[arg(long)]
        count: u64,
        /// Marks the lines (part of the message text).
        #[arg(long)]
        tag: String,
        /// Pause between lines, in milliseconds.
        #[arg(long, default_value_t = 0)]
        every_ms: u64,
        /// Keep running after the last line (until SIGTERM).
        #[arg(long)]
        hold: bool,
    },
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
        DeckyCommand::Emit {
            count,
            tag,
            every_ms,
            hold,
        } => {
            emit(count, &tag, every_ms).await;
            if hold {
                crate::cli::master_tls::termination().await;
            }
            Ok(())
        }
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

/// Numbered event lines (`<tag> <i>` in the message) for log-plane tests.
async fn emit(count: u64, tag: &str, every_ms: u64) {
    use crate::syslog::{Facility, Severity, SyslogMessage};
    use std::io::Write;
    for i in 0..count {
        let line = SyslogMessage::builder(Facility::Local0, Severity::Notice)
            .hostname("emit")
            .app_name("emit")
            .msgid("test")
            .timestamp_now()
            .msg_bytes(format!("{tag} {i}"))
            .build()
            .to_bytes();
        let mut out = std::io::stdout().lock();
        let _ = out
            .write_all(&line)
            .and_then(|_| out.write_all(b"\n"))
            .and_then(|_| out.flush());
        drop(out);
        if every_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(every_ms)).await;
        }
    }
}
