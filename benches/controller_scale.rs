//! SWARM controller at scale, with simulated agents: 1,000 in-process fake
//! agents speaking the real agent API (HTTPS + mTLS with their own enrolled
//! certificates, the same JSON types), no Docker. Measures
//! (a) enrollment + controller start → all workers Active,
//! (b) apply of a 10,000-decky fleet → every DeckyShard Ready,
//! and the process's peak resident memory (controller + the fake agents: an
//! upper bound for the controller alone).
//!
//! `DECNET_BENCH_WORKERS` / `DECNET_BENCH_DECKIES` change the size.
//! Targets: (b) under 60 s and under 500 MiB.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use decnet::agent::{
    AgentStatus, ContainerObserved, DeckyObserved, DeployReport, DeployRequest, ShardStatus,
    TeardownReport, TeardownRequest,
};
use decnet::api::{DeckyShard, DeckyShardPhase, Kind, Swarm, Worker, WorkerPhase};
use decnet::controller::{Context, ManagerOptions, Settings, manager};
use decnet::enroll::workers::{WorkerRequest, enroll};
use decnet::master::MasterTls;
use decnet::pki::{Bundle, RevocationList, RolePolicy};
use decnet::store::{Api, Selector, Store};
use serde_json::json;

/// One simulated agent: remembers the shards it was given.
#[derive(Default)]
struct Fake {
    shards: Mutex<BTreeMap<String, decnet::api::DeckyShardSpec>>,
}

async fn status(State(f): State<Arc<Fake>>) -> Json<AgentStatus> {
    let shards = f.shards.lock().unwrap();
    Json(AgentStatus {
        version: "fake".into(),
        host_network: None,
        shards: shards
            .iter()
            .map(|(name, spec)| ShardStatus {
                name: name.clone(),
                networks: vec![],
                deckies: spec
                    .deckies
                    .iter()
                    .map(|d| DeckyObserved {
                        name: d.name.clone(),
                        ready: true,
                        spec_hash: "x".into(),
                        ips: BTreeMap::new(),
                        services: d.services.iter().map(|s| s.to_string()).collect(),
                        containers: vec![ContainerObserved {
                            name: format!("{name}-{}", d.name),
                            id: "0".into(),
                            role: "decky".into(),
                            state: "running".into(),
                        }],
                    })
                    .collect(),
            })
            .collect(),
    })
}

async fn deploy(State(f): State<Arc<Fake>>, Json(req): Json<DeployRequest>) -> Json<DeployReport> {
    let created = req.spec.deckies.iter().map(|d| d.name.clone()).collect();
    f.shards.lock().unwrap().insert(req.name.clone(), req.spec);
    Json(DeployReport {
        shard: req.name,
        containers_created: created,
        ..Default::default()
    })
}

