//! Agent convergence benchmark against the real Docker daemon.
//!
//! 20 deckies × 2 services on one bridge LAN:
//! - our executor from empty, then a no-op re-deploy (median of 5);
//! - `docker-compose up -d` of an equivalent compose file (same image, same layout: one
//!   container per decky with a static IP, running both services), then a no-op `up -d`.
//!
//! The compose CLI is only the baseline here; the product never shells out to Docker.
//! The decky image is built before any timing. Everything is cleaned up afterwards.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use decnet::agent::{Executor, plan::container_name};
use decnet::api::{DeckyShardSpec, DeckySpec, LanSpec, NetworkDriver, Service};

const DECKIES: usize = 20;
const SERVICES: [Service; 2] = [Service::Ssh, Service::Http];

fn spec(subnet_third: u8) -> DeckyShardSpec {
    DeckyShardSpec {
        worker: "local".into(),
        networks: vec![LanSpec {
            name: "lan".into(),
            subnet: Some(format!("10.250.{subnet_third}.0/24")),
            driver: NetworkDriver::Bridge,
            parent: None,
            internal: false,
        }],
        deckies: (0..DECKIES)
            .map(|i| DeckySpec {
                name: format!("d{i:02}"),
                services: SERVICES.to_vec(),
                ips: [(
                    "lan".to_owned(),
                    format!("10.250.{subnet_third}.{}", 10 + i),
                )]
                .into(),
                forwards_l3: false,
                personality: None,
            })
            .collect(),
    }
}

fn compose_file(image: &str, subnet_third: u8) -> String {
    let mut y = String::from("version: \"2.4\"\nservices:\n");
    let services = SERVICES.map(|s| s.as_str()).join(",");
    for i in 0..DECKIES {
        let d = format!("d{i:02}");
        let _ = write!(
            y,
            "  {d}:\n    image: {image}\n    command: [\"decky\", \"serve\", \"--service\", \"{services}\", \"--decky\", \"{d}\"]\n    \
             hostname: {d}\n    stop_grace_period: 2s\n    networks:\n      lan:\n        ipv4_address: 10.250.{subnet_third}.{}\n",
            10 + i
        );
    }
    let _ = write!(
        y,
        "networks:\n  lan:\n    ipam:\n      config:\n        - subnet: 10.250.{subnet_third}.0/24\n"
    );
    y
}

fn compose(dir: &std::path::Path, args: &[&str]) -> Duration {
    let started = Instant::now();
    let out = Command::new("docker-compose")
        .current_dir(dir)
        .args(["-p", "decnetbench", "-f", "compose.yaml"])
        .args(args)
        .output()
        .expect("docker-compose is installed");
    let elapsed = started.elapsed();
    assert!(
        out.status.success(),
        "docker-compose {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        // `cargo test --all-targets` runs bench binaries without `--bench`: keep CI fast.
        println!("agent_converge: skipped (run with `cargo bench --bench agent_converge`)");
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_decnet"));
    let exec = Executor::connect(binary).await.expect("docker daemon");
    let image = exec.ensure_image().await.expect("decky image");
    let shard = "benchconv";
    let spec = spec(70);
    let _ = exec.teardown(Some(shard), None).await;

    // Ours: from empty.
    let started = Instant::now();
    let report = exec.deploy(shard, &spec).await.expect("deploy");
    let ours_cold = started.elapsed();
    assert_eq!(report.containers_created.len(), DECKIES);
    assert!(
        report
            .containers_created
            .contains(&container_name(shard, "d00"))
    );
    // Ours: no-op re-deploys.
    let mut noop = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let r = exec.deploy(shard, &spec).await.expect("redeploy");
        noop.push(started.elapsed());
        assert!(r.unchanged);
    }
    let ours_noop = median(noop);
    let started = Instant::now();
    exec.teardown(Some(shard), None).await.expect("teardown");
    let ours_down = started.elapsed();

    // docker-compose with the same image and layout.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("compose.yaml"), compose_file(&image, 71)).unwrap();
    let _ = Command::new("docker-compose")
        .current_dir(dir.path())
        .args(["-p", "decnetbench", "-f", "compose.yaml", "down", "-t", "1"])
        .output();
    let compose_cold = compose(dir.path(), &["up", "-d"]);
    let compose_noop = median((0..3).map(|_| compose(dir.path(), &["up", "-d"])).collect());
    let compose_down = compose(dir.path(), &["down", "-t", "2"]);

    println!(
        "agent_converge: {DECKIES} deckies x {} services ({} containers), image {image}",
        SERVICES.len(),
        DECKIES * 3
    );
    println!(
        "{:<28} {:>12} {:>16} {:>8}",
        "", "decnet (ms)", "compose (ms)", "ratio"
    );
    for (label, a, b) in [
        ("converge from empty", ours_cold, compose_cold),
        ("no-op re-deploy (median)", ours_noop, compose_noop),
        ("teardown", ours_down, compose_down),
    ] {
        println!(
            "{label:<28} {:>12.1} {:>16.1} {:>7.2}x",
            ms(a),
            ms(b),
            ms(a) / ms(b)
        );
    }
    println!(
        "targets: cold <= 1.0x compose: {}; no-op < 300 ms: {}",
        if ours_cold <= compose_cold {
            "met"
        } else {
            "MISSED"
        },
        if ours_noop < Duration::from_millis(300) {
            "met"
        } else {
            "MISSED"
        }
    );
}
