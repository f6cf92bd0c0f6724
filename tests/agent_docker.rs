//! Agent executor against the real Docker daemon of this machine.
//!
//! Only bridge networks in 10.250.{60..69}.0/24 (and the agent's own 10.213.x.0/24 pool) are
//! created; traffic only goes to those containers. Each test uses its own shard name and
//! subnets and tears everything down even on failure (drop guard), so tests run in parallel.

mod support;

use support::{ShardCleanup, binary};

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{
    KillContainerOptions, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
};
use decnet::agent::{Agent, DeployRequest, Executor, TeardownRequest};
use decnet::api::{DeckyShardSpec, DeckySpec, LanSpec, NetworkDriver, Service};
use tokio::io::AsyncReadExt;

/// Container name → (id, running, labels, IP per network).
type Seen = BTreeMap<
    String,
    (
        String,
        bool,
        HashMap<String, String>,
        HashMap<String, String>,
    ),
>;

fn shard_name(test: &str) -> String {
    format!("t{}-{test}", std::process::id() % 100_000)
}

async fn agent() -> Agent {
    Agent::new(Executor::connect(binary()).await.expect("docker daemon"))
}

fn lan(name: &str, subnet: Option<&str>) -> LanSpec {
    LanSpec {
        name: name.into(),
        subnet: subnet.map(str::to_owned),
        driver: NetworkDriver::Bridge,
        parent: None,
        internal: false,
    }
}

fn decky(name: &str, services: &[Service], ips: &[(&str, &str)]) -> DeckySpec {
    DeckySpec {
        name: name.into(),
        services: services.to_vec(),
        ips: ips
            .iter()
            .map(|(l, i)| ((*l).to_owned(), (*i).to_owned()))
            .collect(),
        forwards_l3: false,
        personality: None,
    }
}

async fn docker() -> Docker {
    Docker::connect_with_socket_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .unwrap()
}

/// Container name → (id, running, labels, ips per network) for everything labelled `shard`.
async fn containers(shard: &str) -> Seen {
    let f = HashMap::from([("label".to_owned(), vec![format!("decnet.io/shard={shard}")])]);
    let list = docker()
        .await
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&f)
                .build(),
        ))
        .await
        .unwrap();
    list.into_iter()
        .map(|c| {
            let name = c.names.unwrap()[0].trim_start_matches('/').to_owned();
            let ips = c
                .network_settings
                .and_then(|s| s.networks)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(n, e)| Some((n, e.ip_address.filter(|i| !i.is_empty())?)))
                .collect();
            let running = c.state.map(|s| s.to_string()) == Some("running".into());
            (
                name,
                (c.id.unwrap(), running, c.labels.unwrap_or_default(), ips),
            )
        })
        .collect()
}

async fn networks(shard: &str) -> Vec<String> {
    let f = HashMap::from([("label".to_owned(), vec![format!("decnet.io/shard={shard}")])]);
    let mut v: Vec<String> = docker()
        .await
        .list_networks(Some(
            ListNetworksOptionsBuilder::default().filters(&f).build(),
        ))
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.name.unwrap())
        .collect();
    v.sort();
    v
}

fn ids(c: &Seen) -> BTreeMap<String, String> {
    c.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect()
}

