//! SMTP (RFC 5321) like a Postfix that accepts mail but no credentials: EHLO/HELO, MAIL FROM,
//! RCPT TO and the message (size and subject, not the body) are logged, AUTH PLAIN/LOGIN
//! credentials are captured and always refused with Postfix's 535.

use super::dialogue::{Dialogue, Output, trim, verb};
use super::encoding::{base64_decode, base64_encode};
use super::event::{Event, kind};
use super::line_reader::Line;
use super::persona::Persona;

/// Size Postfix advertises (and the most a message may claim before we refuse it).
pub const MAX_SIZE: usize = 10_240_000;
/// Recipients per message (Postfix's `smtpd_recipient_limit` default).
pub const MAX_RCPT: usize = 1000;
/// Failed AUTHs before hanging up.
pub const MAX_AUTH_FAILS: u32 = 3;

enum State {
    Command,
    AuthLoginUser,
    AuthLoginPass(Vec<u8>),
    AuthPlain,
    Data {
        size: usize,
        subject: Option<String>,
    },
}

pub struct Smtp {
    hostname: String,
    distro: String,
    state: State,
    from: Option<String>,
    rcpts: usize,
    auth_fails: u32,
    queued: u32,
}

impl Smtp {
    pub fn new(p: &Persona) -> Self {
        Smtp {
            hostname: p.hostname.clone(),
            distro: p.distro().to_owned(),
            state: State::Command,
            from: None,
            rcpts: 0,
            auth_fails: 0,
            queued: 0,
        }
    }

    fn login(&mut self, method: &str, user: &[u8], pass: &[u8], out: &mut Output) {
        out.event(
            Event::new(kind::LOGIN_ATTEMPT)
                .with("auth_method", method)
                .with_bytes("username", user)
                .with_bytes("password", pass)
                .with("outcome", "failure"),
        );
        self.auth_fails += 1;
        out.send("535 5.7.8 Error: authentication failed: authentication failure\r\n");
        out.close = self.auth_fails >= MAX_AUTH_FAILS;
    }

    fn plain(&mut self, b64: &[u8], out: &mut Output) {
        match base64_decode(b64) {
            // authzid \0 authcid \0 passwd
            Some(raw) => {
                let mut parts = raw.splitn(3, |&b| b == 0);
                let _authz = parts.next();
                let user = parts.next().unwrap_or_default().to_vec();
                let pass = parts.next().unwrap_or_default().to_vec();
                self.login("plain", &user, &pass, out);
            }
            None => out.send("501 5.5.2 Syntax: AUTH mechanism\r\n"),
        }
    }

