//! SWARM end to end on this machine: a master (`decnet controller`, its own
//! process) and two workers, each a network namespace with its own address
//! (veth to the root namespace) running a real `decnet agent` over mTLS
//! against the real Docker daemon.
//!
//! Scenario: 6 deckies → 3 + 3; a worker's agent dies → Unreachable → its
//! deckies move; it comes back → its stale deckies are torn down; the
//! controller is SIGKILLed mid-deploy and restarted → converges without
//! duplicates; a Worker is decommissioned → its deckies go, its certificate
//! is refused at the next handshake.
//!
//! Needs root (ip netns) and Docker. Addresses: 10.251.{1,2}.0/24 on veths
//! created here; traffic only goes to those and to loopback.

mod support;

use support::{ShardCleanup, binary, free_port};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;
use decnet::api::{DeckyShard, DeckyShardPhase, Swarm, SwarmPhase, Worker, WorkerPhase};
use decnet::pki::{Bundle, RolePolicy, ServerNameCheck};
use decnet::store::{Api, Selector, Store};
use tokio_rustls::TlsConnector;

fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two namespaces `<tag>-w1`/`<tag>-w2` at 10.251.{1,2}.2, host side .1; removed on drop.
struct Hosts {
    tag: String,
}

impl Hosts {
    fn new() -> Hosts {
        let tag = format!("dn{}", std::process::id() % 100_000);
        let h = Hosts { tag };
        for i in 1..=2 {
            let ns = h.ns(i);
            let (host_if, ns_if) = (format!("{}h{i}", h.tag), format!("{}n{i}", h.tag));
            let _ = Command::new("ip").args(["netns", "del", &ns]).output();
            let _ = Command::new("ip").args(["link", "del", &host_if]).output();
            sh(&["ip", "netns", "add", &ns]);
            sh(&[
                "ip", "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
            ]);
            sh(&["ip", "link", "set", &ns_if, "netns", &ns]);
            sh(&[
                "ip",
                "addr",
                "add",
                &format!("10.251.{i}.1/24"),
                "dev",
                &host_if,
            ]);
            sh(&["ip", "link", "set", &host_if, "up"]);
            sh(&[
                "ip",
                "netns",
                "exec",
                &ns,
                "ip",
                "addr",
                "add",
                &format!("10.251.{i}.2/24"),
                "dev",
                &ns_if,
            ]);
            sh(&[
                "ip", "netns", "exec", &ns, "ip", "link", "set", &ns_if, "up",
            ]);
            sh(&["ip", "netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
        }
        h
    }

    fn ns(&self, i: u8) -> String {
        format!("{}-w{i}", self.tag)
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for i in 1..=2 {
            let _ = Command::new("ip")
                .args(["link", "del", &format!("{}h{i}", self.tag)])
                .output();
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(i)])
                .output();
        }
    }
}

/// A child process killed on drop.
struct Proc(Child);

impl Proc {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Env {
    home: tempfile::TempDir,
    hosts: Hosts,
    store: Store,
    listener_port: u16,
    swarm: String,
}

impl Env {
    fn controller(&self) -> Proc {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.home.path().join("controller.log"))
            .unwrap();
        Proc(
            Command::new(binary())
                .args(["controller", "--host", "127.0.0.1", "--no-enroll"])
                .args(["--listener-port", &self.listener_port.to_string()])
                .env("DECNET_HOME", self.home.path())
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        )
    }

