//! The master's RFC 5425 listener: mTLS (agent certificates only), octet
//! counted frames, one writer that commits batches exactly once.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;

use super::dedup::{HighWater, Verdict};
use super::event_writer::{Commit, EventWriter};
use super::eventdb::{EventDb, NewEvent, timestamp_text};
use super::record::{EventRecord, parse_line};
use super::{LogError, Result, ack};
use crate::pki::{PeerIdentity, RoleKind};
use crate::syslog::{FrameDecoder, Payload, decode_payload};

#[derive(Debug, Clone)]
pub struct ListenerConfig {
    pub addr: SocketAddr,
    /// Verbatim forensic log: every stored line, exactly once, as received.
    pub log_path: PathBuf,
    /// Parsed events as JSON lines (for SIEM shippers), optional.
    pub json_path: Option<PathBuf>,
    pub db_path: PathBuf,
    pub max_frame: usize,
    /// fsync the files before each commit (survives power loss, slower).
    pub fsync: bool,
    pub max_connections: usize,
}

/// Lines read from one connection, handed to the writer.
struct Batch {
    worker: Arc<str>,
    lines: Vec<Line>,
    acks: mpsc::UnboundedSender<(u64, u64)>,
}

/// One received line, already parsed: parsing runs in the connection tasks
/// (in parallel) so the single writer only judges and stores.
struct Line {
    /// (file id, offset) of enveloped lines; `None` for bare senders.
    origin: Option<(u64, u64)>,
    raw: Vec<u8>,
    record: EventRecord,
}

impl Line {
    fn new(origin: Option<(u64, u64)>, raw: &[u8]) -> Line {
        Line {
            origin,
            raw: raw.to_vec(),
            record: parse_line(raw),
        }
    }
}

/// A running listener.
pub struct Listener {
    pub local_addr: SocketAddr,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl Listener {
    /// Binds and starts serving; runs until `shutdown` resolves.
    pub async fn start(
        cfg: ListenerConfig,
        tls: Arc<rustls::ServerConfig>,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<Listener> {
        let db = EventDb::open(&cfg.db_path).await?;
        let writer = Writer::open(&cfg, &db).await?;
        drop(db);
        let tcp = TcpListener::bind(cfg.addr)
            .await
            .map_err(|e| LogError::File {
                path: cfg.addr.to_string(),
                source: e,
            })?;
        let local_addr = tcp.local_addr()?;
        tracing::info!(%local_addr, "log listener up");
        let task = tokio::spawn(serve(tcp, TlsAcceptor::from(tls), cfg, writer, shutdown));
        Ok(Listener { local_addr, task })
    }

    pub async fn wait(self) -> Result<()> {
        self.task
            .await
            .map_err(|e| LogError::Protocol(format!("listener task failed: {e}")))?
    }
}

async fn serve(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    cfg: ListenerConfig,
    mut writer: Writer,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (tx, mut rx) = mpsc::channel::<Batch>(256);
    let limit = Arc::new(Semaphore::new(cfg.max_connections));
    let ids = AtomicU64::new(0);
    // The writer is synchronous (files + SQLite) on a thread of its own, so
    // commits never stall the runtime that reads and parses connections.
    let writer_thread = std::thread::Builder::new()
        .name("event-writer".into())
        .spawn(move || {
            let mut pending = Vec::new();
            while let Some(first) = rx.blocking_recv() {
                pending.push(first);
                // Up to ~64 reads (~20k lines) per commit: big enough to
                // amortize the transaction, small enough to stay in cache.
                while pending.len() < 64
                    && let Ok(b) = rx.try_recv()
                {
                    pending.push(b);
                }
                if let Err(e) = writer.commit(&mut pending) {
                    // Nothing was acked: senders resend after reconnecting.
                    tracing::error!(error = %e, "storing a batch failed; its lines will be resent");
                }
                pending.clear();
            }
        })?;
    tokio::pin!(shutdown);
    loop {
        let (sock, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = tcp.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection cap reached; refusing");
            continue;
        };
        let id = ids.fetch_add(1, Ordering::Relaxed);
        let (acceptor, tx, max_frame) = (acceptor.clone(), tx.clone(), cfg.max_frame);
        let span = tracing::info_span!("syslog_conn", id, %peer);
        tokio::spawn(
            async move {
                if let Err(e) = connection(sock, acceptor, tx, max_frame).await {
                    tracing::warn!(reason = %e, "connection dropped");
                }
                drop(permit);
            }
            .instrument(span),
        );
    }
    drop(tx);
    // In-flight connections keep their senders; the writer ends when they do.
    let joined = tokio::task::spawn_blocking(move || writer_thread.join());
    tokio::time::timeout(Duration::from_secs(5), joined)
        .await
        .ok();
    Ok(())
}

async fn connection(
    sock: TcpStream,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<Batch>,
    max_frame: usize,
) -> std::result::Result<(), String> {
    let _ = sock.set_nodelay(true);
    let tls = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(sock))
        .await
        .map_err(|_| "TLS handshake timed out".to_string())?
        .map_err(|e| format!("TLS handshake refused: {e}"))?;
    let peer = PeerIdentity::from_connection(tls.get_ref().1).map_err(|e| e.to_string())?;
    // The verifier already admitted only agents; the worker's name comes
    // from its certificate, never from what the messages claim.
    let worker: Arc<str> = match (peer.role.kind(), peer.role.worker()) {
        (RoleKind::Agent, Some(w)) => Arc::from(w.as_str()),
        _ => return Err(format!("peer {} is not an agent", peer.common_name)),
    };
    tracing::info!(worker = %worker, "worker connected");
    let (mut rd, mut wr) = tokio::io::split(tls);
    let (ack_tx, mut ack_rx) = mpsc::unbounded_channel::<(u64, u64)>();
    let acker = tokio::spawn(async move {
        let mut buf = Vec::new();
        while let Some(first) = ack_rx.recv().await {
            // Coalesce: only the newest offset per file matters.
            let mut latest: HashMap<u64, u64> = HashMap::from([first]);
            while let Ok((f, o)) = ack_rx.try_recv() {
                let e = latest.entry(f).or_insert(o);
                *e = (*e).max(o);
            }
            buf.clear();
            for (f, o) in latest {
                ack::encode(f, o, &mut buf);
            }
            if wr.write_all(&buf).await.is_err() || wr.flush().await.is_err() {
                break;
            }
        }
    });
    let mut dec = FrameDecoder::with_max_frame_len(max_frame);
    let mut buf = vec![0u8; 64 * 1024];
    let result = loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) => break Err(format!("read: {e}")),
        };
        dec.feed(&buf[..n]);
        let mut lines = Vec::new();
        let err = loop {
            match dec.next_frame() {
                Ok(Some(frame)) => match decode_payload(frame) {
                    Ok(Payload::Enveloped(l)) => {
                        lines.push(Line::new(Some((l.file_id, l.offset)), l.line))
                    }
                    // Plain RFC 5425 senders (rsyslog omfwd): no origin, so
                    // no dedup and no ack; many end the message with LF.
                    Ok(Payload::Bare(l)) => lines.push(Line::new(None, trim_line_end(l))),
                    Err(e) => break Some(format!("bad frame payload: {e}")),
                },
                Ok(None) => break None,
                Err(e) => break Some(format!("bad framing: {e}")),
            }
        };
        // Complete frames before a framing error are still stored; the rest
        // of the stream is dropped (the sender resends from its last ack).
        if !lines.is_empty() {
            let batch = Batch {
                worker: worker.clone(),
                lines,
                acks: ack_tx.clone(),
            };
            if tx.send(batch).await.is_err() {
                break Err("listener shutting down".into());
            }
        }
        if let Some(e) = err {
            break Err(e);
        }
    };
    drop(ack_tx);
    let _ = tokio::time::timeout(Duration::from_secs(2), acker).await;
    result
}

