//! The master's listener against other peers than our forwarder: hostile
//! framing from a properly authenticated agent, and a real rsyslog sending
//! plain RFC 5425 (no `<file_id> <offset>` envelope) with an agent cert.
//! Real `decnet listener` process, real mTLS on loopback, real SQLite.

mod support;

use support::free_port;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use decnet::logplane::eventdb::{EventDb, EventFilter};
use decnet::pki::{
    Bundle, CertificateAuthority, LeafOptions, RevocationList, RolePolicy, ServerNameCheck,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Env {
    dir: tempfile::TempDir,
    port: u16,
}

impl Env {
    fn new() -> Env {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Env {
            dir: tempfile::tempdir().unwrap(),
            port: free_port(),
        }
    }
    fn home(&self) -> PathBuf {
        self.dir.path().join("master")
    }
    fn ca(&self) -> CertificateAuthority {
        CertificateAuthority::load_or_create(&CertificateAuthority::dir_in(&self.home())).unwrap()
    }
    fn worker(&self, name: &str) -> PathBuf {
        let dir = self.dir.path().join(format!("agent-{name}"));
        self.ca()
            .issue_agent(name, &["127.0.0.1"], &LeafOptions::default())
            .unwrap()
            .write(&dir)
            .unwrap();
        dir
    }
    /// The listener, its log (tracing at info) going to `listener.err`.
    fn listener(&self, extra: &[&str]) -> Proc {
        let err = std::fs::File::create(self.dir.path().join("listener.err")).unwrap();
        let c = Command::new(env!("CARGO_BIN_EXE_decnet"))
            .args([
                "listener",
                "--host",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
            ])
            .args(extra)
            .env("DECNET_HOME", self.home())
            .env("DECNET_LOG", "info")
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "listener did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        Proc(c)
    }
    fn listener_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("listener.err")).unwrap_or_default()
    }
    async fn db(&self) -> EventDb {
        EventDb::open(&self.home().join("events.db")).await.unwrap()
    }
    async fn wait_count(&self, want: i64, within: Duration) -> i64 {
        let db = self.db().await;
        let deadline = Instant::now() + within;
        loop {
            let n = db.count().await.unwrap();
            if n >= want || Instant::now() > deadline {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    /// A TLS connection presenting the worker's agent certificate, exactly
    /// as the forwarder connects.
    async fn agent_conn(
        &self,
        worker_dir: &Path,
    ) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        let bundle = Bundle::load(worker_dir).unwrap();
        let cfg = decnet::pki::client_config(
            &bundle,
            RolePolicy::master(),
            RevocationList::new(),
            ServerNameCheck::Verify,
        )
        .unwrap();
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        tokio_rustls::TlsConnector::from(Arc::clone(&cfg))
            .connect(name, tcp)
            .await
            .unwrap()
    }
}

fn event(i: usize, tag: &str) -> String {
    format!(
        "<134>1 2026-11-23T10:00:00.000000Z web-01 ssh - login_attempt [meta@32473 seq=\"{i}\"] {tag} {i}"
    )
}

/// One enveloped frame as the forwarder sends it.
fn enveloped(file_id: u64, offset: u64, line: &str) -> Vec<u8> {
    let mut out = Vec::new();
    decnet::syslog::ShippedLine {
        file_id,
        offset,
        line: line.as_bytes(),
    }
    .encode_frame(&mut out);
    out
}

/// Reads until the server closes (EOF or error); returns what arrived.
async fn read_until_closed(tls: &mut (impl AsyncReadExt + Unpin)) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return got,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the listener did not drop the connection"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_and_garbage_frames_drop_the_connection_and_keep_earlier_frames() {
    let env = Env::new();
    let w1 = env.worker("w1");
    let _listener = env.listener(&["--max-frame", "4096"]);

    // 1. Three valid frames and, in the same write, a header announcing a
    //    frame far above the listener's maximum, followed by its bytes.
    let mut tls = env.agent_conn(&w1).await;
    let mut bytes = Vec::new();
    let mut off = 0u64;
    for i in 0..3 {
        let l = event(i, "good");
        bytes.extend(enveloped(7, off, &l));
        off += l.len() as u64 + 1;
    }
    let huge = event(99, &"OVERSIZE".repeat(1000));
    bytes.extend_from_slice(format!("{} 7 {off} {huge}", huge.len() + 20).as_bytes());
    tls.write_all(&bytes).await.unwrap();
    let _ = tls.flush().await;
    read_until_closed(&mut tls).await;

    // 2. Two valid frames (acknowledged, so stored), then a length that is
    //    not a number at all.
    let mut tls = env.agent_conn(&w1).await;
    let mut bytes = Vec::new();
    let mut off = 0u64;
    for i in 3..5 {
        let l = event(i, "good");
        bytes.extend(enveloped(8, off, &l));
        off += l.len() as u64 + 1;
    }
    tls.write_all(&bytes).await.unwrap();
    let mut ack = vec![0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut ack))
        .await
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&ack[..n]).contains(&format!("ACK 8 {off}")),
        "{:?}",
        &ack[..n]
    );
    tls.write_all(format!("abc {}", event(98, "GARBAGE")).as_bytes())
        .await
        .unwrap();
    let _ = tls.flush().await;
    read_until_closed(&mut tls).await;

    assert_eq!(env.wait_count(5, Duration::from_secs(10)).await, 5);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = env.db().await.query(&EventFilter::default()).await.unwrap();
    assert_eq!(events.len(), 5, "only the valid frames are stored");
    for e in &events {
        let raw = String::from_utf8_lossy(&e.raw);
        assert!(
            raw.contains("good") && !raw.contains("OVERSIZE") && !raw.contains("GARBAGE"),
            "{raw}"
        );
        assert_eq!(e.source_worker, "w1");
    }
    let master_log = std::fs::read_to_string(env.home().join("master.log")).unwrap();
    assert_eq!(master_log.lines().count(), 5);
    // Each drop is logged with its reason.
    let log = env.listener_log();
    assert!(
        log.contains("connection dropped") && log.contains("exceeds the maximum of 4096"),
        "{log}"
    );
    assert!(log.contains("non-digit byte 0x61"), "{log}");
}