    fn agent(&self, i: u8) -> Proc {
        let dir = self.bundle_dir(i);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("agent.log"))
            .unwrap();
        Proc(
            Command::new("ip")
                .args(["netns", "exec", &self.hosts.ns(i)])
                .arg(binary())
                .arg("agent")
                .arg("--agent-dir")
                .arg(&dir)
                .args(["--host", &format!("10.251.{i}.2"), "--port", "8765"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        )
    }

    fn bundle_dir(&self, i: u8) -> PathBuf {
        self.home.path().join("workers").join(format!("w{i}"))
    }

    fn apply(&self, yaml: &str) {
        let out = Command::new(binary())
            .args(["apply", "-f", "-"])
            .env("DECNET_HOME", self.home.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(yaml.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        assert!(
            out.status.success(),
            "apply: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn manifests(&self, deckies: u32) -> String {
        format!(
            "apiVersion: decnet.io/v1alpha1
kind: Swarm
metadata: {{name: {swarm}}}
spec:
  masterAddress: 127.0.0.1
  health: {{probeIntervalSeconds: 1, rescheduleGraceSeconds: 3}}
  fleet: {{deckies: {deckies}, services: [http], namePrefix: {swarm}}}
---
apiVersion: decnet.io/v1alpha1
kind: Worker
metadata: {{name: w1}}
spec: {{address: 10.251.1.2, agentPort: 8765}}
---
apiVersion: decnet.io/v1alpha1
kind: Worker
metadata: {{name: w2}}
spec: {{address: 10.251.2.2, agentPort: 8765}}
",
            swarm = self.swarm
        )
    }

    async fn log_tail(&self) -> String {
        let mut s = String::new();
        for f in [
            "controller.log",
            "workers/w1/agent.log",
            "workers/w2/agent.log",
        ] {
            let text = std::fs::read_to_string(self.home.path().join(f)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            s += &format!(
                "--- {f}\n{}\n",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        s
    }

    async fn eventually<F, Fut>(&self, what: &str, timeout: Duration, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if check().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("timed out waiting for: {what}\n{}", self.log_tail().await);
    }

    async fn worker_phase(&self, name: &str) -> Option<WorkerPhase> {
        Api::<Worker>::new(self.store.clone())
            .get_opt(name)
            .await
            .unwrap()
            .and_then(|w| w.status?.phase)
    }

    async fn shards(&self) -> Vec<DeckyShard> {
        Api::<DeckyShard>::new(self.store.clone())
            .list(&Selector::default())
            .await
            .unwrap()
    }

    async fn swarm_ready(&self, deckies: u32) -> bool {
        let Some(s) = Api::<Swarm>::new(self.store.clone())
            .get_opt(&self.swarm)
            .await
            .unwrap()
        else {
            return false;
        };
        let st = s.status.unwrap_or_default();
        st.phase == Some(SwarmPhase::Ready)
            && st.scheduled_deckies == Some(deckies)
            && st.observed_generation == s.metadata.generation
    }

    /// Shard name → decky names, from the live (not terminating) shards that are Ready.
    async fn ready_layout(&self) -> BTreeMap<String, usize> {
        self.shards()
            .await
            .into_iter()
            .filter(|s| s.metadata.deletion_timestamp.is_none())
            .filter(|s| s.status.as_ref().and_then(|st| st.phase) == Some(DeckyShardPhase::Ready))
            .map(|s| (s.metadata.name.unwrap(), s.spec.deckies.len()))
            .collect()
    }
}

/// Running base containers per decky label, for this test's shards.
async fn docker_deckies(docker: &Docker, swarm: &str) -> BTreeMap<String, Vec<String>> {
    let opts = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&std::collections::HashMap::from([(
            "label".to_string(),
            vec!["decnet.io/role=decky".to_string()],
        )]))
        .build();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in docker.list_containers(Some(opts)).await.unwrap() {
        let labels = c.labels.unwrap_or_default();
        let shard = labels.get("decnet.io/shard").cloned().unwrap_or_default();
        if !shard.starts_with(&format!("{swarm}-")) {
            continue;
        }
        let decky = labels.get("decnet.io/decky").cloned().unwrap_or_default();
        out.entry(decky).or_default().push(shard);
    }
    out
}

async fn shard_containers(docker: &Docker, shard: &str) -> usize {
    let opts = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&std::collections::HashMap::from([(
            "label".to_string(),
            vec![format!("decnet.io/shard={shard}")],
        )]))
        .build();
    docker.list_containers(Some(opts)).await.unwrap().len()
}

/// A TLS handshake to the master's listener with worker `dir`'s bundle.
async fn handshake_with(dir: &Path, port: u16) -> Result<(), String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bundle = Bundle::load(dir).map_err(|e| e.to_string())?;
    let tls = decnet::pki::client_config(
        &bundle,
        RolePolicy::master(),
        decnet::pki::RevocationList::new(),
        ServerNameCheck::Verify,
    )
    .map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let name = decnet::pki::server_name("127.0.0.1").map_err(|e| e.to_string())?;
    let mut stream = TlsConnector::from(Arc::clone(&tls))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    // TLS 1.3: a refused client certificate shows on the first read after the handshake.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(b"").await.map_err(|e| e.to_string())?;
    let mut buf = [0u8; 1];
    match tokio::time::timeout(Duration::from_millis(1500), stream.read(&mut buf)).await {
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(0)) => Err("closed by the server".into()),
        _ => Ok(()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_schedules_moves_recovers_and_decommissions() {
    assert_eq!(
        unsafe { libc_geteuid() },
        0,
        "this test needs root for ip netns (CI runs as root)"
    );
    let docker = Docker::connect_with_socket_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .expect("docker daemon");
    let home = tempfile::tempdir().unwrap();
    let store = Store::open(&home.path().join("decnet.db")).await.unwrap();
    let swarm = format!("e2e{}", std::process::id() % 100_000);
    let _docker_cleanup = ShardCleanup(vec![format!("{swarm}-w1"), format!("{swarm}-w2")]);
    let env = Env {
        home,
        hosts: Hosts::new(),
        store,
        listener_port: free_port(),
        swarm: swarm.clone(),
    };
    let (s1, s2) = (format!("{swarm}-w1"), format!("{swarm}-w2"));

    // 6 deckies over two workers → 3 + 3, all running.
    env.apply(&env.manifests(6));
    let mut controller = env.controller();
    env.eventually("bundles issued", Duration::from_secs(30), || async {
        env.bundle_dir(1).join("worker.key").exists()
            && env.bundle_dir(2).join("worker.key").exists()
    })
    .await;
    let _a1 = env.agent(1);
    let mut a2 = env.agent(2);
    env.eventually(
        "6 deckies ready, 3 + 3",
        Duration::from_secs(180),
        || async {
            env.swarm_ready(6).await
                && env.ready_layout().await == BTreeMap::from([(s1.clone(), 3), (s2.clone(), 3)])
        },
    )
    .await;
    let bases = docker_deckies(&docker, &swarm).await;
    assert_eq!(bases.len(), 6, "{bases:?}");
    assert!(bases.values().all(|s| s.len() == 1), "{bases:?}");

    // w2's agent dies → Unreachable → after the 3 s grace its deckies move to w1.
    a2.kill();
    env.eventually("w2 Unreachable", Duration::from_secs(30), || async {
        env.worker_phase("w2").await == Some(WorkerPhase::Unreachable)
    })
    .await;
    env.eventually("deckies moved to w1", Duration::from_secs(120), || async {
        env.swarm_ready(6).await && env.ready_layout().await == BTreeMap::from([(s1.clone(), 6)])
    })
    .await;
    assert!(
        shard_containers(&docker, &s2).await > 0,
        "w2's containers are still there while it is away"
    );

    // w2 comes back → its stale shard is torn down (finalizer) and the object goes.
    let _a2 = env.agent(2);
    env.eventually(
        "stale shard on w2 torn down",
        Duration::from_secs(120),
        || async {
            shard_containers(&docker, &s2).await == 0
                && !env
                    .shards()
                    .await
                    .iter()
                    .any(|s| s.metadata.name.as_deref() == Some(s2.as_str()))
        },
    )
    .await;
    assert_eq!(env.worker_phase("w2").await, Some(WorkerPhase::Active));

    // Scale to 8 and SIGKILL the controller while the new deckies are being deployed.
    env.apply(&env.manifests(8));
    env.eventually(
        "deploy of the new deckies started",
        Duration::from_secs(60),
        || async { docker_deckies(&docker, &swarm).await.len() > 6 },
    )
    .await;
    controller.kill();
    let _controller = env.controller();
    env.eventually(
        "8 deckies ready after the controller restart",
        Duration::from_secs(180),
        || async {
            env.swarm_ready(8).await && env.ready_layout().await.values().sum::<usize>() == 8
        },
    )
    .await;
    let bases = docker_deckies(&docker, &swarm).await;
    assert_eq!(bases.len(), 8, "{bases:?}");
    assert!(
        bases.values().all(|s| s.len() == 1),
        "a decky runs twice: {bases:?}"
    );

    // Decommission w2: its deckies go, the fleet is back on w1, its cert is refused.
    assert!(
        handshake_with(&env.bundle_dir(2), env.listener_port)
            .await
            .is_ok(),
        "w2's cert works before"
    );
    let w2_bundle = tempfile::tempdir().unwrap();
    for f in ["ca.crt", "worker.crt", "worker.key"] {
        std::fs::copy(env.bundle_dir(2).join(f), w2_bundle.path().join(f)).unwrap();
    }
    let out = Command::new(binary())
        .args([
            "swarm",
            "decommission",
            "--name",
            "w2",
            "--yes",
            "--timeout",
            "120",
        ])
        .env("DECNET_HOME", env.home.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "decommission: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        env.log_tail().await
    );
    assert_eq!(shard_containers(&docker, &s2).await, 0);
    env.eventually(
        "fleet back to 8 on w1",
        Duration::from_secs(180),
        || async {
            env.swarm_ready(8).await
                && env.ready_layout().await == BTreeMap::from([(s1.clone(), 8)])
        },
    )
    .await;
    let refused = handshake_with(w2_bundle.path(), env.listener_port).await;
    assert!(
        refused.is_err(),
        "a decommissioned worker's certificate must be refused"
    );
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
