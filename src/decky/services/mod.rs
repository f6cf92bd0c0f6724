//! The fake services a decky runs, each logging every interaction as RFC 5424 lines.
//!
//! Shared pieces: [`event`] (event → line), [`emitter`] (the single stdout writer),
//! [`limits`] (connection cap, timeouts), [`line_reader`] (capped lines), [`dialogue`]
//! (pure line protocols + their driver), [`persona`] (banners from the shard's personality),
//! [`encoding`] (base64/form decoding), [`killswitch`] (fail a socket owned by another task). One file per protocol: [`ssh`] (+ [`hassh`]),
//! [`http`] (+ [`http_parse`]), [`ftp`], [`telnet`], [`smtp`], [`redis`], [`mysql`].
//!
//! [`accept_loop`] is the only place connections enter: it applies the process-wide cap
//! (excess connections are closed at once), stamps a session, logs `connection`, runs the
//! protocol under the session timeout and logs `disconnect`. A protocol error only ends its
//! own connection.

pub mod dialogue;
pub mod emitter;
pub mod encoding;
pub mod error;
pub mod event;
pub mod ftp;
pub mod hassh;
pub mod http;
pub mod http_parse;
pub mod killswitch;
pub mod limits;
pub mod line_reader;
pub mod mysql;
pub mod persona;
pub mod redis;
pub mod smtp;
pub mod ssh;
pub mod telnet;

#[cfg(test)]
mod fuzz;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};

use crate::api::Service;
use emitter::Emitter;
use error::{EndReason, ServiceError};
use event::{Event, Session, kind};
use limits::{ConnectionGate, Limits};
use persona::Persona;

/// Everything a connection handler needs; shared by all services of the process.
pub struct ServiceCtx {
    pub decky: Arc<str>,
    pub persona: Persona,
    pub limits: Limits,
    pub emitter: Emitter,
    pub gate: ConnectionGate,
    ssh: OnceLock<Arc<russh::server::Config>>,
}

impl ServiceCtx {
    pub fn new(decky: &str, persona: Persona, limits: Limits, emitter: Emitter) -> Self {
        ServiceCtx {
            decky: Arc::from(decky),
            gate: ConnectionGate::new(limits.max_connections),
            persona,
            limits,
            emitter,
            ssh: OnceLock::new(),
        }
    }

    /// The SSH server config, host key generated on first use.
    pub fn ssh_config(&self) -> Result<Arc<russh::server::Config>, ServiceError> {
        if let Some(c) = self.ssh.get() {
            return Ok(c.clone());
        }
        let c = ssh::config(&self.persona, &self.limits)?;
        Ok(self.ssh.get_or_init(|| c).clone())
    }
}

/// Accepts connections for `service` until the listener fails for good.
pub async fn accept_loop(listener: TcpListener, service: Service, ctx: Arc<ServiceCtx>) {
    let mut refused: u64 = 0;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning, then keep serving.
                tracing::warn!(%service, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(permit) = ctx.gate.try_enter() else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(%service, refused, "connection cap reached, closing new connections");
            }
            drop(stream);
            continue;
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            handle(stream, peer, service, &ctx).await;
        });
    }
}

/// One connection, start to end, with its `connection` and `disconnect` events.
async fn handle(stream: TcpStream, peer: std::net::SocketAddr, service: Service, ctx: &ServiceCtx) {
    let local = stream.local_addr().unwrap_or(peer);
    let _ = stream.set_nodelay(true);
    let session = Session::new(service, ctx.decky.clone(), peer, local);
    let started = Instant::now();
    ctx.emitter
        .emit(&session, &Event::new(kind::CONNECTION))
        .await;
    let run = dispatch(stream, service, &session, ctx);
    let (reason, error) = match tokio::time::timeout(ctx.limits.session_timeout, run).await {
        Err(_) => (EndReason::SessionTimeout, None),
        Ok(Ok(r)) => (r, None),
        Ok(Err(ServiceError::IdleTimeout)) => (EndReason::IdleTimeout, None),
        Ok(Err(e)) => {
            tracing::debug!(%service, session = %session.id, error = %e, "connection ended with an error");
            (EndReason::Error, Some(e.to_string()))
        }
    };
    let mut e = Event::new(kind::DISCONNECT)
        .with("reason", reason.as_str())
        .with("duration_ms", started.elapsed().as_millis().to_string());
    if let Some(err) = error {
        e = e.with("error", err);
    }
    ctx.emitter.emit(&session, &e).await;
}

async fn dispatch(
    stream: TcpStream,
    service: Service,
    session: &Session,
    ctx: &ServiceCtx,
) -> Result<EndReason, ServiceError> {
    let p = &ctx.persona;
    match service {
        Service::Ssh => ssh::run(stream, session, ctx).await,
        Service::Http => http::run(stream, session, ctx).await,
        Service::Ftp => dialogue::run(stream, ftp::Ftp::new(p), session, ctx).await,
        Service::Telnet => dialogue::run(stream, telnet::Telnet::new(p), session, ctx).await,
        Service::Smtp => dialogue::run(stream, smtp::Smtp::new(p), session, ctx).await,
        Service::Redis => dialogue::run(stream, redis::Redis::new(), session, ctx).await,
        Service::Mysql => mysql::run(stream, session, ctx).await,
    }
}
