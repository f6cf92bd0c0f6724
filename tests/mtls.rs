//! Real mutual-TLS handshakes over loopback TCP, plus on-disk CA/bundle behaviour and
//! cross-checks with the `openssl` CLI. Uses only the public `decnet::pki` API.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use decnet::pki::bundle::{WORKER_CERT_FILE, WORKER_KEY_FILE};
use decnet::pki::{
    Bundle, BundleProblem, CertificateAuthority, Error, Fingerprint, LeafOptions, PeerIdentity,
    RevocationList, Role, RoleKind, RolePolicy, ServerNameCheck, WorkerName, client_config,
    master_bundle, provider, server_config, server_name,
};
use rustls::pki_types::CertificateDer;
use rustls::{CertificateError, ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

const TIMEOUT: Duration = Duration::from_secs(10);

fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A CA in a temp home, the master's leaf, and worker w1's agent leaf.
struct Pki {
    home: tempfile::TempDir,
    ca: CertificateAuthority,
    master: Bundle,
    w1: Bundle,
}

fn pki() -> Pki {
    init();
    let home = tempfile::tempdir().unwrap();
    let ca =
        CertificateAuthority::load_or_create(&CertificateAuthority::dir_in(home.path())).unwrap();
    let master = master_bundle(home.path(), &ca, &["127.0.0.1", "master.test"]).unwrap();
    let w1 = ca
        .issue_agent("w1", &["127.0.0.1", "w1.test"], &LeafOptions::default())
        .unwrap();
    Pki {
        home,
        ca,
        master,
        w1,
    }
}

fn w(name: &str) -> WorkerName {
    WorkerName::new(name).unwrap()
}

type Outcome = Result<PeerIdentity, io::Error>;

/// Accept loop: reports each handshake's outcome, echoes data on successful connections.
async fn spawn_server(config: Arc<ServerConfig>) -> (SocketAddr, mpsc::UnboundedReceiver<Outcome>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match acceptor.accept(tcp).await {
                    Ok(mut tls) => {
                        let peer = PeerIdentity::from_connection(tls.get_ref().1);
                        let _ = tx.send(peer.map_err(io::Error::other));
                        let mut buf = [0u8; 1024];
                        while let Ok(n) = tls.read(&mut buf).await {
                            if n == 0 || tls.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = tls.shutdown().await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        }
    });
    (addr, rx)
}

/// Connects, sends "ping", expects it echoed; returns the server's identity.
async fn connect(
    config: Arc<ClientConfig>,
    addr: SocketAddr,
    host: &str,
) -> io::Result<PeerIdentity> {
    let fut = async {
        let tcp = TcpStream::connect(addr).await?;
        let name = server_name(host).map_err(io::Error::other)?;
        let mut tls = TlsConnector::from(config).connect(name, tcp).await?;
        let server = PeerIdentity::from_connection(tls.get_ref().1).map_err(io::Error::other)?;
        tls.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        // With TLS 1.3 the server's verdict on our certificate arrives after our handshake
        // completes, so a refusal surfaces here as an alert.
        tls.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"ping");
        Ok(server)
    };
    tokio::time::timeout(TIMEOUT, fut)
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")))
}

async fn next_outcome(rx: &mut mpsc::UnboundedReceiver<Outcome>) -> Outcome {
    tokio::time::timeout(TIMEOUT, rx.recv())
        .await
        .expect("server reported nothing")
        .expect("server loop ended")
}

fn rustls_err(e: &io::Error) -> &rustls::Error {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .unwrap_or_else(|| panic!("not a rustls error: {e:?}"))
}

/// Our policy error carried inside a rustls `CertificateError::Other`.
fn policy_err(e: &io::Error) -> &Error {
    match rustls_err(e) {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => other
            .0
            .downcast_ref::<Error>()
            .unwrap_or_else(|| panic!("not a pki error: {other:?}")),
        other => panic!("expected a policy refusal, got {other:?}"),
    }
}

fn master_client(p: &Pki, worker: &str) -> Arc<ClientConfig> {
    client_config(
        &p.master,
        RolePolicy::agent_of(w(worker)),
        RevocationList::new(),
        ServerNameCheck::Verify,
    )
    .unwrap()
}