/// The single writer: files + database, exactly once.
struct Writer {
    db: EventWriter,
    hw: HighWater,
    log: AppendFile,
    json: Option<AppendFile>,
    fsync: bool,
}

struct AppendFile {
    key: String,
    file: File,
    /// Bytes written so far.
    size: u64,
    /// Bytes covered by a committed transaction.
    committed: u64,
}

impl AppendFile {
    /// Opens for append and cuts off anything past the committed size: bytes
    /// written before a crash but never committed will be resent.
    async fn open(path: &Path, db: &EventDb) -> Result<AppendFile> {
        let key = path.display().to_string();
        let fail = |e| LogError::File {
            path: key.clone(),
            source: e,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(fail)?;
        let actual = file.metadata().map_err(fail)?.len();
        let size = match db.sink_size(&key).await? {
            Some(committed) if actual > committed => {
                tracing::warn!(path = %key, cut = actual - committed, "cutting uncommitted tail");
                file.set_len(committed).map_err(fail)?;
                committed
            }
            Some(committed) if actual < committed => {
                tracing::warn!(path = %key, "file is shorter than committed (rotated or truncated by hand); continuing");
                actual
            }
            _ => actual,
        };
        Ok(AppendFile {
            key,
            file,
            size,
            committed: size,
        })
    }
}

impl Writer {
    async fn open(cfg: &ListenerConfig, db: &EventDb) -> Result<Writer> {
        let hw = HighWater::from_committed(db.high_water_marks().await?);
        let log = AppendFile::open(&cfg.log_path, db).await?;
        let json = match &cfg.json_path {
            Some(p) => Some(AppendFile::open(p, db).await?),
            None => None,
        };
        Ok(Writer {
            db: EventWriter::open(&cfg.db_path)?,
            hw,
            log,
            json,
            fsync: cfg.fsync,
        })
    }

