//! One received line → the row stored for it. Pure.

use serde_json::{Map, Value};

use crate::syslog::{self, EVENT_SD_ID};

/// A parsed event ready to insert. Lines that are not valid RFC 5424 are
/// kept (raw, with the parse error) rather than lost.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub facility: Option<u8>,
    pub severity: Option<u8>,
    pub timestamp: Option<String>,
    pub hostname: Option<String>,
    pub app_name: Option<String>,
    pub msgid: Option<String>,
    pub src_ip: Option<String>,
    /// `{sd-id: {param: value}}` with values unescaped.
    pub fields: Option<String>,
    pub msg: Option<String>,
    pub parse_error: Option<String>,
}

pub fn parse_line(raw: &[u8]) -> EventRecord {
    // A stray trailing CR (from CRLF senders) is not part of the message.
    let line = raw.strip_suffix(b"\r").unwrap_or(raw);
    match syslog::parse(line) {
        Ok(m) => {
            let mut sd = Map::new();
            let mut src_ip = None;
            for el in &m.structured_data {
                let mut params = Map::new();
                for p in &el.params {
                    let v = p.decoded_value().into_owned();
                    if el.id == EVENT_SD_ID && p.name == "src_ip" {
                        src_ip = Some(v.clone());
                    }
                    params.insert(p.name.clone(), Value::String(v));
                }
                sd.insert(el.id.clone(), Value::Object(params));
            }
            EventRecord {
                facility: Some(m.facility.code()),
                severity: Some(m.severity.code()),
                timestamp: m.timestamp.clone(),
                hostname: m.hostname.clone(),
                app_name: m.app_name.clone(),
                msgid: m.msgid.clone(),
                src_ip,
                fields: (!sd.is_empty()).then(|| Value::Object(sd).to_string()),
                msg: m.msg.as_ref().map(|x| x.to_text_lossy().into_owned()),
                parse_error: None,
            }
        }
        Err(e) => EventRecord {
            facility: None,
            severity: None,
            timestamp: None,
            hostname: None,
            app_name: None,
            msgid: None,
            src_ip: None,
            fields: None,
            msg: None,
            parse_error: Some(e.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syslog::{Facility, Severity, SyslogMessage};

    #[test]
    fn extracts_event_fields() {
        let line = SyslogMessage::builder(Facility::Local0, Severity::Notice)
            .hostname("web-01")
            .app_name("ssh")
            .msgid("login_attempt")
            .sd_element(
                EVENT_SD_ID,
                [
                    ("src_ip", "192.0.2.7"),
                    ("username", "root"),
                    ("password", "a\"b]c\\d"),
                ],
            )
            .timestamp_text("2026-11-23T10:00:00.000001Z")
            .unwrap()
            .build()
            .to_bytes();
        let r = parse_line(&line);
        assert_eq!(r.parse_error, None);
        assert_eq!(r.hostname.as_deref(), Some("web-01"));
        assert_eq!(r.app_name.as_deref(), Some("ssh"));
        assert_eq!(r.msgid.as_deref(), Some("login_attempt"));
        assert_eq!(r.src_ip.as_deref(), Some("192.0.2.7"));
        assert_eq!(r.facility, Some(16));
        let f: Value = serde_json::from_str(r.fields.as_deref().unwrap()).unwrap();
        assert_eq!(f[EVENT_SD_ID]["password"], "a\"b]c\\d");
    }

    #[test]
    fn keeps_garbage_with_the_reason() {
        let r = parse_line(b"not syslog at all");
        assert!(r.parse_error.is_some());
        assert_eq!(r.hostname, None);
    }
}