    fn command(&mut self, line: &[u8], out: &mut Output) {
        let (cmd, arg) = verb(line);
        let arg_text = String::from_utf8_lossy(arg).into_owned();
        match cmd.as_str() {
            "EHLO" => {
                out.event(
                    Event::new(kind::COMMAND)
                        .with("command", "EHLO")
                        .with("args", arg_text),
                );
                out.send(format!(
                    "250-{}\r\n250-PIPELINING\r\n250-SIZE {MAX_SIZE}\r\n250-VRFY\r\n250-ETRN\r\n\
                     250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n\
                     250-DSN\r\n250 SMTPUTF8\r\n",
                    self.hostname
                ));
            }
            "HELO" => {
                out.event(
                    Event::new(kind::COMMAND)
                        .with("command", "HELO")
                        .with("args", arg_text),
                );
                out.send(format!("250 {}\r\n", self.hostname));
            }
            "AUTH" => {
                let (mech, rest) = verb(arg);
                match (mech.as_str(), rest.is_empty()) {
                    ("PLAIN", false) => self.plain(rest, out),
                    ("PLAIN", true) => {
                        out.send("334 \r\n");
                        self.state = State::AuthPlain;
                    }
                    ("LOGIN", true) => {
                        out.send(format!("334 {}\r\n", base64_encode(b"Username:")));
                        self.state = State::AuthLoginUser;
                    }
                    ("LOGIN", false) => {
                        let user = base64_decode(rest).unwrap_or_else(|| rest.to_vec());
                        out.send(format!("334 {}\r\n", base64_encode(b"Password:")));
                        self.state = State::AuthLoginPass(user);
                    }
                    _ => out.send("535 5.7.8 Error: authentication failed: Invalid authentication mechanism\r\n"),
                }
            }
            "MAIL" => {
                let addr = path_arg(arg, "FROM:");
                out.event(Event::new(kind::MAIL_FROM).with("address", addr.clone()));
                self.from = Some(addr);
                self.rcpts = 0;
                out.send("250 2.1.0 Ok\r\n");
            }
            "RCPT" => {
                if self.from.is_none() {
                    out.send("503 5.5.1 Error: need MAIL command\r\n");
                } else if self.rcpts >= MAX_RCPT {
                    out.send("452 4.5.3 Error: too many recipients\r\n");
                } else {
                    self.rcpts += 1;
                    out.event(Event::new(kind::RCPT_TO).with("address", path_arg(arg, "TO:")));
                    out.send("250 2.1.5 Ok\r\n");
                }
            }
            "DATA" => {
                if self.rcpts == 0 {
                    out.send("554 5.5.1 Error: no valid recipients\r\n");
                } else {
                    out.send("354 End data with <CR><LF>.<CR><LF>\r\n");
                    self.state = State::Data {
                        size: 0,
                        subject: None,
                    };
                }
            }
            "RSET" => {
                self.from = None;
                self.rcpts = 0;
                out.send("250 2.0.0 Ok\r\n");
            }
            "NOOP" => out.send("250 2.0.0 Ok\r\n"),
            "VRFY" => out.send("252 2.0.0 Send some mail, I'll try my best\r\n"),
            "STARTTLS" => out.send("454 4.7.0 TLS not available due to local problem\r\n"),
            "QUIT" => {
                out.send("221 2.0.0 Bye\r\n");
                out.close = true;
            }
            "" => out.send("500 5.5.2 Error: bad syntax\r\n"),
            other => {
                out.event(
                    Event::new(kind::COMMAND)
                        .with("command", other)
                        .with("args", arg_text),
                );
                out.send("502 5.5.2 Error: command not recognized\r\n");
            }
        }
    }
}

/// `FROM:<a@b> SIZE=1` → `a@b` (lenient about spaces and missing brackets).
pub fn path_arg(arg: &[u8], prefix: &str) -> String {
    let s = String::from_utf8_lossy(arg);
    let s = s.trim();
    let s = if s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix) {
        s[prefix.len()..].trim_start()
    } else {
        s
    };
    match (s.find('<'), s.find('>')) {
        (Some(a), Some(b)) if a < b => s[a + 1..b].to_owned(),
        _ => s.split_whitespace().next().unwrap_or("").to_owned(),
    }
}

impl Dialogue for Smtp {
    fn greeting(&mut self, out: &mut Output) {
        out.send(format!(
            "220 {} ESMTP Postfix ({})\r\n",
            self.hostname, self.distro
        ));
    }

