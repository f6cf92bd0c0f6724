use decnet::syslog::rfc5424::{Field, MAX_HOSTNAME_LEN};
use decnet::syslog::*;

/// RFC 5424 §6.5 example 1 (BOM before MSG, no STRUCTURED-DATA).
const EX1: &[u8] = b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xEF\xBB\xBF'su root' failed for lonvick on /dev/pts/8";
/// Example 2: MSG-ANY, offset timestamp.
const EX2: &[u8] = b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.";
/// Example 3: with STRUCTURED-DATA.
const EX3: &[u8] = b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \xEF\xBB\xBFAn application event log entry...";
/// Example 4: multiple SD elements, no MSG.
const EX4: &[u8] = b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"]";

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

#[test]
fn rfc_example_1() {
    let m = parse(EX1).unwrap();
    assert_eq!(m.facility, Facility::Auth);
    assert_eq!(m.severity, Severity::Critical);
    assert_eq!(m.pri(), 34);
    assert_eq!(m.version, 1);
    assert_eq!(m.timestamp, s("2003-10-11T22:14:15.003Z"));
    assert_eq!(m.hostname, s("mymachine.example.com"));
    assert_eq!(m.app_name, s("su"));
    assert_eq!(m.procid, None);
    assert_eq!(m.msgid, s("ID47"));
    assert!(m.structured_data.is_empty());
    let msg = m.msg.as_ref().unwrap();
    assert!(msg.has_bom());
    assert_eq!(
        msg.as_str(),
        Some("'su root' failed for lonvick on /dev/pts/8")
    );
    let ts = m.parsed_timestamp().unwrap().unwrap();
    assert_eq!(ts.as_millisecond(), 1_065_910_455_003);
    assert_eq!(m.to_bytes(), EX1);
}

#[test]
fn rfc_example_2() {
    let m = parse(EX2).unwrap();
    assert_eq!(m.facility, Facility::Local4);
    assert_eq!(m.severity, Severity::Notice);
    assert_eq!(m.timestamp, s("2003-08-24T05:14:15.000003-07:00"));
    assert_eq!(m.hostname, s("192.0.2.1"));
    assert_eq!(m.app_name, s("myproc"));
    assert_eq!(m.procid, s("8710"));
    assert_eq!(m.msgid, None);
    assert!(m.structured_data.is_empty());
    let msg = m.msg.as_ref().unwrap();
    assert!(!msg.has_bom());
    assert_eq!(msg.as_bytes(), b"%% It's time to make the do-nuts.");
    let ts = m.parsed_timestamp().unwrap().unwrap();
    assert_eq!(ts.to_string(), "2003-08-24T12:14:15.000003Z");
    assert_eq!(m.to_bytes(), EX2);
}

#[test]
fn rfc_example_3() {
    let m = parse(EX3).unwrap();
    assert_eq!(
        (m.facility, m.severity),
        (Facility::Local4, Severity::Notice)
    );
    assert_eq!(m.app_name, s("evntslog"));
    assert_eq!(m.structured_data.len(), 1);
    let el = &m.structured_data[0];
    assert_eq!(el.id, "exampleSDID@32473");
    let params: Vec<(&str, &str)> = el
        .params
        .iter()
        .map(|p| (p.name.as_str(), p.value.as_str()))
        .collect();
    assert_eq!(
        params,
        [
            ("iut", "3"),
            ("eventSource", "Application"),
            ("eventID", "1011")
        ]
    );
    let msg = m.msg.as_ref().unwrap();
    assert!(msg.has_bom());
    assert_eq!(msg.as_str(), Some("An application event log entry..."));
    assert_eq!(m.to_bytes(), EX3);
}

#[test]
fn rfc_example_4() {
    let m = parse(EX4).unwrap();
    assert_eq!(m.structured_data.len(), 2);
    assert_eq!(m.sd_param("exampleSDID@32473", "eventID"), Some("1011"));
    assert_eq!(m.sd_param("examplePriority@32473", "class"), Some("high"));
    assert_eq!(m.msg, None);
    assert_eq!(m.to_bytes(), EX4);
}

