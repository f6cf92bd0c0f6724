//! Pure HTTP/1.x request parsing and credential extraction (Basic auth, login forms, JSON
//! logins, query strings). Lenient where attackers are sloppy, strict where framing is at
//! stake (request line, Content-Length).

use super::encoding::{base64_decode, form_pairs};

/// Headers kept per request; more is a 431.
pub const MAX_HEADERS: usize = 100;
/// Bytes of request head (request line + headers); more is a 431.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub version: String,
    pub headers: Vec<(String, Vec<u8>)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("malformed request line")]
    RequestLine,
    #[error("unsupported HTTP version")]
    Version,
    #[error("malformed header")]
    Header,
}

/// `GET /x HTTP/1.1` → method, target, version.
pub fn parse_request_line(line: &[u8]) -> Result<(String, String, String), HeadError> {
    let s = std::str::from_utf8(line).map_err(|_| HeadError::RequestLine)?;
    let mut parts = s.split(' ');
    let (Some(m), Some(t), Some(v), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::RequestLine);
    };
    let token = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_graphic());
    if !token(m)
        || !m
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_')
        || !token(t)
    {
        return Err(HeadError::RequestLine);
    }
    if v != "HTTP/1.1" && v != "HTTP/1.0" {
        return Err(HeadError::Version);
    }
    Ok((m.to_owned(), t.to_owned(), v.to_owned()))
}

/// `Name: value` → lower-cased name and trimmed value.
pub fn parse_header(line: &[u8]) -> Result<(String, Vec<u8>), HeadError> {
    let i = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(HeadError::Header)?;
    let name = &line[..i];
    if name.is_empty() || !name.iter().all(|b| b.is_ascii_graphic()) {
        return Err(HeadError::Header);
    }
    let value = super::dialogue::trim(&line[i + 1..]);
    Ok((
        String::from_utf8_lossy(name).to_ascii_lowercase(),
        value.to_vec(),
    ))
}

/// The body cannot be framed: chunked (unsupported here) or a bad/duplicate Content-Length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unsupported or invalid body framing")]
pub struct BodyFraming;

impl Request {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    pub fn header_text(&self, name: &str) -> String {
        self.header(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    }

    /// HTTP/1.1 keeps the connection unless `Connection: close`; 1.0 only with keep-alive.
    pub fn keep_alive(&self) -> bool {
        let c = self.header_text("connection").to_ascii_lowercase();
        if self.version == "HTTP/1.0" {
            c.contains("keep-alive")
        } else {
            !c.contains("close")
        }
    }

    /// `Ok(None)` without a body; `Err` for a body we cannot frame (chunked, bad length).
    pub fn content_length(&self) -> Result<Option<usize>, BodyFraming> {
        if self.header("transfer-encoding").is_some() {
            return Err(BodyFraming);
        }
        let mut lens = self.headers.iter().filter(|(n, _)| n == "content-length");
        match (lens.next(), lens.next()) {
            (None, _) => Ok(None),
            (Some((_, v)), None) => std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
                .map(Some)
                .ok_or(BodyFraming),
            _ => Err(BodyFraming),
        }
    }

    /// Path without the query string.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }
}

/// `Authorization: Basic …` → (user, password).
pub fn basic_auth(value: &[u8]) -> Option<(String, String)> {
    let v = super::dialogue::trim(value);
    let (scheme, rest) = v.split_at(v.iter().position(|&b| b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let raw = base64_decode(super::dialogue::trim(rest))?;
    let text = String::from_utf8_lossy(&raw);
    Some(match text.split_once(':') {
        Some((u, p)) => (u.to_owned(), p.to_owned()),
        None => (text.into_owned(), String::new()),
    })
}

const USER_KEYS: &[&str] = &[
    "username",
    "user",
    "login",
    "email",
    "uname",
    "user_name",
    "log",
    "usr",
    "name",
    "userid",
];
const PASS_KEYS: &[&str] = &["password", "pass", "passwd", "pwd", "pw", "secret", "passw"];

fn pick<'a>(pairs: &'a [(String, String)], keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| {
        pairs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
    })
}

/// Credentials posted to a login form: urlencoded or JSON body, or the query string.
pub fn form_credentials(content_type: &str, body: &[u8], query: &str) -> Option<(String, String)> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    if content_type.to_ascii_lowercase().contains("json") {
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(body) {
            for (k, v) in map {
                if let serde_json::Value::String(s) = v {
                    pairs.push((k, s));
                }
            }
        }
    } else {
        pairs.extend(lossy_pairs(body));
    }
    pairs.extend(lossy_pairs(query.as_bytes()));
    let user = pick(&pairs, USER_KEYS);
    let pass = pick(&pairs, PASS_KEYS);
    match (user, pass) {
        (None, None) => None,
        (u, p) => Some((u.unwrap_or("").to_owned(), p.unwrap_or("").to_owned())),
    }
}

