//! MySQL: sends a MySQL 8 server greeting (protocol 10), reads the client's handshake
//! response, logs who tried to log in (user, database, client program, the scrambled password
//! with the salt it answers, so it can be cracked offline) and answers Access denied (1045).
//! TLS is not offered, so clients answer in clear. Packet parsing is pure.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::ServiceCtx;
use super::encoding::hex;
use super::error::{EndReason, ServiceError};
use super::event::{Event, Session, kind};

pub const SERVER_VERSION: &str = "8.0.36-0ubuntu0.22.04.1";
/// Largest client packet accepted (a handshake response is a few hundred bytes).
pub const MAX_PACKET: usize = 64 * 1024;

const CLIENT_CONNECT_WITH_DB: u32 = 0x8;
const CLIENT_PROTOCOL_41: u32 = 0x200;
const CLIENT_SSL: u32 = 0x800;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_PLUGIN_AUTH: u32 = 0x8_0000;
const CLIENT_CONNECT_ATTRS: u32 = 0x10_0000;
const CLIENT_PLUGIN_AUTH_LENENC: u32 = 0x20_0000;
/// What MySQL 8 offers, minus SSL (we cannot do TLS) and compression.
const SERVER_CAPS: u32 = 0x01FF_FFFF & !CLIENT_SSL & !0x20;

/// Frames `payload` as a MySQL packet with sequence id `seq`.
pub fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len().min(0xFF_FFFF) as u32;
    let mut p = Vec::with_capacity(payload.len() + 4);
    p.extend_from_slice(&len.to_le_bytes()[..3]);
    p.push(seq);
    p.extend_from_slice(payload);
    p
}

/// The server greeting (HandshakeV10) with `salt` (20 bytes of scramble).
pub fn greeting(connection_id: u32, salt: &[u8; 20]) -> Vec<u8> {
    let mut p = vec![10];
    p.extend_from_slice(SERVER_VERSION.as_bytes());
    p.push(0);
    p.extend_from_slice(&connection_id.to_le_bytes());
    p.extend_from_slice(&salt[..8]);
    p.push(0);
    p.extend_from_slice(&(SERVER_CAPS as u16).to_le_bytes());
    p.push(0xff); // utf8mb4_0900_ai_ci
    p.extend_from_slice(&0x0002u16.to_le_bytes()); // SERVER_STATUS_AUTOCOMMIT
    p.extend_from_slice(&((SERVER_CAPS >> 16) as u16).to_le_bytes());
    p.push(21);
    p.extend_from_slice(&[0; 10]);
    p.extend_from_slice(&salt[8..]);
    p.push(0);
    p.extend_from_slice(b"caching_sha2_password\0");
    packet(0, &p)
}

/// ERR 1045 for `user` from `host`.
pub fn access_denied(seq: u8, user: &str, host: &str, with_password: bool) -> Vec<u8> {
    let mut p = vec![0xff];
    p.extend_from_slice(&1045u16.to_le_bytes());
    p.extend_from_slice(b"#28000");
    p.extend_from_slice(
        format!(
            "Access denied for user '{user}'@'{host}' (using password: {})",
            if with_password { "YES" } else { "NO" }
        )
        .as_bytes(),
    );
    packet(seq, &p)
}

