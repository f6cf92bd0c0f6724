//! The worker's forwarder: ships the local log file to the master's listener
//! over mTLS, resuming from the master's acknowledgements, reconnecting with
//! capped exponential backoff.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;

use super::fwstate::ForwarderState;
use super::tailer::{TailEvent, Tailer};
use super::{LogError, Result, ack};
use crate::controller::Backoff;
use crate::syslog::FrameDecoder;

#[derive(Debug, Clone)]
pub struct ForwarderConfig {
    pub master_host: String,
    pub master_port: u16,
    pub log_path: PathBuf,
    pub state_db: PathBuf,
    /// Longest line shipped whole; longer ones are cut (the master's frame
    /// limit must be above this).
    pub max_line: usize,
    /// Cap of the reconnect backoff.
    pub max_backoff: Duration,
}

impl ForwarderConfig {
    pub fn new(master_host: &str, master_port: u16, log_path: PathBuf, state_db: PathBuf) -> Self {
        ForwarderConfig {
            master_host: master_host.to_string(),
            master_port,
            log_path,
            state_db,
            max_line: 60 * 1024,
            max_backoff: Duration::from_secs(30),
        }
    }
}

enum Ended {
    Shutdown,
}

/// Runs until `shutdown` resolves. Connection failures are retried forever.
pub async fn run(
    cfg: ForwarderConfig,
    tls: Arc<rustls::ClientConfig>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let mut state = ForwarderState::open(&cfg.state_db).await?;
    let backoff = Backoff::new(Duration::from_millis(250), cfg.max_backoff);
    tokio::pin!(shutdown);
    loop {
        let started = Instant::now();
        let r = session(&cfg, tls.clone(), &mut state, &mut shutdown).await;
        if let Err(e) = state.flush().await {
            tracing::error!(error = %e, "saving forwarder state failed");
        }
        match r {
            Ok(Ended::Shutdown) => return Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, master = %cfg.master_host, "log shipping interrupted")
            }
        }
        if started.elapsed() > Duration::from_secs(30) {
            backoff.reset("master");
        }
        let wait = backoff.next("master");
        tracing::info!(?wait, "reconnecting");
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

type Chunk = (Vec<u8>, Vec<TailEvent>);

async fn session(
    cfg: &ForwarderConfig,
    tls: Arc<rustls::ClientConfig>,
    state: &mut ForwarderState,
    shutdown: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> Result<Ended> {
    let addr = (cfg.master_host.as_str(), cfg.master_port);
    let tcp = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
        .await
        .map_err(|_| LogError::Protocol("connect timed out".into()))??;
    let _ = tcp.set_nodelay(true);
    let name = crate::pki::server_name(&cfg.master_host)?;
    let stream = tokio::time::timeout(
        Duration::from_secs(10),
        TlsConnector::from(tls).connect(name, tcp),
    )
    .await
    .map_err(|_| LogError::Protocol("TLS handshake timed out".into()))?
    .map_err(|e| LogError::Protocol(format!("TLS handshake with the master failed: {e}")))?;
    tracing::info!(master = %cfg.master_host, "connected to the master");
    let (mut rd, mut wr) = tokio::io::split(stream);

    // Read the file on a thread of its own; chunks flow with backpressure.
    let (tx, mut rx) = mpsc::channel::<Chunk>(4);
    let mut tailer = Tailer::new(&cfg.log_path, cfg.max_line, &state.resume_points())?;
    let reader = std::thread::spawn(move || -> std::io::Result<()> {
        loop {
            let mut out = Vec::with_capacity(256 * 1024);
            tailer.fill(&mut out, 256 * 1024)?;
            let events = tailer.take_events();
            if out.is_empty() && events.is_empty() {
                if tx.is_closed() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            if tx.blocking_send((out, events)).is_err() {
                return Ok(());
            }
        }
    });

    let mut dec = FrameDecoder::with_max_frame_len(256);
    let mut buf = vec![0u8; 4096];
    let mut flush = tokio::time::interval(Duration::from_millis(200));
    let result = loop {
        tokio::select! {
            _ = shutdown.as_mut() => break Ok(Ended::Shutdown),
            chunk = rx.recv() => {
                let Some((bytes, events)) = chunk else {
                    break Err(LogError::Protocol("log reader stopped".into()));
                };
                let mut must_persist = false;
                for ev in &events {
                    must_persist |= state.apply_event(ev);
                }
                // A file's entry must be durable before any of its lines
                // leaves: after a crash it is the only way to find the file
                // again once it has been rotated away.
                if must_persist {
                    state.flush().await?;
                }
                // Flush too: when the socket is full, TLS keeps up to 64 KiB
                // of records buffered, and without another write or a flush
                // they would wait there forever (the file's last lines never
                // reached the master).
                if !bytes.is_empty()
                    && let Err(e) = async {
                        wr.write_all(&bytes).await?;
                        wr.flush().await
                    }
                    .await
                {
                    break Err(LogError::Protocol(format!("sending to the master: {e}")));
                }
            }
            n = rd.read(&mut buf) => match n {
                Ok(0) => break Err(LogError::Protocol("the master closed the connection".into())),
                Ok(n) => {
                    dec.feed(&buf[..n]);
                    loop {
                        match dec.next_frame() {
                            Ok(Some(f)) => match ack::decode(f) {
                                Some((file_id, next)) => state.ack(file_id, next),
                                None => tracing::warn!("unexpected frame from the master ignored"),
                            },
                            Ok(None) => break,
                            Err(e) => {
                                tracing::warn!(error = %e, "bad ack framing");
                                break;
                            }
                        }
                    }
                    if dec.error().is_some() {
                        break Err(LogError::Protocol("bad ack stream from the master".into()));
                    }
                }
                Err(e) => break Err(LogError::Protocol(format!("reading acks: {e}"))),
            },
            _ = flush.tick() => state.flush().await?,
        }
    };
    drop(rx);
    let _ = tokio::task::spawn_blocking(move || reader.join()).await;
    let _ = wr.shutdown().await;
    result
}