fn lossy_pairs(b: &[u8]) -> impl Iterator<Item = (String, String)> {
    form_pairs(b).into_iter().map(|(k, v)| {
        (
            String::from_utf8_lossy(&k).into_owned(),
            String::from_utf8_lossy(&v).into_owned(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::type_complexity)]
    #[test]
    fn request_line_table() {
        let ok = |m: &str, t: &str, v: &str| Ok((m.to_owned(), t.to_owned(), v.to_owned()));
        let cases: &[(&[u8], Result<(String, String, String), HeadError>)] = &[
            (b"GET / HTTP/1.1", ok("GET", "/", "HTTP/1.1")),
            (
                b"POST /login?x=1 HTTP/1.0",
                ok("POST", "/login?x=1", "HTTP/1.0"),
            ),
            (b"GET / HTTP/2.0", Err(HeadError::Version)),
            (b"GET /", Err(HeadError::RequestLine)),
            (b"GET  / HTTP/1.1", Err(HeadError::RequestLine)),
            (b"get / HTTP/1.1", Err(HeadError::RequestLine)),
            (b"\x16\x03\x01\x02\x00", Err(HeadError::RequestLine)),
            (b"", Err(HeadError::RequestLine)),
        ];
        for (line, want) in cases {
            assert_eq!(
                &parse_request_line(line),
                want,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn header_table() {
        assert_eq!(
            parse_header(b"Host: a.b "),
            Ok(("host".into(), b"a.b".to_vec()))
        );
        assert_eq!(parse_header(b"X-Empty:"), Ok(("x-empty".into(), vec![])));
        assert_eq!(parse_header(b"no colon"), Err(HeadError::Header));
        assert_eq!(parse_header(b": v"), Err(HeadError::Header));
        assert_eq!(parse_header(b" folded: v"), Err(HeadError::Header));
    }

    fn req(version: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: "GET".into(),
            target: "/a?b=c".into(),
            version: version.into(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).into(), v.as_bytes().to_vec()))
                .collect(),
        }
    }

    #[test]
    fn framing_rules() {
        assert!(req("HTTP/1.1", &[]).keep_alive());
        assert!(!req("HTTP/1.1", &[("connection", "close")]).keep_alive());
        assert!(!req("HTTP/1.0", &[]).keep_alive());
        assert!(req("HTTP/1.0", &[("connection", "Keep-Alive")]).keep_alive());
        assert_eq!(req("HTTP/1.1", &[]).content_length(), Ok(None));
        assert_eq!(
            req("HTTP/1.1", &[("content-length", "12")]).content_length(),
            Ok(Some(12))
        );
        assert!(
            req("HTTP/1.1", &[("content-length", "-1")])
                .content_length()
                .is_err()
        );
        assert!(
            req(
                "HTTP/1.1",
                &[("content-length", "1"), ("content-length", "1")]
            )
            .content_length()
            .is_err()
        );
        assert!(
            req("HTTP/1.1", &[("transfer-encoding", "chunked")])
                .content_length()
                .is_err()
        );
        let r = req("HTTP/1.1", &[]);
        assert_eq!((r.path(), r.query()), ("/a", "b=c"));
    }

    #[allow(clippy::type_complexity)]
    #[test]
    fn credentials_table() {
        assert_eq!(
            basic_auth(b"Basic YWxpY2U6czNjOnJldA=="),
            Some(("alice".into(), "s3c:ret".into()))
        );
        assert_eq!(basic_auth(b"basic  Ym9i"), Some(("bob".into(), "".into())));
        assert_eq!(basic_auth(b"Bearer abc"), None);
        assert_eq!(basic_auth(b"Basic"), None);
        let cases: &[(&str, &[u8], &str, Option<(&str, &str)>)] = &[
            (
                "application/x-www-form-urlencoded",
                b"username=admin&password=p%40ss",
                "",
                Some(("admin", "p@ss")),
            ),
            ("", b"log=wp&pwd=x", "", Some(("wp", "x"))),
            (
                "application/json",
                br#"{"email":"a@b","password":"j"}"#,
                "",
                Some(("a@b", "j")),
            ),
            ("application/json", b"{not json", "", None),
            ("", b"", "user=q&pass=w", Some(("q", "w"))),
            ("", b"search=x", "", None),
            ("", b"password=only", "", Some(("", "only"))),
        ];
        for (ct, body, q, want) in cases {
            let got = form_credentials(ct, body, q);
            assert_eq!(
                got.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
                *want,
                "{ct} {body:?}"
            );
        }
    }
}