/// What a client's HandshakeResponse told us.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Login {
    pub username: String,
    pub auth_response: Vec<u8>,
    pub database: Option<String>,
    pub auth_plugin: Option<String>,
    /// Connection attributes (`_client_name`, `program_name`, …).
    pub attrs: Vec<(String, String)>,
    /// The client asked to switch to TLS instead (SSLRequest).
    pub tls_request: bool,
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn cstr(&mut self) -> Option<&'a [u8]> {
        let i = self.0.iter().position(|&b| b == 0)?;
        let s = self.take(i)?;
        self.take(1)?;
        Some(s)
    }
    fn lenenc(&mut self) -> Option<u64> {
        Some(match self.u8()? {
            n @ 0..=0xfa => u64::from(n),
            0xfc => u64::from(u16::from_le_bytes(self.take(2)?.try_into().ok()?)),
            0xfd => {
                let b = self.take(3)?;
                u64::from(b[0]) | u64::from(b[1]) << 8 | u64::from(b[2]) << 16
            }
            0xfe => u64::from_le_bytes(self.take(8)?.try_into().ok()?),
            _ => return None,
        })
    }
    fn lenenc_bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.lenenc()?).ok()?;
        self.take(n)
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Parses a HandshakeResponse41 (or the older 320) payload; `None` when malformed.
pub fn parse_login(payload: &[u8]) -> Option<Login> {
    let mut c = Cursor(payload);
    let lo = u16::from_le_bytes(c.take(2)?.try_into().ok()?);
    let mut login = Login::default();
    if u32::from(lo) & CLIENT_PROTOCOL_41 == 0 {
        c.take(3)?; // max packet size
        login.username = text(c.cstr()?);
        login.auth_response = c.cstr().unwrap_or(c.0).to_vec();
        return Some(login);
    }
    let caps = u32::from(lo) | u32::from(u16::from_le_bytes(c.take(2)?.try_into().ok()?)) << 16;
    c.take(4 + 1 + 23)?;
    if caps & CLIENT_SSL != 0 && c.0.is_empty() {
        login.tls_request = true;
        return Some(login);
    }
    login.username = text(c.cstr()?);
    login.auth_response = if caps & CLIENT_PLUGIN_AUTH_LENENC != 0 {
        c.lenenc_bytes()?.to_vec()
    } else if caps & CLIENT_SECURE_CONNECTION != 0 {
        let n = c.u8()?;
        c.take(usize::from(n))?.to_vec()
    } else {
        c.cstr()?.to_vec()
    };
    if caps & CLIENT_CONNECT_WITH_DB != 0 {
        login.database = c.cstr().map(text);
    }
    if caps & CLIENT_PLUGIN_AUTH != 0 {
        login.auth_plugin = c.cstr().map(text);
    }
    if caps & CLIENT_CONNECT_ATTRS != 0
        && let Some(all) = c.lenenc_bytes()
    {
        let mut a = Cursor(all);
        while !a.0.is_empty() && login.attrs.len() < 32 {
            let (Some(k), Some(v)) = (a.lenenc_bytes(), a.lenenc_bytes()) else {
                break;
            };
            login.attrs.push((text(k), text(v)));
        }
    }
    Some(login)
}

/// The `login_attempt` event for `login` answered with `salt`.
pub fn login_event(login: &Login, salt: &[u8; 20]) -> Event {
    let mut e = Event::new(kind::LOGIN_ATTEMPT)
        .with("username", login.username.clone())
        .with("password_hash", hex(&login.auth_response))
        .with("salt", hex(salt))
        .with("outcome", "failure");
    if let Some(db) = &login.database {
        e = e.with("database", db.clone());
    }
    if let Some(p) = &login.auth_plugin {
        e = e.with("auth_method", p.clone());
    }
    for (k, v) in &login.attrs {
        match k.as_str() {
            "_client_name" => e = e.with("client_name", v.clone()),
            "_client_version" => e = e.with("client_version", v.clone()),
            "program_name" => e = e.with("program_name", v.clone()),
            _ => {}
        }
    }
    e
}

