//! Worker→master shipping envelope for exactly-once delivery.
//!
//! Each shipped frame must say where its line came from (file identity and
//! byte offset) so the master can acknowledge and deduplicate, yet the
//! master must store the line *verbatim* for forensics. So instead of
//! rewriting the line (e.g. adding an SD element) the origin travels in
//! front of it, inside the RFC 5425 frame payload:
//!
//! ```text
//! PAYLOAD   = ENVELOPED / BARE
//! ENVELOPED = FILE-ID SP OFFSET SP LINE   ; FILE-ID, OFFSET: decimal u64,
//!                                         ; no leading zeros (except "0")
//! BARE      = SYSLOG-MSG                  ; starts with "<" (PRI)
//! ```
//!
//! Plain RFC 5425 peers (e.g. rsyslog `omfwd` with octet-counted TCP) send
//! bare syslog frames, so the listener must accept both. They are told apart
//! by the first byte: an RFC 5424 message always starts with `<`, an
//! envelope always starts with a digit; anything else is rejected.

use crate::syslog::num::{digits, write_u64};

/// A line plus its origin. `line` is the verbatim bytes (without the
/// terminating newline); `offset` is the byte offset of the line's first
/// byte in the file identified by `file_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShippedLine<'a> {
    pub file_id: u64,
    pub offset: u64,
    pub line: &'a [u8],
}

impl ShippedLine<'_> {
    /// Payload size in bytes.
    pub fn encoded_len(&self) -> usize {
        digits(self.file_id) + 1 + digits(self.offset) + 1 + self.line.len()
    }

    /// Append the payload `<file_id> <offset> <line>`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        write_u64(out, self.file_id);
        out.push(b' ');
        write_u64(out, self.offset);
        out.push(b' ');
        out.extend_from_slice(self.line);
    }

    /// Append a complete RFC 5425 frame carrying this payload, without an
    /// intermediate buffer.
    pub fn encode_frame(&self, out: &mut Vec<u8>) {
        let len = self.encoded_len();
        out.reserve(len + 8);
        write_u64(out, len as u64);
        out.push(b' ');
        self.encode(out);
    }
}

/// A decoded frame payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Payload<'a> {
    /// A plain syslog message from a standard RFC 5425 sender.
    Bare(&'a [u8]),
    /// One of our workers' lines with its origin.
    Enveloped(ShippedLine<'a>),
}

/// Which envelope number was bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnvelopeField {
    FileId,
    Offset,
}

impl std::fmt::Display for EnvelopeField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EnvelopeField::FileId => "file id",
            EnvelopeField::Offset => "offset",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeErrorKind {
    #[error("empty payload")]
    Empty,
    #[error("payload starts with 0x{0:02x}: neither '<' (syslog) nor a digit (envelope)")]
    UnknownStart(u8),
    #[error("{0} has a leading zero")]
    LeadingZero(EnvelopeField),
    #[error("{0} does not fit in 64 bits")]
    Overflow(EnvelopeField),
    #[error("{0} is missing")]
    MissingNumber(EnvelopeField),
    #[error("expected SP after {0}")]
    ExpectedSp(EnvelopeField),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("at payload byte {offset}: {kind}")]
pub struct EnvelopeError {
    pub offset: usize,
    pub kind: EnvelopeErrorKind,
}

/// Decimal u64 at `*pos`, followed by SP (consumed).
fn number(p: &[u8], pos: &mut usize, field: EnvelopeField) -> Result<u64, EnvelopeError> {
    let err = |offset, kind| EnvelopeError { offset, kind };
    let start = *pos;
    let mut v: u64 = 0;
    while let Some(&b) = p.get(*pos) {
        if !b.is_ascii_digit() {
            break;
        }
        if *pos > start && v == 0 {
            return Err(err(start, EnvelopeErrorKind::LeadingZero(field)));
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or(err(start, EnvelopeErrorKind::Overflow(field)))?;
        *pos += 1;
    }
    if *pos == start {
        return Err(err(start, EnvelopeErrorKind::MissingNumber(field)));
    }
    if p.get(*pos) != Some(&b' ') {
        return Err(err(*pos, EnvelopeErrorKind::ExpectedSp(field)));
    }
    *pos += 1;
    Ok(v)
}

/// Classify and decode a frame payload. Never panics.
pub fn decode(payload: &[u8]) -> Result<Payload<'_>, EnvelopeError> {
    match payload.first() {
        None => Err(EnvelopeError {
            offset: 0,
            kind: EnvelopeErrorKind::Empty,
        }),
        Some(b'<') => Ok(Payload::Bare(payload)),
        Some(b) if b.is_ascii_digit() => {
            let mut pos = 0;
            let file_id = number(payload, &mut pos, EnvelopeField::FileId)?;
            let offset = number(payload, &mut pos, EnvelopeField::Offset)?;
            Ok(Payload::Enveloped(ShippedLine {
                file_id,
                offset,
                line: payload.get(pos..).unwrap_or(&[]),
            }))
        }
        Some(&b) => Err(EnvelopeError {
            offset: 0,
            kind: EnvelopeErrorKind::UnknownStart(b),
        }),
    }
}

impl<'a> Payload<'a> {
    /// The syslog line, whichever way it arrived.
    pub fn line(&self) -> &'a [u8] {
        match self {
            Payload::Bare(l) => l,
            Payload::Enveloped(s) => s.line,
        }
    }
}
