//! FTP (RFC 959) control channel that never lets anyone in: USER/PASS are captured and
//! answered like vsftpd refusing a login; a handful of pre-login commands answer as vsftpd
//! does, everything else asks for a login. No data channel is ever opened.

use super::dialogue::{Dialogue, Output, verb};
use super::event::{Event, kind};
use super::line_reader::Line;
use super::persona::Persona;

/// vsftpd drops the connection after this many failed logins (its `max_login_fails`).
pub const MAX_LOGIN_FAILS: u32 = 3;

pub struct Ftp {
    banner: String,
    user: Option<Vec<u8>>,
    fails: u32,
}

impl Ftp {
    pub fn new(p: &Persona) -> Self {
        Ftp {
            banner: p.ftp_banner.clone(),
            user: None,
            fails: 0,
        }
    }
}

impl Dialogue for Ftp {
    fn greeting(&mut self, out: &mut Output) {
        out.send(format!("220 {}\r\n", self.banner));
    }

    fn on_line(&mut self, line: &Line, out: &mut Output) {
        if line.truncated {
            out.send("500 Input line too long.\r\n");
            out.close = true;
            return;
        }
        let (cmd, arg) = verb(&line.bytes);
        match cmd.as_str() {
            "USER" => {
                self.user = Some(arg.to_vec());
                out.send("331 Please specify the password.\r\n");
            }
            "PASS" => match self.user.take() {
                None => out.send("503 Login with USER first.\r\n"),
                Some(user) => {
                    out.event(
                        Event::new(kind::LOGIN_ATTEMPT)
                            .with_bytes("username", &user)
                            .with_bytes("password", arg)
                            .with("outcome", "failure"),
                    );
                    self.fails += 1;
                    out.send("530 Login incorrect.\r\n");
                    out.close = self.fails >= MAX_LOGIN_FAILS;
                }
            },
            "" => {}
            other => {
                out.event(
                    Event::new(kind::COMMAND)
                        .with("command", other)
                        .with_bytes("args", arg),
                );
                match other {
                    "QUIT" => {
                        out.send("221 Goodbye.\r\n");
                        out.close = true;
                    }
                    "SYST" => out.send("215 UNIX Type: L8\r\n"),
                    "NOOP" => out.send("200 NOOP ok.\r\n"),
                    "FEAT" => out.send(
                        "211-Features:\r\n EPRT\r\n EPSV\r\n MDTM\r\n PASV\r\n REST STREAM\r\n \
                         SIZE\r\n TVFS\r\n UTF8\r\n211 End\r\n",
                    ),
                    "OPTS" => out.send("200 Always in UTF8 mode.\r\n"),
                    "AUTH" | "PBSZ" | "PROT" | "CWD" | "PWD" | "LIST" | "NLST" | "RETR"
                    | "STOR" | "PASV" | "EPSV" | "PORT" | "EPRT" | "TYPE" | "SIZE" | "MKD"
                    | "DELE" | "RNFR" | "RNTO" | "SITE" | "STAT" | "HELP" | "MODE" | "STRU" => {
                        out.send("530 Please login with USER and PASS.\r\n")
                    }
                    _ => out.send("500 Unknown command.\r\n"),
                }
            }
        }
    }

    fn on_idle(&mut self, out: &mut Output) {
        out.send("421 Timeout.\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Personality;
    use crate::decky::services::dialogue::script;

    fn ftp() -> Ftp {
        Ftp::new(&Persona::new("files", &Personality::default()))
    }

    #[test]
    fn login_is_captured_and_refused() {
        let (text, events, close) = script(&mut ftp(), &[b"USER alice", b"PASS s3 cr#et", b"SYST"]);
        assert_eq!(
            text,
            "220 (vsFTPd 3.0.5)\r\n331 Please specify the password.\r\n530 Login incorrect.\r\n\
             215 UNIX Type: L8\r\n"
        );
        assert!(!close);
        assert_eq!(events[0].kind, kind::LOGIN_ATTEMPT);
        assert_eq!(events[0].field("username"), Some("alice"));
        assert_eq!(events[0].field("password"), Some("s3 cr#et"));
        assert_eq!(events[1].field("command"), Some("SYST"));
    }

    #[test]
    fn table() {
        let cases: &[(&[&[u8]], &str, bool)] = &[
            (&[b"PASS x"], "503 Login with USER first.\r\n", false),
            (&[b"QUIT"], "221 Goodbye.\r\n", true),
            (
                &[b"LIST"],
                "530 Please login with USER and PASS.\r\n",
                false,
            ),
            (&[b"XYZZY"], "500 Unknown command.\r\n", false),
            (
                &[
                    b"USER a", b"PASS 1", b"USER a", b"PASS 2", b"USER a", b"PASS 3", b"NOOP",
                ],
                "530 Login incorrect.\r\n",
                true,
            ),
        ];
        for (lines, last, close) in cases {
            let (text, _, closed) = script(&mut ftp(), lines);
            assert!(text.ends_with(last), "{lines:?} → {text:?}");
            assert_eq!(closed, *close, "{lines:?}");
        }
    }
}
