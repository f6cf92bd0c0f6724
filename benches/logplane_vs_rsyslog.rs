//! Log plane throughput vs rsyslog, same machine, same messages, one run.
//!
//! N (default 500,000; `DECNET_BENCH_N`) 200-byte RFC 5424 lines, written to
//! a file before any timing:
//! - decnet: `decnet forwarder` tails the file → RFC 5425 over mTLS →
//!   `decnet listener` → forensic log + SQLite events DB. Timed from the
//!   forwarder's start until the database holds all N.
//! - rsyslog: sender `rsyslogd` (imfile on the same file) → omfwd, octet
//!   counted, TLS (ossl driver, client cert from our CA) → receiver
//!   `rsyslogd` (imtcp TLS) → omfile. Timed from the sender's start until the
//!   output file holds all N lines.
//!
//! Three rounds, alternating decnet and rsyslog; the median round of each is
//! reported, with the ratio and the targets (>= 150k msgs/s, >= 1.0x).
//! Skipped with a message when rsyslogd is not installed.
//! Run: `cargo bench --bench logplane_vs_rsyslog`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use decnet::logplane::eventdb::EventDb;
use decnet::pki::{CertificateAuthority, LeafOptions};

const LINE_LEN: usize = 200;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "port {port} did not open");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Line `i`: a realistic decky event padded to exactly LINE_LEN bytes.
fn line(i: usize) -> String {
    let mut l = format!(
        "<134>1 2026-11-23T10:00:00.000000Z web-01 ssh - login_attempt [meta@32473 src_ip=\"192.0.2.{}\" seq=\"{i}\" username=\"root\"] pw",
        i % 250
    );
    while l.len() < LINE_LEN {
        l.push('x');
    }
    l.truncate(LINE_LEN);
    l
}

fn write_input(path: &Path, n: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..n {
        f.write_all(line(i).as_bytes()).unwrap();
        f.write_all(b"\n").unwrap();
    }
    f.flush().unwrap();
}

