//! Redis with `requirepass` set: every command is logged, AUTH passwords are captured and
//! refused with Redis 6+'s WRONGPASS, anything else gets NOAUTH. Speaks RESP arrays (what
//! redis-cli and client libraries send) and inline commands (what people type into netcat).
//!
//! RESP is parsed line by line: a bulk string holding a CR LF is cut at it, which only costs
//! exactness on binary arguments nobody can use without authenticating anyway.

use super::dialogue::{Dialogue, Output};
use super::event::{Event, kind};
use super::line_reader::Line;

/// Most arguments kept per command (the rest are counted, not stored).
pub const MAX_ARGS: usize = 64;

/// Pure RESP/inline command assembler.
#[derive(Debug, Default)]
pub struct RespParser {
    /// Arguments still expected in the current array.
    pending: usize,
    /// Inside an array: the next line is a `$len` header (false) or bulk data (true).
    expect_data: bool,
    args: Vec<Vec<u8>>,
    dropped: usize,
}

/// What one input line completed.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Need more lines.
    More,
    /// A complete command (first element is the name).
    Command(Vec<Vec<u8>>),
    /// Protocol error, as Redis reports it.
    Error(&'static str),
}

impl RespParser {
    pub fn feed(&mut self, line: &[u8]) -> Parsed {
        if self.pending == 0 {
            return match line.first() {
                Some(b'*') => match parse_len(&line[1..]) {
                    Some(0) => Parsed::More,
                    Some(n) if n <= 1024 * 1024 => {
                        self.pending = n;
                        self.expect_data = false;
                        self.args.clear();
                        self.dropped = 0;
                        Parsed::More
                    }
                    _ => Parsed::Error("-ERR Protocol error: invalid multibulk length\r\n"),
                },
                _ => {
                    let args: Vec<Vec<u8>> = line
                        .split(|b| b.is_ascii_whitespace())
                        .filter(|w| !w.is_empty())
                        .take(MAX_ARGS)
                        .map(<[u8]>::to_vec)
                        .collect();
                    if args.is_empty() {
                        Parsed::More
                    } else {
                        Parsed::Command(args)
                    }
                }
            };
        }
        if !self.expect_data {
            if line.first() != Some(&b'$') || parse_len(&line[1..]).is_none() {
                self.pending = 0;
                return Parsed::Error("-ERR Protocol error: expected '$'\r\n");
            }
            self.expect_data = true;
            return Parsed::More;
        }
        self.expect_data = false;
        if self.args.len() < MAX_ARGS {
            self.args.push(line.to_vec());
        } else {
            self.dropped += 1;
        }
        self.pending -= 1;
        if self.pending == 0 {
            Parsed::Command(std::mem::take(&mut self.args))
        } else {
            Parsed::More
        }
    }
}

fn parse_len(s: &[u8]) -> Option<usize> {
    std::str::from_utf8(s).ok()?.trim().parse().ok()
}

pub struct Redis {
    parser: RespParser,
}

impl Redis {
    pub fn new() -> Self {
        Redis {
            parser: RespParser::default(),
        }
    }
}

impl Default for Redis {
    fn default() -> Self {
        Self::new()
    }
}

impl Dialogue for Redis {
    fn greeting(&mut self, _out: &mut Output) {}

    fn on_line(&mut self, line: &Line, out: &mut Output) {
        if line.truncated {
            out.send("-ERR Protocol error: too big inline request\r\n");
            out.close = true;
            return;
        }
        let args = match self.parser.feed(&line.bytes) {
            Parsed::More => return,
            Parsed::Error(e) => {
                out.send(e);
                out.close = true;
                return;
            }
            Parsed::Command(a) => a,
        };
        let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
        let rest: Vec<String> = args[1..]
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if name == "AUTH" {
            let (user, pass) = match rest.as_slice() {
                [p] => ("default", p.as_str()),
                [u, p] => (u.as_str(), p.as_str()),
                _ => {
                    out.send("-ERR wrong number of arguments for 'auth' command\r\n");
                    return;
                }
            };
            out.event(
                Event::new(kind::LOGIN_ATTEMPT)
                    .with("username", user)
                    .with("password", pass)
                    .with("outcome", "failure"),
            );
            out.send("-WRONGPASS invalid username-password pair or user is disabled.\r\n");
            return;
        }
        out.event(
            Event::new(kind::COMMAND)
                .with("command", name.clone())
                .with("args", rest.join(" ")),
        );
        match name.as_str() {
            "QUIT" => {
                out.send("+OK\r\n");
                out.close = true;
            }
            _ => out.send("-NOAUTH Authentication required.\r\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decky::services::dialogue::script;

    #[test]
    fn resp_table() {
        let mut p = RespParser::default();
        let feed: Vec<Parsed> = [
            &b"*2"[..],
            b"$4",
            b"AUTH",
            b"$6",
            b"s3cret",
            b"PING",
            b"",
            b"*1",
            b"x",
        ]
        .iter()
        .map(|l| p.feed(l))
        .collect();
        assert_eq!(
            feed,
            vec![
                Parsed::More,
                Parsed::More,
                Parsed::More,
                Parsed::More,
                Parsed::Command(vec![b"AUTH".to_vec(), b"s3cret".to_vec()]),
                Parsed::Command(vec![b"PING".to_vec()]),
                Parsed::More,
                Parsed::More,
                Parsed::Error("-ERR Protocol error: expected '$'\r\n"),
            ]
        );
        assert!(matches!(
            RespParser::default().feed(b"*-5"),
            Parsed::Error(_)
        ));
        assert!(matches!(
            RespParser::default().feed(b"*99999999999"),
            Parsed::Error(_)
        ));
    }

    #[test]
    fn auth_and_commands() {
        let (text, ev, close) = script(
            &mut Redis::new(),
            &[
                b"*3",
                b"$4",
                b"auth",
                b"$5",
                b"admin",
                b"$2",
                b"pw",
                b"CONFIG SET dir /tmp",
                b"QUIT",
            ],
        );
        assert_eq!(
            text,
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n\
             -NOAUTH Authentication required.\r\n+OK\r\n"
        );
        assert!(close);
        assert_eq!(ev[0].field("username"), Some("admin"));
        assert_eq!(ev[0].field("password"), Some("pw"));
        assert_eq!(ev[1].field("command"), Some("CONFIG"));
        assert_eq!(ev[1].field("args"), Some("SET dir /tmp"));
    }
}
