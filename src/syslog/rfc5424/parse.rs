//! Strict RFC 5424 §6 parser. Works on arbitrary bytes and never panics:
//! every access goes through `get`, every error carries the byte offset.

use std::fmt;

use super::escape::{BOM, unescape_sd_value_bytes};
use super::message::{Msg, SdElement, SdParam, SyslogMessage};
use super::timestamp::{TimestampErrorKind, validate_timestamp};
use super::{
    MAX_APP_NAME_LEN, MAX_HOSTNAME_LEN, MAX_MSGID_LEN, MAX_PROCID_LEN, MAX_SD_NAME_LEN,
    is_printusascii, is_sd_name_byte,
};

/// Message part named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Pri,
    Version,
    Timestamp,
    Hostname,
    AppName,
    ProcId,
    MsgId,
    StructuredData,
    SdId,
    ParamName,
    ParamValue,
    Msg,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Pri => "PRI",
            Field::Version => "VERSION",
            Field::Timestamp => "TIMESTAMP",
            Field::Hostname => "HOSTNAME",
            Field::AppName => "APP-NAME",
            Field::ProcId => "PROCID",
            Field::MsgId => "MSGID",
            Field::StructuredData => "STRUCTURED-DATA",
            Field::SdId => "SD-ID",
            Field::ParamName => "PARAM-NAME",
            Field::ParamValue => "PARAM-VALUE",
            Field::Msg => "MSG",
        })
    }
}

/// Why a message was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("expected '<' to open PRI")]
    ExpectedPriOpen,
    #[error("expected a digit in PRI")]
    ExpectedPriDigit,
    #[error("PRI has a leading zero")]
    PriLeadingZero,
    #[error("PRI has more than 3 digits")]
    PriTooLong,
    #[error("PRI value {0} is out of range 0..191")]
    PriOutOfRange(u16),
    #[error("expected '>' to close PRI")]
    ExpectedPriClose,
    #[error("expected VERSION")]
    ExpectedVersion,
    #[error("VERSION must not start with 0")]
    InvalidVersion,
    #[error("unsupported VERSION {0} (only 1 is supported)")]
    UnsupportedVersion(u16),
    #[error("expected SP after {0}")]
    ExpectedSp(Field),
    #[error("unexpected end of input in {0}")]
    UnexpectedEnd(Field),
    #[error("empty {0}")]
    EmptyField(Field),
    #[error("{field} is longer than {max} bytes")]
    FieldTooLong { field: Field, max: usize },
    #[error("invalid byte 0x{byte:02x} in {field}")]
    InvalidByte { field: Field, byte: u8 },
    #[error("invalid TIMESTAMP: {0}")]
    Timestamp(TimestampErrorKind),
    #[error("expected '-' or '[' to start STRUCTURED-DATA")]
    ExpectedStructuredData,
    #[error("expected SP or ']' in SD-ELEMENT")]
    ExpectedSpOrBracket,
    #[error("expected '=' after PARAM-NAME")]
    ExpectedEquals,
    #[error("expected '\"' to open PARAM-VALUE")]
    ExpectedQuote,
    #[error("unescaped ']' in PARAM-VALUE")]
    UnescapedBracket,
    #[error("unterminated PARAM-VALUE")]
    UnterminatedParamValue,
    #[error("unterminated SD-ELEMENT")]
    UnterminatedSdElement,
    #[error("invalid UTF-8 in {0}")]
    InvalidUtf8(Field),
    #[error("duplicate SD-ID {0:?}")]
    DuplicateSdId(String),
    #[error("expected SP before MSG or end of message after STRUCTURED-DATA")]
    ExpectedSpBeforeMsg,
}

/// A parse failure: what went wrong and at which input byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at byte {offset}: {kind}")]
pub struct ParseError {
    pub offset: usize,
    pub kind: ParseErrorKind,
}

