//! `decnet decky …`: what runs inside decky containers, and the image they run from.

use clap::{Args, Subcommand};

use std::time::Duration;

use crate::api::{Personality, Service};
use crate::cli::CliError;
use crate::decky::serve::ServeOptions;
use crate::decky::services::limits::Limits;

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
    /// Run fake services that log every interaction as RFC 5424 lines on stdout.
    Serve(ServeArgs),
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

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Service to run on its standard port; repeat (or comma-separate) for several in one
    /// process.
    #[arg(long = "service", required = true, value_delimiter = ',', value_parser = parse_service)]
    pub services: Vec<Service>,
    /// Decky name: the HOSTNAME of every event line.
    #[arg(long)]
    pub decky: String,
    /// Listen port (only with a single service; default: its standard port).
    #[arg(long)]
    pub port: Option<u16>,
    /// Added to each standard port (several services without privileges, e.g. 2000 → 2022).
    #[arg(long, default_value_t = 0)]
    pub port_offset: u16,
    /// Listen address.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: std::net::IpAddr,
    /// Host name shown in prompts and banners (default: the decky name).
    #[arg(long)]
    pub hostname: Option<String>,
    /// SSH identification string, e.g. `SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6`.
    #[arg(long)]
    pub ssh_banner: Option<String>,
    /// HTTP `Server` header, e.g. `Apache/2.4.52 (Ubuntu)`.
    #[arg(long)]
    pub http_server: Option<String>,
    /// FTP greeting after `220 `, e.g. `(vsFTPd 3.0.5)`.
    #[arg(long)]
    pub ftp_banner: Option<String>,
    /// OS string used in banners and prompts, e.g. `Ubuntu 22.04.4 LTS`.
    #[arg(long)]
    pub os: Option<String>,
    /// Connections served at once by this process; more are closed immediately.
    #[arg(long, default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,
    /// Seconds a client may stay silent (or take to finish a line) before it is dropped.
    #[arg(long, default_value_t = Limits::default().idle_timeout.as_secs())]
    pub idle_timeout: u64,
    /// Longest lifetime of one connection, in seconds.
    #[arg(long, default_value_t = Limits::default().session_timeout.as_secs())]
    pub session_timeout: u64,
    /// Delay before an SSH authentication failure is answered, in milliseconds.
    #[arg(long, default_value_t = Limits::default().ssh_auth_delay.as_millis() as u64)]
    pub ssh_auth_delay_ms: u64,
}

impl ServeArgs {
    pub fn options(self) -> ServeOptions {
        let mut o = ServeOptions::new(self.services, self.decky);
        o.bind = self.bind;
        o.port = self.port;
        o.port_offset = self.port_offset;
        o.personality = Personality {
            hostname: self.hostname,
            ssh_banner: self.ssh_banner,
            http_server: self.http_server,
            ftp_banner: self.ftp_banner,
            os: self.os,
        };
        o.limits = Limits {
            max_connections: self.max_connections,
            idle_timeout: Duration::from_secs(self.idle_timeout.max(1)),
            session_timeout: Duration::from_secs(self.session_timeout.max(1)),
            ssh_auth_delay: Duration::from_millis(self.ssh_auth_delay_ms),
            ..Limits::default()
        };
        o
    }
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
        DeckyCommand::Serve(args) => crate::decky::serve::run(args.options())
            .await
            .map_err(|e| CliError::Other(format!("decky serve: {e}"))),
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
