//! Formatter. Infallible and defensive: whatever the struct holds, the
//! output is one valid RFC 5424 line with no raw control characters.

use std::fmt;

use super::escape::{BOM, escape_controls_into, has_control, write_sd_value};
use super::message::SyslogMessage;
use super::timestamp::validate_timestamp;
use super::{
    MAX_APP_NAME_LEN, MAX_HOSTNAME_LEN, MAX_MSGID_LEN, MAX_PROCID_LEN, MAX_SD_NAME_LEN,
    is_printusascii, is_sd_name_byte,
};
use crate::syslog::num::write_u64;

/// Header token: NILVALUE for None/empty, otherwise bytes outside
/// PRINTUSASCII become `_` and the value is cut at `max` bytes.
fn write_header(out: &mut Vec<u8>, value: Option<&str>, max: usize) {
    match value {
        Some(v) if !v.is_empty() => {
            let v = v.as_bytes();
            let v = v.get(..max).unwrap_or(v);
            if v.iter().all(|&b| is_printusascii(b)) {
                out.extend_from_slice(v);
            } else {
                out.extend(v.iter().map(|&b| if is_printusascii(b) { b } else { b'_' }));
            }
        }
        _ => out.push(b'-'),
    }
}

/// SD-NAME: same idea with the SD-NAME alphabet; never empty.
fn write_sd_name(out: &mut Vec<u8>, name: &str) {
    let v = name.as_bytes();
    let v = v.get(..MAX_SD_NAME_LEN).unwrap_or(v);
    if v.is_empty() {
        out.push(b'_');
    } else {
        out.extend(v.iter().map(|&b| if is_sd_name_byte(b) { b } else { b'_' }));
    }
}

impl SyslogMessage {
    /// Append the wire form (no framing, no trailing newline) to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.push(b'<');
        write_u64(out, u64::from(self.pri()));
        // Only VERSION 1 exists; writing anything else would be unparseable.
        out.extend_from_slice(b">1 ");
        match &self.timestamp {
            Some(t) if validate_timestamp(t.as_bytes()).is_ok() => {
                out.extend_from_slice(t.as_bytes())
            }
            _ => out.push(b'-'),
        }
        out.push(b' ');
        write_header(out, self.hostname.as_deref(), MAX_HOSTNAME_LEN);
        out.push(b' ');
        write_header(out, self.app_name.as_deref(), MAX_APP_NAME_LEN);
        out.push(b' ');
        write_header(out, self.procid.as_deref(), MAX_PROCID_LEN);
        out.push(b' ');
        write_header(out, self.msgid.as_deref(), MAX_MSGID_LEN);
        out.push(b' ');
        if self.structured_data.is_empty() {
            out.push(b'-');
        }
        for el in &self.structured_data {
            out.push(b'[');
            write_sd_name(out, &el.id);
            for p in &el.params {
                out.push(b' ');
                write_sd_name(out, &p.name);
                out.extend_from_slice(b"=\"");
                write_sd_value(p.value.as_bytes(), out);
                out.push(b'"');
            }
            out.push(b']');
        }
        if let Some(msg) = &self.msg {
            out.push(b' ');
            if msg.has_bom() {
                out.extend_from_slice(&BOM);
            }
            let bytes = msg.as_bytes();
            if has_control(bytes) {
                escape_controls_into(bytes, out);
            } else {
                out.extend_from_slice(bytes);
            }
        }
    }

    /// The wire form as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.estimated_len());
        self.write_to(&mut out);
        out
    }

    /// Cheap upper-ish estimate for buffer sizing.
    fn estimated_len(&self) -> usize {
        let opt = |o: &Option<String>| o.as_ref().map_or(1, String::len);
        let sd: usize = self
            .structured_data
            .iter()
            .map(|e| {
                e.id.len()
                    + 2
                    + e.params
                        .iter()
                        .map(|p| p.name.len() + p.value.len() + 8)
                        .sum::<usize>()
            })
            .sum();
        16 + opt(&self.timestamp)
            + opt(&self.hostname)
            + opt(&self.app_name)
            + opt(&self.procid)
            + opt(&self.msgid)
            + sd
            + self.msg.as_ref().map_or(0, |m| m.len() + 8)
    }
}

/// Same bytes as [`SyslogMessage::to_bytes`]; a MSG-ANY that is not UTF-8
/// is shown lossily.
impl fmt::Display for SyslogMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}
