//! One received line → the row stored for it. Pure.

use serde_json::{Map, Value};

use crate::syslog::{self, EVENT_SD_ID, SdElement};

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
            let src_ip = m
                .structured_data
                .iter()
                .filter(|el| el.id == EVENT_SD_ID)
                .flat_map(|el| el.params.iter())
                .rfind(|p| p.name == "src_ip")
                .map(|p| p.decoded_value().into_owned());
            EventRecord {
                facility: Some(m.facility.code()),
                severity: Some(m.severity.code()),
                fields: fields_json(&m.structured_data),
                msg: m.msg.as_ref().map(|x| x.to_text_lossy().into_owned()),
                timestamp: m.timestamp,
                hostname: m.hostname,
                app_name: m.app_name,
                msgid: m.msgid,
                src_ip,
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

/// Structured data as JSON `{sd-id: {param: value}}`, values unescaped. Written
/// straight out (this runs for every received line); a repeated SD-ID or
/// parameter name goes through a map instead, where the last one wins.
fn fields_json(sd: &[SdElement]) -> Option<String> {
    if sd.is_empty() {
        return None;
    }
    let repeated = sd.iter().enumerate().any(|(i, el)| {
        sd[..i].iter().any(|e| e.id == el.id)
            || el
                .params
                .iter()
                .enumerate()
                .any(|(j, p)| el.params[..j].iter().any(|q| q.name == p.name))
    });
    if repeated {
        let mut map = Map::new();
        for el in sd {
            let params: Map<String, Value> = el
                .params
                .iter()
                .map(|p| {
                    (
                        p.name.clone(),
                        Value::String(p.decoded_value().into_owned()),
                    )
                })
                .collect();
            map.insert(el.id.clone(), Value::Object(params));
        }
        return Some(Value::Object(map).to_string());
    }
    let mut out = Vec::with_capacity(128);
    out.push(b'{');
    for (i, el) in sd.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_str(&mut out, &el.id);
        out.extend_from_slice(b":{");
        for (j, p) in el.params.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            json_str(&mut out, &p.name);
            out.push(b':');
            json_str(&mut out, &p.decoded_value());
        }
        out.push(b'}');
    }
    out.push(b'}');
    String::from_utf8(out).ok()
}

fn json_str(out: &mut Vec<u8>, s: &str) {
    // Serializing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
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
    fn fields_are_json_whatever_the_structured_data() {
        let cases: [(&[u8], Option<Value>); 4] = [
            (b"<13>1 - h a - - - no sd", None),
            (
                b"<13>1 - h a - - [x@1 a=\"1\" b=\"q\\\"\\]\"][y@2 c=\"\xc3\xa9\\\\\"] m",
                Some(serde_json::json!({"x@1": {"a": "1", "b": "q\"]"}, "y@2": {"c": "\u{e9}\\"}})),
            ),
            // Repeated parameter: the last one wins.
            (
                b"<13>1 - h a - - [x@1 a=\"1\" a=\"2\"] m",
                Some(serde_json::json!({"x@1": {"a": "2"}})),
            ),
            // Control characters stay valid JSON.
            (
                b"<13>1 - h a - - [x@1 a=\"tab\there\"] m",
                Some(serde_json::json!({"x@1": {"a": "tab\there"}})),
            ),
        ];
        for (line, want) in cases {
            let r = parse_line(line);
            assert_eq!(r.parse_error, None, "{}", String::from_utf8_lossy(line));
            let got = r
                .fields
                .as_deref()
                .map(|f| serde_json::from_str::<Value>(f).unwrap());
            assert_eq!(got, want, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn keeps_garbage_with_the_reason() {
        let r = parse_line(b"not syslog at all");
        assert!(r.parse_error.is_some());
        assert_eq!(r.hostname, None);
    }
}