type Result<T> = std::result::Result<T, ParseError>;

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    #[inline]
    fn err<T>(&self, kind: ParseErrorKind) -> Result<T> {
        Err(ParseError {
            offset: self.pos,
            kind,
        })
    }

    #[inline]
    fn slice(&self, start: usize, end: usize) -> &'a [u8] {
        self.buf.get(start..end).unwrap_or(&[])
    }

    fn expect_sp(&mut self, after: Field) -> Result<()> {
        if self.peek() == Some(b' ') {
            self.pos += 1;
            Ok(())
        } else {
            self.err(ParseErrorKind::ExpectedSp(after))
        }
    }

    fn pri(&mut self) -> Result<u8> {
        use ParseErrorKind as K;
        if self.peek() != Some(b'<') {
            return self.err(K::ExpectedPriOpen);
        }
        self.pos += 1;
        let start = self.pos;
        let mut val: u16 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            if self.pos - start == 3 {
                return self.err(K::PriTooLong);
            }
            if self.pos > start && val == 0 {
                return Err(ParseError {
                    offset: start,
                    kind: K::PriLeadingZero,
                });
            }
            val = val * 10 + u16::from(d - b'0');
            self.pos += 1;
        }
        if self.pos == start {
            return self.err(K::ExpectedPriDigit);
        }
        if self.peek() != Some(b'>') {
            return self.err(K::ExpectedPriClose);
        }
        match u8::try_from(val) {
            Ok(v) if v <= 191 => {
                self.pos += 1;
                Ok(v)
            }
            _ => Err(ParseError {
                offset: start,
                kind: K::PriOutOfRange(val),
            }),
        }
    }

    fn version(&mut self) -> Result<()> {
        use ParseErrorKind as K;
        let start = self.pos;
        match self.peek() {
            Some(b'0') => return self.err(K::InvalidVersion),
            Some(b'1'..=b'9') => {}
            _ => return self.err(K::ExpectedVersion),
        }
        let mut val: u16 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            if self.pos - start == 3 {
                break; // VERSION is at most 3 digits; expect_sp reports it.
            }
            val = val * 10 + u16::from(d - b'0');
            self.pos += 1;
        }
        self.expect_sp(Field::Version)?;
        if val != 1 {
            return Err(ParseError {
                offset: start,
                kind: K::UnsupportedVersion(val),
            });
        }
        Ok(())
    }

    /// A PRINTUSASCII header token up to SP; "-" is NILVALUE. Consumes the
    /// trailing SP.
    fn header_field(&mut self, field: Field, max: usize) -> Result<Option<&'a [u8]>> {
        use ParseErrorKind as K;
        let start = self.pos;
        loop {
            match self.peek() {
                Some(b' ') => break,
                Some(b) if is_printusascii(b) => {
                    if self.pos - start == max {
                        return self.err(K::FieldTooLong { field, max });
                    }
                    self.pos += 1;
                }
                Some(byte) => return self.err(K::InvalidByte { field, byte }),
                None => return self.err(K::UnexpectedEnd(field)),
            }
        }
        if self.pos == start {
            return self.err(K::EmptyField(field));
        }
        let tok = self.slice(start, self.pos);
        self.pos += 1; // the SP
        Ok(if tok == b"-" { None } else { Some(tok) })
    }

    fn timestamp(&mut self) -> Result<Option<String>> {
        // Longest valid form is 32 bytes; the bound only limits scanning.
        let start = self.pos;
        let tok = self.header_field(Field::Timestamp, 64)?;
        match tok {
            None => Ok(None),
            Some(t) => match validate_timestamp(t) {
                Ok(()) => Ok(Some(ascii_string(t))),
                Err(e) => Err(ParseError {
                    offset: start + e.offset,
                    kind: ParseErrorKind::Timestamp(e.kind),
                }),
            },
        }
    }

    /// SD-NAME terminated by one of `terminators` (not consumed).
    fn sd_name(&mut self, field: Field, terminators: &[u8]) -> Result<String> {
        use ParseErrorKind as K;
        let start = self.pos;
        loop {
            match self.peek() {
                Some(b) if terminators.contains(&b) => break,
                Some(b) if is_sd_name_byte(b) => {
                    if self.pos - start == MAX_SD_NAME_LEN {
                        return self.err(K::FieldTooLong {
                            field,
                            max: MAX_SD_NAME_LEN,
                        });
                    }
                    self.pos += 1;
                }
                Some(byte) => return self.err(K::InvalidByte { field, byte }),
                None => return self.err(K::UnterminatedSdElement),
            }
        }
        if self.pos == start {
            return self.err(K::EmptyField(field));
        }
        Ok(ascii_string(self.slice(start, self.pos)))
    }

    fn sd_param(&mut self) -> Result<SdParam> {
        use ParseErrorKind as K;
        let name = self.sd_name(Field::ParamName, b"=")?;
        self.pos += 1; // '='
        if self.peek() != Some(b'"') {
            return self.err(K::ExpectedQuote);
        }
        self.pos += 1;
        let start = self.pos;
        let mut escaped = false;
        loop {
            match self.peek() {
                Some(b'"') => break,
                Some(b'\\') => {
                    // Only \" \\ \] are escapes; other pairs stay literal,
                    // but we must still step over the escaped char here.
                    if matches!(self.buf.get(self.pos + 1), Some(b'"' | b'\\' | b']')) {
                        escaped = true;
                        self.pos += 2;
                    } else {
                        self.pos += 1;
                    }
                }
                Some(b']') => return self.err(K::UnescapedBracket),
                Some(_) => self.pos += 1,
                None => return self.err(K::UnterminatedParamValue),
            }
        }
        let raw = self.slice(start, self.pos);
        if let Err(e) = std::str::from_utf8(raw) {
            return Err(ParseError {
                offset: start + e.valid_up_to(),
                kind: K::InvalidUtf8(Field::ParamValue),
            });
        }
        self.pos += 1; // closing '"'
        let value = if escaped {
            let mut out = Vec::with_capacity(raw.len());
            unescape_sd_value_bytes(raw, &mut out);
            // Removing ASCII backslashes from valid UTF-8 keeps it valid.
            String::from_utf8(out).map_err(|_| ParseError {
                offset: start,
                kind: K::InvalidUtf8(Field::ParamValue),
            })?
        } else {
            String::from_utf8(raw.to_vec()).map_err(|_| ParseError {
                offset: start,
                kind: K::InvalidUtf8(Field::ParamValue),
            })?
        };
        Ok(SdParam { name, value })
    }

    fn structured_data(&mut self) -> Result<Vec<SdElement>> {
        use ParseErrorKind as K;
        match self.peek() {
            Some(b'-') => {
                self.pos += 1;
                return Ok(Vec::new());
            }
            Some(b'[') => {}
            None => return self.err(K::UnexpectedEnd(Field::StructuredData)),
            Some(_) => return self.err(K::ExpectedStructuredData),
        }
        let mut elements: Vec<SdElement> = Vec::new();
        while self.peek() == Some(b'[') {
            self.pos += 1;
            let id_start = self.pos;
            let id = self.sd_name(Field::SdId, b" ]")?;
            if elements.iter().any(|e| e.id == id) {
                return Err(ParseError {
                    offset: id_start,
                    kind: K::DuplicateSdId(id),
                });
            }
            let mut params = Vec::new();
            loop {
                match self.peek() {
                    Some(b']') => {
                        self.pos += 1;
                        break;
                    }
                    Some(b' ') => {
                        self.pos += 1;
                        params.push(self.sd_param()?);
                    }
                    None => return self.err(K::UnterminatedSdElement),
                    Some(_) => return self.err(K::ExpectedSpOrBracket),
                }
            }
            elements.push(SdElement { id, params });
        }
        Ok(elements)
    }

    fn msg(&mut self) -> Result<Option<Msg>> {
        match self.peek() {
            None => return Ok(None),
            Some(b' ') => self.pos += 1,
            Some(_) => return self.err(ParseErrorKind::ExpectedSpBeforeMsg),
        }
        let rest = self.slice(self.pos, self.buf.len());
        if let Some(text) = rest.strip_prefix(&BOM) {
            if let Err(e) = std::str::from_utf8(text) {
                return Err(ParseError {
                    offset: self.pos + BOM.len() + e.valid_up_to(),
                    kind: ParseErrorKind::InvalidUtf8(Field::Msg),
                });
            }
            Ok(Some(Msg::from_parts_unchecked(true, text.to_vec())))
        } else {
            Ok(Some(Msg::from_parts_unchecked(false, rest.to_vec())))
        }
    }
}

