//! Decky events: what a fake service observed, turned into one RFC 5424 line.
//!
//! Pure: a service builds an [`Event`] (type + its own fields); the connection's [`Session`]
//! stamps it with the fields every event carries (session id, source, destination, protocol)
//! and formats it. HOSTNAME is the decky, APP-NAME the service, MSGID the event type, and all
//! fields go into ONE neutral SD element ([`EVENT_SD_ID`]) so a line reveals nothing about
//! the product. Values are capped and control characters escaped by the syslog builder, so a
//! line never contains a raw newline whatever the attacker sent.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::api::Service;
use crate::syslog::{EVENT_SD_ID, Facility, Severity, SyslogMessage};

/// Longest field value kept (bytes, cut on a char boundary). Bounds a line's size whatever
/// the input; values longer than this get [`TRUNCATED_MARK`] appended.
pub const MAX_FIELD_LEN: usize = 1024;
/// Appended to a value that was cut at [`MAX_FIELD_LEN`].
pub const TRUNCATED_MARK: &str = "…";

/// Event types (MSGID). One place, so the docs table and the code cannot drift.
pub mod kind {
    pub const CONNECTION: &str = "connection";
    pub const DISCONNECT: &str = "disconnect";
    pub const LOGIN_ATTEMPT: &str = "login_attempt";
    pub const COMMAND: &str = "command";
    pub const REQUEST: &str = "request";
    pub const CLIENT_KEX: &str = "client_kex";
    pub const MAIL_FROM: &str = "mail_from";
    pub const RCPT_TO: &str = "rcpt_to";
    pub const MESSAGE: &str = "message";
}

/// One observation of a service, before the session stamps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: &'static str,
    pub fields: Vec<(&'static str, String)>,
}

impl Event {
    pub fn new(kind: &'static str) -> Self {
        Event {
            kind,
            fields: Vec::new(),
        }
    }

    #[must_use]
    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.fields.push((name, value.into()));
        self
    }

    /// Field from attacker bytes: invalid UTF-8 becomes U+FFFD (SD values are UTF-8).
    #[must_use]
    pub fn with_bytes(self, name: &'static str, value: &[u8]) -> Self {
        let v = String::from_utf8_lossy(value).into_owned();
        self.with(name, v)
    }

    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    fn severity(&self) -> Severity {
        match self.kind {
            kind::LOGIN_ATTEMPT | kind::COMMAND => Severity::Notice,
            _ => Severity::Info,
        }
    }
}

/// `value` cut to at most [`MAX_FIELD_LEN`] bytes on a char boundary (marked when cut).
pub fn cap_value(value: &str) -> std::borrow::Cow<'_, str> {
    if value.len() <= MAX_FIELD_LEN {
        return value.into();
    }
    let mut end = MAX_FIELD_LEN;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{TRUNCATED_MARK}", &value[..end]).into()
}

/// What every event of one connection shares.
#[derive(Clone, Debug)]
pub struct Session {
    /// Random per connection (12 hex digits, like Cowrie's session ids).
    pub id: String,
    pub service: Service,
    pub decky: Arc<str>,
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

impl Session {
    pub fn new(service: Service, decky: Arc<str>, src: SocketAddr, dst: SocketAddr) -> Self {
        Session {
            id: new_session_id(),
            service,
            decky,
            src,
            dst,
        }
    }

    /// The wire line for `event` (no trailing newline), timestamped now.
    pub fn line(&self, event: &Event) -> Vec<u8> {
        self.message(event, jiff::Timestamp::now()).to_bytes()
    }

    /// The RFC 5424 message for `event` at `ts`.
    pub fn message(&self, event: &Event, ts: jiff::Timestamp) -> SyslogMessage {
        let common = [
            ("session", self.id.clone()),
            ("src_ip", self.src.ip().to_string()),
            ("src_port", self.src.port().to_string()),
            ("dst_ip", self.dst.ip().to_string()),
            ("dst_port", self.dst.port().to_string()),
            ("protocol", self.service.as_str().to_owned()),
        ];
        let own = event.fields.iter().map(|(k, v)| (*k, cap_value(v)));
        SyslogMessage::builder(Facility::Local0, event.severity())
            .hostname(&*self.decky)
            .app_name(self.service.as_str())
            .msgid(event.kind)
            .timestamp(ts)
            .sd_element(
                EVENT_SD_ID,
                common
                    .iter()
                    .map(|(k, v)| (*k, std::borrow::Cow::Borrowed(v.as_str())))
                    .chain(own),
            )
            .build()
    }
}

fn new_session_id() -> String {
    let n: u64 = rand::random();
    format!("{:012x}", n & 0xffff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syslog::parse;

    fn session() -> Session {
        Session {
            id: "0123456789ab".into(),
            service: Service::Ssh,
            decky: Arc::from("web-01"),
            src: "203.0.113.7:40001".parse().unwrap(),
            dst: "10.0.0.5:22".parse().unwrap(),
        }
    }

    #[test]
    fn line_layout_and_round_trip() {
        let ev = Event::new(kind::LOGIN_ATTEMPT)
            .with("username", "root")
            .with("password", "a\"b]c\\d\ne\r\0f#012");
        let line = session().line(&ev);
        assert!(!line.contains(&b'\n') && !line.contains(&b'\r') && !line.contains(&0));
        let text = String::from_utf8(line.clone()).unwrap();
        assert!(text.starts_with("<133>1 "), "{text}"); // local0.notice
        assert!(text.contains(" web-01 ssh - login_attempt [meta@32473 session=\"0123456789ab\" src_ip=\"203.0.113.7\" src_port=\"40001\" dst_ip=\"10.0.0.5\" dst_port=\"22\" protocol=\"ssh\" username=\"root\" password=\"a\\\"b\\]c\\\\d#012e#015#000f#043012\"]"), "{text}");
        let msg = parse(&line).unwrap();
        assert_eq!(msg.structured_data.len(), 1);
        let el = &msg.structured_data[0];
        assert_eq!(el.id, "meta@32473");
        let got: Vec<(String, String)> = el
            .params
            .iter()
            .map(|p| (p.name.clone(), p.decoded_value().into_owned()))
            .collect();
        assert_eq!(got[6], ("username".into(), "root".into()));
        assert_eq!(got[7], ("password".into(), "a\"b]c\\d\ne\r\0f#012".into()));
    }

    #[test]
    fn long_values_are_capped_on_char_boundaries() {
        let v = "é".repeat(MAX_FIELD_LEN);
        let c = cap_value(&v);
        assert!(c.len() <= MAX_FIELD_LEN + TRUNCATED_MARK.len());
        assert!(c.ends_with(TRUNCATED_MARK));
        let ev = Event::new(kind::COMMAND).with("input", v);
        let line = session().line(&ev);
        assert!(line.len() < 4096);
        assert!(parse(&line).is_ok());
    }

    #[test]
    fn session_ids_are_12_hex() {
        let s = new_session_id();
        assert_eq!(s.len(), 12);
        assert!(s.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
