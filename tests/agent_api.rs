//! The agent API over real HTTPS + mTLS on loopback: the master is admitted; an agent
//! certificate, a certificate from a foreign CA and no certificate at all are refused in the
//! handshake. Also: the `decnet agent` CLI refuses to start without a bundle (exit 2).

mod support;

use std::sync::Arc;

use support::ShardCleanup;

use decnet::agent::client::AgentClient;
use decnet::agent::{Agent, DeployRequest, Executor, TeardownRequest, server};
use decnet::api::{DeckyShardSpec, DeckySpec, LanSpec, NetworkDriver, Service};
use decnet::pki::{
    Bundle, CertificateAuthority, LeafOptions, RevocationList, Role, RolePolicy, ServerNameCheck,
    client_config, server_config,
};

struct Pki {
    _dir: tempfile::TempDir,
    master: Bundle,
    agent: Bundle,
    other_agent: Bundle,
    foreign_master: Bundle,
}

fn pki() -> Pki {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::create(&dir.path().join("ca")).unwrap();
    let foreign = CertificateAuthority::create(&dir.path().join("foreign")).unwrap();
    let opts = LeafOptions::default();
    Pki {
        master: ca.issue(&Role::Master, &["127.0.0.1"], &opts).unwrap(),
        agent: ca.issue_agent("w1", &["127.0.0.1"], &opts).unwrap(),
        other_agent: ca.issue_agent("w2", &["127.0.0.1"], &opts).unwrap(),
        foreign_master: foreign.issue(&Role::Master, &["127.0.0.1"], &opts).unwrap(),
        _dir: dir,
    }
}

/// Starts the real agent server (router + pki server config) on 127.0.0.1:<free port>.
async fn start_agent(bundle: &Bundle) -> u16 {
    let tls = server_config(bundle, RolePolicy::agent_endpoint(), RevocationList::new()).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let executor = Executor::connect(env!("CARGO_BIN_EXE_decnet").into())
        .await
        .unwrap();
    tokio::spawn(server::serve(listener, tls, Arc::new(Agent::new(executor))));
    port
}

fn client(bundle: &Bundle, port: u16) -> AgentClient {
    let policy = RolePolicy::agent_of(decnet::pki::WorkerName::new("w1").unwrap());
    let tls = client_config(
        bundle,
        policy,
        RevocationList::new(),
        ServerNameCheck::Verify,
    )
    .unwrap();
    AgentClient::new("127.0.0.1", port, tls).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_is_admitted_and_can_drive_the_agent() {
    let p = pki();
    let port = start_agent(&p.agent).await;
    let c = client(&p.master, port);
    let health = c.health().await.unwrap();
    assert_eq!(health["status"], "ok");

    let shard = format!("api{}", std::process::id() % 100_000);
    // Removes what is left even when an assertion fails half-way.
    let _cleanup = ShardCleanup::one(&shard);
    let req = DeployRequest {
        name: shard.clone(),
        spec: DeckyShardSpec {
            worker: "w1".into(),
            networks: vec![LanSpec {
                name: "lan".into(),
                subnet: Some("10.250.66.0/24".into()),
                driver: NetworkDriver::Bridge,
                parent: None,
                internal: false,
            }],
            deckies: vec![DeckySpec {
                name: "api-01".into(),
                services: vec![Service::Ssh],
                ips: [("lan".to_owned(), "10.250.66.10".to_owned())].into(),
                forwards_l3: false,
                personality: None,
            }],
        },
    };
    let result = async {
        let report = c.deploy(&req).await?;
        assert_eq!(report.containers_created, vec![format!("{shard}-api-01")]);
        assert!(c.deploy(&req).await?.unchanged);
        let status = c.status().await?;
        let s = status.shards.iter().find(|s| s.name == shard).unwrap();
        assert!(s.deckies[0].ready);
        assert_eq!(s.deckies[0].services, ["ssh"]);
        assert_eq!(s.deckies[0].ips[&format!("{shard}-lan")], "10.250.66.10");
        // A bad spec is a 422 with the reason.
        let mut bad = req.clone();
        bad.spec.deckies[0]
            .ips
            .insert("nope".into(), "1.2.3.4".into());
        let err = c.deploy(&bad).await.unwrap_err().to_string();
        assert!(err.contains("422") && err.contains("not declared"), "{err}");
        Ok::<_, decnet::agent::client::ClientError>(())
    }
    .await;
    let down = c
        .teardown(&TeardownRequest {
            shard: Some(shard.clone()),
            decky: None,
        })
        .await;
    result.unwrap();
    let down = down.unwrap();
    assert_eq!(down.containers_removed.len(), 1);
    assert_eq!(down.networks_removed.len(), 1);
    assert!(
        c.status()
            .await
            .unwrap()
            .shards
            .iter()
            .all(|s| s.name != shard)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_master_clients_are_refused() {
    let p = pki();
    let port = start_agent(&p.agent).await;
    // Another worker's agent certificate (same CA, wrong role).
    let err = client(&p.other_agent, port).health().await.unwrap_err();
    assert!(
        matches!(
            err,
            decnet::agent::client::ClientError::Tls { .. }
                | decnet::agent::client::ClientError::Http { .. }
        ),
        "{err}"
    );
    // The agent's own certificate.
    assert!(client(&p.agent, port).health().await.is_err());
    // A master certificate from a foreign CA (the client trusts our CA, so only the agent's
    // verifier can refuse).
    let foreign_tls = {
        let roots = decnet::pki::tls::root_store(p.master.ca_der()).unwrap();
        rustls::ClientConfig::builder_with_provider(decnet::pki::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(
                vec![p.foreign_master.cert_der().clone()],
                p.foreign_master.key_der().clone_key(),
            )
            .unwrap()
    };
    let c = AgentClient::new("127.0.0.1", port, Arc::new(foreign_tls)).unwrap();
    assert!(c.health().await.is_err());
    // No client certificate at all.
    let anon = {
        let roots = decnet::pki::tls::root_store(p.master.ca_der()).unwrap();
        rustls::ClientConfig::builder_with_provider(decnet::pki::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth()
    };
    let c = AgentClient::new("127.0.0.1", port, Arc::new(anon)).unwrap();
    assert!(c.health().await.is_err());
    // The master still gets in.
    let m = client(&p.master, port);
    assert_eq!(m.health().await.unwrap()["status"], "ok");
}

#[test]
fn agent_without_bundle_exits_2_naming_the_file_and_enroll() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_decnet"))
        .args(["agent", "--agent-dir"])
        .arg(dir.path())
        .args(["--host", "127.0.0.1", "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ca.crt") || err.contains("worker.crt"),
        "{err}"
    );
    assert!(err.contains("decnet swarm enroll"), "{err}");

    // A broken (garbage) certificate is named too.
    let p = pki();
    p.agent.write(dir.path()).unwrap();
    std::fs::write(dir.path().join("worker.crt"), "not a certificate").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_decnet"))
        .args(["agent", "--agent-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("worker.crt") && err.contains("enroll"),
        "{err}"
    );
}
