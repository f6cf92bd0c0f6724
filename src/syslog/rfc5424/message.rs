//! Message data types.

use std::borrow::Cow;

use super::escape::{BOM, unescape_controls, unescape_controls_bytes};
use super::timestamp::{TimestampError, parse_timestamp};

/// Syslog facility (RFC 5424 §6.2.1, table 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Facility {
    Kern = 0,
    User = 1,
    Mail = 2,
    Daemon = 3,
    Auth = 4,
    Syslog = 5,
    Lpr = 6,
    News = 7,
    Uucp = 8,
    Cron = 9,
    Authpriv = 10,
    Ftp = 11,
    Ntp = 12,
    Audit = 13,
    Alert = 14,
    Clock = 15,
    Local0 = 16,
    Local1 = 17,
    Local2 = 18,
    Local3 = 19,
    Local4 = 20,
    Local5 = 21,
    Local6 = 22,
    Local7 = 23,
}

impl Facility {
    /// All facilities, indexed by their numeric code.
    pub const ALL: [Facility; 24] = [
        Facility::Kern,
        Facility::User,
        Facility::Mail,
        Facility::Daemon,
        Facility::Auth,
        Facility::Syslog,
        Facility::Lpr,
        Facility::News,
        Facility::Uucp,
        Facility::Cron,
        Facility::Authpriv,
        Facility::Ftp,
        Facility::Ntp,
        Facility::Audit,
        Facility::Alert,
        Facility::Clock,
        Facility::Local0,
        Facility::Local1,
        Facility::Local2,
        Facility::Local3,
        Facility::Local4,
        Facility::Local5,
        Facility::Local6,
        Facility::Local7,
    ];

    const NAMES: [&'static str; 24] = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
        "authpriv", "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2",
        "local3", "local4", "local5", "local6", "local7",
    ];

    /// Facility for a numeric code 0..=23.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code)).copied()
    }

    /// Numeric code 0..=23.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Conventional lowercase name (`kern`, `user`, …, `local7`).
    pub fn name(self) -> &'static str {
        Self::NAMES
            .get(usize::from(self.code()))
            .copied()
            .unwrap_or("?")
    }

    /// Inverse of [`Facility::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .position(|n| *n == name)
            .and_then(|i| Self::ALL.get(i).copied())
    }
}

impl std::fmt::Display for Facility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Syslog severity (RFC 5424 §6.2.1, table 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Severity {
    Emergency = 0,
    Alert = 1,
    Critical = 2,
    Error = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
    Debug = 7,
}

impl Severity {
    /// All severities, indexed by their numeric code.
    pub const ALL: [Severity; 8] = [
        Severity::Emergency,
        Severity::Alert,
        Severity::Critical,
        Severity::Error,
        Severity::Warning,
        Severity::Notice,
        Severity::Info,
        Severity::Debug,
    ];

    const NAMES: [&'static str; 8] = [
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
    ];

    /// Severity for a numeric code 0..=7.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code)).copied()
    }

    /// Numeric code 0..=7.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Conventional lowercase name (`emerg`, …, `debug`).
    pub fn name(self) -> &'static str {
        Self::NAMES
            .get(usize::from(self.code()))
            .copied()
            .unwrap_or("?")
    }

    /// Inverse of [`Severity::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .position(|n| *n == name)
            .and_then(|i| Self::ALL.get(i).copied())
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One SD-PARAM. `value` is the RFC-unescaped PARAM-VALUE (no `\"` left);
/// it may still contain `#ooo` control escapes, see [`SdParam::decoded_value`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SdParam {
    pub name: String,
    pub value: String,
}

impl SdParam {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }

    /// The value with `#ooo` control escapes undone (the original text an
    /// emitter passed to the builder).
    pub fn decoded_value(&self) -> Cow<'_, str> {
        unescape_controls(&self.value)
    }
}

/// One SD-ELEMENT: `[id name="value" ...]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SdElement {
    pub id: String,
    pub params: Vec<SdParam>,
}

impl SdElement {
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            params: Vec::new(),
        }
    }

    /// First value of the parameter `name` (stored form, see [`SdParam`]).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.as_str())
    }
}

/// Why a [`Msg`] could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MsgError {
    /// MSG-UTF8 (BOM present) must be valid UTF-8.
    #[error("MSG with BOM is not valid UTF-8 (at byte {valid_up_to})")]
    InvalidUtf8 { valid_up_to: usize },
    /// MSG-ANY must not start with a BOM (it would be read back as MSG-UTF8).
    #[error("MSG without BOM flag starts with a BOM")]
    LeadingBom,
}