/// Bytes already checked to be PRINTUSASCII.
fn ascii_string(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn opt_string(b: Option<&[u8]>) -> Option<String> {
    b.map(ascii_string)
}

/// Parse one RFC 5424 message (no framing, no trailing newline: a trailing
/// LF would be part of MSG).
pub fn parse(input: &[u8]) -> Result<SyslogMessage> {
    let mut c = Cursor { buf: input, pos: 0 };
    let pri = c.pri()?;
    c.version()?;
    let timestamp = c.timestamp()?;
    let hostname = opt_string(c.header_field(Field::Hostname, MAX_HOSTNAME_LEN)?);
    let app_name = opt_string(c.header_field(Field::AppName, MAX_APP_NAME_LEN)?);
    let procid = opt_string(c.header_field(Field::ProcId, MAX_PROCID_LEN)?);
    let msgid = opt_string(c.header_field(Field::MsgId, MAX_MSGID_LEN)?);
    let structured_data = c.structured_data()?;
    let msg = c.msg()?;
    let (facility, severity) = SyslogMessage::from_pri(pri).ok_or(ParseError {
        offset: 1,
        kind: ParseErrorKind::PriOutOfRange(u16::from(pri)),
    })?;
    Ok(SyslogMessage {
        facility,
        severity,
        version: 1,
        timestamp,
        hostname,
        app_name,
        procid,
        msgid,
        structured_data,
        msg,
    })
}

impl std::str::FromStr for SyslogMessage {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self> {
        parse(s.as_bytes())
    }
}