/// One connection: greeting, one handshake response, Access denied.
pub async fn run(
    mut stream: TcpStream,
    session: &Session,
    ctx: &ServiceCtx,
) -> Result<EndReason, ServiceError> {
    let salt: [u8; 20] = std::array::from_fn(|_| rand::random::<u8>() % 94 + 33);
    let conn_id = rand::random::<u16>() as u32 + 8;
    let idle = ctx.limits.idle_timeout;
    let io = |e: std::io::Error| ServiceError::Io(e);
    tokio::time::timeout(idle, stream.write_all(&greeting(conn_id, &salt)))
        .await
        .map_err(|_| ServiceError::IdleTimeout)?
        .map_err(io)?;
    let mut header = [0u8; 4];
    match tokio::time::timeout(idle, stream.read_exact(&mut header)).await {
        Err(_) => return Ok(EndReason::IdleTimeout),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Ok(EndReason::ClientClosed);
        }
        Ok(r) => r.map(drop).map_err(io)?,
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
    let seq = header[3];
    if len > MAX_PACKET {
        let _ = stream
            .write_all(&access_denied(seq.wrapping_add(1), "", "", false))
            .await;
        return Ok(EndReason::ServerClosed);
    }
    let mut payload = vec![0u8; len];
    match tokio::time::timeout(idle, stream.read_exact(&mut payload)).await {
        Err(_) => return Ok(EndReason::IdleTimeout),
        Ok(r) => r.map(drop).map_err(io)?,
    }
    let host = session.src.ip().to_string();
    let reply = match parse_login(&payload) {
        Some(login) if login.tls_request => {
            ctx.emitter
                .emit(
                    session,
                    &Event::new(kind::COMMAND).with("command", "SSLRequest"),
                )
                .await;
            // We never offered SSL: a real server would fail the same way.
            access_denied(seq.wrapping_add(1), "", &host, false)
        }
        Some(login) => {
            ctx.emitter.emit(session, &login_event(&login, &salt)).await;
            access_denied(
                seq.wrapping_add(1),
                &login.username,
                &host,
                !login.auth_response.is_empty(),
            )
        }
        None => {
            ctx.emitter
                .emit(
                    session,
                    &Event::new(kind::COMMAND)
                        .with("command", "malformed_handshake")
                        .with("args", hex(&payload[..payload.len().min(64)])),
                )
                .await;
            packet(seq.wrapping_add(1), b"\xff\x84\x04#08S01Bad handshake")
        }
    };
    let _ = tokio::time::timeout(idle, stream.write_all(&reply)).await;
    let _ = stream.shutdown().await;
    Ok(EndReason::ServerClosed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response41(user: &str, auth: &[u8], db: Option<&str>, attrs: &[(&str, &str)]) -> Vec<u8> {
        let mut caps = CLIENT_PROTOCOL_41
            | CLIENT_SECURE_CONNECTION
            | CLIENT_PLUGIN_AUTH
            | CLIENT_PLUGIN_AUTH_LENENC
            | CLIENT_CONNECT_ATTRS;
        if db.is_some() {
            caps |= CLIENT_CONNECT_WITH_DB;
        }
        let mut p = caps.to_le_bytes().to_vec();
        p.extend_from_slice(&(1u32 << 24).to_le_bytes());
        p.push(0xff);
        p.extend_from_slice(&[0; 23]);
        p.extend_from_slice(user.as_bytes());
        p.push(0);
        p.push(auth.len() as u8);
        p.extend_from_slice(auth);
        if let Some(db) = db {
            p.extend_from_slice(db.as_bytes());
            p.push(0);
        }
        p.extend_from_slice(b"caching_sha2_password\0");
        let mut a = Vec::new();
        for (k, v) in attrs {
            a.push(k.len() as u8);
            a.extend_from_slice(k.as_bytes());
            a.push(v.len() as u8);
            a.extend_from_slice(v.as_bytes());
        }
        p.push(a.len() as u8);
        p.extend_from_slice(&a);
        p
    }

    #[test]
    fn parses_handshake_responses() {
        let l = parse_login(&response41(
            "root",
            &[1, 2, 3],
            Some("prod"),
            &[("_client_name", "libmysql"), ("program_name", "mysql")],
        ))
        .unwrap();
        assert_eq!(l.username, "root");
        assert_eq!(l.auth_response, [1, 2, 3]);
        assert_eq!(l.database.as_deref(), Some("prod"));
        assert_eq!(l.auth_plugin.as_deref(), Some("caching_sha2_password"));
        assert_eq!(l.attrs.len(), 2);
        let e = login_event(&l, &[b'a'; 20]);
        assert_eq!(e.field("password_hash"), Some("010203"));
        assert_eq!(e.field("client_name"), Some("libmysql"));

        let empty = parse_login(&response41("guest", &[], None, &[])).unwrap();
        assert!(empty.auth_response.is_empty() && empty.database.is_none());

        // SSLRequest: 32 bytes, CLIENT_SSL set, nothing after the filler.
        let mut ssl = (CLIENT_PROTOCOL_41 | CLIENT_SSL).to_le_bytes().to_vec();
        ssl.extend_from_slice(&[0; 28]);
        assert!(parse_login(&ssl).unwrap().tls_request);

        // HandshakeResponse320.
        let old = [&[0x85u8, 0x00][..], &[0, 0, 1], b"bob\0", b"12345678\0"].concat();
        assert_eq!(parse_login(&old).unwrap().username, "bob");

        for bad in [
            &b""[..],
            b"\x00",
            &[0xff; 10],
            &response41("x", &[1], None, &[])[..40],
        ] {
            let _ = parse_login(bad); // must not panic
        }
        assert_eq!(parse_login(b"\x00\x02\x00\x00"), None);
    }

    #[test]
    fn greeting_and_error_layout() {
        let salt = [b'x'; 20];
        let g = greeting(42, &salt);
        assert_eq!(
            u32::from_le_bytes([g[0], g[1], g[2], 0]) as usize,
            g.len() - 4
        );
        assert_eq!(g[3], 0);
        assert_eq!(g[4], 10);
        assert!(
            g.windows(SERVER_VERSION.len())
                .any(|w| w == SERVER_VERSION.as_bytes())
        );
        let e = access_denied(2, "root", "10.0.0.1", true);
        assert_eq!(e[3], 2);
        assert_eq!(&e[4..7], &[0xff, 0x15, 0x04]);
        assert!(
            String::from_utf8_lossy(&e)
                .ends_with("Access denied for user 'root'@'10.0.0.1' (using password: YES)")
        );
    }
}