async fn banner(ip: &str, port: u16) -> String {
    let mut s = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect((ip, port)),
    )
    .await
    .expect("connect timeout")
    .expect("connect");
    let mut buf = vec![0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

async fn wait_banner(ip: &str, port: u16) -> String {
    for _ in 0..50 {
        if let Ok(Ok(mut s)) = tokio::time::timeout(
            Duration::from_millis(500),
            tokio::net::TcpStream::connect((ip, port)),
        )
        .await
        {
            let mut buf = vec![0u8; 256];
            if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await
            {
                return String::from_utf8_lossy(&buf[..n]).into_owned();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{ip}:{port} never answered")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_redeploy_restore_remove_teardown() {
    let shard = shard_name("life");
    let _cleanup = ShardCleanup::one(&shard);
    let mut router = decky(
        "router",
        &[Service::Ssh, Service::Http],
        &[("dmz", "10.250.61.13"), ("core", "10.250.62.13")],
    );
    router.forwards_l3 = true;
    let spec = DeckyShardSpec {
        worker: "local".into(),
        networks: vec![
            lan("dmz", Some("10.250.61.0/24")),
            lan("core", Some("10.250.62.0/24")),
        ],
        deckies: vec![
            decky(
                "web",
                &[Service::Ssh, Service::Http],
                &[("dmz", "10.250.61.11")],
            ),
            decky(
                "files",
                &[Service::Ftp, Service::Smtp],
                &[("dmz", "10.250.61.12")],
            ),
            router,
        ],
    };
    let req = DeployRequest {
        name: shard.clone(),
        spec: spec.clone(),
    };

    // 1. Deploy from empty.
    let report = agent().await.deploy(&req).await.unwrap();
    assert!(!report.unchanged);
    // One container per decky: its addresses and all of its services in one process.
    assert_eq!(report.containers_created.len(), 3, "{report:?}");
    assert_eq!(
        networks(&shard).await,
        vec![format!("{shard}-core"), format!("{shard}-dmz")]
    );
    let first = containers(&shard).await;
    assert_eq!(first.len(), 3);
    assert!(first.values().all(|c| c.1), "all running: {first:?}");
    let (_, _, labels, ips) = &first[&format!("{shard}-web")];
    assert_eq!(labels["decnet.io/managed"], "true");
    assert_eq!(labels["decnet.io/shard"], shard);
    assert_eq!(labels["decnet.io/decky"], "web");
    assert_eq!(labels["decnet.io/role"], "decky");
    assert_eq!(labels["decnet.io/services"], "ssh,http");
    assert!(!labels["decnet.io/spec-hash"].is_empty());
    assert_eq!(ips[&format!("{shard}-dmz")], "10.250.61.11");
    let router_ips = &first[&format!("{shard}-router")].3;
    assert_eq!(router_ips[&format!("{shard}-dmz")], "10.250.61.13");
    assert_eq!(router_ips[&format!("{shard}-core")], "10.250.62.13");
    let inspect = docker()
        .await
        .inspect_container(&first[&format!("{shard}-router")].0, None)
        .await
        .unwrap();
    assert_eq!(
        inspect.host_config.unwrap().sysctls.unwrap()["net.ipv4.ip_forward"],
        "1"
    );
    let env = inspect.config.and_then(|c| c.env).unwrap_or_default();
    for e in decnet::agent::executor::DECKY_ENV {
        assert!(env.iter().any(|v| v == e), "{e} not in {env:?}");
    }
    // Every service of a decky answers on the decky's address.
    assert_eq!(
        wait_banner("10.250.61.11", 22).await,
        "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6\r\n"
    );
    assert!(wait_banner("10.250.61.12", 21).await.starts_with("220 "));
    assert!(wait_banner("10.250.61.12", 25).await.starts_with("220 "));
    assert!(
        wait_banner("10.250.61.13", 22)
            .await
            .starts_with("SSH-2.0-")
    );

    // 2. Deploy again, from a fresh agent (restart-safe: state is read from labels) → no change.
    let report = agent().await.deploy(&req).await.unwrap();
    assert!(report.unchanged, "{report:?}");
    assert!(report.containers_created.is_empty() && report.containers_removed.is_empty());
    assert_eq!(ids(&containers(&shard).await), ids(&first));

    // 3. Kill a decky's container → the next deploy restores it alone.
    let d = docker().await;
    d.kill_container(
        &first[&format!("{shard}-files")].0,
        None::<KillContainerOptions>,
    )
    .await
    .unwrap();
    let report = agent().await.deploy(&req).await.unwrap();
    assert!(!report.unchanged);
    assert_eq!(report.containers_created, vec![format!("{shard}-files")]);
    let restored = containers(&shard).await;
    assert_eq!(restored.len(), 3);
    assert!(
        restored.values().all(|c| c.1),
        "all running again: {restored:?}"
    );
    for name in [format!("{shard}-web"), format!("{shard}-router")] {
        assert_eq!(restored[&name].0, first[&name].0, "{name} untouched");
    }
    assert_eq!(
        restored[&format!("{shard}-files")].3[&format!("{shard}-dmz")],
        "10.250.61.12"
    );
    assert!(wait_banner("10.250.61.12", 21).await.starts_with("220 "));

    // 4. Remove one decky from the spec → only it disappears.
    let mut smaller = req.clone();
    smaller.spec.deckies.retain(|d| d.name != "files");
    let report = agent().await.deploy(&smaller).await.unwrap();
    assert_eq!(report.containers_removed.len(), 1, "{report:?}");
    assert!(report.containers_created.is_empty());
    let after = containers(&shard).await;
    let mut expected = ids(&restored);
    expected.retain(|k, _| !k.starts_with(&format!("{shard}-files")));
    assert_eq!(ids(&after), expected);

    // 5. /status view of the shard.
    let status = agent().await.status().await.unwrap();
    let s = status.shards.iter().find(|s| s.name == shard).unwrap();
    assert_eq!(s.deckies.len(), 2);
    assert!(s.deckies.iter().all(|d| d.ready));
    assert_eq!(s.networks.len(), 2);

    // 6. Teardown → nothing labelled remains, networks included.
    let report = agent()
        .await
        .teardown(&TeardownRequest {
            shard: Some(shard.clone()),
            decky: None,
        })
        .await
        .unwrap();
    assert_eq!(report.containers_removed.len(), 2);
    assert_eq!(report.networks_removed.len(), 2);
    assert!(containers(&shard).await.is_empty());
    assert!(networks(&shard).await.is_empty());
    let _ = banner; // (kept for ad-hoc debugging)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deploys_of_one_shard_serialize() {
    let shard = shard_name("conc");
    let _cleanup = ShardCleanup::one(&shard);
    let req = DeployRequest {
        name: shard.clone(),
        spec: DeckyShardSpec {
            worker: "local".into(),
            networks: vec![lan("lan", Some("10.250.63.0/24"))],
            deckies: vec![
                decky("a", &[Service::Ssh], &[("lan", "10.250.63.10")]),
                decky("b", &[Service::Telnet], &[("lan", "10.250.63.11")]),
            ],
        },
    };
    let agent = Arc::new(agent().await);
    let runs = futures::future::join_all((0..3).map(|_| {
        let agent = agent.clone();
        let req = req.clone();
        tokio::spawn(async move { agent.deploy(&req).await })
    }))
    .await;
    let reports: Vec<_> = runs.into_iter().map(|r| r.unwrap().unwrap()).collect();
    assert_eq!(
        reports.iter().filter(|r| !r.unchanged).count(),
        1,
        "{reports:?}"
    );
    assert_eq!(containers(&shard).await.len(), 2);
    // Decky-only teardown keeps the networks.
    let r = agent
        .teardown(&TeardownRequest {
            shard: Some(shard.clone()),
            decky: Some("a".into()),
        })
        .await
        .unwrap();
    assert_eq!(r.containers_removed.len(), 1);
    assert!(r.networks_removed.is_empty());
    assert_eq!(containers(&shard).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_lan_gets_a_free_private_subnet() {
    let shard = shard_name("auto");
    let _cleanup = ShardCleanup::one(&shard);
    let req = DeployRequest {
        name: shard.clone(),
        spec: DeckyShardSpec {
            worker: "local".into(),
            networks: vec![],
            deckies: vec![decky("solo", &[Service::Smtp], &[])],
        },
    };
    let agent = agent().await;
    agent.deploy(&req).await.unwrap();
    let status = agent.status().await.unwrap();
    let s = status.shards.iter().find(|s| s.name == shard).unwrap();
    let subnet = s.networks[0].subnet.clone().unwrap();
    assert!(
        subnet.starts_with("10.213.") && subnet.ends_with(".0/24"),
        "{subnet}"
    );
    let ip = s.deckies[0].ips[&format!("{shard}-default")].clone();
    assert!(wait_banner(&ip, 25).await.starts_with("220 solo ESMTP"));
    assert!(agent.deploy(&req).await.unwrap().unchanged);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn macvlan_on_a_missing_nic_is_a_clear_error() {
    let shard = shard_name("mvl");
    let _cleanup = ShardCleanup::one(&shard);
    let mut l = lan("outside", Some("10.250.64.0/24"));
    l.driver = NetworkDriver::Macvlan;
    l.parent = Some("nosuchnic0".into());
    let req = DeployRequest {
        name: shard.clone(),
        spec: DeckyShardSpec {
            worker: "local".into(),
            networks: vec![l],
            deckies: vec![decky("x", &[Service::Ssh], &[("outside", "10.250.64.10")])],
        },
    };
    let err = agent().await.deploy(&req).await.unwrap_err().to_string();
    assert!(
        err.contains("LAN \"outside\"") && err.contains("macvlan") && err.contains("nosuchnic0"),
        "{err}"
    );
    assert!(err.contains("driver: bridge"), "{err}");
    assert!(containers(&shard).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_spec_is_refused_before_touching_docker() {
    let shard = shard_name("bad");
    let req = DeployRequest {
        name: shard.clone(),
        spec: DeckyShardSpec {
            worker: "local".into(),
            networks: vec![lan("lan", Some("10.250.65.0/24"))],
            deckies: vec![decky("x", &[Service::Ssh], &[("lan", "10.250.99.10")])],
        },
    };
    let err = agent().await.deploy(&req).await.unwrap_err().to_string();
    assert!(err.contains("outside LAN \"lan\""), "{err}");
    assert!(networks(&shard).await.is_empty());
}
