//! `decnet decky serve --service S [--service S2 …] --decky D`: runs fake services on their
//! standard ports (see [`crate::decky::services`]) and writes one RFC 5424 line per event on
//! stdout until SIGTERM/SIGINT. Several services can share one process (one runtime, one
//! connection cap, one writer), which is what keeps a decky's memory small.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::api::{Personality, Service};
use crate::decky::services::emitter::Emitter;
use crate::decky::services::limits::Limits;
use crate::decky::services::persona::Persona;
use crate::decky::services::{ServiceCtx, accept_loop};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("no --service given")]
    NoService,
    #[error("--port applies to one service; {0} were given (each uses its standard port)")]
    PortWithManyServices(usize),
    #[error("cannot listen for {service} on {addr}: {source} (is another process using it?)")]
    Bind {
        service: Service,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("--port-offset {0} pushes a standard port past 65535")]
    PortOffset(u16),
    #[error("cannot start the event writer: {0}")]
    Writer(std::io::Error),
    #[error("cannot install signal handlers: {0}")]
    Signal(std::io::Error),
}

#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub services: Vec<Service>,
    pub decky: String,
    pub bind: IpAddr,
    /// Only with a single service: listen here instead of its standard port.
    pub port: Option<u16>,
    /// Added to every standard port (run several services unprivileged, e.g. 2022/2080).
    pub port_offset: u16,
    pub personality: Personality,
    pub limits: Limits,
}

impl ServeOptions {
    pub fn new(services: Vec<Service>, decky: impl Into<String>) -> Self {
        ServeOptions {
            services,
            decky: decky.into(),
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: None,
            port_offset: 0,
            personality: Personality::default(),
            limits: Limits::default(),
        }
    }

    pub fn context(&self, emitter: Emitter) -> Arc<ServiceCtx> {
        let persona = Persona::new(&self.decky, &self.personality);
        Arc::new(ServiceCtx::new(
            &self.decky,
            persona,
            self.limits.clone(),
            emitter,
        ))
    }

    /// Binds every service's listener (all or nothing).
    pub async fn bind(&self) -> Result<Vec<(TcpListener, Service)>, ServeError> {
        let mut seen = std::collections::BTreeSet::new();
        let mut services = self.services.clone();
        services.retain(|s| seen.insert(*s));
        if services.is_empty() {
            return Err(ServeError::NoService);
        }
        if self.port.is_some() && services.len() > 1 {
            return Err(ServeError::PortWithManyServices(services.len()));
        }
        let mut out = Vec::with_capacity(services.len());
        for service in services {
            let port = match self.port {
                Some(p) => p,
                None => service
                    .port()
                    .checked_add(self.port_offset)
                    .ok_or(ServeError::PortOffset(self.port_offset))?,
            };
            let addr = SocketAddr::new(self.bind, port);
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind {
                    service,
                    addr,
                    source,
                })?;
            out.push((l, service));
        }
        Ok(out)
    }
}

/// Starts an accept loop per listener (in-process use: tests, benches).
pub fn spawn(listeners: Vec<(TcpListener, Service)>, ctx: Arc<ServiceCtx>) -> Vec<JoinHandle<()>> {
    listeners
        .into_iter()
        .map(|(l, s)| tokio::spawn(accept_loop(l, s, ctx.clone())))
        .collect()
}

/// Serves until SIGTERM or SIGINT.
pub async fn run(opts: ServeOptions) -> Result<(), ServeError> {
    use tokio::signal::unix::{SignalKind, signal};
    let listeners = opts.bind().await?;
    let emitter = Emitter::stdout().map_err(ServeError::Writer)?;
    let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Signal)?;
    for (l, s) in &listeners {
        tracing::info!(service = %s, addr = ?l.local_addr().ok(), decky = %opts.decky, "serving");
    }
    let tasks = spawn(listeners, opts.context(emitter));
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    for t in tasks {
        t.abort();
    }
    Ok(())
}
