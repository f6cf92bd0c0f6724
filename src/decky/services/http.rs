//! HTTP: an Apache-looking server (configurable `Server` header) with a login page. Every
//! request is logged; Basic-auth headers and posted login forms are logged as login attempts
//! and always refused. The responder ([`Site::respond`]) is pure; [`run`] does the I/O with
//! caps on head size, header count, body size and requests per connection.

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::ServiceCtx;
use super::error::{EndReason, ServiceError};
use super::event::{Event, Session, kind};
use super::http_parse::{
    HeadError, MAX_HEAD_BYTES, MAX_HEADERS, Request, basic_auth, form_credentials, parse_header,
    parse_request_line,
};
use super::line_reader::{LineReader, Terminator};
use super::persona::Persona;

/// Largest request body read (login forms are tiny).
pub const MAX_BODY: usize = 64 * 1024;
/// Requests served on one keep-alive connection (Apache's MaxKeepAliveRequests).
pub const MAX_REQUESTS: usize = 100;

/// A response and what to log about the request that caused it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub events: Vec<Event>,
}

pub struct Site {
    server: String,
    hostname: String,
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        _ => "Internal Server Error",
    }
}

fn html_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

impl Site {
    pub fn new(p: &Persona) -> Self {
        Site {
            server: p.http_server.clone(),
            hostname: p.hostname.clone(),
        }
    }

    fn login_page(&self, error: bool) -> String {
        let msg = if error {
            "\n      <p class=\"error\">Invalid username or password.</p>"
        } else {
            ""
        };
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n  <meta charset=\"utf-8\">\n  \
             <title>{host} - Sign in</title>\n  <style>body{{font-family:sans-serif;background:#f3f3f3}}\
             form{{width:300px;margin:10% auto;padding:2em;background:#fff;border:1px solid #ccc}}\
             input{{display:block;width:100%;margin:.5em 0}}.error{{color:#b00}}</style>\n</head>\n\
             <body>\n  <form method=\"post\" action=\"/login\">\n      <h2>{host}</h2>{msg}\n      \
             <input name=\"username\" placeholder=\"Username\" autofocus>\n      \
             <input name=\"password\" type=\"password\" placeholder=\"Password\">\n      \
             <input type=\"submit\" value=\"Sign in\">\n  </form>\n</body>\n</html>\n",
            host = html_escape(&self.hostname)
        )
    }

    /// Apache's error page for `status`.
    pub fn error_page(&self, status: u16, detail: &str, host: &str) -> String {
        format!(
            "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>{status} \
             {r}</title>\n</head><body>\n<h1>{r}</h1>\n<p>{detail}</p>\n<hr>\n<address>{server} \
             Server at {host} Port 80</address>\n</body></html>\n",
            r = reason(status),
            server = html_escape(&self.server),
            host = html_escape(host),
        )
    }

    fn unauthorized(&self, host: &str) -> (u16, Vec<(&'static str, String)>, String) {
        (
            401,
            vec![("WWW-Authenticate", "Basic realm=\"Restricted Area\"".into())],
            self.error_page(
                401,
                "This server could not verify that you\nare authorized to access the document\n\
                 requested.  Either you supplied the wrong\ncredentials (e.g., bad password), or \
                 your\nbrowser doesn't understand how to supply\nthe credentials required.",
                host,
            ),
        )
    }

    /// The response to `req` (with its `body`) and the events it produces.
    pub fn respond(&self, req: &Request, body: &[u8]) -> Reply {
        let host = req.header_text("host");
        let host_or_name = if host.is_empty() {
            self.hostname.clone()
        } else {
            host.clone()
        };
        let path = req.path().to_owned();
        let mut events = Vec::new();
        let login = |user: String, pass: String, method: &str| {
            Event::new(kind::LOGIN_ATTEMPT)
                .with("auth_method", method)
                .with("username", user)
                .with("password", pass)
                .with("path", path.clone())
                .with("outcome", "failure")
        };
        let (status, headers, page) =
            if let Some((u, p)) = req.header("authorization").and_then(basic_auth) {
                events.push(login(u, p, "basic"));
                self.unauthorized(&host_or_name)
            } else if !matches!(req.method.as_str(), "GET" | "HEAD" | "POST") {
                (
                    405,
                    vec![("Allow", "GET,POST,HEAD".into())],
                    self.error_page(
                        405,
                        &format!(
                            "The requested method {} is not allowed for this URL.",
                            html_escape(&req.method)
                        ),
                        &host_or_name,
                    ),
                )
            } else if let Some((u, p)) =
                form_credentials(&req.header_text("content-type"), body, req.query())
            {
                events.push(login(u, p, "form"));
                (200, vec![], self.login_page(true))
            } else {
                match path.as_str() {
                    "/" | "/index.html" | "/index.php" | "/login" | "/login.php" | "/signin" => {
                        (200, vec![], self.login_page(false))
                    }
                    "/robots.txt" => (200, vec![], "User-agent: *\nDisallow: /admin/\n".to_owned()),
                    p if p.starts_with("/admin") || p.starts_with("/manager") => {
                        self.unauthorized(&host_or_name)
                    }
                    _ => (
                        404,
                        vec![],
                        self.error_page(
                            404,
                            "The requested URL was not found on this server.",
                            &host_or_name,
                        ),
                    ),
                }
            };
        let request = Event::new(kind::REQUEST)
            .with("method", req.method.clone())
            .with("host", host)
            .with("path", req.target.clone())
            .with("version", req.version.clone())
            .with("user_agent", req.header_text("user-agent"))
            .with("status", status.to_string());
        events.insert(0, request);
        Reply {
            status,
            headers,
            body: page,
            events,
        }
    }

    /// `status` for a request whose body we do not read; still logged as a request, and any
    /// Basic-auth credentials it carried are still captured.
    pub fn refuse(&self, req: &Request, status: u16) -> Reply {
        let mut reply = self.respond(req, &[]);
        reply.status = status;
        reply.headers.clear();
        reply.body = self.error_page(
            status,
            "The request body cannot be accepted.",
            &self.hostname,
        );
        for e in &mut reply.events {
            if e.kind == kind::REQUEST {
                for (k, v) in &mut e.fields {
                    if *k == "status" {
                        *v = status.to_string();
                    }
                }
            }
        }
        reply
    }

    /// Wire form of a response.
    pub fn render(
        &self,
        status: u16,
        headers: &[(&str, String)],
        body: &str,
        head_only: bool,
        keep_alive: bool,
    ) -> Vec<u8> {
        let ctype = if body.starts_with("User-agent") {
            "text/plain"
        } else {
            "text/html; charset=UTF-8"
        };
        let mut s = format!(
            "HTTP/1.1 {status} {}\r\nDate: {}\r\nServer: {}\r\n",
            reason(status),
            jiff::Timestamp::now().strftime("%a, %d %b %Y %H:%M:%S GMT"),
            self.server
        );
        for (k, v) in headers {
            s.push_str(&format!("{k}: {v}\r\n"));
        }
        s.push_str(&format!(
            "Content-Length: {}\r\n{}Content-Type: {ctype}\r\n\r\n",
            body.len(),
            if keep_alive {
                "Keep-Alive: timeout=5, max=100\r\nConnection: Keep-Alive\r\n"
            } else {
                "Connection: close\r\n"
            }
        ));
        let mut out = s.into_bytes();
        if !head_only {
            out.extend_from_slice(body.as_bytes());
        }
        out
    }
}

