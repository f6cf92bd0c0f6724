//! The log plane end to end: real `decnet listener` and `decnet forwarder`
//! processes, real mTLS on loopback, real SQLite, processes killed mid-stream.

mod support;

use support::free_port;

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use decnet::logplane::eventdb::{EventDb, EventFilter};
use decnet::pki::{Bundle, CertificateAuthority, LeafOptions};

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
    /// Enrolls a worker: its bundle directory.
    fn worker(&self, name: &str) -> PathBuf {
        let dir = self.dir.path().join(format!("agent-{name}"));
        self.ca()
            .issue_agent(name, &["127.0.0.1"], &LeafOptions::default())
            .unwrap()
            .write(&dir)
            .unwrap();
        dir
    }
    fn listener(&self) -> Proc {
        let c = Command::new(env!("CARGO_BIN_EXE_decnet"))
            .args([
                "listener",
                "--host",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
            ])
            .arg("--json-path")
            .arg(self.home().join("events.jsonl"))
            .env("DECNET_HOME", self.home())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        wait_port(self.port);
        Proc(c)
    }
    fn forwarder(&self, name: &str, log: &Path) -> Proc {
        Proc(
            Command::new(env!("CARGO_BIN_EXE_decnet"))
                .args([
                    "forwarder",
                    "--master-host",
                    "127.0.0.1",
                    "--master-port",
                    &self.port.to_string(),
                ])
                .arg("--log-path")
                .arg(log)
                .arg("--state-db")
                .arg(self.dir.path().join(format!("fw-{name}.db")))
                .arg("--agent-dir")
                .arg(self.dir.path().join(format!("agent-{name}")))
                .spawn()
                .unwrap(),
        )
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
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "listener did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed when dropped, so a failed assertion leaves no
/// listener or forwarder behind.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn kill(c: Proc) {
    drop(c);
}

fn line(i: usize, host: &str) -> String {
    format!(
        "<134>1 2026-11-23T10:00:00.000000Z {host} ssh - login_attempt [meta@32473 src_ip=\"192.0.2.{}\" seq=\"{i}\" username=\"root\" password=\"pw{i}\"] attempt {i}",
        i % 250
    )
}

fn append(path: &Path, from: usize, to: usize, host: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut buf = String::new();
    for i in from..to {
        buf.push_str(&line(i, host));
        buf.push('\n');
    }
    f.write_all(buf.as_bytes()).unwrap();
}

