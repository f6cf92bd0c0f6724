//! The SSH client's first words, captured from the raw byte stream before russh consumes it:
//! its identification string and its KEXINIT, from which the HASSH fingerprint is computed
//! (md5 of `kex;encryption;mac;compression`, client-to-server lists; the Salesforce HASSH
//! definition). russh does not expose the peer's KEXINIT, so [`Tap`] records the first bytes
//! the client sends and [`parse_client_hello`] decodes them. Pure apart from `Tap`'s passthrough.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes captured at most (an identification line plus one KEXINIT fits easily).
pub const MAX_CAPTURE: usize = 64 * 1024;
const SSH_MSG_KEXINIT: u8 = 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientHello {
    /// Identification string, e.g. `SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u6`.
    pub version: String,
    pub kex: String,
    pub host_key: String,
    pub enc_c2s: String,
    pub mac_c2s: String,
    pub comp_c2s: String,
}

impl ClientHello {
    /// `kex;enc;mac;cmp`, the HASSH input ("hasshAlgorithms").
    pub fn hassh_algorithms(&self) -> String {
        format!(
            "{};{};{};{}",
            self.kex, self.enc_c2s, self.mac_c2s, self.comp_c2s
        )
    }

    pub fn hassh(&self) -> String {
        format!("{:x}", md5::compute(self.hassh_algorithms()))
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Hello {
    NeedMore,
    Done(ClientHello),
    /// Not SSH, or not what we can decode: stop looking.
    Invalid,
}

/// Decodes `ident CR LF` + the first binary packet (which must be a KEXINIT) from `buf`.
pub fn parse_client_hello(buf: &[u8]) -> Hello {
    // Clients send their identification first (RFC 4253 §4.2; other lines are server-only).
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > 255
            || (!buf.is_empty() && !b"SSH-".starts_with(&buf[..buf.len().min(4)]))
        {
            Hello::Invalid
        } else {
            Hello::NeedMore
        };
    };
    let ident = &buf[..nl];
    let ident = ident.strip_suffix(b"\r").unwrap_or(ident);
    if !ident.starts_with(b"SSH-") {
        return Hello::Invalid;
    }
    let rest = &buf[nl + 1..];
    let Some(len) = rest
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    else {
        return Hello::NeedMore;
    };
    if !(16..=MAX_CAPTURE).contains(&len) {
        return Hello::Invalid;
    }
    let Some(packet) = rest.get(4..4 + len) else {
        return Hello::NeedMore;
    };
    let pad = usize::from(packet[0]);
    let Some(payload) = packet.get(1..len.saturating_sub(pad)) else {
        return Hello::Invalid;
    };
    if payload.first() != Some(&SSH_MSG_KEXINIT) {
        return Hello::Invalid;
    }
    let mut p = payload.get(17..).unwrap_or_default(); // type + 16-byte cookie
    let mut lists = Vec::with_capacity(10);
    for _ in 0..10 {
        let Some(n) = p
            .get(..4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        else {
            return Hello::Invalid;
        };
        let Some(s) = p.get(4..4 + n) else {
            return Hello::Invalid;
        };
        lists.push(String::from_utf8_lossy(s).into_owned());
        p = &p[4 + n..];
    }
    Hello::Done(ClientHello {
        version: String::from_utf8_lossy(ident).into_owned(),
        kex: lists[0].clone(),
        host_key: lists[1].clone(),
        enc_c2s: lists[2].clone(),
        mac_c2s: lists[4].clone(),
        comp_c2s: lists[6].clone(),
    })
}

/// Passes a stream through unchanged while handing the first bytes read to `on_hello`.
pub struct Tap<S, F> {
    inner: S,
    buf: Vec<u8>,
    on_hello: Option<F>,
}

impl<S, F: FnOnce(ClientHello)> Tap<S, F> {
    pub fn new(inner: S, on_hello: F) -> Self {
        Tap {
            inner,
            buf: Vec::new(),
            on_hello: Some(on_hello),
        }
    }

    fn observe(&mut self, new: &[u8]) {
        if self.on_hello.is_none() || new.is_empty() {
            return;
        }
        let room = MAX_CAPTURE.saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&new[..new.len().min(room)]);
        match parse_client_hello(&self.buf) {
            Hello::NeedMore if room > new.len() => {}
            Hello::Done(h) => {
                if let Some(f) = self.on_hello.take() {
                    f(h);
                }
                self.buf = Vec::new();
            }
            _ => {
                self.on_hello = None;
                self.buf = Vec::new();
            }
        }
    }
}

impl<S: AsyncRead + Unpin, F: FnOnce(ClientHello) + Unpin> AsyncRead for Tap<S, F> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            let new = buf.filled()[before..].to_vec();
            self.observe(&new);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin, F: Unpin> AsyncWrite for Tap<S, F> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, b)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Builds a KEXINIT packet from name-lists (tests and fuzzing).