/// The MSG part. Invariant (fields are private to keep it): with `bom` the
/// bytes are valid UTF-8 (MSG-UTF8); without, they are arbitrary but do not
/// start with a BOM (MSG-ANY). The BOM itself is not part of `bytes`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Msg {
    bom: bool,
    bytes: Vec<u8>,
}

impl Msg {
    /// Checked constructor.
    pub fn new(bom: bool, bytes: Vec<u8>) -> Result<Self, MsgError> {
        if bom {
            if let Err(e) = std::str::from_utf8(&bytes) {
                return Err(MsgError::InvalidUtf8 {
                    valid_up_to: e.valid_up_to(),
                });
            }
        } else if bytes.starts_with(&BOM) {
            return Err(MsgError::LeadingBom);
        }
        Ok(Self { bom, bytes })
    }

    /// MSG-UTF8 with a BOM (what RFC 5424 recommends for text).
    pub fn utf8(text: impl Into<String>) -> Self {
        Self {
            bom: true,
            bytes: text.into().into_bytes(),
        }
    }

    /// MSG-ANY (no BOM). A leading BOM in `bytes` is taken as the BOM flag if
    /// the rest is valid UTF-8, and dropped otherwise, because the wire form
    /// could not tell the two apart.
    pub fn any(bytes: impl Into<Vec<u8>>) -> Self {
        let mut bytes = bytes.into();
        if bytes.starts_with(&BOM) {
            bytes.drain(..BOM.len());
            let bom = std::str::from_utf8(&bytes).is_ok();
            return Self { bom, bytes };
        }
        Self { bom: false, bytes }
    }

    /// Constructor for the parser, which has already checked the invariant.
    pub(crate) fn from_parts_unchecked(bom: bool, bytes: Vec<u8>) -> Self {
        Self { bom, bytes }
    }

    /// Whether the message carried a UTF-8 BOM (MSG-UTF8).
    pub fn has_bom(&self) -> bool {
        self.bom
    }

    /// The bytes after the BOM, as stored (may contain `#ooo` escapes).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The text if it is valid UTF-8 (always for MSG-UTF8).
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.bytes).ok()
    }

    /// Text with invalid UTF-8 replaced by U+FFFD.
    pub fn to_text_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.bytes)
    }

    /// Bytes with `#ooo` control escapes undone.
    pub fn decoded_bytes(&self) -> Cow<'_, [u8]> {
        unescape_controls_bytes(&self.bytes)
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// A parsed or to-be-formatted RFC 5424 message.
///
/// Fields are public for convenience; emitters should use
/// [`SyslogMessage::builder`], which sanitizes attacker input. The formatter
/// is defensive anyway (see the module docs), so any value of this struct
/// formats to a single line that cannot break framing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SyslogMessage {
    pub facility: Facility,
    pub severity: Severity,
    /// Always 1 (the only version this module parses or writes).
    pub version: u8,
    /// Validated RFC 5424 TIMESTAMP text, kept verbatim.
    pub timestamp: Option<String>,
    pub hostname: Option<String>,
    pub app_name: Option<String>,
    pub procid: Option<String>,
    pub msgid: Option<String>,
    pub structured_data: Vec<SdElement>,
    pub msg: Option<Msg>,
}

impl SyslogMessage {
    /// A message with every optional field NIL.
    pub fn new(facility: Facility, severity: Severity) -> Self {
        Self {
            facility,
            severity,
            version: 1,
            timestamp: None,
            hostname: None,
            app_name: None,
            procid: None,
            msgid: None,
            structured_data: Vec::new(),
            msg: None,
        }
    }

    /// PRIVAL = facility * 8 + severity (0..=191).
    pub fn pri(&self) -> u8 {
        self.facility.code() * 8 + self.severity.code()
    }

    /// Split a PRIVAL into facility and severity.
    pub fn from_pri(pri: u8) -> Option<(Facility, Severity)> {
        Some((Facility::from_code(pri / 8)?, Severity::from_code(pri % 8)?))
    }

    /// The timestamp as an instant; `None` for NILVALUE.
    pub fn parsed_timestamp(&self) -> Option<Result<jiff::Timestamp, TimestampError>> {
        self.timestamp.as_deref().map(parse_timestamp)
    }

    /// The SD-ELEMENT with this SD-ID.
    pub fn sd_element(&self, id: &str) -> Option<&SdElement> {
        self.structured_data.iter().find(|e| e.id == id)
    }

    /// First value of `name` in the element `id` (stored form).
    pub fn sd_param(&self, id: &str, name: &str) -> Option<&str> {
        self.sd_element(id)?.param(name)
    }
}