async fn assert_exactly_once(env: &Env, worker: &str, n: usize, host: &str) {
    let events = env.db().await.query(&EventFilter::default()).await.unwrap();
    assert_eq!(events.len(), n, "stored count");
    let mut seen = HashSet::new();
    for e in &events {
        assert_eq!(e.source_worker, worker);
        assert!(
            seen.insert(e.raw.clone()),
            "duplicate: {}",
            String::from_utf8_lossy(&e.raw)
        );
    }
    for i in 0..n {
        assert!(seen.contains(line(i, host).as_bytes()), "line {i} lost");
    }
    // The forensic log holds the same lines, verbatim, once each.
    let forensic = std::fs::read_to_string(env.home().join("master.log")).unwrap();
    assert_eq!(forensic.lines().count(), n, "forensic log line count");
    let uniq: HashSet<&str> = forensic.lines().collect();
    assert_eq!(uniq.len(), n, "forensic log has duplicates");
    let json = std::fs::read_to_string(env.home().join("events.jsonl")).unwrap();
    assert_eq!(json.lines().count(), n, "JSON lines count");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_through_kills_of_both_sides() {
    const N: usize = 100_000;
    let env = Env::new();
    env.worker("w1");
    let log = env.dir.path().join("deckies.log");
    std::fs::write(&log, "").unwrap();
    let mut listener = env.listener();
    let mut forwarder = env.forwarder("w1", &log);
    // 100 chunks; kill the listener after chunks 10,30,50,70,90 and the
    // forwarder after 20,40,60,80,95, with the stream in flight.
    for chunk in 0..100 {
        append(&log, chunk * 1000, (chunk + 1) * 1000, "web-01");
        if [10, 30, 50, 70, 90].contains(&chunk) {
            kill(listener);
            std::thread::sleep(Duration::from_millis(150));
            listener = env.listener();
        }
        if [20, 40, 60, 80, 95].contains(&chunk) {
            kill(forwarder);
            std::thread::sleep(Duration::from_millis(100));
            forwarder = env.forwarder("w1", &log);
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    let got = env.wait_count(N as i64, Duration::from_secs(180)).await;
    // Give any (wrong) duplicate a chance to show up before asserting.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    kill(forwarder);
    kill(listener);
    assert_eq!(got, N as i64);
    assert_exactly_once(&env, "w1", N, "web-01").await;
}

/// A master that reads slower than the forwarder sends (small receive
/// buffer, 8 KiB per 5 ms, no acks): the socket is full when the file ends,
/// and the last lines must still leave the forwarder. Before the forwarder
/// flushed its TLS stream, up to 64 KiB of records stayed in its buffer here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_master_still_receives_the_last_lines() {
    use tokio::io::AsyncReadExt;
    // ~7 MB: more than the kernel buffers on both ends hold.
    const N: usize = 40_000;
    let env = Env::new();
    env.worker("w1");
    let home = env.home();
    let store = decnet::store::Store::open(&decnet::store::db_path(&home))
        .await
        .unwrap();
    let master = decnet::master::MasterTls::load(&home, store).await.unwrap();
    let tls = master
        .server_config(decnet::pki::RolePolicy::log_listener())
        .unwrap();
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(16 * 1024).unwrap();
    sock.bind(([127, 0, 0, 1], env.port).into()).unwrap();
    let listener = sock.listen(8).unwrap();
    let log = env.dir.path().join("deckies.log");
    append(&log, 0, N, "web-01");
    let forwarder = env.forwarder("w1", &log);
    let (tcp, _) = tokio::time::timeout(Duration::from_secs(30), listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut conn = tokio_rustls::TlsAcceptor::from(tls)
        .accept(tcp)
        .await
        .unwrap();
    let mut dec = decnet::syslog::FrameDecoder::new();
    let mut buf = vec![0u8; 8 * 1024];
    let mut lines = 0;
    while lines < N {
        match tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                dec.feed(&buf[..n]);
                while let Ok(Some(_)) = dec.next_frame() {
                    lines += 1;
                }
            }
            // Closed, failed, or nothing for 5 s: the rest is stuck on the worker.
            _ => break,
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    kill(forwarder);
    assert_eq!(lines, N, "lines stuck on the worker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_mid_stream_loses_nothing() {
    const N: usize = 30_000;
    let env = Env::new();
    env.worker("w1");
    let log = env.dir.path().join("deckies.log");
    let listener = env.listener();
    append(&log, 0, 10_000, "web-01");
    let mut forwarder = env.forwarder("w1", &log);
    // The forwarder is following the file before it is rotated.
    assert!(env.wait_count(1, Duration::from_secs(30)).await >= 1);
    // logrotate-style: rename, the writer keeps appending to the old file a
    // little (its tail must still ship), then a new file starts.
    std::fs::rename(&log, env.dir.path().join("deckies.log.1")).unwrap();
    append(
        &env.dir.path().join("deckies.log.1"),
        10_000,
        12_000,
        "web-01",
    );
    append(&log, 12_000, 20_000, "web-01");
    // Forwarder restarted while the rotated file may not be finished yet.
    kill(forwarder);
    forwarder = env.forwarder("w1", &log);
    // copytruncate-style: the file is cut to zero and refilled.
    assert_eq!(
        env.wait_count(20_000, Duration::from_secs(60)).await,
        20_000
    );
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .unwrap();
    append(&log, 20_000, N, "web-01");
    let got = env.wait_count(N as i64, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    kill(forwarder);
    kill(listener);
    assert_eq!(got, N as i64);
    assert_exactly_once(&env, "w1", N, "web-01").await;
}

/// Regression (CI: 18000 vs 20000): the forwarder is killed right after its
/// first lines were stored — before its periodic state save — and the file is
/// rotated while it is down. The rotated file must still be finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_file_is_finished_after_a_crash_before_the_first_state_save() {
    let env = Env::new();
    env.worker("w1");
    let log = env.dir.path().join("deckies.log");
    let listener = env.listener();
    append(&log, 0, 5_000, "web-01");
    let forwarder = env.forwarder("w1", &log);
    // Kill as soon as the master wrote anything: well inside the forwarder's
    // 200 ms state-save period.
    let forensic = env.home().join("master.log");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(&forensic).map_or(0, |m| m.len()) == 0 {
        assert!(Instant::now() < deadline, "nothing shipped");
        std::thread::sleep(Duration::from_millis(2));
    }
    kill(forwarder);
    let rotated = env.dir.path().join("deckies.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    append(&rotated, 5_000, 6_000, "web-01");
    append(&log, 6_000, 7_000, "web-01");
    let forwarder = env.forwarder("w1", &log);
    let got = env.wait_count(7_000, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    kill(forwarder);
    kill(listener);
    assert_eq!(got, 7_000);
    assert_exactly_once(&env, "w1", 7_000, "web-01").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_worker_comes_from_the_certificate_not_the_message() {
    let env = Env::new();
    env.worker("w2");
    let log = env.dir.path().join("w2.log");
    // w2's lines claim to come from host "w1".
    append(&log, 0, 50, "w1");
    let listener = env.listener();
    let forwarder = env.forwarder("w2", &log);
    assert_eq!(env.wait_count(50, Duration::from_secs(30)).await, 50);
    kill(forwarder);
    kill(listener);
    let events = env.db().await.query(&EventFilter::default()).await.unwrap();
    assert!(
        events
            .iter()
            .all(|e| e.source_worker == "w2" && e.hostname.as_deref() == Some("w1"))
    );
    // ...and `decnet logs` shows them, filterable.
    let out = Command::new(env!("CARGO_BIN_EXE_decnet"))
        .args(["logs", "--worker", "w2", "--limit", "3"])
        .env("DECNET_HOME", env.home())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.contains("w2/w1 ssh login_attempt")
            && text.contains("username=root")
            && text.contains("seq=49"),
        "{text}"
    );
    let none = Command::new(env!("CARGO_BIN_EXE_decnet"))
        .args(["logs", "--worker", "w1"])
        .env("DECNET_HOME", env.home())
        .output()
        .unwrap();
    assert!(
        String::from_utf8(none.stdout).unwrap().is_empty(),
        "nothing is credited to w1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_foreign_ca_and_wrong_role_are_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = Env::new();
    env.worker("w1");
    let listener = env.listener();
    let addr = ("127.0.0.1", env.port);

    // Plaintext syslog on the TLS port: dropped, nothing stored.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let frame = format!("{} {}", line(0, "x").len(), line(0, "x"));
    s.write_all(frame.as_bytes()).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert!(
        n == 0 || buf[0] == 0x15,
        "plaintext must get a TLS alert or EOF, got {:?}",
        &buf[..n]
    );

    // Clients whose handshake must fail: a foreign CA's agent, and our own
    // master certificate (the listener admits agents only).
    let foreign_dir = env.dir.path().join("foreign");
    let foreign = CertificateAuthority::load_or_create(&foreign_dir.join("ca")).unwrap();
    let foreign_agent = foreign
        .issue_agent("w1", &["127.0.0.1"], &LeafOptions::default())
        .unwrap();
    let ours = Bundle::load(&env.dir.path().join("agent-w1")).unwrap();
    let master = decnet::pki::master_bundle(&env.home(), &env.ca(), &["127.0.0.1"]).unwrap();
    for (what, client) in [("foreign CA", foreign_agent), ("master role", master)] {
        // Trust our CA for the server side, present the bad client cert.
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ours.ca_der().clone()).unwrap();
        let cfg = rustls::ClientConfig::builder_with_provider(decnet::pki::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(
                vec![client.cert_der().clone()],
                client.key_der().clone_key(),
            )
            .unwrap();
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let r = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
            .connect(name, tcp)
            .await;
        // TLS 1.3 reports client-cert rejection on the first read.
        let refused = match r {
            Err(_) => true,
            Ok(mut tls) => {
                let _ = tls.write_all(frame.as_bytes()).await;
                let _ = tls.flush().await;
                matches!(
                    tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf)).await,
                    Ok(Err(_)) | Ok(Ok(0))
                )
            }
        };
        assert!(refused, "{what} must be refused");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    kill(listener);
    assert_eq!(
        env.db().await.count().await.unwrap(),
        0,
        "nothing from refused clients is stored"
    );
}
