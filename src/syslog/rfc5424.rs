//! RFC 5424 syslog messages: types, a strict parser, an injection-safe
//! formatter and a builder for emitters.
//!
//! # Control-character escaping (`#ooo`)
//!
//! Attacker input ends up in SD values and MSG. RFC 5424 allows raw control
//! characters there, but a raw `\n`, `\r` or `\0` would break line-based
//! storage and every log viewer downstream, so this module never emits any
//! byte in `0x00..=0x1F` or `0x7F` inside SD values or MSG. Each such byte is
//! written as `#` followed by exactly three octal digits (`\n` → `#012`,
//! `\0` → `#000`, DEL → `#177`), the convention rsyslog uses for
//! `EscapeControlCharactersOnReceive`. To keep the scheme reversible, a
//! literal `#` that is itself followed by three octal digits is written as
//! `#043`. [`unescape_controls`] undoes it exactly.
//!
//! The builder applies this escaping when values are *stored*, so a built
//! [`SyslogMessage`] already holds the escaped text and
//! `parse(&m.to_bytes()) == Ok(m)` holds for every built message. The
//! formatter additionally escapes any value that still contains raw control
//! bytes (e.g. a parsed third-party message or a hand-built struct) so the
//! output is line-safe no matter how the struct was made. Use
//! [`SdParam::decoded_value`] / [`Msg::decoded_bytes`] to get the original
//! attacker text back.
//!
//! SD values are additionally escaped as RFC 5424 requires (`"`, `\`, `]` get
//! a backslash). Header fields (HOSTNAME, APP-NAME, PROCID, MSGID) and SD
//! names are *sanitized*, not escaped: every char outside the allowed
//! PRINTUSASCII set becomes `_` and the value is truncated to the RFC limit.
//! C1 controls and U+2028/U+2029 are left alone: they do not split lines at
//! the byte level.

mod builder;
mod escape;
mod format;
mod message;
mod parse;
mod timestamp;

pub use builder::{SyslogMessageBuilder, sanitize_header_value, sanitize_sd_name};
pub use escape::{
    BOM, escape_controls, escape_controls_bytes, escape_sd_value, unescape_controls,
    unescape_controls_bytes, unescape_sd_value,
};
pub use message::{Facility, Msg, MsgError, SdElement, SdParam, Severity, SyslogMessage};
pub use parse::{Field, ParseError, ParseErrorKind, parse};
pub use timestamp::{
    TimestampError, TimestampErrorKind, format_timestamp, parse_timestamp, validate_timestamp,
};

/// Maximum HOSTNAME length (RFC 5424 §6.2.4).
pub const MAX_HOSTNAME_LEN: usize = 255;
/// Maximum APP-NAME length (RFC 5424 §6.2.5).
pub const MAX_APP_NAME_LEN: usize = 48;
/// Maximum PROCID length (RFC 5424 §6.2.6).
pub const MAX_PROCID_LEN: usize = 128;
/// Maximum MSGID length (RFC 5424 §6.2.7).
pub const MAX_MSGID_LEN: usize = 32;
/// Maximum SD-NAME (SD-ID, PARAM-NAME) length (RFC 5424 §6.3).
pub const MAX_SD_NAME_LEN: usize = 32;

/// PRINTUSASCII = %d33-126.
#[inline]
pub(crate) fn is_printusascii(b: u8) -> bool {
    (33..=126).contains(&b)
}

/// SD-NAME = 1*32PRINTUSASCII except '=', SP, ']', '"'.
#[inline]
pub(crate) fn is_sd_name_byte(b: u8) -> bool {
    is_printusascii(b) && !matches!(b, b'=' | b']' | b'"')
}