fn agent_server(p: &Pki, revoked: RevocationList) -> Arc<ServerConfig> {
    server_config(&p.w1, RolePolicy::agent_endpoint(), revoked).unwrap()
}

/// A rustls client that trusts our CA but presents an arbitrary certificate (no role checks).
fn raw_client(trust: &CertificateDer<'static>, me: &Bundle) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    roots.add(trust.clone()).unwrap();
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![me.cert_der().clone()], me.key_der().clone_key())
        .unwrap()
}

// ---------------------------------------------------------------- handshakes: accept

#[tokio::test]
async fn master_to_agent_handshake_and_echo() {
    let p = pki();
    let (addr, mut rx) = spawn_server(agent_server(&p, RevocationList::new())).await;
    let server = connect(master_client(&p, "w1"), addr, "127.0.0.1")
        .await
        .unwrap();
    assert_eq!(server.role, Role::Agent { worker: w("w1") });
    assert_eq!(server.fingerprint, p.w1.fingerprint());
    let client = next_outcome(&mut rx).await.unwrap();
    assert_eq!(client.role, Role::Master);
    assert_eq!(client.common_name, "master");
    assert_eq!(client.fingerprint, p.master.fingerprint());
    // Also by DNS SAN.
    connect(master_client(&p, "w1"), addr, "w1.test")
        .await
        .unwrap();
}