#[test]
fn sd_escapes_per_rfc() {
    // §6.3.5 style escapes plus an invalid escape kept verbatim.
    let line = br#"<13>1 - - - - - [x@32473 a="q\"b\\s\]e" p="C:\new\x"]"#;
    let m = parse(line).unwrap();
    assert_eq!(m.sd_param("x@32473", "a"), Some(r#"q"b\s]e"#));
    assert_eq!(m.sd_param("x@32473", "p"), Some(r"C:\new\x"));
    // Re-formatting escapes the lone backslashes, which parse back equal.
    let again = parse(&m.to_bytes()).unwrap();
    assert_eq!(again, m);
}

#[test]
fn msg_edge_cases() {
    let m = parse(b"<0>1 - - - - - -").unwrap();
    assert_eq!(
        (m.facility, m.severity, m.msg),
        (Facility::Kern, Severity::Emergency, None)
    );
    let m = parse(b"<191>1 - - - - - - ").unwrap();
    assert_eq!(
        (m.facility, m.severity),
        (Facility::Local7, Severity::Debug)
    );
    assert_eq!(m.msg.as_ref().map(|m| m.is_empty()), Some(true));
    let m = parse(b"<13>1 - - - - - - \xff\xfe raw").unwrap();
    assert_eq!(
        m.msg.as_ref().unwrap().to_text_lossy(),
        "\u{fffd}\u{fffd} raw"
    );
    assert_eq!(m.to_bytes(), b"<13>1 - - - - - - \xff\xfe raw");
    // Parsed raw controls are escaped on output.
    let m = parse(b"<13>1 - - - - - - a\nb").unwrap();
    assert_eq!(m.to_bytes(), b"<13>1 - - - - - - a#012b");
}

#[test]
fn builder_sanitizes_and_round_trips() {
    let m = SyslogMessage::builder(Facility::Local0, Severity::Info)
        .hostname("decky 01\n")
        .app_name("sshd")
        .procid("1234")
        .msgid("login")
        .timestamp_now()
        .sd_element(
            EVENT_SD_ID,
            [
                ("user", "root\"]\\"),
                ("pass", "a\r\nb\0"),
                ("bad name=", "x"),
            ],
        )
        .sd_param(EVENT_SD_ID, "src", "203.0.113.7")
        .msg("failed password for root\nfrom 203.0.113.7")
        .build();
    assert_eq!(m.hostname.as_deref(), Some("decky_01_"));
    let el = m.sd_element(EVENT_SD_ID).unwrap();
    assert_eq!(el.params.len(), 4);
    assert_eq!(el.params[1].value, "a#015#012b#000");
    assert_eq!(el.params[1].decoded_value(), "a\r\nb\0");
    assert_eq!(el.params[2].name, "bad_name_");
    let bytes = m.to_bytes();
    assert!(!bytes.iter().any(|&b| b < 0x20 || b == 0x7f));
    let p = parse(&bytes).unwrap();
    assert_eq!(p, m);
    assert_eq!(p.sd_param(EVENT_SD_ID, "user"), Some("root\"]\\"));
    assert_eq!(
        p.msg.unwrap().decoded_bytes().as_ref(),
        b"failed password for root\nfrom 203.0.113.7"
    );
    assert!(m.parsed_timestamp().unwrap().is_ok());
    assert_eq!(m.to_string().as_bytes(), &bytes[..]);
}

#[test]
fn builder_header_limits() {
    let long = "h".repeat(400);
    let m = SyslogMessage::builder(Facility::User, Severity::Notice)
        .hostname(&long)
        .app_name(&long)
        .procid(&long)
        .msgid(&long)
        .sd_element(&long, [(&long, "v")])
        .build();
    assert_eq!(m.hostname.as_ref().unwrap().len(), MAX_HOSTNAME_LEN);
    assert_eq!(m.app_name.as_ref().unwrap().len(), 48);
    assert_eq!(m.procid.as_ref().unwrap().len(), 128);
    assert_eq!(m.msgid.as_ref().unwrap().len(), 32);
    assert_eq!(m.structured_data[0].id.len(), 32);
    assert_eq!(parse(&m.to_bytes()).unwrap(), m);
    // "-" and "" mean NIL; unicode becomes one '_' per char.
    let m = SyslogMessage::builder(Facility::User, Severity::Notice)
        .hostname("-")
        .app_name("")
        .msgid("é√")
        .build();
    assert_eq!((m.hostname, m.app_name, m.msgid), (None, None, s("__")));
}

#[test]
fn formatter_is_defensive_on_raw_structs() {
    let mut m = SyslogMessage::new(Facility::Daemon, Severity::Warning);
    m.hostname = s("evil host\nname");
    m.app_name = s(&"a".repeat(100));
    m.timestamp = s("not a timestamp");
    m.structured_data.push(SdElement {
        id: "id with space]".into(),
        params: vec![SdParam::new("", "v\n\"")],
    });
    m.msg = Some(Msg::utf8("x\r\ny"));
    let bytes = m.to_bytes();
    assert!(!bytes.iter().any(|&b| b < 0x20 || b == 0x7f));
    let p = parse(&bytes).unwrap();
    assert_eq!(p.hostname, s("evil_host_name"));
    assert_eq!(p.app_name.unwrap().len(), 48);
    assert_eq!(p.timestamp, None);
    assert_eq!(p.structured_data[0].id, "id_with_space_");
    assert_eq!(p.structured_data[0].params[0].name, "_");
    assert_eq!(p.structured_data[0].params[0].decoded_value(), "v\n\"");
    assert_eq!(p.msg.unwrap().decoded_bytes().as_ref(), b"x\r\ny");
}

#[test]
fn msg_constructors() {
    assert_eq!(
        Msg::new(true, b"\xff".to_vec()),
        Err(MsgError::InvalidUtf8 { valid_up_to: 0 })
    );
    assert_eq!(Msg::new(false, BOM.to_vec()), Err(MsgError::LeadingBom));
    let m = Msg::any(b"\xEF\xBB\xBFok".to_vec());
    assert!(m.has_bom());
    assert_eq!(m.as_bytes(), b"ok");
    let m = Msg::any(b"\xEF\xBB\xBF\xff".to_vec());
    assert!(!m.has_bom());
}

#[test]
fn facility_severity_names() {
    for (i, f) in Facility::ALL.iter().enumerate() {
        assert_eq!(f.code() as usize, i);
        assert_eq!(Facility::from_name(f.name()), Some(*f));
    }
    assert_eq!(Facility::from_code(24), None);
    assert_eq!(Facility::Local0.name(), "local0");
    for s in Severity::ALL {
        assert_eq!(Severity::from_name(s.name()), Some(s));
    }
    assert_eq!(
        SyslogMessage::from_pri(191),
        Some((Facility::Local7, Severity::Debug))
    );
    assert_eq!(SyslogMessage::from_pri(192), None);
}

#[test]
fn error_display() {
    let e = parse(b"<34>1X").unwrap_err();
    assert_eq!(e.to_string(), "at byte 5: expected SP after VERSION");
}

#[test]
fn malformed_inputs() {
    use ParseErrorKind as K;
    use TimestampErrorKind as T;
    let long_host = format!("<13>1 - {} - - - -", "h".repeat(256));
    let long_sdid = format!("<13>1 - - - - - [{} a=\"b\"]", "i".repeat(33));
    let long_name = format!("<13>1 - - - - - [id {}=\"b\"]", "n".repeat(33));
    let cases: Vec<(&[u8], usize, K)> = vec![
        (b"", 0, K::ExpectedPriOpen),
        (b"34>1 - - - - - -", 0, K::ExpectedPriOpen),
        (b"<>1 - - - - - -", 1, K::ExpectedPriDigit),
        (b"<192>1 - - - - - -", 1, K::PriOutOfRange(192)),
        (b"<999>1 - - - - - -", 1, K::PriOutOfRange(999)),
        (b"<01>1 - - - - - -", 1, K::PriLeadingZero),
        (b"<1234>1 - - - - - -", 4, K::PriTooLong),
        (b"<34 1 - - - - - -", 3, K::ExpectedPriClose),
        (b"<34", 3, K::ExpectedPriClose),
        (b"<34>0 - - - - - -", 4, K::InvalidVersion),
        (b"<34>2 - - - - - -", 4, K::UnsupportedVersion(2)),
        (b"<34>11 - - - - - -", 4, K::UnsupportedVersion(11)),
        (b"<34>1000 - - - - - -", 7, K::ExpectedSp(Field::Version)),
        (b"<34> - - - - - -", 4, K::ExpectedVersion),
        (b"<34>1", 5, K::ExpectedSp(Field::Version)),
        (b"<34>1-", 5, K::ExpectedSp(Field::Version)),
        (
            b"<34>1 2003-13-11T22:14:15.003Z h a p m -",
            11,
            K::Timestamp(T::Month),
        ),
        (
            b"<34>1 2003-10-11T22:14:15.0000003Z h a p m -",
            32,
            K::Timestamp(T::SecFracTooLong),
        ),
        (
            b"<34>1 2003-10-11 22:14:15Z h a p m -",
            16,
            K::Timestamp(T::ExpectedT),
        ),
        (
            b"<34>1 2003-02-30T22:14:15Z h a p m -",
            14,
            K::Timestamp(T::Day),
        ),
        (
            b"<34>1 2003-10-11T22:14:15.003 h a p m -",
            29,
            K::Timestamp(T::Offset),
        ),
        (b"<34>1 -  a p m -", 8, K::EmptyField(Field::Hostname)),
        (b"<34>1 - h a p m", 15, K::UnexpectedEnd(Field::MsgId)),
        (
            b"<34>1 - h\xc3\xa9 a p m -",
            9,
            K::InvalidByte {
                field: Field::Hostname,
                byte: 0xc3,
            },
        ),
        (
            b"<34>1 - h a\tb p m -",
            11,
            K::InvalidByte {
                field: Field::AppName,
                byte: b'\t',
            },
        ),
        (
            long_host.as_bytes(),
            263,
            K::FieldTooLong {
                field: Field::Hostname,
                max: 255,
            },
        ),
        (
            b"<34>1 - h aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa p m -",
            58,
            K::FieldTooLong {
                field: Field::AppName,
                max: 48,
            },
        ),
        (
            b"<34>1 - h a p mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm -",
            46,
            K::FieldTooLong {
                field: Field::MsgId,
                max: 32,
            },
        ),
        (
            b"<34>1 - h a p m ",
            16,
            K::UnexpectedEnd(Field::StructuredData),
        ),
        (b"<34>1 - h a p m x", 16, K::ExpectedStructuredData),
        (b"<34>1 - h a p m -x", 17, K::ExpectedSpBeforeMsg),
        (b"<34>1 - h a p m [id a=\"b\"]x", 26, K::ExpectedSpBeforeMsg),
        (b"<34>1 - h a p m [id", 19, K::UnterminatedSdElement),
        (b"<34>1 - h a p m [id a=\"b\"", 25, K::UnterminatedSdElement),
        (b"<34>1 - h a p m [id a=\"b", 24, K::UnterminatedParamValue),
        (b"<34>1 - h a p m [id a=\"b\\\"]", 26, K::UnescapedBracket),
        (
            b"<34>1 - h a p m [id a=\"b\\\"",
            26,
            K::UnterminatedParamValue,
        ),
        (b"<34>1 - h a p m [id a=\"b]\"]", 24, K::UnescapedBracket),
        (b"<34>1 - h a p m []", 17, K::EmptyField(Field::SdId)),
        (
            b"<34>1 - h a p m [id =\"b\"]",
            20,
            K::EmptyField(Field::ParamName),
        ),
        (
            long_sdid.as_bytes(),
            49,
            K::FieldTooLong {
                field: Field::SdId,
                max: 32,
            },
        ),
        (
            long_name.as_bytes(),
            52,
            K::FieldTooLong {
                field: Field::ParamName,
                max: 32,
            },
        ),
        (
            b"<34>1 - h a p m [id=x a=\"b\"]",
            19,
            K::InvalidByte {
                field: Field::SdId,
                byte: b'=',
            },
        ),
        (b"<34>1 - h a p m [id a=b=\"c\"]", 22, K::ExpectedQuote),
        (
            b"<34>1 - h a p m [id n m=\"c\"]",
            21,
            K::InvalidByte {
                field: Field::ParamName,
                byte: b' ',
            },
        ),
        (b"<34>1 - h a p m [id a=\"c\"x]", 25, K::ExpectedSpOrBracket),
        (
            b"<34>1 - h a p m [id a=\"\xff\"]",
            23,
            K::InvalidUtf8(Field::ParamValue),
        ),
        (
            b"<34>1 - h a p m [id a=\"1\"][id b=\"2\"]",
            27,
            K::DuplicateSdId("id".into()),
        ),
        (
            b"<34>1 - h a p m - \xEF\xBB\xBFok\xff",
            23,
            K::InvalidUtf8(Field::Msg),
        ),
    ];
    for (input, offset, kind) in cases {
        let got = parse(input);
        assert_eq!(
            got,
            Err(ParseError {
                offset,
                kind: kind.clone()
            }),
            "input {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn every_truncation_is_an_error_or_shorter_message() {
    for ex in [EX1, EX2, EX3, EX4] {
        for cut in 0..ex.len() {
            // Must not panic; prefixes ending inside MSG are still valid.
            let _ = parse(&ex[..cut]);
        }
    }
}
