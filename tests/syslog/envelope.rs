use decnet::syslog::*;

#[test]
fn round_trip() {
    let line = b"<134>1 2024-01-01T00:00:00Z h a - - - hi";
    for (file_id, offset) in [(0, 0), (1, 42), (u64::MAX, u64::MAX)] {
        let s = ShippedLine {
            file_id,
            offset,
            line,
        };
        let mut out = Vec::new();
        s.encode(&mut out);
        assert_eq!(out.len(), s.encoded_len());
        assert_eq!(decode_payload(&out), Ok(Payload::Enveloped(s)));
        // encode_frame = octet-counted frame of the same payload.
        let mut framed = Vec::new();
        s.encode_frame(&mut framed);
        let mut expect = Vec::new();
        encode_frame(&out, &mut expect);
        assert_eq!(framed, expect);
    }
    assert_eq!(
        decode_payload(b"7 0 "),
        Ok(Payload::Enveloped(ShippedLine {
            file_id: 7,
            offset: 0,
            line: b""
        }))
    );
}

#[test]
fn bare_syslog_is_accepted() {
    let line = b"<13>1 - - - - - rsyslog omfwd";
    let p = decode_payload(line).unwrap();
    assert_eq!(p, Payload::Bare(line));
    assert_eq!(p.line(), line);
}

#[test]
fn garbage_is_rejected() {
    use EnvelopeErrorKind as K;
    use decnet::syslog::envelope::EnvelopeField::{FileId, Offset};
    let cases: Vec<(&[u8], usize, K)> = vec![
        (b"", 0, K::Empty),
        (b"hello", 0, K::UnknownStart(b'h')),
        (b" 1 2 x", 0, K::UnknownStart(b' ')),
        (b"01 2 x", 0, K::LeadingZero(FileId)),
        (b"1 02 x", 2, K::LeadingZero(Offset)),
        (b"18446744073709551616 0 x", 0, K::Overflow(FileId)),
        (b"1 99999999999999999999 x", 2, K::Overflow(Offset)),
        (b"1", 1, K::ExpectedSp(FileId)),
        (b"1x 2 y", 1, K::ExpectedSp(FileId)),
        (b"1 ", 2, K::MissingNumber(Offset)),
        (b"1 2", 3, K::ExpectedSp(Offset)),
        (b"1 2\n<13>", 3, K::ExpectedSp(Offset)),
    ];
    for (input, offset, kind) in cases {
        assert_eq!(
            decode_payload(input),
            Err(EnvelopeError { offset, kind }),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}
