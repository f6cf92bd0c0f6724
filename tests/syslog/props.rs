use decnet::syslog::*;
use proptest::prelude::*;

/// Strings rich in the characters that break naive formatters.
fn nasty_string() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => any::<char>(),
            1 => prop::sample::select(vec![
                '"', ']', '[', '\\', '\n', '\r', '\0', '\t', '\u{7f}', '#', '0', '1', '7', '=',
                ' ', '-', '\u{feff}', 'é', '\u{2028}', '<', '>',
            ]),
        ],
        0..24,
    )
    .prop_map(String::from_iter)
}

fn facility() -> impl Strategy<Value = Facility> {
    (0u8..24).prop_map(|c| Facility::from_code(c).unwrap())
}

fn severity() -> impl Strategy<Value = Severity> {
    (0u8..8).prop_map(|c| Severity::from_code(c).unwrap())
}

#[derive(Debug, Clone)]
struct Fields {
    facility: Facility,
    severity: Severity,
    hostname: String,
    app: String,
    procid: String,
    msgid: String,
    ts_millis: Option<i64>,
    sd: Vec<(String, Vec<(String, String)>)>,
    msg: Option<Result<String, Vec<u8>>>,
}

fn fields() -> impl Strategy<Value = Fields> {
    (
        facility(),
        severity(),
        (
            nasty_string(),
            nasty_string(),
            nasty_string(),
            nasty_string(),
        ),
        prop::option::of(-62_000_000_000_000i64..253_402_000_000_000),
        prop::collection::vec(
            (
                nasty_string(),
                prop::collection::vec((nasty_string(), nasty_string()), 0..4),
            ),
            0..3,
        ),
        prop::option::of(prop_oneof![
            nasty_string().prop_map(Ok),
            prop::collection::vec(any::<u8>(), 0..40).prop_map(Err),
        ]),
    )
        .prop_map(
            |(facility, severity, (hostname, app, procid, msgid), ts_millis, sd, msg)| Fields {
                facility,
                severity,
                hostname,
                app,
                procid,
                msgid,
                ts_millis,
                sd,
                msg,
            },
        )
}