// ---------------------------------------------------------------- rsyslog

fn rsyslogd() -> Option<PathBuf> {
    ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Missing rsyslog: skip loudly, or fail when the test script demands it.
fn no_rsyslog(test: &str) {
    let msg = format!(
        "{test}: SKIPPED, rsyslogd is not installed (apt-get install rsyslog rsyslog-openssl)"
    );
    assert!(
        std::env::var_os("DECNET_REQUIRE_RSYSLOG").is_none(),
        "{msg}"
    );
    eprintln!("{msg}");
}

/// An rsyslogd of our own: private config, work dir and pid file; no system
/// inputs (no imklog/imuxsock). Killed on drop.
fn start_rsyslogd(bin: &Path, dir: &Path, conf: &str) -> Proc {
    std::fs::create_dir_all(dir.join("work")).unwrap();
    let conf_path = dir.join("rsyslog.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let out = std::fs::File::create(dir.join("rsyslogd.out")).unwrap();
    let check = Command::new(bin)
        .arg("-N1")
        .arg("-f")
        .arg(&conf_path)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "rsyslog config rejected: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    Proc(
        Command::new(bin)
            .arg("-n")
            .arg("-f")
            .arg(&conf_path)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_omfwd_over_mtls_is_stored_with_the_worker_from_the_cert() {
    let Some(bin) = rsyslogd() else {
        return no_rsyslog("rsyslog interop");
    };
    const N: usize = 200;
    let env = Env::new();
    let agent = env.worker("rsys-w1");
    let _listener = env.listener(&[]);
    let rs = env.dir.path().join("rsyslog");
    std::fs::create_dir_all(&rs).unwrap();
    let input = rs.join("in.log");
    std::fs::write(&input, "").unwrap();
    // imfile reads the file, omfwd sends each line as an RFC 5424 message
    // (rsyslog's own formatting) in octet-counted frames over TLS, with the
    // agent's certificate, checking the listener's against our CA.
    let conf = format!(
        r#"global(workDirectory="{work}"
       defaultNetstreamDriver="ossl"
       defaultNetstreamDriverCAFile="{agent}/ca.crt"
       defaultNetstreamDriverCertFile="{agent}/worker.crt"
       defaultNetstreamDriverKeyFile="{agent}/worker.key")
module(load="imfile")
input(type="imfile" file="{input}" tag="decky-ssh" severity="notice" facility="local0")
action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp"
       streamDriver="ossl" streamDriverMode="1" streamDriverAuthMode="x509/certvalid"
       tcp_framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
"#,
        work = rs.join("work").display(),
        agent = agent.display(),
        input = input.display(),
        port = env.port,
    );
    let _rsyslogd = start_rsyslogd(&bin, &rs, &conf);
    {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&input)
            .unwrap();
        let mut text = String::new();
        for i in 0..N {
            text.push_str(&format!(
                "attempt {i} user=root password=pw{i} src=192.0.2.{}\n",
                i % 250
            ));
        }
        f.write_all(text.as_bytes()).unwrap();
    }
    let got = env.wait_count(N as i64, Duration::from_secs(60)).await;
    assert_eq!(
        got,
        N as i64,
        "rsyslog output:\n{}\nlistener:\n{}",
        std::fs::read_to_string(rs.join("rsyslogd.out")).unwrap_or_default(),
        env.listener_log()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = env.db().await.query(&EventFilter::default()).await.unwrap();
    assert_eq!(events.len(), N);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            e.source_worker, "rsys-w1",
            "credited to the certificate's worker"
        );
        assert_eq!(e.parse_error, None, "{:?}", String::from_utf8_lossy(&e.raw));
        assert_eq!(e.app_name.as_deref(), Some("decky-ssh"));
        assert_eq!(
            e.msg.as_deref().map(str::trim_end),
            Some(
                format!(
                    "attempt {i} user=root password=pw{i} src=192.0.2.{}",
                    i % 250
                )
                .as_str()
            )
        );
        assert!(
            !e.raw.ends_with(b"\n"),
            "the frame's trailing newline is not part of the event"
        );
    }
    let forensic = std::fs::read_to_string(env.home().join("master.log")).unwrap();
    assert_eq!(forensic.lines().count(), N, "one forensic line per message");
}