    fn on_line(&mut self, line: &Line, out: &mut Output) {
        let bytes = &line.bytes;
        match std::mem::replace(&mut self.state, State::Command) {
            State::Command if line.truncated => {
                out.send("500 5.5.0 Error: line too long\r\n");
            }
            State::Command => self.command(bytes, out),
            State::AuthPlain => self.plain(trim(bytes), out),
            State::AuthLoginUser => {
                let user = base64_decode(trim(bytes)).unwrap_or_else(|| bytes.clone());
                out.send(format!("334 {}\r\n", base64_encode(b"Password:")));
                self.state = State::AuthLoginPass(user);
            }
            State::AuthLoginPass(user) => {
                let pass = base64_decode(trim(bytes)).unwrap_or_else(|| bytes.clone());
                self.login("login", &user, &pass, out);
            }
            State::Data { size, subject } => {
                if bytes.as_slice() == b"." {
                    self.queued += 1;
                    let mut e = Event::new(kind::MESSAGE)
                        .with("from", self.from.clone().unwrap_or_default())
                        .with("rcpt_count", self.rcpts.to_string())
                        .with("size", size.to_string());
                    if let Some(s) = subject {
                        e = e.with("subject", s);
                    }
                    out.event(e);
                    out.send(format!(
                        "250 2.0.0 Ok: queued as {:05X}{:05X}\r\n",
                        self.queued,
                        size as u32 & 0xfffff
                    ));
                    self.from = None;
                    self.rcpts = 0;
                    return;
                }
                let size = size.saturating_add(bytes.len() + 2);
                if size > MAX_SIZE {
                    out.send("552 5.3.4 Error: message file too big\r\n");
                    out.close = true;
                    return;
                }
                let subject = subject.or_else(|| {
                    let l = String::from_utf8_lossy(bytes);
                    l.get(..8)
                        .filter(|p| p.eq_ignore_ascii_case("subject:"))
                        .map(|_| l[8..].trim().to_owned())
                });
                self.state = State::Data { size, subject };
            }
        }
    }

    fn on_idle(&mut self, out: &mut Output) {
        out.send("421 4.4.2 Error: timeout exceeded\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Personality;
    use crate::decky::services::dialogue::script;

    fn smtp() -> Smtp {
        Smtp::new(&Persona::new("mx1", &Personality::default()))
    }

    #[test]
    fn path_arg_table() {
        let cases = [
            (&b"FROM:<a@b.c> SIZE=10"[..], "FROM:", "a@b.c"),
            (b"from: <x@y>", "FROM:", "x@y"),
            (b"TO:bob@z", "TO:", "bob@z"),
            (b"FROM:<>", "FROM:", ""),
            (b"garbage", "TO:", "garbage"),
            (b"", "TO:", ""),
        ];
        for (arg, p, want) in cases {
            assert_eq!(path_arg(arg, p), want);
        }
    }

    #[test]
    fn mail_transaction() {
        let (text, ev, close) = script(
            &mut smtp(),
            &[
                b"EHLO spam.example",
                b"MAIL FROM:<s@spam.example>",
                b"RCPT TO:<v@victim>",
                b"DATA",
                b"Subject: Win big",
                b"",
                b"body",
                b".",
                b"QUIT",
            ],
        );
        assert!(
            text.starts_with("220 mx1 ESMTP Postfix (Ubuntu)\r\n250-mx1\r\n"),
            "{text}"
        );
        assert!(text.contains("354 End data"));
        assert!(text.contains("250 2.0.0 Ok: queued as"));
        assert!(close);
        let kinds: Vec<_> = ev.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [kind::COMMAND, kind::MAIL_FROM, kind::RCPT_TO, kind::MESSAGE]
        );
        assert_eq!(ev[1].field("address"), Some("s@spam.example"));
        assert_eq!(ev[2].field("address"), Some("v@victim"));
        assert_eq!(ev[3].field("subject"), Some("Win big"));
        assert_eq!(ev[3].field("size"), Some("26"));
    }

    #[test]
    fn auth_plain_and_login_are_captured() {
        // "\0alice\0pw1" and "bob" / "pw2"
        let (text, ev, _) = script(
            &mut smtp(),
            &[
                b"AUTH PLAIN AGFsaWNlAHB3MQ==",
                b"AUTH LOGIN",
                b"Ym9i",
                b"cHcy",
                b"AUTH PLAIN",
                b"!!",
            ],
        );
        assert!(
            text.contains("334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n"),
            "{text}"
        );
        let logins: Vec<_> = ev
            .iter()
            .map(|e| {
                (
                    e.field("auth_method").unwrap(),
                    e.field("username").unwrap(),
                    e.field("password").unwrap(),
                )
            })
            .collect();
        assert_eq!(logins, [("plain", "alice", "pw1"), ("login", "bob", "pw2")]);
        assert!(text.ends_with("501 5.5.2 Syntax: AUTH mechanism\r\n"));
    }
}