    fn commit(&mut self, batches: &mut [Batch]) -> Result<()> {
        let now = timestamp_text(jiff::Timestamp::now());
        let mut events = Vec::new();
        let mut log_bytes = Vec::new();
        let mut json_bytes = Vec::new();
        // (batch index, file id, next offset) after the last line per file.
        let mut acks: Vec<(usize, u64, u64)> = Vec::new();
        for (n, b) in batches.iter_mut().enumerate() {
            // The lines move into the statement; acks only need their ends.
            for l in std::mem::take(&mut b.lines) {
                if let Some((file_id, offset)) = l.origin {
                    let end = offset + l.raw.len() as u64 + 1;
                    match acks.iter_mut().find(|(i, f, _)| *i == n && *f == file_id) {
                        Some(a) => a.2 = end,
                        None => acks.push((n, file_id, end)),
                    }
                    if self.hw.judge(&b.worker, file_id, offset, l.raw.len()) == Verdict::Duplicate
                    {
                        continue;
                    }
                }
                log_bytes.extend_from_slice(&l.raw);
                log_bytes.push(b'\n');
                if self.json.is_some() {
                    json_line(&now, &b.worker, &l.record, &l.raw, &mut json_bytes);
                }
                events.push(NewEvent {
                    received_at: &now,
                    source_worker: &b.worker,
                    origin: l.origin,
                    raw: l.raw,
                    record: l.record,
                });
            }
        }
        let result = self.store(&events, &log_bytes, &json_bytes, &now);
        match result {
            Ok(()) => self.hw.commit(),
            Err(e) => {
                self.hw.rollback();
                self.rewind();
                return Err(e);
            }
        }
        // Acknowledge only after the commit.
        for (n, f, o) in acks {
            let _ = batches[n].acks.send((f, o));
        }
        Ok(())
    }

    fn store(
        &mut self,
        events: &[NewEvent<'_>],
        log_bytes: &[u8],
        json_bytes: &[u8],
        now: &str,
    ) -> Result<()> {
        append(&mut self.log, log_bytes, self.fsync)?;
        if let Some(j) = self.json.as_mut() {
            append(j, json_bytes, self.fsync)?;
        }
        let mut sinks = vec![(self.log.key.as_str(), self.log.size)];
        sinks.extend(self.json.as_ref().map(|j| (j.key.as_str(), j.size)));
        self.db.store(&Commit {
            events,
            high_water: self
                .hw
                .staged()
                .map(|((w, f), next)| ((w.as_str(), *f), *next))
                .collect(),
            sinks,
            now,
        })?;
        self.log.committed = self.log.size;
        if let Some(j) = self.json.as_mut() {
            j.committed = j.size;
        }
        Ok(())
    }

    /// After a failed commit the files must not keep the uncommitted bytes
    /// (they will be resent and written again).
    fn rewind(&mut self) {
        for f in std::iter::once(&mut self.log).chain(self.json.as_mut()) {
            if let Err(e) = f.file.set_len(f.committed) {
                tracing::error!(path = %f.key, error = %e, "cannot cut uncommitted bytes; they are cut on restart");
            }
            f.size = f.committed;
        }
    }
}

fn append(f: &mut AppendFile, bytes: &[u8], fsync: bool) -> Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    let start = f.size;
    let r = f
        .file
        .write_all(bytes)
        .and_then(|_| if fsync { f.file.sync_data() } else { Ok(()) });
    match r {
        Ok(()) => {
            f.size = start + bytes.len() as u64;
            Ok(())
        }
        Err(e) => {
            let _ = f.file.set_len(start);
            Err(LogError::File {
                path: f.key.clone(),
                source: e,
            })
        }
    }
}

/// A message without its trailing LF / CRLF (the stored line is one line of
/// the forensic log).
fn trim_line_end(l: &[u8]) -> &[u8] {
    let l = l.strip_suffix(b"\n").unwrap_or(l);
    l.strip_suffix(b"\r").unwrap_or(l)
}

fn json_line(
    now: &str,
    worker: &str,
    r: &super::record::EventRecord,
    raw: &[u8],
    out: &mut Vec<u8>,
) {
    let fields: serde_json::Value = r
        .fields
        .as_deref()
        .and_then(|f| serde_json::from_str(f).ok())
        .unwrap_or(serde_json::Value::Null);
    let v = serde_json::json!({
        "received_at": now,
        "source_worker": worker,
        "timestamp": r.timestamp,
        "decky": r.hostname,
        "service": r.app_name,
        "event": r.msgid,
        "src_ip": r.src_ip,
        "fields": fields,
        "msg": r.msg,
        "parse_error": r.parse_error,
        "raw": String::from_utf8_lossy(raw),
    });
    if serde_json::to_writer(&mut *out, &v).is_ok() {
        out.push(b'\n');
    }
}