/// Polls until `path` is at least `size` bytes; the elapsed time since `t0`.
fn wait_size(path: &Path, size: u64, t0: Instant, limit: Duration) -> Option<Duration> {
    loop {
        if std::fs::metadata(path).is_ok_and(|m| m.len() >= size) {
            return Some(t0.elapsed());
        }
        if t0.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn decnet(dir: &Path, input: &Path, n: usize, rt: &tokio::runtime::Runtime) -> Duration {
    let bin = env!("CARGO_BIN_EXE_decnet");
    let home = dir.join("master");
    let ca = CertificateAuthority::load_or_create(&CertificateAuthority::dir_in(&home)).unwrap();
    let agent = dir.join("agent-w1");
    ca.issue_agent("w1", &["127.0.0.1"], &LeafOptions::default())
        .unwrap()
        .write(&agent)
        .unwrap();
    let port = free_port();
    let _listener = Proc(
        Command::new(bin)
            .args([
                "listener",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .env("DECNET_HOME", &home)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(port);
    let t0 = Instant::now();
    let _forwarder = Proc(
        Command::new(bin)
            .args([
                "forwarder",
                "--master-host",
                "127.0.0.1",
                "--master-port",
                &port.to_string(),
            ])
            .arg("--log-path")
            .arg(input)
            .arg("--state-db")
            .arg(dir.join("fw.db"))
            .arg("--agent-dir")
            .arg(&agent)
            .spawn()
            .unwrap(),
    );
    // The forensic log is written just before each batch's commit: once it is
    // complete, wait for the database to hold everything.
    let want = (n * (LINE_LEN + 1)) as u64;
    wait_size(&home.join("master.log"), want, t0, Duration::from_secs(600))
        .expect("decnet did not deliver everything");
    // Poll the newest row id (instant) rather than COUNT(*) (a full scan that
    // would compete with the listener); the count is checked after timing.
    let db = rt.block_on(EventDb::open(&home.join("events.db"))).unwrap();
    rt.block_on(async {
        loop {
            let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM events")
                .fetch_one(db.pool())
                .await
                .unwrap();
            if newest.unwrap_or(0) >= n as i64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let elapsed = t0.elapsed();
    let stored = rt.block_on(db.count()).unwrap();
    assert_eq!(
        stored, n as i64,
        "the database must hold each line exactly once"
    );
    elapsed
}

fn rsyslogd() -> Option<PathBuf> {
    ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn start_rsyslogd(bin: &Path, dir: &Path, conf: &str) -> Proc {
    std::fs::create_dir_all(dir.join("work")).unwrap();
    let conf_path = dir.join("rsyslog.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let out = std::fs::File::create(dir.join("rsyslogd.out")).unwrap();
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

fn rsyslog(bin: &Path, dir: &Path, input: &Path, n: usize) -> Duration {
    let ca = CertificateAuthority::load_or_create(&dir.join("ca")).unwrap();
    let recv_pki = dir.join("recv-pki");
    let send_pki = dir.join("send-pki");
    ca.issue_agent("receiver", &["127.0.0.1"], &LeafOptions::default())
        .unwrap()
        .write(&recv_pki)
        .unwrap();
    ca.issue_agent("sender", &["127.0.0.1"], &LeafOptions::default())
        .unwrap()
        .write(&send_pki)
        .unwrap();
    let port = free_port();
    let out = dir.join("received.log");
    let tls = |pki: &Path| {
        format!(
            "defaultNetstreamDriver=\"ossl\" defaultNetstreamDriverCAFile=\"{0}/ca.crt\" \
             defaultNetstreamDriverCertFile=\"{0}/worker.crt\" defaultNetstreamDriverKeyFile=\"{0}/worker.key\"",
            pki.display()
        )
    };
    // Both sides move the message verbatim (%rawmsg%), as our plane does.
    let recv_dir = dir.join("receiver");
    let _receiver = start_rsyslogd(
        bin,
        &recv_dir,
        &format!(
            r#"global(workDirectory="{work}" maxMessageSize="8k" {tls})
module(load="imtcp" streamDriver.name="ossl" streamDriver.mode="1" streamDriver.authMode="x509/certvalid")
input(type="imtcp" port="{port}" address="127.0.0.1")
template(name="raw" type="string" string="%rawmsg%\n")
action(type="omfile" file="{out}" template="raw")
"#,
            work = recv_dir.join("work").display(),
            tls = tls(&recv_pki),
            out = out.display(),
        ),
    );
    wait_port(port);
    let send_dir = dir.join("sender");
    let t0 = Instant::now();
    let _sender = start_rsyslogd(
        bin,
        &send_dir,
        &format!(
            r#"global(workDirectory="{work}" maxMessageSize="8k" {tls})
module(load="imfile")
input(type="imfile" file="{input}" tag="bench")
template(name="raw" type="string" string="%rawmsg%")
action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp" template="raw"
       streamDriver="ossl" streamDriverMode="1" streamDriverAuthMode="x509/certvalid"
       tcp_framing="octet-counted")
"#,
            work = send_dir.join("work").display(),
            tls = tls(&send_pki),
            input = input.display(),
        ),
    );
    let want = (n * (LINE_LEN + 1)) as u64;
    wait_size(&out, want, t0, Duration::from_secs(600)).unwrap_or_else(|| {
        panic!(
            "rsyslog did not deliver everything; receiver:\n{}\nsender:\n{}",
            std::fs::read_to_string(recv_dir.join("rsyslogd.out")).unwrap_or_default(),
            std::fs::read_to_string(send_dir.join("rsyslogd.out")).unwrap_or_default()
        )
    })
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Under `cargo test` (no --bench) run a small smoke pass of the same path.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("DECNET_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 20_000 } else { 500_000 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("deckies.log");
    write_input(&input, n);
    println!(
        "log plane vs rsyslog: {n} messages of {LINE_LEN} bytes, {} cores",
        std::thread::available_parallelism().map_or(0, |p| p.get())
    );

    // Rounds alternate between the two (so drift in the machine hits both);
    // each side's median round is reported.
    let rounds: usize = if smoke { 1 } else { 3 };
    let rsyslog_bin = rsyslogd();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let dir = tmp.path().join(format!("round{round}"));
        let t = decnet(&dir.join("decnet"), &input, n, &rt);
        println!(
            "  round {round}: decnet  {:>9.0} msgs/s",
            n as f64 / t.as_secs_f64()
        );
        ours.push(t);
        if let Some(bin) = &rsyslog_bin {
            let t = rsyslog(bin, &dir.join("rsyslog"), &input, n);
            println!(
                "  round {round}: rsyslog {:>9.0} msgs/s",
                n as f64 / t.as_secs_f64()
            );
            theirs.push(t);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let ours = median(&mut ours);
    let ours_rate = n as f64 / ours.as_secs_f64();
    println!(
        "  decnet  forwarder → mTLS → listener → DB : {:>8.0} ms  {:>9.0} msgs/s (median of {rounds})",
        ours.as_secs_f64() * 1e3,
        ours_rate
    );
    if theirs.is_empty() {
        println!(
            "  rsyslog: SKIPPED, rsyslogd is not installed (apt-get install rsyslog rsyslog-openssl)"
        );
        return;
    }
    let theirs = median(&mut theirs);
    let theirs_rate = n as f64 / theirs.as_secs_f64();
    println!(
        "  rsyslog imfile → omfwd TLS → imtcp → file: {:>8.0} ms  {:>9.0} msgs/s (median of {rounds})",
        theirs.as_secs_f64() * 1e3,
        theirs_rate
    );
    let ratio = ours_rate / theirs_rate;
    println!("  ratio decnet/rsyslog: {ratio:.2}x");
    if !smoke {
        let met = |ok: bool| if ok { "met" } else { "MISSED" };
        println!(
            "  targets: >= 150,000 msgs/s into the database: {}; >= 1.0x rsyslog: {}",
            met(ours_rate >= 150_000.0),
            met(ratio >= 1.0)
        );
    }
}
