//! Builder for emitters: sanitizes every attacker-controllable input when it
//! is stored, so the built message formats verbatim and parses back equal.

use super::escape::escape_controls;
use super::message::{Facility, Msg, SdElement, SdParam, Severity, SyslogMessage};
use super::timestamp::{TimestampError, format_timestamp, validate_timestamp};
use super::{MAX_APP_NAME_LEN, MAX_HOSTNAME_LEN, MAX_MSGID_LEN, MAX_PROCID_LEN, MAX_SD_NAME_LEN};

/// Make a header field safe: chars outside PRINTUSASCII become `_`, the
/// result is cut to `max_len` bytes, and an empty value or a bare `-` (which
/// would read back as NILVALUE) becomes `None`.
pub fn sanitize_header_value(value: &str, max_len: usize) -> Option<String> {
    let mut s = String::with_capacity(value.len().min(max_len));
    for c in value.chars() {
        if s.len() >= max_len {
            break;
        }
        s.push(if ('!'..='~').contains(&c) { c } else { '_' });
    }
    if s.is_empty() || s == "-" {
        None
    } else {
        Some(s)
    }
}

/// Make an SD-ID / PARAM-NAME safe: chars outside the SD-NAME alphabet
/// (PRINTUSASCII minus `=`, SP, `]`, `"`) become `_`, cut to 32 bytes,
/// never empty.
pub fn sanitize_sd_name(name: &str) -> String {
    let mut s = String::with_capacity(name.len().min(MAX_SD_NAME_LEN));
    for c in name.chars() {
        if s.len() >= MAX_SD_NAME_LEN {
            break;
        }
        let ok = ('!'..='~').contains(&c) && !matches!(c, '=' | ']' | '"');
        s.push(if ok { c } else { '_' });
    }
    if s.is_empty() {
        s.push('_');
    }
    s
}

/// Fluent builder; see [`SyslogMessage::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct SyslogMessageBuilder {
    msg: SyslogMessage,
}

impl SyslogMessage {
    /// Start a message. Every setter sanitizes its input (header fields are
    /// cleaned and truncated, SD names cleaned, SD values and MSG get `#ooo`
    /// control escaping), so the result is always safe to format.
    pub fn builder(facility: Facility, severity: Severity) -> SyslogMessageBuilder {
        SyslogMessageBuilder {
            msg: SyslogMessage::new(facility, severity),
        }
    }
}

impl SyslogMessageBuilder {
    pub fn hostname(mut self, v: impl AsRef<str>) -> Self {
        self.msg.hostname = sanitize_header_value(v.as_ref(), MAX_HOSTNAME_LEN);
        self
    }

    pub fn app_name(mut self, v: impl AsRef<str>) -> Self {
        self.msg.app_name = sanitize_header_value(v.as_ref(), MAX_APP_NAME_LEN);
        self
    }

    pub fn procid(mut self, v: impl AsRef<str>) -> Self {
        self.msg.procid = sanitize_header_value(v.as_ref(), MAX_PROCID_LEN);
        self
    }

    pub fn msgid(mut self, v: impl AsRef<str>) -> Self {
        self.msg.msgid = sanitize_header_value(v.as_ref(), MAX_MSGID_LEN);
        self
    }

    /// UTC timestamp with microseconds; NIL if the year is not 0000..=9999.
    pub fn timestamp(mut self, ts: jiff::Timestamp) -> Self {
        self.msg.timestamp = format_timestamp(ts);
        self
    }

    pub fn timestamp_now(self) -> Self {
        self.timestamp(jiff::Timestamp::now())
    }

    /// Use an already formatted RFC 5424 TIMESTAMP verbatim (e.g. to keep a
    /// local offset); rejected if it does not match the grammar.
    pub fn timestamp_text(mut self, ts: &str) -> Result<Self, TimestampError> {
        validate_timestamp(ts.as_bytes())?;
        self.msg.timestamp = Some(ts.to_owned());
        Ok(self)
    }

    /// Add parameters to the element `id`, creating it if needed (an SD-ID
    /// must not appear twice in a message, so repeated calls merge).
    pub fn sd_element<I, K, V>(mut self, id: &str, params: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let id = sanitize_sd_name(id);
        let idx = match self.msg.structured_data.iter().position(|e| e.id == id) {
            Some(i) => i,
            None => {
                self.msg.structured_data.push(SdElement::new(id));
                self.msg.structured_data.len() - 1
            }
        };
        if let Some(el) = self.msg.structured_data.get_mut(idx) {
            for (k, v) in params {
                el.params.push(SdParam {
                    name: sanitize_sd_name(k.as_ref()),
                    value: escape_controls(v.as_ref()).into_owned(),
                });
            }
        }
        self
    }

    /// Add one parameter to the element `id`.
    pub fn sd_param(self, id: &str, name: &str, value: impl AsRef<str>) -> Self {
        self.sd_element(id, [(name, value.as_ref())])
    }

    /// Text MSG, sent as MSG-UTF8 (with BOM, as RFC 5424 recommends).
    pub fn msg(mut self, text: impl AsRef<str>) -> Self {
        self.msg.msg = Some(Msg::utf8(escape_controls(text.as_ref()).into_owned()));
        self
    }

    /// Binary MSG, sent as MSG-ANY (no BOM).
    pub fn msg_bytes(mut self, bytes: impl AsRef<[u8]>) -> Self {
        let escaped = super::escape::escape_controls_bytes(bytes.as_ref());
        self.msg.msg = Some(Msg::any(escaped.into_owned()));
        self
    }

    pub fn build(self) -> SyslogMessage {
        self.msg
    }
}
