//! `decnet decky serve --service S --decky D`: a deliberately minimal listener.
//!
//! PLACEHOLDER until issue #7, which replaces it with the full fake services (real SSH
//! handshake, HTTP, FTP dialogues, credential capture…). For now it binds the service's standard
//! port, sends a believable banner where that is trivial, emits one RFC 5424 `connection` event
//! per connection on stdout, and closes. Bounded: at most [`MAX_CONNECTIONS`] at once, each at
//! most [`CONNECTION_TIMEOUT`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::api::Service;
use crate::syslog::{EVENT_SD_ID, Facility, Severity, SyslogMessage};

pub const MAX_CONNECTIONS: usize = 64;
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// The greeting a client sees first, or what answers its first bytes (HTTP).
pub fn banner(service: Service, decky: &str) -> Option<String> {
    match service {
        Service::Ssh => Some("SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6\r\n".to_owned()),
        Service::Ftp => Some("220 (vsFTPd 3.0.5)\r\n".to_owned()),
        Service::Smtp => Some(format!("220 {decky} ESMTP Postfix (Ubuntu)\r\n")),
        Service::Telnet => Some(format!("Ubuntu 22.04.4 LTS\r\n{decky} login: ")),
        Service::Http | Service::Redis | Service::Mysql => None,
    }
}

fn reply(service: Service) -> Option<&'static str> {
    match service {
        Service::Http => Some(
            "HTTP/1.1 200 OK\r\nServer: Apache/2.4.52 (Ubuntu)\r\nContent-Type: text/html\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n",
        ),
        Service::Redis => Some("-NOAUTH Authentication required.\r\n"),
        _ => None,
    }
}

/// The RFC 5424 `connection` event line (no trailing newline).
pub fn connection_event(service: Service, decky: &str, peer: SocketAddr, port: u16) -> Vec<u8> {
    SyslogMessage::builder(Facility::Local0, Severity::Info)
        .hostname(decky)
        .app_name(service.as_str())
        .msgid("connection")
        .sd_element(
            EVENT_SD_ID,
            [
                ("src_ip", peer.ip().to_string()),
                ("src_port", peer.port().to_string()),
                ("dst_port", port.to_string()),
            ],
        )
        .timestamp_now()
        .build()
        .to_bytes()
}

/// Serves `service` for `decky` on `0.0.0.0:<port>` until the process is stopped.
pub async fn run(service: Service, decky: String, port: Option<u16>) -> std::io::Result<()> {
    let port = port.unwrap_or(service.port());
    let listener = TcpListener::bind(("0.0.0.0", port)).await?;
    serve(listener, service, Arc::from(decky.as_str())).await
}

/// Accept loop over an already bound listener (tests bind port 0).
pub async fn serve(
    listener: TcpListener,
    service: Service,
    decky: Arc<str>,
) -> std::io::Result<()> {
    let port = listener.local_addr()?.port();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let permit = tokio::select! {
            _ = term.recv() => return Ok(()),
            p = slots.clone().acquire_owned() => p.expect("semaphore never closed"),
        };
        let (stream, peer) = tokio::select! {
            _ = term.recv() => return Ok(()),
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let mut line = connection_event(service, &decky, peer, port);
        line.push(b'\n');
        {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&line).and_then(|_| out.flush());
        }
        let decky = decky.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, handle(stream, service, &decky)).await;
        });
    }
}

async fn handle(mut stream: TcpStream, service: Service, decky: &str) -> std::io::Result<()> {
    if let Some(b) = banner(service, decky) {
        stream.write_all(b.as_bytes()).await?;
    }
    if let Some(r) = reply(service) {
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .unwrap_or(Ok(0))?;
        if n > 0 {
            stream.write_all(r.as_bytes()).await?;
        }
    }
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ssh_banner_and_event() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, Service::Ssh, Arc::from("web-01")));
        let mut c = TcpStream::connect(addr).await.unwrap();
        let mut got = String::new();
        c.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6\r\n");
    }

    #[test]
    fn event_is_rfc5424_with_meta() {
        let line = connection_event(
            Service::Ftp,
            "files-01",
            "10.0.0.5:40000".parse().unwrap(),
            21,
        );
        let msg = crate::syslog::parse(&line).unwrap();
        let text = String::from_utf8(line).unwrap();
        assert!(text.contains("files-01 ftp - connection"), "{text}");
        assert!(
            text.contains(r#"[meta@32473 src_ip="10.0.0.5" src_port="40000" dst_port="21"]"#),
            "{text}"
        );
        drop(msg);
    }
}
