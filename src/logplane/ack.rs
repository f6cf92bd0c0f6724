//! Acknowledgements, master → forwarder, on the same TLS connection: an
//! octet-counted frame `ACK <file_id> <next_offset>` sent after the lines up
//! to `next_offset` were committed. Plain RFC 5425 senders never get one
//! (acks only answer enveloped lines).

use crate::syslog::encode_frame;

pub fn encode(file_id: u64, next_offset: u64, out: &mut Vec<u8>) {
    encode_frame(format!("ACK {file_id} {next_offset}").as_bytes(), out);
}

/// Parses an ack payload; `None` for anything else.
pub fn decode(payload: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(payload).ok()?;
    let mut parts = text.strip_prefix("ACK ")?.split(' ');
    let file_id = parts.next()?.parse().ok()?;
    let next = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((file_id, next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syslog::FrameDecoder;

    #[test]
    fn round_trips_through_framing() {
        let mut buf = Vec::new();
        encode(42, 1_000_000, &mut buf);
        encode(u64::MAX, 0, &mut buf);
        let mut d = FrameDecoder::new();
        d.feed(&buf);
        assert_eq!(
            decode(d.next_frame().unwrap().unwrap()),
            Some((42, 1_000_000))
        );
        assert_eq!(
            decode(d.next_frame().unwrap().unwrap()),
            Some((u64::MAX, 0))
        );
        for bad in [
            &b"ACK 1"[..],
            b"ACK 1 2 3",
            b"NACK 1 2",
            b"ACK -1 2",
            b"ACK x y",
            b"\xff",
        ] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }
}
