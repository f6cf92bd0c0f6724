//! RFC 5425 octet-counting framing: `MSG-LEN SP SYSLOG-MSG`, where
//! `MSG-LEN = NONZERO-DIGIT *DIGIT` is the byte count of SYSLOG-MSG.
//!
//! [`FrameDecoder`] is a push decoder: feed it whatever the socket returned,
//! then pull frames until it answers `Ok(None)`. Frames are returned as
//! slices of its internal buffer (no per-frame allocation); consumed bytes
//! are compacted away lazily so copying stays amortized O(1) per byte.

use crate::syslog::num::{digits, write_u64};

/// Default maximum SYSLOG-MSG size accepted by [`FrameDecoder`].
pub const DEFAULT_MAX_FRAME_LEN: usize = 64 * 1024;
/// RFC 5425 §4.3.1: receivers MUST accept at least 2048 octets (and SHOULD
/// accept 8192).
pub const RFC5425_MIN_FRAME_LEN: usize = 2048;

/// Append one frame for `msg`. `msg` should not be empty: `0 ` is not a
/// valid MSG-LEN and receivers (including ours) reject it.
pub fn encode_frame(msg: &[u8], out: &mut Vec<u8>) {
    out.reserve(msg.len() + 8);
    write_u64(out, msg.len() as u64);
    out.push(b' ');
    out.extend_from_slice(msg);
}

/// Why a stream was rejected; the connection should be dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameErrorKind {
    /// MSG-LEN exceeds the limit (`len` is what had been read so far).
    #[error("frame length {len} exceeds the maximum of {max} bytes")]
    TooLarge { len: u64, max: usize },
    #[error("non-digit byte 0x{0:02x} where MSG-LEN should start")]
    NonDigit(u8),
    #[error("MSG-LEN has a leading zero")]
    LeadingZero,
    #[error("expected SP after MSG-LEN, found byte 0x{0:02x}")]
    MissingSpace(u8),
    #[error("MSG-LEN has more than {max_digits} digits")]
    LengthFieldTooLong { max_digits: usize },
    #[error("empty frame (MSG-LEN 0)")]
    EmptyFrame,
}

/// A framing error and the stream offset of the frame it was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("at stream byte {offset}: {kind}")]
pub struct FrameError {
    /// Offset (from the start of the stream) of the offending frame header.
    pub offset: u64,
    pub kind: FrameErrorKind,
}

/// Streaming octet-counting decoder. See the module docs.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Start of unconsumed data in `buf`.
    start: usize,
    max_frame_len: usize,
    max_digits: usize,
    /// Stream offset of `buf[start]`, for error reports.
    stream_pos: u64,
    /// Sticky: once set, the stream is dead.
    error: Option<FrameError>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// Decoder with [`DEFAULT_MAX_FRAME_LEN`].
    pub fn new() -> Self {
        Self::with_max_frame_len(DEFAULT_MAX_FRAME_LEN)
    }

    /// Decoder accepting frames up to `max` bytes (at least 1). RFC 5425
    /// wants at least [`RFC5425_MIN_FRAME_LEN`]; smaller values are allowed
    /// for tests.
    pub fn with_max_frame_len(max: usize) -> Self {
        let max = max.max(1);
        Self {
            buf: Vec::new(),
            start: 0,
            max_frame_len: max,
            max_digits: digits(max as u64),
            stream_pos: 0,
            error: None,
        }
    }

    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Bytes received but not yet returned as a frame (a partial frame).
    pub fn buffered_len(&self) -> usize {
        self.buf.len().saturating_sub(self.start)
    }

    /// The sticky error, if the stream has failed.
    pub fn error(&self) -> Option<&FrameError> {
        self.error.as_ref()
    }

    /// Append received bytes. Ignored once the decoder has failed.
    pub fn feed(&mut self, data: &[u8]) {
        if self.error.is_some() {
            return;
        }
        let live = self.buf.len().saturating_sub(self.start);
        if live == 0 {
            self.buf.clear();
            self.start = 0;
        } else if self.start >= live {
            // Moving `live` bytes is paid for by the `start` bytes consumed.
            self.buf.copy_within(self.start.., 0);
            self.buf.truncate(live);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    fn fail(&mut self, kind: FrameErrorKind) -> FrameError {
        let e = FrameError {
            offset: self.stream_pos,
            kind,
        };
        self.error = Some(e);
        // Nothing more will be returned; free the memory.
        self.buf = Vec::new();
        self.start = 0;
        e
    }

    /// Next complete frame, `Ok(None)` if more data is needed, or the
    /// (sticky) error. The slice is valid until the next call.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FrameError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let avail = self.buf.get(self.start..).unwrap_or(&[]);
        let mut len: u64 = 0;
        let mut n = 0usize;
        loop {
            let Some(&b) = avail.get(n) else {
                return Ok(None);
            };
            match b {
                b' ' if n > 0 => break,
                b'0' if n == 0 => {
                    // "0 " is an empty frame, "0<digit>" a leading zero.
                    return match avail.get(1) {
                        None => Ok(None),
                        Some(b' ') => Err(self.fail(FrameErrorKind::EmptyFrame)),
                        Some(d) if d.is_ascii_digit() => {
                            Err(self.fail(FrameErrorKind::LeadingZero))
                        }
                        Some(&x) => Err(self.fail(FrameErrorKind::MissingSpace(x))),
                    };
                }
                b'0'..=b'9' => {
                    if n == self.max_digits {
                        let max_digits = self.max_digits;
                        return Err(self.fail(FrameErrorKind::LengthFieldTooLong { max_digits }));
                    }
                    len = len * 10 + u64::from(b - b'0');
                    if len > self.max_frame_len as u64 {
                        let max = self.max_frame_len;
                        return Err(self.fail(FrameErrorKind::TooLarge { len, max }));
                    }
                    n += 1;
                }
                _ if n == 0 => return Err(self.fail(FrameErrorKind::NonDigit(b))),
                _ => return Err(self.fail(FrameErrorKind::MissingSpace(b))),
            }
        }
        // len <= max_frame_len, so this fits in usize.
        let body_start = n + 1;
        let body_end = body_start + len as usize;
        if avail.len() < body_end {
            return Ok(None);
        }
        let from = self.start + body_start;
        let to = self.start + body_end;
        self.start = to;
        self.stream_pos += body_end as u64;
        Ok(self.buf.get(from..to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic() {
        let mut out = Vec::new();
        encode_frame(b"hello", &mut out);
        encode_frame(b"w", &mut out);
        assert_eq!(out, b"5 hello1 w");
        let mut d = FrameDecoder::new();
        d.feed(&out);
        assert_eq!(d.next_frame(), Ok(Some(&b"hello"[..])));
        assert_eq!(d.next_frame(), Ok(Some(&b"w"[..])));
        assert_eq!(d.next_frame(), Ok(None));
        assert_eq!(d.buffered_len(), 0);
    }
}
