//! Where event lines go: one writer owns stdout, so lines from concurrent connections never
//! interleave (each line is written whole, then flushed).
//!
//! Services hand complete lines to a bounded channel; a dedicated OS thread drains it,
//! writes everything that is queued in one `write_all` and flushes. A slow stdout (a stalled
//! log driver) backpressures the services through the bounded channel instead of growing
//! memory; [`Emitter::try_emit`] (for synchronous contexts) drops and counts instead.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use super::event::{Event, Session};

/// Lines queued before emitters wait.
pub const QUEUE_LEN: usize = 4096;
/// Bytes batched into one write (a batch only ever holds whole lines).
const BATCH_BYTES: usize = 64 * 1024;

#[derive(Clone)]
pub struct Emitter {
    tx: mpsc::Sender<Vec<u8>>,
    dropped: Arc<AtomicU64>,
}

impl Emitter {
    /// Emitter writing to this process's stdout from a dedicated thread.
    pub fn stdout() -> std::io::Result<Self> {
        let (emitter, mut rx) = Self::channel(QUEUE_LEN);
        std::thread::Builder::new()
            .name("event-writer".into())
            .spawn(move || {
                let stdout = std::io::stdout();
                let mut batch = Vec::with_capacity(BATCH_BYTES);
                while let Some(line) = rx.blocking_recv() {
                    batch.clear();
                    push_line(&mut batch, &line);
                    while batch.len() < BATCH_BYTES {
                        match rx.try_recv() {
                            Ok(line) => push_line(&mut batch, &line),
                            Err(_) => break,
                        }
                    }
                    let mut out = stdout.lock();
                    if let Err(e) = out.write_all(&batch).and_then(|()| out.flush()) {
                        tracing::error!(error = %e, "cannot write events to stdout");
                    }
                }
            })?;
        Ok(emitter)
    }

    /// Emitter whose lines (without newline) arrive on the returned receiver (tests, bench).
    pub fn channel(capacity: usize) -> (Self, mpsc::Receiver<Vec<u8>>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            Emitter {
                tx,
                dropped: Arc::default(),
            },
            rx,
        )
    }

    /// Formats and queues `event`; waits while the queue is full.
    pub async fn emit(&self, session: &Session, event: &Event) {
        let line = session.line(event);
        if self.tx.send(line).await.is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Non-waiting variant for synchronous code (e.g. inside `poll_read`): drops when full.
    pub fn try_emit(&self, session: &Session, event: &Event) {
        if self.tx.try_send(session.line(event)).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "event queue full, events dropped");
            }
        }
    }

    /// Events lost so far (queue full in `try_emit`, or writer gone).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn push_line(batch: &mut Vec<u8>, line: &[u8]) {
    batch.extend_from_slice(line);
    batch.push(b'\n');
}