#[cfg(test)]
pub fn kexinit_packet(lists: [&str; 10]) -> Vec<u8> {
    let mut payload = vec![SSH_MSG_KEXINIT];
    payload.extend_from_slice(&[7; 16]);
    for l in lists {
        payload.extend_from_slice(&(l.len() as u32).to_be_bytes());
        payload.extend_from_slice(l.as_bytes());
    }
    payload.extend_from_slice(&[0, 0, 0, 0, 0]);
    let pad = 8 - (payload.len() + 5) % 8 + 4;
    let mut p = ((payload.len() + pad + 1) as u32).to_be_bytes().to_vec();
    p.push(pad as u8);
    p.extend_from_slice(&payload);
    p.extend(std::iter::repeat_n(0u8, pad));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTS: [&str; 10] = [
        "curve25519-sha256,ext-info-c",
        "ssh-ed25519",
        "aes128-ctr,chacha20-poly1305@openssh.com",
        "aes128-ctr",
        "hmac-sha2-256",
        "hmac-sha2-256",
        "none,zlib@openssh.com",
        "none",
        "",
        "",
    ];

    #[test]
    fn hello_and_hassh() {
        let mut buf = b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n".to_vec();
        buf.extend_from_slice(&kexinit_packet(LISTS));
        let Hello::Done(h) = parse_client_hello(&buf) else {
            panic!("not parsed")
        };
        assert_eq!(h.version, "SSH-2.0-OpenSSH_9.2p1 Debian");
        assert_eq!(
            h.hassh_algorithms(),
            "curve25519-sha256,ext-info-c;aes128-ctr,chacha20-poly1305@openssh.com;hmac-sha2-256;none,zlib@openssh.com"
        );
        assert_eq!(
            h.hassh(),
            format!("{:x}", md5::compute(h.hassh_algorithms()))
        );
        assert_eq!(h.hassh().len(), 32);
        // Every prefix is NeedMore, never a wrong answer.
        for i in 0..buf.len() {
            assert_eq!(parse_client_hello(&buf[..i]), Hello::NeedMore, "prefix {i}");
        }
    }

    #[test]
    fn known_hassh_value() {
        // md5("a;b;c;d") computed independently: echo -n 'a;b;c;d' | md5sum
        let h = ClientHello {
            version: String::new(),
            kex: "a".into(),
            host_key: String::new(),
            enc_c2s: "b".into(),
            mac_c2s: "c".into(),
            comp_c2s: "d".into(),
        };
        assert_eq!(h.hassh(), "845425be4f77f4097e014a6591497010");
    }

    #[test]
    fn garbage_is_invalid() {
        assert_eq!(parse_client_hello(b"GET / HTTP/1.1\r\n"), Hello::Invalid);
        assert_eq!(parse_client_hello(b"\x16\x03\x01"), Hello::Invalid);
        assert_eq!(
            parse_client_hello(b"SSH-2.0-x\r\n\xff\xff\xff\xff"),
            Hello::Invalid
        );
        let mut bad_type = b"SSH-2.0-x\r\n".to_vec();
        let mut pkt = kexinit_packet(LISTS);
        pkt[5] = 21;
        bad_type.extend_from_slice(&pkt);
        assert_eq!(parse_client_hello(&bad_type), Hello::Invalid);
    }
}