async fn teardown(
    State(f): State<Arc<Fake>>,
    Json(req): Json<TeardownRequest>,
) -> Json<TeardownReport> {
    let mut shards = f.shards.lock().unwrap();
    match req.shard {
        Some(s) => {
            shards.remove(&s);
        }
        None => shards.clear(),
    }
    Json(TeardownReport::default())
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn env_num(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Under `cargo test` (no --bench) run a small smoke pass of the same path.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let workers = env_num("DECNET_BENCH_WORKERS", if smoke { 50 } else { 1000 });
    let deckies = env_num("DECNET_BENCH_DECKIES", if smoke { 500 } else { 10_000 });
    let home = tempfile::tempdir().unwrap();
    let store = Store::open(&home.path().join("decnet.db")).await.unwrap();
    let master = MasterTls::load(home.path(), store.clone()).await.unwrap();
    let swarm_doc = |fleet: Option<u32>| {
        let mut spec =
            json!({"masterAddress": "127.0.0.1", "health": {"probeIntervalSeconds": 15}});
        if let Some(n) = fleet {
            spec["fleet"] = json!({"deckies": n, "services": ["ssh", "http"], "namePrefix": "d"});
        }
        json!({"apiVersion": "decnet.io/v1alpha1", "kind": "Swarm", "metadata": {"name": "bench"}, "spec": spec})
    };
    store
        .apply_all(&[(Kind::Swarm, swarm_doc(None))], false)
        .await
        .unwrap();

    // Enroll the workers and start one fake agent per worker on its own port.
    let t0 = Instant::now();
    for i in 0..workers {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let name = format!("w{i:04}");
        let dir = home.path().join("bundles").join(&name);
        let req = WorkerRequest {
            name: name.clone(),
            address: "127.0.0.1".into(),
            sans: vec![],
            agent_port: Some(port),
            labels: BTreeMap::new(),
        };
        enroll(&master, &req, &dir).await.unwrap();
        let bundle = Bundle::load(&dir).unwrap();
        let tls = decnet::pki::server_config(
            &bundle,
            RolePolicy::agent_endpoint(),
            RevocationList::new(),
        )
        .unwrap();
        let app = Router::new()
            .route("/status", get(status))
            .route("/deploy", post(deploy))
            .route("/teardown", post(teardown))
            .with_state(Arc::new(Fake::default()));
        listener.set_nonblocking(true).unwrap();
        let server = axum_server::from_tcp_rustls(
            listener,
            axum_server::tls_rustls::RustlsConfig::from_config(tls),
        )
        .unwrap();
        tokio::spawn(server.serve(app.into_make_service()));
    }
    let enrolled = t0.elapsed();

    let settings = Settings {
        shard_resync: Duration::from_secs(60),
        ..Settings::default()
    };
    let ctx = Arc::new(Context::new(
        store.clone(),
        master.clone(),
        home.path().to_path_buf(),
        settings,
    ));
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let mgr = tokio::spawn(manager::run(ctx, ManagerOptions::default(), async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }));

    let wapi: Api<Worker> = Api::new(store.clone());
    let t1 = Instant::now();
    loop {
        let ws = wapi.list(&Selector::default()).await.unwrap();
        let active = ws
            .iter()
            .filter(|w| w.status.as_ref().and_then(|s| s.phase) == Some(WorkerPhase::Active))
            .count();
        if active == workers as usize {
            break;
        }
        assert!(
            t1.elapsed() < Duration::from_secs(600),
            "only {active}/{workers} workers Active after 10 min"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let activated = t1.elapsed();

    // The measured part: apply the fleet, wait for every shard to be Ready.
    let sapi: Api<DeckyShard> = Api::new(store.clone());
    let t2 = Instant::now();
    store
        .apply_all(&[(Kind::Swarm, swarm_doc(Some(deckies)))], false)
        .await
        .unwrap();
    let (shards, ready_deckies) = loop {
        let shards = sapi.list(&Selector::default()).await.unwrap();
        let ready: Vec<&DeckyShard> = shards
            .iter()
            .filter(|s| s.status.as_ref().and_then(|st| st.phase) == Some(DeckyShardPhase::Ready))
            .collect();
        let ready_deckies: usize = ready.iter().map(|s| s.spec.deckies.len()).sum();
        let swarm_ready = Api::<Swarm>::new(store.clone())
            .get("bench")
            .await
            .ok()
            .and_then(|s| s.status?.phase)
            == Some(decnet::api::SwarmPhase::Ready);
        if ready_deckies == deckies as usize && ready.len() == shards.len() && swarm_ready {
            break (shards.len(), ready_deckies);
        }
        assert!(
            t2.elapsed() < Duration::from_secs(900),
            "{ready_deckies}/{deckies} deckies ready after 15 min"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let converged = t2.elapsed();
    let swarm = Api::<Swarm>::new(store.clone()).get("bench").await.unwrap();
    let _ = stop_tx.send(true);
    let _ = mgr.await;

    println!(
        "controller_scale: {workers} workers, {deckies} deckies ({shards} shards, {ready_deckies} ready)"
    );
    println!(
        "  enrollment of {workers} workers + fake agents   {:>8.2} s",
        enrolled.as_secs_f64()
    );
    println!(
        "  controller start → all workers Active          {:>8.2} s",
        activated.as_secs_f64()
    );
    println!(
        "  apply fleet → shards + Swarm Ready             {:>8.2} s   (target < 60 s: {})",
        converged.as_secs_f64(),
        if converged < Duration::from_secs(60) {
            "MET"
        } else {
            "MISSED"
        }
    );
    let hwm = rss_kib("VmHWM:") / 1024;
    println!(
        "  peak RSS (controller + {workers} fake agents)      {:>8} MiB (target < 500 MiB: {})",
        hwm,
        if hwm < 500 { "MET" } else { "MISSED" }
    );
    println!(
        "  swarm status: {:?}",
        swarm
            .status
            .map(|s| (s.phase, s.scheduled_deckies, s.active_workers))
    );
}