/// Why a request head could not be read.
enum HeadFail {
    Closed,
    Status(u16),
}

async fn read_head<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut LineReader<R>,
) -> Result<Result<Request, HeadFail>, std::io::Error> {
    // Tolerate a few stray empty lines before the request line (RFC 9112 §2.2).
    let mut first = None;
    for _ in 0..4 {
        match reader.next_line().await? {
            None => return Ok(Err(HeadFail::Closed)),
            Some(l) if l.truncated => return Ok(Err(HeadFail::Status(414))),
            Some(l) if l.bytes.is_empty() => continue,
            Some(l) => {
                first = Some(l.bytes);
                break;
            }
        }
    }
    let Some(first) = first else {
        return Ok(Err(HeadFail::Status(400)));
    };
    let (method, target, version) = match parse_request_line(&first) {
        Ok(x) => x,
        Err(HeadError::Version | HeadError::RequestLine | HeadError::Header) => {
            return Ok(Err(HeadFail::Status(400)));
        }
    };
    let mut total = first.len();
    let mut headers = Vec::new();
    loop {
        let Some(line) = reader.next_line().await? else {
            return Ok(Err(HeadFail::Closed));
        };
        total += line.bytes.len() + 2;
        if line.truncated || total > MAX_HEAD_BYTES || headers.len() >= MAX_HEADERS {
            return Ok(Err(HeadFail::Status(431)));
        }
        if line.bytes.is_empty() {
            break;
        }
        match parse_header(&line.bytes) {
            Ok(h) => headers.push(h),
            Err(_) => return Ok(Err(HeadFail::Status(400))),
        }
    }
    Ok(Ok(Request {
        method,
        target,
        version,
        headers,
    }))
}

