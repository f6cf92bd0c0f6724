//! PKI benchmark: CA creation, leaf issuance rate, full mTLS handshakes per second.
//! Run with `cargo bench --bench pki`. Plain `fn main` (no criterion).

use std::time::{Duration, Instant};

use decnet::pki::{
    CertificateAuthority, Fingerprint, LeafOptions, RevocationList, Role, RolePolicy,
    ServerNameCheck, WorkerName, client_config, server_config, server_name,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

const CA_RUNS: usize = 20;
const LEAVES: usize = 2_000;
const HANDSHAKES: usize = 1_000;
const CONCURRENCY: usize = 8;
/// Revocation list size during handshakes, so lookups are not trivially empty.
const REVOKED: usize = 10_000;

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut rows: Vec<(String, String)> = Vec::new();

    // CA creation (key generation + self-signing + two file writes).
    let tmp = tempfile::tempdir().expect("tempdir");
    let start = Instant::now();
    for i in 0..CA_RUNS {
        CertificateAuthority::create(&tmp.path().join(format!("ca{i}"))).expect("create CA");
    }
    let per_ca = start.elapsed() / CA_RUNS as u32;
    rows.push((
        "CA creation (incl. files)".into(),
        format!("{:.2} ms each", ms(per_ca)),
    ));

    let ca = CertificateAuthority::load_or_create(&tmp.path().join("ca0")).expect("load CA");
    let start = Instant::now();
    let reload_runs = 200;
    for _ in 0..reload_runs {
        CertificateAuthority::load(&tmp.path().join("ca0")).expect("load");
    }
    rows.push((
        "CA load from disk".into(),
        format!("{:.3} ms each", ms(start.elapsed() / reload_runs)),
    ));

    // Leaf issuance (key generation + signing, in memory).
    let start = Instant::now();
    for i in 0..LEAVES {
        let role = Role::agent(&format!("w{i}")).expect("name");
        ca.issue(&role, &["10.0.0.1", "w.example"], &LeafOptions::default())
            .expect("issue");
    }
    let elapsed = start.elapsed();
    let rate = LEAVES as f64 / elapsed.as_secs_f64();
    rows.push((
        format!("leaf issuance ({LEAVES} leaves)"),
        format!(
            "{rate:.0} leaves/s ({:.3} ms each) [target >= 500/s: {}]",
            ms(elapsed) / LEAVES as f64,
            if rate >= 500.0 { "PASS" } else { "FAIL" }
        ),
    ));

    // Handshakes.
    let master = ca
        .issue(&Role::Master, &["127.0.0.1"], &LeafOptions::default())
        .expect("master leaf");
    let agent = ca
        .issue_agent("w1", &["127.0.0.1"], &LeafOptions::default())
        .expect("agent leaf");
    let revoked = RevocationList::from_fingerprints(
        (0..REVOKED).map(|i| Fingerprint::of_der(&(i as u64).to_le_bytes())),
    );
    let server =
        server_config(&agent, RolePolicy::agent_endpoint(), revoked.clone()).expect("server");
    let client = client_config(
        &master,
        RolePolicy::agent_of(WorkerName::new("w1").expect("name")),
        revoked,
        ServerNameCheck::Verify,
    )
    .expect("client");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (seq, conc) = rt.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let acceptor = TlsAcceptor::from(server);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let mut b = [0u8; 1];
                        if tls.read_exact(&mut b).await.is_ok() {
                            let _ = tls.write_all(&b).await;
                            let _ = tls.shutdown().await;
                        }
                    }
                });
            }
        });
        let connector = TlsConnector::from(client);
        let one = move |connector: TlsConnector| async move {
            let tcp = TcpStream::connect(addr).await.expect("connect");
            tcp.set_nodelay(true).expect("nodelay");
            let mut tls = connector
                .connect(server_name("127.0.0.1").expect("name"), tcp)
                .await
                .expect("handshake");
            // One round trip: with TLS 1.3 this is when the server has accepted our cert.
            tls.write_all(b"x").await.expect("write");
            let mut b = [0u8; 1];
            tls.read_exact(&mut b).await.expect("read");
        };

        for _ in 0..20 {
            one(connector.clone()).await; // warm-up
        }
        let start = Instant::now();
        for _ in 0..HANDSHAKES {
            one(connector.clone()).await;
        }
        let seq = start.elapsed();

        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..CONCURRENCY {
            let connector = connector.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..HANDSHAKES / CONCURRENCY {
                    one(connector.clone()).await;
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        (seq, start.elapsed())
    });
    rows.push((
        format!("mTLS handshakes, sequential ({HANDSHAKES})"),
        format!(
            "{:.0} handshakes/s ({:.3} ms each)",
            HANDSHAKES as f64 / seq.as_secs_f64(),
            ms(seq) / HANDSHAKES as f64
        ),
    ));
    let n = (HANDSHAKES / CONCURRENCY) * CONCURRENCY;
    rows.push((
        format!("mTLS handshakes, {CONCURRENCY} concurrent ({n})"),
        format!("{:.0} handshakes/s", n as f64 / conc.as_secs_f64()),
    ));

    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    println!();
    println!(
        "decnet PKI benchmark (ECDSA P-256, ring, TLS 1.3, {REVOKED} revoked fingerprints, \
              role + revocation verifiers on both sides, new TCP+TLS connection per handshake)"
    );
    println!("{}", "-".repeat(width + 50));
    for (k, v) in rows {
        println!("{k:<width$}  {v}");
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