#[tokio::test]
async fn tls12_is_accepted_and_13_preferred() {
    let p = pki();
    let (addr, _rx) = spawn_server(agent_server(&p, RevocationList::new())).await;

    let mut roots = RootCertStore::empty();
    roots.add(p.ca.cert_der().clone()).unwrap();
    let tls12_only = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![p.master.cert_der().clone()],
            p.master.key_der().clone_key(),
        )
        .unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = TlsConnector::from(Arc::new(tls12_only))
        .connect(server_name("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );

    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = TlsConnector::from(master_client(&p, "w1"))
        .connect(server_name("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
}

// ---------------------------------------------------------------- handshakes: refuse

#[tokio::test]
async fn refuses_client_without_certificate() {
    let p = pki();
    let (addr, mut rx) = spawn_server(agent_server(&p, RevocationList::new())).await;
    let mut roots = RootCertStore::empty();
    roots.add(p.ca.cert_der().clone()).unwrap();
    let anon = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    assert!(connect(Arc::new(anon), addr, "127.0.0.1").await.is_err());
    let err = next_outcome(&mut rx).await.unwrap_err();
    assert!(
        matches!(rustls_err(&err), rustls::Error::NoCertificatesPresented),
        "{err:?}"
    );
}

#[tokio::test]
async fn refuses_certificate_from_foreign_ca() {
    let p = pki();
    let other_home = tempfile::tempdir().unwrap();
    let foreign_ca = CertificateAuthority::load_or_create(other_home.path()).unwrap();
    let foreign_master = foreign_ca
        .issue(&Role::Master, &["127.0.0.1"], &LeafOptions::default())
        .unwrap();

    let (addr, mut rx) = spawn_server(agent_server(&p, RevocationList::new())).await;
    let client = raw_client(p.ca.cert_der(), &foreign_master);
    assert!(connect(Arc::new(client), addr, "127.0.0.1").await.is_err());
    let err = next_outcome(&mut rx).await.unwrap_err();
    assert!(
        matches!(
            rustls_err(&err),
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        ),
        "{err:?}"
    );

    // And the master refuses a server certificate from a foreign CA.
    let foreign_agent = foreign_ca
        .issue_agent("w1", &["127.0.0.1"], &LeafOptions::default())
        .unwrap();
    let (addr, _rx) = spawn_server(
        server_config(
            &foreign_agent,
            RolePolicy::agent_endpoint(),
            RevocationList::new(),
        )
        .unwrap(),
    )
    .await;
    let err = connect(master_client(&p, "w1"), addr, "127.0.0.1")
        .await
        .unwrap_err();
    assert!(
        matches!(
            rustls_err(&err),
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn refuses_expired_certificate() {
    let p = pki();
    let day = Duration::from_secs(86_400);
    let now = SystemTime::now();
    let expired =
        p.ca.issue(
            &Role::Master,
            &["127.0.0.1"],
            &LeafOptions::with_window(now - 30 * day, now - day),
        )
        .unwrap();
    let (addr, mut rx) = spawn_server(agent_server(&p, RevocationList::new())).await;
    let client = client_config(
        &expired,
        RolePolicy::agent_of(w("w1")),
        RevocationList::new(),
        ServerNameCheck::Verify,
    )
    .unwrap();
    assert!(connect(client, addr, "127.0.0.1").await.is_err());
    let err = next_outcome(&mut rx).await.unwrap_err();
    assert!(
        matches!(
            rustls_err(&err),
            rustls::Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. }
            )
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn revocation_applies_to_next_handshake_on_running_server() {
    let p = pki();
    let revoked = RevocationList::new();
    let (addr, mut rx) = spawn_server(agent_server(&p, revoked.clone())).await;

    connect(master_client(&p, "w1"), addr, "127.0.0.1")
        .await
        .unwrap();
    assert!(next_outcome(&mut rx).await.is_ok());

    // Same running server, same config: only the shared list changes.
    assert!(revoked.revoke(p.master.fingerprint()));
    assert!(
        connect(master_client(&p, "w1"), addr, "127.0.0.1")
            .await
            .is_err()
    );
    let err = next_outcome(&mut rx).await.unwrap_err();
    assert!(
        matches!(
            rustls_err(&err),
            rustls::Error::InvalidCertificate(CertificateError::Revoked)
        ),
        "{err:?}"
    );

    // Lifting it (or reloading from the store) also applies live.
    revoked.replace_all([]);
    connect(master_client(&p, "w1"), addr, "127.0.0.1")
        .await
        .unwrap();
    assert!(next_outcome(&mut rx).await.is_ok());
}

#[tokio::test]
async fn master_refuses_revoked_agent() {
    let p = pki();
    let (addr, _rx) = spawn_server(agent_server(&p, RevocationList::new())).await;
    let revoked = RevocationList::from_fingerprints([p.w1.fingerprint()]);
    let client = client_config(
        &p.master,
        RolePolicy::agent_of(w("w1")),
        revoked,
        ServerNameCheck::Verify,
    )
    .unwrap();
    let err = connect(client, addr, "127.0.0.1").await.unwrap_err();
    assert!(
        matches!(
            rustls_err(&err),
            rustls::Error::InvalidCertificate(CertificateError::Revoked)
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn agent_endpoint_refuses_agent_certificate() {
    let p = pki();
    let w2 =
        p.ca.issue_agent("w2", &["127.0.0.1"], &LeafOptions::default())
            .unwrap();
    let (addr, mut rx) = spawn_server(agent_server(&p, RevocationList::new())).await;
    let client = client_config(
        &w2,
        RolePolicy::agent_of(w("w1")),
        RevocationList::new(),
        ServerNameCheck::Verify,
    )
    .unwrap();
    assert!(connect(client, addr, "127.0.0.1").await.is_err());
    let err = next_outcome(&mut rx).await.unwrap_err();
    match policy_err(&err) {
        Error::RoleNotAllowed { role, .. } => assert_eq!(role, &Role::Agent { worker: w("w2") }),
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn agent_endpoint_refuses_updater_certificate() {
    let p = pki();
    let upd =
        p.ca.issue(
            &Role::updater("w1").unwrap(),
            &["127.0.0.1"],
            &LeafOptions::default(),
        )
        .unwrap();
    let (addr, mut rx) = spawn_server(agent_server(&p, RevocationList::new())).await;
    let client = client_config(
        &upd,
        RolePolicy::agent_of(w("w1")),
        RevocationList::new(),
        ServerNameCheck::Verify,
    )
    .unwrap();
    assert!(connect(client, addr, "127.0.0.1").await.is_err());
    let err = next_outcome(&mut rx).await.unwrap_err();
    match policy_err(&err) {
        Error::RoleNotAllowed { role, .. } => {
            assert_eq!(role, &Role::Updater { worker: w("w1") })
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn log_listener_refuses_master_and_accepts_agents() {
    let p = pki();
    let listener_cfg =
        server_config(&p.master, RolePolicy::log_listener(), RevocationList::new()).unwrap();
    let (addr, mut rx) = spawn_server(listener_cfg).await;

    // An agent shipping logs to the master: accepted, and the worker comes from the CN.
    let agent = client_config(
        &p.w1,
        RolePolicy::master(),
        RevocationList::new(),
        ServerNameCheck::Verify,
    )
    .unwrap();
    let server = connect(agent, addr, "master.test").await.unwrap();
    assert_eq!(server.role, Role::Master);
    let peer = next_outcome(&mut rx).await.unwrap();
    assert_eq!(peer.role.kind(), RoleKind::Agent);
    assert_eq!(peer.role.worker(), Some(&w("w1")));

    // The master's own certificate is not a log source.
    let master_as_client = client_config(
        &p.master,
        RolePolicy::master(),
        RevocationList::new(),
        ServerNameCheck::Verify,
    )
    .unwrap();
    assert!(connect(master_as_client, addr, "127.0.0.1").await.is_err());
    let err = next_outcome(&mut rx).await.unwrap_err();
    match policy_err(&err) {
        Error::RoleNotAllowed { role, .. } => assert_eq!(role, &Role::Master),
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn master_refuses_worker_impersonating_another_worker() {
    let p = pki();
    // w2 serves on the address the master believes belongs to w1 (same SAN, valid chain).
    let w2 =
        p.ca.issue_agent("w2", &["127.0.0.1"], &LeafOptions::default())
            .unwrap();
    let (addr, _rx) = spawn_server(
        server_config(&w2, RolePolicy::agent_endpoint(), RevocationList::new()).unwrap(),
    )
    .await;
    for check in [ServerNameCheck::Verify, ServerNameCheck::SkipNameOnly] {
        let err = connect(master_client_with(&p, "w1", check), addr, "127.0.0.1")
            .await
            .unwrap_err();
        match policy_err(&err) {
            Error::RoleNotAllowed { role, policy } => {
                assert_eq!(role, &Role::Agent { worker: w("w2") });
                assert_eq!(policy, &RolePolicy::agent_of(w("w1")));
            }
            other => panic!("{other}"),
        }
    }
    // The updater role of w1 is not w1's agent either.
    let upd =
        p.ca.issue(
            &Role::updater("w1").unwrap(),
            &["127.0.0.1"],
            &LeafOptions::default(),
        )
        .unwrap();
    let (addr, _rx) = spawn_server(
        server_config(&upd, RolePolicy::updater_endpoint(), RevocationList::new()).unwrap(),
    )
    .await;
    let err = connect(master_client(&p, "w1"), addr, "127.0.0.1")
        .await
        .unwrap_err();
    assert!(matches!(policy_err(&err), Error::RoleNotAllowed { .. }));
}

fn master_client_with(p: &Pki, worker: &str, check: ServerNameCheck) -> Arc<ClientConfig> {
    client_config(
        &p.master,
        RolePolicy::agent_of(w(worker)),
        RevocationList::new(),
        check,
    )
    .unwrap()
}

#[tokio::test]
async fn plaintext_on_tls_port_is_rejected_without_panic() {
    let p = pki();
    let (addr, mut rx) = spawn_server(agent_server(&p, RevocationList::new())).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /health HTTP/1.1\r\nHost: w1\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, tcp.read_to_end(&mut reply)).await;
    assert!(!reply.starts_with(b"HTTP"), "no plaintext answer");
    let err = next_outcome(&mut rx).await.unwrap_err();
    assert!(
        matches!(rustls_err(&err), rustls::Error::InvalidMessage(_)),
        "{err:?}"
    );
    // The server is still alive and serving.
    connect(master_client(&p, "w1"), addr, "127.0.0.1")
        .await
        .unwrap();
}

#[tokio::test]
async fn hostname_check_on_refuses_mismatched_san_and_off_accepts() {
    let p = pki();
    let elsewhere =
        p.ca.issue_agent(
            "w1",
            &["10.99.0.1", "w1.elsewhere.test"],
            &LeafOptions::default(),
        )
        .unwrap();
    let (addr, _rx) = spawn_server(
        server_config(
            &elsewhere,
            RolePolicy::agent_endpoint(),
            RevocationList::new(),
        )
        .unwrap(),
    )
    .await;

    let err = connect(
        master_client_with(&p, "w1", ServerNameCheck::Verify),
        addr,
        "127.0.0.1",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            rustls_err(&err),
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            )
        ),
        "{err:?}"
    );

    let server = connect(
        master_client_with(&p, "w1", ServerNameCheck::SkipNameOnly),
        addr,
        "127.0.0.1",
    )
    .await
    .unwrap();
    assert_eq!(server.role, Role::agent("w1").unwrap());

    // Skipping the name never skips the chain: a foreign CA is still refused.
    let other_home = tempfile::tempdir().unwrap();
    let foreign = CertificateAuthority::load_or_create(other_home.path())
        .unwrap()
        .issue_agent("w1", &["127.0.0.1"], &LeafOptions::default())
        .unwrap();
    let (addr, _rx) = spawn_server(
        server_config(
            &foreign,
            RolePolicy::agent_endpoint(),
            RevocationList::new(),
        )
        .unwrap(),
    )
    .await;
    let err = connect(
        master_client_with(&p, "w1", ServerNameCheck::SkipNameOnly),
        addr,
        "127.0.0.1",
    )
    .await
    .unwrap_err();
    assert!(matches!(
        rustls_err(&err),
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
    ));
}

// ---------------------------------------------------------------- CA and leaves on disk

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
#[cfg(unix)]
fn ca_is_idempotent_private_and_never_overwritten() {
    init();
    let home = tempfile::tempdir().unwrap();
    let dir = CertificateAuthority::dir_in(home.path());
    let ca = CertificateAuthority::load_or_create(&dir).unwrap();
    let again = CertificateAuthority::load_or_create(&dir).unwrap();
    assert_eq!(ca.fingerprint(), again.fingerprint());
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("ca.key")), 0o600);

    // A leaf issued by the reloaded CA chains to the original certificate.
    let leaf = again
        .issue_agent("w9", &["10.0.0.9"], &LeafOptions::default())
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    leaf.write(out.path()).unwrap();
    assert_eq!(Bundle::load(out.path()).unwrap().ca_der(), ca.cert_der());

    // Key missing: clear error, nothing recreated.
    let key = std::fs::read(dir.join("ca.key")).unwrap();
    std::fs::remove_file(dir.join("ca.key")).unwrap();
    let err = CertificateAuthority::load_or_create(&dir).unwrap_err();
    assert!(matches!(err, Error::CaIncomplete { .. }), "{err}");
    assert!(err.to_string().contains("ca.key"), "{err}");
    assert!(!dir.join("ca.key").exists());

    // Certificate missing.
    std::fs::write(dir.join("ca.key"), &key).unwrap();
    let crt = std::fs::read(dir.join("ca.crt")).unwrap();
    std::fs::remove_file(dir.join("ca.crt")).unwrap();
    assert!(matches!(
        CertificateAuthority::load_or_create(&dir),
        Err(Error::CaIncomplete { .. })
    ));
    std::fs::write(dir.join("ca.crt"), &crt).unwrap();

    // Mismatched pair: another CA's key.
    let other = tempfile::tempdir().unwrap();
    CertificateAuthority::load_or_create(other.path()).unwrap();
    let foreign_key = std::fs::read(other.path().join("ca.key")).unwrap();
    std::fs::write(dir.join("ca.key"), &foreign_key).unwrap();
    let err = CertificateAuthority::load_or_create(&dir).unwrap_err();
    assert!(matches!(err, Error::CaKeyMismatch { .. }), "{err}");
    assert_eq!(
        std::fs::read(dir.join("ca.crt")).unwrap(),
        crt,
        "not overwritten"
    );
    assert_eq!(std::fs::read(dir.join("ca.key")).unwrap(), foreign_key);

    // Garbage certificate.
    std::fs::write(dir.join("ca.key"), &key).unwrap();
    std::fs::write(dir.join("ca.crt"), b"garbage").unwrap();
    assert!(matches!(
        CertificateAuthority::load_or_create(&dir),
        Err(Error::InvalidCa { .. })
    ));
}

#[test]
fn ca_and_leaf_contents() {
    let p = pki();
    let (_, ca) = x509_parser::parse_x509_certificate(p.ca.cert_der()).unwrap();
    let bc = ca.basic_constraints().unwrap().unwrap().value;
    assert!(bc.ca);
    assert_eq!(bc.path_len_constraint, Some(0));
    let ku = ca.key_usage().unwrap().unwrap().value;
    assert!(ku.key_cert_sign() && ku.crl_sign());
    let ca_ski = ca
        .get_extension_unique(&x509_parser::oid_registry::OID_X509_EXT_SUBJECT_KEY_IDENTIFIER)
        .unwrap()
        .unwrap();
    let x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(ca_ski) =
        ca_ski.parsed_extension()
    else {
        panic!("no CA SKI")
    };
    let ca_days = (ca.validity().not_after - ca.validity().not_before)
        .unwrap()
        .whole_days();
    assert!((3650..=3651).contains(&ca_days), "{ca_days}");

    let (_, leaf) = x509_parser::parse_x509_certificate(p.w1.cert_der()).unwrap();
    assert_eq!(
        leaf.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "w1"
    );
    let days = (leaf.validity().not_after - leaf.validity().not_before)
        .unwrap()
        .whole_days();
    assert_eq!(days, 825);
    let eku = leaf.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth);
    let ku = leaf.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && !ku.key_cert_sign());
    assert!(!leaf.basic_constraints().unwrap().unwrap().value.ca);
    let mut aki = None;
    let mut has_ski = false;
    let mut sans = Vec::new();
    for ext in leaf.extensions() {
        match ext.parsed_extension() {
            x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(a) => {
                aki = a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(_) => has_ski = true,
            x509_parser::extensions::ParsedExtension::SubjectAlternativeName(s) => {
                sans = s.general_names.iter().map(|g| format!("{g}")).collect()
            }
            _ => {}
        }
    }
    assert!(has_ski, "leaf SKI");
    assert_eq!(aki.as_deref(), Some(ca_ski.0), "leaf AKI = CA SKI");
    assert_eq!(sans.len(), 2, "{sans:?}");
    assert_eq!(sans[0], "IPAddress(7f:00:00:01)", "IP SAN (127.0.0.1)");
    assert!(sans[1].contains("w1.test"), "DNS SAN: {sans:?}");

    // Fingerprint is SHA-256 of the DER, lowercase hex.
    let fp = p.w1.fingerprint().to_string();
    assert_eq!(fp.len(), 64);
    assert!(
        fp.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert_eq!(fp.parse::<Fingerprint>().unwrap(), p.w1.fingerprint());
    assert_eq!(Fingerprint::of_der(p.w1.cert_der()), p.w1.fingerprint());
}

#[test]
fn issuance_rejects_bad_names_and_validity() {
    let p = pki();
    let err =
        p.ca.issue_agent("master", &["127.0.0.1"], &LeafOptions::default())
            .unwrap_err();
    assert!(matches!(err, Error::InvalidWorkerName { .. }), "{err}");
    assert!(err.to_string().contains("reserved"), "{err}");
    assert!(matches!(
        p.ca.issue_agent("W1", &["127.0.0.1"], &LeafOptions::default()),
        Err(Error::InvalidWorkerName { .. })
    ));
    assert!(matches!(
        p.ca.issue_agent("w1", &["not a host"], &LeafOptions::default()),
        Err(Error::InvalidSan { .. })
    ));
    assert!(matches!(
        p.ca.issue_agent("w1", &["127.0.0.1"], &LeafOptions::with_validity_days(826)),
        Err(Error::InvalidValidity { .. })
    ));
    // Shorter validity is fine.
    p.ca.issue_agent("w1", &["127.0.0.1"], &LeafOptions::with_validity_days(30))
        .unwrap();
}

// ---------------------------------------------------------------- bundles

#[test]
#[cfg(unix)]
fn bundle_round_trip_and_modes() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle-w1");
    p.w1.write(&out).unwrap();
    assert_eq!(mode(&out.join("worker.key")), 0o600);
    assert_eq!(mode(&out.join("worker.crt")), 0o644);
    assert_eq!(mode(&out), 0o700);
    let loaded = Bundle::load(&out).unwrap();
    assert_eq!(loaded.fingerprint(), p.w1.fingerprint());
    assert_eq!(loaded.role(), &Role::agent("w1").unwrap());
    assert!(
        !format!("{loaded:?}").contains("PRIVATE"),
        "Debug hides the key"
    );

    // The master's own leaf.
    assert_eq!(mode(&p.home.path().join("master.key")), 0o600);
    let again = master_bundle(p.home.path(), &p.ca, &["127.0.0.1"]).unwrap();
    assert_eq!(
        again.fingerprint(),
        p.master.fingerprint(),
        "reloaded, not reissued"
    );
    assert_eq!(again.role(), &Role::Master);
}

fn expect_bundle_err(dir: &Path, file: &str, check: impl Fn(&BundleProblem) -> bool) {
    let err = Bundle::load(dir).unwrap_err();
    let msg = err.to_string();
    match &err {
        Error::Bundle { path, problem, .. } => {
            assert_eq!(path, &dir.join(file), "{msg}");
            assert!(check(problem), "{msg}");
        }
        other => panic!("expected a bundle error, got {other}"),
    }
    assert!(msg.contains(&dir.join(file).display().to_string()), "{msg}");
    assert!(
        msg.contains("decnet swarm enroll --name <worker> --address <addr> --out-dir <dir>"),
        "{msg}"
    );
}

#[test]
fn bundle_load_errors_name_the_file() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fresh = |d: &Path| p.w1.write(d).unwrap();

    fresh(d);
    std::fs::remove_file(d.join(WORKER_KEY_FILE)).unwrap();
    expect_bundle_err(d, WORKER_KEY_FILE, |pr| {
        matches!(pr, BundleProblem::Missing)
    });

    fresh(d);
    std::fs::remove_file(d.join("ca.crt")).unwrap();
    expect_bundle_err(d, "ca.crt", |pr| matches!(pr, BundleProblem::Missing));

    fresh(d);
    std::fs::write(
        d.join(WORKER_CERT_FILE),
        b"-----BEGIN CERTIFICATE-----\nAAAA\n",
    )
    .unwrap();
    expect_bundle_err(d, WORKER_CERT_FILE, |pr| {
        matches!(pr, BundleProblem::Unparsable { .. })
    });

    fresh(d);
    std::fs::write(d.join(WORKER_KEY_FILE), b"not a key").unwrap();
    expect_bundle_err(d, WORKER_KEY_FILE, |pr| {
        matches!(pr, BundleProblem::Unparsable { .. })
    });

    // Mismatched key: w2's key next to w1's certificate.
    fresh(d);
    let w2 =
        p.ca.issue_agent("w2", &["127.0.0.1"], &LeafOptions::default())
            .unwrap();
    std::fs::write(d.join(WORKER_KEY_FILE), w2.key_pem()).unwrap();
    expect_bundle_err(d, WORKER_KEY_FILE, |pr| {
        matches!(pr, BundleProblem::KeyMismatch { .. })
    });

    // Wrong CA: another master's ca.crt.
    fresh(d);
    let other = tempfile::tempdir().unwrap();
    let foreign = CertificateAuthority::load_or_create(other.path()).unwrap();
    std::fs::write(d.join("ca.crt"), foreign.cert_pem()).unwrap();
    expect_bundle_err(d, WORKER_CERT_FILE, |pr| {
        matches!(pr, BundleProblem::NotSignedByCa { .. })
    });

    // Expired certificate.
    let day = Duration::from_secs(86_400);
    let now = SystemTime::now();
    p.ca.issue_agent(
        "w1",
        &["127.0.0.1"],
        &LeafOptions::with_window(now - 9 * day, now - day),
    )
    .unwrap()
    .write(d)
    .unwrap();
    expect_bundle_err(d, WORKER_CERT_FILE, |pr| {
        matches!(pr, BundleProblem::NotValidNow { .. })
    });
}

#[test]
fn peer_identity_from_certs() {
    let p = pki();
    let peer = PeerIdentity::from_certs(&[p.w1.cert_der().clone()]).unwrap();
    assert_eq!(peer.common_name, "w1");
    assert!(matches!(
        PeerIdentity::from_certs(&[]),
        Err(Error::NoPeerCertificate)
    ));
    let garbage = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01]);
    assert!(matches!(
        PeerIdentity::from_certs(&[garbage]),
        Err(Error::CertificateParse { .. })
    ));
    // The CA certificate is not a decnet identity.
    assert!(matches!(
        PeerIdentity::from_cert(p.ca.cert_der()),
        Err(Error::InvalidCommonName { .. })
    ));
}

// ---------------------------------------------------------------- openssl cross-checks

fn openssl(args: &[&str]) -> Option<(bool, String)> {
    match Command::new("openssl").args(args).output() {
        Ok(out) => Some((
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            println!("SKIP: openssl CLI not found");
            None
        }
        Err(e) => panic!("cannot run openssl: {e}"),
    }
}

#[test]
fn openssl_verifies_chain_and_shows_extensions() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    p.w1.write(dir.path()).unwrap();
    let ca = dir.path().join("ca.crt");
    let crt = dir.path().join("worker.crt");
    let (ca, crt) = (ca.to_str().unwrap(), crt.to_str().unwrap());

    let Some((ok, out)) = openssl(&["verify", "-CAfile", ca, crt]) else {
        return;
    };
    assert!(ok && out.contains(": OK"), "{out}");
    // Strict purpose checks too: the leaf is good for both directions.
    for purpose in ["sslserver", "sslclient"] {
        let (ok, out) = openssl(&[
            "verify",
            "-purpose",
            purpose,
            "-x509_strict",
            "-CAfile",
            ca,
            crt,
        ])
        .unwrap();
        assert!(ok, "{purpose}: {out}");
    }

    let (ok, text) = openssl(&["x509", "-in", crt, "-noout", "-text"]).unwrap();
    assert!(ok, "{text}");
    for needle in [
        "X509v3 Subject Key Identifier",
        "X509v3 Authority Key Identifier",
        "CA:FALSE",
        "TLS Web Server Authentication",
        "TLS Web Client Authentication",
        "Digital Signature",
        "IP Address:127.0.0.1",
        "DNS:w1.test",
        "Subject: CN = w1",
        "prime256v1",
    ] {
        assert!(text.contains(needle), "leaf lacks {needle:?}:\n{text}");
    }

    let (ok, text) = openssl(&["x509", "-in", ca, "-noout", "-text"]).unwrap();
    assert!(ok, "{text}");
    for needle in [
        "CA:TRUE, pathlen:0",
        "Certificate Sign, CRL Sign",
        "X509v3 Subject Key Identifier",
        "X509v3 Authority Key Identifier",
        "prime256v1",
    ] {
        assert!(text.contains(needle), "CA lacks {needle:?}:\n{text}");
    }

    // Our fingerprint equals openssl's.
    let (ok, out) = openssl(&["x509", "-in", crt, "-noout", "-fingerprint", "-sha256"]).unwrap();
    assert!(ok, "{out}");
    let colon = out.trim().rsplit('=').next().unwrap();
    assert_eq!(colon.parse::<Fingerprint>().unwrap(), p.w1.fingerprint());

    // And openssl refuses the chain against a foreign CA.
    let other = tempfile::tempdir().unwrap();
    CertificateAuthority::load_or_create(other.path()).unwrap();
    let foreign = other.path().join("ca.crt");
    let (ok, _) = openssl(&["verify", "-CAfile", foreign.to_str().unwrap(), crt]).unwrap();
    assert!(!ok);
}