pub async fn run(
    stream: TcpStream,
    session: &Session,
    ctx: &ServiceCtx,
) -> Result<EndReason, ServiceError> {
    let site = Site::new(&ctx.persona);
    let idle = ctx.limits.idle_timeout;
    let (read, mut write) = stream.into_split();
    let mut reader = LineReader::new(read, ctx.limits.max_line, Terminator::Lf);
    for _ in 0..MAX_REQUESTS {
        // The whole head must arrive within the idle timeout: a slowloris client trickling
        // header bytes cannot keep the connection forever.
        let req = match tokio::time::timeout(idle, read_head(&mut reader)).await {
            Err(_) => return Ok(EndReason::IdleTimeout),
            Ok(r) => r?,
        };
        let req = match req {
            Ok(r) => r,
            Err(HeadFail::Closed) => return Ok(EndReason::ClientClosed),
            Err(HeadFail::Status(status)) => {
                let host = ctx.persona.hostname.clone();
                let page = site.error_page(
                    status,
                    "Your browser sent a request that this server could not understand.",
                    &host,
                );
                let bytes = site.render(status, &[], &page, false, false);
                let _ = tokio::time::timeout(idle, write.write_all(&bytes)).await;
                let _ = write.shutdown().await;
                return Ok(EndReason::ServerClosed);
            }
        };
        let mut keep_alive = req.keep_alive();
        let reply = match req.content_length() {
            Ok(None) => site.respond(&req, &[]),
            Ok(Some(n)) if n <= MAX_BODY => {
                let body = match tokio::time::timeout(idle, reader.read_exact_or_eof(n)).await {
                    Err(_) => return Ok(EndReason::IdleTimeout),
                    Ok(b) => b?,
                };
                site.respond(&req, &body)
            }
            // A body we cannot (chunked) or will not (too large) read: answer and close.
            Ok(Some(_)) => {
                keep_alive = false;
                site.refuse(&req, 413)
            }
            Err(_) => {
                keep_alive = false;
                site.refuse(&req, 411)
            }
        };
        for e in &reply.events {
            ctx.emitter.emit(session, e).await;
        }
        let bytes = site.render(
            reply.status,
            &reply.headers,
            &reply.body,
            req.method == "HEAD",
            keep_alive,
        );
        tokio::time::timeout(idle, write.write_all(&bytes))
            .await
            .map_err(|_| ServiceError::IdleTimeout)??;
        if !keep_alive {
            let _ = write.shutdown().await;
            return Ok(EndReason::ServerClosed);
        }
    }
    let _ = write.shutdown().await;
    Ok(EndReason::ServerClosed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Personality;

    fn site() -> Site {
        Site::new(&Persona::new(
            "intranet",
            &Personality {
                http_server: Some("nginx/1.18.0".into()),
                ..Default::default()
            },
        ))
    }

    fn req(method: &str, target: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: method.into(),
            target: target.into(),
            version: "HTTP/1.1".into(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).into(), v.as_bytes().to_vec()))
                .collect(),
        }
    }

    #[allow(clippy::type_complexity)]
    #[test]
    fn routes_table() {
        let s = site();
        let cases: &[(&str, &str, &[(&str, &str)], &[u8], u16, &[&str])] = &[
            ("GET", "/", &[], b"", 200, &["request"]),
            ("GET", "/nope", &[], b"", 404, &["request"]),
            ("GET", "/admin/", &[], b"", 401, &["request"]),
            (
                "GET",
                "/",
                &[("authorization", "Basic YTpi")],
                b"",
                401,
                &["request", "login_attempt"],
            ),
            (
                "POST",
                "/login",
                &[("content-type", "application/x-www-form-urlencoded")],
                b"username=root&password=x",
                200,
                &["request", "login_attempt"],
            ),
            ("DELETE", "/", &[], b"", 405, &["request"]),
        ];
        let refused = s.refuse(
            &req("POST", "/login", &[("authorization", "Basic YTpi")]),
            411,
        );
        assert_eq!(refused.status, 411);
        assert_eq!(refused.events[0].field("status"), Some("411"));
        assert_eq!(refused.events[1].field("username"), Some("a"));
        for (m, t, h, body, status, kinds) in cases {
            let r = s.respond(&req(m, t, h), body);
            assert_eq!(r.status, *status, "{m} {t}");
            assert_eq!(
                r.events.iter().map(|e| e.kind).collect::<Vec<_>>(),
                *kinds,
                "{m} {t}"
            );
        }
    }

    #[test]
    fn request_event_fields_and_rendering() {
        let s = site();
        let r = s.respond(
            &req(
                "GET",
                "/?x=1",
                &[
                    ("host", "10.0.0.5"),
                    ("user-agent", "curl/8.0"),
                    ("authorization", "Basic YWxpY2U6czNjcmV0"),
                ],
            ),
            b"",
        );
        let ev = &r.events[0];
        assert_eq!(ev.field("method"), Some("GET"));
        assert_eq!(ev.field("host"), Some("10.0.0.5"));
        assert_eq!(ev.field("path"), Some("/?x=1"));
        assert_eq!(ev.field("user_agent"), Some("curl/8.0"));
        assert_eq!(ev.field("status"), Some("401"));
        assert_eq!(r.events[1].field("username"), Some("alice"));
        assert_eq!(r.events[1].field("password"), Some("s3cret"));
        assert_eq!(r.events[1].field("auth_method"), Some("basic"));
        let wire = String::from_utf8(s.render(r.status, &r.headers, &r.body, false, true)).unwrap();
        assert!(
            wire.starts_with("HTTP/1.1 401 Unauthorized\r\nDate: "),
            "{wire}"
        );
        assert!(wire.contains("\r\nServer: nginx/1.18.0\r\n"));
        assert!(wire.contains("WWW-Authenticate: Basic realm=\"Restricted Area\"\r\n"));
        assert!(wire.contains(&format!("Content-Length: {}\r\n", r.body.len())));
        let head = String::from_utf8(s.render(200, &[], "abc", true, false)).unwrap();
        assert!(
            head.ends_with("Connection: close\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n")
        );
    }
}