fn build(f: &Fields) -> SyslogMessage {
    let mut b = SyslogMessage::builder(f.facility, f.severity)
        .hostname(&f.hostname)
        .app_name(&f.app)
        .procid(&f.procid)
        .msgid(&f.msgid);
    if let Some(ms) = f.ts_millis {
        b = b.timestamp(jiff::Timestamp::from_millisecond(ms).unwrap());
    }
    for (id, params) in &f.sd {
        b = b.sd_element(id, params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    }
    match &f.msg {
        Some(Ok(t)) => b = b.msg(t),
        Some(Err(bytes)) => b = b.msg_bytes(bytes),
        None => {}
    }
    b.build()
}

fn is_clean_header(s: &str, max: usize) -> bool {
    !s.is_empty() && s != "-" && s.len() <= max && s.bytes().all(|b| (33..=126).contains(&b))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn parse_never_panics_on_prefixed_garbage(tail in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut v = b"<165>1 2003-10-11T22:14:15.003Z host app - ID47 ".to_vec();
        v.extend_from_slice(&tail);
        let _ = parse(&v);
    }

    #[test]
    fn parse_never_panics_on_mutated_messages(
        f in fields(),
        muts in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let mut bytes = build(&f).to_bytes();
        for (idx, byte, op) in muts {
            if bytes.is_empty() { break; }
            let i = idx.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => { bytes.remove(i); }
            }
            let _ = parse(&bytes);
        }
    }

    #[test]
    fn format_parse_round_trip(f in fields()) {
        let m = build(&f);
        let bytes = m.to_bytes();
        // Line-safe whatever the input.
        prop_assert!(!bytes.iter().any(|&b| b == b'\n' || b == b'\r' || b == 0 || b < 0x20 || b == 0x7f));
        let p = parse(&bytes).map_err(|e| TestCaseError::fail(format!("{e}: {:?}", String::from_utf8_lossy(&bytes))))?;
        prop_assert_eq!(&p, &m);
        // Values that needed no sanitizing come back verbatim.
        if is_clean_header(&f.hostname, 255) { prop_assert_eq!(p.hostname.as_deref(), Some(f.hostname.as_str())); }
        if is_clean_header(&f.app, 48) { prop_assert_eq!(p.app_name.as_deref(), Some(f.app.as_str())); }
        if is_clean_header(&f.procid, 128) { prop_assert_eq!(p.procid.as_deref(), Some(f.procid.as_str())); }
        if is_clean_header(&f.msgid, 32) { prop_assert_eq!(p.msgid.as_deref(), Some(f.msgid.as_str())); }
        // SD values and MSG always decode to the exact original.
        let all_params: Vec<&SdParam> = p.structured_data.iter().flat_map(|e| &e.params).collect();
        let mut want = Vec::new();
        let mut seen = Vec::new();
        for (id, params) in &f.sd {
            let sid = sanitize_sd_name(id);
            if !seen.contains(&sid) { seen.push(sid); }
            want.extend(params.iter().map(|(_, v)| v.clone()));
        }
        // Merged elements reorder params; compare as multisets.
        let mut got: Vec<String> = all_params.iter().map(|p| p.decoded_value().into_owned()).collect();
        got.sort();
        want.sort();
        prop_assert_eq!(got, want);
        prop_assert_eq!(p.structured_data.len(), seen.len());
        match (&f.msg, &p.msg) {
            (None, None) => {}
            (Some(Ok(t)), Some(m)) => {
                prop_assert!(m.has_bom());
                prop_assert_eq!(m.decoded_bytes().into_owned(), t.as_bytes().to_vec());
            }
            (Some(Err(b)), Some(m)) => {
                // A leading BOM in binary input turns into the BOM flag.
                let mut got = if m.has_bom() { BOM.to_vec() } else { Vec::new() };
                got.extend_from_slice(&m.decoded_bytes());
                if b.starts_with(&BOM) && !m.has_bom() {
                    prop_assert_eq!(&got[..], &b[BOM.len()..]);
                } else {
                    prop_assert_eq!(&got[..], &b[..]);
                }
            }
            _ => prop_assert!(false, "msg presence changed"),
        }
        if let Some(ms) = f.ts_millis {
            let ts = p.parsed_timestamp().unwrap().unwrap();
            prop_assert_eq!(ts.as_millisecond(), ms);
        }
    }

    #[test]
    fn raw_struct_formats_line_safe(s1 in nasty_string(), s2 in nasty_string(), raw in prop::collection::vec(any::<u8>(), 0..50)) {
        let mut m = SyslogMessage::new(Facility::User, Severity::Info);
        m.hostname = Some(s1.clone());
        m.msgid = Some(s2.clone());
        m.structured_data.push(SdElement { id: s1.clone(), params: vec![SdParam::new(s2.clone(), s1.clone())] });
        m.msg = Some(Msg::any(raw));
        let bytes = m.to_bytes();
        prop_assert!(!bytes.iter().any(|&b| b < 0x20 || b == 0x7f));
        let p = parse(&bytes);
        prop_assert!(p.is_ok(), "{:?} {:?}", p, String::from_utf8_lossy(&bytes));
        let p = p.unwrap();
        let want = unescape_controls(&escape_controls(&s1)).into_owned();
        prop_assert_eq!(p.structured_data[0].params[0].decoded_value().into_owned(), want);
    }

    #[test]
    fn escape_helpers_round_trip(s in nasty_string(), b in prop::collection::vec(any::<u8>(), 0..64)) {
        let e = escape_controls(&s);
        prop_assert!(!e.bytes().any(|c| c < 0x20 || c == 0x7f));
        prop_assert_eq!(unescape_controls(&e), s.as_str());
        let eb = escape_controls_bytes(&b);
        prop_assert_eq!(unescape_controls_bytes(&eb).into_owned(), b.clone());
        let esc = escape_sd_value(&s).into_owned();
        prop_assert_eq!(unescape_sd_value(&esc).into_owned(), escape_controls(&s).into_owned());
        let _ = unescape_controls(&String::from_utf8_lossy(&b));
        let _ = unescape_sd_value(&String::from_utf8_lossy(&b));
    }

    #[test]
    fn framing_any_chunking(
        msgs in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..300), 0..20),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..30),
    ) {
        let mut wire = Vec::new();
        for m in &msgs { encode_frame(m, &mut wire); }
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
        points.push(0);
        points.push(wire.len());
        points.sort_unstable();
        let mut d = FrameDecoder::with_max_frame_len(300);
        let mut got = Vec::new();
        for w in points.windows(2) {
            d.feed(&wire[w[0]..w[1]]);
            while let Some(f) = d.next_frame().unwrap() { got.push(f.to_vec()); }
        }
        prop_assert_eq!(got, msgs);
        prop_assert_eq!(d.buffered_len(), 0);
    }

    #[test]
    fn framing_never_panics(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..10), max in 1usize..5000) {
        let mut d = FrameDecoder::with_max_frame_len(max);
        for c in chunks {
            d.feed(&c);
            loop {
                match d.next_frame() {
                    Ok(Some(f)) => prop_assert!(!f.is_empty() && f.len() <= max),
                    Ok(None) => break,
                    Err(_) => { prop_assert_eq!(d.buffered_len(), 0); break; }
                }
            }
        }
    }

    #[test]
    fn envelope_round_trip(file_id in any::<u64>(), offset in any::<u64>(), line in prop::collection::vec(any::<u8>(), 0..100)) {
        let s = ShippedLine { file_id, offset, line: &line };
        let mut out = Vec::new();
        s.encode(&mut out);
        prop_assert_eq!(decode_payload(&out), Ok(Payload::Enveloped(s)));
    }

    #[test]
    fn envelope_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode_payload(&bytes);
    }
}
