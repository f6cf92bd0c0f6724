use decnet::syslog::*;

fn frames_of(msgs: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        encode_frame(m, &mut out);
    }
    out
}

fn drain(d: &mut FrameDecoder) -> Result<Vec<Vec<u8>>, FrameError> {
    let mut v = Vec::new();
    while let Some(f) = d.next_frame()? {
        v.push(f.to_vec());
    }
    Ok(v)
}

#[test]
fn byte_by_byte() {
    let msgs: Vec<Vec<u8>> = (1..300).map(|n| vec![b'a' + (n % 26) as u8; n]).collect();
    let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
    let wire = frames_of(&refs);
    let mut d = FrameDecoder::new();
    let mut got = Vec::new();
    for b in &wire {
        d.feed(std::slice::from_ref(b));
        got.extend(drain(&mut d).unwrap());
    }
    assert_eq!(got, msgs);
    assert_eq!(d.buffered_len(), 0);
}

#[test]
fn partial_frame_is_buffered() {
    let mut d = FrameDecoder::new();
    d.feed(b"11 hello");
    assert_eq!(d.next_frame(), Ok(None));
    assert_eq!(d.buffered_len(), 8);
    d.feed(b" wo");
    assert_eq!(d.next_frame(), Ok(None));
    d.feed(b"rld");
    assert_eq!(d.next_frame(), Ok(Some(&b"hello world"[..])));
    assert_eq!(d.buffered_len(), 0);
}

#[test]
fn errors() {
    use FrameErrorKind as K;
    let cases: Vec<(usize, &[u8], u64, K)> = vec![
        (100, b"101 ", 0, K::TooLarge { len: 101, max: 100 }),
        (100, b"1000", 0, K::LengthFieldTooLong { max_digits: 3 }),
        (
            65536,
            b"65537",
            0,
            K::TooLarge {
                len: 65537,
                max: 65536,
            },
        ),
        (
            65536,
            b"99999999999999999999999",
            0,
            K::TooLarge {
                len: 99999,
                max: 65536,
            },
        ),
        (65536, b"a5 hello", 0, K::NonDigit(b'a')),
        (65536, b" 5 hello", 0, K::NonDigit(b' ')),
        (65536, b"<13>1 - - - - -", 0, K::NonDigit(b'<')),
        (65536, b"05 hello", 0, K::LeadingZero),
        (65536, b"0 ", 0, K::EmptyFrame),
        (65536, b"0x", 0, K::MissingSpace(b'x')),
        (65536, b"5\nhello", 0, K::MissingSpace(b'\n')),
        (65536, b"5 hello5xhello", 7, K::MissingSpace(b'x')),
        (
            100_000,
            b"1000000",
            0,
            K::LengthFieldTooLong { max_digits: 6 },
        ),
    ];
    for (max, input, offset, kind) in cases {
        let mut d = FrameDecoder::with_max_frame_len(max);
        d.feed(input);
        let r = drain(&mut d);
        assert_eq!(
            r,
            Err(FrameError { offset, kind }),
            "{:?}",
            String::from_utf8_lossy(input)
        );
        // Sticky: stays failed, ignores further input, keeps nothing.
        d.feed(b"5 hello");
        assert_eq!(d.next_frame(), Err(FrameError { offset, kind }));
        assert_eq!(d.buffered_len(), 0);
        assert!(d.error().is_some());
    }
}

#[test]
fn oversize_detected_before_body() {
    let mut d = FrameDecoder::with_max_frame_len(2048);
    d.feed(b"204");
    assert_eq!(d.next_frame(), Ok(None));
    d.feed(b"9");
    assert!(matches!(
        d.next_frame(),
        Err(FrameError {
            kind: FrameErrorKind::TooLarge { .. },
            ..
        })
    ));
    let e = d.next_frame().unwrap_err();
    assert_eq!(
        e.to_string(),
        "at stream byte 0: frame length 2049 exceeds the maximum of 2048 bytes"
    );
}

#[test]
fn exact_max_is_accepted() {
    let mut d = FrameDecoder::with_max_frame_len(RFC5425_MIN_FRAME_LEN);
    let body = vec![b'x'; RFC5425_MIN_FRAME_LEN];
    let mut w = Vec::new();
    encode_frame(&body, &mut w);
    d.feed(&w);
    assert_eq!(d.next_frame().unwrap().map(<[u8]>::len), Some(2048));
    assert_eq!(FrameDecoder::new().max_frame_len(), DEFAULT_MAX_FRAME_LEN);
}
