//! Pure syslog logic for decnet: RFC 5424 messages, RFC 5425 octet-counting
//! framing and our worker→master shipping envelope.
//!
//! Nothing in here does I/O, so every piece can be tested directly; the tokio
//! network code lives elsewhere and only feeds bytes in and out.
//!
//! * [`rfc5424`]: message types, strict parser, injection-safe formatter and
//!   builder, escaping helpers.
//! * [`framing`]: `MSG-LEN SP SYSLOG-MSG` encoder and streaming decoder.
//! * [`envelope`]: `<file_id> <offset> <line>` payload carrying the origin of
//!   a verbatim line, for exactly-once delivery.
//! * [`meta`]: the neutral SD-ID used for decky event fields.

pub mod envelope;
pub mod framing;
pub mod meta;
mod num;
pub mod rfc5424;

pub use envelope::{
    EnvelopeError, EnvelopeErrorKind, EnvelopeField, Payload, ShippedLine, decode as decode_payload,
};
pub use framing::{
    DEFAULT_MAX_FRAME_LEN, FrameDecoder, FrameError, FrameErrorKind, RFC5425_MIN_FRAME_LEN,
    encode_frame,
};
pub use meta::{DOCUMENTATION_PEN, EVENT_SD_ID};
pub use rfc5424::{
    BOM, Facility, Field, Msg, MsgError, ParseError, ParseErrorKind, SdElement, SdParam, Severity,
    SyslogMessage, SyslogMessageBuilder, TimestampError, TimestampErrorKind, escape_controls,
    escape_controls_bytes, escape_sd_value, format_timestamp, parse, parse_timestamp,
    sanitize_header_value, sanitize_sd_name, unescape_controls, unescape_controls_bytes,
    unescape_sd_value, validate_timestamp,
};
