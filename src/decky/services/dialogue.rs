//! Line protocols as pure state machines ([`Dialogue`]) plus the one I/O driver that runs
//! any of them over a socket with the limits applied. FTP, telnet, SMTP and Redis are
//! dialogues; their parsing and replies are unit-tested without sockets.

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::ServiceCtx;
use super::error::{EndReason, ServiceError};
use super::event::{Event, Session};
use super::line_reader::{Line, LineReader, Terminator};

/// What a dialogue wants done after an input: bytes to send, events to log, maybe close.
#[derive(Debug, Default)]
pub struct Output {
    pub bytes: Vec<u8>,
    pub events: Vec<Event>,
    pub close: bool,
}

impl Output {
    pub fn send(&mut self, s: impl AsRef<[u8]>) {
        self.bytes.extend_from_slice(s.as_ref());
    }

    pub fn event(&mut self, e: Event) {
        self.events.push(e);
    }
}

/// A line-based protocol, free of I/O.
pub trait Dialogue: Send {
    fn terminator(&self) -> Terminator {
        Terminator::Lf
    }

    /// Sent when the client connects.
    fn greeting(&mut self, out: &mut Output);

    /// One input line (terminator removed; cut at the line cap when `line.truncated`).
    fn on_line(&mut self, line: &Line, out: &mut Output);

    /// The client went silent for the idle timeout; the connection closes after this.
    fn on_idle(&mut self, _out: &mut Output) {}
}

/// Runs `d` on `stream` until either side closes or a limit is hit.
pub async fn run<D: Dialogue>(
    stream: TcpStream,
    mut d: D,
    session: &Session,
    ctx: &ServiceCtx,
) -> Result<EndReason, ServiceError> {
    let idle = ctx.limits.idle_timeout;
    let (read, mut write) = stream.into_split();
    let mut reader = LineReader::new(read, ctx.limits.max_line, d.terminator());
    let mut out = Output::default();
    d.greeting(&mut out);
    if flush(&mut out, &mut write, session, ctx).await? {
        return Ok(EndReason::ServerClosed);
    }
    loop {
        let line = match tokio::time::timeout(idle, reader.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => return Ok(EndReason::ClientClosed),
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => {
                d.on_idle(&mut out);
                let _ = flush(&mut out, &mut write, session, ctx).await;
                return Ok(EndReason::IdleTimeout);
            }
        };
        d.on_line(&line, &mut out);
        if flush(&mut out, &mut write, session, ctx).await? {
            return Ok(EndReason::ServerClosed);
        }
    }
}

/// Emits queued events, sends queued bytes; true when the dialogue asked to close.
async fn flush(
    out: &mut Output,
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    session: &Session,
    ctx: &ServiceCtx,
) -> Result<bool, ServiceError> {
    for e in out.events.drain(..) {
        ctx.emitter.emit(session, &e).await;
    }
    if !out.bytes.is_empty() {
        tokio::time::timeout(ctx.limits.idle_timeout, write.write_all(&out.bytes))
            .await
            .map_err(|_| ServiceError::IdleTimeout)??;
        out.bytes.clear();
    }
    if out.close {
        let _ = write.shutdown().await;
    }
    Ok(out.close)
}

/// Test helper: feeds `lines` to a dialogue and collects everything it produced.
#[cfg(test)]
pub fn script<D: Dialogue>(d: &mut D, lines: &[&[u8]]) -> (String, Vec<Event>, bool) {
    let mut out = Output::default();
    d.greeting(&mut out);
    for l in lines {
        if out.close {
            break;
        }
        d.on_line(
            &Line {
                bytes: l.to_vec(),
                truncated: false,
            },
            &mut out,
        );
    }
    (
        String::from_utf8_lossy(&out.bytes).into_owned(),
        out.events,
        out.close,
    )
}

/// Splits a command line into its upper-cased verb and the rest (`"user  bob "` → `USER`,
/// `"bob"`). Pure helper shared by the command-style protocols.
pub fn verb(line: &[u8]) -> (String, &[u8]) {
    let line = trim(line);
    let (v, rest) = match line.iter().position(|b| b.is_ascii_whitespace()) {
        Some(i) => (&line[..i], trim(&line[i..])),
        None => (line, &line[line.len()..]),
    };
    (String::from_utf8_lossy(v).to_ascii_uppercase(), rest)
}

pub fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &s[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verb_table() {
        let cases: &[(&[u8], &str, &[u8])] = &[
            (b"user bob", "USER", b"bob"),
            (b"  PASS   a b  ", "PASS", b"a b"),
            (b"QUIT", "QUIT", b""),
            (b"", "", b""),
            (b"\xff\xfe x", "\u{fffd}\u{fffd}", b"x"),
        ];
        for (line, v, rest) in cases {
            let (gv, grest) = verb(line);
            assert_eq!((gv.as_str(), grest), (*v, *rest));
        }
    }
}
