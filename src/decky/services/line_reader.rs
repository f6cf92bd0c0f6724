//! Line reading with a hard cap: memory per connection stays bounded whatever the client
//! sends (a 1 MiB line without a newline costs at most `max_line` + one read chunk).
//!
//! A line longer than the cap is returned cut (flagged `truncated`) and the rest of it, up to
//! the next terminator, is discarded. No timeouts here: callers wrap each call in their idle
//! timeout, so a slowloris client that never finishes a line is dropped by the caller.

use tokio::io::{AsyncRead, AsyncReadExt};

const CHUNK: usize = 4096;

/// What ends a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Terminator {
    /// `\n`; a `\r` before it is removed.
    Lf,
    /// Telnet (RFC 854): CR LF, CR NUL, a lone CR or a lone LF.
    CrOrLf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub bytes: Vec<u8>,
    /// The client sent more than the cap; `bytes` holds the first `max_line` bytes.
    pub truncated: bool,
}

pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    max_line: usize,
    terminator: Terminator,
    /// Inside an over-long line: drop bytes until its terminator.
    discarding: bool,
    /// The previous line ended with CR: a LF or NUL right after belongs to it.
    after_cr: bool,
    eof: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub fn new(inner: R, max_line: usize, terminator: Terminator) -> Self {
        LineReader {
            inner,
            buf: Vec::with_capacity(256),
            max_line: max_line.max(1),
            terminator,
            discarding: false,
            after_cr: false,
            eof: false,
        }
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The next line, or `None` at end of input (a final unterminated line is returned first).
    pub async fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            if let Some(line) = self.take_line() {
                return Ok(Some(line));
            }
            if self.eof {
                if self.buf.is_empty() || self.discarding {
                    self.buf.clear();
                    return Ok(None);
                }
                let bytes = std::mem::take(&mut self.buf);
                return Ok(Some(Line {
                    bytes,
                    truncated: false,
                }));
            }
            self.fill().await?;
        }
    }

    /// Up to `n` bytes (fewer at EOF): buffered bytes first, then the stream. For bodies that
    /// follow a header (HTTP); callers bound `n`.
    pub async fn read_exact_or_eof(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        while self.buf.len() < n && !self.eof {
            self.fill().await?;
        }
        let n = n.min(self.buf.len());
        Ok(self.buf.drain(..n).collect())
    }

    async fn fill(&mut self) -> std::io::Result<()> {
        let old = self.buf.len();
        self.buf.resize(old + CHUNK, 0);
        let r = self.inner.read(&mut self.buf[old..]).await;
        let n = *r.as_ref().unwrap_or(&0);
        self.buf.truncate(old + n);
        r?;
        if n == 0 {
            self.eof = true;
        }
        Ok(())
    }

    fn take_line(&mut self) -> Option<Line> {
        loop {
            if self.after_cr && matches!(self.buf.first(), Some(b'\n' | b'\0')) {
                self.buf.remove(0);
                self.after_cr = false;
            }
            if !self.buf.is_empty() {
                self.after_cr = false;
            }
            let end = match self.terminator {
                Terminator::Lf => memchr::memchr(b'\n', &self.buf),
                Terminator::CrOrLf => memchr::memchr2(b'\n', b'\r', &self.buf),
            };
            if self.discarding {
                match end {
                    Some(i) => {
                        self.consume_terminated(i);
                        self.discarding = false;
                        continue;
                    }
                    None => {
                        self.buf.clear();
                        return None;
                    }
                }
            }
            return match end {
                Some(i) if i <= self.max_line => {
                    let mut bytes = self.buf[..i].to_vec();
                    self.consume_terminated(i);
                    if self.terminator == Terminator::Lf && bytes.last() == Some(&b'\r') {
                        bytes.pop();
                    }
                    Some(Line {
                        bytes,
                        truncated: false,
                    })
                }
                Some(_) | None if self.buf.len() > self.max_line => {
                    let bytes = self.buf[..self.max_line].to_vec();
                    self.buf.drain(..self.max_line);
                    self.discarding = true;
                    Some(Line {
                        bytes,
                        truncated: true,
                    })
                }
                _ => None,
            };
        }
    }

    /// Removes the line ending at `i` and its terminator.
    fn consume_terminated(&mut self, i: usize) {
        let cr = self.buf[i] == b'\r';
        let mut end = i + 1;
        if cr {
            match self.buf.get(end) {
                Some(b'\n' | b'\0') => end += 1,
                Some(_) => {}
                // The LF/NUL may still be in flight.
                None => self.after_cr = true,
            }
        }
        self.buf.drain(..end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize, t: Terminator) -> Vec<(String, bool)> {
        let mut r = LineReader::new(input, max, t);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().await.unwrap() {
            out.push((String::from_utf8_lossy(&l.bytes).into_owned(), l.truncated));
        }
        out
    }

    fn v(items: &[(&str, bool)]) -> Vec<(String, bool)> {
        items.iter().map(|(s, t)| ((*s).to_owned(), *t)).collect()
    }

    #[allow(clippy::type_complexity)]
    #[tokio::test]
    async fn table() {
        use Terminator::*;
        let cases: &[(&[u8], usize, Terminator, &[(&str, bool)])] = &[
            (
                b"a\r\nb\nc",
                10,
                Lf,
                &[("a", false), ("b", false), ("c", false)],
            ),
            (b"\n\n", 10, Lf, &[("", false), ("", false)]),
            (
                b"0123456789abc\nok\n",
                4,
                Lf,
                &[("0123", true), ("ok", false)],
            ),
            (b"0123456789", 4, Lf, &[("0123", true)]),
            (
                b"a\r\nb\r\0c\rd\ne",
                10,
                CrOrLf,
                &[
                    ("a", false),
                    ("b", false),
                    ("c", false),
                    ("d", false),
                    ("e", false),
                ],
            ),
            (
                b"a\r\r\nb",
                10,
                CrOrLf,
                &[("a", false), ("", false), ("b", false)],
            ),
        ];
        for (input, max, t, want) in cases {
            assert_eq!(
                lines(input, *max, *t).await,
                v(want),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[tokio::test]
    async fn cr_lf_split_across_reads_is_one_terminator() {
        let (mut w, r) = tokio::io::duplex(64);
        let mut reader = LineReader::new(r, 100, Terminator::CrOrLf);
        use tokio::io::AsyncWriteExt;
        w.write_all(b"user\r").await.unwrap();
        assert_eq!(reader.next_line().await.unwrap().unwrap().bytes, b"user");
        w.write_all(b"\npass\r\n").await.unwrap();
        drop(w);
        assert_eq!(reader.next_line().await.unwrap().unwrap().bytes, b"pass");
        assert_eq!(reader.next_line().await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_megabyte_without_newline_stays_bounded() {
        let big = vec![b'x'; 1 << 20];
        let mut r = LineReader::new(&big[..], 4096, Terminator::Lf);
        let first = r.next_line().await.unwrap().unwrap();
        assert!(first.truncated && first.bytes.len() == 4096);
        assert!(r.buf.capacity() <= 4096 + 2 * CHUNK + 256);
        assert_eq!(r.next_line().await.unwrap(), None);
    }

    #[tokio::test]
    async fn body_after_lines() {
        let mut r = LineReader::new(&b"head\nbodybytes"[..], 100, Terminator::Lf);
        assert_eq!(r.next_line().await.unwrap().unwrap().bytes, b"head");
        assert_eq!(r.read_exact_or_eof(4).await.unwrap(), b"body");
        assert_eq!(r.read_exact_or_eof(100).await.unwrap(), b"bytes");
    }
}
