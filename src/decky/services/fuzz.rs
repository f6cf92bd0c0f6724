//! Property tests: arbitrary bytes into every protocol handler never panic, and every event
//! they produce formats to one line that our RFC 5424 parser reads back to the same fields.

use std::sync::Arc;

use proptest::prelude::*;

use super::dialogue::{Dialogue, Output};
use super::event::{Event, Session, cap_value};
use super::line_reader::{Line, LineReader, Terminator};
use super::persona::Persona;
use super::{ftp, hassh, http, http_parse, mysql, redis, smtp, telnet};
use crate::api::{Personality, Service};
use crate::syslog::{EVENT_SD_ID, parse};

fn session(service: Service) -> Session {
    Session::new(
        service,
        Arc::from("fuzz-decky"),
        "198.51.100.9:51515".parse().unwrap(),
        "10.1.2.3:2222".parse().unwrap(),
    )
}

/// The line parses, is one line, and carries exactly the session's and the event's fields.
fn check_round_trip(service: Service, e: &Event) {
    let s = session(service);
    let line = s.line(e);
    assert!(
        !line.iter().any(|&b| b == b'\n' || b == b'\r' || b == 0),
        "raw control in line"
    );
    let msg =
        parse(&line).unwrap_or_else(|err| panic!("{err}: {}", String::from_utf8_lossy(&line)));
    assert_eq!(msg.hostname.as_deref(), Some("fuzz-decky"));
    assert_eq!(msg.app_name.as_deref(), Some(service.as_str()));
    assert_eq!(msg.msgid.as_deref(), Some(e.kind));
    assert_eq!(msg.structured_data.len(), 1);
    let el = &msg.structured_data[0];
    assert_eq!(el.id, EVENT_SD_ID);
    let got: Vec<(String, String)> = el
        .params
        .iter()
        .map(|p| (p.name.clone(), p.decoded_value().into_owned()))
        .collect();
    let mut want: Vec<(String, String)> = vec![
        ("session".into(), s.id.clone()),
        ("src_ip".into(), "198.51.100.9".into()),
        ("src_port".into(), "51515".into()),
        ("dst_ip".into(), "10.1.2.3".into()),
        ("dst_port".into(), "2222".into()),
        ("protocol".into(), service.as_str().into()),
    ];
    want.extend(
        e.fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), cap_value(v).into_owned())),
    );
    assert_eq!(got, want);
}

fn drive<D: Dialogue>(service: Service, mut d: D, lines: &[(Vec<u8>, bool)]) {
    let mut out = Output::default();
    d.greeting(&mut out);
    for (bytes, truncated) in lines {
        if out.close {
            break;
        }
        d.on_line(
            &Line {
                bytes: bytes.clone(),
                truncated: *truncated,
            },
            &mut out,
        );
    }
    d.on_idle(&mut out);
    for e in &out.events {
        check_round_trip(service, e);
    }
}

fn lines() -> impl Strategy<Value = Vec<(Vec<u8>, bool)>> {
    let line = prop_oneof![
        // Raw garbage.
        proptest::collection::vec(any::<u8>(), 0..300),
        // Plausible commands with garbage arguments, to get past the verb dispatch.
        (
            prop::sample::select(vec![
                "USER ",
                "PASS ",
                "AUTH PLAIN ",
                "AUTH LOGIN",
                "MAIL FROM:",
                "RCPT TO:",
                "DATA",
                ".",
                "EHLO ",
                "*2",
                "$4",
                "AUTH ",
                "QUIT",
                "root",
                "uname -a",
                "Subject: ",
            ]),
            proptest::collection::vec(any::<u8>(), 0..80)
        )
            .prop_map(|(v, rest)| [v.as_bytes(), &rest].concat()),
    ];
    proptest::collection::vec((line, any::<bool>()), 0..40)
}

fn persona() -> Persona {
    Persona::new("fuzz-decky", &Personality::default())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn line_protocols_never_panic_and_log_parseable_lines(input in lines()) {
        drive(Service::Ftp, ftp::Ftp::new(&persona()), &input);
        drive(Service::Telnet, telnet::Telnet::new(&persona()), &input);
        drive(Service::Smtp, smtp::Smtp::new(&persona()), &input);
        drive(Service::Redis, redis::Redis::new(), &input);
    }

    #[test]
    fn http_never_panics(
        head in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..20),
        body in proptest::collection::vec(any::<u8>(), 0..500),
        method in prop::sample::select(vec!["GET", "POST", "HEAD", "PUT"]),
    ) {
        let _ = http_parse::parse_request_line(head.first().map_or(&[][..], |v| v));
        let headers: Vec<(String, Vec<u8>)> = head.iter().filter_map(|l| http_parse::parse_header(l).ok()).collect();
        for (_, v) in &headers {
            let _ = http_parse::basic_auth(v);
        }
        let req = http_parse::Request {
            method: method.into(),
            target: String::from_utf8_lossy(head.first().map_or(&[][..], |v| v)).into_owned(),
            version: "HTTP/1.1".into(),
            headers,
        };
        let _ = req.content_length();
        let site = http::Site::new(&persona());
        let reply = site.respond(&req, &body);
        for e in &reply.events {
            check_round_trip(Service::Http, e);
        }
        let _ = site.render(reply.status, &reply.headers, &reply.body, false, true);
    }

    #[test]
    fn binary_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Some(login) = mysql::parse_login(&bytes) {
            check_round_trip(Service::Mysql, &mysql::login_event(&login, &[b'x'; 20]));
        }
        let _ = hassh::parse_client_hello(&bytes);
        let mut with_ident = b"SSH-2.0-fuzz\r\n".to_vec();
        with_ident.extend_from_slice(&bytes);
        if let hassh::Hello::Done(h) = hassh::parse_client_hello(&with_ident) {
            check_round_trip(Service::Ssh, &super::ssh::kex_event(&h));
        }
        let _ = super::encoding::base64_decode(&bytes);
        let _ = super::encoding::form_pairs(&bytes);
    }

    #[test]
    fn line_reader_is_bounded(
        input in proptest::collection::vec(any::<u8>(), 0..3000),
        max in 1usize..200,
        crlf in any::<bool>(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let t = if crlf { Terminator::CrOrLf } else { Terminator::Lf };
            let mut r = LineReader::new(&input[..], max, t);
            let mut total = 0;
            while let Some(l) = r.next_line().await.unwrap() {
                assert!(l.bytes.len() <= max);
                total += l.bytes.len();
            }
            assert!(total <= input.len());
        });
    }
}
